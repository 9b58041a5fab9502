//! The captioning and speech tabs, driven as a user would: drop a file on the window. The
//! caption and heat maps are the library's for the same image; the words and their times
//! are transformers' for the same clip.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eframe::egui;
use egui_kittest::kittest::Queryable;
use seqbridge_desktop::worker::Family;
use seqbridge_models::{GenerateOptions, Model};

use common::{harness, harness_allowing_tofu, wait_idle};

/// A file dropped on the window, as winit reports one.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/vision")
        .join(p)
}

#[test]
fn a_dropped_image_gets_the_libraries_caption_and_a_heat_map_per_token() {
    let (dir, image) = (fixture("deit-gpt2"), fixture("images/shapes.jpg"));
    let mut h = harness_allowing_tofu();
    h.get_by_label("Captions").click();
    h.run_steps(1);
    h.state_mut().app_mut().load(Family::Vision, dir.clone());
    wait_idle(&mut h);
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(image.clone())));
    h.run_steps(1);
    assert!(
        h.state().app().is_busy(),
        "the drop did not start captioning"
    );
    wait_idle(&mut h);

    let app = h.state().app();
    let c = app.vision().caption().expect("a caption");
    let model = Model::load(&dir, app.gpu()).unwrap();
    let opts = GenerateOptions {
        num_beams: Some(app.num_beams),
        max_new_tokens: Some(app.max_new_tokens),
        ..Default::default()
    };
    let (g, texts) = model.generate_images(&[&image], &opts).unwrap();
    assert_eq!(c.text, texts[0]);
    let generated = g.sequences[0][0].len() - 1;
    assert_eq!(c.heat.len(), generated);
    let (rows, cols) = c.grid;
    for (t, heat) in c.heat.iter().enumerate() {
        assert_eq!(heat.len(), rows * cols, "token {t}");
        // Probabilities over the patches: the leading (class) positions take the rest.
        let sum: f32 = heat.iter().sum();
        assert!(
            heat.iter().all(|&p| p >= 0.0) && sum > 0.0 && sum <= 1.0 + 1e-4,
            "token {t}: {sum}"
        );
    }
    if !c.text.trim().is_empty() {
        h.get_by_label(&c.text);
    }
}

/// whisper-tiny.en from `tools/whisper/fetch_weights.py` (tools/test.sh fetches it first), on
/// the English clip whose words transformers' pipeline gave in token_timestamps.json.
#[test]
fn a_dropped_clip_is_transcribed_word_by_word_as_transformers_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("whisper/token_timestamps.json")).unwrap())
            .unwrap();
    let clip = &reference["models"]["whisper-tiny.en"][0];
    assert_eq!(clip["file"], "en_us.wav");
    let want = clip["greedy"]["words"].as_array().unwrap();

    let mut h = harness();
    h.get_by_label("Speech (Whisper)").click();
    h.run_steps(1);
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(root.join("audio/en_us.wav"))));
    h.run_steps(1);
    assert!(
        h.state().app().is_busy(),
        "the drop did not start transcribing"
    );
    wait_idle(&mut h);

    let (text, words) = h.state().app().speech().transcript();
    let text = text.to_string();
    let got: Vec<_> = words
        .iter()
        .map(|w| (w.word.clone(), w.start, w.end))
        .collect();
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((word, start, end), w) in got.iter().zip(want) {
        assert_eq!(word, w["word"].as_str().unwrap());
        for (g, key) in [(start, "start"), (end, "end")] {
            let r = w[key].as_f64().unwrap() as f32;
            // One 20 ms frame: the alignment's time step.
            assert!((g - r).abs() <= 0.02 + 1e-6, "{word} {key}: {g} vs {r}");
        }
        assert!(
            h.query_all_by_label(word.trim()).next().is_some(),
            "{word} is not on the screen"
        );
    }
    let joined: String = want.iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert_eq!(text.trim(), joined.trim());
}
