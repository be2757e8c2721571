//! One tracing session: start (checks, load, attach, the banner), poll once per interval (take
//! events in, decode, reassemble, print), and finish (drain, report what is pending, the
//! summary). It ends on Ctrl-C, --duration, --count, a closed output, or when every traced
//! process is gone. With -w it records every input of the pipeline as it takes it (or, without
//! -o, records only); with -r it replays a recording through the same pipeline.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::attach::buffer::{self, EventBuffer};
use crate::attach::{self, Config, Loaded};
use crate::bpf::{self, Drops, DROP_KINDS};
use crate::capture::{self, End, Entry, Header, ReadError};
use crate::cli::{Args, DEFAULT_MAX_BODY};
use crate::container::Identity;
use crate::decode::{self, samples_file};
use crate::output::top::{self, Board, Screen};
use crate::output::{rfc3339, Clock, Format, Printer};
use crate::pipeline::{Input, Pipeline, ProcessEvent};
use crate::processes::{self, Processes};
use crate::procs;
use crate::redact::Redactor;
use crate::stats::Stats;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the live view (--top) redraws.
const TOP_REFRESH: Duration = Duration::from_secs(1);

/// Where printed records go: stdout or --output-file.
type Output = Box<dyn Write>;

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
            .or_insert_with(|| procs::unix_socket_inodes(u.tgid));
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

/// Create `path` for writing, mode 0600 (it will hold headers and bodies): never over an
/// existing file unless `force`.
fn create_private(path: &Path, force: bool) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            anyhow!("{} exists: give --force to overwrite it", path.display())
        } else {
            anyhow!("creating {}: {e}", path.display())
        }
    })?;
    if force {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    Ok(file)
}

/// Where records are printed: --output-file, else stdout (not a terminal for a binary format).
fn records_output(args: &Args, format: Format) -> Result<Output> {
    Ok(match &args.output_file {
        Some(path) => Box::new(create_private(path, args.force)?),
        None => {
            if format == Format::Pcapng && io::stdout().is_terminal() {
                bail!("-o pcapng is binary: give --output-file FILE, or send stdout to a file or a pipe");
            }
            Box::new(io::stdout().lock())
        }
    })
}

/// A capture file being written, and the first error writing it (tracing then stops).
struct Recorder {
    writer: capture::Writer<BufWriter<Box<dyn Write>>>,
    name: String,
    failed: Option<io::Error>,
}

impl Recorder {
    fn check(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            if self.failed.is_none() {
                self.failed = Some(e);
            }
        }
    }
}

/// What the event callbacks change, behind a RefCell: the buffer holds them while the session
/// polls it.
struct State {
    /// None when -w records without -o: nothing is parsed.
    pipeline: Option<Pipeline<Output>>,
    recorder: Option<Recorder>,
    processes: Processes,
    /// Events the perf buffer reported lost (the pipeline counts them too, when there is one).
    lost: u64,
    /// Raw samples written for the tests and the pipeline benchmark (decode::samples_file).
    samples: Option<BufWriter<File>>,
    /// Every traced process exited.
    all_exited: bool,
    /// The traced processes found in containers.
    identities: HashMap<u32, Identity>,
    /// --container: the container of each watched cgroup (inode number).
    cgroup_containers: HashMap<u64, Identity>,
}

impl State {
    /// Take one input: record it, then apply it.
    fn input(&mut self, input: Input<'_>) {
        if let Some(r) = self.recorder.as_mut() {
            if r.failed.is_none() {
                let written = r.writer.input(&input);
                r.check(written);
                if matches!(input, Input::Tick { .. }) {
                    let flushed = r.writer.flush();
                    r.check(flushed);
                }
            }
        }
        if let Input::Lost(n) = input {
            self.lost += n;
        }
        let event = match self.pipeline.as_mut() {
            Some(p) => p.apply(&input),
            // Recording only: forks and exits still keep the process set in step.
            None => match input {
                Input::Sample(data) => decode::decode(data).ok().and_then(|e| ProcessEvent::of(&e)),
                _ => None,
            },
        };
        match event {
            Some(ProcessEvent::Started {
                pid,
                ns_pid,
                cgroup,
            }) => {
                self.processes.exec_seen(pid);
                let container = self.cgroup_containers.get(&cgroup).cloned();
                self.identify_new(pid, ns_pid, container);
            }
            Some(ProcessEvent::Forked {
                parent,
                child,
                ns_pid,
            }) => {
                self.processes.forked(child);
                let container = self.identities.get(&parent).cloned();
                self.identify_new(child, ns_pid, container);
            }
            Some(ProcessEvent::Exited(tgid)) => self.processes.exited(tgid),
            None => {}
        }
    }

    /// Say which container process `pid` is in, if it is in one: looked up once, when the
    /// process is first seen (at start, or forked).
    fn identify(&mut self, pid: u32) {
        self.identified(pid, procs::identity(pid));
    }

    /// Say which container new process `pid` is in: from /proc, or when it is already gone
    /// (quick to exit), from what BPF said of it (`ns_pid`) and where it was found (`container`:
    /// its parent's, or the watched cgroup's).
    fn identify_new(&mut self, pid: u32, ns_pid: u32, container: Option<Identity>) {
        let mut who = procs::identity(pid);
        if let (true, Some(c)) = (who.container_id.is_empty(), container) {
            who.container_id = c.container_id;
            who.pod_uid = c.pod_uid;
        }
        if ns_pid != 0 {
            who.ns_pid = ns_pid;
        }
        self.identified(pid, who);
    }

    fn identified(&mut self, pid: u32, who: Identity) {
        if who.is_empty() {
            return;
        }
        self.input(Input::Process {
            pid,
            ns_pid: who.ns_pid,
            container_id: &who.container_id,
            pod_uid: &who.pod_uid,
        });
        self.identities.insert(pid, who);
    }

    fn on_sample(&mut self, data: &[u8]) {
        if let Some(file) = self.samples.as_mut() {
            if let Err(e) = samples_file::write(file, data) {
                log::warn!("recording samples: {e}");
                self.samples = None;
            }
        }
        self.input(Input::Sample(data));
    }

    fn recording_failed(&self) -> bool {
        self.recorder.as_ref().is_some_and(|r| r.failed.is_some())
    }
}

/// CLOCK_MONOTONIC now, in ns: the clock of BPF's timestamps, and the pipeline's time.
fn monotonic_ns() -> Result<u64> {
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
        let to_stdout = args.write.as_deref() == Some(Path::new("-"));
        if to_stdout && args.output.is_some() && args.output_file.is_none() {
            bail!("-w - writes the recording to stdout: give --output-file for the output of -o");
        }
        check_filters(args)?;
        check_stats(args)?;
        if args.stats.top && !io::stdout().is_terminal() {
            bail!("--top draws on a terminal, and stdout is not one: use --stats, or -o json, to write elsewhere");
        }
        if args.write.is_some() && args.output.is_none() && args.count.is_some() {
            bail!("--count counts exchanges, which -w alone does not parse: add -o to print them");
        }
        attach::preflight(&args.pids)?;
        let targets = Targets::find(args)?;
        // Files first: a refusal to overwrite one should not wait for the BPF load.
        let capture_out: Option<Box<dyn Write>> = match &args.write {
            None => None,
            Some(_) if to_stdout => Some(Box::new(io::stdout().lock())),
            Some(path) => Some(Box::new(create_private(path, args.force)?)),
        };
        let format = match (&args.write, args.output) {
            _ if args.stats.top => Some(Format::Top),
            (Some(_), None) => None,
            (_, f) => Some(f.unwrap_or(Format::Text)),
        };
        let records_out = match format {
            Some(Format::Top) => Some(Box::new(io::sink()) as Output),
            Some(f) => Some(records_output(args, f)?),
            None => None,
        };
        attach::route_libbpf_log();
        let cpus = libbpf_rs::num_possible_cpus().context("counting the CPUs")?;
        let processes = Processes::new(&targets.pids, !args.no_children, targets.watching());
        let max_body = args.max_body.unwrap_or(DEFAULT_MAX_BODY);
        let cfg = Config {
            processes: &processes,
            follow_children: !args.no_children,
            watch_names: &args.names,
            watch_cgroups: &targets.cgroups,
            // A recording keeps every connection: its reader may filter otherwise.
            ports: if capture_out.is_some() {
                &[]
            } else {
                &args.ports
            },
            capture_bytes: args.capture_bytes,
            buffer: buffer::resolve(args.buffer)?,
            ring_bytes: buffer::ring_bytes(args.buffer_pages, cpus),
        };
        let loaded = attach::load(args.attach, &cfg)?;
        if !loaded.fallbacks.is_empty() {
            eprintln!(
                "http-trace: using {}; {}",
                loaded.method,
                loaded.fallbacks.join("; ")
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        {
            let stop = stop.clone();
            ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
                .context("installing the Ctrl-C handler")?;
        }
        let clock = Clock::now().context("reading the clocks")?;
        let recorder = match capture_out {
            None => None,
            Some(out) => {
                let header = Header {
                    http_trace: env!("CARGO_PKG_VERSION").to_string(),
                    kernel: kernel_release(),
                    started: rfc3339(clock.wall_ns(monotonic_ns()?)),
                    realtime_minus_monotonic_ns: i64::try_from(clock.offset_ns())
                        .context("the clock offset")?,
                    cpus: cpus as u32,
                    attach: loaded.method.to_string(),
                    buffer: loaded.buffer.to_string(),
                    capture_bytes: args.capture_bytes,
                    max_body,
                    follow_children: !args.no_children,
                    pids: args.pids.clone(),
                };
                let name = capture_name(args);
                let writer =
                    capture::Writer::new(BufWriter::with_capacity(256 << 10, out), &header)
                        .with_context(|| format!("writing {name}"))?;
                Some(Recorder {
                    writer,
                    name,
                    failed: None,
                })
            }
        };
        let pipeline = match (format, records_out) {
            (Some(format), Some(out)) => Some(
                Pipeline::new(
                    max_body as usize,
                    match format {
                        Format::Top => Printer::new(out, format, false, clock)
                            .with_board(Board::new(args.stats.routes.clone())),
                        _ => Printer::new(out, format, args.verbose, clock),
                    },
                    args.count,
                )
                .with_filter(args.filter())
                .with_options_of(args),
            ),
            _ => None,
        };
        let state = RefCell::new(State {
            pipeline,
            recorder,
            processes,
            lost: 0,
            samples: match std::env::var_os(samples_file::ENV) {
                Some(path) => {
                    Some(BufWriter::new(File::create(&path).with_context(|| {
                        format!("creating {}", path.to_string_lossy())
                    })?))
                }
                None => None,
            },
            all_exited: false,
            identities: HashMap::new(),
            cgroup_containers: targets.cgroup_containers.clone(),
        });
        Ok(Self {
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
        let mut pids = procs::named(&self.names);
        for id in &self.container_ids {
            pids.extend(procs::in_container(id).0);
        }
        pids
    }

    /// Take the terminal over for the live view, titled with the banner.
    fn open_screen(&self, banner: String) -> Result<()> {
        let screen = Screen::open().context("opening the terminal for --top")?;
        if let Some(board) = self.board_of(&mut self.state.borrow_mut()) {
            board.title = banner;
        }
        *self.screen.borrow_mut() = Some(screen);
        self.last_draw.set(Instant::now());
        self.draw(&mut self.state.borrow_mut())
    }

    fn board_of<'s>(&self, s: &'s mut State) -> Option<&'s mut Board> {
        s.pipeline.as_mut().and_then(Pipeline::board)
    }

    fn draw(&self, s: &mut State) -> Result<()> {
        if let (Some(screen), Some(board)) = (self.screen.borrow_mut().as_mut(), self.board_of(s)) {
            screen.draw(board).context("drawing the live view")?;
        }
        Ok(())
    }

    /// The live view: keys pressed, and a redraw once a second (or when the sort changed);
    /// false when q was pressed.
    fn update_screen(&self, s: &mut State, now: Instant) -> Result<bool> {
        let commands = match self.screen.borrow().as_ref() {
            Some(screen) => screen.commands().context("reading the keyboard")?,
            None => return Ok(true),
        };
        let mut redraw = false;
        for c in commands {
            match c {
                top::Command::Quit => return Ok(false),
                top::Command::Sort(key) => {
                    if let Some(board) = self.board_of(s) {
                        board.sort_by(key);
                        redraw = true;
                    }
                }
            }
        }
        let elapsed = now.saturating_duration_since(self.last_draw.get());
        if elapsed >= TOP_REFRESH {
            self.last_draw.set(now);
            if let Some(board) = self.board_of(s) {
                board.refresh(elapsed);
            }
            redraw = true;
        }
        if redraw {
            self.draw(s)?;
        }
        Ok(true)
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
        for pid in alive {
            for c in procs::open_connections(pid) {
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
        self.deadline.set(self.duration.map(|d| Instant::now() + d));
        Ok(banner)
    }

    /// Wait for events up to one poll interval and take them in; false when tracing should end.
    fn poll_once(&self, events: &EventBuffer<'_>) -> Result<bool> {
        events.poll(POLL_INTERVAL)?;
        let now = Instant::now();
        let skel = &self.loaded.skel;
        self.state.borrow_mut().processes.update(skel);
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
        if now >= self.next_liveness.get() {
            self.next_liveness.set(now + LIVENESS_INTERVAL);
            // Exits BPF reported are handled above; this catches any it could not send.
            for pid in s.processes.check_liveness(skel) {
                s.input(Input::ProcessGone(pid));
            }
            if let Some(pipeline) = s.pipeline.as_ref() {
                for id in gone_unix_sockets(pipeline, &mut self.unix_missed.borrow_mut()) {
                    s.input(Input::SocketGone(id));
                }
            }
        }
        if let Some(pipeline) = s.pipeline.as_mut() {
            for u in pipeline.take_unix_gone() {
                processes::forget_socket(skel, &u);
            }
        }
        if s.processes.is_empty() {
            s.input(Input::Print);
            s.all_exited = true;
            return Ok(false);
        }
        Ok(true)
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
        };
        if let Some(r) = s.recorder.as_mut() {
            if r.failed.is_none() {
                let written = r.writer.end(&kernel.to_end(s.all_exited));
                r.check(written);
            }
        }
        match s.pipeline.as_mut() {
            Some(pipeline) => {
                pipeline.finish();
                pipeline.print_stats();
                if let Some(board) = pipeline.board() {
                    eprint!("{}", board.stats().table());
                }
                pipeline.flush();
                eprintln!("{}", summary(pipeline, &kernel));
            }
            None => {
                let r = s.recorder.as_ref().expect("-w without -o records");
                eprintln!("{}", recording_summary(r, s.lost, &kernel));
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

/// What to trace: the processes named by --pid, --name and --container, and what BPF watches
/// for as programs start.
struct Targets {
    pids: Vec<u32>,
    /// The cgroups of the containers (directory inode numbers).
    cgroups: Vec<u64>,
    /// Each of those cgroups' container.
    cgroup_containers: HashMap<u64, Identity>,
    container_ids: Vec<String>,
    /// For the banner.
    said: String,
}

impl Targets {
    fn find(args: &Args) -> Result<Targets> {
        let mut pids = args.pids.clone();
        let mut cgroups = Vec::new();
        let mut cgroup_containers = HashMap::new();
        let mut container_ids = Vec::new();
        let mut said = Vec::new();
        for arg in &args.containers {
            let id = container_id(arg)?;
            let (found, ids) = procs::in_container(&id);
            match ids.len() {
                0 => bail!(
                    "no running container has the id {id}{}",
                    if id == *arg {
                        String::new()
                    } else {
                        format!(" ({arg})")
                    }
                ),
                1 => {}
                _ => bail!("{arg} names {} containers: give more of the id", ids.len()),
            }
            for &pid in &found {
                let who = procs::identity(pid);
                for ino in procs::cgroup_inodes(pid) {
                    if !cgroups.contains(&ino) {
                        cgroups.push(ino);
                        cgroup_containers.insert(
                            ino,
                            Identity {
                                ns_pid: 0,
                                ..who.clone()
                            },
                        );
                    }
                }
            }
            said.push(format!(
                "container {} ({}, and those started in it)",
                &ids[0][..12],
                counted(found.len() as u64, "process", "processes")
            ));
            pids.extend(found);
            container_ids.push(ids[0].clone());
        }
        if !args.names.is_empty() {
            let found = procs::named(&args.names);
            said.push(format!(
                "programs named {} ({} running, and those started later)",
                args.names.join(", "),
                found.len()
            ));
            pids.extend(found);
        }
        pids.sort_unstable();
        pids.dedup();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(
                "; watching {}: tracing goes on when none is left",
                said.join("; ")
            )
        };
        Ok(Targets {
            pids,
            cgroups,
            cgroup_containers,
            container_ids,
            said,
        })
    }

    fn watching(&self) -> bool {
        !self.said.is_empty()
    }
}

/// The full or partial id of the container `arg` names: its id (12 hex digits or more), or its
/// name, resolved by the docker, podman or crictl command.
fn container_id(arg: &str) -> Result<String> {
    let lower = arg.to_ascii_lowercase();
    if lower.len() >= 12 && lower.len() <= 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(lower);
    }
    let tries: [(&str, &[&str]); 3] = [
        (
            "docker",
            &["inspect", "--type", "container", "--format", "{{.Id}}"],
        ),
        ("podman", &["container", "inspect", "--format", "{{.Id}}"]),
        ("crictl", &["ps", "--quiet", "--name"]),
    ];
    let mut said = Vec::new();
    for (cmd, args) in tries {
        match std::process::Command::new(cmd).args(args).arg(arg).output() {
            Err(_) => said.push(format!("no {cmd}")),
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let ids: Vec<&str> = text.split_whitespace().collect();
                match (out.status.success(), ids.as_slice()) {
                    (true, [id]) if id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        return Ok(id.to_ascii_lowercase())
                    }
                    _ => said.push(format!("{cmd} does not know it")),
                }
            }
        }
    }
    bail!(
        "--container {arg}: not a container id (12 hex digits or more, as docker ps shows) nor a name that docker, podman or crictl resolves ({})",
        said.join(", ")
    )
}

/// The pipeline's redaction and statistics, as the command line asks for them.
trait WithOptions {
    fn with_options_of(self, args: &Args) -> Self;
}

impl<W: Write> WithOptions for Pipeline<W> {
    fn with_options_of(self, args: &Args) -> Self {
        let this =
            self.with_redactor((!args.show_secrets).then(|| Redactor::new(&args.redact_headers)));
        // The live view keeps its own.
        if !args.stats.enabled || args.stats.top {
            return this;
        }
        let every = args
            .stats
            .interval
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        this.with_stats(Stats::new(args.stats.routes.clone()), every)
    }
}

/// Filters select exchanges: they need an output made of exchanges.
fn check_filters(args: &Args) -> Result<()> {
    if !args.filter().is_active() {
        return Ok(());
    }
    if args.output == Some(Format::Pcapng) {
        bail!("filters select exchanges, and -o pcapng writes whole connections: filter in Wireshark, or use another -o");
    }
    if args.write.is_some() && args.output.is_none() {
        bail!("-w records everything, unfiltered: give the filters to -r when reading it, or add -o to print the filtered exchanges");
    }
    Ok(())
}

/// --stats counts parsed exchanges: -w alone parses nothing.
fn check_stats(args: &Args) -> Result<()> {
    if args.stats.enabled && args.write.is_some() && args.output.is_none() {
        bail!("--stats counts exchanges, which -w alone does not parse: give it to -r when reading the recording, or add -o");
    }
    Ok(())
}

/// What the banner says of secrets: only that they are shown, when they are.
fn secrets_said(shown: bool) -> &'static str {
    if shown {
        "; secrets shown (--show-secrets)"
    } else {
        ""
    }
}

/// How the recording is named in messages.
fn capture_name(args: &Args) -> String {
    match args.write.as_deref() {
        Some(p) if p == Path::new("-") => "stdout".to_string(),
        Some(p) => p.display().to_string(),
        None => String::new(),
    }
}

/// The running kernel's release, as `uname -r` says it.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Replay the capture file at `path` (- for stdin) through the pipeline.
fn replay(args: &Args, path: &Path) -> Result<()> {
    check_filters(args)?;
    let name = path.display().to_string();
    let input: Box<dyn io::BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        Box::new(BufReader::with_capacity(
            256 << 10,
            File::open(path).with_context(|| format!("opening {name}"))?,
        ))
    };
    let mut reader = capture::Reader::new(input).map_err(|e| anyhow!("{name}: {e}"))?;
    let h = reader.header.clone();
    let clock = Clock::fixed(i128::from(h.realtime_minus_monotonic_ns));
    let max_body = args.max_body.unwrap_or(h.max_body);
    let format = args.output.unwrap_or(Format::Text);
    let printer = Printer::new(records_output(args, format)?, format, args.verbose, clock);
    let mut pipeline = Pipeline::new(max_body as usize, printer, args.count)
        .with_filter(args.filter())
        .with_options_of(args);
    eprintln!(
        "http-trace: reading {name}: pid {} traced from {} on Linux {} with {} and the {} \
         (http-trace {}){}",
        h.pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        h.started,
        h.kernel,
        h.attach,
        h.buffer,
        h.http_trace,
        secrets_said(args.show_secrets)
    );
    let end = loop {
        match reader.next_entry() {
            // Applied to the end even after --count's last record: the summary counts it all.
            Ok(Some(Entry::Input(input))) => {
                pipeline.apply(&input);
            }
            Ok(Some(Entry::End(end))) => break Some(end),
            Ok(None) => {
                eprintln!(
                    "http-trace: note: {name} ends without its last record (the recording was \
                     stopped while writing): read up to there"
                );
                break None;
            }
            Err(ReadError::Cut { offset }) => {
                eprintln!(
                    "http-trace: note: {name} is cut short at byte {offset} (the recording was \
                     stopped while writing): read up to there"
                );
                break None;
            }
            Err(e) => bail!("{name}: {e}"),
        }
    };
    let end = end.unwrap_or_default();
    if end.all_exited {
        eprintln!("http-trace: every traced process has exited");
    }
    pipeline.finish();
    pipeline.print_stats();
    pipeline.flush();
    eprintln!("{}", summary(&pipeline, &KernelCounts::from_end(&end)));
    if let Some(e) = pipeline.output_error() {
        bail!("writing the output: {e}");
    }
    Ok(())
}

/// What the kernel side and the process set counted: read at the end of a live run, or from a
/// recording's last record.
struct KernelCounts {
    drops: Drops,
    kretprobe_misses: u64,
    skipped_runs: u64,
    children_followed: u64,
    processes_exited: u64,
    processes_started: u64,
}

impl KernelCounts {
    fn to_end(&self, all_exited: bool) -> End {
        End {
            all_exited,
            drops: self.drops.0.to_vec(),
            kretprobe_misses: self.kretprobe_misses,
            skipped_runs: self.skipped_runs,
            children_followed: self.children_followed,
            processes_exited: self.processes_exited,
            processes_started: self.processes_started,
        }
    }

    fn from_end(end: &End) -> Self {
        let mut drops = [0u64; DROP_KINDS];
        for (d, &n) in drops.iter_mut().zip(&end.drops) {
            *d = n;
        }
        Self {
            drops: Drops(drops),
            kretprobe_misses: end.kretprobe_misses,
            skipped_runs: end.skipped_runs,
            children_followed: end.children_followed,
            processes_exited: end.processes_exited,
            processes_started: end.processes_started,
        }
    }
}

/// The summary of -w without -o: what was recorded and what was lost.
fn recording_summary(r: &Recorder, perf_lost: u64, k: &KernelCounts) -> String {
    let mut line = format!(
        "http-trace: {} ({}) recorded to {}, {} lost",
        counted(r.writer.samples, "event", "events"),
        counted(r.writer.sample_bytes, "byte", "bytes"),
        r.name,
        counted(perf_lost.max(k.drops.output_failed()), "event", "events")
    );
    for (n, one, many) in k.drops.named().chain(k.tail()) {
        if n > 0 {
            line.push_str(", ");
            line.push_str(&counted(n, one, many));
        }
    }
    line
}

impl KernelCounts {
    /// The counters the summary ends with.
    fn tail(&self) -> impl Iterator<Item = (u64, &'static str, &'static str)> {
        [
            (
                self.kretprobe_misses,
                "return missed by kretprobes",
                "returns missed by kretprobes",
            ),
            (
                self.skipped_runs,
                "probe run the kernel skipped (another BPF program was running)",
                "probe runs the kernel skipped (another BPF program was running)",
            ),
        ]
        .into_iter()
    }
}

/// `n` and its noun, singular or plural.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary<W: io::Write>(s: &Pipeline<W>, k: &KernelCounts) -> String {
    let c = &s.counts;
    let t = &s.tracker.stats;
    let parsed = s.tracker.parser_stats();
    // BPF counts every event it could not send. Perf reports the same events only when its
    // next event fits, so after the last one it never does; the ring has no lost callback.
    let lost = c.lost_events.max(k.drops.output_failed());
    let mut line = format!(
        "http-trace: {} captured, {} lost",
        counted(c.exchanges, "exchange", "exchanges"),
        counted(lost, "event", "events")
    );
    let extras: [(u64, &str, &str); 26] = [
        (
            c.filtered,
            "exchange not shown: filtered",
            "exchanges not shown: filtered",
        ),
        (c.unanswered, "without a response", "without a response"),
        (c.incomplete, "incomplete", "incomplete"),
        (
            t.unpaired_responses,
            "response whose request was not seen",
            "responses whose request was not seen",
        ),
        (
            t.early_responses,
            "response sent before a whole request came (an early error answer), not paired",
            "responses sent before a whole request came (early error answers), not paired",
        ),
        (
            parsed.switched_bytes,
            "byte after a protocol switch left alone",
            "bytes after a protocol switch left alone",
        ),
        (c.malformed, "malformed", "malformed"),
        (
            parsed.oversized_heads,
            "message head larger than 64 KiB given up (counted malformed)",
            "message heads larger than 64 KiB given up (counted malformed)",
        ),
        (
            t.requests_given_up,
            "request given up with its response: more than 4096 waited on one connection",
            "requests given up with their responses: more than 4096 waited on one connection",
        ),
        (
            parsed.heads_shed,
            "unfinished message head given up to keep within 128 MiB held",
            "unfinished message heads given up to keep within 128 MiB held",
        ),
        (
            t.requests_shed,
            "request waiting for its response given up to keep within 128 MiB held",
            "requests waiting for their responses given up to keep within 128 MiB held",
        ),
        (
            t.responses_skipped,
            "response to a request given up, not shown",
            "responses to requests given up, not shown",
        ),
        (
            t.events_missing.saturating_sub(lost),
            "event missing",
            "events missing",
        ),
        (
            t.gaps_shed,
            "gap in a connection given up before its timeout to keep within 32 MiB of events waiting",
            "gaps in connections given up before their timeout to keep within 32 MiB of events waiting",
        ),
        (
            t.events_after_end,
            "event after its connection's end (a call racing the end), not used",
            "events after their connection's end (calls racing the end), not used",
        ),
        (
            t.partial_heads,
            "partial message head dropped",
            "partial message heads dropped",
        ),
        (
            t.bytes_not_kept,
            "byte counted but not captured",
            "bytes counted but not captured",
        ),
        (
            t.bytes_unseen,
            "byte moved outside the calls followed (io_uring, sendmmsg, processes not traced), \
             not captured",
            "bytes moved outside the calls followed (io_uring, sendmmsg, processes not traced), \
             not captured",
        ),
        (
            parsed.non_http_bytes,
            "byte of non-HTTP traffic skipped",
            "bytes of non-HTTP traffic skipped",
        ),
        (
            parsed.resync_bytes,
            "byte skipped to resynchronise",
            "bytes skipped to resynchronise",
        ),
        (
            k.kretprobe_misses,
            "return missed by kretprobes",
            "returns missed by kretprobes",
        ),
        (
            k.skipped_runs,
            "probe run the kernel skipped (another BPF program was running)",
            "probe runs the kernel skipped (another BPF program was running)",
        ),
        (c.bad_samples, "undecodable sample", "undecodable samples"),
        (
            k.children_followed,
            "child process followed",
            "child processes followed",
        ),
        (
            k.processes_started,
            "process started later followed",
            "processes started later followed",
        ),
        (k.processes_exited, "process exited", "processes exited"),
    ];
    // BPF's counters after what user space counted of the stream, before the rest.
    let (stream, rest) = extras.split_at(12);
    for &(n, one, many) in stream
        .iter()
        .chain(&k.drops.named().collect::<Vec<_>>())
        .chain(rest)
    {
        if n > 0 {
            line.push_str(", ");
            line.push_str(&counted(n, one, many));
        }
    }
    line
}
