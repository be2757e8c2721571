//! Incremental HTTP/1.1 parsing of one direction of a connection: requests, responses, or both
//! (a connection found already open has no known role until its first message).
//!
//! Bytes arrive in whatever pieces the syscalls moved; the parser finds message boundaries itself
//! (head by httparse; body by Content-Length, chunked encoding, the status and request method, or
//! the end of the connection), so one piece may hold several pipelined messages and one message
//! may span many pieces.

use std::collections::VecDeque;
use std::mem::MaybeUninit;

/// Largest message head kept; a bigger one is reported as malformed.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers one message may have before it is reported as malformed.
const MAX_HEADERS: usize = 128;
/// Longest start line a resync waits for; past it a candidate start is given up.
const MAX_RESYNC_LINE: usize = 8 * 1024;
/// Longest method name accepted by the sniffer (the longest registered one is 17 bytes).
const MAX_METHOD_LEN: usize = 20;
/// Methods that mark a plausible request start when resynchronising mid-stream.
const KNOWN_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];
/// How a status line starts.
const STATUS_PREFIX: &[u8] = b"HTTP/";

/// A message's start line, as borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'m> {
    Request { method: &'m str, target: &'m str },
    Response { status: u16, reason: &'m str },
}

/// Where the start line's parts lie in a message's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Request { method: Span, target: Span },
    Response { status: u16, reason: Span },
}

/// A range of a message's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// Bytes a header's span takes in a message's bytes: name start and end, value start and end.
const HEADER_SPAN_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Timestamp (ns, CLOCK_MONOTONIC) of the piece that held the message's first byte.
    pub ts_ns: u64,
    /// Timestamp of the piece that held its last byte (so far, while incomplete).
    pub end_ts_ns: u64,
    start: Start,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// One allocation per message, where thousands are parsed a second: the head as received,
    /// then where each header's name and value lie in it (HEADER_SPAN_BYTES each), then the
    /// first body bytes, up to the parser's body limit.
    bytes: Vec<u8>,
    head_len: u32,
    header_count: u32,
    /// Body size as sent (decoded size for chunked bodies).
    pub body_bytes: u64,
    /// Body bytes that were not in the capture (beyond --capture-bytes, sendfile, read failures).
    pub body_missing_bytes: u64,
    /// False when tracing or the connection ended before the message did.
    pub complete: bool,
}

impl Message {
    /// A message of the head `head` (which httparse parsed into `start` and `headers`, slices
    /// of it), with no body yet.
    fn from_head(
        head: &[u8],
        start: StartLine<'_>,
        version: u8,
        headers: &[httparse::Header<'_>],
        spare: usize,
    ) -> Self {
        let base = head.as_ptr() as usize;
        let span = |s: &[u8]| {
            let start = (s.as_ptr() as usize).saturating_sub(base) as u32;
            Span {
                start,
                end: start + s.len() as u32,
            }
        };
        let mut bytes = Vec::with_capacity(head.len() + headers.len() * HEADER_SPAN_BYTES + spare);
        bytes.extend_from_slice(head);
        for h in headers {
            let (name, value) = (span(h.name.as_bytes()), span(h.value));
            for n in [name.start, name.end, value.start, value.end] {
                bytes.extend_from_slice(&n.to_le_bytes());
            }
        }
        let start = match start {
            StartLine::Request { method, target } => Start::Request {
                method: span(method.as_bytes()),
                target: span(target.as_bytes()),
            },
            StartLine::Response { status, reason } => Start::Response {
                status,
                reason: span(reason.as_bytes()),
            },
        };
        Self {
            ts_ns: 0,
            end_ts_ns: 0,
            start,
            version,
            bytes,
            head_len: head.len() as u32,
            header_count: headers.len() as u32,
            body_bytes: 0,
            body_missing_bytes: 0,
            complete: true,
        }
    }

    /// For tests: the message whose head is `start_line` and `headers`, with `body` kept.
    #[cfg(test)]
    pub fn build(start_line: &str, headers: &[(&str, &str)], body: &[u8], body_bytes: u64) -> Self {
        let mut head = format!("{start_line}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let is_response = start_line.starts_with("HTTP/");
        let (_, mut m) = parse_message_head(head.as_bytes(), is_response, body.len())
            .expect("a valid head")
            .expect("a complete head");
        m.bytes.extend_from_slice(body);
        m.body_bytes = body_bytes;
        m
    }

    fn text(&self, span: Span) -> &str {
        // Spans of the start line come from httparse's strs: always UTF-8.
        let bytes = self
            .bytes
            .get(span.start as usize..span.end as usize)
            .unwrap_or(&[]);
        std::str::from_utf8(bytes).unwrap_or("")
    }

    pub fn start(&self) -> StartLine<'_> {
        match self.start {
            Start::Request { method, target } => StartLine::Request {
                method: self.text(method),
                target: self.text(target),
            },
            Start::Response { status, reason } => StartLine::Response {
                status,
                reason: self.text(reason),
            },
        }
    }

    fn body_start(&self) -> usize {
        self.head_len as usize + self.header_count as usize * HEADER_SPAN_BYTES
    }

    /// (name, value) of each header as bytes, in order, duplicates kept.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let spans = &self.bytes[self.head_len as usize..self.body_start()];
        spans.chunks_exact(HEADER_SPAN_BYTES).map(|s| {
            let at = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]) as usize;
            let bytes = |a: usize, b: usize| self.bytes.get(a..b).unwrap_or(&[]);
            (bytes(at(0), at(4)), bytes(at(8), at(12)))
        })
    }

    /// (name, value) in order; values decoded as UTF-8 with replacement.
    pub fn headers_lossy(&self) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, str>)> {
        self.headers().map(|(name, value)| {
            // httparse accepts only token characters in names: always UTF-8.
            let name = std::str::from_utf8(name).unwrap_or("");
            (name, String::from_utf8_lossy(value))
        })
    }

    #[cfg(test)]
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers_lossy()
            .map(|(n, v)| (n.to_string(), v.into_owned()))
            .collect()
    }

    /// The first body bytes, up to the parser's body limit.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body_start()..]
    }

    /// Count `bytes` of body, and keep what fits under `limit` bytes kept.
    fn take_body(&mut self, bytes: &[u8], limit: usize) {
        self.body_bytes += bytes.len() as u64;
        let room = limit.saturating_sub(self.body().len());
        self.bytes
            .extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    pub fn body_cut(&self) -> bool {
        (self.body().len() as u64) < self.body_bytes
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }
}

/// What a request's method says about how its response is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Head,
    Connect,
    Other,
}

impl Method {
    fn of(name: &str) -> Self {
        if name.eq_ignore_ascii_case("HEAD") {
            Method::Head
        } else if name.eq_ignore_ascii_case("CONNECT") {
            Method::Connect
        } else {
            Method::Other
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A request head was read; its response is framed by its method (HEAD, CONNECT), so the
    /// other direction is told at once, before the request's body is in.
    RequestHead {
        method: Method,
    },
    Message(Message),
    /// The protocol switched (101, or a 2xx to CONNECT): the connection is not HTTP/1.x any more.
    Switched,
    /// Bytes that started like a message but are not one; parsing resumes at the next message.
    Malformed {
        ts_ns: u64,
        reason: String,
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
}

impl std::ops::AddAssign for ParserStats {
    fn add_assign(&mut self, other: Self) {
        self.non_http_bytes += other.non_http_bytes;
        self.resync_bytes += other.resync_bytes;
        self.switched_bytes += other.switched_bytes;
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
    expected: VecDeque<Method>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
    Switch,
}

impl Parser {
    /// `body_limit`: body bytes kept per message (the rest is counted).
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
            stats: ParserStats::default(),
        }
    }

    /// The other direction carried a request with this method: its response is due here.
    pub fn expect_response(&mut self, method: Method) {
        self.expected.push_back(method);
    }

    /// The connection switched protocols: leave the rest of this direction alone.
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
    /// sendfile, unreadable). Inside a body they are only counted; anywhere else the stream
    /// position is lost and the parser resynchronises on the next message.
    pub fn skip(&mut self, n: u64, ts_ns: u64, out: &mut Vec<Parsed>) {
        if n == 0 {
            return;
        }
        self.last_ts = ts_ns;
        match self.state {
            State::Body(left) if n <= left => {
                self.count_missing_body(n);
                self.state = State::Body(left - n);
                if left == n {
                    self.finish_message(out);
                }
            }
            State::Chunked(ChunkState::Data(left)) if n <= left => {
                self.count_missing_body(n);
                self.state = State::Chunked(if left == n {
                    ChunkState::DataEnd
                } else {
                    ChunkState::Data(left - n)
                });
            }
            State::UntilClose => self.count_missing_body(n),
            State::Passthrough => self.stats.switched_bytes += n,
            State::NotHttp => self.stats.non_http_bytes += n,
            _ => self.lose_position(n, out),
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
        self.stats.resync_bytes += self.buf.len() as u64 + n;
        self.buf.clear();
        self.state = State::Resync;
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

    /// Parse the message head at the start of `input`, which began at `buf_ts`; on success the
    /// state is set for what follows it.
    fn parse_head(&mut self, input: &[u8], ts_ns: u64, out: &mut Vec<Parsed>) -> HeadStep {
        let is_response = match sniff(input) {
            Sniff::NeedMore => return HeadStep::NeedMore,
            Sniff::NotHttp => {
                if self.seen_message {
                    self.malformed(input, ts_ns, "bytes that are not an HTTP message", out);
                } else {
                    self.stats.non_http_bytes += input.len() as u64;
                    self.state = State::NotHttp;
                }
                return HeadStep::Done;
            }
            Sniff::Request => false,
            Sniff::Response => true,
        };
        let (head_len, mut msg) = match parse_message_head(input, is_response, self.body_limit) {
            Ok(Some(head)) => head,
            Ok(None) if input.len() > MAX_HEAD_BYTES => {
                self.malformed(input, ts_ns, "message head larger than 64 KiB", out);
                return HeadStep::Done;
            }
            Ok(None) => return HeadStep::NeedMore,
            Err(e) => {
                let what = if is_response { "response" } else { "request" };
                self.malformed(input, ts_ns, &format!("invalid {what}: {e}"), out);
                return HeadStep::Done;
            }
        };
        self.seen_message = true;
        let framing = match msg.start() {
            StartLine::Request { method, .. } => {
                out.push(Parsed::RequestHead {
                    method: Method::of(method),
                });
                request_framing(&msg)
            }
            StartLine::Response { status: 101, .. } => {
                self.expected.pop_front();
                Ok(Framing::Switch)
            }
            // An interim response (100 Continue): the final one is still due.
            StartLine::Response { status, .. } if (100..200).contains(&status) => {
                return HeadStep::Consumed(head_len);
            }
            StartLine::Response { status, .. } => {
                let method = self.expected.pop_front();
                Ok(response_framing(status, method, &msg))
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
                self.state = State::Resync;
                return HeadStep::Consumed(head_len);
            }
        };
        msg.ts_ns = self.buf_ts;
        msg.end_ts_ns = self.last_ts;
        self.current = Some(msg);
        match framing {
            Framing::Length(n) if n > 0 => {
                // The body kept goes in the same buffer: grow it once.
                let keep = n.min(self.body_limit as u64) as usize;
                if let Some(m) = self.current.as_mut() {
                    m.bytes.reserve_exact(keep);
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
        HeadStep::Consumed(head_len)
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
        self.state = State::Resync;
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
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                match cs {
                    ChunkState::Size => match parse_chunk_size(line) {
                        Some(0) => self.state = State::Chunked(ChunkState::Trailers),
                        Some(n) => self.state = State::Chunked(ChunkState::Data(n)),
                        None => {
                            self.buf_ts = ts_ns;
                            self.chunk_error("invalid chunk size", out);
                        }
                    },
                    ChunkState::DataEnd => {
                        if line.is_empty() {
                            self.state = State::Chunked(ChunkState::Size);
                        } else {
                            self.buf_ts = ts_ns;
                            self.chunk_error("chunk data longer than its size", out);
                        }
                    }
                    ChunkState::Trailers => {
                        if line.is_empty() {
                            self.finish_message(out);
                        }
                    }
                    ChunkState::Data(_) => unreachable!("handled above"),
                }
                &data[nl + 1..]
            }
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
        self.state = State::Resync;
    }

    fn feed_resync<'d>(&mut self, data: &'d [u8], ts_ns: u64, out: &mut Vec<Parsed>) -> &'d [u8] {
        self.buf.extend_from_slice(data);
        match find_message_start(&self.buf) {
            MessageStart::Found(pos) => {
                self.stats.resync_bytes += pos as u64;
                let rest = self.buf.split_off(pos);
                self.buf.clear();
                self.state = State::Head;
                self.feed(&rest, ts_ns, out);
            }
            MessageStart::Maybe(pos) => {
                // Keep the candidate until its line is complete.
                self.stats.resync_bytes += pos as u64;
                self.buf.drain(..pos);
            }
            MessageStart::None => {
                self.stats.resync_bytes += self.buf.len() as u64;
                self.buf.clear();
            }
        }
        &[]
    }
}

/// The length of the head at the start of `buf`, and the message it starts; Ok(None) while the
/// head is incomplete. The message has room for the body bytes that follow the head in `buf`, up
/// to `body_limit`: a small body usually arrives with its head.
fn parse_message_head(
    buf: &[u8],
    is_response: bool,
    body_limit: usize,
) -> Result<Option<(usize, Message)>, httparse::Error> {
    // Left uninitialised: httparse writes what it returns (4 KiB to clear per message otherwise).
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let (n, start, version, parsed) = if is_response {
        let mut resp = httparse::Response::new(&mut []);
        let httparse::Status::Complete(n) = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut headers)?
        else {
            return Ok(None);
        };
        let start = StartLine::Response {
            status: resp.code.unwrap_or(0),
            reason: resp.reason.unwrap_or_default(),
        };
        (n, start, resp.version, resp.headers)
    } else {
        let mut req = httparse::Request::new(&mut []);
        let httparse::Status::Complete(n) = req.parse_with_uninit_headers(buf, &mut headers)?
        else {
            return Ok(None);
        };
        let start = StartLine::Request {
            method: req.method.unwrap_or_default(),
            target: req.path.unwrap_or_default(),
        };
        (n, start, req.version, req.headers)
    };
    let spare = (buf.len() - n).min(body_limit);
    let msg = Message::from_head(&buf[..n], start, version.unwrap_or(1), parsed, spare);
    Ok(Some((n, msg)))
}

/// How many bytes at the start of `bytes` are empty lines, which may precede a request line
/// (RFC 9112, 2.2).
fn empty_line_bytes(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len())
}

enum Sniff {
    Request,
    Response,
    NotHttp,
    NeedMore,
}

/// Whether `buf` starts like an HTTP/1.x status line ("HTTP/"), or like a request line: an
/// upper-case method token and a space.
fn sniff(buf: &[u8]) -> Sniff {
    if buf.starts_with(b"PRI * HTTP/2") {
        return Sniff::NotHttp; // HTTP/2 prior knowledge
    }
    if buf.starts_with(STATUS_PREFIX) {
        return Sniff::Response;
    }
    if STATUS_PREFIX.starts_with(buf) {
        return Sniff::NeedMore;
    }
    for (i, &b) in buf.iter().enumerate().take(MAX_METHOD_LEN + 1) {
        match b {
            b'A'..=b'Z' | b'-' | b'_' => {}
            b' ' if i > 0 => return Sniff::Request,
            _ => return Sniff::NotHttp,
        }
    }
    if buf.len() > MAX_METHOD_LEN {
        Sniff::NotHttp
    } else {
        Sniff::NeedMore
    }
}

enum MessageStart {
    Found(usize),
    /// A possible start whose start line is not complete yet.
    Maybe(usize),
    None,
}

/// Whether `line` (without its CRLF) is a plausible start line: a known method with a line that
/// ends in " HTTP/1.x", or "HTTP/1.x " and a three-digit status.
fn plausible_start_line(line: &[u8]) -> bool {
    if KNOWN_METHODS.iter().any(|m| line.starts_with(m)) {
        return line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0");
    }
    let Some(status) = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
    else {
        return false;
    };
    status.len() >= 3
        && status[..3].iter().all(u8::is_ascii_digit)
        && (status.len() == 3 || status[3] == b' ')
}

/// Whether a start line could begin at `rest`: a known method or a status line prefix.
fn could_start(rest: &[u8]) -> (bool, bool) {
    let starts = KNOWN_METHODS.iter().any(|m| rest.starts_with(m))
        || rest.starts_with(b"HTTP/1.1 ")
        || rest.starts_with(b"HTTP/1.0 ");
    let prefix = KNOWN_METHODS.iter().any(|m| m.starts_with(rest))
        || b"HTTP/1.1 ".starts_with(rest)
        || b"HTTP/1.0 ".starts_with(rest);
    (starts, prefix)
}

/// The first place in `buf` where a start line begins. Used only to find the way back after
/// lost or malformed bytes.
fn find_message_start(buf: &[u8]) -> MessageStart {
    for i in 0..buf.len() {
        let rest = &buf[i..];
        let (starts, prefix) = could_start(rest);
        if !starts {
            if prefix {
                return MessageStart::Maybe(i);
            }
            continue;
        }
        let window = &rest[..rest.len().min(MAX_RESYNC_LINE)];
        match window.windows(2).position(|w| w == b"\r\n") {
            Some(end) if plausible_start_line(&rest[..end]) => return MessageStart::Found(i),
            Some(_) => {}
            None if rest.len() < MAX_RESYNC_LINE => return MessageStart::Maybe(i),
            None => {}
        }
    }
    MessageStart::None
}

/// Content-Length and chunked encoding as the headers give them (RFC 9112, 6.3).
fn declared_framing(msg: &Message) -> Result<Option<Framing>, &'static str> {
    let mut length: Option<u64> = None;
    let mut coded = None;
    // Only these two headers' values are decoded.
    for (name, value) in msg.headers() {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let value = String::from_utf8_lossy(value);
            let last = value.rsplit(',').next().unwrap_or("").trim();
            coded = Some(last.eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // The usual value: digits only, short enough not to overflow.
            if (1..=18).contains(&value.len()) && value.iter().all(u8::is_ascii_digit) {
                let n = value
                    .iter()
                    .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length values");
                }
                length = Some(n);
                continue;
            }
            let value = String::from_utf8_lossy(value);
            for part in value.split(',') {
                let part = part.trim();
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("invalid Content-Length");
                }
                let n: u64 = part.parse().map_err(|_| "invalid Content-Length")?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length values");
                }
                length = Some(n);
            }
        }
    }
    Ok(match (coded, length) {
        (Some(true), _) => Some(Framing::Chunked),
        // Another coding last: only the end of the connection ends the body.
        (Some(false), _) => Some(Framing::UntilClose),
        (None, Some(n)) => Some(Framing::Length(n)),
        (None, None) => None,
    })
}

/// How a request's body is delimited: no Content-Length nor chunked means no body.
fn request_framing(msg: &Message) -> Result<Framing, &'static str> {
    match declared_framing(msg)? {
        Some(Framing::UntilClose) => {
            Err("request body with a transfer coding other than chunked last")
        }
        Some(f) => Ok(f),
        None => Ok(Framing::None),
    }
}

/// How a final response's body is delimited, given the method of its request when known
/// (RFC 9112, 6.3): no body for HEAD, 204 and 304; a 2xx to CONNECT opens a tunnel; without
/// Content-Length or chunked, the body runs to the end of the connection.
fn response_framing(status: u16, method: Option<Method>, msg: &Message) -> Framing {
    let method = method.unwrap_or(Method::Other);
    if method == Method::Connect && (200..300).contains(&status) {
        return Framing::Switch;
    }
    if method == Method::Head || status == 204 || status == 304 {
        return Framing::None;
    }
    // A malformed length in a response: the connection's end is the only boundary left.
    declared_framing(msg)
        .unwrap_or(Some(Framing::UntilClose))
        .unwrap_or(Framing::UntilClose)
}

/// The size in a chunk-size line (hex, optionally followed by extensions).
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let end = line
        .iter()
        .position(|&b| b == b';' || b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let hex = &line[..end];
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    let s = std::str::from_utf8(hex).ok()?;
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> (Vec<Parsed>, Parser) {
        let mut p = Parser::new(64);
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            p.feed(piece, i as u64 + 1, &mut out);
        }
        (out, p)
    }

    fn requests(out: &[Parsed]) -> Vec<&Message> {
        out.iter()
            .filter_map(|p| match p {
                Parsed::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn line(m: &Message) -> String {
        match m.start() {
            StartLine::Request { method, target } => format!("{method} {target}"),
            StartLine::Response { status, reason } => format!("{status} {reason}"),
        }
    }

    /// Messages and errors, in order (request heads and switches left out).
    fn targets(out: &[Parsed]) -> Vec<String> {
        out.iter()
            .filter_map(|p| match p {
                Parsed::Message(m) => Some(line(m)),
                Parsed::Malformed { reason, .. } => Some(format!("malformed: {reason}")),
                Parsed::RequestHead { .. } | Parsed::Switched => None,
            })
            .collect()
    }

    const GET: &[u8] =
        b"GET /items?id=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nAccept: text/plain\r\n\r\n";

    #[test]
    fn parses_a_simple_request() {
        let (out, _) = parse_all(&[GET]);
        let r = requests(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(line(r[0]), "GET /items?id=1");
        assert_eq!(r[0].version, 1);
        assert_eq!(r[0].ts_ns, 1);
        assert_eq!(
            r[0].header_pairs(),
            vec![
                ("Host".to_string(), "example".to_string()),
                ("Accept".to_string(), "*/*".to_string()),
                ("Accept".to_string(), "text/plain".to_string()),
            ]
        );
        assert_eq!(r[0].body_bytes, 0);
        assert!(r[0].complete);
    }

    #[test]
    fn request_split_byte_by_byte_is_the_same_request() {
        let pieces: Vec<&[u8]> = GET.chunks(1).collect();
        let (out, _) = parse_all(&pieces);
        let (whole, _) = parse_all(&[GET]);
        assert_eq!(requests(&out).len(), 1);
        assert_eq!(
            requests(&out)[0].header_pairs(),
            requests(&whole)[0].header_pairs()
        );
        // The timestamp is that of the piece holding the first byte.
        assert_eq!(requests(&out)[0].ts_ns, 1);
    }

    #[test]
    fn pipelined_requests_in_one_piece() {
        let data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.0\r\n\r\n";
        let (out, _) = parse_all(&[data]);
        assert_eq!(targets(&out), ["GET /a", "POST /b", "GET /c"]);
        let r = requests(&out);
        assert_eq!(r[1].body(), b"abc");
        assert_eq!(r[2].version, 0);
    }

    #[test]
    fn content_length_body_across_pieces() {
        let (out, _) = parse_all(&[
            b"PUT /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello",
            b" ",
            b"worldGET /next HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(targets(&out), ["PUT /x", "GET /next"]);
        let r = requests(&out);
        assert_eq!(r[0].body(), b"hello world");
        assert_eq!(r[0].body_bytes, 11);
        assert!(!r[0].body_cut());
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers_byte_by_byte() {
        let data: &[u8] = b"POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nGET /after HTTP/1.1\r\n\r\n";
        for pieces in [vec![data], data.chunks(1).collect::<Vec<_>>()] {
            let (out, _) = parse_all(&pieces);
            assert_eq!(targets(&out), ["POST /up", "GET /after"]);
            assert_eq!(requests(&out)[0].body(), b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(requests(&out)[0].body_bytes, 23);
        }
    }

    #[test]
    fn body_kept_up_to_the_limit_and_counted_past_it() {
        let mut data = b"POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'z', 100));
        let (out, _) = parse_all(&[&data]);
        let r = requests(&out);
        assert_eq!(r[0].body().len(), 64);
        assert_eq!(r[0].body_bytes, 100);
        assert!(r[0].body_cut());
    }

    #[test]
    fn non_http_connection_is_skipped_quietly() {
        let (out, p) = parse_all(&[b"\x16\x03\x01\x02\x00binary", b"GET / HTTP/1.1\r\n\r\n"]);
        assert!(out.is_empty());
        assert_eq!(p.stats.non_http_bytes, 29);
        let (out, _) = parse_all(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]);
        assert!(out.is_empty());
    }

    #[test]
    fn lower_case_word_is_not_http() {
        let (out, p) = parse_all(&[b"hello there\r\n\r\n"]);
        assert!(out.is_empty());
        assert_eq!(p.stats.non_http_bytes, 15);
    }

    #[test]
    fn malformed_request_is_reported_and_parsing_resumes() {
        let (out, _) = parse_all(&[
            b"GET /ok HTTP/1.1\r\n\r\n",
            b"GET /bad HTTP/1.1\r\nBad Header\r\n\r\n",
            b"GET /again HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(
            targets(&out),
            [
                "GET /ok",
                "malformed: invalid request: invalid header name",
                "GET /again"
            ]
        );
    }

    #[test]
    fn garbage_after_a_request_is_malformed_then_resynced() {
        let (out, p) = parse_all(&[
            b"GET /ok HTTP/1.1\r\n\r\n\x00\x01\x02garbage\r\n",
            b"POST /next HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ]);
        assert_eq!(
            targets(&out),
            [
                "GET /ok",
                "malformed: bytes that are not an HTTP message",
                "POST /next"
            ]
        );
        assert!(p.stats.resync_bytes > 0);
    }

    #[test]
    fn invalid_content_length_is_malformed() {
        let (out, _) = parse_all(&[
            b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            b"GET /y HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(
            targets(&out),
            ["malformed: conflicting Content-Length values", "GET /y"]
        );
    }

    #[test]
    fn content_length_values() {
        let framing = |value: &str| {
            let m = Message::build("POST /x HTTP/1.1", &[("Content-Length", value)], b"", 0);
            declared_framing(&m)
        };
        assert_eq!(framing("5"), Ok(Some(Framing::Length(5))));
        assert_eq!(framing("007"), Ok(Some(Framing::Length(7))));
        assert_eq!(framing("5, 5"), Ok(Some(Framing::Length(5))));
        assert_eq!(
            framing("999999999999999999"),
            Ok(Some(Framing::Length(999_999_999_999_999_999)))
        );
        assert_eq!(framing("5, 6"), Err("conflicting Content-Length values"));
        for bad in ["+5", "-1", "5x", "0x10", "99999999999999999999"] {
            assert_eq!(framing(bad), Err("invalid Content-Length"), "{bad}");
        }
    }

    #[test]
    fn bad_chunk_size_is_malformed() {
        let (out, _) =
            parse_all(&[b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]);
        assert_eq!(targets(&out), ["POST /x", "malformed: invalid chunk size"]);
        assert!(!requests(&out)[0].complete);
    }

    #[test]
    fn oversized_head_is_malformed() {
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 1));
        let (out, _) = parse_all(&[&head]);
        assert_eq!(
            targets(&out),
            ["malformed: message head larger than 64 KiB"]
        );
    }

    #[test]
    fn empty_lines_between_requests_are_ignored() {
        let (out, _) = parse_all(&[
            b"\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\n",
            b"\r\nGET /b HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(targets(&out), ["GET /a", "GET /b"]);
    }

    #[test]
    fn skipped_bytes_inside_a_body_are_counted() {
        let mut p = Parser::new(64);
        let mut out = Vec::new();
        p.feed(
            b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
            1,
            &mut out,
        );
        p.skip(6, 2, &mut out);
        p.feed(b"GET /g HTTP/1.1\r\n\r\n", 2, &mut out);
        assert_eq!(targets(&out), ["POST /f", "GET /g"]);
        let r = requests(&out);
        assert_eq!(r[0].body_bytes, 10);
        assert_eq!(r[0].body_missing_bytes, 6);
        assert!(r[0].complete);
    }

    #[test]
    fn skipped_bytes_in_a_head_lose_the_position_until_the_next_request() {
        let mut p = Parser::new(64);
        let mut out = Vec::new();
        p.feed(b"GET /lost HTTP/1.1\r\nHo", 1, &mut out);
        p.skip(100, 2, &mut out);
        p.feed(b"st: x\r\n\r\nGET /found HTTP/1.1\r\n\r\n", 2, &mut out);
        assert_eq!(targets(&out), ["GET /found"]);
    }

    #[test]
    fn gap_in_a_body_reports_the_request_incomplete() {
        let mut p = Parser::new(64);
        let mut out = Vec::new();
        p.feed(
            b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
            1,
            &mut out,
        );
        p.gap(&mut out);
        p.feed(b"89GET /g HTTP/1.1\r\n\r\n", 2, &mut out);
        assert_eq!(targets(&out), ["POST /f", "GET /g"]);
        assert!(!requests(&out)[0].complete);
    }

    #[test]
    fn finish_reports_a_pending_body_and_a_partial_head() {
        let mut p = Parser::new(64);
        let mut out = Vec::new();
        p.feed(
            b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
            1,
            &mut out,
        );
        assert!(!p.finish(false, &mut out));
        assert_eq!(targets(&out), ["POST /f"]);
        assert!(!requests(&out)[0].complete);
        p.feed(b"GET /half HTTP/1.1\r\nHost", 2, &mut out);
        assert!(p.finish(false, &mut out));
        assert_eq!(targets(&out), ["POST /f"]);
    }

    #[test]
    fn request_heads_are_announced_before_their_bodies() {
        let (out, _) = parse_all(&[
            b"HEAD /h HTTP/1.1\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nab",
        ]);
        assert_eq!(
            out.iter()
                .filter_map(|p| match p {
                    Parsed::RequestHead { method } => Some(*method),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            [Method::Head, Method::Other]
        );
        assert_eq!(targets(&out), ["HEAD /h"]);
    }

    /// A response stream whose requests (by method) came the other way.
    fn responses(methods: &[&str], pieces: &[&[u8]]) -> (Vec<Parsed>, Parser) {
        let mut p = Parser::new(64);
        for m in methods {
            p.expect_response(Method::of(m));
        }
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            p.feed(piece, i as u64 + 1, &mut out);
        }
        (out, p)
    }

    #[test]
    fn responses_framed_by_length_and_chunks() {
        let (out, _) = responses(
            &["GET", "GET"],
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
                b"loHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            ],
        );
        assert_eq!(targets(&out), ["200 OK", "404 Not Found"]);
        let r = requests(&out);
        assert_eq!(
            (r[0].body(), r[0].ts_ns, r[0].end_ts_ns),
            (&b"hello"[..], 1, 2)
        );
        assert_eq!((r[1].body(), r[1].version), (&b"abc"[..], 1));
    }

    #[test]
    fn responses_without_a_body() {
        // HEAD announces a length it does not send; 204 and 304 have no body either.
        let (out, _) = responses(
            &["HEAD", "GET", "GET", "GET"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"],
        );
        assert_eq!(
            targets(&out),
            ["200 OK", "204 No Content", "304 Not Modified", "200 OK"]
        );
        assert_eq!(requests(&out)[0].body_bytes, 0);
        assert_eq!(requests(&out)[3].body(), b"x");
    }

    #[test]
    fn interim_responses_are_skipped() {
        let (out, _) = responses(
            &["POST"],
            &[
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            ],
        );
        assert_eq!(targets(&out), ["201 Created"]);
    }

    #[test]
    fn body_until_close_ends_with_the_connection() {
        let (mut out, mut p) = responses(&["GET"], &[b"HTTP/1.0 200 OK\r\n\r\nsome ", b"bytes"]);
        assert!(out.is_empty());
        assert!(!p.finish(true, &mut out));
        let r = requests(&out);
        assert_eq!(
            (r[0].body(), r[0].complete, r[0].end_ts_ns),
            (&b"some bytes"[..], true, 2)
        );
        // Tracing that stops first leaves it incomplete.
        let (mut out, mut p) = responses(&["GET"], &[b"HTTP/1.1 200 OK\r\n\r\nsome "]);
        p.finish(false, &mut out);
        assert!(!requests(&out)[0].complete);
    }

    #[test]
    fn switching_protocols_leaves_the_connection_alone() {
        let (out, p) = responses(
            &["GET"],
            &[b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"],
        );
        assert_eq!(targets(&out), ["101 Switching Protocols"]);
        assert_eq!(out.last(), Some(&Parsed::Switched));
        assert_eq!(p.stats.switched_bytes, 7);
        let (out, _) = responses(
            &["CONNECT"],
            &[b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01"],
        );
        assert_eq!(out.last(), Some(&Parsed::Switched));
        // The request side is told by the connection; its tunnel bytes are then left alone.
        let (mut out, mut p) = parse_all(&[b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"]);
        p.switch_protocols(&mut out);
        p.feed(b"\x81\x85binary GET / HTTP/1.1\r\n\r\n", 3, &mut out);
        assert_eq!(targets(&out), ["GET /ws"]);
        assert_eq!(p.stats.resync_bytes, 0);
    }

    #[test]
    fn a_response_stream_joined_mid_stream_resyncs_on_a_status_line() {
        let mut p = Parser::new(64);
        p.start_mid_stream();
        let mut out = Vec::new();
        p.feed(b"tail of a body HTTP/1.1 is not at a line start\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, &mut out);
        assert_eq!(targets(&out), ["200 OK"]);
    }

    #[test]
    fn method_split_across_pieces_is_found_when_resyncing() {
        let mut p = Parser::new(64);
        let mut out = Vec::new();
        p.feed(
            b"GET /a HTTP/1.1\r\nBad Header\r\n\r\nnoise\r\nPO",
            1,
            &mut out,
        );
        p.feed(b"ST /b HTTP/1.1\r\n\r\n", 2, &mut out);
        assert_eq!(
            targets(&out),
            ["malformed: invalid request: invalid header name", "POST /b"]
        );
    }

    #[test]
    fn joined_mid_stream_starts_at_the_next_request_line() {
        let mut p = Parser::new(64);
        p.start_mid_stream();
        let mut out = Vec::new();
        p.feed(
            b"rest of a body\r\n\x00\x01GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
            1,
            &mut out,
        );
        assert_eq!(targets(&out), ["GET /next"]);
        // A stream joined at a request start loses nothing.
        let mut p = Parser::new(64);
        p.start_mid_stream();
        let mut out = Vec::new();
        p.feed(b"GET /fi", 1, &mut out);
        p.feed(b"rst HTTP/1.1\r\n\r\n", 2, &mut out);
        assert_eq!(targets(&out), ["GET /first"]);
        assert_eq!(p.stats.resync_bytes, 0);
    }

    #[test]
    fn chunk_size_parsing() {
        assert_eq!(parse_chunk_size(b"1a"), Some(26));
        assert_eq!(parse_chunk_size(b"0"), Some(0));
        assert_eq!(parse_chunk_size(b"A;name=value"), Some(10));
        assert_eq!(parse_chunk_size(b""), None);
        assert_eq!(parse_chunk_size(b"xyz"), None);
        assert_eq!(parse_chunk_size(b"ffffffffffffffffff"), None);
    }
}
