//! Frame times while the engine works: the interval between two UI passes, kept while a job
//! is in flight and summarised when it ends (the status line and the smoke test print it).

use std::time::{Duration, Instant};

#[derive(Default)]
pub struct FrameTimes {
    last: Option<Instant>,
    /// Milliseconds between frames drawn while a job ran.
    during: Vec<f32>,
    report: Option<String>,
}

impl FrameTimes {
    /// Called at the start of every frame.
    pub fn tick(&mut self, busy: bool) {
        let now = Instant::now();
        if let (true, Some(last)) = (busy, self.last) {
            self.during.push((now - last).as_secs_f32() * 1000.0);
        }
        self.last = Some(now);
    }

    /// Summarises the frames drawn during the job that just ended.
    pub fn end_job(&mut self, what: &str, took: Duration) {
        let mut v = std::mem::take(&mut self.during);
        if v.is_empty() {
            self.report = Some(format!(
                "{what} {:.2} s: no frame drawn meanwhile",
                took.as_secs_f32()
            ));
            return;
        }
        v.sort_by(f32::total_cmp);
        let at = |q: f32| v[((v.len() - 1) as f32 * q).round() as usize];
        self.report = Some(format!(
            "{what} {:.2} s: {} frames, median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            took.as_secs_f32(),
            v.len(),
            at(0.5),
            at(0.95),
            at(1.0)
        ));
    }

    /// The last job's figures, for the status line.
    pub fn summary(&self) -> String {
        self.report
            .clone()
            .unwrap_or_else(|| "frame times: no job yet".into())
    }
}
