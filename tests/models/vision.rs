//! The tiny ViT / DeiT + GPT-2 / TrOCR `VisionEncoderDecoderModel`s of
//! tests/fixtures/vision against transformers' outputs stored by
//! tools/vision/make_fixtures.py: the image processor on PNG and JPEG files, the encoder's
//! states, greedy and beam search over batches of images, teacher-forced log-probabilities,
//! cross-attention probabilities, and captions end to end from the files.

use std::path::PathBuf;
use std::sync::OnceLock;

use seqbridge::models::encoder::EncoderInput;
use seqbridge::models::{GenerateOptions, Model};
use serde_json::Value;

use crate::common::{Fixture, assert_close, fixture_in, floats, gpu, id_lists, options};

/// Log-probabilities and beam scores; encoder states (absolute, relative); attention
/// probabilities.
const LOGPROB_TOL: f32 = 1e-3;
const STATE_TOL: (f32, f32) = (1e-4, 1e-4);
const PROB_TOL: f32 = 1e-4;
/// Pixel values before normalisation: within 2 levels of 255 of PIL's.
const PIXEL_TOL: f32 = 2.0 / 255.0;
/// Every fixture.
const FIXTURES: [&str; 4] = ["vit-gpt2", "deit-gpt2", "deit-trocr", "vit-trocr"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vision")
}

fn model_dir(name: &str) -> PathBuf {
    fixture_in(&root(), name, "tools/vision/make_fixtures.py")
}

/// Every fixture, loaded once per test binary.
fn fixture(name: &str) -> &'static Fixture {
    static ALL: OnceLock<Vec<Fixture>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        FIXTURES
            .iter()
            .map(|n| Fixture::load(&model_dir(n)))
            .collect()
    });
    &all[FIXTURES.iter().position(|n| *n == name).expect("a fixture")]
}

fn image_files(r: &Value) -> Vec<PathBuf> {
    r["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|f| root().join("images").join(f.as_str().expect("file name")))
        .collect()
}

/// transformers' pixel values of the images `rows` (indices into `images`), one batch.
fn reference_pixels(r: &Value, rows: &[usize]) -> (Vec<f32>, [usize; 3]) {
    let shape = floats(&r["pixel_shape"]);
    let shape = [shape[0] as usize, shape[1] as usize, shape[2] as usize];
    let names = r["images"].as_array().expect("images");
    let mut data = Vec::new();
    for &i in rows {
        let name = names[i].as_str().expect("file name");
        data.extend(floats(&r["pixel_values"][name]));
    }
    (data, shape)
}

fn pixel_input(data: &[f32], [c, h, w]: [usize; 3]) -> EncoderInput<'_> {
    EncoderInput::Pixels {
        data,
        batch: data.len() / (c * h * w),
        channels: c,
        height: h,
        width: w,
    }
}

fn indices(v: &Value) -> Vec<usize> {
    floats(v).iter().map(|x| *x as usize).collect()
}

#[test]
fn vision_pixel_values_match_pil() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let proc = model.image_processor().expect("preprocessor_config.json");
        let norm = proc.normalize.expect("do_normalize");
        for (i, file) in image_files(r).iter().enumerate() {
            let got = model.load_images(&[file]).unwrap_or_else(|e| panic!("{e}"));
            let (want, shape) = reference_pixels(r, &[i]);
            assert_eq!([got.channels, got.height, got.width], shape, "{file:?}");
            // Back to [0, 1] per channel, where the tolerance is in levels of 255.
            let plane = shape[1] * shape[2];
            let unnorm = |v: &[f32]| -> Vec<f32> {
                v.iter()
                    .enumerate()
                    .map(|(k, x)| {
                        let (mean, std) = norm[k / plane];
                        x * std as f32 + mean as f32
                    })
                    .collect()
            };
            assert_close(
                &format!("{name}: pixels {}", file.display()),
                &unnorm(&got.data),
                &unnorm(&want),
                PIXEL_TOL + 1e-6,
                0.0,
            );
        }
    }
}

#[test]
fn vision_batch_of_files_is_the_files_one_by_one() {
    let Fixture { r, model } = fixture("vit-gpt2");
    let files = image_files(r);
    let all = model.load_images(&files).expect("batch");
    assert_eq!(all.batch, files.len());
    let per = all.data.len() / all.batch;
    for (i, f) in files.iter().enumerate() {
        let one = model.load_images(&[f]).expect("one");
        assert_eq!(&all.data[i * per..(i + 1) * per], &one.data[..], "{f:?}");
    }
}

#[test]
fn vision_encoder_states() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let (data, shape) = reference_pixels(r, &[0, 1, 2]);
        let (got, dims) = model
            .encoder_states(&pixel_input(&data, shape))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(dims.to_vec(), indices(&r["encoder_states_shape"]), "{name}");
        assert_close(
            &format!("{name}: encoder states"),
            &got,
            &floats(&r["encoder_states"]),
            STATE_TOL.0,
            STATE_TOL.1,
        );
    }
}

#[test]
fn vision_generate_greedy_and_beams() {
    for fixture_name in FIXTURES {
        let Fixture { r, model } = fixture(fixture_name);
        let cases = r["generate"].as_array().expect("generate cases");
        assert!(cases.len() >= 4, "{fixture_name}: {} cases", cases.len());
        for case in cases {
            let name = format!("{fixture_name}/{}", case["name"].as_str().unwrap_or("?"));
            let (data, shape) = reference_pixels(r, &indices(&case["images"]));
            let opts = options(&case["kwargs"]);
            let out = model
                .generate_input(&pixel_input(&data, shape), &opts, &mut |_, _| {})
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let got: Vec<Vec<u32>> = out.sequences.iter().flatten().cloned().collect();
            assert_eq!(got, id_lists(&case["sequences"]), "{name}: sequences");
            if let Some(scores) = case.get("sequences_scores") {
                let got: Vec<f32> = out.scores.expect("beam scores").concat();
                assert_close(
                    &format!("{name}: sequences_scores"),
                    &got,
                    &floats(scores),
                    LOGPROB_TOL,
                    0.0,
                );
            }
        }
    }
}

/// One encoder run per batch of images, cross K/V once per layer, one submit for the
/// encoder and one per step, no weights uploaded during the call.
#[test]
fn vision_stats() {
    // Its own GPU context: the counters are per context, and other tests run in parallel
    // on the shared one.
    let gpu = seqbridge::gpu::Gpu::new().expect("a GPU adapter");
    let m = Model::load(model_dir("vit-gpt2"), &gpu).unwrap_or_else(|e| panic!("{e}"));
    let (data, shape) = reference_pixels(&fixture("vit-gpt2").r, &[0, 1, 2]);
    for beams in [1, 4] {
        let opts = GenerateOptions {
            num_beams: Some(beams),
            max_new_tokens: Some(6),
            ..Default::default()
        };
        let s = m
            .generate_input(&pixel_input(&data, shape), &opts, &mut |_, _| {})
            .unwrap_or_else(|e| panic!("{e}"))
            .stats;
        assert_eq!(s.encoder_runs, 1, "beams {beams}");
        assert_eq!(s.cross_kv_computes, m.config().decoder_layers as u64);
        assert_eq!(s.submits, s.decoder_steps + 1, "beams {beams}: {s:?}");
        assert_eq!(s.weight_bytes_uploaded, 0, "beams {beams}");
    }
}

#[test]
fn vision_logprobs() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let seqs = id_lists(&r["score"]["sequences"]);
        let targets: Vec<Vec<u32>> = seqs.iter().map(|s| s[1..].to_vec()).collect();
        let (data, shape) = reference_pixels(r, &[0, 1, 2]);
        let out = model
            .score_input(&pixel_input(&data, shape), &targets)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = r["score"]["logprobs"].as_array().expect("logprobs");
        assert_eq!(out.logprobs.len(), want.len(), "{name}");
        for (i, (g, w)) in out.logprobs.iter().zip(want).enumerate() {
            let case = format!("{name}: logprobs image {i}");
            assert_close(&case, g, &floats(w), LOGPROB_TOL, 0.0);
        }
    }
}

#[test]
fn vision_cross_attentions() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let ca = &r["cross_attentions"];
        let image = ca["image"].as_u64().expect("image") as usize;
        let (data, shape) = reference_pixels(r, &[image]);
        let ids = id_lists(&ca["decoder_input_ids"]).remove(0);
        let got = model
            .cross_attentions_input(&pixel_input(&data, shape), &ids)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let layers = ca["layers"].as_array().expect("layers");
        assert_eq!(got.len(), layers.len(), "{name}: layers");
        for (l, (g, w)) in got.iter().zip(layers).enumerate() {
            let case = format!("{name}: cross-attention layer {l}");
            assert_close(&case, g, &floats(w), PROB_TOL, 0.0);
        }
    }
}

#[test]
fn vision_captions_from_files() {
    for name in FIXTURES {
        let Fixture { r, model } = fixture(name);
        let greedy = &r["generate"][0];
        assert_eq!(greedy["name"], "greedy_batch3");
        let (g, captions) = model
            .generate_images(&image_files(r), &options(&greedy["kwargs"]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<Vec<u32>> = g.sequences.iter().map(|h| h[0].clone()).collect();
        let want = id_lists(&greedy["sequences"]);
        assert_eq!(got, want, "{name}: sequences from the files");
        let want: Vec<&str> = r["captions"]
            .as_array()
            .expect("captions")
            .iter()
            .map(|c| c.as_str().expect("caption"))
            .collect();
        assert_eq!(captions, want, "{name}");
    }
}

#[test]
fn vision_input_errors_are_named() {
    let m = &fixture("vit-gpt2").model;
    let data = vec![0f32; 3 * 20 * 20];
    let e = m
        .generate_input(
            &pixel_input(&data, [3, 20, 20]),
            &GenerateOptions::default(),
            &mut |_, _| {},
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("× 20 × 20") && e.contains("3 × 30 × 30"), "{e}");
    let e = m
        .generate(&[vec![1, 2]], &GenerateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("pixel values"), "{e}");
    let two = vec![0f32; 2 * 3 * 30 * 30];
    let e = m
        .cross_attentions_input(&pixel_input(&two, [3, 30, 30]), &[320])
        .unwrap_err()
        .to_string();
    assert!(e.contains("one source at a time, 2 given"), "{e}");
    let missing = root().join("images/absent.png");
    let e = m.load_images(&[&missing]).unwrap_err().to_string();
    assert!(e.contains("absent.png"), "{e}");
}

/// A text model whose directory holds some other preprocessor_config.json (a feature
/// extractor's, or a processor this crate does not read) still loads: only image models
/// read it.
#[test]
fn vision_processor_only_for_image_models() {
    let src = crate::common::fixture_dir("marian");
    let tmp = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(&src).expect("marian fixture") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, tmp.path().join(path.file_name().expect("name"))).unwrap();
        }
    }
    let odd =
        r#"{"feature_extractor_type": "WhisperFeatureExtractor", "size": {"shortest_edge": 224}}"#;
    std::fs::write(tmp.path().join("preprocessor_config.json"), odd).unwrap();
    let m = Model::load(tmp.path(), gpu()).unwrap_or_else(|e| panic!("{e}"));
    assert!(m.image_processor().is_none() && m.patch_grid().is_none());
    let e = m
        .load_images(&image_files(&fixture("vit-gpt2").r))
        .unwrap_err();
    assert!(e.to_string().contains("no image processor"), "{e}");
}

/// Weights in row chunks of at most 1 KiB (the patch projection, GPT-2's transposed Conv1D
/// weights, the fused cross K/V of both layers, the tied output projection): the path large
/// vocabularies take on small bindings gives the same sequences.
#[test]
fn vision_chunked_weights() {
    let r = &fixture("vit-gpt2").r;
    let opts = seqbridge::models::LoadOptions {
        max_chunk_bytes: Some(1024),
        ..Default::default()
    };
    let m = Model::load_with(model_dir("vit-gpt2"), gpu(), &opts).unwrap_or_else(|e| panic!("{e}"));
    for case in r["generate"].as_array().expect("cases") {
        let (data, shape) = reference_pixels(r, &indices(&case["images"]));
        let out = m
            .generate_input(
                &pixel_input(&data, shape),
                &options(&case["kwargs"]),
                &mut |_, _| {},
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<Vec<u32>> = out.sequences.iter().flatten().cloned().collect();
        assert_eq!(got, id_lists(&case["sequences"]), "{}", case["name"]);
    }
}

/// A JPEG stored with EXIF orientation 6 decodes upright (rotated 90° clockwise), as
/// transformers' `load_image` turns it: the same pixels as the plain file, rotated.
#[test]
fn vision_exif_orientation_is_applied() {
    use seqbridge::models::io::image::decode;
    let plain = decode(&root().join("images/shapes.jpg")).expect("shapes.jpg");
    let rotated = decode(&root().join("images/rotated.jpg")).expect("rotated.jpg");
    assert_eq!((plain.width(), plain.height()), (64, 48));
    assert_eq!(rotated.to_rgb8(), plain.rotate90().to_rgb8());
}
