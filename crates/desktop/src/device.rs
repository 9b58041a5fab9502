//! The one wgpu device: eframe creates it for its window, asking the adapter for what
//! seqbridge's kernels need, and the engine is handed the same device, queue and adapter.

use std::sync::Arc;

use eframe::egui_wgpu::{self, RenderState, WgpuSetup, WgpuSetupCreateNew};
use eframe::wgpu;
use seqbridge_gpu::{Gpu, GpuOptions};

/// How eframe (and the headless tests) create the device. Backends and adapter follow
/// `SEQBRIDGE_BACKEND` / `SEQBRIDGE_ADAPTER`, as the command line's do; the device gets the
/// adapter's own limits and the optional features the kernels use
/// ([`seqbridge_gpu::device_descriptor`]). egui's default would ask for wgpu's portable
/// limits (and WebGL2's on GL: no storage buffers at all), which the kernels outgrow.
pub fn wgpu_setup() -> anyhow::Result<WgpuSetup> {
    let opts = GpuOptions::from_env()?;
    let mut setup = WgpuSetupCreateNew::without_display_handle();
    if let Some(b) = opts.backends {
        setup.instance_descriptor.backends = b;
    }
    if let Some(name) = opts.adapter {
        let wanted = name.to_lowercase();
        setup.native_adapter_selector = Some(Arc::new(move |adapters, _surface| {
            adapters
                .iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
                .cloned()
                .ok_or_else(|| format!("SEQBRIDGE_ADAPTER={name:?} matches no adapter"))
        }));
    }
    setup.device_descriptor = Arc::new(|adapter| {
        let mut desc = seqbridge_gpu::device_descriptor(adapter);
        desc.label = Some("seqbridge-desktop (egui + engine)");
        desc
    });
    Ok(WgpuSetup::CreateNew(setup))
}

/// The engine on the window's device: no second instance, adapter or device.
pub fn engine(render_state: &RenderState) -> Gpu {
    Gpu::from_device(
        Some(&render_state.adapter),
        render_state.device.clone(),
        render_state.queue.clone(),
    )
}

/// eframe's wgpu options with [`wgpu_setup`].
pub fn wgpu_options() -> anyhow::Result<egui_wgpu::WgpuConfiguration> {
    Ok(egui_wgpu::WgpuConfiguration {
        wgpu_setup: wgpu_setup()?,
        ..Default::default()
    })
}

/// The limits that matter to both sides, for the status line and the README's note on
/// a device the app did not create itself.
pub fn describe(device: &wgpu::Device) -> String {
    let l = device.limits();
    format!(
        "max storage binding {} MiB, max buffer {} MiB, workgroup storage {} KiB, features {:?}",
        l.max_storage_buffer_binding_size >> 20,
        l.max_buffer_size >> 20,
        l.max_compute_workgroup_storage_size >> 10,
        device.features()
    )
}
