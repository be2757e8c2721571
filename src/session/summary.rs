//! The last line of a run or a replay: what was captured, then every count of what was not
//! shown, each under its own name (only those above zero). A plain function of the counters of
//! each stage: the pipeline's, the tracker's, the parsers', and the kernel side's.

use crate::bpf::{Drops, DROP_KINDS};
use crate::capture::End;
use crate::http::ParserStats;
use crate::pipeline::{Counts, Pipeline};
use crate::tracker::TrackerStats;

/// A count and what the summary calls one of it and several.
type Counter = (u64, &'static str, &'static str);

/// What the kernel side and the process set counted: read at the end of a live run, or from a
/// recording's last record.
pub(super) struct KernelCounts {
    pub(super) drops: Drops,
    pub(super) kretprobe_misses: u64,
    pub(super) skipped_runs: u64,
    pub(super) children_followed: u64,
    pub(super) processes_exited: u64,
    pub(super) processes_started: u64,
    pub(super) containers_restarted: u64,
}

impl KernelCounts {
    pub(super) fn to_end(&self, all_exited: bool) -> End {
        End {
            all_exited,
            drops: self.drops.0.to_vec(),
            kretprobe_misses: self.kretprobe_misses,
            skipped_runs: self.skipped_runs,
            children_followed: self.children_followed,
            processes_exited: self.processes_exited,
            processes_started: self.processes_started,
            containers_restarted: self.containers_restarted,
        }
    }

    pub(super) fn from_end(end: &End) -> Self {
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
            containers_restarted: end.containers_restarted,
        }
    }
}

/// The summary of -w without -o: what was recorded and what was lost.
/// `samples` events of `sample_bytes` recorded to `name`.
pub(super) fn recording_summary(
    samples: u64,
    sample_bytes: u64,
    name: &str,
    perf_lost: u64,
    k: &KernelCounts,
) -> String {
    let mut line = format!(
        "http-trace: {} ({}) recorded to {}, {} lost",
        counted(samples, "event", "events"),
        counted(sample_bytes, "byte", "bytes"),
        name,
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
pub(super) fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The summary of a run or a replay that printed records through `p`.
pub(super) fn pipeline_summary<W: std::io::Write>(p: &Pipeline<W>, k: &KernelCounts) -> String {
    summary(&p.counts, &p.tracker.stats, &p.tracker.parser_stats(), k)
}

/// The summary of the counts of each stage.
pub(super) fn summary(
    c: &Counts,
    t: &TrackerStats,
    parsed: &ParserStats,
    k: &KernelCounts,
) -> String {
    // BPF counts every event it could not send. Perf reports the same events only when its
    // next event fits, so after the last one it never does; the ring has no lost callback.
    let lost = c.lost_events.max(k.drops.output_failed());
    let mut line = format!(
        "http-trace: {} captured, {} lost",
        counted(c.exchanges, "exchange", "exchanges"),
        counted(lost, "event", "events")
    );
    let counters = stream_counters(c, t, parsed)
        .into_iter()
        .chain(k.drops.named())
        .chain(later_counters(c, t, parsed, k, lost));
    for (n, one, many) in counters {
        if n > 0 {
            line.push_str(", ");
            line.push_str(&counted(n, one, many));
        }
    }
    line
}

/// What user space counted of the stream, said before BPF's drop counters.
fn stream_counters(c: &Counts, t: &TrackerStats, parsed: &ParserStats) -> [Counter; 15] {
    [
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
            t.responses_to_non_http,
            "response to bytes that were not an HTTP request (uwsgi, FastCGI, garbage), not paired",
            "responses to bytes that were not an HTTP request (uwsgi, FastCGI, garbage), not paired",
        ),
        (
            parsed.switched_bytes,
            "byte in a CONNECT tunnel or after a protocol switch, left alone",
            "bytes in a CONNECT tunnel or after a protocol switch, left alone",
        ),
        (c.malformed, "malformed", "malformed"),
        (
            parsed.lenient_messages,
            "message read leniently, outside RFC 9112's grammar (lenient in the JSON)",
            "messages read leniently, outside RFC 9112's grammar (lenient in the JSON)",
        ),
        (
            parsed.resynced_messages,
            "message found after bytes skipped to resynchronise",
            "messages found after bytes skipped to resynchronise",
        ),
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
    ]
}

/// What the summary says after BPF's drop counters: the rest of the stream's, then what the
/// kernel side and the process set counted.
fn later_counters(
    c: &Counts,
    t: &TrackerStats,
    parsed: &ParserStats,
    k: &KernelCounts,
    lost: u64,
) -> [Counter; 18] {
    [
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
            t.bytes_spliced,
            "byte moved by splice, not copied",
            "bytes moved by splice, not copied",
        ),
        (
            t.bytes_unseen,
            "byte moved outside the calls followed (io_uring, processes not traced), \
             not captured",
            "bytes moved outside the calls followed (io_uring, processes not traced), \
             not captured",
        ),
        (
            t.bytes_tls_records,
            "byte of TLS records (encrypted)",
            "bytes of TLS records (encrypted)",
        ),
        (
            t.tls_connections_unread,
            "TLS connection whose plaintext was not seen",
            "TLS connections whose plaintext was not seen",
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
            k.containers_restarted,
            "container restart followed",
            "container restarts followed",
        ),
        (
            k.processes_started,
            "process started later followed",
            "processes started later followed",
        ),
        (k.processes_exited, "process exited", "processes exited"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::types::ht_drop;

    fn kernel(drops: Drops) -> KernelCounts {
        KernelCounts {
            drops,
            kretprobe_misses: 0,
            skipped_runs: 0,
            children_followed: 0,
            processes_exited: 0,
            processes_started: 0,
            containers_restarted: 0,
        }
    }

    #[test]
    fn nothing_but_the_captured_when_nothing_else_counted() {
        let c = Counts {
            exchanges: 1,
            ..Counts::default()
        };
        let s = summary(
            &c,
            &TrackerStats::default(),
            &ParserStats::default(),
            &kernel(Drops([0; DROP_KINDS])),
        );
        assert_eq!(s, "http-trace: 1 exchange captured, 0 events lost");
    }

    /// Each stage's counters in their place: the stream's, BPF's, then the rest; plurals; the
    /// events lost the larger of the buffer's and BPF's counts, and not counted again as
    /// missing.
    #[test]
    fn every_stage_counted_in_order() {
        let c = Counts {
            exchanges: 7,
            unanswered: 2,
            malformed: 1,
            lost_events: 3,
            bad_samples: 1,
            ..Counts::default()
        };
        let t = TrackerStats {
            unpaired_responses: 1,
            events_missing: 5,
            bytes_not_kept: 4096,
            ..TrackerStats::default()
        };
        let parsed = ParserStats {
            non_http_bytes: 10,
            ..ParserStats::default()
        };
        let mut drops = [0; DROP_KINDS];
        drops[ht_drop::HT_DROP_SOCKETS_FULL.0 as usize] = 2;
        drops[ht_drop::HT_DROP_OUTPUT_FAILED.0 as usize] = 4;
        let mut k = kernel(Drops(drops));
        k.processes_exited = 1;
        k.kretprobe_misses = 1;
        assert_eq!(
            summary(&c, &t, &parsed, &k),
            "http-trace: 7 exchanges captured, 4 events lost, 2 without a response, 1 response \
             whose request was not seen, 1 malformed, 2 connections not tracked (map full), 1 \
             event missing, 4096 bytes counted but not captured, 10 bytes of non-HTTP traffic \
             skipped, 1 return missed by kretprobes, 1 undecodable sample, 1 process exited"
        );
    }

    #[test]
    fn a_recording_says_what_it_wrote() {
        let mut k = kernel(Drops([0; DROP_KINDS]));
        k.skipped_runs = 2;
        assert_eq!(
            recording_summary(1, 300, "t.htr", 0, &k),
            "http-trace: 1 event (300 bytes) recorded to t.htr, 0 events lost, 2 probe runs the \
             kernel skipped (another BPF program was running)"
        );
    }
}
