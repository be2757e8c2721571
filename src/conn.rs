//! Per-connection reassembly: events of one connection come from any CPU's perf buffer, so they
//! are put back in order by their per-connection sequence number before their bytes reach the
//! HTTP parser. A sequence number that never arrives (an event lost in the kernel) is waited for
//! briefly, then given up: the parser resynchronises and the gap is counted.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::http::{Parsed, ParserStats, RequestParser};

/// How long a missing sequence number is waited for before its event is taken as lost.
pub const GAP_TIMEOUT: Duration = Duration::from_millis(300);

/// A task's command name as the kernel keeps it: up to 16 bytes, NUL-padded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Comm(pub [u8; 16]);

impl Comm {
    #[cfg(test)]
    pub fn new(name: &str) -> Self {
        let mut bytes = [0; 16];
        let n = name.len().min(15);
        bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
        Self(bytes)
    }

    pub fn to_string_lossy(self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

/// Who a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnMeta {
    pub tgid: u32,
    pub tid: u32,
    pub fd: i32,
    pub comm: Comm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkKind<B> {
    Accept,
    /// A connection first seen on a receive (open before tracing, or accepted by a call in
    /// flight), after the process had read `consumed` bytes of it.
    Found {
        consumed: u64,
    },
    /// Bytes `offset..offset + bytes.len()` of a receive syscall that returned `ret`; `last`
    /// closes that syscall's series of chunks.
    Data {
        offset: u32,
        ret: i64,
        last: bool,
        bytes: B,
    },
    Close,
}

/// One decoded event; `B` is a borrowed slice on the hot path and a Vec when it must wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<B> {
    pub conn_id: u64,
    pub seq: u64,
    pub ts_ns: u64,
    pub meta: ConnMeta,
    pub kind: ChunkKind<B>,
}

impl<B> Chunk<B> {
    /// The same event with its bytes converted by `f`.
    fn map_bytes<'a, C>(&'a self, f: impl FnOnce(&'a B) -> C) -> Chunk<C> {
        Chunk {
            conn_id: self.conn_id,
            seq: self.seq,
            ts_ns: self.ts_ns,
            meta: self.meta,
            kind: match &self.kind {
                ChunkKind::Accept => ChunkKind::Accept,
                ChunkKind::Found { consumed } => ChunkKind::Found {
                    consumed: *consumed,
                },
                ChunkKind::Close => ChunkKind::Close,
                ChunkKind::Data {
                    offset,
                    ret,
                    last,
                    bytes,
                } => ChunkKind::Data {
                    offset: *offset,
                    ret: *ret,
                    last: *last,
                    bytes: f(bytes),
                },
            },
        }
    }
}

/// A parsed message with the connection it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub meta: ConnMeta,
    pub parsed: Parsed,
}

impl Record {
    /// When the message's first byte was received.
    pub fn ts_ns(&self) -> u64 {
        match &self.parsed {
            Parsed::Request(r) => r.ts_ns,
            Parsed::Malformed { ts_ns, .. } => *ts_ns,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrackerStats {
    /// Events that never arrived (sequence numbers given up on).
    pub events_missing: u64,
    /// Received bytes that were counted but not captured (past --capture-bytes, unreadable).
    pub bytes_not_kept: u64,
    /// Request heads cut short by the end of the connection or of tracing.
    pub partial_heads: u64,
    /// What the parsers of closed connections could not use.
    pub parser: ParserStats,
}

struct Conn {
    meta: ConnMeta,
    next_seq: u64,
    /// Events that arrived ahead of `next_seq`.
    pending: BTreeMap<u64, Chunk<Vec<u8>>>,
    /// Since when `next_seq` has been missing while later events wait.
    gap_since: Option<Instant>,
    /// Offset in the current receive syscall up to which bytes have been accounted for.
    syscall_pos: u64,
    parser: RequestParser,
}

pub struct Tracker {
    conns: HashMap<u64, Conn>,
    body_limit: usize,
    pub stats: TrackerStats,
}

impl Tracker {
    pub fn new(body_limit: usize) -> Self {
        Self {
            conns: HashMap::new(),
            body_limit,
            stats: TrackerStats::default(),
        }
    }

    /// Take one event; records completed by it (and by waiting events it releases) go to `out`.
    pub fn push(&mut self, chunk: &Chunk<&[u8]>, now: Instant, out: &mut Vec<Record>) {
        log::trace!(
            "event conn={} seq={} fd={} tid={} {:?}",
            chunk.conn_id,
            chunk.seq,
            chunk.meta.fd,
            chunk.meta.tid,
            match &chunk.kind {
                ChunkKind::Data {
                    offset, ret, bytes, ..
                } => format!("data off={offset} ret={ret} len={}", bytes.len()),
                other => format!("{other:?}"),
            }
        );
        let body_limit = self.body_limit;
        let conn = self.conns.entry(chunk.conn_id).or_insert_with(|| Conn {
            meta: chunk.meta,
            // Connections are followed from their accept (or discovery): sequence number 0.
            next_seq: 0,
            pending: BTreeMap::new(),
            gap_since: None,
            syscall_pos: 0,
            parser: RequestParser::new(body_limit),
        });
        if chunk.seq < conn.next_seq {
            return; // already given up on as lost
        }
        if chunk.seq > conn.next_seq {
            conn.pending
                .insert(chunk.seq, chunk.map_bytes(|b| b.to_vec()));
            conn.gap_since.get_or_insert(now);
            return;
        }
        let closed = apply(conn, chunk, &mut self.stats, out);
        if !closed {
            self.drain(chunk.conn_id, out);
        } else {
            self.remove(chunk.conn_id, out);
        }
    }

    /// Whether some connection waits for a missing event.
    pub fn has_gaps(&self) -> bool {
        self.conns.values().any(|c| c.gap_since.is_some())
    }

    /// Give up on events missing for longer than GAP_TIMEOUT.
    pub fn expire_gaps(&mut self, now: Instant, out: &mut Vec<Record>) {
        let expired: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.gap_since
                    .is_some_and(|t| now.duration_since(t) >= GAP_TIMEOUT)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.skip_gap(id, out);
            self.drain(id, out);
        }
    }

    /// Tracing ends: release everything that waits, and report what is pending.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            while self.conns.get(&id).is_some_and(|c| !c.pending.is_empty()) {
                self.skip_gap(id, out);
                self.drain(id, out);
            }
            self.remove(id, out);
        }
    }

    /// Jump a connection's expected sequence to its first waiting event.
    fn skip_gap(&mut self, id: u64, out: &mut Vec<Record>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.gap_since = None;
        let Some(&first) = conn.pending.keys().next() else {
            return;
        };
        self.stats.events_missing += first - conn.next_seq;
        conn.next_seq = first;
        conn.syscall_pos = 0;
        let mut parsed = Vec::new();
        conn.parser.gap(&mut parsed);
        collect(&conn.meta, parsed, out);
    }

    /// Apply waiting events that are now in order.
    fn drain(&mut self, id: u64, out: &mut Vec<Record>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while let Some(entry) = conn.pending.first_entry() {
            if *entry.key() != conn.next_seq {
                break;
            }
            let chunk = entry.remove();
            if apply(
                conn,
                &chunk.map_bytes(|b| b.as_slice()),
                &mut self.stats,
                out,
            ) {
                self.remove(id, out);
                return;
            }
        }
        conn.gap_since = if conn.pending.is_empty() {
            None
        } else {
            conn.gap_since.or(Some(Instant::now()))
        };
    }

    fn remove(&mut self, id: u64, out: &mut Vec<Record>) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let mut parsed = Vec::new();
            if conn.parser.finish(&mut parsed) {
                self.stats.partial_heads += 1;
            }
            collect(&conn.meta, parsed, out);
            self.stats.parser += conn.parser.stats;
        }
    }

    /// What the parsers of open connections could not use, plus the closed ones'.
    pub fn parser_stats(&self) -> ParserStats {
        let mut total = self.stats.parser;
        for c in self.conns.values() {
            total += c.parser.stats;
        }
        total
    }
}

/// Apply the in-order event `chunk` to `conn`; returns true when the connection closed.
fn apply(
    conn: &mut Conn,
    chunk: &Chunk<&[u8]>,
    stats: &mut TrackerStats,
    out: &mut Vec<Record>,
) -> bool {
    conn.next_seq = chunk.seq + 1;
    conn.meta.tid = chunk.meta.tid;
    conn.meta.comm = chunk.meta.comm;
    let mut parsed = Vec::new();
    let closed = match &chunk.kind {
        ChunkKind::Accept => false,
        ChunkKind::Found { consumed } => {
            if *consumed > 0 {
                conn.parser.start_mid_stream();
            }
            false
        }
        ChunkKind::Close => true,
        ChunkKind::Data {
            offset,
            ret,
            last,
            bytes,
        } => {
            let offset = u64::from(*offset);
            if offset == 0 {
                conn.syscall_pos = 0;
            }
            if offset > conn.syscall_pos {
                let hole = offset - conn.syscall_pos;
                stats.bytes_not_kept += hole;
                conn.parser.skip(hole, &mut parsed);
            }
            conn.parser.feed(bytes, chunk.ts_ns, &mut parsed);
            conn.syscall_pos = offset + bytes.len() as u64;
            if *last {
                let total = u64::try_from(*ret).unwrap_or(0);
                if total > conn.syscall_pos {
                    let hole = total - conn.syscall_pos;
                    stats.bytes_not_kept += hole;
                    conn.parser.skip(hole, &mut parsed);
                }
                conn.syscall_pos = 0;
            }
            false
        }
    };
    collect(&conn.meta, parsed, out);
    closed
}

fn collect(meta: &ConnMeta, parsed: Vec<Parsed>, out: &mut Vec<Record>) {
    out.extend(parsed.into_iter().map(|p| Record {
        meta: *meta,
        parsed: p,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ConnMeta {
        ConnMeta {
            tgid: 10,
            tid: 11,
            fd: 5,
            comm: Comm::new("server"),
        }
    }

    fn accept(conn_id: u64) -> Chunk<&'static [u8]> {
        Chunk {
            conn_id,
            seq: 0,
            ts_ns: 1,
            meta: meta(),
            kind: ChunkKind::Accept,
        }
    }

    fn data(conn_id: u64, seq: u64, bytes: &'static [u8]) -> Chunk<&'static [u8]> {
        piece(conn_id, seq, 0, bytes.len() as i64, true, bytes)
    }

    fn piece(
        conn_id: u64,
        seq: u64,
        offset: u32,
        ret: i64,
        last: bool,
        bytes: &'static [u8],
    ) -> Chunk<&'static [u8]> {
        Chunk {
            conn_id,
            seq,
            ts_ns: 100 + seq,
            meta: meta(),
            kind: ChunkKind::Data {
                offset,
                ret,
                last,
                bytes,
            },
        }
    }

    fn close(conn_id: u64, seq: u64) -> Chunk<&'static [u8]> {
        Chunk {
            conn_id,
            seq,
            ts_ns: 1000,
            meta: meta(),
            kind: ChunkKind::Close,
        }
    }

    fn targets(out: &[Record]) -> Vec<String> {
        out.iter()
            .map(|r| match &r.parsed {
                Parsed::Request(q) => format!(
                    "{} {}{}",
                    q.method,
                    q.target,
                    if q.complete { "" } else { " (incomplete)" }
                ),
                Parsed::Malformed { reason, .. } => format!("malformed: {reason}"),
            })
            .collect()
    }

    fn run(chunks: &[Chunk<&'static [u8]>]) -> (Vec<Record>, Tracker) {
        let mut t = Tracker::new(1024);
        let mut out = Vec::new();
        let now = Instant::now();
        for c in chunks {
            t.push(c, now, &mut out);
        }
        (out, t)
    }

    #[test]
    fn in_order_events_make_requests() {
        let (out, t) = run(&[
            accept(1),
            data(1, 1, b"GET /a HTTP/1.1\r\n"),
            data(1, 2, b"\r\n"),
        ]);
        assert_eq!(targets(&out), ["GET /a"]);
        assert_eq!(out[0].meta, meta());
        assert!(!t.has_gaps());
    }

    #[test]
    fn events_from_other_cpus_are_put_back_in_order() {
        let (out, t) = run(&[
            data(1, 3, b"GET /b HTTP/1.1\r\n\r\n"),
            data(1, 2, b"\r\n\r\n"),
            accept(1),
            data(1, 1, b"GET /a HTTP/1.1"),
        ]);
        assert_eq!(targets(&out), ["GET /a", "GET /b"]);
        assert!(!t.has_gaps());
        assert_eq!(t.stats.events_missing, 0);
    }

    #[test]
    fn connections_are_independent() {
        let (out, _) = run(&[
            accept(1),
            accept(2),
            data(2, 1, b"GET /two HTTP/1.1\r\n"),
            data(1, 1, b"GET /one HTTP/1.1\r\n\r\n"),
            data(2, 2, b"\r\n"),
        ]);
        assert_eq!(targets(&out), ["GET /one", "GET /two"]);
    }

    #[test]
    fn a_lost_event_is_given_up_after_the_timeout() {
        let mut t = Tracker::new(1024);
        let mut out = Vec::new();
        let start = Instant::now();
        t.push(&accept(1), start, &mut out);
        t.push(
            &data(1, 1, b"POST /a HTTP/1.1\r\nContent-Length: 8\r\n\r\n1234"),
            start,
            &mut out,
        );
        // seq 2 (the rest of the body) is lost; seq 3 starts the next request.
        t.push(&data(1, 3, b"GET /b HTTP/1.1\r\n\r\n"), start, &mut out);
        assert!(t.has_gaps());
        t.expire_gaps(start + GAP_TIMEOUT / 2, &mut out);
        assert!(out.is_empty(), "gave up too early");
        t.expire_gaps(start + GAP_TIMEOUT, &mut out);
        assert_eq!(targets(&out), ["POST /a (incomplete)", "GET /b"]);
        assert_eq!(t.stats.events_missing, 1);
        assert!(!t.has_gaps());
        // A straggler that arrives after it was given up on is ignored.
        t.push(&data(1, 2, b"5678"), start, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn bytes_past_the_capture_are_counted_in_the_body() {
        // One receive returned 39 + 10 bytes; only the first 44 were captured.
        let head = b"PUT /f HTTP/1.1\r\nContent-Length: 14\r\n\r\n";
        assert_eq!(head.len(), 39);
        let (out, t) = run(&[
            accept(1),
            piece(1, 1, 0, 49, false, head),
            piece(1, 2, 39, 49, true, b"abcde"),
            data(1, 3, b"wxyzGET /n HTTP/1.1\r\n\r\n"),
        ]);
        assert_eq!(targets(&out), ["PUT /f", "GET /n"]);
        let Parsed::Request(r) = &out[0].parsed else {
            panic!("not a request")
        };
        assert_eq!(r.body_bytes, 14);
        assert_eq!(r.body, b"abcdewxyz");
        assert_eq!(r.body_missing_bytes, 5);
        assert_eq!(t.stats.bytes_not_kept, 5);
    }

    #[test]
    fn an_unreadable_chunk_is_a_hole_of_known_size() {
        let (out, t) = run(&[
            accept(1),
            piece(1, 1, 0, 30, false, b"POST /x HTTP/1.1\r\nContent-Le"),
            // Bytes 28..30 could not be read: the next chunk of the series starts past them.
            piece(1, 2, 30, 30, true, b""),
            data(1, 3, b"GET /y HTTP/1.1\r\n\r\n"),
        ]);
        assert_eq!(targets(&out), ["GET /y"]);
        assert_eq!(t.stats.bytes_not_kept, 2);
    }

    #[test]
    fn close_reports_what_is_pending_and_forgets_the_connection() {
        let (out, t) = run(&[
            accept(1),
            data(1, 1, b"POST /a HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc"),
            close(1, 2),
            // The same fd, reused by a new connection (a new conn_id), starts clean.
            accept(2),
            data(2, 1, b"GET /b HTTP/1.1\r\n\r\n"),
        ]);
        assert_eq!(targets(&out), ["POST /a (incomplete)", "GET /b"]);
        assert!(!t.conns.contains_key(&1));
    }

    #[test]
    fn finish_releases_waiting_events_and_counts_partial_heads() {
        let mut t = Tracker::new(1024);
        let mut out = Vec::new();
        let now = Instant::now();
        t.push(&accept(1), now, &mut out);
        t.push(
            &data(1, 2, b"GET /late HTTP/1.1\r\n\r\nGET /cut HTTP/1.1\r\n"),
            now,
            &mut out,
        );
        t.finish(&mut out);
        assert_eq!(targets(&out), ["GET /late"]);
        assert_eq!(t.stats.events_missing, 1);
        assert_eq!(t.stats.partial_heads, 1);
        assert!(t.conns.is_empty());
    }

    #[test]
    fn a_connection_found_mid_stream_starts_at_the_next_request() {
        let found = Chunk {
            kind: ChunkKind::Found { consumed: 5000 },
            ..accept(1)
        };
        let (out, _) = run(&[
            found,
            data(1, 1, b"tail of an earlier body"),
            data(1, 2, b"GET /next HTTP/1.1\r\n\r\n"),
        ]);
        assert_eq!(targets(&out), ["GET /next"]);
        // Found before anything was read: parsed like an accepted connection.
        let fresh = Chunk {
            kind: ChunkKind::Found { consumed: 0 },
            ..accept(2)
        };
        let (out, t) = run(&[fresh, data(2, 1, b"\x16\x03junk")]);
        assert!(out.is_empty());
        assert_eq!(t.parser_stats().non_http_bytes, 6);
    }

    #[test]
    fn non_http_bytes_are_counted_for_the_summary() {
        let (_, mut t) = run(&[accept(1), data(1, 1, b"\x00\x01binary")]);
        assert_eq!(t.parser_stats().non_http_bytes, 8);
        t.finish(&mut Vec::new());
        assert_eq!(t.parser_stats().non_http_bytes, 8);
    }
}
