//! The Whisper tab: drop (or open) a WAV/MP3, transcribe it with word timestamps, and follow
//! the words karaoke-style on a clock (there is no audio output: the clock stands in for it).

use std::path::PathBuf;
use std::time::Instant;

use eframe::egui::{self, Color32, RichText};

use crate::picker::Picker;
use crate::worker::TimedWord;

#[derive(Default)]
pub struct Speech {
    picker: Picker,
    file: Option<PathBuf>,
    text: String,
    words: Vec<TimedWord>,
    duration: f32,
    /// When "play" was pressed, and the position it was pressed at.
    clock: Option<(Instant, f32)>,
    position: f32,
}

impl Speech {
    pub fn set(&mut self, text: String, words: Vec<TimedWord>, duration: f32) {
        (self.text, self.words, self.duration) = (text, words, duration);
        self.position = 0.0;
        self.clock = Some((Instant::now(), 0.0));
    }

    /// The last transcript, and its words with their times in seconds.
    pub fn transcript(&self) -> (&str, &[TimedWord]) {
        (&self.text, &self.words)
    }

    pub fn playing(&self) -> bool {
        self.clock.is_some()
    }

    /// Draws the tab; returns a file to transcribe when one was dropped or chosen.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        dropped: Option<PathBuf>,
        idle: bool,
    ) -> Option<PathBuf> {
        let mut go = None;
        let hint = "or drop a WAV / MP3 / FLAC / OGG file on the window";
        let extensions = &["wav", "mp3", "flac", "ogg"];
        let chosen = self
            .picker
            .row(ui, ("Open audio…", hint), "audio", extensions, dropped);
        if let Some(f) = chosen {
            self.file = Some(f);
            if idle {
                go = self.file.clone();
            }
        }
        if let Some(f) = &self.file {
            ui.label(format!("File: {}", f.display()));
        }
        if self.words.is_empty() {
            ui.label(&self.text);
            return go;
        }
        if let Some((t0, p0)) = self.clock {
            self.position = p0 + t0.elapsed().as_secs_f32();
            if self.position >= self.duration {
                (self.position, self.clock) = (self.duration, None);
            }
        }
        ui.horizontal(|ui| {
            let label = if self.clock.is_some() {
                "Pause"
            } else {
                "Play"
            };
            if ui.button(label).clicked() {
                self.clock = match self.clock {
                    Some(_) => None,
                    None if self.position >= self.duration => Some((Instant::now(), 0.0)),
                    None => Some((Instant::now(), self.position)),
                };
            }
            let slider =
                ui.add(egui::Slider::new(&mut self.position, 0.0..=self.duration).suffix(" s"));
            if slider.changed() {
                self.clock = self.clock.map(|_| (Instant::now(), self.position));
            }
        });
        ui.add_space(8.0);
        ui.horizontal_wrapped(|ui| {
            for w in &self.words {
                let text = RichText::new(w.word.trim()).size(22.0);
                let text = if self.position >= w.start && self.position < w.end {
                    text.color(Color32::BLACK)
                        .background_color(Color32::from_rgb(250, 200, 80))
                } else if self.position >= w.end {
                    text.strong()
                } else {
                    text.weak()
                };
                ui.label(text)
                    .on_hover_text(format!("{:.2}–{:.2} s", w.start, w.end));
            }
        });
        go
    }
}
