//! Cross-attention alignment as a terminal grid and as a PNG heatmap with token labels.

use std::path::Path;

use anyhow::{Context, Result, bail};
use font8x8::UnicodeFonts;

/// Attention of each target token over the source tokens, averaged over the heads of one
/// decoder layer: `probs[t][s]`.
#[derive(Clone, Debug)]
pub struct Alignment {
    pub source: Vec<String>,
    pub target: Vec<String>,
    pub probs: Vec<Vec<f32>>,
    /// The decoder layer it was taken from (for captions).
    pub layer: usize,
}

impl Alignment {
    fn check(&self) -> Result<()> {
        if self.probs.len() != self.target.len()
            || self.probs.iter().any(|row| row.len() != self.source.len())
        {
            bail!(
                "alignment of {} target × {} source tokens has a {}-row matrix",
                self.target.len(),
                self.source.len(),
                self.probs.len()
            );
        }
        Ok(())
    }
}

/// The mean over the heads of one layer's probabilities `[heads, t, s]`: t rows of s.
pub(crate) fn head_mean(map: &[f32], heads: usize, t: usize, s: usize) -> Vec<Vec<f32>> {
    (0..t)
        .map(|q| {
            (0..s)
                .map(|k| (0..heads).map(|h| map[(h * t + q) * s + k]).sum::<f32>() / heads as f32)
                .collect()
        })
        .collect()
}

/// Makes a token printable in a grid cell: spaces and control characters become visible.
pub(crate) fn visible(token: &str) -> String {
    let t: String = token
        .chars()
        .map(|c| match c {
            ' ' | '▁' | 'Ġ' => '␣',
            c if c.is_control() => '·',
            c => c,
        })
        .collect();
    if t.is_empty() { "∅".into() } else { t }
}

const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

/// A source × target grid: one row per source token, one two-character column per target
/// token, shaded by probability; target labels are written top-down above their column.
pub fn render_grid(a: &Alignment) -> Result<String> {
    a.check()?;
    let src: Vec<String> = a.source.iter().map(|s| visible(s)).collect();
    let tgt: Vec<Vec<char>> = a
        .target
        .iter()
        .map(|t| visible(t).chars().collect())
        .collect();
    let label_w = src.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let header_h = tgt.iter().map(|t| t.len()).max().unwrap_or(0);
    let mut out = String::new();
    for line in 0..header_h {
        out.push_str(&" ".repeat(label_w + 1));
        for t in &tgt {
            out.push(*t.get(line).unwrap_or(&' '));
            out.push(' ');
        }
        out.push('\n');
    }
    for (s, label) in src.iter().enumerate() {
        out.push_str(&format!("{label:>label_w$} "));
        for row in &a.probs {
            let p = row[s].clamp(0.0, 1.0);
            let shade =
                SHADES[((p * (SHADES.len() - 1) as f32).round() as usize).min(SHADES.len() - 1)];
            out.push(shade);
            out.push(shade);
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "(cross-attention of decoder layer {}, mean over heads; █ = 1, blank = 0)\n",
        a.layer
    ));
    Ok(out)
}

const CELL: u32 = 20;
pub(crate) const GLYPH: u32 = 2; // font scale: 8x8 glyphs drawn at 16x16
const PAD: u32 = 8;

/// "Blues": white at 0 to dark blue at 1.
fn colour(p: f32) -> image::Rgb<u8> {
    let p = p.clamp(0.0, 1.0).powf(0.7);
    let lerp = |a: f32, b: f32| (a + (b - a) * p).round() as u8;
    image::Rgb([lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0)])
}

pub(crate) fn draw_char(img: &mut image::RgbImage, c: char, x: u32, y: u32) {
    // The bitmap font has Latin-1 only: show a space as a middle dot.
    let c = if c == '␣' { '·' } else { c };
    let glyph = font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .unwrap_or(font8x8::BASIC_FONTS.get('?').unwrap_or([0; 8]));
    for (row, bits) in glyph.iter().enumerate() {
        for col in 0..8u32 {
            if bits & (1 << col) != 0 {
                for dy in 0..GLYPH {
                    for dx in 0..GLYPH {
                        let (px, py) = (x + col * GLYPH + dx, y + row as u32 * GLYPH + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, image::Rgb([20, 20, 20]));
                        }
                    }
                }
            }
        }
    }
}

/// Writes the heatmap: source tokens down the left, target tokens across the top (written
/// top-down), one square per pair.
pub fn write_png(a: &Alignment, path: &Path) -> Result<()> {
    a.check()?;
    let char_px = 8 * GLYPH;
    let src: Vec<Vec<char>> = a
        .source
        .iter()
        .map(|s| visible(s).chars().collect())
        .collect();
    let tgt: Vec<Vec<char>> = a
        .target
        .iter()
        .map(|t| visible(t).chars().collect())
        .collect();
    let left = PAD * 2 + src.iter().map(|s| s.len() as u32).max().unwrap_or(0) * char_px;
    let top = PAD * 2 + tgt.iter().map(|t| t.len() as u32).max().unwrap_or(0) * char_px;
    let width = left + CELL * tgt.len() as u32 + PAD;
    let height = top + CELL * src.len() as u32 + PAD;
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    for (s, label) in src.iter().enumerate() {
        let y = top + s as u32 * CELL + (CELL - char_px) / 2;
        let x0 = left - PAD - label.len() as u32 * char_px;
        for (i, &c) in label.iter().enumerate() {
            draw_char(&mut img, c, x0 + i as u32 * char_px, y);
        }
    }
    for (t, label) in tgt.iter().enumerate() {
        let x = left + t as u32 * CELL + (CELL - char_px) / 2;
        let y0 = top - PAD - label.len() as u32 * char_px;
        for (i, &c) in label.iter().enumerate() {
            draw_char(&mut img, c, x, y0 + i as u32 * char_px);
        }
    }
    for (t, row) in a.probs.iter().enumerate() {
        for (s, &p) in row.iter().enumerate() {
            let (x0, y0) = (left + t as u32 * CELL, top + s as u32 * CELL);
            for y in y0..y0 + CELL - 1 {
                for x in x0..x0 + CELL - 1 {
                    img.put_pixel(x, y, colour(p));
                }
            }
        }
    }
    img.save(path)
        .with_context(|| format!("writing the heatmap to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Alignment {
        Alignment {
            source: vec!["a".into(), " ".into(), "bc".into()],
            target: vec!["x".into(), "yz".into()],
            probs: vec![vec![1.0, 0.0, 0.0], vec![0.0, 0.5, 0.5]],
            layer: 1,
        }
    }

    #[test]
    fn grid_shades_follow_probabilities() {
        let g = render_grid(&sample()).unwrap();
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(lines[0], "   x y ");
        assert_eq!(lines[1], "     z ");
        assert_eq!(lines[2], " a ██  ");
        assert_eq!(lines[3], " ␣   ▒▒");
        assert_eq!(lines[4], "bc   ▒▒");
    }

    #[test]
    fn png_has_one_square_per_pair() {
        let dir = std::env::temp_dir().join(format!("seqbridge-align-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.png");
        write_png(&sample(), &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let char_px = 8 * GLYPH;
        let (left, top) = (PAD * 2 + 2 * char_px, PAD * 2 + 2 * char_px);
        assert_eq!(img.width(), left + 2 * CELL + PAD);
        // Target 0 attends fully to source 0: the darkest colour.
        assert_eq!(*img.get_pixel(left + 2, top + 2), colour(1.0));
        assert_eq!(*img.get_pixel(left + CELL + 2, top + 2), colour(0.0));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn mismatched_matrix_is_an_error() {
        let mut a = sample();
        a.probs.pop();
        assert!(render_grid(&a).is_err());
    }
}
