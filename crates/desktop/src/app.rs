//! The window: a tab per model family, a status line, and the heatmap panel. The engine
//! runs on the window's own wgpu device ([`crate::device::engine`]) in the worker thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{self, RichText};
use eframe::egui_wgpu::RenderState;
use seqbridge_gpu::Gpu;
use seqbridge_models::GenerateOptions;

use crate::frames::FrameTimes;
use crate::heatmap::{self, AttentionMap, Placement};
use crate::smoke::Smoke;
use crate::speech::Speech;
use crate::vision::Vision;
use crate::worker::{Event, Family, Job, Worker, shipped_model};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Text,
    Speech,
    Vision,
}

/// Work in flight, for the progress indicator.
pub struct Busy {
    pub what: String,
    pub started: Instant,
    pub tokens: usize,
}

pub struct App {
    gpu: Gpu,
    worker: Worker,
    tab: Tab,
    pub input: String,
    pub output: String,
    pub num_beams: usize,
    pub max_new_tokens: usize,
    map: Option<Arc<AttentionMap>>,
    layer: usize,
    /// `None`: the mean over heads.
    head: Option<usize>,
    models: [Option<PathBuf>; 3],
    busy: Option<Busy>,
    tokens_per_s: Option<f64>,
    /// Partial outputs received during the current or last job (one per streamed token).
    streamed: Vec<String>,
    error: Option<String>,
    heatmap_at: Option<Placement>,
    speech: Speech,
    vision: Vision,
    frames: FrameTimes,
    smoke: Option<Smoke>,
}

impl App {
    /// Builds the app on eframe's render state (see [`App::on_render_state`]).
    pub fn new(cc: &eframe::CreationContext<'_>) -> anyhow::Result<App> {
        let rs = cc
            .wgpu_render_state
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("eframe was not started with its wgpu renderer"))?;
        Ok(App::on_render_state(rs, &cc.egui_ctx))
    }

    /// Builds the app on a wgpu render state: the engine gets the same device and queue,
    /// and the heatmap pipeline is registered with egui's renderer. `ctx` is woken by the
    /// worker's events.
    pub fn on_render_state(rs: &RenderState, ctx: &egui::Context) -> App {
        let gpu = crate::device::engine(rs);
        eprintln!(
            "seqbridge-desktop: {} ({}), {}",
            gpu.adapter().name,
            gpu.adapter().backend,
            crate::device::describe(&rs.device)
        );
        heatmap::install(rs);
        let worker = Worker::spawn(gpu.clone(), ctx.clone());
        App {
            gpu,
            worker,
            tab: Tab::Text,
            input: "Saturday, 28 November 2026".into(),
            output: String::new(),
            num_beams: 1,
            max_new_tokens: 32,
            map: None,
            layer: usize::MAX,
            head: None,
            models: [Some(shipped_model()), None, None],
            busy: None,
            tokens_per_s: None,
            streamed: Vec::new(),
            error: None,
            heatmap_at: None,
            speech: Speech::default(),
            vision: Vision::default(),
            frames: FrameTimes::default(),
            smoke: None,
        }
    }

    /// Runs the scripted smoke test (see [`Smoke`]).
    pub fn with_smoke(mut self, smoke: Smoke) -> App {
        self.smoke = Some(smoke);
        self
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }
    pub fn map(&self) -> Option<&Arc<AttentionMap>> {
        self.map.as_ref()
    }
    /// Where the heatmap was drawn in the last frame.
    pub fn heatmap_at(&self) -> Option<Placement> {
        self.heatmap_at
    }
    /// The output as it streamed in, one entry per token, for the last job.
    pub fn streamed(&self) -> &[String] {
        &self.streamed
    }
    pub fn is_busy(&self) -> bool {
        self.busy.is_some()
    }
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    pub fn frames(&self) -> &FrameTimes {
        &self.frames
    }
    /// The layer and head the heatmap shows.
    pub fn selection(&self) -> (usize, Option<usize>) {
        (self.layer, self.head)
    }
    pub fn select(&mut self, layer: usize, head: Option<usize>) {
        (self.layer, self.head) = (layer, head);
    }

    /// Starts translating the text box.
    pub fn run(&mut self) {
        self.output.clear();
        let (text, opts) = (self.input.clone(), self.options());
        self.start("translating", Job::Translate { text, opts });
    }

    /// Loads `dir` as the model of `family`'s tab (the "Choose…" button does the same).
    pub fn load(&mut self, family: Family, dir: PathBuf) {
        self.start("loading", Job::Load(family, dir));
    }

    pub fn vision(&self) -> &Vision {
        &self.vision
    }

    pub fn speech(&self) -> &Speech {
        &self.speech
    }

    /// Starts transcribing `file` (the Speech tab's drop does the same).
    pub fn transcribe(&mut self, file: PathBuf) {
        self.tab = Tab::Speech;
        self.start("transcribing", Job::Transcribe(file));
    }

    /// The beams and token budget set in the Text tab (captions use them too).
    fn options(&self) -> GenerateOptions {
        GenerateOptions {
            num_beams: Some(self.num_beams),
            max_new_tokens: Some(self.max_new_tokens),
            ..Default::default()
        }
    }

    fn start(&mut self, what: &str, job: Job) {
        self.error = None;
        self.streamed.clear();
        self.busy = Some(Busy {
            what: what.into(),
            started: Instant::now(),
            tokens: 0,
        });
        self.worker.send(job);
    }

    fn poll(&mut self) {
        while let Ok(event) = self.worker.events.try_recv() {
            match event {
                Event::Loaded { family, dir } => {
                    self.models[family as usize] = Some(dir);
                    if self.busy.as_ref().is_some_and(|b| b.what == "loading") {
                        self.finish();
                    }
                }
                Event::Partial { text, tokens } => {
                    self.streamed.push(text.clone());
                    self.output = text;
                    if let Some(b) = &mut self.busy {
                        b.tokens = tokens;
                    }
                }
                Event::Translated {
                    text,
                    map,
                    tokens,
                    seconds,
                } => {
                    self.output = text;
                    self.tokens_per_s = Some(tokens as f64 / seconds.max(1e-9));
                    if self.layer >= map.layers.len() {
                        self.layer = map.layers.len().saturating_sub(1);
                    }
                    if self.head.is_some_and(|h| h >= map.heads) {
                        self.head = None;
                    }
                    self.map = Some(map);
                    self.finish();
                }
                Event::Transcribed {
                    text,
                    words,
                    samples,
                } => {
                    self.speech
                        .set(text, words, samples.len() as f32 / 16_000.0);
                    self.tokens_per_s = None;
                    self.finish();
                }
                Event::Captioned(c) => {
                    self.vision.set(*c);
                    self.finish();
                }
                Event::Failed(e) => {
                    self.error = Some(e);
                    self.finish();
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.busy.take() {
            self.frames.end_job(&b.what, b.started.elapsed());
        }
    }

    fn pick_model(&self, family: Family) {
        let jobs = self.worker.sender();
        // The portal dialog blocks its caller: keep it off the UI thread.
        let spawned = std::thread::Builder::new()
            .name("model-dialog".into())
            .spawn(move || {
                if let Some(dir) = rfd::FileDialog::new()
                    .set_title("Choose a model directory")
                    .pick_folder()
                {
                    let _ = jobs.send(Job::Load(family, dir));
                }
            });
        if let Err(e) = spawned {
            eprintln!("seqbridge-desktop: cannot open the file dialog: {e}");
        }
    }

    fn status_line(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let a = self.gpu.adapter();
            ui.label(format!("{} · {}", a.name, a.backend));
            ui.separator();
            match self.tokens_per_s {
                Some(r) => ui.label(format!("{r:.1} tokens/s")),
                None => ui.label("– tokens/s"),
            };
            ui.separator();
            let mib = self.gpu.stats().bytes_allocated as f64 / (1 << 20) as f64;
            ui.label(format!("GPU memory {mib:.1} MiB"));
            ui.separator();
            ui.label(self.frames.summary());
            if let Some(b) = &self.busy {
                ui.separator();
                ui.spinner();
                let t = b.started.elapsed().as_secs_f32();
                ui.label(format!("{} {:.1} s", b.what, t));
            }
        });
    }

    fn model_row(&mut self, ui: &mut egui::Ui, family: Family) {
        ui.horizontal(|ui| {
            let name = self.models[family as usize]
                .as_ref()
                .map_or("none".into(), |d| d.display().to_string());
            ui.label(format!("Model: {name}"));
            if ui.button("Choose…").clicked() {
                self.pick_model(family);
            }
        });
    }

    fn text_tab(&mut self, ui: &mut egui::Ui) {
        self.model_row(ui, Family::Text);
        ui.horizontal(|ui| {
            let l = ui.label("Beams");
            ui.add(egui::DragValue::new(&mut self.num_beams).range(1..=8))
                .labelled_by(l.id);
            let l = ui.label("Max new tokens");
            ui.add(egui::DragValue::new(&mut self.max_new_tokens).range(1..=256))
                .labelled_by(l.id);
        });
        let edit = ui.add(
            egui::TextEdit::singleline(&mut self.input)
                .hint_text("a date, e.g. le 3 mars 1999 à 14h05")
                .desired_width(f32::INFINITY),
        );
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let run = ui.add_enabled(self.busy.is_none(), egui::Button::new("Translate"));
        if (run.clicked() || enter) && self.busy.is_none() {
            self.run();
        }
        if let Some(b) = &self.busy {
            let frac = b.tokens as f32 / self.max_new_tokens.max(1) as f32;
            ui.add(egui::ProgressBar::new(frac.min(1.0)).text(format!("{} tokens", b.tokens)));
        }
        ui.label(RichText::new(&self.output).monospace().size(18.0));
        ui.separator();
        let Some(map) = self.map.clone() else {
            self.heatmap_at = None;
            return;
        };
        ui.horizontal(|ui| {
            ui.label("Layer");
            for l in 0..map.layers.len() {
                ui.selectable_value(&mut self.layer, l, l.to_string());
            }
            ui.separator();
            ui.label("Head");
            ui.selectable_value(&mut self.head, None, "mean");
            for h in 0..map.heads {
                ui.selectable_value(&mut self.head, Some(h), h.to_string());
            }
        });
        egui::ScrollArea::both().show(ui, |ui| {
            self.heatmap_at = Some(heatmap::show(ui, &map, self.layer, self.head));
        });
    }

    fn dropped_file(ui: &egui::Ui) -> Option<PathBuf> {
        ui.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .next()
        })
    }
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

impl App {
    /// One frame of the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.frames.tick(self.busy.is_some());
        self.poll();
        let dropped = Self::dropped_file(ui);
        egui::Panel::bottom("status").show(ui, |ui| self.status_line(ui));
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.tab, Tab::Text, "Text");
                ui.selectable_value(&mut self.tab, Tab::Speech, "Speech (Whisper)");
                ui.selectable_value(&mut self.tab, Tab::Vision, "Captions");
            });
        });
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(e) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            match self.tab {
                Tab::Text => self.text_tab(ui),
                Tab::Speech => {
                    self.model_row(ui, Family::Speech);
                    if let Some(path) = self.speech.ui(ui, dropped, self.busy.is_none()) {
                        self.transcribe(path);
                    }
                }
                Tab::Vision => {
                    self.model_row(ui, Family::Vision);
                    if let Some(image) = self.vision.ui(ui, dropped, self.busy.is_none()) {
                        let opts = self.options();
                        self.start("captioning", Job::Caption { image, opts });
                    }
                }
            }
        });
        if self.busy.is_some() || self.speech.playing() {
            // Keep drawing while the engine works: the spinner and the frame-time figures.
            ui.ctx().request_repaint();
        }
        if let Some(mut smoke) = self.smoke.take() {
            smoke.step(self, ui.ctx());
            self.smoke = Some(smoke);
        }
    }
}
