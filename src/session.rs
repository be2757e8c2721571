//! One tracing session: poll the event buffer, decode, reassemble, print; end on Ctrl-C,
//! --duration, --count or when every traced process is gone; then print the summary.

use std::cell::RefCell;
use std::io::{self, StdoutLock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::buffer::{self, EventBuffer};
use crate::cli::Args;
use crate::conn::{Record, Tracker};
use crate::event::{self, Event};
use crate::loader::{self, Config};
use crate::output::{Clock, Printer};
use crate::procs;
use crate::skel::types::ht_drop;
use crate::skel::HttpTraceSkel;

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const LIVENESS_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Counts {
    exchanges: u64,
    /// Exchanges whose request or response was cut short.
    incomplete: u64,
    /// Requests with no response when their connection or tracing ended.
    unanswered: u64,
    malformed: u64,
    lost_events: u64,
    bad_samples: u64,
}

struct State {
    tracker: Tracker,
    printer: Printer<StdoutLock<'static>>,
    records: Vec<Record>,
    counts: Counts,
    /// Requests still to print under --count.
    remaining: Option<u64>,
    /// Output is gone (e.g. a closed pipe): stop quietly.
    output_closed: bool,
    /// When the current batch of events is taken in: gaps are timed in poll intervals, which
    /// spares a clock read per event.
    now: Instant,
    /// Processes that exited, and processes forked, as BPF reported them.
    exited: Vec<u32>,
    forked: Vec<u32>,
}

impl State {
    fn on_sample(&mut self, data: &[u8]) {
        match event::decode(data) {
            Ok(Event::Conn(chunk)) => self.tracker.push(&chunk, self.now, &mut self.records),
            Ok(Event::Exit { tgid }) => {
                self.tracker.process_exited(tgid, &mut self.records);
                self.exited.push(tgid);
            }
            Ok(Event::Fork { child, .. }) => self.forked.push(child),
            Err(e) => {
                self.counts.bad_samples += 1;
                log::warn!("skipping a sample: {e}");
            }
        }
    }

    /// Print what a batch of events completed, oldest first: connections' events come through
    /// different CPUs' buffers, so completion order is not time order.
    fn print_records(&mut self) {
        // Nearly sorted already: the sort finds the runs. The buffer is kept for the next batch.
        let mut records = std::mem::take(&mut self.records);
        records.sort_by_key(Record::ts_ns);
        for rec in records.drain(..) {
            if self.done() {
                break;
            }
            match &rec {
                Record::Exchange {
                    request, response, ..
                } => {
                    self.counts.exchanges += 1;
                    if [request, response]
                        .iter()
                        .any(|m| m.as_ref().is_some_and(|m| !m.complete))
                    {
                        self.counts.incomplete += 1;
                    }
                    if response.is_none() {
                        self.counts.unanswered += 1;
                    }
                    if let Some(n) = self.remaining.as_mut() {
                        *n -= 1;
                    }
                }
                Record::Malformed { .. } => self.counts.malformed += 1,
            }
            if let Err(e) = self.printer.print(&rec) {
                self.output_failed(e);
            }
        }
        self.records = records;
    }

    /// Say which processes BPF saw forked or exited, and keep `alive` and the BPF maps in step.
    fn report_processes(&mut self, alive: &mut Vec<u32>, skel: &HttpTraceSkel<'_>) {
        for pid in self.forked.drain(..) {
            // The rescan at start may have found it already.
            if !alive.contains(&pid) {
                eprintln!("http-trace: following new child process {pid}");
                alive.push(pid);
            }
        }
        for pid in self.exited.drain(..) {
            if let Some(i) = alive.iter().position(|&p| p == pid) {
                alive.swap_remove(i);
                eprintln!("http-trace: process {pid} exited");
            }
            loader::forget_process(skel, pid);
        }
    }

    fn done(&self) -> bool {
        self.output_closed || self.remaining == Some(0)
    }

    fn flush(&mut self) {
        if let Err(e) = self.printer.flush() {
            self.output_failed(e);
        }
    }

    fn output_failed(&mut self, e: io::Error) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("http-trace: error: writing output: {e}");
        }
        self.output_closed = true;
    }
}

pub fn run(args: &Args) -> Result<()> {
    loader::preflight(&args.pids)?;
    loader::route_libbpf_log();
    let cpus = libbpf_rs::num_possible_cpus().context("counting the CPUs")?;
    let mut pids = args.pids.clone();
    if !args.no_children {
        pids.extend(procs::descendants(&args.pids));
    }
    let cfg = Config {
        pids: pids.clone(),
        follow_children: !args.no_children,
        capture_bytes: args.capture_bytes,
        buffer: buffer::resolve(args.buffer)?,
        ring_bytes: buffer::ring_bytes(args.buffer_pages, cpus),
    };
    let loaded = loader::load(args.attach, &cfg)?;
    if !loaded.fallbacks.is_empty() {
        let why: Vec<String> = loaded
            .fallbacks
            .iter()
            .map(|(m, e)| format!("{m} failed: {e}"))
            .collect();
        eprintln!("http-trace: using {}; {}", loaded.method, why.join("; "));
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }

    let clock = Clock::now().context("reading the clocks")?;
    let state = RefCell::new(State {
        tracker: Tracker::new(args.max_body as usize),
        printer: Printer::new(io::stdout().lock(), args.output, args.verbose, clock),
        records: Vec::new(),
        counts: Counts::default(),
        remaining: args.count,
        output_closed: false,
        now: Instant::now(),
        exited: Vec::new(),
        forked: Vec::new(),
    });
    let events = EventBuffer::open(
        &loaded.skel,
        cfg.buffer,
        args.buffer_pages,
        |data| state.borrow_mut().on_sample(data),
        |n| state.borrow_mut().counts.lost_events += n,
    )?;
    for warning in &loaded.warnings {
        eprintln!("http-trace: {warning}");
    }
    let mut alive = pids;
    if !args.no_children {
        // Children forked between the scan and the attach: BPF follows later ones itself.
        for pid in procs::descendants(&args.pids) {
            if !alive.contains(&pid) {
                loader::track(&loaded.skel, pid)?;
                alive.push(pid);
            }
        }
    }
    let mut open = 0;
    for &pid in &alive {
        for c in procs::open_connections(pid) {
            state.borrow_mut().tracker.preopened(pid, c.fd, c.role);
            open += 1;
        }
    }
    // Only now can the BPF side deliver events: say that tracing has started.
    let named: Vec<String> = args.pids.iter().map(u32::to_string).collect();
    let plural = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let children = alive.len() - args.pids.len();
    eprintln!(
        "http-trace: tracing pid {}{} with {} and the {}{}; Ctrl-C to stop",
        named.join(", "),
        if children > 0 {
            format!(
                " and {}",
                plural(children, "child process", "child processes")
            )
        } else {
            String::new()
        },
        loaded.method,
        cfg.buffer,
        if open > 0 {
            format!(
                "; {} already open, followed from their next message",
                plural(open, "connection", "connections")
            )
        } else {
            String::new()
        },
    );

    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut next_liveness = Instant::now() + LIVENESS_INTERVAL;
    loop {
        events.poll(POLL_INTERVAL)?;
        let now = Instant::now();
        state.borrow_mut().now = now;
        state
            .borrow_mut()
            .report_processes(&mut alive, &loaded.skel);
        if state.borrow().tracker.has_gaps() {
            // A missing event may sit in a CPU buffer that did not signal yet: drain them all.
            events.consume()?;
            let s = &mut *state.borrow_mut();
            s.tracker.expire_gaps(now, &mut s.records);
        }
        state.borrow_mut().print_records();
        state.borrow_mut().flush();
        if stop.load(Ordering::SeqCst)
            || state.borrow().done()
            || deadline.is_some_and(|d| now >= d)
        {
            break;
        }
        if now >= next_liveness {
            next_liveness = now + LIVENESS_INTERVAL;
            // Exits BPF reported are handled above; this catches any it could not send.
            alive.retain(|&pid| {
                let up = procs::process_alive(pid);
                if !up {
                    eprintln!("http-trace: process {pid} exited");
                    loader::forget_process(&loaded.skel, pid);
                    let s = &mut *state.borrow_mut();
                    s.tracker.process_exited(pid, &mut s.records);
                }
                up
            });
        }
        if alive.is_empty() {
            state.borrow_mut().print_records();
            break;
        }
    }

    // Take what is still buffered, then report what is pending.
    if let Err(e) = events.consume() {
        log::warn!("{e:#}");
    }
    drop(events);
    let mut s = state.into_inner();
    s.report_processes(&mut alive, &loaded.skel);
    s.tracker.finish(&mut s.records);
    s.print_records();
    s.flush();
    let drops = loader::bpf_drops(&loaded.skel);
    // BPF counts every event it could not send. Perf reports the same events only when its next
    // event fits, so after the last one it never does; the ring has no lost callback at all.
    s.counts.lost_events = s
        .counts
        .lost_events
        .max(drops[ht_drop::HT_DROP_OUTPUT_FAILED.0 as usize]);
    let kernel = KernelCounts {
        drops,
        kretprobe_misses: loaded.kretprobe_misses(),
        skipped_runs: loader::kernel_skips(&loaded.skel),
    };
    eprintln!("{}", summary(&s, &kernel));
    Ok(())
}

/// What the kernel side counted.
struct KernelCounts {
    drops: loader::Drops,
    kretprobe_misses: u64,
    skipped_runs: u64,
}

fn summary(s: &State, k: &KernelCounts) -> String {
    let drops = k.drops;
    let c = &s.counts;
    let t = &s.tracker.stats;
    let p = s.tracker.parser_stats();
    let mut line = format!(
        "http-trace: {} exchanges captured, {} events lost",
        c.exchanges, c.lost_events
    );
    let mut extra = |n: u64, what: &str| {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    };
    extra(c.unanswered, "without a response");
    extra(c.incomplete, "incomplete");
    extra(t.unpaired_responses, "responses whose request was not seen");
    extra(p.switched_bytes, "bytes after a protocol switch left alone");
    extra(c.malformed, "malformed");
    extra(
        t.events_missing.saturating_sub(c.lost_events),
        "events missing",
    );
    extra(t.partial_heads, "partial message heads dropped");
    extra(t.bytes_not_kept, "bytes counted but not captured");
    extra(p.non_http_bytes, "bytes of non-HTTP traffic skipped");
    extra(p.resync_bytes, "bytes skipped to resynchronise");
    // What BPF counted, in this order (HT_DROP_OUTPUT_FAILED is in the events lost).
    for (kind, what) in [
        (ht_drop::HT_DROP_SOCKETS_FULL, "connections not tracked (map full)"),
        (ht_drop::HT_DROP_INFLIGHT_FULL, "syscalls not followed (map full)"),
        (ht_drop::HT_DROP_PROCESSES_FULL, "child processes not followed (map full)"),
        (
            ht_drop::HT_DROP_OTHER_IO,
            "socket transfers outside the syscalls followed (io_uring, sendmmsg/recvmmsg) not captured",
        ),
        (ht_drop::HT_DROP_READ_FAILED, "user-memory reads failed"),
    ] {
        extra(drops[kind.0 as usize], what);
    }
    extra(k.kretprobe_misses, "returns missed by kretprobes");
    extra(
        k.skipped_runs,
        "probe runs the kernel skipped (another BPF program was running)",
    );
    extra(c.bad_samples, "undecodable samples");
    line
}
