//! Redaction decided on each connection's byte streams, not per event: a key split across two
//! events (`{"passwo` + `rd":"..."}`), a header line across two reads, a chunked body whose
//! chunks cut a key. A connection's events are held, in order, until the direction they carry
//! is between messages again (the tracker's parser says so: `Tapped::settled`); the bytes of the
//! whole messages held are then redacted together, at the same length, and the events released.
//! Outputs made of the byte streams take them from here: pcapng, and the `-w` recording.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::fields::{body, body_kind, multipart, sniffed_kind, BodyKind};
use super::{Redactor, Style};
use crate::decode::{CallPos, ChunkKind};
use crate::stream::Tapped;

/// Bytes held per connection for messages not whole yet; past it what is held is redacted as it
/// stands (a streamed body) and let go.
const MAX_HELD_PER_CONN: usize = 1 << 20;
/// Bytes held in all; past it every connection lets go of what it holds.
const MAX_HELD: usize = 64 << 20;

/// An event held, and whether its bytes are decided (redacted as needed).
struct Entry {
    tapped: Tapped,
    decided: bool,
    changed: bool,
}

#[derive(Default)]
struct ConnHeld {
    queue: VecDeque<Entry>,
    bytes: usize,
}

/// Events released: each with whether redaction changed its bytes.
pub type Released = Vec<(Tapped, bool)>;

#[derive(Default)]
pub struct StreamRedactor {
    conns: FxHashMap<u64, ConnHeld>,
    held: usize,
}

impl StreamRedactor {
    /// Take the next event the tracker applied; what is decided goes to `out`, in each
    /// connection's order.
    pub fn push(&mut self, r: &Redactor, t: Tapped, out: &mut Released) {
        let (conn_id, data_dir, settled, ends) = match &t {
            Tapped::Event { chunk, settled } => match &chunk.kind {
                ChunkKind::Data(d) => (chunk.conn_id, Some(d.direction.index()), *settled, false),
                ChunkKind::Open { .. } => (chunk.conn_id, None, false, false),
                ChunkKind::Close => (chunk.conn_id, None, false, true),
            },
            Tapped::Gap { conn_id } | Tapped::Ended { conn_id } => (*conn_id, None, false, true),
        };
        let Some(dir) = data_dir else {
            // A close or a gap: what is held before it is decided as it stands. An opening
            // waits behind what is held, if anything is.
            if ends {
                self.release_conn(r, conn_id, out);
            } else if let Some(mut c) = self.conns.remove(&conn_id) {
                c.queue.push_back(Entry {
                    tapped: t,
                    decided: true,
                    changed: false,
                });
                self.put_back(conn_id, c, out);
                return;
            }
            out.push((t, false));
            return;
        };
        if settled && !self.conns.contains_key(&conn_id) {
            // The common case: a whole message (or several) in one event.
            let mut e = Entry {
                tapped: t,
                decided: false,
                changed: false,
            };
            decide(r, std::slice::from_mut(&mut e));
            out.push((e.tapped, e.changed));
            return;
        }
        let mut c = self.conns.remove(&conn_id).unwrap_or_default();
        let n = t.bytes_len();
        c.bytes += n;
        self.held += n;
        c.queue.push_back(Entry {
            tapped: t,
            decided: false,
            changed: false,
        });
        if settled {
            c.decide(r, dir);
        }
        if c.bytes > MAX_HELD_PER_CONN {
            c.decide_all(r);
        }
        self.put_back(conn_id, c, out);
        if self.held > MAX_HELD {
            self.release_all(r, out);
        }
    }

    /// Release `c`'s decided events from the front, and keep it if it holds more.
    fn put_back(&mut self, conn_id: u64, mut c: ConnHeld, out: &mut Released) {
        let before = c.bytes;
        c.release(out);
        self.held -= before - c.bytes;
        if !c.queue.is_empty() {
            self.conns.insert(conn_id, c);
        }
    }

    /// Tracing ended, or memory is short: every event held is decided as it stands and released.
    pub fn release_all(&mut self, r: &Redactor, out: &mut Released) {
        for (_, mut c) in self.conns.drain() {
            c.decide_all(r);
            c.release(out);
        }
        self.held = 0;
    }

    /// Let go of what connection `conn_id` holds, redacted as it stands (a recording cannot
    /// wait longer for it).
    pub fn release_conn(&mut self, r: &Redactor, conn_id: u64, out: &mut Released) {
        if let Some(mut c) = self.conns.remove(&conn_id) {
            self.held -= c.bytes;
            c.decide_all(r);
            c.release(out);
        }
    }

    /// Whether event `seq` of connection `conn_id` is held here.
    pub fn holds(&self, conn_id: u64, seq: u64) -> bool {
        self.conns.get(&conn_id).is_some_and(|c| {
            c.queue.iter().any(|e| match &e.tapped {
                Tapped::Event { chunk, .. } => chunk.seq == seq,
                Tapped::Gap { .. } | Tapped::Ended { .. } => false,
            })
        })
    }
}

impl ConnHeld {
    /// Direction `dir` is between messages: its events held make whole messages.
    fn decide(&mut self, r: &Redactor, dir: usize) {
        let mut pending: Vec<&mut Entry> = self
            .queue
            .iter_mut()
            .filter(|e| !e.decided && e.tapped.direction() == Some(dir))
            .collect();
        decide_refs(r, &mut pending);
    }

    fn decide_all(&mut self, r: &Redactor) {
        for dir in [0, 1] {
            self.decide(r, dir);
        }
    }

    fn release(&mut self, out: &mut Released) {
        while self.queue.front().is_some_and(|e| e.decided) {
            let e = self.queue.pop_front().expect("front checked");
            self.bytes -= e.tapped.bytes_len();
            out.push((e.tapped, e.changed));
        }
    }
}

fn decide(r: &Redactor, entries: &mut [Entry]) {
    let mut refs: Vec<&mut Entry> = entries.iter_mut().collect();
    decide_refs(r, &mut refs);
}

/// Redact the bytes of `entries` (one direction's, in order) as one stream, and mark them
/// decided.
fn decide_refs(r: &Redactor, entries: &mut [&mut Entry]) {
    let mut bytes = Vec::new();
    let mut holes = Vec::new();
    let mut call = CallPos::default();
    for e in entries.iter_mut() {
        e.decided = true;
        if let Tapped::Event { chunk, .. } = &e.tapped {
            if let ChunkKind::Data(d) = &chunk.kind {
                let h = call.place(d, d.bytes.len());
                if h.before > 0 {
                    holes.push((bytes.len(), h.before));
                }
                bytes.extend_from_slice(&d.bytes);
                if h.after > 0 {
                    holes.push((bytes.len(), h.after));
                }
            }
        }
    }
    if bytes.is_empty() {
        return;
    }
    let original = bytes.clone();
    r.stream_messages(&mut bytes, &holes);
    if bytes == original {
        return;
    }
    let mut at = 0;
    for e in entries.iter_mut() {
        if let Tapped::Event { chunk, .. } = &mut e.tapped {
            if let ChunkKind::Data(d) = &mut chunk.kind {
                let n = d.bytes.len();
                if d.bytes[..] != bytes[at..at + n] {
                    d.bytes.copy_from_slice(&bytes[at..at + n]);
                    e.changed = true;
                }
                at += n;
            }
        }
    }
}

/// Bytes of a stream with the holes in it (bytes moved but not copied): `(at, len)`, `at` an
/// index into the copied bytes, in order.
struct Copied<'h> {
    holes: &'h [(usize, u64)],
}

impl Copied<'_> {
    /// The index of the copied byte `n` stream bytes after copied index `from` (clamped to `end`):
    /// holes between count toward `n` but hold no bytes.
    fn advance(&self, from: usize, n: u64, end: usize) -> usize {
        let mut at = from;
        let mut left = n;
        for &(h, len) in self.holes.iter().filter(|(h, _)| *h >= from) {
            let to_hole = (h - at) as u64;
            if left <= to_hole {
                break;
            }
            left -= to_hole;
            at = h;
            left = left.saturating_sub(len);
            if left == 0 {
                return at.min(end);
            }
        }
        (at as u64 + left).min(end as u64) as usize
    }

    fn hole_within(&self, from: usize, to: usize) -> bool {
        self.holes.iter().any(|&(h, _)| h >= from && h < to)
    }
}

/// How a message's body is framed, as its head says.
enum Framing {
    Length(u64),
    Chunked,
    /// A request without a length has none; a response without one runs to the end.
    None,
}

impl Redactor {
    /// Redact whole messages of one direction's stream, held together (`holes` as in Copied),
    /// in place and at the same length: each head's lines, and each body as its type says (or
    /// as its first bytes look), a chunked body taken whole across its chunks. Bytes that do
    /// not start with a message head are redacted as a piece (stream_piece).
    pub fn stream_messages(&self, bytes: &mut [u8], holes: &[(usize, u64)]) {
        let copied = Copied { holes };
        let mut at = 0;
        while at < bytes.len() {
            let Some(head_len) = bytes[at..].windows(4).position(|w| w == b"\r\n\r\n") else {
                self.stream_piece(&mut bytes[at..]);
                return;
            };
            let head_end = at + head_len + 4;
            if !looks_like_head(&bytes[at..head_end]) {
                self.stream_piece(&mut bytes[at..]);
                return;
            }
            self.stream_lines(&mut bytes[at..head_end]);
            let head = &bytes[at..head_end];
            let response = head.starts_with(b"HTTP/");
            let (framing, kind) = framing(head);
            let segments = match framing {
                Framing::Length(n) => vec![(head_end, copied.advance(head_end, n, bytes.len()))],
                Framing::Chunked => chunks(bytes, head_end, &copied),
                Framing::None if response => vec![(head_end, bytes.len())],
                Framing::None => Vec::new(),
            };
            let end = segments.last().map_or(head_end, |s| s.1);
            let end = match framing {
                // The chunked walk ends past the last chunk's line; its trailers, if any, are
                // a head of their own.
                Framing::Chunked => skip_trailers(bytes, end),
                _ => end,
            };
            self.stream_body(bytes, &segments, kind);
            at = end.max(head_end);
        }
    }

    /// One body, in `segments` of `bytes` (the data of its chunks), redacted as `kind` says
    /// (sniffed when None).
    fn stream_body(&self, bytes: &mut [u8], segments: &[(usize, usize)], kind: Option<BodyKind>) {
        let mut data = Vec::new();
        for &(from, to) in segments {
            data.extend_from_slice(&bytes[from..to]);
        }
        if data.is_empty() {
            return;
        }
        let kinds = match kind.or_else(|| sniffed_kind(&data)) {
            Some(k) => vec![k],
            None => return,
        };
        let mut changed = false;
        for k in kinds {
            let new = match k {
                BodyKind::Multipart => multipart(&data, &self.extra_names, Style::Stars),
                k => body(k, &data, &self.extra_names, Style::Stars),
            };
            if let Some(v) = new.filter(|v| v.len() == data.len()) {
                data = v;
                changed = true;
            }
        }
        if !changed {
            return;
        }
        let mut at = 0;
        for &(from, to) in segments {
            bytes[from..to].copy_from_slice(&data[at..at + (to - from)]);
            at += to - from;
        }
    }
}

/// Whether `head` starts like an HTTP/1.x request or status line.
fn looks_like_head(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    line.starts_with(b"HTTP/1.") || line.windows(6).any(|w| w == b" HTTP/")
}

/// A head's body framing and declared body type.
fn framing(head: &[u8]) -> (Framing, Option<BodyKind>) {
    let mut framing = Framing::None;
    let mut kind = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            if let Some(n) = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                if !matches!(framing, Framing::Chunked) {
                    framing = Framing::Length(n);
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            {
                framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case(b"content-type") {
            kind = body_kind(value);
        }
    }
    (framing, kind)
}

/// The data of the chunks of a chunked body starting at `from`: (start, end) in `bytes`. The
/// walk stops at the last chunk (size 0, the index returned in the last segment's end), at a
/// hole, or where a size line does not parse (the rest is taken as data).
fn chunks(bytes: &[u8], from: usize, copied: &Copied<'_>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let Some(eol) = bytes[at..].windows(2).position(|w| w == b"\r\n") else {
            out.push((at, bytes.len()));
            return out;
        };
        let line = &bytes[at..at + eol];
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let Some(size) = std::str::from_utf8(size.trim_ascii())
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
        else {
            out.push((at, bytes.len()));
            return out;
        };
        let data = at + eol + 2;
        if size == 0 {
            out.push((data, data));
            return out;
        }
        let end = copied.advance(data, size, bytes.len());
        out.push((data, end));
        if copied.hole_within(data, end + 1) || end + 2 > bytes.len() {
            out.push((end, bytes.len()));
            return out;
        }
        at = end + 2;
    }
}

/// Past a chunked body's last chunk line (at `at`): its trailer fields and the empty line.
fn skip_trailers(bytes: &[u8], at: usize) -> usize {
    if bytes[at..].starts_with(b"\r\n") {
        return at + 2;
    }
    match bytes[at..].windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => at + i + 4,
        None => bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::test_meta;
    use crate::decode::{Chunk, Data, Direction};

    fn event(conn_id: u64, seq: u64, offset: u32, ret: i64, bytes: &[u8]) -> Chunk<Vec<u8>> {
        Chunk {
            conn_id,
            seq,
            ts_ns: seq,
            meta: test_meta(),
            kind: ChunkKind::Data(Data {
                direction: Direction::In,
                offset,
                ret,
                last: offset as i64 + bytes.len() as i64 >= ret,
                no_data: false,
                unseen: false,
                spliced: false,
                tls: false,
                bytes: bytes.to_vec(),
            }),
        }
    }

    /// Events each a whole call, settled after the last: what the released bytes read.
    fn through(pieces: &[&[u8]]) -> (String, Vec<bool>) {
        let r = Redactor::default();
        let mut s = StreamRedactor::default();
        let mut out = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let chunk = event(1, i as u64, 0, p.len() as i64, p);
            let settled = i + 1 == pieces.len();
            s.push(&r, Tapped::Event { chunk, settled }, &mut out);
            if !settled {
                assert!(out.is_empty(), "released before the message was whole");
                assert!(s.holds(1, i as u64));
            }
        }
        let mut text = Vec::new();
        let mut changed = Vec::new();
        for (t, c) in out {
            if let Tapped::Event { chunk, .. } = t {
                if let ChunkKind::Data(d) = chunk.kind {
                    text.extend_from_slice(&d.bytes);
                    changed.push(c);
                }
            }
        }
        (String::from_utf8(text).unwrap(), changed)
    }

    #[test]
    fn a_key_split_across_events_is_redacted() {
        let (text, changed) = through(&[
            b"POST /login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n{\"user\":\"ann\",\"passwo",
            b"rd\":\"hunter22\",\"x\":1}",
        ]);
        assert!(!text.contains("hunter22"), "{text}");
        assert!(
            text.ends_with("\"password\":\"********\",\"x\":1}"),
            "{text}"
        );
        assert_eq!(changed, [false, true]);
    }

    #[test]
    fn a_header_split_across_events_is_redacted() {
        let (text, _) = through(&[
            b"GET / HTTP/1.1\r\nAuthorization: Bearer abc",
            b"def.ghi\r\nX-Api-Key: k3y\r\n\r\n",
        ]);
        assert_eq!(
            text,
            "GET / HTTP/1.1\r\nAuthorization: Bearer **********\r\nX-Api-Key: ***\r\n\r\n"
        );
    }

    #[test]
    fn a_chunked_body_is_redacted_across_its_chunks() {
        let (text, _) = through(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"token\r\n",
            b"9\r\n\":\"s3cr3t\r\n2\r\n\"}\r\n0\r\n\r\n",
        ]);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(
            text.contains("9\r\n\":\"******\r\n2\r\n\"}\r\n0\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn pipelined_messages_are_each_redacted_as_their_heads_say() {
        let (text, _) = through(&[
            b"POST /a HTTP/1.1\r\nContent-Length: 13\r\n\r\npassword=abcdPOST /b HTTP/1.1\r\nCookie: s=1\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        ]);
        assert_eq!(
            text,
            "POST /a HTTP/1.1\r\nContent-Length: 13\r\n\r\npassword=****POST /b HTTP/1.1\r\nCookie: s=*\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        );
    }

    #[test]
    fn a_hole_in_a_body_keeps_the_next_message_s_head_in_place() {
        let r = Redactor::default();
        let mut s = StreamRedactor::default();
        let mut out = Vec::new();
        // 10 body bytes copied of 30, then the next request in the next call.
        let first = b"POST /a HTTP/1.1\r\nContent-Length: 30\r\n\r\n0123456789";
        let mut chunk = event(1, 0, 0, first.len() as i64 + 20, first);
        if let ChunkKind::Data(d) = &mut chunk.kind {
            d.last = true;
        }
        s.push(
            &r,
            Tapped::Event {
                chunk,
                settled: false,
            },
            &mut out,
        );
        let next = b"GET /?api_key=abc HTTP/1.1\r\n\r\n";
        s.push(
            &r,
            Tapped::Event {
                chunk: event(1, 1, 0, next.len() as i64, next),
                settled: true,
            },
            &mut out,
        );
        let Tapped::Event { chunk, .. } = &out[1].0 else {
            panic!("an event");
        };
        let ChunkKind::Data(d) = &chunk.kind else {
            panic!("data");
        };
        assert_eq!(d.bytes, b"GET /?api_key=*** HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn a_connection_s_other_direction_waits_behind_what_is_held() {
        let r = Redactor::default();
        let mut s = StreamRedactor::default();
        let mut out = Vec::new();
        let head = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n";
        s.push(
            &r,
            Tapped::Event {
                chunk: event(1, 0, 0, head.len() as i64, head),
                settled: false,
            },
            &mut out,
        );
        let mut answer = event(1, 1, 0, 5, b"HTTP/");
        if let ChunkKind::Data(d) = &mut answer.kind {
            d.direction = Direction::Out;
        }
        s.push(
            &r,
            Tapped::Event {
                chunk: answer,
                settled: false,
            },
            &mut out,
        );
        // Another connection is not held up.
        s.push(&r, Tapped::Gap { conn_id: 2 }, &mut out);
        assert_eq!(out.len(), 1);
        s.push(&r, Tapped::Ended { conn_id: 1 }, &mut out);
        let seqs: Vec<Option<u64>> = out
            .iter()
            .map(|(t, _)| match t {
                Tapped::Event { chunk, .. } => Some(chunk.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs, [None, Some(0), Some(1), None]);
        assert!(s.conns.is_empty() && s.held == 0);
    }
}
