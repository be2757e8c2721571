//! Output: a readable line per exchange (plus headers and bodies with -v), or one JSON object
//! per line. Writes go through a buffer that the caller flushes once per batch of events.

use std::io::{self, Write};

use crate::conn::{ConnInfo, Direction, Record};
use crate::http::{Headers, Message, StartLine};

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

    #[cfg(test)]
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

pub struct Printer<W: Write> {
    out: W,
    format: Format,
    verbose: bool,
    clock: Clock,
    stamp: Stamp,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, verbose: bool, clock: Clock) -> Self {
        Self {
            out,
            format,
            verbose,
            clock,
            stamp: Stamp::default(),
        }
    }

    pub fn print(&mut self, rec: &Record) -> io::Result<()> {
        match self.format {
            Format::Text => self.print_text(rec),
            Format::Json => self.print_json(rec),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
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
                return writeln!(self.out, "malformed message {what}: {reason}");
            }
        };
        self.text_prefix(conn, rec.ts_ns())?;
        match request.map(|m| (&m.start, m)) {
            Some((StartLine::Request { method, target }, m)) => {
                write!(self.out, "{method} {target} HTTP/1.{}", m.version)?;
                if !m.complete {
                    write!(self.out, " (incomplete)")?;
                }
            }
            _ => write!(self.out, "(request not seen)")?,
        }
        match response.map(|m| (&m.start, m)) {
            Some((StartLine::Response { status, reason }, m)) => {
                write!(self.out, " -> {status}")?;
                if !reason.is_empty() {
                    write!(self.out, " {reason}")?;
                }
                if !m.complete {
                    write!(self.out, " (incomplete)")?;
                }
                if let Some(ms) = latency_ms(request, response) {
                    write!(self.out, " {ms:.3}ms")?;
                }
            }
            _ => write!(self.out, " -> (no response)")?,
        }
        let size =
            |m: Option<&Message>| m.map_or("-".to_string(), |m| format!("{}B", m.body_bytes));
        writeln!(self.out, " req={} resp={}", size(request), size(response))?;
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
            self.out,
            "{} {}[{}] {} ",
            &stamp[11..stamp.len() - 1],
            m.comm,
            m.tgid,
            conn.role.as_str()
        )?;
        match conn.endpoints {
            Some(e) => write!(self.out, "{} ", e.peer),
            None => write!(self.out, "fd={} ", m.fd),
        }
    }

    /// Headers and the start of the body, each line marked '>' (request) or '<' (response).
    fn print_details(&mut self, m: &Message, mark: char) -> io::Result<()> {
        let indent = format!("    {mark} ");
        for (name, value) in m.headers.iter() {
            writeln!(self.out, "{indent}{name}: {value}")?;
        }
        let shown = &m.body[..m.body.len().min(TEXT_BODY_PREVIEW)];
        if !shown.is_empty() {
            // A final line break would only print an empty marked line.
            let text = shown.strip_suffix(b"\n").unwrap_or(shown);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            writeln!(self.out, "{}", indent.trim_end())?;
            writeln!(self.out, "{}", escape_body(text, &indent))?;
        }
        if (shown.len() as u64) < m.body_bytes {
            writeln!(
                self.out,
                "{indent}[body cut: {} of {} bytes shown]",
                shown.len(),
                m.body_bytes
            )?;
        }
        Ok(())
    }

    /// One object per line, written field by field in a fixed order (no intermediate value).
    fn print_json(&mut self, rec: &Record) -> io::Result<()> {
        let ts = self.stamp.at(self.clock.wall_ns(rec.ts_ns()));
        let mut o = JsonLine::new(&mut self.out);
        match rec {
            Record::Malformed {
                conn,
                direction,
                reason,
                ..
            } => {
                o.str("kind", "malformed")?;
                json_conn(&mut o, conn, ts)?;
                o.str(
                    "direction",
                    match direction {
                        Direction::In => "in",
                        Direction::Out => "out",
                    },
                )?;
                o.str("reason", reason)?;
            }
            Record::Exchange {
                conn,
                request,
                response,
            } => {
                let (request, response) = (request.as_ref(), response.as_ref());
                o.str("kind", "exchange")?;
                json_conn(&mut o, conn, ts)?;
                if let Some(m) = request {
                    if let StartLine::Request { method, target } = &m.start {
                        o.str("method", method)?;
                        o.str("target", target)?;
                    }
                    o.str(
                        "version",
                        if m.version == 0 {
                            "HTTP/1.0"
                        } else {
                            "HTTP/1.1"
                        },
                    )?;
                    json_message(&mut o, &REQUEST_KEYS, m)?;
                }
                match response.map(|m| &m.start) {
                    Some(StartLine::Response { status, reason }) => {
                        o.int("status", *status)?;
                        o.str("reason", reason)?;
                    }
                    _ => o.null("status")?,
                }
                if let Some(m) = response {
                    json_message(&mut o, &RESPONSE_KEYS, m)?;
                }
                match latency_ms(request, response) {
                    Some(ms) => o.raw("latency_ms", ms)?,
                    None => o.null("latency_ms")?,
                }
            }
        }
        o.end()
    }
}

/// Writes one JSON object as a line, field by field.
struct JsonLine<'w, W: Write> {
    out: &'w mut W,
    first: bool,
}

impl<'w, W: Write> JsonLine<'w, W> {
    fn new(out: &'w mut W) -> Self {
        Self { out, first: true }
    }

    /// `{"key":` or `,"key":`, without the formatting machinery: this runs a dozen times a line.
    fn key(&mut self, key: &str) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"{\"" } else { b",\"" })?;
        self.first = false;
        self.out.write_all(key.as_bytes())?;
        self.out.write_all(b"\":")
    }

    fn string(&mut self, s: &str) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, s).map_err(io::Error::other)
    }

    fn str(&mut self, key: &str, value: &str) -> io::Result<()> {
        self.key(key)?;
        self.string(value)
    }

    fn int(&mut self, key: &str, value: impl Into<i64>) -> io::Result<()> {
        self.key(key)?;
        let mut buf = [0u8; 20];
        self.out.write_all(decimal(value.into(), &mut buf))
    }

    fn uint(&mut self, key: &str, value: u64) -> io::Result<()> {
        match i64::try_from(value) {
            Ok(v) => self.int(key, v),
            Err(_) => self.raw(key, value),
        }
    }

    fn bool(&mut self, key: &str, value: bool) -> io::Result<()> {
        self.key(key)?;
        self.out.write_all(if value { b"true" } else { b"false" })
    }

    fn null(&mut self, key: &str) -> io::Result<()> {
        self.key(key)?;
        self.out.write_all(b"null")
    }

    /// Anything else that is valid JSON as it displays (a float, a quoted address).
    fn raw(&mut self, key: &str, value: impl std::fmt::Display) -> io::Result<()> {
        self.key(key)?;
        write!(self.out, "{value}")
    }

    /// `[[name, value], ...]`, in order.
    fn headers(&mut self, key: &str, headers: &Headers) -> io::Result<()> {
        self.key(key)?;
        self.out.write_all(b"[")?;
        for (i, (name, value)) in headers.iter().enumerate() {
            self.out.write_all(if i == 0 { b"[" } else { b",[" })?;
            self.string(name)?;
            self.out.write_all(b",")?;
            self.string(&value)?;
            self.out.write_all(b"]")?;
        }
        self.out.write_all(b"]")
    }

    fn end(self) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"{}\n" } else { b"}\n" })
    }
}

/// `v` in decimal, written at the end of `buf`.
fn decimal(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Who and where: process, thread, fd, role and addresses.
fn json_conn<W: Write>(o: &mut JsonLine<'_, W>, conn: &ConnInfo, ts: &str) -> io::Result<()> {
    let m = &conn.meta;
    o.str("ts", ts)?;
    o.int("pid", m.tgid)?;
    o.int("tid", m.tid)?;
    match m.comm.as_str() {
        Some(comm) => o.str("comm", comm)?,
        None => o.str("comm", &m.comm.to_string_lossy())?,
    }
    o.int("fd", m.fd)?;
    o.str("role", conn.role.as_str())?;
    // Addresses need no escaping.
    match conn.endpoints {
        Some(e) => {
            o.raw("local", format_args!("\"{}\"", e.local))?;
            o.raw("peer", format_args!("\"{}\"", e.peer))
        }
        None => {
            o.null("local")?;
            o.null("peer")
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
    headers: "request_headers",
    body_bytes: "request_body_bytes",
    body: "request_body",
    body_cut: "request_body_cut",
    complete: "request_complete",
};

const RESPONSE_KEYS: MessageKeys = MessageKeys {
    headers: "response_headers",
    body_bytes: "response_body_bytes",
    body: "response_body",
    body_cut: "response_body_cut",
    complete: "response_complete",
};

/// Headers, body size, the body kept, whether it was cut, whether the message was complete.
fn json_message<W: Write>(
    o: &mut JsonLine<'_, W>,
    keys: &MessageKeys,
    m: &Message,
) -> io::Result<()> {
    o.headers(keys.headers, &m.headers)?;
    o.uint(keys.body_bytes, m.body_bytes)?;
    o.str(keys.body, &String::from_utf8_lossy(&m.body))?;
    o.bool(keys.body_cut, m.body_cut())?;
    o.bool(keys.complete, m.complete)
}

/// From the request's first byte to the response's last.
fn latency_ms(request: Option<&Message>, response: Option<&Message>) -> Option<f64> {
    let (q, r) = (request?, response?);
    Some(r.end_ts_ns.saturating_sub(q.ts_ns) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Comm, ConnMeta, Endpoints, Role};
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
        for v in [0, 7, -1, 42, 1_000_000, i64::MAX, i64::MIN + 1] {
            assert_eq!(decimal(v, &mut buf), v.to_string().as_bytes());
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

    fn message(start: StartLine, ts_ns: u64, body: &[u8], body_bytes: u64) -> Message {
        Message {
            ts_ns,
            end_ts_ns: ts_ns + 1_500_000,
            start,
            version: 1,
            headers: Headers::from_pairs(&[("Host", "h"), ("X-A", "1"), ("X-A", "2")]),
            body_bytes,
            body: body.to_vec(),
            body_missing_bytes: 0,
            complete: true,
        }
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
        let request = message(
            StartLine::Request {
                method: "POST".into(),
                target: "/api?x=1".into(),
            },
            5_000,
            body,
            body_bytes,
        );
        let response = message(
            StartLine::Response {
                status: 201,
                reason: "Created".into(),
            },
            1_000_000,
            b"done",
            4,
        );
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
