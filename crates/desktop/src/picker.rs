//! File dialogs off the UI thread: the XDG portal's dialog blocks its caller, so it runs on
//! its own thread and the UI picks the answer up on a later frame.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Picker {
    chosen: Arc<Mutex<Option<PathBuf>>>,
}

impl Picker {
    /// Opens a dialog for one file of the given extensions.
    pub fn open(
        &self,
        what: &str,
        extensions: &'static [&'static str],
        ctx: &eframe::egui::Context,
    ) {
        let (slot, what, ctx) = (self.chosen.clone(), what.to_string(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let file = rfd::FileDialog::new()
                    .add_filter(&what, extensions)
                    .pick_file();
                if let (Some(f), Ok(mut s)) = (file, slot.lock()) {
                    *s = Some(f);
                    ctx.request_repaint();
                }
            });
        if let Err(e) = spawned {
            eprintln!("seqbridge-desktop: cannot open the file dialog: {e}");
        }
    }

    /// An "Open …" button with a hint about dropping; returns the file dropped on the window
    /// this frame or chosen in the dialog since the last frame.
    pub fn row(
        &self,
        ui: &mut eframe::egui::Ui,
        (button, hint): (&str, &str),
        what: &str,
        extensions: &'static [&'static str],
        dropped: Option<PathBuf>,
    ) -> Option<PathBuf> {
        ui.horizontal(|ui| {
            if ui.button(button).clicked() {
                self.open(what, extensions, ui.ctx());
            }
            ui.label(hint);
        });
        dropped.or_else(|| self.take())
    }

    /// The file chosen since the last call, if any.
    pub fn take(&self) -> Option<PathBuf> {
        self.chosen.lock().ok().and_then(|mut s| s.take())
    }
}
