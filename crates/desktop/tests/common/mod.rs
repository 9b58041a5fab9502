//! The app in a headless kittest harness, on a wgpu device made as the real window makes it
//! (`device::wgpu_setup`: lavapipe by default here, llvmpipe GL with SEQBRIDGE_BACKEND=gl).

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use eframe::egui;
use eframe::egui_wgpu::{self, RenderState};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use egui_kittest::wgpu::{WgpuTestRenderer, create_render_state};
use seqbridge_desktop::App;

pub const DATE: &str = "Saturday, 28 November 2026";

/// The app and the render state it was built on.
pub struct Ui {
    pub rs: RenderState,
    pub app: Option<App>,
}

impl Ui {
    pub fn app(&self) -> &App {
        self.app.as_ref().expect("the first frame built the app")
    }
    pub fn app_mut(&mut self) -> &mut App {
        self.app.as_mut().expect("the first frame built the app")
    }
}

pub fn harness() -> Harness<'static, Ui> {
    harness_with(Harness::builder())
}

/// For the fixtures' random models, whose text holds U+FFFD (cut UTF-8), which egui's
/// bundled fonts draw as tofu: kittest fails on a missing glyph unless told otherwise.
pub fn harness_allowing_tofu() -> Harness<'static, Ui> {
    harness_with(Harness::builder().allow_missing_glyphs())
}

fn harness_with(builder: egui_kittest::HarnessBuilder<Ui>) -> Harness<'static, Ui> {
    let setup = seqbridge_desktop::device::wgpu_setup().expect("SEQBRIDGE_BACKEND is valid");
    let rs = create_render_state(setup, egui_wgpu::RendererOptions::PREDICTABLE);
    let renderer = WgpuTestRenderer::from_render_state(rs.clone());
    let mut h = builder
        .with_size([900.0, 640.0])
        .renderer(renderer)
        .build_ui_state(
            |ui, s: &mut Ui| {
                // Built on the first frame, where the harness's context is at hand.
                let rs = s.rs.clone();
                s.app
                    .get_or_insert_with(|| App::on_render_state(&rs, ui.ctx()))
                    .show(ui);
            },
            Ui { rs, app: None },
        );
    h.run_steps(1);
    h
}

/// Types `text` into the text box as a user would, presses Translate, and steps frames
/// until the worker is done.
pub fn translate(h: &mut Harness<'static, Ui>, text: &str) {
    h.state_mut().app_mut().input.clear();
    h.run_steps(1);
    let edit = h.get_by_role(egui::accesskit::Role::TextInput);
    edit.focus();
    edit.type_text(text);
    h.run_steps(1);
    assert_eq!(h.state().app().input, text);
    h.get_by_label("Translate").click();
    h.run_steps(1);
    assert!(h.state().app().is_busy(), "Translate did not start a job");
    wait_idle(h);
}

/// Steps frames until the worker's job is over (and it did not fail), then two more: the
/// result's first frame, and one for a stable layout.
pub fn wait_idle(h: &mut Harness<'static, Ui>) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while h.state().app().is_busy() {
        assert!(Instant::now() < deadline, "no result after 300 s");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(h.state().app().error(), None);
    h.run_steps(2);
}
