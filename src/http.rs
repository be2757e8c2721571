//! Incremental HTTP/1.1 request parsing over one connection's inbound byte stream.
//!
//! Bytes arrive in whatever pieces the receive syscalls returned; the parser finds message
//! boundaries itself (head by httparse, body by Content-Length or chunked encoding), so one piece
//! may hold several pipelined requests and one request may span many pieces.

/// Largest request head kept; a bigger one is reported as malformed.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers one request may have before it is reported as malformed.
const MAX_HEADERS: usize = 128;
/// Longest request line a resync waits for; past it a candidate start is given up.
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

impl std::ops::AddAssign for ParserStats {
    fn add_assign(&mut self, other: Self) {
        self.non_http_bytes += other.non_http_bytes;
        self.resync_bytes += other.resync_bytes;
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

    /// The stream is joined somewhere in the middle: start at the next request line found.
    pub fn start_mid_stream(&mut self) {
        self.buf.clear();
        self.current = None;
        self.state = State::Resync;
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
            let start = empty_line_bytes(data);
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
        let start = empty_line_bytes(&self.buf);
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
        self.buf.extend_from_slice(data);
        match find_request_start(&self.buf) {
            RequestStart::Found(pos) => {
                self.stats.resync_bytes += pos as u64;
                let rest = self.buf.split_off(pos);
                self.buf.clear();
                self.state = State::Head;
                self.feed(&rest, ts_ns, out);
            }
            RequestStart::Maybe(pos) => {
                // Keep the candidate until its line is complete.
                self.stats.resync_bytes += pos as u64;
                self.buf.drain(..pos);
            }
            RequestStart::None => {
                self.stats.resync_bytes += self.buf.len() as u64;
                self.buf.clear();
            }
        }
        &[]
    }
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

enum RequestStart {
    Found(usize),
    /// A possible start whose request line is not complete yet.
    Maybe(usize),
    None,
}

/// The first place in `buf` where a request line starts: a known method and a line that ends in
/// " HTTP/1.x". Used only to find the way back after lost or malformed bytes.
fn find_request_start(buf: &[u8]) -> RequestStart {
    for i in 0..buf.len() {
        let rest = &buf[i..];
        if !KNOWN_METHODS.iter().any(|m| rest.starts_with(m)) {
            if KNOWN_METHODS.iter().any(|m| m.starts_with(rest)) {
                return RequestStart::Maybe(i);
            }
            continue;
        }
        let window = &rest[..rest.len().min(MAX_RESYNC_LINE)];
        match window.windows(2).position(|w| w == b"\r\n") {
            Some(end) => {
                let line = &rest[..end];
                if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
                    return RequestStart::Found(i);
                }
            }
            None if rest.len() < MAX_RESYNC_LINE => return RequestStart::Maybe(i),
            None => {}
        }
    }
    RequestStart::None
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pieces: &[&[u8]]) -> (Vec<Parsed>, RequestParser) {
        let mut p = RequestParser::new(64);
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            p.feed(piece, i as u64 + 1, &mut out);
        }
        (out, p)
    }

    fn requests(out: &[Parsed]) -> Vec<&Request> {
        out.iter()
            .filter_map(|p| match p {
                Parsed::Request(r) => Some(r),
                Parsed::Malformed { .. } => None,
            })
            .collect()
    }

    fn targets(out: &[Parsed]) -> Vec<String> {
        out.iter()
            .map(|p| match p {
                Parsed::Request(r) => format!("{} {}", r.method, r.target),
                Parsed::Malformed { reason, .. } => format!("malformed: {reason}"),
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
        assert_eq!(r[0].method, "GET");
        assert_eq!(r[0].target, "/items?id=1");
        assert_eq!(r[0].version, 1);
        assert_eq!(r[0].ts_ns, 1);
        assert_eq!(
            r[0].headers,
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
        assert_eq!(requests(&out)[0].headers, requests(&whole)[0].headers);
        // The timestamp is that of the piece holding the first byte.
        assert_eq!(requests(&out)[0].ts_ns, 1);
    }

    #[test]
    fn pipelined_requests_in_one_piece() {
        let data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.0\r\n\r\n";
        let (out, _) = parse_all(&[data]);
        assert_eq!(targets(&out), ["GET /a", "POST /b", "GET /c"]);
        let r = requests(&out);
        assert_eq!(r[1].body, b"abc");
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
        assert_eq!(r[0].body, b"hello world");
        assert_eq!(r[0].body_bytes, 11);
        assert!(!r[0].body_cut());
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers_byte_by_byte() {
        let data: &[u8] = b"POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nGET /after HTTP/1.1\r\n\r\n";
        for pieces in [vec![data], data.chunks(1).collect::<Vec<_>>()] {
            let (out, _) = parse_all(&pieces);
            assert_eq!(targets(&out), ["POST /up", "GET /after"]);
            assert_eq!(requests(&out)[0].body, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(requests(&out)[0].body_bytes, 23);
        }
    }

    #[test]
    fn body_kept_up_to_the_limit_and_counted_past_it() {
        let mut data = b"POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\n".to_vec();
        data.extend(std::iter::repeat_n(b'z', 100));
        let (out, _) = parse_all(&[&data]);
        let r = requests(&out);
        assert_eq!(r[0].body.len(), 64);
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
                "malformed: bytes that are not an HTTP request",
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
            ["malformed: request head larger than 64 KiB"]
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
        let mut p = RequestParser::new(64);
        let mut out = Vec::new();
        p.feed(
            b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
            1,
            &mut out,
        );
        p.skip(6, &mut out);
        p.feed(b"GET /g HTTP/1.1\r\n\r\n", 2, &mut out);
        assert_eq!(targets(&out), ["POST /f", "GET /g"]);
        let r = requests(&out);
        assert_eq!(r[0].body_bytes, 10);
        assert_eq!(r[0].body_missing_bytes, 6);
        assert!(r[0].complete);
    }

    #[test]
    fn skipped_bytes_in_a_head_lose_the_position_until_the_next_request() {
        let mut p = RequestParser::new(64);
        let mut out = Vec::new();
        p.feed(b"GET /lost HTTP/1.1\r\nHo", 1, &mut out);
        p.skip(100, &mut out);
        p.feed(b"st: x\r\n\r\nGET /found HTTP/1.1\r\n\r\n", 2, &mut out);
        assert_eq!(targets(&out), ["GET /found"]);
    }

    #[test]
    fn gap_in_a_body_reports_the_request_incomplete() {
        let mut p = RequestParser::new(64);
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
        let mut p = RequestParser::new(64);
        let mut out = Vec::new();
        p.feed(
            b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
            1,
            &mut out,
        );
        assert!(!p.finish(&mut out));
        assert_eq!(targets(&out), ["POST /f"]);
        assert!(!requests(&out)[0].complete);
        p.feed(b"GET /half HTTP/1.1\r\nHost", 2, &mut out);
        assert!(p.finish(&mut out));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn upgrade_leaves_the_connection_alone() {
        let (out, p) = parse_all(&[
            b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"\x81\x85binary frames GET / HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(targets(&out), ["GET /ws"]);
        assert_eq!(p.stats.resync_bytes, 0);
        let (out, _) = parse_all(&[b"CONNECT example:443 HTTP/1.1\r\n\r\n\x16\x03\x01tls"]);
        assert_eq!(targets(&out), ["CONNECT example:443"]);
    }

    #[test]
    fn method_split_across_pieces_is_found_when_resyncing() {
        let mut p = RequestParser::new(64);
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
        let mut p = RequestParser::new(64);
        p.start_mid_stream();
        let mut out = Vec::new();
        p.feed(
            b"rest of a body\r\n\x00\x01GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
            1,
            &mut out,
        );
        assert_eq!(targets(&out), ["GET /next"]);
        // A stream joined at a request start loses nothing.
        let mut p = RequestParser::new(64);
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
