//! Incremental HTTP/1.1 request parsing over one connection's inbound byte stream.
//!
//! Bytes arrive in whatever pieces the receive syscalls returned; the parser finds message
//! boundaries itself (head by httparse, body by Content-Length or chunked encoding), so one piece
//! may hold several pipelined requests and one request may span many pieces.

/// Largest request head kept; a bigger one is reported as malformed.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers one request may have before it is reported as malformed.
const MAX_HEADERS: usize = 128;
/// Bytes kept from the end of the buffer while hunting for the next request after a resync, so
/// that a method split across two receives is still found.
const RESYNC_TAIL: usize = 16;
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Timestamp (ns, CLOCK_MONOTONIC) of the piece that held the request's first byte.
    pub ts_ns: u64,
    pub method: String,
    pub target: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// In order, duplicates kept; values decoded as UTF-8 with replacement.
    pub headers: Vec<(String, String)>,
    /// Body size as sent (decoded size for chunked bodies).
    pub body_bytes: u64,
    /// The first bytes of the body, up to the parser's body limit.
    pub body: Vec<u8>,
    /// Body bytes that were not in the capture (beyond --capture-bytes, or read failures).
    pub body_missing_bytes: u64,
    /// False when tracing or the connection ended before the body did.
    pub complete: bool,
}

impl Request {
    pub fn body_cut(&self) -> bool {
        (self.body.len() as u64) < self.body_bytes
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Request(Request),
    /// Bytes that started like a request but are not one; parsing resumes at the next request.
    Malformed {
        ts_ns: u64,
        reason: String,
    },
}

/// Counters of what the parser could not turn into requests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ParserStats {
    /// Bytes on connections that never carried HTTP/1.x.
    pub non_http_bytes: u64,
    /// Bytes thrown away while looking for the next request after an error or a gap.
    pub resync_bytes: u64,
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
    /// Between requests, or inside a head.
    Head,
    /// Inside a body of known remaining length.
    Body(u64),
    Chunked(ChunkState),
    /// After a protocol switch (Upgrade, CONNECT): the rest is not HTTP/1.x.
    Passthrough,
    /// The connection's first bytes were not HTTP/1.x.
    NotHttp,
    /// Hunting for the next request start after an error or a gap.
    Resync,
}

pub struct RequestParser {
    state: State,
    buf: Vec<u8>,
    current: Option<Request>,
    body_limit: usize,
    /// Whether a request head has been seen on this connection.
    seen_request: bool,
    /// Timestamp of the piece that held the first byte of `buf`.
    buf_ts: u64,
    pub stats: ParserStats,
}

impl RequestParser {
    /// `body_limit`: body bytes kept per request (the rest is counted).
    pub fn new(body_limit: usize) -> Self {
        Self {
            state: State::Head,
            buf: Vec::new(),
            current: None,
            body_limit,
            seen_request: false,
            buf_ts: 0,
            stats: ParserStats::default(),
        }
    }

    /// Feed the next bytes of the stream, received at `ts_ns`; complete requests go to `out`.
    pub fn feed(&mut self, mut data: &[u8], ts_ns: u64, out: &mut Vec<Parsed>) {
        while !data.is_empty() {
            data = match self.state {
                State::Head => self.feed_head(data, ts_ns, out),
                State::Body(left) => self.feed_body(data, left, out),
                State::Chunked(cs) => self.feed_chunked(data, cs, ts_ns, out),
                State::Passthrough => &[],
                State::NotHttp => {
                    self.stats.non_http_bytes += data.len() as u64;
                    &[]
                }
                State::Resync => self.feed_resync(data, ts_ns, out),
            };
        }
    }

    /// `n` bytes of the stream were not captured (past --capture-bytes, or unreadable). Inside a
    /// body they are only counted; anywhere else the stream position is lost and the parser
    /// resynchronises on the next request.
    pub fn skip(&mut self, n: u64, out: &mut Vec<Parsed>) {
        if n == 0 {
            return;
        }
        match self.state {
            State::Body(left) if n <= left => {
                if let Some(req) = self.current.as_mut() {
                    req.body_bytes += n;
                    req.body_missing_bytes += n;
                }
                self.state = State::Body(left - n);
                if left == n {
                    self.finish_request(out);
                }
            }
            State::Chunked(ChunkState::Data(left)) if n <= left => {
                if let Some(req) = self.current.as_mut() {
                    req.body_bytes += n;
                    req.body_missing_bytes += n;
                }
                self.state = State::Chunked(ChunkState::Data(left - n));
                if left == n {
                    self.state = State::Chunked(ChunkState::DataEnd);
                }
            }
            State::Passthrough | State::NotHttp => {}
            _ => self.lose_position(n, out),
        }
    }

    /// Bytes of unknown number were lost (events lost); resynchronise on the next request.
    pub fn gap(&mut self, out: &mut Vec<Parsed>) {
        if !matches!(self.state, State::Passthrough | State::NotHttp) {
            self.lose_position(0, out);
        }
    }

    /// The stream ended (connection closed, or tracing stopped): report what is pending.
    /// Returns true when a request head was partly received and is dropped.
    pub fn finish(&mut self, out: &mut Vec<Parsed>) -> bool {
        if let Some(mut req) = self.current.take() {
            req.complete = false;
            out.push(Parsed::Request(req));
        }
        let partial_head = self.state == State::Head && !self.buf.is_empty();
        self.buf.clear();
        self.state = State::Head;
        partial_head
    }

    fn lose_position(&mut self, n: u64, out: &mut Vec<Parsed>) {
        if let Some(mut req) = self.current.take() {
            req.complete = false;
            out.push(Parsed::Request(req));
        }
        self.stats.resync_bytes += self.buf.len() as u64 + n;
        self.buf.clear();
        self.state = State::Resync;
    }

    fn feed_head<'d>(&mut self, data: &'d [u8], ts_ns: u64, out: &mut Vec<Parsed>) -> &'d [u8] {
        if self.buf.is_empty() {
            // Empty lines before a request line are allowed (RFC 9112, 2.2).
            let start = data
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(data.len());
            if start == data.len() {
                return &[];
            }
            self.buf_ts = ts_ns;
            self.buf.extend_from_slice(&data[start..]);
        } else {
            self.buf.extend_from_slice(data);
        }
        self.parse_buffered_heads(out);
        &[]
    }

    /// Parse as many messages out of `buf` as it holds, leaving the state for what follows.
    fn parse_buffered_heads(&mut self, out: &mut Vec<Parsed>) {
        while self.state == State::Head && !self.buf.is_empty() {
            match sniff(&self.buf) {
                Sniff::NeedMore => return,
                Sniff::NotHttp => {
                    if self.seen_request {
                        self.malformed("bytes that are not an HTTP request", out);
                    } else {
                        self.stats.non_http_bytes += self.buf.len() as u64;
                        self.buf.clear();
                        self.state = State::NotHttp;
                    }
                    return;
                }
                Sniff::Request => {}
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Request::new(&mut headers);
            let head_len = match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > MAX_HEAD_BYTES {
                        self.malformed("request head larger than 64 KiB", out);
                    }
                    return;
                }
                Err(e) => {
                    self.malformed(&format!("invalid request: {e}"), out);
                    return;
                }
            };
            self.seen_request = true;
            let req = Request {
                ts_ns: self.buf_ts,
                method: parsed.method.unwrap_or_default().to_string(),
                target: parsed.path.unwrap_or_default().to_string(),
                version: parsed.version.unwrap_or(1),
                headers: parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
                body_bytes: 0,
                body: Vec::new(),
                body_missing_bytes: 0,
                complete: true,
            };
            let rest = self.buf.split_off(head_len);
            self.buf.clear();
            match body_framing(&req) {
                Err(reason) => {
                    // Where this body ends is unknown: report it and look for the next request.
                    out.push(Parsed::Malformed {
                        ts_ns: self.buf_ts,
                        reason: reason.to_string(),
                    });
                    self.state = State::Resync;
                }
                Ok(Framing::Length(n)) if n > 0 => {
                    self.current = Some(req);
                    self.state = State::Body(n);
                }
                Ok(Framing::Chunked) => {
                    self.current = Some(req);
                    self.state = State::Chunked(ChunkState::Size);
                }
                Ok(_) => {
                    self.current = Some(req);
                    self.finish_request(out);
                }
            }
            if rest.is_empty() {
                continue;
            }
            if self.state == State::Head {
                self.buf = rest;
                self.drop_leading_empty_lines();
            } else {
                // Body bytes (or whatever follows) that arrived with the head.
                let ts = self.buf_ts;
                self.feed(&rest, ts, out);
                return;
            }
        }
    }

    fn drop_leading_empty_lines(&mut self) {
        let start = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.drain(..start);
    }

    fn malformed(&mut self, reason: &str, out: &mut Vec<Parsed>) {
        out.push(Parsed::Malformed {
            ts_ns: self.buf_ts,
            reason: reason.to_string(),
        });
        // The first byte cannot start a request; look for the next one after it.
        let rest = self.buf.split_off(1.min(self.buf.len()));
        self.stats.resync_bytes += self.buf.len() as u64;
        self.buf.clear();
        self.state = State::Resync;
        if !rest.is_empty() {
            let ts = self.buf_ts;
            self.feed(&rest, ts, out);
        }
    }

    fn feed_body<'d>(&mut self, data: &'d [u8], left: u64, out: &mut Vec<Parsed>) -> &'d [u8] {
        let n = (left.min(data.len() as u64)) as usize;
        self.take_body(&data[..n]);
        self.state = State::Body(left - n as u64);
        if left == n as u64 {
            self.finish_request(out);
        }
        &data[n..]
    }

    fn take_body(&mut self, bytes: &[u8]) {
        if let Some(req) = self.current.as_mut() {
            req.body_bytes += bytes.len() as u64;
            let room = self.body_limit.saturating_sub(req.body.len());
            req.body.extend_from_slice(&bytes[..room.min(bytes.len())]);
        }
    }

    fn finish_request(&mut self, out: &mut Vec<Parsed>) {
        self.state = State::Head;
        if let Some(req) = self.current.take() {
            let switches = req.method.eq_ignore_ascii_case("CONNECT")
                || req
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("upgrade"));
            out.push(Parsed::Request(req));
            if switches {
                self.state = State::Passthrough;
            }
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
                            self.finish_request(out);
                        }
                    }
                    ChunkState::Data(_) => unreachable!("handled above"),
                }
                &data[nl + 1..]
            }
        }
    }

    fn chunk_error(&mut self, reason: &str, out: &mut Vec<Parsed>) {
        if let Some(mut req) = self.current.take() {
            req.complete = false;
            out.push(Parsed::Request(req));
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
        let keep_from = self.buf.len().saturating_sub(RESYNC_TAIL);
        self.stats.resync_bytes += keep_from as u64;
        self.buf.drain(..keep_from);
        self.buf.extend_from_slice(data);
        if let Some(pos) = find_request_start(&self.buf) {
            self.stats.resync_bytes += pos as u64;
            let rest = self.buf.split_off(pos);
            self.buf.clear();
            self.state = State::Head;
            self.feed(&rest, ts_ns, out);
        }
        &[]
    }
}

enum Sniff {
    Request,
    NotHttp,
    NeedMore,
}

/// Whether `buf` starts like an HTTP/1.x request line: an upper-case method token and a space.
fn sniff(buf: &[u8]) -> Sniff {
    if buf.starts_with(b"PRI * HTTP/2") {
        return Sniff::NotHttp; // HTTP/2 prior knowledge
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

fn find_request_start(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find(|&i| {
        (i == 0 || buf[i - 1] == b'\n') && KNOWN_METHODS.iter().any(|m| buf[i..].starts_with(m))
    })
}

enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// How a request's body is delimited (RFC 9112, 6.3).
fn body_framing(req: &Request) -> Result<Framing, &'static str> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for (name, value) in &req.headers {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or("").trim();
            chunked = last.eq_ignore_ascii_case("chunked");
            if !chunked {
                return Err("request body with a transfer coding other than chunked last");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
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
    Ok(match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::None,
    })
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
