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

    pub fn to_string_lossy(&self) -> String {
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

impl Chunk<&[u8]> {
    fn to_owned_chunk(&self) -> Chunk<Vec<u8>> {
        Chunk {
            conn_id: self.conn_id,
            seq: self.seq,
            ts_ns: self.ts_ns,
            meta: self.meta,
            kind: match &self.kind {
                ChunkKind::Accept => ChunkKind::Accept,
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
                    bytes: bytes.to_vec(),
                },
            },
        }
    }
}

impl Chunk<Vec<u8>> {
    fn as_borrowed(&self) -> Chunk<&[u8]> {
        Chunk {
            conn_id: self.conn_id,
            seq: self.seq,
            ts_ns: self.ts_ns,
            meta: self.meta,
            kind: match &self.kind {
                ChunkKind::Accept => ChunkKind::Accept,
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
                    bytes: bytes.as_slice(),
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
        let body_limit = self.body_limit;
        let conn = self.conns.entry(chunk.conn_id).or_insert_with(|| Conn {
            meta: chunk.meta,
            // Connections are followed from their accept, which is sequence number 0.
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
            conn.pending.insert(chunk.seq, chunk.to_owned_chunk());
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
            if apply(conn, &chunk.as_borrowed(), &mut self.stats, out) {
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
            let s = conn.parser.stats;
            self.stats.parser.non_http_bytes += s.non_http_bytes;
            self.stats.parser.resync_bytes += s.resync_bytes;
        }
    }

    /// What the parsers of open connections could not use, plus the closed ones'.
    pub fn parser_stats(&self) -> ParserStats {
        let mut total = self.stats.parser;
        for c in self.conns.values() {
            total.non_http_bytes += c.parser.stats.non_http_bytes;
            total.resync_bytes += c.parser.stats.resync_bytes;
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
