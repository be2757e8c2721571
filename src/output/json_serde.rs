//! JSON lines through serde_json, from borrowed views of a record (no intermediate value): the
//! oracle of the hand-written writer (`json.rs`) in the tests, which compare the two value for
//! value. In test builds only: the tool has one JSON writer, the hand-written one, which took
//! 12,729 instructions per exchange in the pipeline benchmark against this one's 24,897
//! (2026-12-01, README).

use std::net::SocketAddr;

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use crate::decode::{Direction, Endpoints};
use crate::http::{Message, StartLine};
use crate::record::{ConnInfo, Record};

/// Bytes as a JSON string: text as is, invalid UTF-8 sequences as U+FFFD.
struct Lossy<'a>(&'a [u8]);

impl Serialize for Lossy<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.serialize_str(&String::from_utf8_lossy(self.0)),
        }
    }
}

/// An address as `SocketAddr` displays it.
enum Addr {
    Inet(SocketAddr),
    Unix(String),
}

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Addr::Inet(a) => s.collect_str(a),
            Addr::Unix(name) => s.serialize_str(name),
        }
    }
}

/// `[[name, value], ...]`, in order, duplicates kept: a message's headers.
struct Headers<'a>(&'a Message);

/// A chunked body's trailer fields, as Headers.
struct Trailers<'a>(&'a Message);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fields(s, self.0.headers())
    }
}

impl Serialize for Trailers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fields(s, self.0.trailers())
    }
}

fn fields<'m, S: Serializer>(
    s: S,
    fields: impl Iterator<Item = (&'m [u8], &'m [u8])>,
) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(None)?;
    for (name, value) in fields {
        seq.serialize_element(&(Lossy(name), Lossy(value)))?;
    }
    seq.end()
}

/// A message's trailers, when it had any.
fn trailers(m: Option<&Message>) -> Option<Trailers<'_>> {
    m.filter(|m| m.trailers_len() > 0).map(Trailers)
}

#[derive(Serialize)]
struct Conn<'a> {
    ts: &'a str,
    pid: u32,
    tid: u32,
    comm: Lossy<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread: Option<Lossy<'a>>,
    fd: i32,
    role: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls: bool,
    local: Option<Addr>,
    peer: Option<Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_pid: Option<u32>,
}

impl<'a> Conn<'a> {
    fn of(conn: &'a ConnInfo, ts: &'a str) -> Self {
        let m = &conn.meta;
        Self {
            ts,
            pid: m.tgid,
            tid: m.tid,
            comm: Lossy(m.comm.bytes()),
            thread: m.thread_apart().map(|t| Lossy(t.bytes())),
            fd: m.fd,
            role: conn.role.as_str(),
            tls: conn.tls,
            local: conn.endpoints.as_ref().and_then(|e| addr(e, true)),
            peer: conn.endpoints.as_ref().and_then(|e| addr(e, false)),
            peer_pid: match &conn.endpoints {
                Some(Endpoints::Unix(u)) => u.peer_pid,
                _ => None,
            },
        }
    }
}

/// One end's address: `local` or the peer's.
fn addr(e: &Endpoints, local: bool) -> Option<Addr> {
    match e {
        Endpoints::Inet { local: l, peer } => Some(Addr::Inet(if local { *l } else { *peer })),
        Endpoints::Unix(u) => Some(Addr::Unix(if local { &u.local } else { &u.peer }.name()?)),
    }
}

#[derive(Serialize)]
struct Exchange<'a> {
    kind: &'static str,
    #[serde(flatten)]
    conn: Conn<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_fd: Option<i32>,
    method: Option<&'a str>,
    target: Option<&'a str>,
    version: Option<&'static str>,
    request_headers: Option<Headers<'a>>,
    request_body_bytes: Option<u64>,
    request_body: Option<Lossy<'a>>,
    request_body_cut: Option<bool>,
    request_complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_trailers: Option<Trailers<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_lenient: Option<Vec<&'static str>>,
    status: Option<u16>,
    reason: Option<Lossy<'a>>,
    response_headers: Option<Headers<'a>>,
    response_body_bytes: Option<u64>,
    response_body: Option<Lossy<'a>>,
    response_body_cut: Option<bool>,
    response_complete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_trailers: Option<Trailers<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_lenient: Option<Vec<&'static str>>,
    latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resynced: Option<bool>,
}

#[derive(Serialize)]
struct Malformed<'a> {
    kind: &'static str,
    #[serde(flatten)]
    conn: Conn<'a>,
    direction: &'static str,
    reason: &'a str,
}

/// The names of what a message was read leniently with, if anything.
fn lenient(m: Option<&Message>) -> Option<Vec<&'static str>> {
    m.filter(|m| !m.lenient.is_empty())
        .map(|m| m.lenient.names().collect())
}

/// Append `rec` to `buf` as one JSON line.
pub fn write(buf: &mut Vec<u8>, rec: &Record, ts: &str) {
    let written = match rec {
        Record::Malformed {
            conn,
            direction,
            reason,
            ..
        } => serde_json::to_writer(
            &mut *buf,
            &Malformed {
                kind: "malformed",
                conn: Conn::of(conn, ts),
                direction: match direction {
                    Direction::In => "in",
                    Direction::Out => "out",
                },
                reason,
            },
        ),
        Record::Exchange {
            conn,
            request,
            response,
            responder,
        } => {
            let (q, r) = (request.as_ref(), response.as_ref());
            let (method, target) = match q.map(Message::start) {
                Some(StartLine::Request { method, target }) => (Some(method), Some(target)),
                _ => (None, None),
            };
            let (status, reason) = match r.map(Message::start) {
                Some(StartLine::Response { status, reason }) => (Some(status), Some(Lossy(reason))),
                _ => (None, None),
            };
            serde_json::to_writer(
                &mut *buf,
                &Exchange {
                    kind: "exchange",
                    conn: Conn::of(conn, ts),
                    response_pid: responder.map(|r| r.tgid),
                    response_fd: responder.map(|r| r.fd),
                    method,
                    target,
                    version: q.map(|m| {
                        if m.version == 0 {
                            "HTTP/1.0"
                        } else {
                            "HTTP/1.1"
                        }
                    }),
                    request_headers: q.map(Headers),
                    request_body_bytes: q.map(|m| m.body_bytes),
                    request_body: q.map(|m| Lossy(m.body())),
                    request_body_cut: q.map(Message::body_cut),
                    request_complete: q.map(|m| m.complete),
                    request_trailers: trailers(q),
                    request_lenient: lenient(q),
                    status,
                    reason,
                    response_headers: r.map(Headers),
                    response_body_bytes: r.map(|m| m.body_bytes),
                    response_body: r.map(|m| Lossy(m.body())),
                    response_body_cut: r.map(Message::body_cut),
                    response_complete: r.map(|m| m.complete),
                    response_trailers: trailers(r),
                    response_lenient: lenient(r),
                    latency_ms: super::latency_ns(q, r).map(|ns| ns as f64 / 1e6),
                    resynced: [q, r].iter().flatten().any(|m| m.resynced).then_some(true),
                },
            )
        }
    };
    // Writing to a Vec fails only on a Serialize impl's error, and ours return none.
    debug_assert!(written.is_ok());
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use crate::output::{Clock, Format, Printer};
    use crate::record::Record;

    /// Every record of the benchmark's recorded stream, written by both writers.
    fn both(records: &[Record]) -> (String, String) {
        let write = |format| {
            let mut p = Printer::new(Vec::new(), format, false, Clock::fixed(1 << 60));
            for rec in records {
                p.print(rec).unwrap();
            }
            String::from_utf8(p.into_inner()).unwrap()
        };
        (write(Format::Json), write(Format::JsonSerde))
    }

    #[test]
    fn the_hand_written_json_says_what_serde_json_says() {
        let recording = include_bytes!("../../benches/data/example-server.htr");
        let mut reader = crate::capture::Reader::new(&recording[..]).unwrap();
        let mut tracker = crate::tracker::Tracker::new(4096);
        let mut records = Vec::new();
        while let Some(crate::capture::Entry::Input(input)) = reader.next_entry().unwrap() {
            let crate::pipeline::Input::Sample(sample) = input else {
                continue;
            };
            if let Ok(crate::decode::Event::Conn(chunk)) = crate::decode::decode(sample) {
                tracker.push(&chunk, &mut records);
            }
        }
        tracker.finish(&mut records);
        assert_eq!(records.len(), 360);
        let (ours, serde) = both(&records);
        let parse = |text: &str| -> Vec<serde_json::Value> {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        assert_eq!(parse(&ours), parse(&serde));
    }
}
