//! The parser of one direction of a connection: a state machine over heads, bodies (by length,
//! chunked, or to the close), protocol switches and resynchronisation, fed the bytes in whatever
//! pieces the syscalls moved them.

use std::collections::VecDeque;

use super::framing::{request_framing, response_framing, Framing};
use super::lenient::{chunk_size_line, is_token, Lenient};
use super::message::{parse_head, Message, RequestKind, StartLine};
use super::resync::{empty_line_bytes, find_message_start, sniff, MessageStart, Sniff};

/// Largest message head kept; a bigger one is reported as malformed.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A request head was read; its response is framed by its method (HEAD, CONNECT), so the
    /// other direction is told at once, before the request's body is in.
    RequestHead {
        method: RequestKind,
        /// When its first bytes moved (the event's time).
        ts_ns: u64,
    },
    Message(Message),
    /// A request head that cannot be kept began: larger than MAX_HEAD_BYTES, or malformed (a
    /// Malformed follows). Its exchange is given up, and its response (a server answers 400 or
    /// 431), which the other direction frames by `method`, skipped.
    RequestGivenUp {
        method: RequestKind,
    },
    /// The protocol switched (101, or a 2xx to CONNECT): the connection is not HTTP/1.x any more.
    Switched,
    /// Bytes that started like a message but are not one; parsing resumes at the next message.
    Malformed {
        ts_ns: u64,
        reason: String,
    },
    /// The position in the stream was lost at `ts_ns` (bytes not captured outside a body,
    /// events lost): whole messages may have gone by unseen.
    Lost {
        ts_ns: u64,
    },
}

/// Counters of what the parser could not turn into messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ParserStats {
    /// Bytes on connections that never carried HTTP/1.x.
    pub non_http_bytes: u64,
    /// Bytes thrown away while looking for the next message after an error or a gap.
    pub resync_bytes: u64,
    /// Bytes after a protocol switch (WebSocket, a CONNECT tunnel): left alone.
    pub switched_bytes: u64,
    /// Message heads larger than MAX_HEAD_BYTES: reported malformed, parsing resumes after them.
    pub oversized_heads: u64,
    /// Unfinished message heads given up to keep the tracer's memory within its budget.
    pub heads_shed: u64,
    /// Bytes that were parts of messages (heads, bodies, chunk framing, trailers, the empty
    /// lines between messages): not a loss, but with the others it accounts for every byte fed
    /// or skipped here once (the property test `every_byte_is_counted_once`).
    pub message_bytes: u64,
    /// Bytes of message heads cut short by the end of the stream (the tracker counts the heads).
    pub partial_head_bytes: u64,
    /// Messages read outside RFC 9112's grammar (Message::lenient).
    pub lenient_messages: u64,
    /// Messages found after bytes were skipped to resynchronise (Message::resynced).
    pub resynced_messages: u64,
}

impl std::ops::AddAssign for ParserStats {
    fn add_assign(&mut self, other: Self) {
        self.non_http_bytes += other.non_http_bytes;
        self.resync_bytes += other.resync_bytes;
        self.switched_bytes += other.switched_bytes;
        self.oversized_heads += other.oversized_heads;
        self.heads_shed += other.heads_shed;
        self.message_bytes += other.message_bytes;
        self.partial_head_bytes += other.partial_head_bytes;
        self.lenient_messages += other.lenient_messages;
        self.resynced_messages += other.resynced_messages;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Inside chunk data, with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines until an empty one.
    Trailers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages, or inside a head.
    Head,
    /// Inside a body of known remaining length.
    Body(u64),
    Chunked(ChunkState),
    /// A response body that ends when the connection does.
    UntilClose,
    /// After a protocol switch (Upgrade, CONNECT): the rest is not HTTP/1.x.
    Passthrough,
    /// After a CONNECT request, until its answer: what comes is held, not parsed (a client may
    /// start its tunnel early); a 2xx makes it the tunnel's, another answer has it parsed.
    AwaitTunnel,
    /// The connection's first bytes were not HTTP/1.x.
    NotHttp,
    /// Hunting for the next message start after an error or a gap.
    Resync,
}

pub struct Parser {
    state: State,
    buf: Vec<u8>,
    current: Option<Message>,
    body_limit: usize,
    /// Whether a message head has been seen in this direction.
    seen_message: bool,
    /// Timestamp of the piece that held the first byte of `buf`.
    buf_ts: u64,
    /// Timestamp of the latest piece.
    last_ts: u64,
    /// Methods of the requests the other direction carried, whose responses are due here.
    expected: VecDeque<RequestKind>,
    /// Leniencies read before the next message's head (empty lines, an interim response),
    /// given to that message; EMPTY_LINE_BEFORE_STATUS for any empty lines, which a request
    /// line may follow.
    pending: Lenient,
    /// Whether the last byte of the empty lines before the next message was a CR.
    blank_cr: bool,
    /// Whether a leniency decided where a message of this direction ended: every later one is
    /// marked AFTER_LENIENT_FRAMING.
    lenient_framing: bool,
    /// Whether bytes were skipped, or the position lost, since the last message: the next one
    /// is marked resynced.
    resynced: bool,
    pub stats: ParserStats,
}

/// What parsing a head did with its input.
enum HeadStep {
    /// A head of this many bytes was taken; the state says what follows.
    Consumed(usize),
    /// The head is not complete yet.
    NeedMore,
    /// The input was used up (malformed, or not HTTP).
    Done,
}
/// Everything a parser keeping `body_limit` body bytes makes of one direction's `pieces`, each
/// fed at the same time, then the connection's close; `expected`: the requests whose responses
/// the stream carries. For comparing how a stream is cut (the property tests, the fuzz target).
pub fn parse_pieces(
    pieces: &[&[u8]],
    expected: &[RequestKind],
    body_limit: usize,
) -> (Vec<Parsed>, ParserStats) {
    let mut p = Parser::new(body_limit);
    for &kind in expected {
        p.expect_response(kind);
    }
    let mut out = Vec::new();
    for piece in pieces {
        p.feed(piece, 1, &mut out);
    }
    p.finish(true, &mut out);
    (out, p.stats)
}

/// The request whose head starts `input` is given up: its method frames its response.
fn given_up(input: &[u8]) -> Parsed {
    let method = input.split(|&b| b == b' ').next().unwrap_or_default();
    Parsed::RequestGivenUp {
        method: RequestKind::of(&String::from_utf8_lossy(method)),
    }
}

impl Parser {
    /// `body_limit`: body bytes kept per message (the rest is counted).
    /// Whether a message head has been seen in this direction.
    pub fn seen_message(&self) -> bool {
        self.seen_message
    }

    /// Heap bytes held: bytes waiting to be parsed, and the message being read.
    pub fn held_bytes(&self) -> usize {
        self.buf.capacity() + self.current.as_ref().map_or(0, Message::held_bytes)
    }

    /// Give up the bytes held while between messages (an unfinished head, or bytes looked
    /// through for the next message): parsing resumes at the next message start. An unfinished
    /// request is given up as one too large is (its response skipped). Returns the bytes freed.
    /// A message being read keeps its place (its body is held to the limit).
    pub fn shed(&mut self, out: &mut Vec<Parsed>) -> usize {
        let freed = self.buf.capacity();
        match self.state {
            State::Head if !self.buf.is_empty() => {
                self.stats.heads_shed += 1;
                if matches!(sniff(&self.buf), Sniff::Request) {
                    out.push(given_up(&self.buf));
                }
                self.stats.resync_bytes += self.buf.len() as u64;
                self.enter_resync();
            }
            State::Head | State::Resync => {
                self.stats.resync_bytes += self.buf.len() as u64;
                self.resynced |= !self.buf.is_empty();
            }
            _ => return 0,
        }
        self.buf = Vec::new();
        freed
    }

    /// Whether bytes wait here that are not a whole message head yet: what a server answers
    /// early (400, 414, 431) before its request is complete.
    pub fn holds_unfinished_bytes(&self) -> bool {
        matches!(self.state, State::Head | State::Resync) && !self.buf.is_empty()
    }

    /// Whether every byte fed so far belongs to a whole message (or to no message at all: not
    /// HTTP, or past a protocol switch): nothing of one is still to come.
    pub fn between_messages(&self) -> bool {
        match self.state {
            State::Head => self.buf.is_empty(),
            State::Passthrough | State::NotHttp => true,
            State::Body(_)
            | State::Chunked(_)
            | State::UntilClose
            | State::Resync
            | State::AwaitTunnel => false,
        }
    }

    /// Whether this direction's bytes were not HTTP/1.x from its start (a uwsgi or FastCGI
    /// request, whose answer may be HTTP all the same).
    pub fn is_not_http(&self) -> bool {
        self.state == State::NotHttp
    }

    pub fn new(body_limit: usize) -> Self {
        Self {
            state: State::Head,
            buf: Vec::new(),
            current: None,
            body_limit,
            seen_message: false,
            buf_ts: 0,
            last_ts: 0,
            expected: VecDeque::new(),
            pending: Lenient::NONE,
            blank_cr: false,
            lenient_framing: false,
            resynced: false,
            stats: ParserStats::default(),
        }
    }

    /// The other direction carried a request with this method: its response is due here.
    pub fn expect_response(&mut self, method: RequestKind) {
        self.expected.push_back(method);
    }

    /// The connection switched protocols: leave the rest of this direction alone.
    /// The answer to the CONNECT request that came last was not a 2xx: no tunnel; the bytes
    /// held since are parsed.
    pub fn connect_refused(&mut self, out: &mut Vec<Parsed>) {
        if self.state == State::AwaitTunnel {
            self.state = State::Head;
            let held = std::mem::take(&mut self.buf);
            self.feed(&held, self.last_ts, out);
        }
    }

    pub fn switch_protocols(&mut self, out: &mut Vec<Parsed>) {
        if let Some(mut msg) = self.current.take() {
            msg.complete = false;
            out.push(Parsed::Message(msg));
        }
        self.stats.switched_bytes += self.buf.len() as u64;
        self.buf.clear();
        self.state = State::Passthrough;
    }

    /// Feed the next bytes of the stream, moved at `ts_ns`; what they complete goes to `out`.
    pub fn feed(&mut self, mut data: &[u8], ts_ns: u64, out: &mut Vec<Parsed>) {
        self.last_ts = ts_ns;
        while !data.is_empty() {
            data = match self.state {
                State::Head => self.feed_head(data, ts_ns, out),
                State::Body(left) => self.feed_body(data, left, out),
                State::Chunked(cs) => self.feed_chunked(data, cs, ts_ns, out),
                State::UntilClose => {
                    self.take_body(data);
                    &[]
                }
                State::Passthrough => {
                    self.stats.switched_bytes += data.len() as u64;
                    &[]
                }
                State::NotHttp => {
                    self.stats.non_http_bytes += data.len() as u64;
                    &[]
                }
                State::AwaitTunnel if self.buf.len() + data.len() <= MAX_HEAD_BYTES => {
                    self.buf.extend_from_slice(data);
                    &[]
                }
                // More than a head's worth before the answer: a tunnel's, whatever it says.
                State::AwaitTunnel => {
                    self.stats.switched_bytes += (self.buf.len() + data.len()) as u64;
                    self.buf.clear();
                    self.state = State::Passthrough;
                    &[]
                }
                State::Resync => self.feed_resync(data, ts_ns, out),
            };
        }
    }

    /// The stream is joined somewhere in the middle: start at the next message start found.
    pub fn start_mid_stream(&mut self) {
        self.buf.clear();
        self.current = None;
        self.state = State::Resync;
    }

    /// `n` bytes of the stream, moved at `ts_ns`, were not captured (past --capture-bytes,
    /// sendfile, unreadable, moved outside the calls followed). Inside a body they are only
    /// counted; anywhere else the stream position is lost and the parser resynchronises on the
    /// next message. `counted`: the bytes are already counted under another name (not copied,
    /// moved unseen), so they are counted under none here.
    pub fn skip_counted(&mut self, n: u64, ts_ns: u64, counted: bool, out: &mut Vec<Parsed>) {
        if n == 0 {
            return;
        }
        self.last_ts = ts_ns;
        // Bytes counted already (not copied, moved unseen) are not counted again here.
        let uncounted = if counted { 0 } else { n };
        match self.state {
            State::Body(left) if n <= left => {
                self.stats.message_bytes += uncounted;
                self.count_missing_body(n);
                self.state = State::Body(left - n);
                if left == n {
                    self.finish_message(out);
                }
            }
            State::Chunked(ChunkState::Data(left)) if n <= left => {
                self.stats.message_bytes += uncounted;
                self.count_missing_body(n);
                self.state = State::Chunked(if left == n {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data(left - n)
                });
            }
            State::UntilClose => {
                self.stats.message_bytes += uncounted;
                self.count_missing_body(n);
            }
            State::Passthrough => self.stats.switched_bytes += uncounted,
            State::NotHttp => self.stats.non_http_bytes += uncounted,
            _ => self.lose_position(uncounted, out),
        }
    }

    fn count_missing_body(&mut self, n: u64) {
        if let Some(msg) = self.current.as_mut() {
            msg.body_bytes += n;
            msg.body_missing_bytes += n;
        }
    }

    /// Bytes of unknown number were lost (events lost); resynchronise on the next message.
    pub fn gap(&mut self, out: &mut Vec<Parsed>) {
        if !matches!(self.state, State::Passthrough | State::NotHttp) {
            self.lose_position(0, out);
        }
    }

    /// The stream ended: `closed` when the connection did (which ends a body that runs to the
    /// close), else tracing stopped. Reports what is pending; returns true when a message head
    /// was partly received and is dropped.
    pub fn finish(&mut self, closed: bool, out: &mut Vec<Parsed>) -> bool {
        if let Some(mut msg) = self.current.take() {
            msg.complete = closed && self.state == State::UntilClose;
            msg.end_ts_ns = self.last_ts;
            out.push(Parsed::Message(msg));
        }
        let partial_head = self.state == State::Head && !self.buf.is_empty();
        let pending = self.buf.len() as u64;
        match self.state {
            State::Head => self.stats.partial_head_bytes += pending,
            State::Chunked(_) => self.stats.message_bytes += pending,
            // Sent into a tunnel that no answer opened.
            State::AwaitTunnel => self.stats.switched_bytes += pending,
            _ => self.stats.resync_bytes += pending,
        }
        self.buf.clear();
        self.state = State::Head;
        partial_head
    }

    fn lose_position(&mut self, n: u64, out: &mut Vec<Parsed>) {
        if let Some(mut msg) = self.current.take() {
            msg.complete = false;
            msg.end_ts_ns = self.last_ts;
            out.push(Parsed::Message(msg));
        }
        out.push(Parsed::Lost {
            ts_ns: self.last_ts,
        });
        self.stats.resync_bytes += self.buf.len() as u64 + n;
        self.buf.clear();
        self.enter_resync();
    }

    /// Between messages or inside a head. A head that is all in `data` is parsed where it lies;
    /// only the start of one that is not is kept in `buf` until the rest comes.
    fn feed_head<'d>(&mut self, data: &'d [u8], ts_ns: u64, out: &mut Vec<Parsed>) -> &'d [u8] {
        if !self.buf.is_empty() {
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(data);
            match self.parse_head(&buf, ts_ns, out) {
                // What follows the head came in `data`: it is as recent as `ts_ns`.
                HeadStep::Consumed(n) => self.feed(&buf[n..], ts_ns, out),
                HeadStep::NeedMore => self.buf = buf,
                HeadStep::Done => {}
            }
            return &[];
        }
        let start = empty_line_bytes(data);
        if start > 0 {
            self.empty_lines(&data[..start]);
        }
        if start == data.len() {
            return &[];
        }
        let data = &data[start..];
        self.buf_ts = ts_ns;
        match self.parse_head(data, ts_ns, out) {
            HeadStep::Consumed(n) => &data[n..],
            HeadStep::NeedMore => {
                self.buf.extend_from_slice(data);
                &[]
            }
            HeadStep::Done => &[],
        }
    }

    /// Empty lines before a message: allowed before a request line as CRLFs (RFC 9112, 2.2),
    /// read leniently otherwise.
    #[cold]
    fn empty_lines(&mut self, lines: &[u8]) {
        self.stats.message_bytes += lines.len() as u64;
        self.pending |= Lenient::EMPTY_LINE_BEFORE_STATUS;
        for &b in lines {
            // A LF with no CR before it, or a CR with no LF after it.
            if (b == b'\n') != self.blank_cr {
                self.pending |= Lenient::BARE_LF;
            }
            self.blank_cr = b == b'\r';
        }
    }

    /// Parse the message head at the start of `input`, which began at `buf_ts`; on success the
    /// state is set for what follows it.
    fn parse_head(&mut self, input: &[u8], ts_ns: u64, out: &mut Vec<Parsed>) -> HeadStep {
        let (head_len, mut msg) = match self.read_head(input, ts_ns, out) {
            Ok(head) => head,
            Err(step) => return step,
        };
        self.stats.message_bytes += head_len as u64;
        self.seen_message = true;
        let mut lenient = msg.lenient;
        let mut connect = false;
        let framing = match msg.start() {
            StartLine::Request { method, .. } => {
                let kind = RequestKind::of(method);
                out.push(Parsed::RequestHead {
                    method: kind,
                    ts_ns: self.buf_ts,
                });
                // A CONNECT has no content, whatever its headers say (RFC 9110, 9.3.6).
                connect = kind == RequestKind::Connect;
                if connect {
                    Ok(Framing::None)
                } else {
                    request_framing(&msg, &mut lenient)
                }
            }
            StartLine::Response { status: 101, .. } => {
                self.expected.pop_front();
                Ok(Framing::Switch)
            }
            // An interim response (100 Continue): the final one is still due, and is read
            // with what this one was.
            StartLine::Response { status, .. } if (100..200).contains(&status) => {
                if self.read_leniently(lenient) {
                    self.pending = self.mark_lenient(lenient, input, head_len, &msg);
                }
                return HeadStep::Consumed(head_len);
            }
            StartLine::Response { status, .. } => {
                let method = self.expected.pop_front();
                Ok(response_framing(status, method, &msg, &mut lenient))
            }
        };
        let framing = match framing {
            Ok(f) => f,
            Err(reason) => {
                // Where this body ends is unknown: report it and look for the next message.
                out.push(Parsed::Malformed {
                    ts_ns: self.buf_ts,
                    reason: reason.to_string(),
                });
                self.enter_resync();
                return HeadStep::Consumed(head_len);
            }
        };
        if self.read_leniently(lenient) {
            msg.lenient = self.mark_lenient(lenient, input, head_len, &msg);
            self.stats.lenient_messages += u64::from(!msg.lenient.is_empty());
        }
        if self.resynced {
            msg.resynced = true;
            self.resynced = false;
            self.stats.resynced_messages += 1;
        }
        msg.ts_ns = self.buf_ts;
        msg.end_ts_ns = self.last_ts;
        self.current = Some(msg);
        self.start_body(framing, out);
        if connect {
            self.state = State::AwaitTunnel;
        }
        HeadStep::Consumed(head_len)
    }

    /// Whether the message whose head and framing were read with `lenient` has more to it:
    /// what came before it, or a leniency earlier in the stream.
    #[inline(always)]
    fn read_leniently(&self, lenient: Lenient) -> bool {
        !(lenient | self.pending).is_empty() || self.lenient_framing
    }

    /// What `msg` was read with: `lenient` (its head's and framing's, `msg.lenient` its head's,
    /// of `head_len` bytes at the start of `input`), what came before it, and
    /// AFTER_LENIENT_FRAMING where an earlier message's end was decided leniently; notes
    /// whether this one's was. Out of line: strict messages never come here.
    #[cold]
    #[inline(never)]
    fn mark_lenient(
        &mut self,
        mut lenient: Lenient,
        input: &[u8],
        head_len: usize,
        msg: &Message,
    ) -> Lenient {
        let head_lenient = msg.lenient;
        lenient |= std::mem::take(&mut self.pending);
        if std::mem::take(&mut self.blank_cr) {
            lenient |= Lenient::BARE_LF;
        }
        // Only a request line may follow empty lines.
        if msg.is_request() {
            lenient = lenient.without(Lenient::EMPTY_LINE_BEFORE_STATUS);
        }
        if self.lenient_framing {
            lenient |= Lenient::AFTER_LENIENT_FRAMING;
        }
        // A head read leniently decides where the message ends when it frames a body, or
        // when its own end is a bare LF.
        let head_decides = head_lenient.intersects(Lenient::BARE_LF | Lenient::OBS_FOLD)
            && (input.get(head_len.wrapping_sub(2)) != Some(&b'\r')
                || msg.headers().any(|(name, _)| {
                    name.eq_ignore_ascii_case(b"content-length")
                        || name.eq_ignore_ascii_case(b"transfer-encoding")
                }));
        if head_decides || lenient.intersects(Lenient::FRAMING) {
            self.lenient_framing = true;
        }
        lenient
    }

    /// The head at the start of `input` and its length; else what the caller returns, with what
    /// was not a head reported. Inlined: a Message returned through a call is copied.
    #[inline(always)]
    fn read_head(
        &mut self,
        input: &[u8],
        ts_ns: u64,
        out: &mut Vec<Parsed>,
    ) -> Result<(usize, Message), HeadStep> {
        let is_response = match sniff(input) {
            Sniff::NeedMore => return Err(HeadStep::NeedMore),
            Sniff::NotHttp => {
                if self.seen_message {
                    self.malformed(input, ts_ns, "bytes that are not an HTTP message", out);
                } else {
                    self.stats.non_http_bytes += input.len() as u64;
                    self.state = State::NotHttp;
                }
                return Err(HeadStep::Done);
            }
            Sniff::Request => false,
            Sniff::Response => true,
        };
        match parse_head(input, is_response, self.body_limit) {
            Ok(Some((len, msg))) if len <= MAX_HEAD_BYTES => Ok((len, msg)),
            Ok(None) if input.len() <= MAX_HEAD_BYTES => Err(HeadStep::NeedMore),
            // Too large, whole (in one piece) or not.
            Ok(_) => {
                self.stats.oversized_heads += 1;
                if !is_response {
                    out.push(given_up(input));
                }
                self.malformed(input, ts_ns, "message head larger than 64 KiB", out);
                Err(HeadStep::Done)
            }
            Err(e) => {
                if !is_response {
                    out.push(given_up(input));
                }
                let what = if is_response { "response" } else { "request" };
                self.malformed(input, ts_ns, &format!("invalid {what}: {e}"), out);
                Err(HeadStep::Done)
            }
        }
    }

    /// The state for the body of the message just begun (`current`), which `framing` delimits.
    fn start_body(&mut self, framing: Framing, out: &mut Vec<Parsed>) {
        match framing {
            Framing::Length(n) if n > 0 => {
                // The body kept goes in the same buffer: grow it once.
                let keep = n.min(self.body_limit as u64) as usize;
                if let Some(m) = self.current.as_mut() {
                    m.reserve_body(keep);
                }
                self.state = State::Body(n);
            }
            Framing::Chunked => self.state = State::Chunked(ChunkState::Size),
            Framing::UntilClose => self.state = State::UntilClose,
            Framing::Switch => {
                self.finish_message(out);
                out.push(Parsed::Switched);
                self.state = State::Passthrough;
            }
            Framing::None | Framing::Length(_) => self.finish_message(out),
        }
    }

    /// `input` starts with something that is not a message: report it, and look for the next
    /// message from its second byte on.
    fn malformed(&mut self, input: &[u8], ts_ns: u64, reason: &str, out: &mut Vec<Parsed>) {
        out.push(Parsed::Malformed {
            ts_ns: self.buf_ts,
            reason: reason.to_string(),
        });
        self.stats.resync_bytes += 1;
        self.buf.clear();
        self.enter_resync();
        if input.len() > 1 {
            self.feed(&input[1..], ts_ns, out);
        }
    }

    fn feed_body<'d>(&mut self, data: &'d [u8], left: u64, out: &mut Vec<Parsed>) -> &'d [u8] {
        let n = (left.min(data.len() as u64)) as usize;
        self.take_body(&data[..n]);
        self.state = State::Body(left - n as u64);
        if left == n as u64 {
            self.finish_message(out);
        }
        &data[n..]
    }

    fn take_body(&mut self, bytes: &[u8]) {
        self.stats.message_bytes += bytes.len() as u64;
        if let Some(msg) = self.current.as_mut() {
            msg.take_body(bytes, self.body_limit);
        }
    }

    fn finish_message(&mut self, out: &mut Vec<Parsed>) {
        self.state = State::Head;
        if let Some(mut msg) = self.current.take() {
            msg.end_ts_ns = self.last_ts;
            out.push(Parsed::Message(msg));
        }
    }

    fn feed_chunked<'d>(
        &mut self,
        data: &'d [u8],
        cs: ChunkState,
        ts_ns: u64,
        out: &mut Vec<Parsed>,
    ) -> &'d [u8] {
        match cs {
            ChunkState::Data(left) => {
                let n = (left.min(data.len() as u64)) as usize;
                self.take_body(&data[..n]);
                self.state = State::Chunked(if left == n as u64 {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data(left - n as u64)
                });
                &data[n..]
            }
            ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailers => {
                // Line-oriented states: buffer up to the end of the line.
                let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                    self.buf.extend_from_slice(data);
                    if self.buf.len() > MAX_HEAD_BYTES {
                        self.buf_ts = ts_ns;
                        self.chunk_error("chunk line too long", out);
                    }
                    return &[];
                };
                self.buf.extend_from_slice(&data[..nl + 1]);
                let line = std::mem::take(&mut self.buf);
                let empty = matches!(&line[..], b"\n" | b"\r\n");
                if line == b"\n" {
                    self.lenient_body(Lenient::BARE_LF);
                }
                let line_len = line.len() as u64;
                match cs {
                    ChunkState::Size => match chunk_size_line(&line) {
                        Some((n, lenient)) => {
                            if !lenient.is_empty() {
                                self.lenient_body(lenient);
                            }
                            self.stats.message_bytes += line_len;
                            self.state = State::Chunked(if n == 0 {
                                ChunkState::Trailers
                            } else {
                                ChunkState::Data(n)
                            });
                        }
                        None => {
                            self.buf_ts = ts_ns;
                            self.stats.resync_bytes += line_len;
                            self.chunk_error("invalid chunk size", out);
                        }
                    },
                    ChunkState::DataEnd if empty => {
                        self.stats.message_bytes += line_len;
                        self.state = State::Chunked(ChunkState::Size);
                    }
                    ChunkState::DataEnd => {
                        self.buf_ts = ts_ns;
                        self.stats.resync_bytes += line_len;
                        self.chunk_error("chunk data longer than its size", out);
                    }
                    ChunkState::Trailers if empty => {
                        self.stats.message_bytes += line_len;
                        self.finish_message(out);
                    }
                    ChunkState::Trailers => self.trailer_line(&line, ts_ns, out),
                    ChunkState::Data(_) => unreachable!("handled above"),
                }
                &data[nl + 1..]
            }
        }
    }

    /// One field line of a chunked body's trailer section: kept with the message, which a line
    /// that is no field (no name, no colon) or a section past MAX_HEAD_BYTES makes malformed.
    fn trailer_line(&mut self, line: &[u8], ts_ns: u64, out: &mut Vec<Parsed>) {
        let name_end = line.iter().position(|&b| b == b':').unwrap_or(0);
        let problem = if name_end == 0 || !line[..name_end].iter().all(is_token) {
            Some("malformed trailer field")
        } else if self
            .current
            .as_ref()
            .is_some_and(|m| m.trailers_len() + line.len() > MAX_HEAD_BYTES)
        {
            Some("trailer section too large")
        } else {
            None
        };
        match (problem, self.current.as_mut()) {
            (Some(reason), _) => {
                self.buf_ts = ts_ns;
                self.stats.resync_bytes += line.len() as u64;
                self.chunk_error(reason, out);
            }
            (None, Some(m)) => {
                self.stats.message_bytes += line.len() as u64;
                m.push_trailer(line);
                if !line.ends_with(b"\r\n") {
                    self.lenient_body(Lenient::BARE_LF);
                }
            }
            (None, None) => self.stats.message_bytes += line.len() as u64,
        }
    }

    fn chunk_error(&mut self, reason: &str, out: &mut Vec<Parsed>) {
        if let Some(mut msg) = self.current.take() {
            msg.complete = false;
            msg.end_ts_ns = self.last_ts;
            out.push(Parsed::Message(msg));
        }
        out.push(Parsed::Malformed {
            ts_ns: self.buf_ts,
            reason: reason.to_string(),
        });
        self.stats.resync_bytes += self.buf.len() as u64;
        self.buf.clear();
        self.enter_resync();
    }

    /// Look for the next message: it is marked as found after a resynchronisation, and what
    /// was read before the bytes skipped is not its.
    fn enter_resync(&mut self) {
        self.state = State::Resync;
        self.resynced = true;
        self.pending = Lenient::NONE;
        self.blank_cr = false;
    }

    /// The message being read took `lenient` in its chunked body's framing: where it ends
    /// was decided leniently.
    #[cold]
    fn lenient_body(&mut self, lenient: Lenient) {
        if let Some(m) = self.current.as_mut() {
            self.stats.lenient_messages += u64::from(m.lenient.is_empty());
            m.lenient |= lenient;
        }
        self.lenient_framing = true;
    }

    fn feed_resync<'d>(&mut self, data: &'d [u8], ts_ns: u64, out: &mut Vec<Parsed>) -> &'d [u8] {
        self.buf.extend_from_slice(data);
        let skipped = match find_message_start(&self.buf) {
            MessageStart::Found(pos) => {
                let rest = self.buf.split_off(pos);
                self.buf.clear();
                self.state = State::Head;
                self.skip(pos);
                self.feed(&rest, ts_ns, out);
                return &[];
            }
            // Keep the candidate until its line is complete.
            MessageStart::Maybe(pos) => self.buf.drain(..pos).count(),
            MessageStart::None => self.buf.drain(..).count(),
        };
        self.skip(skipped);
        &[]
    }

    /// `n` bytes were skipped to find the next message: it is marked as found so.
    fn skip(&mut self, n: usize) {
        self.stats.resync_bytes += n as u64;
        self.resynced |= n > 0;
    }
}

#[cfg(test)]
mod tests;
