//! Output: a readable line per exchange (plus headers and bodies with -v), or one JSON object
//! per line. Writes go through a buffer that the caller flushes once per batch of events.

use std::io::{self, Write};
use std::net::SocketAddr;

use crate::decode::Direction;
use crate::http::{Message, StartLine};
use crate::record::{ConnInfo, Record};

/// Body bytes the text output shows with -v; JSON carries all that was kept (--max-body).
const TEXT_BODY_PREVIEW: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Converts BPF timestamps (CLOCK_MONOTONIC) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    realtime_minus_monotonic_ns: i128,
}

impl Clock {
    pub fn now() -> io::Result<Self> {
        let mono = clock_ns(libc::CLOCK_MONOTONIC)?;
        let real = clock_ns(libc::CLOCK_REALTIME)?;
        Ok(Self {
            realtime_minus_monotonic_ns: real - mono,
        })
    }

    /// A clock with a fixed offset, for replays and tests.
    pub fn fixed(realtime_minus_monotonic_ns: i128) -> Self {
        Self {
            realtime_minus_monotonic_ns,
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn wall_ns(&self, monotonic_ns: u64) -> i128 {
        i128::from(monotonic_ns) + self.realtime_minus_monotonic_ns
    }
}

fn clock_ns(clock: libc::clockid_t) -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian (H. Hinnant's method).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 UTC with microseconds, e.g. 2026-11-22T01:43:26.123456Z.
pub fn rfc3339(wall_ns: i128) -> String {
    let micros = wall_ns.div_euclid(1_000);
    let secs = micros.div_euclid(1_000_000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        micros.rem_euclid(1_000_000)
    )
}

/// Body bytes for a terminal: text as is, other bytes escaped, lines indented.
pub fn escape_body(body: &[u8], indent: &str) -> String {
    let mut s = String::with_capacity(body.len() + indent.len());
    s.push_str(indent);
    for chunk in body.utf8_chunks() {
        let mut chars = chunk.valid().chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    s.push('\n');
                    s.push_str(indent);
                }
                '\t' => s.push(c),
                c if c.is_control() => s.extend(c.escape_default()),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

/// The timestamp of the last record, RFC 3339: records come many per second, so only the
/// microseconds are redone unless the second changed.
#[derive(Default)]
struct Stamp {
    sec: Option<i64>,
    text: String,
}

impl Stamp {
    fn at(&mut self, wall_ns: i128) -> &str {
        let micros = wall_ns.div_euclid(1_000);
        let sec = micros.div_euclid(1_000_000) as i64;
        if self.sec != Some(sec) {
            self.sec = Some(sec);
            self.text = rfc3339(wall_ns);
            return &self.text;
        }
        let mut us = micros.rem_euclid(1_000_000) as u32;
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (us % 10) as u8;
            us /= 10;
        }
        self.text.truncate(self.text.len() - 7); // ".uuuuuu" and "Z" follow the second
        self.text.extend(digits.iter().map(|&d| char::from(d)));
        self.text.push('Z');
        &self.text
    }
}

/// A JSON key as it follows an earlier field: `,"name":`.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

/// Printed records gather in memory and go to the output in writes of about this size.
const WRITE_AT: usize = 64 * 1024;

pub struct Printer<W: Write> {
    out: W,
    /// Formatted records not yet written to `out`: formatting appends here, never to `out`
    /// piece by piece.
    buf: Vec<u8>,
    format: Format,
    verbose: bool,
    clock: Clock,
    stamp: Stamp,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, verbose: bool, clock: Clock) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(WRITE_AT + 4096),
            format,
            verbose,
            clock,
            stamp: Stamp::default(),
        }
    }

    pub fn print(&mut self, rec: &Record) -> io::Result<()> {
        match self.format {
            Format::Text => self.print_text(rec)?,
            Format::Json => self.print_json(rec),
        }
        if self.buf.len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.out.flush()
    }

    fn write_out(&mut self) -> io::Result<()> {
        let written = self.out.write_all(&self.buf);
        self.buf.clear();
        written
    }

    #[cfg(test)]
    pub fn into_inner(mut self) -> W {
        self.write_out().expect("writing to the test sink");
        self.out
    }

    fn print_text(&mut self, rec: &Record) -> io::Result<()> {
        let (conn, request, response) = match rec {
            Record::Exchange {
                conn,
                request,
                response,
            } => (conn, request.as_ref(), response.as_ref()),
            Record::Malformed {
                conn,
                direction,
                ts_ns,
                reason,
            } => {
                self.text_prefix(conn, *ts_ns)?;
                let what = match direction {
                    Direction::In => "received",
                    Direction::Out => "sent",
                };
                return writeln!(self.buf, "malformed message {what}: {reason}");
            }
        };
        self.text_prefix(conn, rec.ts_ns())?;
        match request.map(|m| (m.start(), m)) {
            Some((StartLine::Request { method, target }, m)) => {
                write!(self.buf, "{method} {target} HTTP/1.{}", m.version)?;
                if !m.complete {
                    write!(self.buf, " (incomplete)")?;
                }
            }
            _ => write!(self.buf, "(request not seen)")?,
        }
        match response.map(|m| (m.start(), m)) {
            Some((StartLine::Response { status, reason }, m)) => {
                write!(self.buf, " -> {status}")?;
                if !reason.is_empty() {
                    write!(self.buf, " {reason}")?;
                }
                if !m.complete {
                    write!(self.buf, " (incomplete)")?;
                }
                if let Some(ns) = latency_ns(request, response) {
                    write!(self.buf, " {:.3}ms", ns as f64 / 1e6)?;
                }
            }
            _ => write!(self.buf, " -> (no response)")?,
        }
        let size =
            |m: Option<&Message>| m.map_or("-".to_string(), |m| format!("{}B", m.body_bytes));
        writeln!(self.buf, " req={} resp={}", size(request), size(response))?;
        if self.verbose {
            for (m, mark) in [(request, '>'), (response, '<')] {
                if let Some(m) = m {
                    self.print_details(m, mark)?;
                }
            }
        }
        Ok(())
    }

    /// Time, process, role and peer: how every text line starts.
    fn text_prefix(&mut self, conn: &ConnInfo, ts_ns: u64) -> io::Result<()> {
        let m = &conn.meta;
        let stamp = self.stamp.at(self.clock.wall_ns(ts_ns));
        // The time of day, with microseconds: "HH:MM:SS.uuuuuu".
        write!(
            self.buf,
            "{} {}[{}] {} ",
            &stamp[11..stamp.len() - 1],
            m.comm,
            m.tgid,
            conn.role.as_str()
        )?;
        match conn.endpoints {
            Some(e) => write!(self.buf, "{} ", e.peer),
            None => write!(self.buf, "fd={} ", m.fd),
        }
    }

    /// Headers and the start of the body, each line marked '>' (request) or '<' (response).
    fn print_details(&mut self, m: &Message, mark: char) -> io::Result<()> {
        let indent = format!("    {mark} ");
        for (name, value) in m.headers_lossy() {
            writeln!(self.buf, "{indent}{name}: {value}")?;
        }
        let shown = &m.body()[..m.body().len().min(TEXT_BODY_PREVIEW)];
        if !shown.is_empty() {
            // A final line break would only print an empty marked line.
            let text = shown.strip_suffix(b"\n").unwrap_or(shown);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            writeln!(self.buf, "{}", indent.trim_end())?;
            writeln!(self.buf, "{}", escape_body(text, &indent))?;
        }
        if (shown.len() as u64) < m.body_bytes {
            writeln!(
                self.buf,
                "{indent}[body cut: {} of {} bytes shown]",
                shown.len(),
                m.body_bytes
            )?;
        }
        Ok(())
    }

    /// One object per line, written field by field in a fixed order (no intermediate value).
    fn print_json(&mut self, rec: &Record) {
        let ts = self.stamp.at(self.clock.wall_ns(rec.ts_ns()));
        match rec {
            Record::Malformed {
                conn,
                direction,
                reason,
                ..
            } => {
                let mut o = JsonLine::start(&mut self.buf, "malformed");
                json_conn(&mut o, conn, ts);
                o.str(
                    key!("direction"),
                    match direction {
                        Direction::In => b"in",
                        Direction::Out => b"out",
                    },
                );
                o.str(key!("reason"), reason.as_bytes());
                o.end();
            }
            Record::Exchange {
                conn,
                request,
                response,
            } => {
                let (request, response) = (request.as_ref(), response.as_ref());
                let mut o = JsonLine::start(&mut self.buf, "exchange");
                json_conn(&mut o, conn, ts);
                if let Some(m) = request {
                    if let StartLine::Request { method, target } = m.start() {
                        o.str(key!("method"), method.as_bytes());
                        o.str(key!("target"), target.as_bytes());
                    }
                    o.str(
                        key!("version"),
                        if m.version == 0 {
                            b"HTTP/1.0"
                        } else {
                            b"HTTP/1.1"
                        },
                    );
                    json_message(&mut o, &REQUEST_KEYS, m);
                }
                match response.map(Message::start) {
                    Some(StartLine::Response { status, reason }) => {
                        o.uint(key!("status"), u64::from(status));
                        o.str(key!("reason"), reason.as_bytes());
                    }
                    _ => o.null(key!("status")),
                }
                if let Some(m) = response {
                    json_message(&mut o, &RESPONSE_KEYS, m);
                }
                match latency_ns(request, response) {
                    Some(ns) => o.millis(key!("latency_ms"), ns),
                    None => o.null(key!("latency_ms")),
                }
                o.end();
            }
        }
    }
}

/// Appends one JSON object as a line, field by field; keys come whole from `key!`.
struct JsonLine<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> JsonLine<'b> {
    /// Every object starts with its kind.
    fn start(buf: &'b mut Vec<u8>, kind: &str) -> Self {
        buf.extend_from_slice(b"{\"kind\":");
        json_string(buf, kind.as_bytes());
        Self { buf }
    }

    fn str(&mut self, key: &str, value: &[u8]) {
        self.buf.extend_from_slice(key.as_bytes());
        json_string(self.buf, value);
    }

    fn uint(&mut self, key: &str, value: u64) {
        self.buf.extend_from_slice(key.as_bytes());
        let mut digits = [0u8; 20];
        self.buf.extend_from_slice(decimal(value, &mut digits));
    }

    fn int(&mut self, key: &str, value: i64) {
        if value < 0 {
            self.buf.extend_from_slice(key.as_bytes());
            self.buf.push(b'-');
            let mut digits = [0u8; 20];
            self.buf
                .extend_from_slice(decimal(value.unsigned_abs(), &mut digits));
        } else {
            self.uint(key, value.unsigned_abs());
        }
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn null(&mut self, key: &str) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"null");
    }

    /// A quoted address, as `SocketAddr` displays it.
    fn addr(&mut self, key: &str, addr: SocketAddr) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'"');
        match addr {
            SocketAddr::V4(a) => {
                for (i, octet) in a.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b'.');
                    }
                    if octet >= 100 {
                        self.buf.push(b'0' + octet / 100);
                    }
                    if octet >= 10 {
                        self.buf.push(b'0' + octet / 10 % 10);
                    }
                    self.buf.push(b'0' + octet % 10);
                }
                self.buf.push(b':');
                let mut digits = [0u8; 20];
                self.buf
                    .extend_from_slice(decimal(u64::from(a.port()), &mut digits));
            }
            // Rarer, and IPv6's shortening rules are not worth repeating here.
            SocketAddr::V6(a) => {
                let _ = write!(self.buf, "{a}");
            }
        }
        self.buf.push(b'"');
    }

    /// Nanoseconds as a number of milliseconds: the exact decimal, without trailing zeros.
    fn millis(&mut self, key: &str, ns: u64) {
        self.buf.extend_from_slice(key.as_bytes());
        let mut digits = [0u8; 20];
        self.buf
            .extend_from_slice(decimal(ns / 1_000_000, &mut digits));
        let mut frac = ns % 1_000_000;
        if frac > 0 {
            let mut places = 6;
            while frac % 10 == 0 {
                frac /= 10;
                places -= 1;
            }
            self.buf.push(b'.');
            let frac = decimal(frac, &mut digits);
            self.buf
                .extend(std::iter::repeat_n(b'0', places - frac.len()));
            self.buf.extend_from_slice(frac);
        }
    }

    /// `[[name, value], ...]`, in order.
    fn headers(&mut self, key: &str, m: &Message) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'[');
        for (i, (name, value)) in m.headers().enumerate() {
            self.buf
                .extend_from_slice(if i == 0 { b"[" } else { b",[" });
            // httparse takes only tokens as names: nothing in them needs escaping.
            self.buf.push(b'"');
            self.buf.extend_from_slice(name);
            self.buf.extend_from_slice(b"\",");
            json_string(self.buf, value);
            self.buf.push(b']');
        }
        self.buf.push(b']');
    }

    fn end(self) {
        self.buf.extend_from_slice(b"}\n");
    }
}

/// `bytes` as a JSON string, as serde_json writes it: text as is, the quote, the backslash and
/// control characters escaped, and each invalid UTF-8 sequence as U+FFFD (as
/// `String::from_utf8_lossy` does).
fn json_string(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    let mut rest = bytes;
    loop {
        // Plain ASCII, the usual case, is copied in runs.
        let plain = plain_ascii_len(rest);
        buf.extend_from_slice(&rest[..plain]);
        rest = &rest[plain..];
        let Some(&b) = rest.first() else { break };
        if b >= 0x80 {
            let chunk = rest.utf8_chunks().next().unwrap_or_else(|| unreachable!());
            let valid = chunk.valid().as_bytes();
            if valid.is_empty() {
                buf.extend_from_slice("\u{FFFD}".as_bytes());
                rest = &rest[chunk.invalid().len()..];
            } else {
                // Up to the next ASCII byte, which is on a character boundary.
                let n = valid.iter().position(|&b| b < 0x80).unwrap_or(valid.len());
                buf.extend_from_slice(&valid[..n]);
                rest = &rest[n..];
            }
            continue;
        }
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(b >> 4)]);
                buf.push(HEX[usize::from(b & 0xf)]);
            }
        }
        rest = &rest[1..];
    }
    buf.push(b'"');
}

/// How many bytes at the start of `bytes` a JSON string takes as they are: printable ASCII other
/// than the quote and the backslash. Eight bytes at a time: this runs over every byte printed.
fn plain_ascii_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of the result is set where `word` has a zero byte (exact for
    // the first one, which is all that is used).
    let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word & HIGH;
    let special = |w: u64| {
        (w & HIGH) // non-ASCII
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH) // below 0x20
            | zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
    };
    let mut words = bytes.chunks_exact(8);
    let mut i = 0;
    for word in &mut words {
        let found = special(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    // The last few bytes as one word too, padded with plain ones: short strings are common.
    let tail = words.remainder();
    let mut last = [b' '; 8];
    last[..tail.len()].copy_from_slice(tail);
    let found = special(u64::from_le_bytes(last));
    i + ((found.trailing_zeros() / 8) as usize).min(tail.len())
}

/// `v` in decimal, written at the end of `buf`.
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Who and where: process, thread, fd, role and addresses.
fn json_conn(o: &mut JsonLine<'_>, conn: &ConnInfo, ts: &str) {
    let m = &conn.meta;
    o.str(key!("ts"), ts.as_bytes());
    o.uint(key!("pid"), u64::from(m.tgid));
    o.uint(key!("tid"), u64::from(m.tid));
    o.str(key!("comm"), m.comm.bytes());
    o.int(key!("fd"), i64::from(m.fd));
    o.str(key!("role"), conn.role.as_str().as_bytes());
    match conn.endpoints {
        Some(e) => {
            o.addr(key!("local"), e.local);
            o.addr(key!("peer"), e.peer);
        }
        None => {
            o.null(key!("local"));
            o.null(key!("peer"));
        }
    }
}

/// The keys of one message's fields.
struct MessageKeys {
    headers: &'static str,
    body_bytes: &'static str,
    body: &'static str,
    body_cut: &'static str,
    complete: &'static str,
}

const REQUEST_KEYS: MessageKeys = MessageKeys {
    headers: key!("request_headers"),
    body_bytes: key!("request_body_bytes"),
    body: key!("request_body"),
    body_cut: key!("request_body_cut"),
    complete: key!("request_complete"),
};

const RESPONSE_KEYS: MessageKeys = MessageKeys {
    headers: key!("response_headers"),
    body_bytes: key!("response_body_bytes"),
    body: key!("response_body"),
    body_cut: key!("response_body_cut"),
    complete: key!("response_complete"),
};

/// Headers, body size, the body kept, whether it was cut, whether the message was complete.
fn json_message(o: &mut JsonLine<'_>, keys: &MessageKeys, m: &Message) {
    o.headers(keys.headers, m);
    o.uint(keys.body_bytes, m.body_bytes);
    o.str(keys.body, m.body());
    o.bool(keys.body_cut, m.body_cut());
    o.bool(keys.complete, m.complete);
}

/// From the request's first byte to the response's last.
fn latency_ns(request: Option<&Message>, response: Option<&Message>) -> Option<u64> {
    let (q, r) = (request?, response?);
    Some(r.end_ts_ns.saturating_sub(q.ts_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Comm, ConnMeta, Endpoints, Role};
    use serde_json::json;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T23:59:59.999999Z: a leap day.
        assert_eq!(
            rfc3339(1_709_251_199_999_999_000),
            "2024-02-29T23:59:59.999999Z"
        );
        assert_eq!(
            rfc3339(1_795_311_806_123_456_789),
            "2026-11-22T01:43:26.123456Z"
        );
        // Within a second only the microseconds are redone; across one, everything.
        let mut stamp = Stamp::default();
        for ns in [
            1_795_311_806_123_456_789,
            1_795_311_806_000_000_001,
            1_795_311_806_999_999_999,
            1_795_311_807_000_001_000,
            1_709_251_199_999_999_000,
        ] {
            assert_eq!(stamp.at(ns), rfc3339(ns));
        }
    }

    #[test]
    fn writes_decimals() {
        let mut buf = [0u8; 20];
        for v in [0, 7, 42, 1_000_000, u64::MAX] {
            assert_eq!(decimal(v, &mut buf), v.to_string().as_bytes());
        }
    }

    #[test]
    fn addresses_as_socket_addr_displays_them() {
        for text in [
            "0.0.0.0:0",
            "127.0.0.1:80",
            "9.10.99.100:8080",
            "255.254.200.199:65535",
            "[::1]:5000",
            "[2001:db8::ff00:42:8329]:443",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut buf = Vec::new();
            JsonLine { buf: &mut buf }.addr(key!("peer"), addr);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                format!(",\"peer\":\"{addr}\"")
            );
        }
    }

    #[test]
    fn json_strings_as_serde_json_writes_them() {
        let lossy = |b: &[u8]| serde_json::to_string(&String::from_utf8_lossy(b)).unwrap();
        for bytes in [
            &b""[..],
            b"plain /path?q=1",
            b"quote\" back\\slash",
            b"\n\r\t\x08\x0c\x00\x01\x1f\x7f",
            "h\u{e9}llo \u{1F600} \u{4e2d}\"".as_bytes(),
            b"bad \xff\xfe end",
            b"cut \xe2\x82",
            b"\xf0\x9f\x98\x80\xc3",
            b"\xed\xa0\x80 surrogate",
        ] {
            let mut buf = Vec::new();
            json_string(&mut buf, bytes);
            assert_eq!(String::from_utf8(buf).unwrap(), lossy(bytes), "{bytes:?}");
        }
    }

    #[test]
    fn plain_ascii_runs_end_at_the_first_special_byte() {
        let slow = |b: &[u8]| {
            b.iter()
                .position(|&c| c < 0x20 || c == b'"' || c == b'\\' || c >= 0x80)
                .unwrap_or(b.len())
        };
        let mut bytes = b"0123456789abcdefghijklmnopqrstuvwxyz".to_vec();
        let last = bytes.len() - 1;
        assert_eq!(plain_ascii_len(&bytes), bytes.len());
        for at in 0..bytes.len() {
            for special in [0u8, 0x1f, b'"', b'\\', 0x80, 0xff, 0x20, 0x7f, b'!', b'#'] {
                let keep = bytes[at];
                bytes[at] = special;
                // A later special byte must not hide an earlier one.
                bytes[last] = b'"';
                assert_eq!(plain_ascii_len(&bytes), slow(&bytes), "{at} {special}");
                bytes[at] = keep;
            }
        }
    }

    #[test]
    fn milliseconds_as_the_exact_decimal() {
        for (ns, text) in [
            (0, "0"),
            (1, "0.000001"),
            (86_672, "0.086672"),
            (1_000_000, "1"),
            (2_495_000, "2.495"),
            (1_234_000_010, "1234.00001"),
        ] {
            let mut buf = Vec::new();
            JsonLine { buf: &mut buf }.millis("", ns);
            assert_eq!(String::from_utf8(buf).unwrap(), text);
            // The same number as the shortest float display would give.
            assert_eq!(text.parse::<f64>().unwrap(), ns as f64 / 1e6);
        }
    }

    #[test]
    fn escapes_binary_and_indents_lines() {
        assert_eq!(
            escape_body(b"a\r\nb\x00\xff\xfe\tc", "  "),
            "  a\n  b\\u{0}\\xff\\xfe\tc"
        );
        assert_eq!(escape_body("héllo".as_bytes(), ""), "héllo");
    }

    fn message(start_line: &str, ts_ns: u64, body: &[u8], body_bytes: u64) -> Message {
        let headers = [("Host", "h"), ("X-A", "1"), ("X-A", "2")];
        let mut m = Message::build(start_line, &headers, body, body_bytes);
        m.ts_ns = ts_ns;
        m.end_ts_ns = ts_ns + 1_500_000;
        m
    }

    fn conn() -> ConnInfo {
        ConnInfo {
            meta: ConnMeta {
                tgid: 42,
                tid: 43,
                fd: 7,
                comm: Comm::new("nginx"),
            },
            role: Role::Server,
            endpoints: Some(Endpoints {
                local: "127.0.0.1:80".parse().unwrap(),
                peer: "[::1]:5000".parse().unwrap(),
            }),
        }
    }

    fn record(body: &[u8], body_bytes: u64, with_response: bool) -> Record {
        let request = message("POST /api?x=1 HTTP/1.1", 5_000, body, body_bytes);
        let response = message("HTTP/1.1 201 Created", 1_000_000, b"done", 4);
        Record::Exchange {
            conn: conn(),
            request: Some(request),
            response: with_response.then_some(response),
        }
    }

    fn print(format: Format, verbose: bool, rec: &Record) -> String {
        let mut p = Printer::new(
            Vec::new(),
            format,
            verbose,
            Clock::fixed(1_795_311_806_000_000_000),
        );
        p.print(rec).unwrap();
        String::from_utf8(p.into_inner()).unwrap()
    }

    #[test]
    fn text_line_and_verbose_details() {
        let rec = record(b"{\"a\":1}", 7, true);
        assert_eq!(
            print(Format::Text, false, &rec),
            "01:43:26.000005 nginx[42] server [::1]:5000 POST /api?x=1 HTTP/1.1 -> 201 Created 2.495ms req=7B resp=4B\n"
        );
        assert_eq!(
            print(Format::Text, true, &rec),
            "01:43:26.000005 nginx[42] server [::1]:5000 POST /api?x=1 HTTP/1.1 -> 201 Created 2.495ms req=7B resp=4B\n\
             \x20   > Host: h\n    > X-A: 1\n    > X-A: 2\n    >\n    > {\"a\":1}\n\
             \x20   < Host: h\n    < X-A: 1\n    < X-A: 2\n    <\n    < done\n"
        );
        let cut = record(b"abc", 10, false);
        assert_eq!(
            print(Format::Text, true, &cut),
            "01:43:26.000005 nginx[42] server [::1]:5000 POST /api?x=1 HTTP/1.1 -> (no response) req=10B resp=-\n\
             \x20   > Host: h\n    > X-A: 1\n    > X-A: 2\n    >\n    > abc\n    > [body cut: 3 of 10 bytes shown]\n"
        );
    }

    #[test]
    fn json_object_per_line() {
        let line = print(Format::Json, false, &record(b"abc", 10, true));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        assert!(line.starts_with("{\"kind\":\"exchange\",\"ts\":"), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({
                "kind": "exchange",
                "ts": "2026-11-22T01:43:26.000005Z",
                "pid": 42, "tid": 43, "comm": "nginx", "fd": 7,
                "role": "server", "local": "127.0.0.1:80", "peer": "[::1]:5000",
                "method": "POST", "target": "/api?x=1", "version": "HTTP/1.1",
                "request_headers": [["Host", "h"], ["X-A", "1"], ["X-A", "2"]],
                "request_body_bytes": 10, "request_body": "abc", "request_body_cut": true,
                "request_complete": true,
                "status": 201, "reason": "Created",
                "response_headers": [["Host", "h"], ["X-A", "1"], ["X-A", "2"]],
                "response_body_bytes": 4, "response_body": "done", "response_body_cut": false,
                "response_complete": true,
                "latency_ms": 2.495,
            })
        );
        let v: serde_json::Value =
            serde_json::from_str(&print(Format::Json, false, &record(b"", 0, false))).unwrap();
        assert_eq!(
            (&v["status"], &v["latency_ms"]),
            (&json!(null), &json!(null))
        );
    }

    #[test]
    fn malformed_records() {
        let rec = Record::Malformed {
            conn: conn(),
            direction: Direction::In,
            ts_ns: 0,
            reason: "invalid request: invalid token".into(),
        };
        assert_eq!(
            print(Format::Text, false, &rec),
            "01:43:26.000000 nginx[42] server [::1]:5000 malformed message received: invalid request: invalid token\n"
        );
        let v: serde_json::Value = serde_json::from_str(&print(Format::Json, false, &rec)).unwrap();
        assert_eq!(v["kind"], "malformed");
        assert_eq!(v["direction"], "in");
        assert_eq!(v["reason"], "invalid request: invalid token");
    }
}
