//! `caption --align-png`: the image with each generated token's cross-attention over the
//! patch grid drawn as a heat overlay, one labelled panel per token.
//!
//! The maps come from one teacher-forced pass over the caption (decoder start included, the
//! last token left out): row t is the query that predicted token t + 1. They are the last
//! decoder layer's, averaged over its heads; the mass on the leading tokens (`[CLS]`,
//! DeiT's distillation token) has no place on the image and is left out, and each panel is
//! scaled to its own largest patch so that where a token looks shows even when it looks
//! mostly at `[CLS]`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use image::{RgbImage, imageops};
use seqbridge_models::encoder::PatchGrid;

use crate::align::{GLYPH, draw_char, visible};

/// Longest side of a panel, in pixels.
const PANEL: u32 = 160;
const PAD: u32 = 8;
/// Panels per row of the sheet.
const PER_ROW: usize = 5;
/// Strongest overlay opacity.
const ALPHA: f32 = 0.8;
/// Brightness of the grey picture under the heat.
const DIM: f32 = 0.6;

/// What one image's sheet shows.
pub struct Overlay<'a> {
    /// The decoded image, any size: stretched to the model's input as the processor does.
    pub image: &'a RgbImage,
    pub grid: PatchGrid,
    /// One label per generated token.
    pub tokens: Vec<String>,
    /// A second, smaller line under each token's label, or none at all (empty).
    pub notes: Vec<String>,
    /// Per token, the attention over every encoder position (leading tokens first).
    pub maps: Vec<Vec<f32>>,
}

/// "Hot" colour map: black, red, yellow, white.
fn hot(p: f32) -> [f32; 3] {
    let p = p.clamp(0.0, 1.0);
    [
        (p * 3.0).min(1.0),
        (p * 3.0 - 1.0).clamp(0.0, 1.0),
        (p * 3.0 - 2.0).clamp(0.0, 1.0),
    ]
}

impl Overlay<'_> {
    fn check(&self) -> Result<()> {
        let g = &self.grid;
        let s = g.leading + g.rows * g.cols;
        if self.maps.len() != self.tokens.len()
            || !(self.notes.is_empty() || self.notes.len() == self.tokens.len())
            || self.maps.iter().any(|m| m.len() != s)
        {
            bail!(
                "{} tokens, {} maps, for an encoder of {s} positions",
                self.tokens.len(),
                self.maps.len()
            );
        }
        Ok(())
    }

    /// The panel size: the model's input aspect, longest side [`PANEL`].
    fn panel_size(&self) -> (u32, u32) {
        let (h, w) = self.grid.image;
        let scale = PANEL as f32 / h.max(w) as f32;
        (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        )
    }

    /// The image with `map` (patch probabilities) over it.
    fn panel(&self, base: &RgbImage, map: Option<&[f32]>) -> RgbImage {
        let mut img = base.clone();
        let Some(map) = map else {
            return img;
        };
        let g = &self.grid;
        let patches = &map[g.leading..];
        let max = patches.iter().copied().fold(0f32, f32::max);
        if max <= 0.0 {
            return img;
        }
        let (w, h) = img.dimensions();
        let (ih, iw) = (g.image.0 as f32, g.image.1 as f32);
        for y in 0..h {
            // Pixel centre in the model's input, then its patch; the strip the convolution
            // leaves over (image not a multiple of the patch) gets no colour.
            let py = ((y as f32 + 0.5) * ih / h as f32) as usize / g.patch.0;
            for x in 0..w {
                let px = ((x as f32 + 0.5) * iw / w as f32) as usize / g.patch.1;
                if py >= g.rows || px >= g.cols {
                    continue;
                }
                let p = patches[py * g.cols + px] / max;
                let a = ALPHA * p;
                let c = hot(p);
                let pixel = img.get_pixel_mut(x, y);
                // The picture dimmed to grey underneath, so the heat reads on any colours.
                let [r, gr, b] = pixel.0.map(f32::from);
                let grey = DIM * (0.299 * r + 0.587 * gr + 0.114 * b);
                for (ch, v) in pixel.0.iter_mut().enumerate() {
                    *v = (grey * (1.0 - a) + 255.0 * c[ch] * a).round() as u8;
                }
            }
        }
        img
    }

    /// Draws the sheet: the image alone, then one panel per token, each labelled below.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        self.check()?;
        let (pw, ph) = self.panel_size();
        let base = imageops::resize(self.image, pw, ph, imageops::FilterType::Triangle);
        let char_px = 8 * GLYPH;
        let lines = if self.notes.is_empty() { 1 } else { 2 };
        let label_h = lines * char_px + PAD;
        let panels = 1 + self.tokens.len();
        let cols = panels.min(PER_ROW) as u32;
        let rows = panels.div_ceil(PER_ROW) as u32;
        let (cell_w, cell_h) = (pw + PAD, ph + label_h + PAD);
        let mut sheet = RgbImage::from_pixel(
            PAD + cols * cell_w,
            PAD + rows * cell_h,
            image::Rgb([255, 255, 255]),
        );
        let max_chars = (pw / char_px) as usize;
        for i in 0..panels {
            let (map, label, note) = match i {
                0 => (None, "image".to_string(), String::new()),
                _ => (
                    Some(&self.maps[i - 1][..]),
                    visible(&self.tokens[i - 1]),
                    self.notes.get(i - 1).cloned().unwrap_or_default(),
                ),
            };
            let x0 = PAD + (i % PER_ROW) as u32 * cell_w;
            let y0 = PAD + (i / PER_ROW) as u32 * cell_h;
            imageops::overlay(&mut sheet, &self.panel(&base, map), x0.into(), y0.into());
            for (line, text) in [label, note].iter().enumerate() {
                let text: String = text.chars().take(max_chars).collect();
                let text_w = text.chars().count() as u32 * char_px;
                let lx = x0 + pw.saturating_sub(text_w) / 2;
                let ly = y0 + ph + PAD / 2 + line as u32 * char_px;
                for (k, c) in text.chars().enumerate() {
                    draw_char(&mut sheet, c, lx + k as u32 * char_px, ly);
                }
            }
        }
        sheet
            .save(path)
            .with_context(|| format!("writing the overlay to {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> PatchGrid {
        PatchGrid {
            leading: 1,
            rows: 2,
            cols: 2,
            patch: (5, 5),
            image: (10, 10),
        }
    }

    #[test]
    fn heat_lands_on_the_attended_patch() {
        let img = RgbImage::from_pixel(4, 4, image::Rgb([0, 0, 0]));
        let o = Overlay {
            image: &img,
            grid: grid(),
            tokens: vec!["a".into()],
            notes: Vec::new(),
            // Most mass on [CLS]; of the patches, the bottom-right one.
            maps: vec![vec![0.9, 0.0, 0.0, 0.0, 0.1]],
        };
        let base = RgbImage::from_pixel(10, 10, image::Rgb([0, 0, 0]));
        let p = o.panel(&base, Some(&o.maps[0]));
        assert_eq!(*p.get_pixel(1, 1), image::Rgb([0, 0, 0]));
        assert_eq!(*o.panel(&base, None).get_pixel(8, 8), image::Rgb([0, 0, 0]));
        let hot = p.get_pixel(8, 8).0;
        assert!(hot[0] > 150, "{hot:?}");
        let dir = std::env::temp_dir().join(format!("seqbridge-overlay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("o.png");
        o.write_png(&path).unwrap();
        let sheet = image::open(&path).unwrap().to_rgb8();
        let (pw, ph) = o.panel_size();
        assert_eq!(
            sheet.dimensions(),
            (PAD + 2 * (pw + PAD), PAD + ph + 8 * GLYPH + 2 * PAD)
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn maps_of_the_wrong_size_are_an_error() {
        let img = RgbImage::new(2, 2);
        let o = Overlay {
            image: &img,
            grid: grid(),
            tokens: vec!["a".into()],
            notes: Vec::new(),
            maps: vec![vec![0.5; 4]],
        };
        let e = o.write_png(Path::new("/nonexistent/o.png")).unwrap_err();
        assert!(e.to_string().contains("5 positions"), "{e}");
    }
}
