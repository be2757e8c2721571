//! Output: a readable line per exchange (plus headers and bodies with -v), one JSON object per
//! line, or a HAR document. Writes go through a buffer that the caller flushes once per batch of
//! events.

mod har;
mod json;
#[doc(hidden)]
#[cfg(test)]
mod json_serde;
mod pcapng;
mod text;
pub mod top;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use rustc_hash::FxHashMap;

use crate::container::Identity;
use crate::http::Message;
use crate::record::Record;
use crate::tracker::Tapped;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// HAR 1.2, for browsers' developer tools and HAR viewers: one document, closed at the end
    Har,
    /// pcapng for Wireshark and tshark: each connection as a TCP stream (binary: to a file or a pipe)
    Pcapng,
    /// serde_json's JSON, the tests' oracle for `Json` (json_serde.rs): in test builds only.
    #[cfg(test)]
    #[value(skip)]
    JsonSerde,
    /// The live view (--top): records go to its board, not to a stream.
    #[value(skip)]
    Top,
    /// Records go nowhere: `-w` without `-o` parses only to redact the recording.
    #[value(skip)]
    Discard,
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

    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: what a capture file keeps of the clock.
    pub fn offset_ns(&self) -> i128 {
        self.realtime_minus_monotonic_ns
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

/// RFC 3339 UTC with microseconds, e.g. 2026-11-22T01:43:26.123456Z.
pub fn rfc3339(wall_ns: i128) -> String {
    let since_epoch = Duration::from_nanos(u64::try_from(wall_ns).unwrap_or(0));
    humantime::format_rfc3339_micros(UNIX_EPOCH + since_epoch).to_string()
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
        // In u64, not i128, whose divisions were most of the 270 instructions this took. Before
        // the epoch is the epoch, as for rfc3339().
        let micros = u64::try_from(wall_ns).unwrap_or(0) / 1_000;
        let sec = (micros / 1_000_000) as i64;
        if self.sec != Some(sec) {
            self.sec = Some(sec);
            self.text = rfc3339(wall_ns);
            return &self.text;
        }
        let mut us = micros % 1_000_000;
        // ".uuuuuu" ends just before the final "Z".
        let end = self.text.len() - 1;
        // SAFETY: only ASCII digits overwrite the ASCII digits of the microseconds, so the
        // string stays UTF-8.
        let digits = unsafe { &mut self.text.as_mut_vec()[end - 6..end] };
        for d in digits.iter_mut().rev() {
            *d = b'0' + (us % 10) as u8;
            us /= 10;
        }
        &self.text
    }
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
    /// Records written: HAR separates entries with commas.
    written: u64,
    /// pcapng: the byte streams, not the records.
    pcap: Option<pcapng::Writer>,
    /// The live view's model.
    board: Option<top::Board>,
    /// The traced processes in containers, by PID.
    identities: FxHashMap<u32, Identity>,
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
            written: 0,
            pcap: None,
            board: None,
            identities: FxHashMap::default(),
        }
        .opened()
    }

    /// The document's start, for the formats that have one.
    fn opened(mut self) -> Self {
        match self.format {
            Format::Har => self.buf.extend_from_slice(har::prologue().as_bytes()),
            Format::Pcapng => match pcapng::Writer::new() {
                Ok(mut w) => {
                    self.buf.extend_from_slice(&w.take());
                    self.pcap = Some(w);
                }
                Err(e) => log::error!("starting the pcapng output: {e}"),
            },
            _ => {}
        }
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Process `pid`'s container and namespaced PID, for every record of it.
    pub fn identify(&mut self, pid: u32, who: Identity) {
        if !who.is_empty() {
            self.identities.insert(pid, who);
        }
    }

    /// Give the records to the live view's `board` (Format::Top).
    pub fn with_board(mut self, board: top::Board) -> Self {
        self.board = Some(board);
        self
    }

    pub fn board(&mut self) -> Option<&mut top::Board> {
        self.board.as_mut()
    }

    /// Bytes written as they are, between records (the statistics' JSON lines).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.flush()
    }

    /// Whether this output is made of the connections' byte streams (`tapped`), not records.
    pub fn wants_streams(&self) -> bool {
        self.format == Format::Pcapng
    }

    /// One event of a connection's byte streams, as the tracker applied it.
    pub fn tapped(&mut self, t: &Tapped) -> io::Result<()> {
        if let Some(w) = self.pcap.as_mut() {
            let who = match t {
                Tapped::Event { chunk, .. } => self.identities.get(&chunk.meta.tgid),
                Tapped::Gap { .. } | Tapped::Ended { .. } => None,
            };
            w.tapped(t, &self.clock, who)?;
            self.buf.extend_from_slice(&w.take());
            if self.buf.len() >= WRITE_AT {
                self.write_out()?;
            }
        }
        Ok(())
    }

    /// The document's end, for the formats that have one; then everything flushed.
    pub fn finish(&mut self) -> io::Result<()> {
        if self.format == Format::Har {
            self.buf.extend_from_slice(har::EPILOGUE.as_bytes());
        }
        self.flush()
    }

    pub fn print(&mut self, rec: &Record) -> io::Result<()> {
        let ts = self.stamp.at(self.clock.wall_ns(rec.ts_ns()));
        let who = self.identities.get(&rec.conn().meta.tgid);
        match self.format {
            Format::Text => text::write(&mut self.buf, rec, ts, who, self.verbose)?,
            Format::Json => json::write(&mut self.buf, rec, ts, who),
            #[cfg(test)]
            Format::JsonSerde => json_serde::write(&mut self.buf, rec, ts),
            Format::Har => {
                if !har::write(&mut self.buf, rec, ts, who, self.written == 0) {
                    return Ok(());
                }
            }
            Format::Pcapng | Format::Discard => return Ok(()),
            Format::Top => {
                if let Some(board) = self.board.as_mut() {
                    text::write(&mut self.buf, rec, ts, who, false)?;
                    board.add(rec, &String::from_utf8_lossy(&self.buf));
                    self.buf.clear();
                }
                return Ok(());
            }
        }
        self.written += 1;
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
}

/// Appends `n` in decimal.
fn push_int(buf: &mut Vec<u8>, n: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Each octet's decimal text: its length, then its digits.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let o = i as u8;
        t[i] = if o >= 100 {
            [3, b'0' + o / 100, b'0' + o / 10 % 10, b'0' + o % 10]
        } else if o >= 10 {
            [2, b'0' + o / 10, b'0' + o % 10, 0]
        } else {
            [1, b'0' + o, 0, 0]
        };
        i += 1;
    }
    t
};

/// Appends `addr` as `SocketAddr` displays it. IPv4, the usual case, is built on the stack from
/// a table and appended once: through `Display` it took about 1,000 instructions, a push per
/// byte 250.
fn push_socket_addr(buf: &mut Vec<u8>, addr: SocketAddr) {
    let SocketAddr::V4(a) = addr else {
        // Rarer, and IPv6's shortening rules are not worth repeating here.
        let _ = write!(buf, "{addr}");
        return;
    };
    // "255.255.255.255:65535", and room for a whole entry's three digits at the last octet.
    let mut text = [0u8; 24];
    let mut n = 0;
    for octet in a.ip().octets() {
        let [len, digits @ ..] = OCTET_TEXT[usize::from(octet)];
        text[n..n + 3].copy_from_slice(&digits);
        text[n + usize::from(len)] = b'.';
        n += usize::from(len) + 1;
    }
    text[n - 1] = b':';
    let mut port = itoa::Buffer::new();
    let port = port.format(a.port()).as_bytes();
    buf.extend_from_slice(&text[..n]);
    buf.extend_from_slice(port);
}

/// From the request's first byte to the response's last.
fn latency_ns(request: Option<&Message>, response: Option<&Message>) -> Option<u64> {
    let (q, r) = (request?, response?);
    Some(r.end_ts_ns.saturating_sub(q.ts_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            push_socket_addr(&mut buf, addr);
            assert_eq!(String::from_utf8(buf).unwrap(), addr.to_string());
        }
    }
    use crate::decode::{Comm, ConnMeta, Direction, Endpoints, Role};
    use crate::http::RequestKind;
    use crate::record::ConnInfo;
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
            -5, // before the epoch: the epoch
            1_000,
            1_795_311_806_123_456_789,
            1_795_311_806_000_000_001,
            1_795_311_806_999_999_999,
            1_795_311_807_000_001_000,
            1_709_251_199_999_999_000,
        ] {
            assert_eq!(stamp.at(ns), rfc3339(ns));
        }
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
                thread: Comm::new("nginx"),
            },
            role: Role::Server,
            endpoints: Some(Endpoints::Inet {
                local: "127.0.0.1:80".parse().unwrap(),
                peer: "[::1]:5000".parse().unwrap(),
            }),
            tls: false,
        }
    }

    fn record(body: &[u8], body_bytes: u64, with_response: bool) -> Record {
        let request = message("POST /api?x=1 HTTP/1.1", 5_000, body, body_bytes);
        let response = message("HTTP/1.1 201 Created", 1_000_000, b"done", 4);
        Record::Exchange {
            conn: conn(),
            request: Some(request),
            response: with_response.then_some(response),
            responder: None,
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

    /// Nothing from the traffic, or a process's own name, reaches a terminal raw: C0 and C1
    /// controls and bidirectional overrides are escaped wherever text shows them (start
    /// line, header fields, bodies, the process name), through the real parser. (httparse
    /// takes no such character in a reason phrase.)
    #[test]
    fn text_escapes_what_a_terminal_would_obey() {
        let mut request = Message::build(
            "GET /a\u{202e}gpj.exe HTTP/1.1",
            &[("X-Evil", "a\u{9b}31mb\u{2066}c")],
            "x\u{9b}y\u{202e}z".as_bytes(),
            8,
        );
        request.ts_ns = 5_000;
        request.end_ts_ns = 5_000;
        let mut response = Message::build("HTTP/1.1 200 OK", &[], b"", 0);
        response.ts_ns = 1_000_000;
        response.end_ts_ns = 1_000_000;
        let mut c = conn();
        c.meta.comm = Comm::new("ev\x1b]0;il");
        let rec = Record::Exchange {
            conn: c,
            request: Some(request),
            response: Some(response),
            responder: None,
        };
        assert_eq!(
            print(Format::Text, true, &rec),
            "01:43:26.000005 ev\\u{1b}]0;il[42] server [::1]:5000 GET /a\\u{202e}gpj.exe \
             HTTP/1.1 -> 200 OK 0.995ms req=8B resp=0B [lenient]\n\
             \x20   > [read leniently: target-char]\n\
             \x20   > X-Evil: a\\u{9b}31mb\\u{2066}c\n    >\n    > x\\u{9b}y\\u{202e}z\n"
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
        // An exchange without a response has every response key, null.
        let v: serde_json::Value =
            serde_json::from_str(&print(Format::Json, false, &record(b"", 0, false))).unwrap();
        for key in [
            "status",
            "reason",
            "response_headers",
            "response_body_bytes",
            "response_body",
            "response_body_cut",
            "response_complete",
            "latency_ms",
        ] {
            assert_eq!(v.get(key), Some(&json!(null)), "{key}");
        }
        // A response whose request was not seen has every request key, null.
        let Record::Exchange { conn, request, .. } = record(b"", 0, true) else {
            unreachable!()
        };
        let rec = Record::Exchange {
            conn,
            request: None,
            response: request.map(|_| message("HTTP/1.1 200 OK", 9, b"", 0)),
            responder: None,
        };
        let v: serde_json::Value = serde_json::from_str(&print(Format::Json, false, &rec)).unwrap();
        for key in [
            "method",
            "target",
            "version",
            "request_headers",
            "request_body_bytes",
            "request_body",
            "request_body_cut",
            "request_complete",
            "latency_ms",
        ] {
            assert_eq!(v.get(key), Some(&json!(null)), "{key}");
        }
        assert_eq!(v["status"], 200);
    }

    #[test]
    fn a_process_in_a_container_says_which_and_its_pid_there() {
        let id = "c23cf607e7236f0e3dd01b8b6e42cbc5d2a8e3b5a1a0c9b65d8f6a1d2b3c4e5f";
        let printed = |format: Format| {
            let mut p = Printer::new(Vec::new(), format, false, Clock::fixed(0));
            p.identify(
                42,
                Identity {
                    container_id: id.into(),
                    pod_uid: "0f6c1c5e-4b1d-4d3e-9a0a-1b2c3d4e5f60".into(),
                    ns_pid: 7,
                },
            );
            // Another process: on the host, nothing is added.
            p.identify(43, Identity::default());
            p.print(&record(b"", 0, true)).unwrap();
            p.finish().unwrap();
            String::from_utf8(p.into_inner()).unwrap()
        };
        assert!(printed(Format::Text).contains(" nginx[42/7 c23cf607e723] server "));
        let v: serde_json::Value = serde_json::from_str(&printed(Format::Json)).unwrap();
        assert_eq!(
            (&v["ns_pid"], &v["container_id"], &v["pod_uid"]),
            (
                &json!(7),
                &json!(id),
                &json!("0f6c1c5e-4b1d-4d3e-9a0a-1b2c3d4e5f60")
            )
        );
        let har: serde_json::Value = serde_json::from_str(&printed(Format::Har)).unwrap();
        let entry = &har["log"]["entries"][0];
        assert_eq!(
            (&entry["_ns_pid"], &entry["_container_id"]),
            (&json!(7), &json!(id))
        );
        // A process on the host: no key at all.
        let host = print(Format::Json, false, &record(b"", 0, true));
        assert!(
            !host.contains("ns_pid") && !host.contains("container_id"),
            "{host}"
        );
    }

    /// A chunked response's trailer fields: after the body with -v, in JSON (both writers
    /// alike) and HAR, and in HAR's headersSize; a message without them has no key for them.
    #[test]
    fn trailer_fields_in_every_format() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndone\r\n0\r\nX-Sum: 9\r\nX-Why: ok\r\n\r\n";
        let (out, _) = crate::http::parse_pieces(&[chunked], &[RequestKind::Other], 64);
        let Some(crate::http::Parsed::Message(mut response)) = out.into_iter().next() else {
            panic!("a response");
        };
        response.ts_ns = 1_000_000;
        response.end_ts_ns = 2_000_000;
        let Record::Exchange { conn, request, .. } = record(b"", 0, false) else {
            unreachable!()
        };
        let rec = Record::Exchange {
            conn,
            request,
            response: Some(response),
            responder: None,
        };
        assert!(print(Format::Text, true, &rec).ends_with(
            "    < Transfer-Encoding: chunked\n    <\n    < done\n    < [trailer fields]\n    < X-Sum: 9\n    < X-Why: ok\n"
        ));
        let json = print(Format::Json, false, &rec);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["response_trailers"],
            json!([["X-Sum", "9"], ["X-Why", "ok"]])
        );
        assert_eq!(v.get("request_trailers"), None);
        let oracle: serde_json::Value =
            serde_json::from_str(&print(Format::JsonSerde, false, &rec)).unwrap();
        assert_eq!(v, oracle);
        let mut p = Printer::new(Vec::new(), Format::Har, false, Clock::fixed(0));
        p.print(&rec).unwrap();
        p.finish().unwrap();
        let har: serde_json::Value = serde_json::from_slice(&p.into_inner()).unwrap();
        let r = &har["log"]["entries"][0]["response"];
        assert_eq!(
            r["_trailers"],
            json!([{"name": "X-Sum", "value": "9"}, {"name": "X-Why", "value": "ok"}])
        );
        // The head (47 bytes) and the trailer fields (21).
        assert_eq!(
            (&r["headersSize"], &r["bodySize"]),
            (&json!(47 + 21), &json!(4))
        );
        assert_eq!(har["log"]["entries"][0]["request"].get("_trailers"), None);
    }

    /// A request read leniently and a response found after a resync: the JSON keys (both
    /// writers alike), the text marks, HAR's comments; a strict exchange has none of them.
    #[test]
    fn lenient_and_resynced_in_every_format() {
        let Record::Exchange {
            conn,
            request: Some(mut request),
            response: Some(mut response),
            ..
        } = record(b"", 0, true)
        else {
            unreachable!()
        };
        request.lenient = crate::http::Lenient::BARE_LF | crate::http::Lenient::TARGET_CHAR;
        response.resynced = true;
        let rec = Record::Exchange {
            conn,
            request: Some(request),
            response: Some(response),
            responder: None,
        };
        let v: serde_json::Value = serde_json::from_str(&print(Format::Json, false, &rec)).unwrap();
        assert_eq!(v["request_lenient"], json!(["bare-lf", "target-char"]));
        assert_eq!(
            (v.get("response_lenient"), &v["resynced"]),
            (None, &json!(true))
        );
        let oracle: serde_json::Value =
            serde_json::from_str(&print(Format::JsonSerde, false, &rec)).unwrap();
        assert_eq!(v, oracle);
        let text = print(Format::Text, true, &rec);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .ends_with("resp=4B [lenient] [resynced]"),
            "{text}"
        );
        assert!(
            text.contains("\n    > [read leniently: bare-lf, target-char]\n"),
            "{text}"
        );
        assert!(
            text.contains("\n    < [found after bytes skipped to resynchronise]\n"),
            "{text}"
        );
        let mut p = Printer::new(Vec::new(), Format::Har, false, Clock::fixed(0));
        p.print(&rec).unwrap();
        p.finish().unwrap();
        let har: serde_json::Value = serde_json::from_slice(&p.into_inner()).unwrap();
        let entry = &har["log"]["entries"][0];
        assert_eq!(
            (
                &entry["request"]["comment"],
                entry["response"].get("comment")
            ),
            (&json!("read leniently: bare-lf, target-char"), None)
        );
        assert_eq!(
            entry["comment"],
            "found after bytes skipped to resynchronise"
        );
        // Strict: no key, no mark.
        let strict = record(b"", 0, true);
        let line = print(Format::Json, false, &strict);
        assert!(
            !line.contains("lenient") && !line.contains("resynced"),
            "{line}"
        );
        let text = print(Format::Text, true, &strict);
        assert!(
            !text.contains("[lenient]") && !text.contains("[resynced]") && !text.contains("[read"),
            "{text}"
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
