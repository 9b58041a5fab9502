//! Images for vision encoders, as transformers' `ViTImageProcessor` prepares them from
//! `preprocessor_config.json`: decode (PNG, JPEG) with `image`, convert to RGB, resize with
//! PIL's resampling filters, rescale (`· rescale_factor`), normalise (`(x - mean) / std`),
//! channels first.
//!
//! transformers resizes a `uint8` image through PIL, whose convolution resampler works in
//! fixed point and rounds to `uint8` after each pass; `fast_image_resize`'s convolution
//! resizer does the same, so pixel values agree to a level or so (a naive bilinear
//! interpolation does not: PIL widens the filter by the scale when downsampling).

// Parses what users download: no index may panic on a short or odd file (README, "Guarantees").
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::path::Path;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;
use serde::Deserialize;

use crate::encoder::EncoderInput;
use crate::error::{Error, Result};
use crate::io::json::read_json;

/// The file name of an image processor's settings in a model directory.
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";

/// `size` of an image processor: `{"height": h, "width": w}` (or one number for both).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
enum Size {
    HeightWidth { height: u32, width: u32 },
    Square(u32),
}

/// preprocessor_config.json: the fields `ViTImageProcessor` reads, with its defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
struct Raw {
    image_processor_type: Option<String>,
    do_resize: bool,
    size: Option<Size>,
    resample: u32,
    do_rescale: bool,
    rescale_factor: f64,
    do_normalize: bool,
    image_mean: Option<Vec<f64>>,
    image_std: Option<Vec<f64>>,
    do_center_crop: Option<bool>,
}

impl Default for Raw {
    fn default() -> Raw {
        Raw {
            image_processor_type: None,
            do_resize: true,
            size: None,
            resample: 2,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: None,
            image_std: None,
            do_center_crop: None,
        }
    }
}

/// The image processors whose steps [`ImageProcessor`] reproduces.
const SUPPORTED: &[&str] = &[
    "ViTImageProcessor",
    "ViTImageProcessorFast",
    "ViTFeatureExtractor",
];

/// Pixel values of a batch of images: f32 `[batch, channels, height, width]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Pixels {
    pub data: Vec<f32>,
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Pixels {
    /// The batch as an encoder input.
    pub fn input(&self) -> EncoderInput<'_> {
        EncoderInput::Pixels {
            data: &self.data,
            batch: self.batch,
            channels: self.channels,
            height: self.height,
            width: self.width,
        }
    }
}

/// `ViTImageProcessor`'s steps on the host.
#[derive(Clone, Debug)]
pub struct ImageProcessor {
    /// Target (height, width); `None`: no resize.
    pub size: Option<(u32, u32)>,
    /// PIL's resampling filter code (0 nearest, 1 Lanczos, 2 bilinear, 3 bicubic, 4 box,
    /// 5 Hamming).
    pub resample: u32,
    /// `None`: no rescale.
    pub rescale_factor: Option<f64>,
    /// Per RGB channel (mean, std); `None`: no normalisation.
    pub normalize: Option<[(f64, f64); 3]>,
}

impl ImageProcessor {
    /// Reads `preprocessor_config.json` of `dir`; `None` when the directory has none.
    pub fn from_dir(dir: &Path) -> Result<Option<ImageProcessor>> {
        let path = dir.join(PREPROCESSOR_FILE);
        if !path.exists() {
            return Ok(None);
        }
        ImageProcessor::from_file(&path).map(Some)
    }

    /// Reads a preprocessor_config.json; errors name the file and the key.
    pub fn from_file(path: &Path) -> Result<ImageProcessor> {
        let raw: Raw = read_json(path)?;
        let err = |msg: String| Error::Config {
            path: path.to_path_buf(),
            msg,
        };
        if let Some(t) = &raw.image_processor_type
            && !SUPPORTED.contains(&t.as_str())
        {
            return Err(err(format!(
                "image_processor_type {t:?} is not supported (supported: {})",
                SUPPORTED.join(", ")
            )));
        }
        if raw.do_center_crop == Some(true) {
            return Err(err("do_center_crop true is not supported".into()));
        }
        if raw.resample > 5 {
            return Err(err(format!(
                "resample {} is not a PIL filter (0 to 5)",
                raw.resample
            )));
        }
        let size = match (raw.do_resize, raw.size.unwrap_or(Size::Square(224))) {
            (false, _) => None,
            (true, Size::HeightWidth { height, width }) => Some((height, width)),
            (true, Size::Square(s)) => Some((s, s)),
        };
        if let Some((h, w)) = size
            && (h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE)
        {
            return Err(err(format!("size {h}×{w} is outside 1..={MAX_SIDE}")));
        }
        let channel3 = |key: &str, v: Option<Vec<f64>>| -> Result<[f64; 3]> {
            match v.as_deref() {
                None => Ok([0.5; 3]),
                Some(&[x]) => Ok([x; 3]),
                Some(&[a, b, c]) => Ok([a, b, c]),
                Some(v) => Err(err(format!("{key} has {} values, expected 3", v.len()))),
            }
        };
        let mean = channel3("image_mean", raw.image_mean)?;
        let std = channel3("image_std", raw.image_std)?;
        if let Some(s) = std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
            return Err(err(format!("image_std holds {s}")));
        }
        Ok(ImageProcessor {
            size,
            resample: raw.resample,
            rescale_factor: raw.do_rescale.then_some(raw.rescale_factor),
            normalize: raw
                .do_normalize
                .then(|| [(mean[0], std[0]), (mean[1], std[1]), (mean[2], std[2])]),
        })
    }

    /// Decodes, then preprocesses, every file: one batch, in order. Errors name the file.
    pub fn load<P: AsRef<Path>>(&self, files: &[P]) -> Result<Pixels> {
        let images = files
            .iter()
            .map(|f| decode(f.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        self.batch(&images)
    }

    /// Preprocesses decoded images into one batch (every image to `size`).
    pub fn batch(&self, images: &[DynamicImage]) -> Result<Pixels> {
        if images.is_empty() {
            return Err(Error::Input("no images given".into()));
        }
        let mut data = Vec::new();
        let mut dims = None;
        for (i, img) in images.iter().enumerate() {
            let (h, w, values) = self.preprocess(img)?;
            match dims {
                None => dims = Some((h, w)),
                Some(d) if d != (h, w) => {
                    return Err(Error::Input(format!(
                        "image {i} is {h}×{w}, image 0 {}×{}: without a resize every image must have one size",
                        d.0, d.1
                    )));
                }
                Some(_) => {}
            }
            data.extend(values);
        }
        let (height, width) = dims.unwrap_or((0, 0));
        Ok(Pixels {
            data,
            batch: images.len(),
            channels: 3,
            height,
            width,
        })
    }

    /// One image: (height, width, f32 `[3, height, width]`).
    pub fn preprocess(&self, img: &DynamicImage) -> Result<(usize, usize, Vec<f32>)> {
        let rgb = img.to_rgb8();
        let (w0, h0) = rgb.dimensions();
        if w0 == 0 || h0 == 0 {
            return Err(Error::Input("an image of no pixels".into()));
        }
        let rgb = match self.size {
            Some((h, w)) if (h, w) != (h0, w0) => self.resize(rgb.into_raw(), (w0, h0), (w, h))?,
            _ => rgb.into_raw(),
        };
        let (h, w) = self.size.unwrap_or((h0, w0));
        let (h, w) = (h as usize, w as usize);
        let plane = h * w;
        let mut out = vec![0f32; 3 * plane];
        // As transformers: rescale in f64 then to f32; normalise in f32.
        // Channel c of pixel p (interleaved RGB) goes to plane c at p.
        for (c, dst) in out.chunks_exact_mut(plane.max(1)).enumerate() {
            let norm = self.normalize.as_ref().and_then(|n| n.get(c));
            for (o, &v) in dst.iter_mut().zip(rgb.iter().skip(c).step_by(3)) {
                let mut x = match self.rescale_factor {
                    Some(f) => (v as f64 * f) as f32,
                    None => v as f32,
                };
                if let Some(&(mean, std)) = norm {
                    x = (x - mean as f32) / std as f32;
                }
                *o = x;
            }
        }
        Ok((h, w, out))
    }

    /// RGB8 `src` of (width, height) to `dst` (width, height) with PIL's filter.
    fn resize(&self, src: Vec<u8>, (w0, h0): (u32, u32), (w, h): (u32, u32)) -> Result<Vec<u8>> {
        let alg = match self.resample {
            0 => ResizeAlg::Nearest,
            1 => ResizeAlg::Convolution(FilterType::Lanczos3),
            2 => ResizeAlg::Convolution(FilterType::Bilinear),
            // PIL's bicubic is Keys' cubic with a = -0.5, i.e. Catmull-Rom.
            3 => ResizeAlg::Convolution(FilterType::CatmullRom),
            4 => ResizeAlg::Convolution(FilterType::Box),
            _ => ResizeAlg::Convolution(FilterType::Hamming),
        };
        let resize_err = |e: String| Error::Input(format!("resizing {w0}×{h0} to {w}×{h}: {e}"));
        let src = Image::from_vec_u8(w0, h0, src, PixelType::U8x3)
            .map_err(|e| resize_err(e.to_string()))?;
        let mut dst = Image::new(w, h, PixelType::U8x3);
        Resizer::new()
            .resize(&src, &mut dst, &ResizeOptions::new().resize_alg(alg))
            .map_err(|e| resize_err(e.to_string()))?;
        Ok(dst.into_vec())
    }
}

/// Largest image side a preprocessor may ask for.
const MAX_SIDE: u32 = 1 << 14;

/// Decodes a PNG or JPEG file, turned upright by its EXIF orientation as transformers'
/// `load_image` (and so its image-to-text pipeline) does; errors name the file.
pub fn decode(path: &Path) -> Result<DynamicImage> {
    let err = |msg: String| Error::Io {
        path: path.to_path_buf(),
        msg,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(err("not a PNG or JPEG image".into()));
    }
    let decode_err = |e: image::ImageError| err(format!("cannot decode the image: {e}"));
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let orientation = image::ImageDecoder::orientation(&mut decoder).map_err(decode_err)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    img.apply_orientation(orientation);
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let p = dir.join(PREPROCESSOR_FILE);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn config_defaults_and_errors() {
        let dir = std::env::temp_dir().join(format!("seqbridge-imgproc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = write(&dir, r#"{"size": {"height": 30, "width": 20}}"#);
        let ip = ImageProcessor::from_file(&p).unwrap();
        assert_eq!(ip.size, Some((30, 20)));
        assert_eq!(ip.resample, 2);
        assert_eq!(ip.normalize, Some([(0.5, 0.5); 3]));
        for (text, want) in [
            (r#"{"image_mean": [0.5, 0.5]}"#, "image_mean has 2 values"),
            (r#"{"image_std": [0, 1, 1]}"#, "image_std holds 0"),
            (r#"{"resample": 9}"#, "resample 9"),
            (r#"{"do_center_crop": true}"#, "do_center_crop"),
            (
                r#"{"image_processor_type": "CLIPImageProcessor"}"#,
                "CLIPImageProcessor",
            ),
            (r#"{"size": {"height": 0, "width": 3}}"#, "size 0×3"),
        ] {
            let p = write(&dir, text);
            let e = ImageProcessor::from_file(&p).unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains(PREPROCESSOR_FILE),
                "{text}: {e}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn rescale_and_normalise_channels_first() {
        let ip = ImageProcessor {
            size: None,
            resample: 2,
            rescale_factor: Some(1.0 / 255.0),
            normalize: Some([(0.5, 0.5), (0.0, 1.0), (1.0, 2.0)]),
        };
        let img = image::RgbImage::from_raw(2, 1, vec![255, 0, 51, 0, 255, 102]).unwrap();
        let (h, w, v) = ip.preprocess(&DynamicImage::ImageRgb8(img)).unwrap();
        assert_eq!((h, w), (1, 2));
        let want = [1.0, -1.0, 0.0, 1.0, (0.2 - 1.0) / 2.0, (0.4 - 1.0) / 2.0];
        for (g, w) in v.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{v:?}");
        }
    }

    #[test]
    fn undecodable_file_names_itself() {
        let p = std::env::temp_dir().join(format!("seqbridge-notimg-{}.png", std::process::id()));
        std::fs::write(&p, b"hello").unwrap();
        let e = decode(&p).unwrap_err().to_string();
        assert!(e.contains("seqbridge-notimg"), "{e}");
        std::fs::remove_file(&p).ok();
    }
}
