//! The inference thread. The UI sends [`Job`]s and polls [`Event`]s; the engine runs here,
//! on the window's device, so a frame never waits for a model. Each event wakes the UI.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use anyhow::{Context, Result};
use eframe::egui;
use seqbridge_gpu::Gpu;
use seqbridge_models::encoder::EncoderInput;
use seqbridge_models::io::audio::load_audio;
use seqbridge_models::io::mel::MelExtractor;
use seqbridge_models::{GenerateOptions, Model, TranscribeOptions};

use crate::heatmap::AttentionMap;

/// The three kinds of model, one per tab; each is loaded on first use and kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Text,
    Speech,
    Vision,
}

pub enum Job {
    /// Loads `dir` as the tab's model (replacing the one it had).
    Load(Family, PathBuf),
    Translate {
        text: String,
        opts: GenerateOptions,
    },
    Transcribe(PathBuf),
    Caption {
        image: PathBuf,
        opts: GenerateOptions,
    },
    /// Ends the thread (sent when the window closes).
    Stop,
}

/// One timed word of a transcript.
#[derive(Clone, Debug)]
pub struct TimedWord {
    pub word: String,
    pub start: f32,
    pub end: f32,
}

/// A caption with, per generated token, its attention over the patch grid (last layer,
/// mean over heads), rows × cols.
pub struct Caption {
    pub text: String,
    pub tokens: Vec<String>,
    pub heat: Vec<Vec<f32>>,
    pub grid: (usize, usize),
    pub image: egui::ColorImage,
}

pub enum Event {
    Loaded {
        family: Family,
        dir: PathBuf,
    },
    /// The text so far, token by token.
    Partial {
        text: String,
        tokens: usize,
    },
    Translated {
        text: String,
        map: Arc<AttentionMap>,
        tokens: usize,
        seconds: f64,
    },
    Transcribed {
        text: String,
        words: Vec<TimedWord>,
        samples: Vec<f32>,
    },
    Captioned(Box<Caption>),
    Failed(String),
}

/// The handle the UI keeps.
pub struct Worker {
    jobs: Sender<Job>,
    pub events: Receiver<Event>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(gpu: Gpu, ctx: egui::Context) -> Worker {
        let (jobs, job_rx) = channel::<Job>();
        let (tx, events) = channel();
        let spawned = std::thread::Builder::new()
            .name("seqbridge-inference".into())
            .spawn(move || {
                let mut state = State::new(gpu);
                for job in job_rx {
                    if matches!(job, Job::Stop) {
                        break;
                    }
                    let send = |e: Event| {
                        // The UI has gone: nothing left to tell.
                        let _ = tx.send(e);
                        ctx.request_repaint();
                    };
                    if let Err(e) = state.run(job, &send) {
                        send(Event::Failed(format!("{e:#}")));
                    }
                }
            });
        let thread = spawned
            .map_err(|e| eprintln!("seqbridge-desktop: cannot start the inference thread: {e}"))
            .ok();
        Worker {
            jobs,
            events,
            thread,
        }
    }

    /// A sender for threads other than the UI's (the file dialog's).
    pub fn sender(&self) -> Sender<Job> {
        self.jobs.clone()
    }

    pub fn send(&self, job: Job) {
        if self.jobs.send(job).is_err() {
            eprintln!("seqbridge-desktop: the inference thread has stopped");
        }
    }
}

/// Stops the thread after its current job and waits for it: its models and its handle on
/// the device are dropped there and then, not while the window tears the device down on
/// another thread (on GL, two threads dropping the context race in wgpu-hal's EGL code).
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.jobs.send(Job::Stop);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("seqbridge-desktop: the inference thread panicked");
        }
    }
}

/// The date normaliser shipped in `assets/`: from the working directory when run from the
/// repository, else where this crate was built from.
pub fn shipped_model() -> PathBuf {
    let here = Path::new("assets/date-normalizer");
    if here.join("config.json").exists() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/date-normalizer")
}

/// Where `tools/whisper/fetch_weights.py` puts whisper-tiny.en.
fn default_whisper() -> PathBuf {
    let root = std::env::var_os("SEQBRIDGE_WHISPER_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/seqbridge/whisper"))
        })
        .unwrap_or_default();
    root.join("whisper-tiny.en-ct2")
}

struct State {
    gpu: Gpu,
    text: Option<Model>,
    speech: Option<(Model, MelExtractor)>,
    vision: Option<Model>,
}

impl State {
    fn new(gpu: Gpu) -> State {
        State {
            gpu,
            text: None,
            speech: None,
            vision: None,
        }
    }

    fn run(&mut self, job: Job, send: &dyn Fn(Event)) -> Result<()> {
        match job {
            Job::Load(family, dir) => self.load(family, &dir, send),
            Job::Translate { text, opts } => self.translate(&text, &opts, send),
            Job::Transcribe(path) => self.transcribe(&path, send),
            Job::Caption { image, opts } => self.caption(&image, &opts, send),
            Job::Stop => Ok(()),
        }
    }

    fn load(&mut self, family: Family, dir: &Path, send: &dyn Fn(Event)) -> Result<()> {
        let model =
            Model::load(dir, &self.gpu).with_context(|| format!("loading {}", dir.display()))?;
        match family {
            Family::Text => self.text = Some(model),
            Family::Vision => self.vision = Some(model),
            Family::Speech => {
                let mel = model.mel_extractor()?;
                self.speech = Some((model, mel));
            }
        }
        send(Event::Loaded {
            family,
            dir: dir.to_path_buf(),
        });
        Ok(())
    }

    fn translate(
        &mut self,
        text: &str,
        opts: &GenerateOptions,
        send: &dyn Fn(Event),
    ) -> Result<()> {
        if self.text.is_none() {
            self.load(Family::Text, &shipped_model(), send)?;
        }
        let model = self.text.as_ref().context("no text model")?;
        let tok = model.require_tokenizer()?;
        let source = tok.encode(text)?;
        let start = Instant::now();
        let mut ids = Vec::new();
        let mut on_token = |_source: usize, id: u32| {
            ids.push(id);
            if let Ok(text) = tok.decode(&ids) {
                send(Event::Partial {
                    text,
                    tokens: ids.len(),
                });
            }
        };
        let g = model.generate_with(std::slice::from_ref(&source), opts, &mut on_token)?;
        let seconds = start.elapsed().as_secs_f64();
        let seq = g
            .sequences
            .first()
            .and_then(|h| h.first())
            .context("no sequence generated")?;
        let out = tok.decode(seq)?;
        // Row t of the map is the query that chose token t + 1: feed all but the last token.
        let dec_in = &seq[..seq.len().saturating_sub(1).max(1)];
        let layers = model.cross_attention_tensors(
            &EncoderInput::Tokens(std::slice::from_ref(&source)),
            dec_in,
        )?;
        let host = layers
            .iter()
            .map(|t| t.to_vec_f32())
            .collect::<seqbridge_gpu::Result<Vec<_>>>()?;
        let heads = layers.first().map_or(1, |t| t.shape()[1]);
        let map = AttentionMap {
            layers,
            host,
            heads,
            // One label per row: the token that row's query chose.
            target_tokens: (1..=dec_in.len())
                .map(|i| seq.get(i).map_or(String::new(), |&id| tok.target_token(id)))
                .collect(),
            source_tokens: source.iter().map(|&id| tok.token(id)).collect(),
        };
        send(Event::Translated {
            text: out,
            map: Arc::new(map),
            tokens: seq.len() - 1,
            seconds,
        });
        Ok(())
    }

    fn transcribe(&mut self, path: &Path, send: &dyn Fn(Event)) -> Result<()> {
        if self.speech.is_none() {
            self.load(Family::Speech, &default_whisper(), send)
                .context(
                    "no Whisper model: choose one, or run python3 tools/whisper/fetch_weights.py",
                )?;
        }
        let (model, mel) = self.speech.as_ref().context("no Whisper model")?;
        let samples = load_audio(path).with_context(|| format!("reading {}", path.display()))?;
        let opts = TranscribeOptions {
            word_timestamps: true,
            ..Default::default()
        };
        let t = model.transcribe(&samples, mel, &opts)?;
        let words = t
            .words
            .unwrap_or_default()
            .into_iter()
            .map(|w| TimedWord {
                word: w.word,
                start: w.start,
                end: w.end,
            })
            .collect();
        send(Event::Transcribed {
            text: t.text,
            words,
            samples,
        });
        Ok(())
    }

    fn caption(
        &mut self,
        image: &Path,
        opts: &GenerateOptions,
        send: &dyn Fn(Event),
    ) -> Result<()> {
        let model = self
            .vision
            .as_ref()
            .context("no captioning model: choose a model directory first")?;
        let grid = model.patch_grid().context("not an image model")?;
        let tok = model.require_tokenizer()?;
        let pixels = model.load_images(&[image])?;
        let input = pixels.input();
        let g = model.generate_input(&input, opts, &mut |_, _| {})?;
        let seq = g
            .sequences
            .first()
            .and_then(|h| h.first())
            .context("no caption generated")?;
        let dec_in = &seq[..seq.len().saturating_sub(1).max(1)];
        let layers = model.cross_attentions_input(&input, dec_in)?;
        let last = layers.last().context("a decoder without layers")?;
        let (t, s) = (dec_in.len(), grid.leading + grid.rows * grid.cols);
        let heads = last.len() / (t * s).max(1);
        // Per token, the mean over heads of its attention to each patch (leading tokens off).
        let heat = (0..t)
            .map(|q| {
                (grid.leading..s)
                    .map(|k| {
                        (0..heads).map(|h| last[(h * t + q) * s + k]).sum::<f32>()
                            / heads.max(1) as f32
                    })
                    .collect()
            })
            .collect();
        let rgba = image::open(image)
            .with_context(|| format!("reading {}", image.display()))?
            .to_rgba8();
        let size = [rgba.width() as usize, rgba.height() as usize];
        send(Event::Captioned(Box::new(Caption {
            text: tok.decode(seq)?,
            tokens: seq[1..].iter().map(|&id| tok.target_token(id)).collect(),
            heat,
            grid: (grid.rows, grid.cols),
            image: egui::ColorImage::from_rgba_unmultiplied(size, rgba.as_raw()),
        })));
        Ok(())
    }
}
