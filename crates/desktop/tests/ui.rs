//! Headless UI tests of the real app (egui_kittest, wgpu rendering, no display).

mod common;

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::{SnapshotOptions, try_image_snapshot_options};

use common::{DATE, harness, translate};

#[test]
fn the_engine_runs_on_the_windows_device() {
    let h = harness();
    let (app, rs) = (h.state().app(), &h.state().rs);
    assert!(
        app.gpu().device() == &rs.device,
        "the engine made a device of its own"
    );
    // Asked for the adapter's own limits (wgpu's defaults would cap bindings at 128 MiB).
    let adapter = rs.adapter.limits();
    assert_eq!(
        rs.device.limits().max_storage_buffer_binding_size,
        adapter.max_storage_buffer_binding_size
    );
    assert_eq!(app.gpu().limits().max_buffer_size, adapter.max_buffer_size);
}

/// Type a date, run, wait for the streamed output, and compare the heatmap panel (labels
/// and cells) with tests/snapshots/heatmap_panel.png.
///
/// Tolerance: egui rasterises glyphs on the CPU, so labels can differ between adapters only
/// in how the GPU filters and blends the glyph atlas; the cells are flat colours computed in
/// f32 by the shader and differ by at most a rounding step. kittest's per-pixel threshold is
/// a weighted squared YIQ distance: 0.6 (its default) absorbs one or two levels per channel;
/// a changed weight, layout, colour map or label moves many pixels much further. At most 40
/// of the panel's ~233,000 pixels may exceed it, for glyph edges on other rasterisers.
/// Measured: lavapipe and llvmpipe GL render the panel identically (0 pixels differ).
#[test]
fn translation_streams_and_the_heatmap_matches_its_snapshot() {
    let mut h = harness();
    translate(&mut h, DATE);
    assert_eq!(h.state().app().output, "2026-11-28");
    // Greedy search streamed it token by token: one growing prefix per generated token
    // (EOS adds nothing to the text).
    let streamed = h.state().app().streamed();
    assert!(streamed.len() >= 10, "{streamed:?}");
    assert!(
        streamed.windows(2).all(|w| w[1].starts_with(&w[0])),
        "{streamed:?}"
    );
    assert_eq!(streamed.last().map(String::as_str), Some("2026-11-28"));
    let map = h
        .state()
        .app()
        .map()
        .expect("a heatmap after the translation")
        .clone();
    assert_eq!(map.source_tokens.len(), map.cols());
    assert!(map.rows() >= 10, "{} target rows", map.rows());

    // Hovering a cell names its tokens and weight.
    let at = h.state().app().heatmap_at().expect("the heatmap was drawn");
    // Hovering the strongest cell of the first row names its tokens and weight (after
    // egui's tooltip delay: 4 steps of 0.25 s).
    let last = map.layers.len() - 1;
    let col = (0..map.cols())
        .max_by(|&a, &b| {
            map.weight(last, None, 0, a)
                .total_cmp(&map.weight(last, None, 0, b))
        })
        .unwrap();
    h.hover_at(at.cell_centre(map.rows(), map.cols(), 0, col));
    h.run_steps(4);
    let w = map.weight(last, None, 0, col);
    assert!(w > 0.1, "the first token attends nowhere ({w})");
    h.get_by_label_contains(&format!(
        "source {:?} (#{col})\ntarget {:?} (#0)\nweight {w:.4}",
        map.source_tokens[col], map.target_tokens[0]
    ));

    h.hover_at(egui::pos2(1.0, 1.0));
    h.run_steps(4);
    let image = h.render().expect("render");
    let r = at.panel;
    let crop = image::imageops::crop_imm(
        &image,
        r.min.x as u32,
        r.min.y as u32,
        r.width() as u32,
        r.height() as u32,
    )
    .to_image();
    let opts = SnapshotOptions::new()
        .threshold(0.6)
        .max_failed_pixels(40)
        .output_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"));
    try_image_snapshot_options(&crop, "heatmap_panel", &opts).unwrap();
}
