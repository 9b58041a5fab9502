//! seqbridge-desktop: an eframe/egui app that runs seqbridge on its window's own wgpu
//! device. Read it as the example of embedding the engine: [`device`] shares the device,
//! [`worker`] runs the models off the UI thread, [`heatmap`] draws the cross-attention
//! straight from the engine's GPU buffer in an egui paint callback.

pub mod app;
pub mod device;
pub mod frames;
pub mod heatmap;
pub mod picker;
pub mod smoke;
pub mod speech;
pub mod vision;
pub mod worker;

pub use app::App;

/// The window's options: wgpu (the engine's device), no multisampling or depth buffer (the
/// heatmap pipeline is built for neither).
pub fn native_options() -> anyhow::Result<eframe::NativeOptions> {
    Ok(eframe::NativeOptions {
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: device::wgpu_options()?,
        multisampling: 0,
        depth_buffer: 0,
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("seqbridge")
            .with_inner_size([900.0, 640.0])
            .with_drag_and_drop(true),
        ..Default::default()
    })
}
