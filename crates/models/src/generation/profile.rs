//! Where a `generate` call spends its time: the bench runner's view of the step loop.

use std::time::Instant;

use seqbridge_gpu::wgpu::SubmissionIndex;
use seqbridge_gpu::{Family, Gpu, Recorder, Work};

use crate::error::Result;

/// Timings of one [`Model::generate_profiled`](crate::Model::generate_profiled) call.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Encoder plus every layer's cross K/V: record, submit and wait for the GPU.
    pub encoder_ms: f64,
    /// Per decode step, wall time from the first command recorded to the ids read back (the
    /// pipelined greedy loop: from the last step's ids to this step's, the wall time a step
    /// adds when steps overlap).
    pub step_ms: Vec<f64>,
    /// Per decode step, host time to record and submit (the CPU cost of a step).
    pub host_ms: Vec<f64>,
    /// Per decode step, the dispatches recorded.
    pub step_dispatches: Vec<u64>,
    /// Per decode step, the submits.
    pub step_submits: Vec<u64>,
    /// Per decode step, bytes written from the host (ids, logit edits, kernel parameters):
    /// what the context counted between the previous submit and the step's own.
    pub step_bytes_uploaded: Vec<u64>,
    /// GPU time per kernel family over the call, from timestamp queries (only when asked for
    /// and the adapter has them; timing every dispatch slows the call down).
    pub kernel_ms: Vec<(Family, f64)>,
    /// Bytes moved and FLOPs per kernel family over the same dispatches (with `kernel_ms`).
    pub kernel_work: Vec<(Family, Work)>,
}

/// The instrument threaded through the encode and step loops. Off, it costs nothing.
pub(crate) struct Probe<'a> {
    profile: Option<&'a mut Profile>,
    timestamps: bool,
    started: Option<Instant>,
    host_ms: f64,
    dispatches: u64,
    submits: u64,
    /// The context's upload counter at the last submit, and the bytes of this phase.
    uploaded_at_submit: Option<u64>,
    uploaded: u64,
    /// Pipelined steps: when the last step's ids arrived (or the first step started).
    arrival: Option<Instant>,
}

/// What recording one pipelined step cost, kept until its ids arrive.
pub(crate) struct StepNote {
    host_ms: f64,
    dispatches: u64,
    submits: u64,
    uploaded: u64,
}

impl<'a> Probe<'a> {
    pub fn off() -> Probe<'static> {
        Probe {
            profile: None,
            timestamps: false,
            started: None,
            host_ms: 0.0,
            dispatches: 0,
            submits: 0,
            uploaded_at_submit: None,
            uploaded: 0,
            arrival: None,
        }
    }

    pub fn on(profile: &'a mut Profile, timestamps: bool) -> Probe<'a> {
        Probe {
            profile: Some(profile),
            timestamps,
            ..Probe::off()
        }
    }

    /// Starts timing a phase (the encoder or one step).
    pub fn start(&mut self) {
        if self.profile.is_some() {
            self.started = Some(Instant::now());
            self.host_ms = 0.0;
            self.dispatches = 0;
            self.submits = 0;
            self.uploaded = 0;
        }
    }

    /// A recorder for the current phase: with timestamp queries when asked for.
    pub fn recorder(&self, gpu: &Gpu) -> Recorder {
        if self.timestamps
            && let Some(rec) = Recorder::with_timestamps(gpu)
        {
            return rec;
        }
        Recorder::new(gpu)
    }

    /// Submits `rec`, noting the host time spent so far in this phase. Returns the
    /// submission to wait for, or `None` when the GPU already ran it (timestamp queries).
    pub fn submit(&mut self, rec: Recorder) -> Result<Option<SubmissionIndex>> {
        let Some(profile) = self.profile.as_deref_mut() else {
            return Ok(Some(rec.submit()));
        };
        let gpu = rec.gpu().clone();
        self.dispatches += rec.dispatches();
        self.submits += 1;
        if let Some(t0) = self.started {
            self.host_ms = t0.elapsed().as_secs_f64() * 1e3;
        }
        let index = if self.timestamps {
            let times = rec.submit_timed()?;
            for (family, ms) in times.by_family {
                match profile.kernel_ms.iter_mut().find(|(f, _)| *f == family) {
                    Some((_, t)) => *t += ms,
                    None => profile.kernel_ms.push((family, ms)),
                }
            }
            for (family, w) in times.work {
                match profile.kernel_work.iter_mut().find(|(f, _)| *f == family) {
                    Some((_, t)) => *t += w,
                    None => profile.kernel_work.push((family, w)),
                }
            }
            None
        } else {
            Some(rec.submit())
        };
        let total = gpu.stats().bytes_uploaded;
        if let Some(before) = self.uploaded_at_submit {
            self.uploaded += total - before;
        }
        self.uploaded_at_submit = Some(total);
        Ok(index)
    }

    /// Ends the encoder phase: waits for the GPU so that the time is the encoder's alone.
    pub fn end_encoder(&mut self, gpu: &Gpu) -> Result<()> {
        if let (Some(profile), Some(t0)) = (self.profile.as_deref_mut(), self.started) {
            gpu.wait_idle()?;
            profile.encoder_ms = t0.elapsed().as_secs_f64() * 1e3;
        }
        Ok(())
    }

    /// Ends a decode step (after its ids were read back).
    pub fn end_step(&mut self) {
        if let (Some(profile), Some(t0)) = (self.profile.as_deref_mut(), self.started) {
            profile.step_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            profile.host_ms.push(self.host_ms);
            profile.step_dispatches.push(self.dispatches);
            profile.step_submits.push(self.submits);
            profile.step_bytes_uploaded.push(self.uploaded);
        }
    }

    /// The cost of the pipelined step just submitted, for [`Probe::end_pipelined_step`].
    pub fn note(&mut self) -> StepNote {
        if self.arrival.is_none() {
            self.arrival = self.started;
        }
        StepNote {
            host_ms: self.host_ms,
            dispatches: self.dispatches,
            submits: self.submits,
            uploaded: self.uploaded,
        }
    }

    /// Ends a pipelined step as its ids arrive: its wall time is the time since the ids of
    /// the step before (steps overlap, so their start-to-end times would count twice).
    pub fn end_pipelined_step(&mut self, note: StepNote) {
        if let (Some(profile), Some(t0)) = (self.profile.as_deref_mut(), self.arrival) {
            let now = Instant::now();
            profile.step_ms.push((now - t0).as_secs_f64() * 1e3);
            profile.host_ms.push(note.host_ms);
            profile.step_dispatches.push(note.dispatches);
            profile.step_submits.push(note.submits);
            profile.step_bytes_uploaded.push(note.uploaded);
            self.arrival = Some(now);
        }
    }
}
