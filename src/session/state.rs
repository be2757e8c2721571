//! What a live run takes in, in one place: each input recorded (-w), applied to the pipeline, and
//! the process events it yields dispatched to the traced set and the identities.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};

use crate::attach::Loaded;
use crate::capture::{self, Header};
use crate::cli::Args;
use crate::container::Identity;
use crate::decode;
use crate::output::{rfc3339, Clock};
use crate::pipeline::{Input, Pipeline, ProcessEvent};
use crate::traced::Processes;

use super::files::Output;
use super::held_back::HeldBack;
use super::{kernel_release, monotonic_ns};

/// A capture file being written, and the first error writing it (tracing then stops).
pub(super) struct Recorder {
    pub(super) writer: capture::Writer<BufWriter<Box<dyn Write>>>,
    pub(super) name: String,
    pub(super) failed: Option<io::Error>,
    /// Redacted: inputs wait here for the pipeline's decisions (none with --show-secrets).
    held_back: Option<HeldBack>,
}

impl Recorder {
    /// Start recording to `out`, called `name` in messages: the header, then every input as it
    /// is taken.
    pub(super) fn start(
        out: Box<dyn Write>,
        name: String,
        args: &Args,
        loaded: &Loaded,
        clock: Clock,
        cpus: usize,
        max_body: u32,
    ) -> Result<Self> {
        let header = Header {
            http_trace: env!("CARGO_PKG_VERSION").to_string(),
            kernel: kernel_release(),
            started: rfc3339(clock.wall_ns(monotonic_ns()?)),
            realtime_minus_monotonic_ns: i64::try_from(clock.offset_ns())
                .context("the clock offset")?,
            cpus: cpus as u32,
            attach: loaded.method.to_string(),
            buffer: loaded.buffer.to_string(),
            capture_bytes: args.capture_bytes(),
            max_body,
            follow_children: !args.no_children,
            pids: args.pids.clone(),
        };
        let writer = capture::Writer::new(BufWriter::with_capacity(256 << 10, out), &header)
            .with_context(|| format!("writing {name}"))?;
        Ok(Recorder {
            writer,
            name,
            failed: None,
            held_back: None,
        })
    }

    /// Redacted as the outputs are: inputs wait for the pipeline's decisions (`release`).
    pub(super) fn redacted(mut self) -> Self {
        self.held_back = Some(HeldBack::default());
        self
    }

    /// Write `input` (or hold it back, when redacted), unless writing failed before.
    pub(super) fn record(&mut self, input: &Input<'_>) {
        if self.failed.is_some() {
            return;
        }
        let written = match self.held_back.as_mut() {
            Some(h) => h.push(input),
            None => self.writer.input(input),
        };
        self.check(written);
        if matches!(input, Input::Tick { .. }) && self.held_back.is_none() {
            let flushed = self.writer.flush();
            self.check(flushed);
        }
    }

    /// The pipeline applied `input`: write what it decided of the inputs held back.
    fn release<P: Write>(&mut self, pipeline: &mut Pipeline<P>, input: &Input<'_>) {
        let Some(h) = self.held_back.as_mut() else {
            return;
        };
        if self.failed.is_some() {
            return;
        }
        let now_ns = match *input {
            Input::Tick { now_ns } => Some(now_ns),
            _ => None,
        };
        let mut written = h.release(pipeline, &mut self.writer, now_ns);
        if now_ns.is_some() && written.is_ok() {
            written = self.writer.flush();
        }
        self.check(written);
    }

    /// The pipeline finished: write every input held back.
    pub(super) fn release_all<P: Write>(&mut self, pipeline: &mut Pipeline<P>) {
        if let (Some(h), None) = (self.held_back.as_mut(), &self.failed) {
            let written = h.release_all(pipeline, &mut self.writer);
            self.check(written);
        }
    }

    pub(super) fn check(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            if self.failed.is_none() {
                self.failed = Some(e);
            }
        }
    }
}

/// What the event callbacks change, behind a RefCell: the buffer holds them while the session
/// polls it.
pub(super) struct State {
    /// None when -w records without -o: nothing is parsed.
    pub(super) pipeline: Option<Pipeline<Output>>,
    pub(super) recorder: Option<Recorder>,
    pub(super) processes: Processes,
    /// Events the perf buffer reported lost (the pipeline counts them too, when there is one).
    pub(super) lost: u64,
    /// The recording of every input that HTTP_TRACE_RECORD asks for (capture::RECORD_ENV): a
    /// failure to write it is only logged.
    pub(super) shadow: Option<Recorder>,
    /// Every traced process exited.
    pub(super) all_exited: bool,
}

impl State {
    /// Take one input: record it, then apply it.
    pub(super) fn input(&mut self, input: Input<'_>) {
        for r in [self.recorder.as_mut(), self.shadow.as_mut()]
            .into_iter()
            .flatten()
        {
            r.record(&input);
        }
        if let Input::Lost(n) = input {
            self.lost += n;
        }
        let event = match self.pipeline.as_mut() {
            Some(p) => {
                let event = p.apply(&input);
                if let Some(r) = self.recorder.as_mut() {
                    r.release(p, &input);
                }
                event
            }
            // Recording only: forks and exits still keep the process set in step.
            None => match input {
                Input::Sample(data) => decode::decode(data).ok().and_then(|e| ProcessEvent::of(&e)),
                _ => None,
            },
        };
        let identity = match event {
            Some(ProcessEvent::Started {
                pid,
                ns_pid,
                cgroup,
            }) => self
                .processes
                .exec_seen(pid, ns_pid, cgroup)
                .map(|who| (pid, who)),
            Some(ProcessEvent::Forked {
                parent,
                child,
                ns_pid,
            }) => self
                .processes
                .forked(parent, child, ns_pid)
                .map(|who| (child, who)),
            Some(ProcessEvent::Exited(tgid)) => {
                self.processes.exited(tgid);
                None
            }
            None => None,
        };
        if let Some((pid, who)) = identity {
            self.identified(pid, &who);
        }
    }

    /// Say which container process `pid` is in, if it is in one: looked up once, when the
    /// process is first seen at start.
    pub(super) fn identify(&mut self, pid: u32) {
        if let Some(who) = self.processes.identify(pid) {
            self.identified(pid, &who);
        }
    }

    /// Every record of process `pid` shows its container and its PID there.
    fn identified(&mut self, pid: u32, who: &Identity) {
        self.input(Input::Process {
            pid,
            ns_pid: who.ns_pid,
            container_id: &who.container_id,
            pod_uid: &who.pod_uid,
        });
    }

    pub(super) fn on_sample(&mut self, data: &[u8]) {
        // A new cgroup tells what to watch, nothing of what was traced: neither recorded nor
        // parsed.
        if let Some(made) = decode::cgroup_made(data) {
            if let Some(id) = self.processes.cgroup_made(&made) {
                log::info!(
                    "container {}: watching its new cgroup {}",
                    &id[..12],
                    String::from_utf8_lossy(made.path)
                );
            }
            return;
        }
        self.input(Input::Sample(data));
    }

    pub(super) fn recording_failed(&self) -> bool {
        self.recorder.as_ref().is_some_and(|r| r.failed.is_some())
    }
}
