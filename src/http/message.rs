//! A parsed HTTP/1.x message: its head as received, with where the start line's parts and each
//! header lie in it, and the first body bytes; and the parsing of a head with httparse.

use std::mem::MaybeUninit;

use super::lenient::{target_has_invalid_char, Lenient};

/// Headers one message may have before it is reported as malformed.
const MAX_HEADERS: usize = 128;

/// A message's start line, as borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'m> {
    Request {
        method: &'m str,
        target: &'m str,
    },
    /// The reason phrase as sent: any bytes (RFC 9112 allows obs-text), shown as header
    /// values are.
    Response {
        status: u16,
        reason: &'m [u8],
    },
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
    /// The head's length as it was sent (head_len is that of the head kept, redacted or not).
    wire_head_len: u32,
    header_count: u32,
    /// A bit per header name (header_name_bit): which names it surely lacks, told without a
    /// pass over its headers.
    name_bits: u64,
    /// Body size as sent (decoded size for chunked bodies).
    pub body_bytes: u64,
    /// Body bytes that were not in the capture (beyond --capture-bytes, sendfile, read failures).
    pub body_missing_bytes: u64,
    /// False when tracing or the connection ended before the message did.
    pub complete: bool,
    /// A chunked body's trailer section: its field lines as received, each with its line end
    /// (empty for most messages, which have none: no allocation); redacted, rebuilt.
    trailers: Vec<u8>,
    /// The trailer field lines' length as they were sent.
    wire_trailers_len: u32,
    /// Body bytes kept as they were received, where redaction changed the body kept (NOT_EDITED
    /// otherwise): whether the body was cut is judged by them, not by the redacted length.
    received_body_len: u32,
    /// The steps outside RFC 9112's grammar the parser took to read it.
    pub lenient: Lenient,
    /// Found after bytes were skipped to resynchronise (an error, a gap): those bytes may
    /// have held what this message really is.
    pub resynced: bool,
}

/// `received_body_len` of a message whose body is as it was received.
const NOT_EDITED: u32 = u32::MAX;

impl Message {
    /// A message with no body yet: `buf` starts with a head of `n` bytes, which httparse parsed
    /// into `start` and `headers`; room is made for the body bytes after it, up to
    /// `body_limit`. `lenient`: what the head was read with (bare LFs are found here; a header
    /// name starts a line, after a start line of at least 13 bytes).
    #[inline(always)]
    fn from_head(
        buf: &[u8],
        n: usize,
        start: StartLine<'_>,
        version: u8,
        headers: &[httparse::Header<'_>],
        body_limit: usize,
        lenient: Lenient,
    ) -> Self {
        let head = &buf[..n];
        let spare = (buf.len() - n).min(body_limit);
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
        let mut name_bits = 0;
        // Each line is checked for its CR where the next begins: a byte a line, no scan.
        let mut bare_lf = false;
        for h in headers {
            name_bits |= header_name_bit(h.name.as_bytes());
            let (name, value) = (span(h.name.as_bytes()), span(h.value));
            bare_lf |= head.get(name.start as usize - 2) != Some(&b'\r');
            // One append of the four: one capacity check, not four.
            let mut span_bytes = [0u8; HEADER_SPAN_BYTES];
            for (i, n) in [name.start, name.end, value.start, value.end]
                .into_iter()
                .enumerate()
            {
                span_bytes[i * 4..i * 4 + 4].copy_from_slice(&n.to_le_bytes());
            }
            bytes.extend_from_slice(&span_bytes);
        }
        let start = match start {
            StartLine::Request { method, target } => Start::Request {
                method: span(method.as_bytes()),
                target: span(target.as_bytes()),
            },
            StartLine::Response { status, reason } => Start::Response {
                status,
                reason: span(reason),
            },
        };
        // The empty line that ends the head, and the line before it.
        let blank = match head {
            [.., b'\r', b'\n'] => head.len() - 2,
            _ => {
                bare_lf = true;
                head.len() - 1
            }
        };
        bare_lf |= head.get(blank.wrapping_sub(2)) != Some(&b'\r');
        Self {
            ts_ns: 0,
            end_ts_ns: 0,
            start,
            version,
            bytes,
            head_len: head.len() as u32,
            wire_head_len: head.len() as u32,
            header_count: headers.len() as u32,
            name_bits,
            body_bytes: 0,
            body_missing_bytes: 0,
            complete: true,
            trailers: Vec::new(),
            wire_trailers_len: 0,
            received_body_len: NOT_EDITED,
            lenient: if bare_lf {
                lenient | Lenient::BARE_LF
            } else {
                lenient
            },
            resynced: false,
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
        let (_, mut m) = parse_head(head.as_bytes(), is_response, body.len())
            .expect("a valid head")
            .expect("a complete head");
        m.bytes.extend_from_slice(body);
        m.body_bytes = body_bytes;
        m
    }

    /// The start line's part at `span`. Asked several times for each message printed (pairing,
    /// redaction, filters, output): validating it as UTF-8 each time was 4.5% of the pipeline
    /// benchmark's instructions, so it is not validated again.
    fn text(&self, span: Span) -> &str {
        let bytes = self
            .bytes
            .get(span.start as usize..span.end as usize)
            .unwrap_or(&[]);
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: a request's method and target spans are set only in `from_head`, from
        // httparse's `&str`s (UTF-8) lying in the head that heads `bytes`, and `bytes` is only
        // appended to after; `text` is asked for no other span.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    pub fn start(&self) -> StartLine<'_> {
        match self.start {
            Start::Request { method, target } => StartLine::Request {
                method: self.text(method),
                target: self.text(target),
            },
            Start::Response { status, reason } => StartLine::Response {
                status,
                reason: self
                    .bytes
                    .get(reason.start as usize..reason.end as usize)
                    .unwrap_or(&[]),
            },
        }
    }

    fn body_start(&self) -> usize {
        self.head_len as usize + self.header_count as usize * HEADER_SPAN_BYTES
    }

    /// False when it surely has no header of the names whose header_name_bit()s make up
    /// `bits`; true when it may have one. Spares a pass over the headers of most messages.
    #[inline]
    pub fn may_have_header(&self, bits: u64) -> bool {
        self.name_bits & bits != 0
    }

    /// (name, value) of each header as bytes, in order, duplicates kept.
    #[inline]
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

    /// Bytes of the head as it was sent: the start line, the headers and the blank line.
    pub fn head_len(&self) -> usize {
        self.wire_head_len as usize
    }

    /// The same message with its head rebuilt: the request's target replaced by `target`, each
    /// header's value by `values[i]` where it has one, and the kept body by `body`. Sizes, times
    /// and completeness stay those of the message as it was sent. None if the new head does not
    /// parse (it always does when the replacements are header-safe text).
    pub fn edited(
        &self,
        target: Option<&str>,
        values: &[Option<Vec<u8>>],
        body: Option<&[u8]>,
    ) -> Option<Message> {
        let version = if self.version == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let mut head = Vec::with_capacity(self.head_len as usize + 64);
        match self.start() {
            StartLine::Request { method, target: t } => {
                head.extend_from_slice(method.as_bytes());
                head.push(b' ');
                head.extend_from_slice(target.unwrap_or(t).as_bytes());
                head.push(b' ');
                head.extend_from_slice(version.as_bytes());
            }
            StartLine::Response { status, reason } => {
                head.extend_from_slice(version.as_bytes());
                head.extend_from_slice(format!(" {status:03} ").as_bytes());
                head.extend_from_slice(reason);
            }
        }
        head.extend_from_slice(b"\r\n");
        for (i, (name, value)) in self.headers().enumerate() {
            head.extend_from_slice(name);
            head.extend_from_slice(b": ");
            head.extend_from_slice(values.get(i).and_then(Option::as_deref).unwrap_or(value));
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let body = body.unwrap_or(self.body());
        let (_, mut m) = parse_head(&head, !self.is_request(), body.len()).ok()??;
        m.bytes.extend_from_slice(body);
        m.ts_ns = self.ts_ns;
        m.end_ts_ns = self.end_ts_ns;
        m.version = self.version;
        m.wire_head_len = self.wire_head_len;
        m.body_bytes = self.body_bytes;
        m.body_missing_bytes = self.body_missing_bytes;
        m.complete = self.complete;
        m.trailers = self.trailers.clone();
        m.wire_trailers_len = self.wire_trailers_len;
        m.received_body_len = self.received_body_len();
        m.lenient = self.lenient;
        m.resynced = self.resynced;
        Some(m)
    }

    /// A chunked body's trailer fields, (name, value) in order; the value without the
    /// whitespace around it. The parser let in only lines with a name and a colon.
    pub fn trailers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.trailers
            .split_inclusive(|&b| b == b'\n')
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let value = line[colon + 1..].trim_ascii();
                Some((&line[..colon], value))
            })
    }

    /// Bytes of the trailer section's field lines as they were sent (0: it had none).
    pub fn trailers_len(&self) -> usize {
        self.wire_trailers_len as usize
    }

    /// Add one trailer field line, as received with its line end (the parser, which bounds
    /// the section to MAX_HEAD_BYTES).
    pub(super) fn push_trailer(&mut self, line: &[u8]) {
        self.trailers.extend_from_slice(line);
        self.wire_trailers_len += line.len() as u32;
    }

    /// Replace the trailer fields with `fields` (name, value): redaction. Each goes out as a
    /// `name: value` line; the size as sent stays.
    pub fn set_trailers<'a>(&mut self, fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
        let mut lines = Vec::new();
        for (name, value) in fields {
            lines.extend_from_slice(name);
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value);
            lines.extend_from_slice(b"\r\n");
        }
        self.trailers = lines;
    }

    /// The first body bytes, up to the parser's body limit.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body_start()..]
    }

    /// Make room for `n` body bytes kept, in the one allocation.
    pub(super) fn reserve_body(&mut self, n: usize) {
        self.bytes.reserve_exact(n);
    }

    /// Count `bytes` of body, and keep what fits under `limit` bytes kept. The body kept is the
    /// body's start: after bytes that were not captured, nothing more is kept (the bytes after
    /// a hole are not the ones that follow what was kept).
    pub(super) fn take_body(&mut self, bytes: &[u8], limit: usize) {
        self.body_bytes += bytes.len() as u64;
        let room = if self.body_missing_bytes > 0 {
            0
        } else {
            limit.saturating_sub(self.body().len())
        };
        self.bytes
            .extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    /// Heap bytes it holds: its head, header spans, the body kept and its trailers.
    pub fn held_bytes(&self) -> usize {
        self.bytes.capacity() + self.trailers.capacity()
    }

    /// Whether the body kept is shorter than the body sent (a redacted value changes neither).
    pub fn body_cut(&self) -> bool {
        u64::from(self.received_body_len()) < self.body_bytes
    }

    /// Body bytes kept as they were received, before any redaction.
    fn received_body_len(&self) -> u32 {
        if self.received_body_len == NOT_EDITED {
            self.body().len() as u32
        } else {
            self.received_body_len
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }
}

/// A header name's bit among 64, from its length and its first and last letters,
/// case-insensitively. The mix keeps the names redaction and framing look for apart from each
/// other and from 37 common ones (Content-Type and X-Api-Key shared a bit under length and
/// first letter alone).
pub const fn header_name_bit(name: &[u8]) -> u64 {
    let (first, last) = match name {
        [] => (0, 0),
        [f, .., l] => (*f | 0x20, *l | 0x20),
        [f] => (*f | 0x20, *f | 0x20),
    };
    1 << ((name.len() as u64 * 17 + first as u64 + 2 * last as u64) % 64)
}

/// What a request's method says about how its response is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Head,
    Connect,
    Other,
}

impl RequestKind {
    pub fn of(name: &str) -> Self {
        if name.eq_ignore_ascii_case("HEAD") {
            RequestKind::Head
        } else if name.eq_ignore_ascii_case("CONNECT") {
            RequestKind::Connect
        } else {
            RequestKind::Other
        }
    }
}
/// The length of the head at the start of `buf`, and the message it starts; Ok(None) while the
/// head is incomplete. The message has room for the body bytes that follow the head in `buf`, up
/// to `body_limit`: a small body usually arrives with its head. The message's `lenient` names the
/// steps outside RFC 9112's grammar its head was read with.
pub(super) fn parse_head(
    buf: &[u8],
    is_response: bool,
    body_limit: usize,
) -> Result<Option<(usize, Message)>, httparse::Error> {
    // Left uninitialised: httparse writes what it returns (4 KiB to clear per message otherwise).
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    if !is_response {
        let mut req = httparse::Request::new(&mut []);
        let httparse::Status::Complete(n) = req.parse_with_uninit_headers(buf, &mut headers)?
        else {
            return Ok(None);
        };
        let target = req.path.unwrap_or_default();
        let start = StartLine::Request {
            method: req.method.unwrap_or_default(),
            target,
        };
        let lenient = if target_has_invalid_char(target.as_bytes()) {
            Lenient::TARGET_CHAR
        } else {
            Lenient::NONE
        };
        let version = req.version.unwrap_or(1);
        let msg = Message::from_head(buf, n, start, version, req.headers, body_limit, lenient);
        return Ok(Some((n, msg)));
    }
    let mut resp = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    ) {
        // A field line that starts with whitespace: obs-fold, which a recipient of a response
        // reads as a space (RFC 9112, 5.2). Tried again only then: a response without one
        // costs nothing more.
        Err(httparse::Error::HeaderName) => return parse_folded_response(buf, body_limit),
        other => other?,
    };
    let httparse::Status::Complete(n) = n else {
        return Ok(None);
    };
    Ok(Some((
        n,
        response(buf, n, &resp, body_limit, Lenient::NONE),
    )))
}

/// The response head at the start of `buf`, read with its obs-folds. Out of line: its header
/// array is not on the stack of every other head's parse.
#[cold]
#[inline(never)]
fn parse_folded_response(
    buf: &[u8],
    body_limit: usize,
) -> Result<Option<(usize, Message)>, httparse::Error> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let httparse::Status::Complete(n) = httparse::ParserConfig::default()
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response_with_uninit_headers(&mut resp, buf, &mut headers)?
    else {
        return Ok(None);
    };
    let mut lenient = Lenient::OBS_FOLD;
    // The lines folded into values are not checked one by one in from_head.
    let count = |byte: u8| buf[..n].iter().filter(|&&b| b == byte).count();
    if count(b'\n') != count(b'\r') {
        lenient |= Lenient::BARE_LF;
    }
    Ok(Some((n, response(buf, n, &resp, body_limit, lenient))))
}

/// The message of the response head of `n` bytes that starts `buf`, which httparse parsed into
/// `resp`, read with `lenient`.
#[inline(always)]
fn response(
    buf: &[u8],
    n: usize,
    resp: &httparse::Response<'_, '_>,
    body_limit: usize,
    mut lenient: Lenient,
) -> Message {
    // "HTTP/1.x NNN" comes first; then a space, unless the line ends there.
    if buf.get(12) != Some(&b' ') {
        lenient |= Lenient::STATUS_NO_SP;
    }
    let reason = match resp.reason {
        Some(r) if !r.is_empty() => r.as_bytes(),
        _ => obs_text_reason(buf),
    };
    let start = StartLine::Response {
        status: resp.code.unwrap_or(0),
        reason,
    };
    let version = resp.version.unwrap_or(1);
    Message::from_head(buf, n, start, version, resp.headers, body_limit, lenient)
}

/// The reason phrase of the status line that starts `buf` (which httparse parsed), every byte
/// of it: httparse gives none of one with obs-text (bytes of 0x80 and above, which RFC 9112
/// allows).
#[cold]
fn obs_text_reason(buf: &[u8]) -> &[u8] {
    let Some(line) = buf.get(13..).filter(|_| buf.get(12) == Some(&b' ')) else {
        return &[];
    };
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let reason = &line[..end];
    reason.strip_suffix(b"\r").unwrap_or(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_phrase_keeps_every_byte() {
        let reason = |head: &[u8]| {
            let m = parse_head(head, true, 0).unwrap().unwrap().1;
            match m.start() {
                StartLine::Response { reason, .. } => (reason.to_vec(), m.lenient),
                StartLine::Request { .. } => unreachable!(),
            }
        };
        let strict = |r: &[u8]| (r.to_vec(), Lenient::NONE);
        assert_eq!(
            reason("HTTP/1.1 500 Oriëntatieprobleem\r\n\r\n".as_bytes()),
            strict("Oriëntatieprobleem".as_bytes())
        );
        assert_eq!(reason(b"HTTP/1.1 200 OK\r\n\r\n"), strict(b"OK"));
        assert_eq!(reason(b"HTTP/1.1 204 \r\n\r\n"), strict(b""));
        assert_eq!(reason(b"HTTP/1.1 200 Caf\xe9\r\n\r\n"), strict(b"Caf\xe9"));
        assert_eq!(reason(b"HTTP/1.1 200  two\r\n\r\n"), strict(b" two"));
        assert_eq!(
            reason(b"HTTP/1.1 204\r\n\r\n"),
            (vec![], Lenient::STATUS_NO_SP)
        );
        assert_eq!(
            reason(b"HTTP/1.1 200 Caf\xe9\n\n"),
            (b"Caf\xe9".to_vec(), Lenient::BARE_LF)
        );
    }

    /// Each head's line ends are checked: a bare LF anywhere is found, in a fold too.
    #[test]
    fn lenient_heads_are_named() {
        let lenient = |head: &[u8], response: bool| {
            let (n, m) = parse_head(head, response, 0).unwrap().unwrap();
            assert_eq!(n, head.len());
            m.lenient.names().collect::<Vec<_>>()
        };
        let none: [&str; 0] = [];
        assert_eq!(
            lenient(b"GET / HTTP/1.1\r\nA: b\r\nC: d\r\n\r\n", false),
            none
        );
        assert_eq!(lenient(b"GET / HTTP/1.1\r\n\r\n", false), none);
        for bare in [
            &b"GET / HTTP/1.1\nA: b\r\nC: d\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\nC: d\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\nC: d\r\n\n",
            b"GET / HTTP/1.1\n\r\n",
            b"GET / HTTP/1.1\r\n\n",
            b"GET / HTTP/1.1\n\n",
            b"GET / HTTP/1.1\r\nA:\nC: d\r\n\r\n",
        ] {
            assert_eq!(
                lenient(bare, false),
                ["bare-lf"],
                "{:?}",
                String::from_utf8_lossy(bare)
            );
        }
        assert_eq!(
            lenient(b"GET /a<b> HTTP/1.1\r\n\r\n", false),
            ["target-char"]
        );
        assert_eq!(
            lenient(b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\nD: e\r\n\r\n", true),
            ["obs-fold"]
        );
        assert_eq!(
            lenient(b"HTTP/1.1 200 OK\r\nA: b\n\tc\r\n\r\n", true),
            ["bare-lf", "obs-fold"]
        );
        // A fold in a request is not read: malformed, as a strict server answers 400.
        assert!(parse_head(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", false, 0).is_err());
    }

    #[test]
    fn header_bits_say_which_names_are_surely_absent() {
        let m = Message::build(
            "GET / HTTP/1.1",
            &[("HOST", "h"), ("Content-Type", "text/plain")],
            b"",
            0,
        );
        // Present, in any case: always "may".
        for name in ["host", "Host", "content-type", "CONTENT-TYPE"] {
            assert!(
                m.may_have_header(header_name_bit(name.as_bytes())),
                "{name}"
            );
        }
        // Absent names of other lengths or first letters: "no".
        for name in [
            "content-length",
            "transfer-encoding",
            "authorization",
            "cookie",
        ] {
            assert!(
                !m.may_have_header(header_name_bit(name.as_bytes())),
                "{name}"
            );
        }
        // Edited, the bits are those of the new head.
        let e = m.edited(None, &[None, None], None).expect("edited");
        assert!(e.may_have_header(header_name_bit(b"host")));
        assert!(!e.may_have_header(header_name_bit(b"cookie")));
    }
}
