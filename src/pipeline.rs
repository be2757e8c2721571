//! The pipeline from raw samples to printed records, as one value that a live session, a replay
//! of a capture file and the pipeline benchmark drive alike: decode, reassemble and parse per
//! connection, pair, sort each batch's records by time, print, and count what was printed.
//!
//! Everything that drives it is an `Input`: the live session records the same inputs that it
//! applies (`-w`), so that a replay applies them again and prints the same bytes.

use std::io::{self, Write};

use rustc_hash::FxHashMap;

use crate::container::Identity;
use crate::decode::{self, ChunkKind, Event, Role};
use crate::filter::Filter;
use crate::output::Format;
use crate::output::Printer;
use crate::record::Record;
use crate::redact::{Redactor, StreamRedactor};
use crate::stats::Stats;
use crate::tracker::{Tapped, Tracker, UnixSocket};

mod accounting;
pub use accounting::Accounting;

/// Records completed between two ticks are held to be printed in time order; past this many,
/// or this many heap bytes, they are printed at once. A traced burst (10,000 pipelined requests
/// answered while one poll drains the buffer) otherwise holds every exchange until the poll
/// ends: 35 MB for 10,000; with --max-body at 1 MiB, 1,024 exchanges could hold a GB.
/// Counted in records and bytes, not time, so that a replay prints in the same order.
const MAX_BATCH_RECORDS: usize = 1024;
const MAX_BATCH_BYTES: usize = 4 << 20;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub exchanges: u64,
    /// Exchanges whose request or response was cut short.
    pub incomplete: u64,
    /// Requests with no response when their connection or tracing ended.
    pub unanswered: u64,
    pub malformed: u64,
    pub lost_events: u64,
    pub bad_samples: u64,
    /// Exchanges the filters did not show.
    pub filtered: u64,
}

/// What a recorded sample holds, once applied (Pipeline::recording_bytes).
#[derive(Debug, PartialEq, Eq)]
pub enum RecordingBytes {
    /// Its data bytes, redacted.
    Redacted(Vec<u8>),
    /// Not decided yet: its message is not whole (or an event before it is missing).
    Held,
    /// Nothing to redact in it, or it is no data event of a connection followed.
    AsTheyCame,
}

/// What drives a pipeline, in order: what a live session takes in from the kernel and /proc,
/// and what a capture file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// A raw sample of the event buffer.
    Sample(&'a [u8]),
    /// Events the buffer reported lost.
    Lost(u64),
    /// A connection open before tracing (found in /proc), with its role.
    Preopened { pid: u32, fd: i32, role: Role },
    /// A poll ended at `now_ns` (event time: CLOCK_MONOTONIC): gaps waited for since longer
    /// than the timeout are given up, and the records completed since the last poll printed.
    Tick { now_ns: u64 },
    /// A process found gone by the liveness check (its exit event was not seen).
    ProcessGone(u32),
    /// A Unix connection (by its id) whose socket was found gone from /proc.
    SocketGone(u64),
    /// The records completed so far printed, before the session's last words.
    Print,
    /// A traced process's container and PID in its own namespace (empty and 0 for a process on
    /// the host), found when it was first seen: every record of it shows them.
    Process {
        pid: u32,
        ns_pid: u32,
        container_id: &'a str,
        pod_uid: &'a str,
    },
}

impl ProcessEvent {
    /// The process event a decoded event is, if it is one.
    pub fn of(e: &Event) -> Option<ProcessEvent> {
        match *e {
            Event::Exit { tgid } => Some(ProcessEvent::Exited(tgid)),
            Event::Fork {
                parent,
                child,
                ns_pid,
            } => Some(ProcessEvent::Forked {
                parent,
                child,
                ns_pid,
            }),
            Event::Exec {
                tgid,
                ns_pid,
                cgroup,
            } => Some(ProcessEvent::Started {
                pid: tgid,
                ns_pid,
                cgroup,
            }),
            Event::Conn(_) => None,
        }
    }
}

/// A process event, which the caller keeps its process set in step with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEvent {
    /// A process --name or --container watches for started, and is traced.
    Started { pid: u32, ns_pid: u32, cgroup: u64 },
    /// `ns_pid`: the child's PID in its own PID namespace (0: the host's).
    Forked {
        parent: u32,
        child: u32,
        ns_pid: u32,
    },
    /// Its connections were closed in the tracker already.
    Exited(u32),
}

pub struct Pipeline<W: Write> {
    pub tracker: Tracker,
    printer: Printer<W>,
    records: Vec<Record>,
    /// Heap bytes of the records from `sample` waiting in `records`.
    records_bytes: usize,
    pub counts: Counts,
    /// Exchanges still to print under --count.
    remaining: Option<u64>,
    filter: Filter,
    /// None with --show-secrets (with_redactor).
    redactor: Option<Redactor>,
    /// The tapped events held until their messages are whole, for redaction (pcapng, and the
    /// recording).
    stream_redactor: StreamRedactor,
    /// The `-w` recording is redacted: the bytes redaction changed, by connection and event
    /// (taken by `recording_bytes`).
    recording_redacted: Option<FxHashMap<(u64, u64), Vec<u8>>>,
    /// --stats: what is shown, counted per route; printed every `stats_every_ns` of event time
    /// too, when set.
    stats: Option<Stats>,
    stats_every_ns: Option<u64>,
    next_stats_ns: Option<u64>,
    /// Output is gone (e.g. a closed pipe): stop quietly.
    output_closed: bool,
    output_error: Option<io::Error>,
    /// Unix connections ended since the session last asked (take_unix_gone).
    unix_gone: Vec<UnixSocket>,
}

impl<W: Write> Pipeline<W> {
    /// `body_limit`: body bytes kept per message; `count`: exchanges to print before `done`.
    pub fn new(body_limit: usize, printer: Printer<W>, count: Option<u64>) -> Self {
        let mut tracker = Tracker::new(body_limit);
        if printer.wants_streams() {
            tracker.tap();
        }
        Self {
            tracker,
            printer,
            records: Vec::new(),
            records_bytes: 0,
            counts: Counts::default(),
            remaining: count,
            filter: Filter::default(),
            // Secrets are kept out of every output unless the caller says otherwise.
            redactor: Some(Redactor::default()),
            stream_redactor: StreamRedactor::default(),
            recording_redacted: None,
            stats: None,
            stats_every_ns: None,
            next_stats_ns: None,
            output_closed: false,
            output_error: None,
            unix_gone: Vec::new(),
        }
    }

    /// Show only the records `filter` matches.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Take the secrets out of everything printed.
    pub fn with_redactor(mut self, redactor: Option<Redactor>) -> Self {
        self.redactor = redactor;
        self
    }

    /// The `-w` recording is redacted as the outputs are (unless --show-secrets): its samples
    /// wait for `recording_bytes` to say what they hold.
    pub fn with_recording_redacted(mut self) -> Self {
        if self.redactor.is_some() {
            self.tracker.tap();
            self.recording_redacted = Some(FxHashMap::default());
        }
        self
    }

    /// What the recording's sample of event `seq` of connection `conn_id` holds (after the
    /// sample was applied).
    pub fn recording_bytes(&mut self, conn_id: u64, seq: u64) -> RecordingBytes {
        if let Some(b) = self
            .recording_redacted
            .as_mut()
            .and_then(|m| m.remove(&(conn_id, seq)))
        {
            RecordingBytes::Redacted(b)
        } else if self.stream_redactor.holds(conn_id, seq) || self.tracker.holds_early(conn_id, seq)
        {
            RecordingBytes::Held
        } else {
            RecordingBytes::AsTheyCame
        }
    }

    /// The recording cannot wait longer for connection `conn_id`: what it holds is redacted as
    /// it stands and let go.
    pub fn let_go(&mut self, conn_id: u64) {
        if let Some(r) = &self.redactor {
            let mut out = Vec::new();
            self.stream_redactor.release_conn(r, conn_id, &mut out);
            self.write_released(out);
        }
    }

    /// Count what is shown per route (`--stats`), and print it every `every_ns` too.
    pub fn with_stats(mut self, stats: Stats, every_ns: Option<u64>) -> Self {
        self.stats = Some(stats);
        self.stats_every_ns = every_ns;
        self
    }

    /// The statistics, at the end or every interval: the table on stderr, and with JSON output
    /// the rows as lines of kind `stats` too.
    pub fn print_stats(&mut self) {
        let Some(stats) = self.stats.as_ref() else {
            return;
        };
        eprint!("{}", stats.table());
        if self.printer.format() == Format::Json && !self.output_closed {
            let lines = stats.json_lines();
            if let Err(e) = self.printer.write_raw(lines.as_bytes()) {
                self.output_failed(e);
            }
        }
    }

    /// With --stats, at the end: what became of every byte and message (`Accounting`), on
    /// stderr, and with JSON output as a line of kind `accounting` too.
    pub fn print_accounting(&mut self) {
        if self.stats.is_none() {
            return;
        }
        let a = Accounting::new(
            &self.counts,
            &self.tracker.stats,
            &self.tracker.parser_stats(),
        );
        eprint!("{}", a.table());
        if self.printer.format() == Format::Json && !self.output_closed {
            if let Err(e) = self.printer.write_raw(a.json_line().as_bytes()) {
                self.output_failed(e);
            }
        }
    }

    /// Take one input.
    pub fn apply(&mut self, input: &Input<'_>) -> Option<ProcessEvent> {
        let event = self.apply_input(input);
        self.write_tapped();
        event
    }

    /// The connections' events the tracker applied, to an output made of them (pcapng),
    /// redacted on their streams (held until their messages are whole).
    fn write_tapped(&mut self) {
        let tapped = self.tracker.take_tapped();
        if tapped.is_empty() {
            return;
        }
        let released = match &self.redactor {
            Some(r) => {
                let mut out = Vec::with_capacity(tapped.len());
                for t in tapped {
                    self.stream_redactor.push(r, t, &mut out);
                }
                out
            }
            None => tapped.into_iter().map(|t| (t, false)).collect(),
        };
        self.write_released(released);
    }

    fn write_released(&mut self, released: Vec<(Tapped, bool)>) {
        let streams = self.printer.wants_streams();
        for (t, changed) in released {
            if let (true, Some(m), Tapped::Event { chunk, .. }) =
                (changed, self.recording_redacted.as_mut(), &t)
            {
                if let ChunkKind::Data(d) = &chunk.kind {
                    m.insert((chunk.conn_id, chunk.seq), d.bytes.clone());
                }
            }
            if !streams || self.output_closed {
                continue;
            }
            if let Err(e) = self.printer.tapped(&t) {
                self.output_failed(e);
            }
        }
    }

    fn apply_input(&mut self, input: &Input<'_>) -> Option<ProcessEvent> {
        match *input {
            Input::Sample(data) => return self.sample(data),
            Input::Lost(n) => self.lost(n),
            Input::Preopened { pid, fd, role } => self.tracker.preopened(pid, fd, role),
            Input::Tick { now_ns } => {
                if self.has_gaps() {
                    self.tracker.expire_gaps(now_ns, &mut self.records);
                }
                self.print_records();
                if let Some(every) = self.stats_every_ns {
                    let next = *self.next_stats_ns.get_or_insert(now_ns + every);
                    if now_ns >= next {
                        self.next_stats_ns = Some(now_ns + every);
                        self.print_stats();
                    }
                }
                self.flush();
            }
            Input::ProcessGone(pid) => self.process_exited(pid),
            Input::SocketGone(id) => {
                if let Some(u) = self.tracker.unix_socket(id) {
                    self.socket_gone(u);
                }
            }
            Input::Print => self.print_records(),
            Input::Process {
                pid,
                ns_pid,
                container_id,
                pod_uid,
            } => self.printer.identify(
                pid,
                Identity {
                    container_id: container_id.to_string(),
                    pod_uid: pod_uid.to_string(),
                    ns_pid,
                },
            ),
        }
        None
    }

    /// Take one raw sample in.
    pub fn sample(&mut self, data: &[u8]) -> Option<ProcessEvent> {
        match decode::decode(data) {
            Ok(Event::Conn(chunk)) => {
                let before = self.records.len();
                self.tracker.push(&chunk, &mut self.records);
                self.records_bytes += self.records[before..]
                    .iter()
                    .map(Record::heap_bytes)
                    .sum::<usize>();
                if self.records.len() >= MAX_BATCH_RECORDS || self.records_bytes >= MAX_BATCH_BYTES
                {
                    self.print_records();
                }
                None
            }
            Ok(Event::Exit { tgid }) => {
                self.process_exited(tgid);
                Some(ProcessEvent::Exited(tgid))
            }
            Ok(e) => ProcessEvent::of(&e),
            Err(e) => {
                self.counts.bad_samples += 1;
                log::warn!("skipping a sample: {e}");
                None
            }
        }
    }

    /// Events perf reported lost.
    pub fn lost(&mut self, n: u64) {
        self.counts.lost_events += n;
    }

    pub fn has_gaps(&self) -> bool {
        self.tracker.has_gaps()
    }

    /// A process found gone: its connections end.
    pub fn process_exited(&mut self, tgid: u32) {
        let unix = self.tracker.process_exited(tgid, &mut self.records);
        self.unix_gone.extend(unix);
    }

    /// The Unix connections open.
    pub fn unix_sockets(&self) -> Vec<UnixSocket> {
        self.tracker.unix_sockets()
    }

    /// Unix connection `u`'s socket was found gone: it ends.
    pub fn socket_gone(&mut self, u: UnixSocket) {
        self.tracker.socket_gone(u.conn_id, &mut self.records);
        self.unix_gone.push(u);
    }

    /// The Unix connections ended since the last call, whose BPF entries should go: BPF sees
    /// the end of TCP connections, not of Unix ones.
    pub fn take_unix_gone(&mut self) -> Vec<UnixSocket> {
        std::mem::take(&mut self.unix_gone)
    }

    /// The processes whose connections moved TLS records with no plaintext seen since the last
    /// call (each maybe more than once).
    pub fn take_ciphertext(&mut self) -> Vec<u32> {
        self.tracker.take_ciphertext()
    }

    /// Tracing ends: report what is pending, print it, close the document (HAR), flush.
    pub fn finish(&mut self) {
        self.tracker.finish(&mut self.records);
        self.write_tapped();
        if let Some(r) = &self.redactor {
            let mut out = Vec::new();
            self.stream_redactor.release_all(r, &mut out);
            self.write_released(out);
        }
        self.print_records();
        if !self.output_closed {
            if let Err(e) = self.printer.finish() {
                self.output_failed(e);
            }
        }
    }

    /// Print what a batch of events completed, oldest first: connections' events come through
    /// different CPUs' buffers, so completion order is not time order.
    pub fn print_records(&mut self) {
        // Nearly sorted already: the sort finds the runs. The buffer is kept for the next batch.
        let mut records = std::mem::take(&mut self.records);
        self.records_bytes = 0;
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
                }
                Record::Malformed { .. } => self.counts.malformed += 1,
            }
            // Counted as captured above; shown, and counted by --count, only when it matches.
            // (A malformed message stays counted as such.)
            if !self.filter.matches(&rec) {
                if matches!(rec, Record::Exchange { .. }) {
                    self.counts.filtered += 1;
                }
                continue;
            }
            if let (Record::Exchange { .. }, Some(n)) = (&rec, self.remaining.as_mut()) {
                *n -= 1;
            }
            // Every output, --stats included, takes the same redacted record.
            let redacted = self.redactor.as_ref().and_then(|r| r.record(&rec));
            let shown = redacted.as_ref().unwrap_or(&rec);
            if let Some(stats) = self.stats.as_mut() {
                stats.add(shown);
            }
            if let Err(e) = self.printer.print(shown) {
                self.output_failed(e);
            }
        }
        self.records = records;
    }

    pub fn format(&self) -> Format {
        self.printer.format()
    }

    /// Whether output is finished: --count reached, or the output closed.
    pub fn done(&self) -> bool {
        self.output_closed || self.remaining == Some(0)
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.printer.flush() {
            self.output_failed(e);
        }
    }

    /// Output is gone: a closed pipe ends it quietly (as `head` expects); anything else (a
    /// full disk) is kept for the caller to report and exit on.
    fn output_failed(&mut self, e: io::Error) {
        if e.kind() != io::ErrorKind::BrokenPipe && self.output_error.is_none() {
            self.output_error = Some(e);
        }
        self.output_closed = true;
    }

    /// The live view's model, with --top.
    pub fn board(&mut self) -> Option<&mut crate::output::top::Board> {
        self.printer.board()
    }

    /// Why the output could not be written, if it could not (but for a closed pipe).
    pub fn output_error(&self) -> Option<&io::Error> {
        self.output_error.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::types::{ht_conn_event, ht_direction, ht_event, ht_event_kind};
    use crate::decode::tests::{header as base_header, sample};
    use crate::output::Clock;

    /// Event `seq` of connection 7, the last of its call.
    fn header(kind: ht_event_kind, seq: u64, direction: ht_direction, len: usize) -> ht_event {
        ht_event {
            ts_ns: 1_000 + seq,
            seq,
            ret: len as i64,
            direction: direction.0 as u8,
            ..base_header(kind, len as u32)
        }
    }

    /// A burst of exchanges with large bodies, completed within one drain of the buffer (no
    /// tick between them), is printed as it goes once the records held pass MAX_BATCH_BYTES,
    /// not held to MAX_BATCH_RECORDS: 1,024 of 64 KiB would be 64 MiB.
    #[test]
    fn a_burst_of_large_exchanges_is_printed_before_it_ends() {
        let printer = Printer::new(io::sink(), Format::Json, false, Clock::fixed(0));
        let mut p = Pipeline::new(1 << 20, printer, None);
        let mut open = ht_conn_event {
            hdr: header(ht_event_kind::HT_EV_ACCEPT, 0, ht_direction::HT_DIR_IN, 0),
            family: 2,
            lport: 8080,
            rport: 40000,
            ..Default::default()
        };
        open.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        open.raddr[..4].copy_from_slice(&[127, 0, 0, 2]);
        // SAFETY: ht_conn_event is Plain (decode.rs); viewing it as bytes reads only initialised memory.
        p.sample(unsafe { plain::as_bytes(&open) });
        let body = vec![b'b'; 64 << 10];
        let mut request = b"POST /up HTTP/1.1\r\nContent-Length: 65536\r\n\r\n".to_vec();
        request.extend_from_slice(&body);
        let response = b"HTTP/1.1 204 No Content\r\n\r\n";
        let mut most_held = 0;
        for i in 0..200u64 {
            let h = header(
                ht_event_kind::HT_EV_DATA,
                1 + 2 * i,
                ht_direction::HT_DIR_IN,
                request.len(),
            );
            p.sample(&sample(&h, &request));
            let h = header(
                ht_event_kind::HT_EV_DATA,
                2 + 2 * i,
                ht_direction::HT_DIR_OUT,
                response.len(),
            );
            p.sample(&sample(&h, response));
            most_held = most_held.max(p.records_bytes);
        }
        assert!(p.counts.exchanges >= 100, "{} printed", p.counts.exchanges);
        assert!(
            most_held <= MAX_BATCH_BYTES + (80 << 10),
            "{most_held} bytes held"
        );
        p.print_records();
        assert_eq!(p.counts.exchanges, 200);
    }
}
