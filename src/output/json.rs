//! The JSON output: one object per line, written field by field in a fixed order straight into
//! the output buffer. Written by hand rather than with serde_json: over the pipeline benchmark
//! (scripts/bench-pipeline.sh) it took 12,729 instructions per exchange against 24,897 through
//! serde_json with derived `Serialize` on borrowed views (2026-12-01; that writer,
//! `json_serde.rs`, is kept in test builds as this one's oracle), most of the difference in
//! escaping bodies (8 bytes at a time here).

use std::net::SocketAddr;

use super::{latency_ns, push_int, push_socket_addr};
use crate::container::Identity;
use crate::decode::{Direction, Endpoints};
use crate::http::{Message, StartLine};
use crate::record::{ConnInfo, Record};

/// A JSON key as it follows an earlier field: `,"name":`.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}

/// One object per line, written field by field in a fixed order (no intermediate value).
pub(super) fn write(buf: &mut Vec<u8>, rec: &Record, ts: &str, who: Option<&Identity>) {
    match rec {
        Record::Malformed {
            conn,
            direction,
            reason,
            ..
        } => {
            let mut o = JsonLine::start(buf, "malformed");
            json_conn(&mut o, conn, ts, who);
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
            responder,
        } => {
            let (request, response) = (request.as_ref(), response.as_ref());
            let mut o = JsonLine::start(buf, "exchange");
            json_conn(&mut o, conn, ts, who);
            // Only where the response moved through another process or fd than the request.
            if let Some(r) = responder {
                o.uint(key!("response_pid"), u64::from(r.tgid));
                o.int(key!("response_fd"), i64::from(r.fd));
            }
            // Every key is there in every exchange: a message not seen has them null.
            match request {
                Some(m) => {
                    if let StartLine::Request { method, target } = m.start() {
                        // httparse takes only token characters in a method.
                        o.plain(key!("method"), method.as_bytes());
                        o.str(key!("target"), target.as_bytes());
                    }
                    o.plain(
                        key!("version"),
                        if m.version == 0 {
                            b"HTTP/1.0"
                        } else {
                            b"HTTP/1.1"
                        },
                    );
                    json_message(&mut o, &REQUEST_KEYS, m);
                }
                None => json_nulls(&mut o, &REQUEST_KEYS),
            }
            match response {
                Some(m) => {
                    if let StartLine::Response { status, reason } = m.start() {
                        o.uint(key!("status"), u64::from(status));
                        o.str(key!("reason"), reason);
                    }
                    json_message(&mut o, &RESPONSE_KEYS, m);
                }
                None => json_nulls(&mut o, &RESPONSE_KEYS),
            }
            match latency_ns(request, response) {
                Some(ns) => o.millis(key!("latency_ms"), ns),
                None => o.null(key!("latency_ms")),
            }
            // Only where bytes were skipped to find one of its messages.
            if request.is_some_and(|m| m.resynced) || response.is_some_and(|m| m.resynced) {
                o.bool(key!("resynced"), true);
            }
            o.end();
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
        buf.extend_from_slice(b"{\"kind\":\"");
        buf.extend_from_slice(kind.as_bytes());
        buf.push(b'"');
        Self { buf }
    }

    fn str(&mut self, key: &str, value: &[u8]) {
        self.buf.extend_from_slice(key.as_bytes());
        json_string(self.buf, value);
    }

    /// A string of ours that needs no escaping (a timestamp, a role, an HTTP token): quoted
    /// as it is, without json_string's scan.
    fn plain(&mut self, key: &str, value: &[u8]) {
        debug_assert_eq!(plain_ascii_len(value), value.len());
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'"');
        self.buf.extend_from_slice(value);
        self.buf.push(b'"');
    }

    fn uint(&mut self, key: &str, value: u64) {
        self.buf.extend_from_slice(key.as_bytes());
        push_int(self.buf, value);
    }

    fn int(&mut self, key: &str, value: i64) {
        self.buf.extend_from_slice(key.as_bytes());
        push_int(self.buf, value);
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
        push_socket_addr(self.buf, addr);
        self.buf.push(b'"');
    }

    /// Nanoseconds as a number of milliseconds: the exact decimal, without trailing zeros (a
    /// fixed-point number, so integers rather than a float's shortest form).
    fn millis(&mut self, key: &str, ns: u64) {
        self.buf.extend_from_slice(key.as_bytes());
        let mut digits = itoa::Buffer::new();
        self.buf
            .extend_from_slice(digits.format(ns / 1_000_000).as_bytes());
        let mut frac = ns % 1_000_000;
        if frac > 0 {
            let mut places = 6;
            while frac % 10 == 0 {
                frac /= 10;
                places -= 1;
            }
            self.buf.push(b'.');
            let frac = digits.format(frac);
            self.buf
                .extend(std::iter::repeat_n(b'0', places - frac.len()));
            self.buf.extend_from_slice(frac.as_bytes());
        }
    }

    /// `[[name, value], ...]`, in order.
    fn headers(&mut self, key: &str, m: &Message) {
        self.fields(key, m.headers());
    }

    /// `[[name, value], ...]`: a message's header or trailer fields.
    fn fields<'m>(&mut self, key: &str, fields: impl Iterator<Item = (&'m [u8], &'m [u8])>) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'[');
        for (i, (name, value)) in fields.enumerate() {
            // The parser takes only tokens as names: nothing in them needs escaping.
            self.buf
                .extend_from_slice(if i == 0 { b"[\"" } else { b",[\"" });
            self.buf.extend_from_slice(name);
            self.buf.extend_from_slice(b"\",");
            json_string(self.buf, value);
            self.buf.push(b']');
        }
        self.buf.push(b']');
    }

    /// `["a","b"]`: names of ours, which need no escaping.
    fn names(&mut self, key: &str, names: impl Iterator<Item = &'static str>) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'[');
        for (i, name) in names.enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.push(b'"');
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.push(b'"');
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
    const UTF8_WINDOW: usize = 64;
    // Most requests' bodies.
    if bytes.is_empty() {
        buf.extend_from_slice(b"\"\"");
        return;
    }
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
            // A window, not the rest: utf8_chunks validates as far as the text stays valid, and
            // text whose every word is non-ASCII would be validated again at each word. Four
            // bytes hold any character, and any invalid sequence, that starts the window.
            let window = &rest[..rest.len().min(UTF8_WINDOW)];
            let chunk = window
                .utf8_chunks()
                .next()
                .unwrap_or_else(|| unreachable!());
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

/// Who and where: process, thread, fd, role and addresses.
fn json_conn(o: &mut JsonLine<'_>, conn: &ConnInfo, ts: &str, who: Option<&Identity>) {
    let m = &conn.meta;
    o.plain(key!("ts"), ts.as_bytes());
    o.uint(key!("pid"), u64::from(m.tgid));
    o.uint(key!("tid"), u64::from(m.tid));
    o.str(key!("comm"), m.comm.bytes());
    if let Some(thread) = m.thread_apart() {
        o.str(key!("thread"), thread.bytes());
    }
    // Only for a process in a container (or a PID namespace of its own).
    if let Some(who) = who {
        if who.ns_pid != 0 {
            o.uint(key!("ns_pid"), u64::from(who.ns_pid));
        }
        if !who.container_id.is_empty() {
            o.str(key!("container_id"), who.container_id.as_bytes());
        }
        if !who.pod_uid.is_empty() {
            o.str(key!("pod_uid"), who.pod_uid.as_bytes());
        }
    }
    o.int(key!("fd"), i64::from(m.fd));
    o.plain(key!("role"), conn.role.as_str().as_bytes());
    if conn.tls {
        o.bool(key!("tls"), true);
    }
    match &conn.endpoints {
        Some(Endpoints::Inet { local, peer }) => {
            o.addr(key!("local"), *local);
            o.addr(key!("peer"), *peer);
        }
        // Paths, "@name" for abstract ones, null when unbound; the peer's process if known.
        Some(Endpoints::Unix(u)) => {
            for (key, addr) in [(key!("local"), &u.local), (key!("peer"), &u.peer)] {
                match addr.name() {
                    Some(name) => o.str(key, name.as_bytes()),
                    None => o.null(key),
                }
            }
            if let Some(pid) = u.peer_pid {
                o.uint(key!("peer_pid"), u64::from(pid));
            }
        }
        None => {
            o.null(key!("local"));
            o.null(key!("peer"));
        }
    }
}

/// The keys of one message's fields: its start line's and the others.
struct MessageKeys {
    start: [&'static str; 3],
    headers: &'static str,
    body_bytes: &'static str,
    body: &'static str,
    body_cut: &'static str,
    complete: &'static str,
    trailers: &'static str,
    lenient: &'static str,
}

const REQUEST_KEYS: MessageKeys = MessageKeys {
    start: [key!("method"), key!("target"), key!("version")],
    headers: key!("request_headers"),
    body_bytes: key!("request_body_bytes"),
    body: key!("request_body"),
    body_cut: key!("request_body_cut"),
    complete: key!("request_complete"),
    trailers: key!("request_trailers"),
    lenient: key!("request_lenient"),
};

const RESPONSE_KEYS: MessageKeys = MessageKeys {
    start: [key!("status"), key!("reason"), ""],
    headers: key!("response_headers"),
    body_bytes: key!("response_body_bytes"),
    body: key!("response_body"),
    body_cut: key!("response_body_cut"),
    complete: key!("response_complete"),
    trailers: key!("response_trailers"),
    lenient: key!("response_lenient"),
};

/// Headers, body size, the body kept, whether it was cut, whether the message was complete,
/// and a chunked body's trailer fields when it had any.
fn json_message(o: &mut JsonLine<'_>, keys: &MessageKeys, m: &Message) {
    o.headers(keys.headers, m);
    o.uint(keys.body_bytes, m.body_bytes);
    o.str(keys.body, m.body());
    o.bool(keys.body_cut, m.body_cut());
    o.bool(keys.complete, m.complete);
    if m.trailers_len() > 0 {
        o.fields(keys.trailers, m.trailers());
    }
    if !m.lenient.is_empty() {
        o.names(keys.lenient, m.lenient.names());
    }
}

/// A message that was not seen: its start line's keys and the others, each null. Kept out of
/// line: the common path, both messages seen, stays as small as before it existed.
#[cold]
#[inline(never)]
fn json_nulls(o: &mut JsonLine<'_>, keys: &MessageKeys) {
    let rest = [
        keys.headers,
        keys.body_bytes,
        keys.body,
        keys.body_cut,
        keys.complete,
    ];
    for key in keys.start.iter().chain(&rest).filter(|k| !k.is_empty()) {
        o.null(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Non-ASCII runs longer than the window, characters and invalid sequences across its
        // edge: pseudo-random strings of lead, continuation and ASCII bytes, and text.
        let mut x: u32 = 1;
        let mut next = || {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        };
        let pieces: [&[u8]; 8] = [
            b" ",
            b"a",
            "\u{436}".as_bytes(),
            "\u{4e2d}".as_bytes(),
            "\u{1F600}".as_bytes(),
            b"\x80",
            b"\xe2\x82",
            b"\xf0\x9f\x98",
        ];
        for _ in 0..3000 {
            let len = usize::from(next()) + 60;
            let mut bytes = Vec::new();
            while bytes.len() < len {
                match next() % 4 {
                    0 => bytes.push(next()),
                    _ => bytes.extend_from_slice(pieces[usize::from(next() % 8)]),
                }
            }
            let mut buf = Vec::new();
            json_string(&mut buf, &bytes);
            assert_eq!(String::from_utf8(buf).unwrap(), lossy(&bytes), "{bytes:?}");
        }
        let text = "\u{43f}\u{440}\u{438}\u{432}\u{435}\u{442} ".repeat(200);
        let mut buf = Vec::new();
        json_string(&mut buf, text.as_bytes());
        assert_eq!(String::from_utf8(buf).unwrap(), lossy(text.as_bytes()));
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
}
