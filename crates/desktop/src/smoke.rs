//! `--smoke-test OUT.png`: the scripted run that CI makes of the real window (under Xvfb,
//! tools/desktop_smoke.sh). It translates the default text (or transcribes `--smoke-audio
//! FILE`), lets a few frames settle, takes a screenshot of the window through egui, checks it
//! is not blank, writes it, prints the frame times measured during the job, and closes the
//! window. Anything wrong ends in `Smoke::outcome` as an error, and `main` exits non-zero.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eframe::egui;

use crate::app::App;

/// How long the whole run may take before it is a failure (software adapters are slow).
const DEADLINE: Duration = Duration::from_secs(600);
/// Frames drawn after the job ends, before the screenshot (the heatmap's first frame).
const SETTLE_FRAMES: u32 = 5;

enum Stage {
    Start,
    Running,
    Settle(u32),
    Shot,
    Closing,
}

pub struct Smoke {
    out: PathBuf,
    audio: Option<PathBuf>,
    stage: Stage,
    started: Instant,
    /// `None` until the run ends; then whether it passed.
    pub outcome: Arc<Mutex<Option<Result<(), String>>>>,
    shot: Arc<Mutex<Option<Result<(), String>>>>,
}

impl Smoke {
    pub fn new(out: PathBuf, audio: Option<PathBuf>) -> Smoke {
        Smoke {
            out,
            audio,
            stage: Stage::Start,
            started: Instant::now(),
            outcome: Arc::default(),
            shot: Arc::default(),
        }
    }

    fn end(&mut self, ctx: &egui::Context, r: Result<(), String>) {
        if let Ok(mut o) = self.outcome.lock() {
            *o = Some(r);
        }
        self.stage = Stage::Closing;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }

    /// One frame of the script.
    pub fn step(&mut self, app: &mut App, ctx: &egui::Context) {
        ctx.request_repaint();
        if self.started.elapsed() > DEADLINE && !matches!(self.stage, Stage::Closing) {
            return self.end(ctx, Err(format!("not done after {DEADLINE:?}")));
        }
        match self.stage {
            Stage::Start => {
                match &self.audio {
                    Some(f) => app.transcribe(f.clone()),
                    None => app.run(),
                }
                self.stage = Stage::Running;
            }
            Stage::Running if !app.is_busy() => {
                if let Some(e) = app.error() {
                    let e = e.to_string();
                    return self.end(ctx, Err(e));
                }
                if self.audio.is_none() && app.map().is_none() {
                    return self.end(ctx, Err("the translation produced no heatmap".into()));
                }
                println!("{}", app.frames().summary());
                self.stage = Stage::Settle(SETTLE_FRAMES);
            }
            Stage::Running => {}
            Stage::Settle(0) => {
                let (out, slot, ctx2) = (self.out.clone(), self.shot.clone(), ctx.clone());
                ctx.request_screenshot(move |image| {
                    let r = save_checked(&image, &out);
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(r);
                    }
                    ctx2.request_repaint();
                });
                self.stage = Stage::Shot;
            }
            Stage::Settle(n) => self.stage = Stage::Settle(n - 1),
            Stage::Shot => {
                let r = self.shot.lock().ok().and_then(|mut s| s.take());
                if let Some(r) = r {
                    self.end(ctx, r);
                }
            }
            Stage::Closing => {}
        }
    }
}

/// Writes the screenshot after checking it shows something: at least 16 distinct colours
/// (a blank or single-colour window has one or two).
fn save_checked(image: &egui::ColorImage, out: &PathBuf) -> Result<(), String> {
    let [w, h] = image.size;
    let colours: std::collections::HashSet<[u8; 4]> =
        image.pixels.iter().map(|c| c.to_array()).collect();
    if colours.len() < 16 {
        return Err(format!(
            "the {w}×{h} screenshot is blank ({} colours)",
            colours.len()
        ));
    }
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    let img = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| "screenshot size does not match its pixels".to_string())?;
    img.save(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "screenshot {w}×{h}, {} colours: {}",
        colours.len(),
        out.display()
    );
    Ok(())
}
