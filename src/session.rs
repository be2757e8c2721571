//! One tracing session: start (checks, load, attach, the banner), poll once per interval (take
//! events in, decode, reassemble, print), and finish (drain, report what is pending, the
//! summary). It ends on Ctrl-C, --duration, --count, a closed output, or when every traced
//! process is gone.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::io::{self, StdoutLock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::attach::buffer::{self, EventBuffer};
use crate::attach::{self, Config, Loaded};
use crate::bpf::{self, Drops};
use crate::cli::Args;
use crate::decode::samples_file;
use crate::output::{Clock, Printer};
use crate::pipeline::{Pipeline, ProcessEvent};
use crate::processes::{self, Processes};
use crate::procs;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);

/// End the Unix connections whose socket is gone. Where no call shows a Unix socket's end
/// (socket-tracepoint and raw-tracepoint see no close(2); a socket shared with another process
/// outlives the close that was seen), its inode leaves /proc/PID/net/unix, the list of the
/// process's network namespace. Read only while Unix connections are open.
fn sweep_unix_sockets<W: io::Write>(pipeline: &mut Pipeline<W>) {
    let open = pipeline.unix_sockets();
    let mut listed: HashMap<u32, Option<HashSet<u64>>> = HashMap::new();
    for u in open {
        let inodes = listed
            .entry(u.tgid)
            .or_insert_with(|| procs::unix_socket_inodes(u.tgid));
        // A process gone: its exit ends its connections.
        if inodes.as_ref().is_some_and(|set| !set.contains(&u.ino)) {
            log::debug!("unix socket {} (connection {}) is gone", u.ino, u.conn_id);
            pipeline.socket_gone(u);
        }
    }
}

/// What the event callbacks change, behind a RefCell: the buffer holds them while the session
/// polls it.
struct State {
    pipeline: Pipeline<StdoutLock<'static>>,
    processes: Processes,
    /// Raw samples written for the pipeline benchmark (decode::samples_file).
    recording: Option<io::BufWriter<std::fs::File>>,
}

impl State {
    fn on_sample(&mut self, data: &[u8]) {
        if let Some(file) = self.recording.as_mut() {
            if let Err(e) = samples_file::write(file, data) {
                log::warn!("recording samples: {e}");
                self.recording = None;
            }
        }
        match self.pipeline.sample(data) {
            Some(ProcessEvent::Forked(child)) => self.processes.forked(child),
            Some(ProcessEvent::Exited(tgid)) => self.processes.exited(tgid),
            None => {}
        }
    }
}

struct Session {
    loaded: Loaded,
    state: RefCell<State>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    next_liveness: Cell<Instant>,
}

pub fn run(args: &Args) -> Result<()> {
    let session = Session::start(args)?;
    let events = session.open_buffer(args)?;
    session.announce()?;
    while session.poll_once(&events)? {}
    session.finish(events);
    Ok(())
}

impl Session {
    /// Check, load and attach.
    fn start(args: &Args) -> Result<Self> {
        attach::preflight(&args.pids)?;
        attach::route_libbpf_log();
        let cpus = libbpf_rs::num_possible_cpus().context("counting the CPUs")?;
        let processes = Processes::new(&args.pids, !args.no_children);
        let cfg = Config {
            processes: &processes,
            follow_children: !args.no_children,
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
        let printer = Printer::new(io::stdout().lock(), args.output, args.verbose, clock);
        let state = RefCell::new(State {
            pipeline: Pipeline::new(args.max_body as usize, printer, args.count),
            processes,
            recording: match std::env::var_os(samples_file::ENV) {
                Some(path) => Some(io::BufWriter::new(
                    std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.to_string_lossy()))?,
                )),
                None => None,
            },
        });
        Ok(Self {
            loaded,
            state,
            stop,
            deadline: args.duration.map(|d| Instant::now() + d),
            next_liveness: Cell::new(Instant::now() + LIVENESS_INTERVAL),
        })
    }

    fn open_buffer(&self, args: &Args) -> Result<EventBuffer<'_>> {
        EventBuffer::open(
            &self.loaded.skel,
            self.loaded.buffer,
            args.buffer_pages,
            |data| self.state.borrow_mut().on_sample(data),
            |n| self.state.borrow_mut().pipeline.lost(n),
        )
    }

    /// Find what the scan at start missed, then say that tracing has started: only now can the
    /// BPF side deliver events.
    fn announce(&self) -> Result<()> {
        for warning in &self.loaded.warnings {
            eprintln!("http-trace: {warning}");
        }
        let s = &mut *self.state.borrow_mut();
        s.processes.rescan(&self.loaded.skel)?;
        let mut open = 0u64;
        for pid in s.processes.alive() {
            for c in procs::open_connections(pid) {
                s.pipeline.tracker.preopened(pid, c.fd, c.role);
                open += 1;
            }
        }
        let named: Vec<String> = s.processes.named().iter().map(u32::to_string).collect();
        let children = s.processes.children();
        eprintln!(
            "http-trace: tracing pid {}{} with {} and the {}{}; Ctrl-C to stop",
            named.join(", "),
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
            if open > 0 {
                format!(
                    "; {} already open, followed from their next message",
                    counted(open, "connection", "connections")
                )
            } else {
                String::new()
            },
        );
        Ok(())
    }

    /// Wait for events up to one poll interval and take them in; false when tracing should end.
    fn poll_once(&self, events: &EventBuffer<'_>) -> Result<bool> {
        events.poll(POLL_INTERVAL)?;
        let now = Instant::now();
        let skel = &self.loaded.skel;
        self.state.borrow_mut().processes.update(skel);
        if self.state.borrow().pipeline.has_gaps() {
            // A missing event may sit in a CPU buffer that did not signal yet: drain them all.
            events.consume()?;
            self.state.borrow_mut().pipeline.expire_gaps(now);
        }
        let s = &mut *self.state.borrow_mut();
        s.pipeline.print_records();
        s.pipeline.flush();
        if self.stop.load(Ordering::SeqCst)
            || s.pipeline.done()
            || self.deadline.is_some_and(|d| now >= d)
        {
            return Ok(false);
        }
        if now >= self.next_liveness.get() {
            self.next_liveness.set(now + LIVENESS_INTERVAL);
            // Exits BPF reported are handled above; this catches any it could not send.
            for pid in s.processes.check_liveness(skel) {
                s.pipeline.process_exited(pid);
            }
            sweep_unix_sockets(&mut s.pipeline);
        }
        for u in s.pipeline.take_unix_gone() {
            processes::forget_socket(skel, &u);
        }
        if s.processes.is_empty() {
            s.pipeline.print_records();
            eprintln!("http-trace: every traced process has exited");
            return Ok(false);
        }
        Ok(true)
    }

    /// Take what is still buffered, report what is pending, and print the summary.
    fn finish(&self, events: EventBuffer<'_>) {
        if let Err(e) = events.consume() {
            log::warn!("{e:#}");
        }
        drop(events);
        let s = &mut *self.state.borrow_mut();
        s.processes.update(&self.loaded.skel);
        s.pipeline.finish();
        let drops = bpf::drops(&self.loaded.skel);
        // BPF counts every event it could not send. Perf reports the same events only when its
        // next event fits, so after the last one it never does; the ring has no lost callback.
        let counts = &mut s.pipeline.counts;
        counts.lost_events = counts.lost_events.max(drops.output_failed());
        let kernel = KernelCounts {
            drops,
            kretprobe_misses: self.loaded.kretprobe_misses(),
            skipped_runs: attach::kernel_skips(&self.loaded.skel),
        };
        eprintln!("{}", summary(&s.pipeline, &s.processes, &kernel));
    }
}

/// What the kernel side counted.
struct KernelCounts {
    drops: Drops,
    kretprobe_misses: u64,
    skipped_runs: u64,
}

/// `n` and its noun, singular or plural.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary<W: io::Write>(s: &Pipeline<W>, p: &Processes, k: &KernelCounts) -> String {
    let c = &s.counts;
    let t = &s.tracker.stats;
    let parsed = s.tracker.parser_stats();
    let mut line = format!(
        "http-trace: {} captured, {} lost",
        counted(c.exchanges, "exchange", "exchanges"),
        counted(c.lost_events, "event", "events")
    );
    let extras: [(u64, &str, &str); 17] = [
        (c.unanswered, "without a response", "without a response"),
        (c.incomplete, "incomplete", "incomplete"),
        (
            t.unpaired_responses,
            "response whose request was not seen",
            "responses whose request was not seen",
        ),
        (
            parsed.switched_bytes,
            "byte after a protocol switch left alone",
            "bytes after a protocol switch left alone",
        ),
        (c.malformed, "malformed", "malformed"),
        (
            t.events_missing.saturating_sub(c.lost_events),
            "event missing",
            "events missing",
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
            p.followed(),
            "child process followed",
            "child processes followed",
        ),
        (p.ended(), "process exited", "processes exited"),
    ];
    // BPF's counters after what user space counted of the stream, before the rest.
    let (stream, rest) = extras.split_at(11);
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
