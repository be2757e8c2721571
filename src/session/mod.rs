//! One tracing session: start (checks, load, attach, the banner), poll once per interval (take
//! events in, decode, reassemble, print), and finish (drain, report what is pending, the
//! summary). It ends on Ctrl-C, --duration, --count, a closed output, or when every traced
//! process is gone. With -w it records every input of the pipeline as it takes it (or, without
//! -o, records only); with -r it replays a recording through the same pipeline.

mod checks;
mod files;
mod held_back;
mod replay;
mod screen;
mod state;
mod summary;
mod targets;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use self::checks::{check_live_args, secrets_said, WithOptions};
use self::files::{capture_name, Output, Outputs};
use self::replay::replay;
use self::state::{Recorder, State};
use self::summary::{counted, pipeline_summary, recording_summary, KernelCounts};
use self::targets::Targets;
use crate::attach::buffer::{self, EventBuffer};
use crate::attach::tls::TlsProbes;
use crate::attach::{self, Config, Loaded};
use crate::bpf;
use crate::capture;
use crate::cli::{Args, DEFAULT_MAX_BODY};
use crate::output::top::{self, Board, Screen};
use crate::output::{Clock, Format, Printer};
use crate::pipeline::{Input, Pipeline};
use crate::proc_scan;
use crate::traced::{self, Processes};

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the live view (--top) redraws.
pub(super) const TOP_REFRESH: Duration = Duration::from_secs(1);

/// The Unix connections whose socket is gone. Where no call shows a Unix socket's end
/// (socket-tracepoint and raw-tracepoint see no close(2); a socket shared with another process
/// outlives the close that was seen), its inode leaves /proc/PID/net/unix, the list of the
/// process's network namespace. Read only while Unix connections are open. The kernel walks
/// its socket table for that file a page at a time, so one reading can miss a socket while
/// others come and go (seen in a busy guest: a live connection ended early): a socket is gone
/// only when two readings in a row, a liveness interval apart, miss it. `missed`: the
/// connections the last reading missed, updated.
fn gone_unix_sockets(pipeline: &Pipeline<Output>, missed: &mut HashSet<u64>) -> Vec<u64> {
    let mut listed: HashMap<u32, Option<HashSet<u64>>> = HashMap::new();
    let mut gone = Vec::new();
    let mut missed_now = HashSet::new();
    for u in pipeline.unix_sockets() {
        let inodes = listed
            .entry(u.tgid)
            .or_insert_with(|| proc_scan::unix_socket_inodes(u.tgid));
        // A process gone: its exit ends its connections.
        if inodes.as_ref().is_some_and(|set| !set.contains(&u.ino)) {
            if missed.contains(&u.conn_id) {
                log::debug!("unix socket {} (connection {}) is gone", u.ino, u.conn_id);
                gone.push(u.conn_id);
            } else {
                missed_now.insert(u.conn_id);
            }
        }
    }
    *missed = missed_now;
    gone
}

/// CLOCK_MONOTONIC now, in ns: the clock of BPF's timestamps, and the pipeline's time.
pub(super) fn monotonic_ns() -> Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(io::Error::last_os_error()).context("reading the monotonic clock");
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

struct Session {
    /// The TLS libraries' probes (None with --no-tls), detached before the programs drop.
    tls: RefCell<Option<TlsProbes>>,
    loaded: Loaded,
    state: RefCell<State>,
    stop: Arc<AtomicBool>,
    /// Set when tracing starts (the banner): --duration is of tracing, not of loading.
    deadline: Cell<Option<Instant>>,
    duration: Option<Duration>,
    /// Unix connections whose socket the last liveness check did not find.
    unix_missed: RefCell<HashSet<u64>>,
    next_liveness: Cell<Instant>,
    show_secrets: bool,
    /// What --name and --container watch for, as the banner says it (empty without them).
    watched: String,
    names: Vec<String>,
    /// The containers' full ids.
    container_ids: Vec<String>,
    /// The live view's terminal, from the banner to the end (--top).
    screen: RefCell<Option<Screen>>,
    last_draw: Cell<Instant>,
}

pub fn run(args: &Args) -> Result<()> {
    if let Some(path) = &args.read {
        return replay(args, path);
    }
    let session = Session::start(args)?;
    let events = session.open_buffer(args)?;
    let banner = session.announce()?;
    if args.stats.top {
        session.open_screen(banner)?;
    }
    while session.poll_once(&events)? {}
    session.finish(events)
}

impl Session {
    /// Check, open the output files, load and attach.
    fn start(args: &Args) -> Result<Self> {
        check_live_args(args)?;
        attach::preflight(&args.pids)?;
        let targets = Targets::find(args)?;
        // Files first: a refusal to overwrite one should not wait for the BPF load.
        let outputs = Outputs::open(args)?;
        attach::route_libbpf_log();
        let cpus = libbpf_rs::num_possible_cpus().context("counting the CPUs")?;
        let processes = Processes::new(&targets.pids, !args.no_children, targets.watching())
            .with_cgroup_containers(targets.cgroup_containers.clone());
        let loaded = load(args, &targets, &processes, outputs.capture.is_some(), cpus)?;
        let stop = stop_on_ctrl_c()?;
        let clock = Clock::now().context("reading the clocks")?;
        let max_body = args.max_body.unwrap_or(DEFAULT_MAX_BODY);
        let recorder = match outputs.capture {
            None => None,
            Some(out) => {
                let name = capture_name(args);
                let r = Recorder::start(out, name, args, &loaded, clock, cpus, max_body)?;
                Some(if args.show_secrets { r } else { r.redacted() })
            }
        };
        let pipeline = match (outputs.format, outputs.records) {
            (Some(format), Some(out)) => {
                let p = live_pipeline(args, format, out, clock, max_body);
                Some(match recorder {
                    Some(_) => p.with_recording_redacted(),
                    None => p,
                })
            }
            _ => None,
        };
        let state = RefCell::new(State {
            pipeline,
            recorder,
            processes,
            lost: 0,
            shadow: shadow_recording(args, &loaded, clock, cpus, max_body)?,
            all_exited: false,
        });
        Ok(Self {
            tls: RefCell::new((!args.no_tls).then(TlsProbes::default)),
            loaded,
            state,
            stop,
            deadline: Cell::new(None),
            duration: args.duration,
            unix_missed: RefCell::new(HashSet::new()),
            next_liveness: Cell::new(Instant::now() + LIVENESS_INTERVAL),
            show_secrets: args.show_secrets,
            watched: targets.said,
            names: args.names.clone(),
            container_ids: targets.container_ids,
            screen: RefCell::new(None),
            last_draw: Cell::new(Instant::now()),
        })
    }

    /// The processes --name and --container find now: those started between the scan at start
    /// and the attach are among them.
    fn targets_again(&self) -> Vec<u32> {
        let mut pids = proc_scan::named(&self.names);
        for id in &self.container_ids {
            pids.extend(proc_scan::in_container(id).0);
        }
        pids
    }

    fn open_buffer(&self, args: &Args) -> Result<EventBuffer<'_>> {
        EventBuffer::open(
            &self.loaded.skel,
            self.loaded.buffer,
            args.buffer_pages,
            |data| self.state.borrow_mut().on_sample(data),
            |n| self.state.borrow_mut().input(Input::Lost(n)),
        )
    }

    /// Find what the scan at start missed, then say that tracing has started: only now can the
    /// BPF side deliver events. The banner, said.
    fn announce(&self) -> Result<String> {
        for warning in &self.loaded.warnings {
            eprintln!("http-trace: {warning}");
        }
        let s = &mut *self.state.borrow_mut();
        s.processes.rescan(&self.loaded.skel)?;
        for pid in self.targets_again() {
            s.processes.adopt(&self.loaded.skel, pid)?;
        }
        let mut open = 0u64;
        let alive: Vec<u32> = s.processes.alive().collect();
        for &pid in &alive {
            s.identify(pid);
        }
        self.probe_tls(&alive);
        for pid in alive {
            for c in proc_scan::open_connections(pid) {
                s.input(Input::Preopened {
                    pid,
                    fd: c.fd,
                    role: c.role,
                });
                open += 1;
            }
        }
        let named: Vec<String> = s.processes.named().iter().map(u32::to_string).collect();
        let children = s.processes.children();
        let banner = format!(
            "http-trace: tracing {}{} with {} and the {}{}{}{}{}; Ctrl-C to stop",
            if named.is_empty() {
                "no process yet".to_string()
            } else {
                format!("pid {}", named.join(", "))
            },
            if children > 0 {
                format!(
                    " and {}",
                    counted(children as u64, "child process", "child processes")
                )
            } else {
                String::new()
            },
            self.loaded.method,
            self.loaded.buffer,
            self.watched,
            if open > 0 {
                format!(
                    "; {} already open, followed from their next message",
                    counted(open, "connection", "connections")
                )
            } else {
                String::new()
            },
            match &s.recorder {
                Some(r) => format!("; recording to {}", r.name),
                None => String::new(),
            },
            secrets_said(self.show_secrets),
        );
        eprintln!("{banner}");
        for line in self.tls_said() {
            eprintln!("{line}");
        }
        self.deadline.set(self.duration.map(|d| Instant::now() + d));
        Ok(banner)
    }

    /// Wait for events up to one poll interval and take them in; false when tracing should end.
    fn poll_once(&self, events: &EventBuffer<'_>) -> Result<bool> {
        events.poll(POLL_INTERVAL)?;
        let now = Instant::now();
        let skel = &self.loaded.skel;
        {
            let s = &mut *self.state.borrow_mut();
            let settled = s.processes.update(skel);
            let mut new = settled.new;
            // A restarted container's program, if it started before its cgroup was watched.
            for pid in s.processes.watch_new_cgroups(skel)? {
                s.identify(pid);
                new.push((pid, None));
            }
            let ciphertext = s
                .pipeline
                .as_mut()
                .map(Pipeline::take_ciphertext)
                .unwrap_or_default();
            if let Some(tls) = self.tls.borrow_mut().as_mut() {
                for pid in settled.ended {
                    tls.gone(pid);
                }
                for (pid, parent) in new {
                    tls.look_at_new(skel, pid, parent);
                }
                for pid in ciphertext {
                    tls.records_seen(skel, pid);
                }
            }
        }
        if self
            .state
            .borrow()
            .pipeline
            .as_ref()
            .is_some_and(Pipeline::has_gaps)
        {
            // A missing event may sit in a CPU buffer that did not signal yet: drain them all.
            events.consume()?;
        }
        {
            let s = &mut *self.state.borrow_mut();
            s.input(Input::Tick {
                now_ns: monotonic_ns()?,
            });
            if !self.update_screen(s, now)? {
                return Ok(false);
            }
            if self.stop.load(Ordering::SeqCst)
                || s.recording_failed()
                || s.pipeline.as_ref().is_some_and(Pipeline::done)
                || self.deadline.get().is_some_and(|d| now >= d)
            {
                return Ok(false);
            }
        }
        if now >= self.next_liveness.get() {
            self.next_liveness.set(now + LIVENESS_INTERVAL);
            self.check_liveness(events)?;
        }
        let s = &mut *self.state.borrow_mut();
        if let Some(pipeline) = s.pipeline.as_mut() {
            for u in pipeline.take_unix_gone() {
                traced::forget_socket(skel, &u);
            }
        }
        if s.processes.is_empty() {
            s.input(Input::Print);
            s.all_exited = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// Probe the TLS library of each of `pids`, there when tracing started (nothing with
    /// --no-tls).
    fn probe_tls(&self, pids: &[u32]) {
        if let Some(tls) = self.tls.borrow_mut().as_mut() {
            for &pid in pids {
                tls.look_at(&self.loaded.skel, pid);
            }
        }
    }

    /// What the TLS probes found, as said on stderr after the banner: "tls: libssl.so.3 in 2
    /// processes; none in 1", and the libraries that could not be probed.
    fn tls_said(&self) -> Vec<String> {
        let tls = self.tls.borrow();
        let Some(tls) = tls.as_ref() else {
            return Vec::new();
        };
        let (libs, without) = tls.found();
        let mut said = Vec::new();
        if !libs.is_empty() {
            let mut parts: Vec<String> = libs
                .iter()
                .map(|(name, n)| format!("{name} in {}", counted(*n, "process", "processes")))
                .collect();
            if without > 0 {
                parts.push(format!("none in {without}"));
            }
            said.push(format!("http-trace: tls: {}", parts.join("; ")));
        }
        for failure in tls.failures() {
            said.push(format!("http-trace: tls: not probed: {failure}"));
        }
        said
    }

    /// The processes and Unix sockets found gone without an event saying so (exits BPF could
    /// not send, sockets whose end no call shows). Everything they sent before they went is in
    /// the buffer by the time they are found gone, but maybe sent after this poll read it: it
    /// is taken in before they are said gone, or it would come after their connections ended
    /// (seen in a 5.10 guest: a forked child's response taken after the child was found gone,
    /// the exchange left without its response).
    fn check_liveness(&self, events: &EventBuffer<'_>) -> Result<()> {
        let (pids, sockets) = {
            let s = &mut *self.state.borrow_mut();
            let pids = s.processes.check_liveness(&self.loaded.skel);
            let sockets = match s.pipeline.as_ref() {
                Some(p) => gone_unix_sockets(p, &mut self.unix_missed.borrow_mut()),
                None => Vec::new(),
            };
            (pids, sockets)
        };
        if !pids.is_empty() || !sockets.is_empty() {
            events.consume()?;
        }
        let s = &mut *self.state.borrow_mut();
        if let Some(tls) = self.tls.borrow_mut().as_mut() {
            pids.iter().for_each(|&pid| tls.gone(pid));
        }
        for pid in pids {
            s.input(Input::ProcessGone(pid));
        }
        for id in sockets {
            s.input(Input::SocketGone(id));
        }
        Ok(())
    }

    /// Take what is still buffered, report what is pending, and print the summary; an error
    /// when the recording could not be written whole.
    fn finish(&self, events: EventBuffer<'_>) -> Result<()> {
        if self.screen.borrow_mut().take().is_some() {
            // The terminal is back: say what was held while the view was on it.
            let held = top::take_held_log();
            let _ = io::stderr().write_all(&held);
        }
        if self.state.borrow().all_exited {
            eprintln!("http-trace: every traced process has exited");
        }
        if let Err(e) = events.consume() {
            log::warn!("{e:#}");
        }
        drop(events);
        let s = &mut *self.state.borrow_mut();
        s.processes.update(&self.loaded.skel);
        let kernel = KernelCounts {
            drops: bpf::drops(&self.loaded.skel),
            kretprobe_misses: self.loaded.kretprobe_misses(),
            skipped_runs: attach::kernel_skips(&self.loaded.skel),
            children_followed: s.processes.followed(),
            processes_exited: s.processes.ended(),
            processes_started: s.processes.started(),
            containers_restarted: s.processes.restarts(),
        };
        let end = kernel.to_end(s.all_exited);
        if let Some(pipeline) = s.pipeline.as_mut() {
            pipeline.finish();
            if let Some(r) = s.recorder.as_mut() {
                r.release_all(pipeline);
            }
        }
        for r in [s.recorder.as_mut(), s.shadow.as_mut()]
            .into_iter()
            .flatten()
        {
            if r.failed.is_none() {
                let written = r.writer.end(&end);
                r.check(written);
            }
        }
        if let Some(e) = s.shadow.as_ref().and_then(|r| r.failed.as_ref()) {
            log::warn!("writing {}: {e}", s.shadow.as_ref().map_or("", |r| &r.name));
        }
        match s.pipeline.as_mut() {
            Some(pipeline) if pipeline.format() != Format::Discard => {
                pipeline.print_stats();
                pipeline.print_accounting();
                if let Some(board) = pipeline.board() {
                    eprint!("{}", board.stats().table());
                }
                pipeline.flush();
                eprintln!("{}", pipeline_summary(pipeline, &kernel));
            }
            _ => {
                let r = s.recorder.as_ref().expect("-w without -o records");
                eprintln!(
                    "{}",
                    recording_summary(
                        r.writer.samples,
                        r.writer.sample_bytes,
                        &r.name,
                        s.lost,
                        &kernel
                    )
                );
            }
        }
        if let Some(e) = s.pipeline.as_ref().and_then(Pipeline::output_error) {
            bail!("writing the output: {e}");
        }
        match s
            .recorder
            .as_mut()
            .and_then(|r| r.failed.take().map(|e| (e, &r.name)))
        {
            Some((e, name)) => Err(anyhow!(
                "writing {name}: {e}; it holds what was written before, which -r reads"
            )),
            None => Ok(()),
        }
    }
}

/// The running kernel's release, as `uname -r` says it.
pub(super) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Load and attach the BPF side for `targets`, as `args` asks. A recording keeps every
/// connection (its reader may filter otherwise): no --port in the kernel with it.
fn load(
    args: &Args,
    targets: &Targets,
    processes: &Processes,
    recording: bool,
    cpus: usize,
) -> Result<Loaded> {
    let cfg = Config {
        processes,
        follow_children: !args.no_children,
        watch_names: &args.names,
        watch_cgroups: &targets.cgroups,
        ports: if recording { &[] } else { &args.ports },
        capture_bytes: args.capture_bytes(),
        buffer: buffer::resolve(args.buffer)?,
        ring_bytes: buffer::ring_bytes(args.buffer_pages, cpus),
        tls: !args.no_tls,
    };
    let loaded = attach::load(args.attach, &cfg)?;
    if !loaded.fallbacks.is_empty() {
        eprintln!(
            "http-trace: using {}; {}",
            loaded.method,
            loaded.fallbacks.join("; ")
        );
    }
    Ok(loaded)
}

/// The flag Ctrl-C (and SIGTERM, SIGHUP) sets.
fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// The pipeline of a live run printing `format` to `out`.
fn live_pipeline(
    args: &Args,
    format: Format,
    out: Output,
    clock: Clock,
    max_body: u32,
) -> Pipeline<Output> {
    let printer = match format {
        Format::Top => Printer::new(out, format, false, clock)
            .with_board(Board::new(args.stats.routes.clone())),
        _ => Printer::new(out, format, args.verbose, clock),
    };
    Pipeline::new(max_body as usize, printer, args.count)
        .with_filter(args.filter())
        .with_options_of(args)
}

/// The recording of every input that HTTP_TRACE_RECORD asks for (capture::RECORD_ENV), in the
/// format of -w, beside whatever else was asked for.
fn shadow_recording(
    args: &Args,
    loaded: &Loaded,
    clock: Clock,
    cpus: usize,
    max_body: u32,
) -> Result<Option<Recorder>> {
    let Some(path) = std::env::var_os(capture::RECORD_ENV) else {
        return Ok(None);
    };
    // Raw traffic, as -w writes it: as private and as careful of links.
    let file = files::create_private(Path::new(&path), true)?;
    let name = path.to_string_lossy().into_owned();
    Recorder::start(Box::new(file), name, args, loaded, clock, cpus, max_body).map(Some)
}
