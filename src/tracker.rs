//! The connection tracker: each connection's events, put back in order (`reorder`), feed the
//! byte stream of their direction (`stream`, `http`); the messages parsed are paired into
//! exchanges (`pairing`) and handed out as records. Connections end with their close, the exit
//! of their process, or the end of tracing, and what they still held is reported then.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::decode::{Chunk, ChunkKind, ConnMeta, Data, Direction, Endpoints, Opened, Role};
use crate::http::{Parsed, ParserStats, StartLine};
use crate::pairing::Pairs;
use crate::record::{ConnInfo, Record};
use crate::reorder::{Arrival, Reorder};
pub use crate::stream::Tapped;
use crate::stream::{RecordSniff, Stream};

mod names;
use names::Names;

pub use crate::reorder::GAP_TIMEOUT;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrackerStats {
    /// Events that never arrived (sequence numbers given up on).
    pub events_missing: u64,
    /// Gaps given up before GAP_TIMEOUT, to keep the events waiting behind them within
    /// EARLY_BUDGET (their missing events are in events_missing).
    pub gaps_shed: u64,
    /// Bytes that were counted but not captured (past --capture-bytes, unreadable).
    pub bytes_not_kept: u64,
    /// Bytes that moved outside the calls followed (io_uring), known by
    /// their number only.
    pub bytes_unseen: u64,
    /// Bytes a splice moved that BPF could not read from the pipe's pages (the kernel's memory
    /// layout not found; raw-tracepoint, which sees no splice enter, for a splice into a socket
    /// of bytes it has no notes of).
    pub bytes_spliced: u64,
    /// Bytes of TLS records the socket calls moved (their plaintext, where the TLS library was
    /// probed, comes in its own events).
    pub bytes_tls_records: u64,
    /// Connections that moved TLS records both ways and no plaintext of them was seen (the
    /// process's library not probed yet, or --no-tls).
    pub tls_connections_unread: u64,
    /// Message heads cut short by the end of the connection or of tracing.
    pub partial_heads: u64,
    /// Events that came after their connection's end: a call that raced the end on another
    /// CPU (the kernel numbers them, but cannot order a syscall against a state change).
    pub events_after_end: u64,
    /// Responses whose request was never seen (sent before tracing started, or lost).
    pub unpaired_responses: u64,
    /// Responses sent while what the other direction carried was not a whole request yet (a
    /// head still coming or too large): a server's early error answers.
    pub early_responses: u64,
    /// HTTP responses to requests that were not HTTP (uwsgi's binary protocol, FastCGI): the
    /// request's bytes are counted as non-HTTP, the response here, once.
    pub responses_to_non_http: u64,
    /// Requests given up, with their responses, behind pairing::MAX_WAITING others waiting for
    /// theirs on one connection.
    pub requests_given_up: u64,
    /// Requests given up, with their responses, to keep within HELD_BUDGET.
    pub requests_shed: u64,
    /// Responses not shown: their requests were given up (too many waiting, a head too large
    /// or malformed, reported as such).
    pub responses_skipped: u64,
    /// What the parsers of closed connections could not use.
    pub parser: ParserStats,
    /// Bytes the followed calls moved (their return values), whatever became of them: the
    /// whole that the byte counters share out (`--stats`' accounting).
    pub bytes_moved: u64,
    /// Request heads the parsers found, whole or given up: the whole that the request counters
    /// share out.
    pub requests_seen: u64,
    /// Request heads given up by the parser (too large, malformed: reported as malformed); their
    /// responses are skipped.
    pub request_heads_given_up: u64,
    /// Whole responses the parsers found: the whole that the response counters share out.
    pub responses_seen: u64,
}

/// An open Unix connection's socket (its inode, as /proc/PID/net/unix lists it, and its struct
/// sock, BPF's key), with the process that used it last: for finding the socket gone where no
/// call showed its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixSocket {
    pub conn_id: u64,
    pub tgid: u32,
    pub ino: u64,
    pub sk: u64,
}

struct Conn {
    info: ConnInfo,
    /// The process it is indexed under in Tracker::by_process (its latest user's).
    indexed_tgid: u32,
    order: Reorder,
    /// Indexed by Direction::index.
    streams: [Stream; 2],
    pairs: Pairs,
    /// What the parsers produce for one event, before it is absorbed.
    parsed: Vec<Parsed>,
    /// Heap bytes it held when last accounted (Tracker::held).
    held: usize,
    /// Heap bytes of its events waiting for a missing one, when last accounted (Tracker::early).
    early: usize,
    /// Which of its directions carry TLS records.
    records: RecordSniff,
    /// It was just found to carry TLS records both ways, with no plaintext seen yet
    /// (Tracker::ciphertext).
    records_found: bool,
}

impl Conn {
    fn new(meta: ConnMeta, body_limit: usize) -> Self {
        Self {
            indexed_tgid: meta.tgid,
            info: ConnInfo {
                meta,
                role: Role::Unknown,
                endpoints: None,
                tls: false,
            },
            records: RecordSniff::default(),
            records_found: false,
            order: Reorder::new(),
            streams: [Stream::new(body_limit), Stream::new(body_limit)],
            pairs: Pairs::default(),
            parsed: Vec::new(),
            held: 0,
            early: 0,
        }
    }

    /// Heap bytes held beyond its fixed size: unfinished heads, messages being read, requests
    /// waiting for their responses. (Early events are accounted apart: Tracker::early.)
    fn held_bytes(&self) -> usize {
        self.streams
            .iter()
            .map(|s| s.parser.held_bytes())
            .sum::<usize>()
            + self.pairs.held_bytes()
    }

    /// Give up what it holds between messages, to free memory.
    fn shed(&mut self, stats: &mut TrackerStats, out: &mut Vec<Record>) {
        for dir in [Direction::In, Direction::Out] {
            let mut parsed = Vec::new();
            self.streams[dir.index()].parser.shed(&mut parsed);
            self.absorb(dir, parsed, stats, out);
        }
        stats.requests_shed += self.pairs.shed();
        self.pairs.give_up_held_responses();
        self.take_pair_counts(stats);
    }

    /// Take what the parser of direction `dir` produced: pair messages, pass news to the other
    /// direction, and hand finished exchanges and errors to `out`.
    fn absorb(
        &mut self,
        dir: Direction,
        parsed: impl IntoIterator<Item = Parsed>,
        stats: &mut TrackerStats,
        out: &mut Vec<Record>,
    ) {
        let other = dir.other();
        for p in parsed {
            match p {
                Parsed::RequestHead { method, .. } | Parsed::RequestGivenUp { method } => {
                    stats.requests_seen += 1;
                    if self.info.role == Role::Unknown {
                        self.info.role = match dir {
                            Direction::In => Role::Server,
                            Direction::Out => Role::Client,
                        };
                    }
                    let answered = match p {
                        Parsed::RequestHead { ts_ns, .. } => {
                            self.pairs.request_started(self.info.meta, ts_ns)
                        }
                        _ => {
                            stats.request_heads_given_up += 1;
                            self.pairs.request_given_up();
                            false
                        }
                    };
                    if !answered {
                        self.streams[other.index()].parser.expect_response(method);
                    }
                }
                Parsed::Message(m) if m.is_request() => self.pairs.request(m, self.info.meta),
                Parsed::Message(m) => {
                    stats.responses_seen += 1;
                    // A final answer other than a 2xx: a CONNECT it answered opened no tunnel,
                    // and what its client sent since is parsed.
                    if matches!(m.start(), StartLine::Response { status, .. } if !(200..300).contains(&status))
                    {
                        let mut more = Vec::new();
                        self.streams[other.index()]
                            .parser
                            .connect_refused(&mut more);
                        self.absorb(other, more, stats, out);
                    }
                    // One count each, under what happened to its request. One not seen yet
                    // may still come (Pairs::response holds it): counted when it is given up.
                    let requests = &self.streams[other.index()].parser;
                    // TLS records with no plaintext: an HTTPS client at a plain port.
                    let records = self.records.carries(other) && !self.info.tls;
                    if requests.is_not_http() || records {
                        if !self.pairs.response(m, self.info.meta, false) {
                            stats.responses_to_non_http += 1;
                        }
                    } else if requests.holds_unfinished_bytes() {
                        if !self.pairs.response(m, self.info.meta, false) {
                            stats.early_responses += 1;
                        }
                    } else {
                        self.pairs.response(m, self.info.meta, true);
                    }
                }
                Parsed::Switched => {
                    let mut more = Vec::new();
                    self.streams[other.index()]
                        .parser
                        .switch_protocols(&mut more);
                    self.absorb(other, more, stats, out);
                }
                Parsed::Malformed { ts_ns, reason } => {
                    if self.carries_responses(dir) {
                        self.pairs.responses_lost(ts_ns);
                    }
                    out.push(Record::Malformed {
                        conn: self.info.clone(),
                        direction: dir,
                        ts_ns,
                        reason,
                    });
                }
                Parsed::Lost { ts_ns } => {
                    if self.carries_responses(dir) {
                        self.pairs.responses_lost(ts_ns);
                    }
                }
            }
        }
        self.take_pair_counts(stats);
        self.pairs.take_complete(&self.info, out);
    }

    fn take_pair_counts(&mut self, stats: &mut TrackerStats) {
        stats.requests_given_up += std::mem::take(&mut self.pairs.given_up);
        stats.responses_skipped += std::mem::take(&mut self.pairs.skipped_responses);
        stats.unpaired_responses += std::mem::take(&mut self.pairs.unpaired);
    }

    /// Apply the in-order event `chunk`; returns true when the connection closed.
    fn apply(
        &mut self,
        chunk: &Chunk<&[u8]>,
        stats: &mut TrackerStats,
        preopened: &mut FxHashMap<(u32, i32), Role>,
        out: &mut Vec<Record>,
    ) -> bool {
        // The calls of the latest event: a socket's fds and processes can change (dup, fork, fd
        // passing). A close may be seen on another task's time: it names no thread.
        if !matches!(chunk.kind, ChunkKind::Close) {
            self.info.meta = chunk.meta;
        }
        match &chunk.kind {
            ChunkKind::Open { how, endpoints } => {
                self.info.endpoints = endpoints.clone();
                match *how {
                    Opened::Accepted => self.info.role = Role::Server,
                    Opened::Connected => self.info.role = Role::Client,
                    Opened::Found { received, sent } => {
                        let key = (chunk.meta.tgid, chunk.meta.fd);
                        if let Some(role) = preopened.remove(&key) {
                            self.info.role = role;
                        }
                        // Joined mid-stream: each direction starts at its next message.
                        if received != Some(0) {
                            self.streams[Direction::In.index()]
                                .parser
                                .start_mid_stream();
                        }
                        if sent != Some(0) {
                            self.streams[Direction::Out.index()]
                                .parser
                                .start_mid_stream();
                        }
                    }
                }
                false
            }
            ChunkKind::Close => true,
            ChunkKind::Data(data) => {
                if data.tls {
                    self.info.tls = true;
                } else if self.carries_records(data) {
                    // Their plaintext comes in the TLS library's events: counted, not parsed.
                    if data.last {
                        let ret = u64::try_from(data.ret).unwrap_or(0);
                        stats.bytes_moved += ret;
                        stats.bytes_tls_records += ret;
                    }
                    return false;
                }
                // Reused from event to event: most events complete a message.
                let mut parsed = std::mem::take(&mut self.parsed);
                let stream = &mut self.streams[data.direction.index()];
                stats.bytes_not_kept += stream.feed(data, chunk.ts_ns, &mut parsed);
                if data.last {
                    stats.bytes_moved += u64::try_from(data.ret).unwrap_or(0);
                }
                if data.unseen {
                    stats.bytes_unseen += u64::try_from(data.ret).unwrap_or(0);
                }
                if data.spliced {
                    stats.bytes_spliced += u64::try_from(data.ret).unwrap_or(0);
                }
                self.absorb(data.direction, parsed.drain(..), stats, out);
                self.parsed = parsed;
                false
            }
        }
    }

    /// Whether socket call bytes `data` are TLS records: on a connection whose plaintext the TLS
    /// library's events carry, or in a direction whose first bytes were a record's header.
    fn carries_records(&mut self, data: &Data<&[u8]>) -> bool {
        let known = self.records.both();
        let records = self.records.look(data);
        self.records_found |= !known && self.records.both() && !self.info.tls;
        self.info.tls || records
    }

    /// Whether direction `dir` carries the connection's responses (known once its role is).
    fn carries_responses(&self, dir: Direction) -> bool {
        match self.info.role {
            Role::Server => dir == Direction::Out,
            Role::Client => dir == Direction::In,
            Role::Unknown => false,
        }
    }

    /// Events were given up on: both directions lose their place.
    fn gap(&mut self, stats: &mut TrackerStats, out: &mut Vec<Record>) {
        for dir in [Direction::In, Direction::Out] {
            let mut parsed = Vec::new();
            self.streams[dir.index()].gap(&mut parsed);
            self.absorb(dir, parsed, stats, out);
        }
    }

    /// The connection ends (`closed`), or tracing does: report everything pending.
    fn finish(&mut self, closed: bool, stats: &mut TrackerStats, out: &mut Vec<Record>) {
        for dir in [Direction::In, Direction::Out] {
            let mut parsed = Vec::new();
            if self.streams[dir.index()].parser.finish(closed, &mut parsed) {
                stats.partial_heads += 1;
            }
            self.absorb(dir, parsed, stats, out);
        }
        self.pairs.take_all(&self.info, out);
        self.take_pair_counts(stats);
        if self.records.both() && !self.info.tls {
            stats.tls_connections_unread += 1;
        }
        // A connection joined mid-stream that never carried a message was not HTTP (Node's IPC
        // channel, a database's Unix socket): what the hunt for a message skipped says so.
        let not_http = !self.streams.iter().any(|s| s.parser.seen_message());
        for s in &self.streams {
            let mut parsed = s.parser.stats;
            if not_http {
                parsed.non_http_bytes += std::mem::take(&mut parsed.resync_bytes);
            }
            stats.parser += parsed;
        }
    }
}

pub struct Tracker {
    /// By connection id, which BPF hands out in sequence: FxHash's one multiplication spreads
    /// them (SipHash, the default, showed in profiles for a key this simple).
    conns: FxHashMap<u64, Conn>,
    body_limit: usize,
    /// Roles of the connections open when tracing started, by (tgid, fd), from /proc: they are
    /// found on their first use, maybe on a response whose request was not seen.
    preopened: FxHashMap<(u32, i32), Role>,
    /// Connection ids by the process that used each last: a process's exit ends its own
    /// connections without a walk of all of them (fork-per-request servers exit thousands of
    /// times a second).
    by_process: FxHashMap<u32, FxHashSet<u64>>,
    /// The connections that ended last, oldest first, so that an event racing an end is not
    /// taken for a new connection missing its start (ids are never reused).
    ended: std::collections::VecDeque<u64>,
    ended_set: FxHashSet<u64>,
    /// Who made each call, from the events that name it.
    names: Names,
    /// Every event applied, copied, when an output wants the streams (`tap`).
    tapped: Option<Vec<Tapped>>,
    /// Heap bytes the connections hold (the sum of their Conn::held), and its ceiling.
    held: usize,
    budget: usize,
    /// Shed when `held` passes this: the budget, or, when shedding could not get back under
    /// it (what is held is in messages being read), a quarter of it above what was left, so
    /// that each event does not walk every connection again.
    shed_at: usize,
    /// Heap bytes of the events waiting for missing ones (the sum of their Conn::early), and
    /// its ceiling.
    early: usize,
    early_budget: usize,
    /// The processes whose connections moved TLS records with no plaintext seen, since
    /// `take_ciphertext` last asked: maybe with a TLS library loaded since it was looked at.
    ciphertext: Vec<u32>,
    pub stats: TrackerStats,
}

/// What all connections together may hold of unfinished heads, messages being read and
/// requests waiting for responses. Past it the connections that hold the most give up theirs
/// (counted) until they hold three quarters of it: a peer that opens thousands of connections
/// and sends each a 60 KiB head cannot make the tracer grow without bound.
pub const HELD_BUDGET: usize = 128 << 20;

/// What the events that arrived ahead of a missing one may hold, on all connections together.
/// They wait at most GAP_TIMEOUT, but at hundreds of MB/s of captured bytes (large bodies, when
/// the kernel is losing events) that is a lot: past this, the connections whose waiting events
/// hold the most give up their gaps at once (counted), down to three quarters of it.
pub const EARLY_BUDGET: usize = 32 << 20;

/// How many ended connections are remembered: an event racing an end comes within one poll of
/// it, and thousands of connections do not end in one poll's time.
const ENDED_REMEMBERED: usize = 4096;

impl Tracker {
    pub fn new(body_limit: usize) -> Self {
        Self {
            conns: FxHashMap::default(),
            body_limit,
            preopened: FxHashMap::default(),
            names: Names::default(),
            by_process: FxHashMap::default(),
            ended: std::collections::VecDeque::new(),
            ended_set: FxHashSet::default(),
            tapped: None,
            held: 0,
            budget: HELD_BUDGET,
            shed_at: HELD_BUDGET,
            early: 0,
            early_budget: EARLY_BUDGET,
            ciphertext: Vec::new(),
            stats: TrackerStats::default(),
        }
    }

    /// As `new`, with a budget of its own for what connections hold (tests).
    pub fn with_budget(body_limit: usize, budget: usize) -> Self {
        Self {
            budget,
            shed_at: budget,
            ..Self::new(body_limit)
        }
    }

    /// As `new`, with a ceiling of its own for the events waiting for missing ones (tests).
    pub fn with_early_budget(body_limit: usize, early_budget: usize) -> Self {
        Self {
            early_budget,
            ..Self::new(body_limit)
        }
    }

    /// Account for what connection `id`'s waiting events hold now.
    fn account_early(&mut self, id: u64) {
        if let Some(conn) = self.conns.get_mut(&id) {
            let now = conn.order.held_bytes();
            self.early = self.early - conn.early + now;
            conn.early = now;
        }
    }

    /// Over EARLY_BUDGET: the connections whose waiting events hold the most give up the gaps
    /// they wait behind, down to three quarters of it. Rare: a walk of all connections is fine.
    fn shed_early(&mut self, out: &mut Vec<Record>) {
        while self.early > self.early_budget / 4 * 3 {
            let Some((&id, _)) = self
                .conns
                .iter()
                .filter(|(_, c)| c.early > 0)
                .max_by_key(|(_, c)| c.early)
            else {
                return;
            };
            self.stats.gaps_shed += 1;
            self.skip_gap(id, out);
            self.drain(id, out);
        }
    }

    /// Account for what connection `id` holds now, its waiting events too; over the budget,
    /// shed (what waits is given up only where events arrive early: `push`).
    fn account(&mut self, id: u64, out: &mut Vec<Record>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let early = conn.order.held_bytes();
        self.early = self.early - conn.early + early;
        conn.early = early;
        let now = conn.held_bytes();
        self.held = self.held - conn.held + now;
        conn.held = now;
        if self.held > self.shed_at {
            self.shed(out);
            self.shed_at = self.budget.max(self.held + self.budget / 4);
        } else if self.held <= self.budget {
            self.shed_at = self.budget;
        }
    }

    /// Free memory from the connections that hold the most, down to three quarters of the
    /// budget. Rare: a walk of all connections is fine.
    fn shed(&mut self, out: &mut Vec<Record>) {
        let mut by_size: Vec<(usize, u64)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.held > 0)
            .map(|(&id, c)| (c.held, id))
            .collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        for (_, id) in by_size {
            if self.held <= self.budget / 4 * 3 {
                break;
            }
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            conn.shed(&mut self.stats, out);
            let now = conn.held_bytes();
            self.held = self.held - conn.held + now;
            conn.held = now;
        }
    }

    /// Keep a copy of every event applied, in order, for `take_tapped`.
    pub fn tap(&mut self) {
        self.tapped = Some(Vec::new());
    }

    /// The processes whose connections moved TLS records with no plaintext seen since the last
    /// call.
    pub fn take_ciphertext(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.ciphertext)
    }

    /// The events applied since the last call (with `tap`).
    pub fn take_tapped(&mut self) -> Vec<Tapped> {
        self.tapped.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Connection `fd` of process `tgid` was open before tracing, with this role.
    pub fn preopened(&mut self, tgid: u32, fd: i32, role: Role) {
        self.preopened.insert((tgid, fd), role);
    }

    /// Take one event; records completed by it (and by waiting events it releases) go to `out`.
    pub fn push(&mut self, chunk: &Chunk<&[u8]>, out: &mut Vec<Record>) {
        log::trace!(
            "event conn={} seq={} fd={} tid={} {:?}",
            chunk.conn_id,
            chunk.seq,
            chunk.meta.fd,
            chunk.meta.tid,
            match &chunk.kind {
                ChunkKind::Data(d) => format!(
                    "data {:?} off={} ret={} len={}",
                    d.direction,
                    d.offset,
                    d.ret,
                    d.bytes.len()
                ),
                other => format!("{other:?}"),
            }
        );
        if !self.conns.contains_key(&chunk.conn_id) {
            // The end of a connection already given up (its process exited): nothing is left.
            if matches!(chunk.kind, ChunkKind::Close) {
                return;
            }
            // A connection starts at 0 (its opening or discovery): a later event of an unknown
            // one that ended is a call that raced its end.
            if chunk.seq > 0 && self.ended_set.contains(&chunk.conn_id) {
                self.stats.events_after_end += 1;
                return;
            }
        }
        let body_limit = self.body_limit;
        let by_process = &mut self.by_process;
        let conn = self.conns.entry(chunk.conn_id).or_insert_with(|| {
            by_process
                .entry(chunk.meta.tgid)
                .or_default()
                .insert(chunk.conn_id);
            Conn::new(chunk.meta, body_limit)
        });
        match conn.order.arrive(chunk) {
            Arrival::InOrder => {}
            Arrival::Early => {
                self.account_early(chunk.conn_id);
                if self.early > self.early_budget {
                    self.shed_early(out);
                }
                return;
            }
            Arrival::Late => return,
        }
        let named;
        let chunk = if chunk.meta.comm.is_empty() {
            named = Chunk {
                meta: self.names.name(chunk.meta, &conn.info.meta),
                ..chunk.map_bytes(|b| *b)
            };
            &named
        } else {
            self.names.learn(chunk);
            chunk
        };
        if let Some(t) = self.tapped.as_mut() {
            t.push(Tapped::Event {
                chunk: chunk.map_bytes(|b| b.to_vec()),
                settled: false,
            });
        }
        let closed = conn.apply(chunk, &mut self.stats, &mut self.preopened, out);
        settle_last(&mut self.tapped, conn);
        if std::mem::take(&mut conn.records_found) {
            self.ciphertext.push(conn.info.meta.tgid);
        }
        if closed {
            self.remove(chunk.conn_id, true, out);
        } else {
            if conn.info.meta.tgid != conn.indexed_tgid {
                self.reindex(chunk.conn_id);
            }
            self.drain(chunk.conn_id, out);
        }
    }

    /// Connection `id` was used by another process than the one it is indexed under.
    fn reindex(&mut self, id: u64) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let before = std::mem::replace(&mut conn.indexed_tgid, conn.info.meta.tgid);
        unindex(&mut self.by_process, before, id);
        self.by_process
            .entry(conn.indexed_tgid)
            .or_default()
            .insert(id);
    }

    /// Whether event `seq` of connection `conn_id` waits for one before it.
    pub fn holds_early(&self, conn_id: u64, seq: u64) -> bool {
        self.conns.get(&conn_id).is_some_and(|c| c.order.holds(seq))
    }

    /// Whether some connection waits for a missing event.
    pub fn has_gaps(&self) -> bool {
        self.conns.values().any(|c| c.order.has_gap())
    }

    /// Give up on events missing for longer than GAP_TIMEOUT at `now_ns` (event time).
    pub fn expire_gaps(&mut self, now_ns: u64, out: &mut Vec<Record>) {
        let expired: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.order.gap_expired(now_ns))
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.skip_gap(id, out);
            self.drain(id, out);
        }
    }

    /// Process `tgid` exited, which closed its connections; returns the Unix ones among them,
    /// whose end BPF does not see.
    pub fn process_exited(&mut self, tgid: u32, out: &mut Vec<Record>) -> Vec<UnixSocket> {
        self.names.process_exited(tgid);
        let ids: Vec<u64> = self
            .by_process
            .get(&tgid)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let unix = ids.iter().filter_map(|&id| self.unix_socket(id)).collect();
        for id in ids {
            self.socket_gone(id, out);
        }
        unix
    }

    /// The Unix connections open.
    pub fn unix_sockets(&self) -> Vec<UnixSocket> {
        self.conns
            .keys()
            .filter_map(|&id| self.unix_socket(id))
            .collect()
    }

    /// Connection `id`, if it is an open Unix one.
    pub fn unix_socket(&self, id: u64) -> Option<UnixSocket> {
        let conn = self.conns.get(&id)?;
        match &conn.info.endpoints {
            Some(Endpoints::Unix(u)) => Some(UnixSocket {
                conn_id: id,
                tgid: conn.info.meta.tgid,
                ino: u.ino,
                sk: u.sk,
            }),
            _ => None,
        }
    }

    /// Connection `id` ended with no event to say so (its socket is gone): report what it held.
    pub fn socket_gone(&mut self, id: u64, out: &mut Vec<Record>) {
        self.flush_pending(id, out);
        self.remove(id, true, out);
    }

    /// Tracing ends: release everything that waits, and report what is pending.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush_pending(id, out);
            self.remove(id, false, out);
        }
    }

    /// Apply every waiting event of a connection, giving up on the gaps before them.
    fn flush_pending(&mut self, id: u64, out: &mut Vec<Record>) {
        while self.conns.get(&id).is_some_and(|c| c.order.has_pending()) {
            self.skip_gap(id, out);
            self.drain(id, out);
        }
    }

    /// Give up on the events a connection is missing before its first waiting one.
    fn skip_gap(&mut self, id: u64, out: &mut Vec<Record>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let Some(missing) = conn.order.skip_gap() {
            self.stats.events_missing += missing;
            if let Some(t) = self.tapped.as_mut() {
                t.push(Tapped::Gap { conn_id: id });
            }
            conn.gap(&mut self.stats, out);
        }
    }

    /// Apply waiting events that are now in order.
    fn drain(&mut self, id: u64, out: &mut Vec<Record>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while let Some(mut chunk) = conn.order.next_ready() {
            if chunk.meta.comm.is_empty() {
                chunk.meta = self.names.name(chunk.meta, &conn.info.meta);
            } else {
                self.names.learn(&chunk);
            }
            if let Some(t) = self.tapped.as_mut() {
                t.push(Tapped::Event {
                    chunk: chunk.clone(),
                    settled: false,
                });
            }
            let chunk = chunk.map_bytes(|b| b.as_slice());
            let closed = conn.apply(&chunk, &mut self.stats, &mut self.preopened, out);
            settle_last(&mut self.tapped, conn);
            if std::mem::take(&mut conn.records_found) {
                self.ciphertext.push(conn.info.meta.tgid);
            }
            if closed {
                self.remove(id, true, out);
                return;
            }
        }
        conn.order.settle();
        if conn.info.meta.tgid != conn.indexed_tgid {
            self.reindex(id);
        }
        self.account(id, out);
    }

    fn remove(&mut self, id: u64, closed: bool, out: &mut Vec<Record>) {
        if let Some(mut conn) = self.conns.remove(&id) {
            self.held -= conn.held;
            self.early -= conn.early;
            unindex(&mut self.by_process, conn.indexed_tgid, id);
            conn.finish(closed, &mut self.stats, out);
            if let (false, Some(t)) = (closed, self.tapped.as_mut()) {
                t.push(Tapped::Ended { conn_id: id });
            }
            if self.ended.len() == ENDED_REMEMBERED {
                if let Some(old) = self.ended.pop_front() {
                    self.ended_set.remove(&old);
                }
            }
            self.ended.push_back(id);
            self.ended_set.insert(id);
        }
    }

    /// What the parsers of open connections could not use, plus the closed ones'.
    pub fn parser_stats(&self) -> ParserStats {
        let mut total = self.stats.parser;
        for c in self.conns.values() {
            for s in &c.streams {
                total += s.parser.stats;
            }
        }
        total
    }
}

/// Take connection `id` out of process `tgid`'s set.
/// The data event just tapped and applied: whether its direction is between messages now.
fn settle_last(tapped: &mut Option<Vec<Tapped>>, conn: &Conn) {
    if let Some(Tapped::Event { chunk, settled }) = tapped.as_mut().and_then(|t| t.last_mut()) {
        if let ChunkKind::Data(d) = &chunk.kind {
            *settled = conn.streams[d.direction.index()].parser.between_messages();
        }
    }
}

fn unindex(by_process: &mut FxHashMap<u32, FxHashSet<u64>>, tgid: u32, id: u64) {
    if let Some(ids) = by_process.get_mut(&tgid) {
        ids.remove(&id);
        if ids.is_empty() {
            by_process.remove(&tgid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Comm, Data};
    use crate::http::{Message, StartLine};
    use crate::record::Responder;

    fn meta() -> ConnMeta {
        ConnMeta {
            tgid: 10,
            tid: 11,
            fd: 5,
            comm: Comm::new("server"),
            thread: Comm::new("server"),
        }
    }

    fn open(conn_id: u64, how: Opened) -> Chunk<&'static [u8]> {
        Chunk {
            conn_id,
            seq: 0,
            ts_ns: 1,
            meta: meta(),
            kind: ChunkKind::Open {
                how,
                endpoints: None,
            },
        }
    }

    fn accept(conn_id: u64) -> Chunk<&'static [u8]> {
        open(conn_id, Opened::Accepted)
    }

    /// Received bytes, a whole syscall.
    fn data(conn_id: u64, seq: u64, bytes: &'static [u8]) -> Chunk<&'static [u8]> {
        piece(conn_id, seq, 0, bytes.len() as i64, true, bytes)
    }

    /// Sent bytes, a whole syscall.
    fn sent(conn_id: u64, seq: u64, bytes: &'static [u8]) -> Chunk<&'static [u8]> {
        let mut c = data(conn_id, seq, bytes);
        if let ChunkKind::Data(d) = &mut c.kind {
            d.direction = Direction::Out;
        }
        c
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
            kind: ChunkKind::Data(Data {
                direction: Direction::In,
                offset,
                ret,
                last,
                no_data: false,
                unseen: false,
                spliced: false,
                tls: false,
                bytes,
            }),
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

    fn line(m: &Option<Message>) -> String {
        match m.as_ref().map(|m| (m.start(), m.complete)) {
            None => "-".into(),
            Some((StartLine::Request { method, target }, c)) => {
                format!("{method} {target}{}", if c { "" } else { " (incomplete)" })
            }
            Some((StartLine::Response { status, .. }, c)) => {
                format!("{status}{}", if c { "" } else { " (incomplete)" })
            }
        }
    }

    /// Data events name no command (BPF leaves it out): the connection's opening names them,
    /// also when they wait for an earlier one, and a call of another process (an fd passed or
    /// inherited) is named by that process's own opening, else by the connection's last caller.
    #[test]
    fn data_events_are_named_by_the_openings() {
        let mut t = Tracker::new(4096);
        let mut out = Vec::new();
        let unnamed = |mut c: Chunk<&'static [u8]>, tgid| {
            c.meta.comm = Comm::default();
            c.meta.tgid = tgid;
            c
        };
        let mut other = accept(2);
        other.meta = ConnMeta {
            tgid: 20,
            tid: 20,
            fd: 3,
            comm: Comm::new("worker"),
            thread: Comm::new("worker"),
        };
        t.push(&other, &mut out);
        t.push(&accept(1), &mut out);
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        // The response first: it waits for the request.
        t.push(&unnamed(sent(1, 2, ok), 10), &mut out);
        t.push(
            &unnamed(data(1, 1, b"GET /a HTTP/1.1\r\n\r\n"), 10),
            &mut out,
        );
        t.push(
            &unnamed(data(1, 3, b"GET /b HTTP/1.1\r\n\r\n"), 20),
            &mut out,
        );
        t.push(&unnamed(sent(1, 4, ok), 20), &mut out);
        t.push(
            &unnamed(data(1, 5, b"GET /c HTTP/1.1\r\n\r\n"), 30),
            &mut out,
        );
        t.push(&unnamed(sent(1, 6, ok), 30), &mut out);
        let names: Vec<(u32, String)> = out
            .iter()
            .filter_map(|r| match r {
                Record::Exchange { conn, .. } => Some((conn.meta.tgid, conn.meta.comm.to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(
            names,
            [
                (10, "server".into()),
                (20, "worker".into()),
                (30, "worker".into())
            ]
        );
        // A connection whose opening was lost (its gap given up at the end): named by its
        // process's other opening.
        let before = out.len();
        t.push(
            &unnamed(data(3, 1, b"GET /d HTTP/1.1\r\n\r\n"), 20),
            &mut out,
        );
        t.push(&unnamed(sent(3, 2, ok), 20), &mut out);
        t.finish(&mut out);
        let lost_open: Vec<String> = out[before..]
            .iter()
            .filter_map(|r| match r {
                Record::Exchange { conn, .. } if conn.meta.tgid == 20 => {
                    Some(conn.meta.comm.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(lost_open, ["worker"]);
        // A process's name is forgotten at its exit.
        t.process_exited(20, &mut out);
        assert!(!t.names.knows_process(20));
    }

    /// "request -> response" per exchange, "malformed: why" per error.
    fn targets(out: &[Record]) -> Vec<String> {
        out.iter()
            .map(|r| match r {
                Record::Exchange {
                    request, response, ..
                } => format!("{} -> {}", line(request), line(response)),
                Record::Malformed { reason, .. } => format!("malformed: {reason}"),
            })
            .collect()
    }

    fn request(r: &Record) -> &Message {
        match r {
            Record::Exchange {
                request: Some(m), ..
            } => m,
            other => panic!("no request in {other:?}"),
        }
    }

    fn run(chunks: &[Chunk<&'static [u8]>]) -> (Vec<Record>, Tracker) {
        let mut t = Tracker::new(1024);
        let mut out = Vec::new();
        for c in chunks {
            t.push(c, &mut out);
        }
        (out, t)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn request_and_response_make_an_exchange() {
        let (out, t) = run(&[
            accept(1),
            data(1, 1, b"GET /a HTTP/1.1\r\n"),
            data(1, 2, b"\r\n"),
            sent(1, 3, OK),
        ]);
        assert_eq!(targets(&out), ["GET /a -> 200"]);
        let Record::Exchange { conn, response, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!((conn.meta, conn.role), (meta(), Role::Server));
        let (req, resp) = (request(&out[0]), response.as_ref().unwrap());
        // First byte of the request to last byte of the response.
        assert_eq!((req.ts_ns, resp.end_ts_ns), (101, 103));
        assert!(!t.has_gaps());
    }

    #[test]
    fn pipelined_requests_pair_in_order() {
        let (out, _) = run(&[
            accept(1),
            data(1, 1, b"GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n"),
            // The HEAD response announces a length it does not send.
            sent(
                1,
                2,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
            ),
            sent(1, 3, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        ]);
        assert_eq!(
            targets(&out),
            ["GET /a -> 200", "HEAD /b -> 200", "GET /c -> 404"]
        );
    }

    #[test]
    fn a_client_connection_pairs_the_other_way() {
        let (out, _) = run(&[
            open(1, Opened::Connected),
            sent(1, 1, b"POST /api HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
            data(1, 2, OK),
        ]);
        assert_eq!(targets(&out), ["POST /api -> 200"]);
        let Record::Exchange { conn, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(conn.role, Role::Client);
    }

    #[test]
    fn the_role_of_a_found_connection_is_who_sends_requests() {
        let fresh = Opened::Found {
            received: Some(0),
            sent: Some(0),
        };
        let (out, _) = run(&[
            open(1, fresh),
            sent(1, 1, b"GET /x HTTP/1.1\r\n\r\n"),
            data(1, 2, OK),
        ]);
        let Record::Exchange { conn, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(conn.role, Role::Client);
    }

    #[test]
    fn a_connection_open_before_tracing_takes_its_role_from_proc() {
        let mid = Opened::Found {
            received: Some(50),
            sent: Some(80),
        };
        let mut t = Tracker::new(1024);
        t.preopened(10, 5, Role::Server);
        let mut out = Vec::new();
        for c in [open(1, mid), sent(1, 1, OK), close(1, 2)] {
            t.push(&c, &mut out);
        }
        assert!(out.is_empty());
        t.push(&open(2, mid), &mut out);
        t.push(&sent(2, 1, b"GET /x HTTP/1.1\r\n\r\n"), &mut out);
        t.finish(&mut out);
        let Record::Exchange { conn, .. } = &out[0] else {
            unreachable!()
        };
        // The first connection used the hint; the second, with the same fd, has none.
        assert_eq!(conn.role, Role::Client);
        assert!(t.preopened.is_empty());
    }

    #[test]
    fn a_response_to_a_request_not_seen_is_counted() {
        let mid = Opened::Found {
            received: Some(50),
            sent: Some(0),
        };
        let (out, t) = run(&[
            open(1, mid),
            sent(1, 1, OK),
            data(1, 2, b"GET /next HTTP/1.1\r\n\r\n"),
            sent(1, 3, OK),
        ]);
        assert_eq!(targets(&out), ["GET /next -> 200"]);
        assert_eq!(t.stats.unpaired_responses, 1);
    }

    #[test]
    fn a_response_numbered_before_its_request_is_paired_by_time() {
        // A relay's reader thread ended its receive of the answer before the writer thread's
        // send of the request reached its exit, so the answer took the lower number; the
        // request's bytes moved first (earlier timestamp).
        let mut request = sent(1, 2, b"GET /first HTTP/1.1\r\n\r\n");
        request.ts_ns = 50;
        let (out, t) = run(&[
            open(1, Opened::Connected),
            data(1, 1, OK),
            request,
            sent(1, 3, b"HEAD /second HTTP/1.1\r\n\r\n"),
            data(1, 4, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            sent(1, 5, b"GET /third HTTP/1.1\r\n\r\n"),
            data(1, 6, OK),
        ]);
        assert_eq!(
            targets(&out),
            [
                "GET /first -> 200",
                "HEAD /second -> 200",
                "GET /third -> 200"
            ]
        );
        assert_eq!(t.stats.unpaired_responses, 0);
        assert_eq!(t.stats.responses_seen, 3);
    }

    #[test]
    fn a_response_held_for_its_request_is_counted_when_none_comes() {
        let (out, t) = run(&[
            open(1, Opened::Connected),
            data(1, 1, OK),
            sent(1, 2, b"GET /later HTTP/1.1\r\n\r\n"),
            data(1, 3, OK),
            data(1, 4, OK),
            close(1, 5),
        ]);
        assert_eq!(targets(&out), ["GET /later -> 200"]);
        assert_eq!(t.stats.unpaired_responses, 2);
    }

    #[test]
    fn a_connect_refused_then_accepted_pairs_each_and_tunnels_after() {
        let (out, t) = run(&[
            accept(1),
            data(
                1,
                1,
                b"CONNECT db:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            ),
            sent(
                1,
                2,
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            ),
            data(
                1,
                3,
                b"CONNECT db:443 HTTP/1.1\r\nProxy-Authorization: Basic eA==\r\n\r\n\x16\x03\x01",
            ),
            sent(1, 4, b"HTTP/1.1 200 Connection established\r\n\r\n"),
            data(1, 5, b"\x16\x03\x01 tunnel"),
            sent(1, 6, b"\x16\x03\x03 tunnel back"),
            close(1, 7),
        ]);
        assert_eq!(
            targets(&out),
            ["CONNECT db:443 -> 407", "CONNECT db:443 -> 200"]
        );
        assert!(out.iter().all(|r| !matches!(r, Record::Malformed { .. })));
        let p = t.parser_stats();
        assert_eq!((p.switched_bytes, p.resync_bytes), (3 + 10 + 15, 0));
    }

    #[test]
    fn events_from_other_cpus_are_put_back_in_order() {
        let (out, t) = run(&[
            data(1, 3, b"GET /b HTTP/1.1\r\n\r\n"),
            sent(1, 4, OK),
            data(1, 2, b"\r\n\r\n"),
            accept(1),
            data(1, 1, b"GET /a HTTP/1.1"),
            sent(1, 5, OK),
        ]);
        assert_eq!(targets(&out), ["GET /a -> 200", "GET /b -> 200"]);
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
            sent(2, 3, OK),
            sent(1, 2, OK),
        ]);
        assert_eq!(targets(&out), ["GET /two -> 200", "GET /one -> 200"]);
    }

    /// Events waiting behind a missing one are bounded in bytes, not only in time: past the
    /// ceiling the gap is given up at once (counted), and the exchanges behind it come out
    /// without waiting for the timeout.
    #[test]
    fn events_waiting_past_their_budget_give_their_gap_up() {
        const BODY: &[u8] = &[b'x'; 1000];
        let mut t = Tracker::with_early_budget(64, 8 * 1024);
        let mut out = Vec::new();
        t.push(&accept(1), &mut out);
        // seq 1 is lost; each exchange after it is a request and a 1000-byte response.
        let mut seq = 2;
        let mut pushed = 0;
        while out.is_empty() && pushed < 100 {
            t.push(&data(1, seq, b"GET /x HTTP/1.1\r\n\r\n"), &mut out);
            t.push(
                &sent(
                    1,
                    seq + 1,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
                ),
                &mut out,
            );
            t.push(&sent(1, seq + 2, BODY), &mut out);
            seq += 3;
            pushed += 1;
            assert!(t.early <= 8 * 1024 + 2 * 1024, "{}", t.early);
        }
        // 8 KiB hold about six exchanges (each event's overhead counted too).
        assert!((5..=8).contains(&pushed), "{pushed}");
        assert_eq!((t.stats.gaps_shed, t.stats.events_missing), (1, 1));
        assert!(!t.has_gaps());
        assert_eq!(t.early, 0);
        assert_eq!(targets(&out).len(), pushed, "{:?}", targets(&out));
        assert!(targets(&out).iter().all(|x| x == "GET /x -> 200"));
        // The next exchange passes at once.
        t.push(&data(1, seq, b"GET /y HTTP/1.1\r\n\r\n"), &mut out);
        t.push(&sent(1, seq + 1, OK), &mut out);
        assert_eq!(targets(&out).last().unwrap(), "GET /y -> 200");
    }

    #[test]
    fn a_lost_event_is_given_up_after_the_timeout() {
        let mut t = Tracker::new(1024);
        let mut out = Vec::new();
        let timeout = GAP_TIMEOUT.as_nanos() as u64;
        t.push(&accept(1), &mut out);
        t.push(
            &data(1, 1, b"POST /a HTTP/1.1\r\nContent-Length: 8\r\n\r\n1234"),
            &mut out,
        );
        // seq 2 (the rest of the body) is lost; seq 3 starts the next request.
        t.push(&data(1, 3, b"GET /b HTTP/1.1\r\n\r\n"), &mut out);
        assert!(t.has_gaps());
        t.expire_gaps(103 + timeout / 2, &mut out); // seq 3 came at 103
        t.push(&sent(1, 4, OK), &mut out);
        assert!(out.is_empty(), "gave up too early");
        t.expire_gaps(103 + timeout, &mut out);
        // The first response goes to the first request, cut short by the gap.
        assert_eq!(targets(&out), ["POST /a (incomplete) -> 200"]);
        assert_eq!(t.stats.events_missing, 1);
        assert!(!t.has_gaps());
        // A straggler that arrives after it was given up on is ignored.
        t.push(&data(1, 2, b"5678"), &mut out);
        t.push(&sent(1, 5, OK), &mut out);
        assert_eq!(targets(&out)[1..], ["GET /b -> 200"]);
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
            data(1, 3, b"wxyz"),
            sent(1, 4, OK),
        ]);
        assert_eq!(targets(&out), ["PUT /f -> 200"]);
        let r = request(&out[0]);
        assert_eq!(r.body_bytes, 14);
        // The body's start only: "wxyz" does not follow "abcde".
        assert_eq!(r.body(), b"abcde");
        assert_eq!(r.body_missing_bytes, 5);
        assert_eq!(t.stats.bytes_not_kept, 5);
    }

    #[test]
    fn sendfile_bytes_are_counted_in_the_response_body() {
        let (out, t) = run(&[
            accept(1),
            data(1, 1, b"GET /file HTTP/1.1\r\n\r\n"),
            sent(1, 2, b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"),
            Chunk {
                kind: ChunkKind::Data(Data {
                    direction: Direction::Out,
                    offset: 0,
                    ret: 5000,
                    last: true,
                    no_data: true,
                    unseen: false,
                    spliced: false,
                    tls: false,
                    bytes: &b""[..],
                }),
                ..data(1, 3, b"")
            },
        ]);
        assert_eq!(targets(&out), ["GET /file -> 200"]);
        let Record::Exchange {
            response: Some(resp),
            ..
        } = &out[0]
        else {
            unreachable!()
        };
        assert_eq!((resp.body_bytes, resp.body_missing_bytes), (5000, 5000));
        assert_eq!(t.stats.bytes_not_kept, 0);
    }

    #[test]
    fn an_unreadable_chunk_is_a_hole_of_known_size() {
        let (out, t) = run(&[
            accept(1),
            piece(1, 1, 0, 30, false, b"POST /x HTTP/1.1\r\nContent-Le"),
            // Bytes 28..30 could not be read: the next chunk of the series starts past them.
            piece(1, 2, 30, 30, true, b""),
            data(1, 3, b"GET /y HTTP/1.1\r\n\r\n"),
            sent(1, 4, OK),
        ]);
        assert_eq!(targets(&out), ["GET /y -> 200"]);
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
            sent(2, 2, OK),
        ]);
        assert_eq!(
            targets(&out),
            ["POST /a (incomplete) -> -", "GET /b -> 200"]
        );
        assert!(!t.conns.contains_key(&1));
    }

    #[test]
    fn an_event_racing_the_end_is_counted_not_taken_for_a_new_connection() {
        let (out, mut t) = run(&[
            accept(1),
            data(1, 1, b"GET /a HTTP/1.1\r\n\r\n"),
            sent(1, 2, OK),
            close(1, 3),
            // Numbered after the end on another CPU (close() and the state change both saw it).
            sent(1, 4, b"x"),
            close(1, 5),
        ]);
        assert_eq!(targets(&out), ["GET /a -> 200"]);
        assert!(t.conns.is_empty());
        let mut rest = Vec::new();
        t.finish(&mut rest);
        assert!(rest.is_empty());
        assert_eq!(t.stats.events_after_end, 1);
        assert_eq!(t.stats.events_missing, 0);
    }

    #[test]
    fn a_body_that_runs_to_the_close_ends_with_it() {
        let (out, _) = run(&[
            open(1, Opened::Connected),
            sent(1, 1, b"GET /old HTTP/1.0\r\n\r\n"),
            data(1, 2, b"HTTP/1.0 200 OK\r\n\r\nall of "),
            data(1, 3, b"it"),
            close(1, 4),
        ]);
        assert_eq!(targets(&out), ["GET /old -> 200"]);
    }

    #[test]
    fn an_upgrade_leaves_both_directions_alone() {
        let (out, t) = run(&[
            accept(1),
            data(1, 1, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"),
            sent(
                1,
                2,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            ),
            data(1, 3, b"\x81\x85frame GET / HTTP/1.1\r\n\r\n"),
            sent(1, 4, b"\x81\x02hi"),
            close(1, 5),
        ]);
        assert_eq!(targets(&out), ["GET /ws -> 101"]);
        assert_eq!(t.parser_stats().switched_bytes, 30);
        assert_eq!(t.parser_stats().resync_bytes, 0);
    }

    #[test]
    fn a_response_gone_by_unseen_leaves_its_request_unanswered_not_mispaired() {
        // 52 bytes sent outside the calls followed (io_uring): the first response.
        let mut unseen = sent(1, 2, b"");
        if let ChunkKind::Data(d) = &mut unseen.kind {
            d.ret = 52;
            d.no_data = true;
            d.unseen = true;
        }
        let (out, t) = run(&[
            accept(1),
            data(1, 1, b"GET /unseen HTTP/1.1\r\n\r\n"),
            unseen,
            data(1, 3, b"GET /next HTTP/1.1\r\n\r\n"),
            sent(1, 4, OK),
        ]);
        assert_eq!(targets(&out), ["GET /unseen -> -", "GET /next -> 200"]);
        assert_eq!(t.stats.bytes_unseen, 52);
        assert_eq!(t.parser_stats().resync_bytes, 0);
    }

    #[test]
    fn process_exit_closes_its_connections() {
        let (mut out, mut t) = run(&[accept(1), data(1, 1, b"GET /x HTTP/1.1\r\n\r\n")]);
        t.process_exited(99, &mut out);
        assert!(out.is_empty());
        t.process_exited(10, &mut out);
        assert_eq!(targets(&out), ["GET /x -> -"]);
        assert!(t.conns.is_empty() && t.by_process.is_empty());
    }

    #[test]
    fn a_connection_handed_to_a_child_belongs_to_the_child() {
        // Accepted by process 10, served by its child 20 on fds 0 and 1 (dup2), as busybox
        // httpd does: the exchange names the child and both fds.
        let in_child = |mut c: Chunk<&'static [u8]>, fd: i32| {
            c.meta.tgid = 20;
            c.meta.tid = 20;
            c.meta.fd = fd;
            c
        };
        let (mut out, mut t) = run(&[
            accept(1),
            accept(2),
            in_child(data(1, 1, b"GET /child HTTP/1.1\r\n\r\n"), 0),
        ]);
        t.push(&in_child(sent(1, 2, OK), 1), &mut out);
        let Record::Exchange {
            conn, responder, ..
        } = &out[0]
        else {
            unreachable!()
        };
        assert_eq!((conn.meta.tgid, conn.meta.fd), (20, 0));
        assert_eq!(*responder, Some(Responder { tgid: 20, fd: 1 }));
        // The parent's exit leaves the child's connection; the child's ends it.
        t.process_exited(10, &mut out);
        assert_eq!(t.conns.keys().collect::<Vec<_>>(), [&1]);
        t.process_exited(20, &mut out);
        assert!(t.conns.is_empty() && t.by_process.is_empty());
    }

    #[test]
    fn finish_releases_waiting_events_and_counts_partial_heads() {
        let mut t = Tracker::new(1024);
        let mut out = Vec::new();
        t.push(&accept(1), &mut out);
        t.push(
            &data(1, 2, b"GET /late HTTP/1.1\r\n\r\nGET /cut HTTP/1.1\r\n"),
            &mut out,
        );
        t.finish(&mut out);
        assert_eq!(targets(&out), ["GET /late -> -"]);
        assert_eq!(t.stats.events_missing, 1);
        assert_eq!(t.stats.partial_heads, 1);
        assert!(t.conns.is_empty());
    }

    #[test]
    fn a_connection_found_mid_stream_starts_at_the_next_request() {
        let mid = Opened::Found {
            received: Some(5000),
            sent: Some(0),
        };
        let (out, _) = run(&[
            open(1, mid),
            data(1, 1, b"tail of an earlier body"),
            data(1, 2, b"GET /next HTTP/1.1\r\n\r\n"),
            sent(1, 3, OK),
        ]);
        assert_eq!(targets(&out), ["GET /next -> 200"]);
        // Found before anything was read: parsed like an accepted connection.
        let fresh = Opened::Found {
            received: Some(0),
            sent: Some(0),
        };
        let (out, t) = run(&[open(2, fresh), data(2, 1, b"\x16\x03junk")]);
        assert!(out.is_empty());
        assert_eq!(t.parser_stats().non_http_bytes, 6);
    }

    #[test]
    fn a_socket_of_unknown_position_is_parsed_or_found_not_http() {
        let unknown = Opened::Found {
            received: None,
            sent: None,
        };
        // Its first bytes start a request: taken as such.
        let (out, _) = run(&[
            open(1, unknown),
            data(1, 1, b"GET /unix HTTP/1.1\r\n\r\n"),
            sent(1, 2, OK),
        ]);
        assert_eq!(targets(&out), ["GET /unix -> 200"]);
        // No message in it by its end (an IPC channel): its bytes were not HTTP, not skipped in
        // a hunt for the next message.
        let (out, t) = run(&[
            open(2, unknown),
            sent(2, 1, b"{\"cmd\":\"NODE_HANDLE\"}\n"),
            data(2, 2, b"{\"cmd\":\"NODE_HANDLE_ACK\"}\n"),
            close(2, 3),
        ]);
        assert!(out.is_empty());
        let parsed = t.parser_stats();
        assert_eq!((parsed.non_http_bytes, parsed.resync_bytes), (22 + 26, 0));
    }

    #[test]
    fn malformed_bytes_are_reported_with_their_direction() {
        let (out, _) = run(&[
            accept(1),
            data(1, 1, b"GET /ok HTTP/1.1\r\n\r\n"),
            sent(1, 2, OK),
            data(1, 3, b"GET /bad HTTP/1.1\r\nBad Header\r\n\r\n"),
        ]);
        assert_eq!(
            targets(&out),
            [
                "GET /ok -> 200",
                "malformed: invalid request: invalid header name"
            ]
        );
        assert!(matches!(
            out[1],
            Record::Malformed {
                direction: Direction::In,
                ..
            }
        ));
    }

    #[test]
    fn non_http_bytes_are_counted_for_the_summary() {
        let (_, mut t) = run(&[accept(1), data(1, 1, b"\x00\x01binary")]);
        assert_eq!(t.parser_stats().non_http_bytes, 8);
        t.finish(&mut Vec::new());
        assert_eq!(t.parser_stats().non_http_bytes, 8);
    }

    /// Three keep-alive connections, each two exchanges (the second request split over two
    /// receives), in the order the calls happened: one connection's event after another's.
    fn three_connections() -> Vec<Chunk<&'static [u8]>> {
        let per_conn = |id: u64| {
            vec![
                accept(id),
                data(id, 1, b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"),
                sent(id, 2, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
                data(id, 3, b"POST /two HTTP/1.1\r\nContent-Le"),
                data(id, 4, b"ngth: 3\r\n\r\nabc"),
                sent(id, 5, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
                close(id, 6),
            ]
        };
        let conns: Vec<Vec<_>> = (1..=3).map(per_conn).collect();
        (0..7)
            .flat_map(|i| conns.iter().map(move |c| c[i].clone()))
            .collect()
    }

    /// What the tracker makes of `events` delivered in this order, in a canonical order.
    fn records_of(events: &[Chunk<&'static [u8]>]) -> (Vec<String>, TrackerStats) {
        let mut t = Tracker::new(64);
        let mut out = Vec::new();
        for e in events {
            t.push(e, &mut out);
        }
        t.finish(&mut out);
        let mut lines: Vec<String> = out.iter().map(|r| format!("{r:?}")).collect();
        lines.sort();
        (lines, t.stats)
    }

    proptest::proptest! {
        /// Events reach user space through per-CPU buffers: each CPU's in the order it made
        /// them, the CPUs' interleaved in any order. Any such delivery gives exactly the records
        /// of the ordered stream.
        #[test]
        fn any_delivery_the_cpu_buffers_allow_gives_the_same_records(
            cpus in proptest::collection::vec(0..4usize, 21),
            picks in proptest::collection::vec(0..4usize, 64),
        ) {
            let events = three_connections();
            let mut queues: Vec<std::collections::VecDeque<_>> = vec![Default::default(); 4];
            for (e, &cpu) in events.iter().zip(&cpus) {
                queues[cpu].push_back(e.clone());
            }
            let mut delivered = Vec::new();
            let mut picks = picks.into_iter();
            while queues.iter().any(|q| !q.is_empty()) {
                // The next CPU to deliver: the pick, or the first with events once picks run out.
                let want = picks.next().unwrap_or(0);
                let cpu = (0..4)
                    .map(|i| (want + i) % 4)
                    .find(|&c| !queues[c].is_empty())
                    .expect("a CPU with events");
                delivered.push(queues[cpu].pop_front().expect("an event"));
            }
            let (want, want_stats) = records_of(&events);
            let (got, got_stats) = records_of(&delivered);
            proptest::prop_assert_eq!(want.len(), 6);
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(got_stats, want_stats);
        }
    }

    /// `GET /0` to `GET /{n-1}`, pipelined.
    fn numbered_requests(n: usize) -> &'static [u8] {
        leaked(
            (0..n)
                .flat_map(|i| format!("GET /{i} HTTP/1.1\r\n\r\n").into_bytes())
                .collect(),
        )
    }

    /// Their answers, in order: body `i` for request `i`.
    fn numbered_responses(n: usize) -> &'static [u8] {
        leaked(
            (0..n)
                .flat_map(|i| {
                    let body = i.to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .into_bytes()
                })
                .collect(),
        )
    }

    /// Each record is a whole exchange of `GET /i` answered by body `i`, from i = `first` on.
    fn assert_paired_in_order(out: &[Record], first: usize) {
        for (k, rec) in out.iter().enumerate() {
            let Record::Exchange {
                request: Some(q),
                response: Some(r),
                ..
            } = rec
            else {
                panic!("not a whole exchange: {rec:?}");
            };
            let StartLine::Request { target, .. } = q.start() else {
                panic!("not a request");
            };
            let i = k + first;
            assert_eq!(target, format!("/{i}"));
            assert_eq!(r.body(), i.to_string().as_bytes(), "paired wrongly");
        }
    }

    fn leaked(bytes: Vec<u8>) -> &'static [u8] {
        Box::leak(bytes.into_boxed_slice())
    }

    #[test]
    fn an_oversized_request_is_given_up_with_its_response_and_the_next_is_paired() {
        let mut big = b"GET /big HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(700)).as_bytes());
        }
        big.extend_from_slice(b"\r\n");
        let (out, mut t) = run(&[
            accept(1),
            data(1, 1, leaked(big)),
            sent(1, 2, b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n"),
            data(1, 3, b"GET /next HTTP/1.1\r\n\r\n"),
            sent(1, 4, OK),
        ]);
        assert_eq!(
            targets(&out),
            [
                "malformed: message head larger than 64 KiB",
                "GET /next -> 200"
            ]
        );
        assert_eq!(out[0].conn().role, Role::Server);
        assert_eq!(t.stats.unpaired_responses, 0);
        assert_eq!(t.stats.responses_skipped, 1);
        assert_eq!(t.parser_stats().oversized_heads, 1);
        t.finish(&mut Vec::new());
        assert_eq!(t.stats.unpaired_responses, 0);
    }

    #[test]
    fn past_max_waiting_the_oldest_requests_are_given_up_and_their_responses_skipped() {
        use crate::pairing::MAX_WAITING;
        let n = MAX_WAITING + 10;
        let (out, t) = run(&[
            accept(1),
            data(1, 1, numbered_requests(n)),
            sent(1, 2, numbered_responses(n)),
        ]);
        assert_eq!(t.stats.requests_given_up, 10);
        assert_eq!(t.stats.responses_skipped, 10);
        assert_eq!(t.stats.unpaired_responses, 0);
        assert_eq!(out.len(), MAX_WAITING);
        assert_paired_in_order(&out, 10);
    }

    #[test]
    fn past_the_budget_the_largest_holders_give_up_their_unfinished_heads() {
        let head = |n: usize| {
            let mut h = b"GET /h HTTP/1.1\r\n".to_vec();
            while h.len() < n {
                h.extend_from_slice(format!("X-Pad: {}\r\n", "a".repeat(991)).as_bytes());
            }
            leaked(h)
        };
        let pad = |n: usize| {
            leaked(
                format!("X-Pad: {}\r\n", "a".repeat(991))
                    .repeat(n / 1000)
                    .into_bytes(),
            )
        };
        let mut t = Tracker::with_budget(1024, 40_000);
        let mut out = Vec::new();
        for c in [
            accept(1),
            accept(2),
            accept(3),
            data(1, 1, head(10_000)),
            data(2, 1, head(1_000)),
            data(3, 1, head(20_000)),
        ] {
            t.push(&c, &mut out);
        }
        assert_eq!(
            t.parser_stats().heads_shed,
            0,
            "within the budget: {} held",
            t.held
        );
        // Connection 3 grows past the budget: it holds the most and gives up its head.
        t.push(&data(3, 2, pad(15_000)), &mut out);
        assert_eq!(t.parser_stats().heads_shed, 1);
        assert!(t.held <= 30_000, "{} held", t.held);
        // Each goes on: 1 and 2 finish their heads; 3's answer to the head given up is skipped,
        // and it resumes at its next request.
        for c in [
            data(1, 2, b"\r\n"),
            sent(1, 3, OK),
            data(2, 2, b"\r\n"),
            sent(2, 3, OK),
            data(3, 3, b"X-More: a\r\n\r\n"),
            sent(3, 4, OK),
            data(3, 5, b"GET /next HTTP/1.1\r\n\r\n"),
            sent(3, 6, OK),
        ] {
            t.push(&c, &mut out);
        }
        assert_eq!(
            targets(&out),
            ["GET /h -> 200", "GET /h -> 200", "GET /next -> 200"]
        );
        assert_eq!(t.stats.responses_skipped, 1);
        assert_eq!(t.stats.early_responses + t.stats.unpaired_responses, 0);
        t.finish(&mut out);
        assert_eq!(t.held, 0);
    }

    #[test]
    fn past_the_budget_requests_waiting_for_responses_are_given_up_and_theirs_skipped() {
        let n = 200;
        let mut t = Tracker::with_budget(1024, 8_000);
        let mut out = Vec::new();
        for c in [accept(1), data(1, 1, numbered_requests(n))] {
            t.push(&c, &mut out);
        }
        let shed = t.stats.requests_shed;
        assert!(shed > 0 && t.held <= 8_000, "{shed} shed, {} held", t.held);
        t.push(&sent(1, 2, numbered_responses(n)), &mut out);
        assert_eq!(out.len(), n - shed as usize);
        assert_eq!(t.stats.responses_skipped, shed);
        assert_paired_in_order(&out, shed as usize);
        assert_eq!(t.held, 0);
    }

    #[test]
    fn what_cannot_be_shed_is_not_walked_again_on_every_event() {
        // Bodies being read are kept (to the body limit): shedding frees nothing of them.
        let mut t = Tracker::with_budget(4096, 6_000);
        let mut out = Vec::new();
        for id in 1..=3 {
            t.push(&accept(id), &mut out);
            t.push(
                &data(
                    id,
                    1,
                    b"POST /b HTTP/1.1\r\nContent-Length: 100000\r\n\r\nxx",
                ),
                &mut out,
            );
        }
        assert!(t.held > 6_000, "{}", t.held);
        assert_eq!(t.shed_at, t.held + 6_000 / 4);
        let shed_at = t.shed_at;
        t.push(&data(1, 2, b"more body"), &mut out);
        assert_eq!(t.shed_at, shed_at, "not walked again");
        t.finish(&mut out);
        assert_eq!((t.held, t.parser_stats().heads_shed), (0, 0));
    }

    /// uWSGI's workers: a request in uwsgi's binary protocol, an HTTP answer. The request's
    /// bytes are non-HTTP traffic, its answer a response to a request that was not HTTP: each
    /// counted once, under that name, not as an early error answer.
    #[test]
    fn an_http_answer_to_a_request_that_was_not_http_is_counted_once() {
        let mut t = Tracker::new(64);
        let mut out = Vec::new();
        let uwsgi = b"\x00\x1b\x00\x00\x0e\x00REQUEST_METHOD\x03\x00GET";
        for c in [
            accept(1),
            data(1, 1, uwsgi),
            sent(1, 2, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            close(1, 3),
        ] {
            t.push(&c, &mut out);
        }
        t.finish(&mut out);
        assert!(out.is_empty(), "{out:?}");
        let s = t.stats;
        assert_eq!(
            (
                s.responses_to_non_http,
                s.early_responses,
                s.unpaired_responses
            ),
            (1, 0, 0)
        );
        let p = t.parser_stats();
        assert_eq!((p.non_http_bytes, p.resync_bytes), (uwsgi.len() as u64, 0));
    }

    /// Bytes past --capture-bytes are counted once, as not captured: not again as non-HTTP
    /// traffic (a binary protocol) or as skipped to resynchronise (a head cut by the limit).
    #[test]
    fn bytes_not_copied_are_counted_once() {
        let mut t = Tracker::new(64);
        let mut out = Vec::new();
        for c in [
            accept(1),
            // 5 of 105 bytes copied, of a stream that is not HTTP.
            piece(1, 1, 0, 105, true, b"\x00\x03\x01\x02\x00"),
            accept(2),
            // A head cut by the limit: 16 bytes of 50 copied, then the next request whole.
            piece(2, 1, 0, 50, true, b"GET /a HTTP/1.1\r"),
            data(2, 2, b"GET /b HTTP/1.1\r\n\r\n"),
            sent(2, 3, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            close(1, 2),
            close(2, 4),
        ] {
            t.push(&c, &mut out);
        }
        t.finish(&mut out);
        assert_eq!(t.stats.bytes_not_kept, 100 + 34);
        let p = t.parser_stats();
        assert_eq!((p.non_http_bytes, p.resync_bytes), (5, 16));
    }
}
