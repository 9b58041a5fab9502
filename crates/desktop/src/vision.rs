//! The captioning tab: drop (or open) an image, caption it, and show each token's
//! cross-attention over the patch grid as a heat overlay on the image.

use std::path::PathBuf;

use eframe::egui::{self, Color32, Rect, Vec2};

use crate::heatmap::colormap;
use crate::picker::Picker;
use crate::worker::Caption;

#[derive(Default)]
pub struct Vision {
    picker: Picker,
    caption: Option<Caption>,
    texture: Option<egui::TextureHandle>,
    token: usize,
}

impl Vision {
    pub fn set(&mut self, c: Caption) {
        (self.caption, self.texture, self.token) = (Some(c), None, 0);
    }

    pub fn caption(&self) -> Option<&Caption> {
        self.caption.as_ref()
    }

    /// Draws the tab; returns an image to caption when one was dropped or chosen.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        dropped: Option<PathBuf>,
        idle: bool,
    ) -> Option<PathBuf> {
        let hint = "or drop a PNG / JPEG on the window";
        let extensions = &["png", "jpg", "jpeg"];
        let go = self
            .picker
            .row(ui, ("Open image…", hint), "image", extensions, dropped)
            .filter(|_| idle);
        let Some(c) = &self.caption else {
            return go;
        };
        ui.label(egui::RichText::new(&c.text).size(18.0));
        ui.horizontal_wrapped(|ui| {
            for (i, t) in c.tokens.iter().enumerate().take(c.heat.len()) {
                ui.selectable_value(&mut self.token, i, t);
            }
        });
        let texture = self.texture.get_or_insert_with(|| {
            ui.ctx()
                .load_texture("caption image", c.image.clone(), Default::default())
        });
        let aspect = c.image.size[1] as f32 / c.image.size[0].max(1) as f32;
        let width = ui.available_width().min(480.0);
        let (rect, _) =
            ui.allocate_exact_size(Vec2::new(width, width * aspect), egui::Sense::hover());
        let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
        ui.painter().image(texture.id(), rect, uv, Color32::WHITE);
        // The processor stretches the image to the model's input: the grid stretches with it.
        let (rows, cols) = c.grid;
        let cell = rect.size() / Vec2::new(cols as f32, rows as f32);
        if let Some(heat) = c.heat.get(self.token) {
            let max = heat.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
            for (i, &p) in heat.iter().enumerate().take(rows * cols) {
                let (r, k) = (i / cols, i % cols);
                let rgb = colormap(p / max).map(|v| (v * 255.0) as u8);
                let min = rect.min + Vec2::new(k as f32 * cell.x, r as f32 * cell.y);
                let alpha = (150.0 * (p / max).sqrt()) as u8;
                ui.painter().rect_filled(
                    Rect::from_min_size(min, cell),
                    0.0,
                    Color32::from_rgba_unmultiplied(rgb[0], rgb[1], rgb[2], alpha),
                );
            }
        }
        go
    }
}
