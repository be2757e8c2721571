//! The whole pipeline (decode, reorder, reassemble, parse, pair, redact, print JSON) fed any
//! sequence of events as the BPF side lays them out: connections opened, accepted or found,
//! receives and sends of real message fragments or any bytes, split across events of one call,
//! closes, events never delivered (gaps), lost counts, poll ticks that give gaps up, process
//! exits and forks, all delivered out of order within a window as per-CPU buffers do. It must
//! never panic, and must account for every exchange it prints.

#![no_main]

use arbitrary::Arbitrary;
use http_trace::bpf::types::{ht_conn_event, ht_event, ht_process_event};
use http_trace::output::{Clock, Format, Printer};
use http_trace::pipeline::{Accounting, Input, Pipeline};
use libfuzzer_sys::fuzz_target;

/// Pieces of real traffic, so that inputs reach past the first byte of a head.
const PIECES: [&[u8]; 12] = [
    b"GET /a?token=s3cret HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /form HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 19\r\n\r\n",
    b"user=a&password=pw1",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"4\r\nwiki\r\n0\r\n\r\n",
    b"HEAD /h HTTP/1.1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
    b"PUT /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"{\"password\":\"x\",\"a\":[1,{\"token\":\"t\"}]}",
];

#[derive(Arbitrary, Debug)]
enum Op {
    Open {
        conn: u8,
        how: u8,
    },
    Piece {
        conn: u8,
        out: bool,
        piece: u8,
        cut: u8,
    },
    Bytes {
        conn: u8,
        out: bool,
        bytes: Vec<u8>,
    },
    /// A call whose bytes were not copied (sendfile): only counted.
    Uncopied {
        conn: u8,
        out: bool,
        n: u16,
    },
    Close {
        conn: u8,
    },
    /// An event of the connection that never arrives.
    Gap {
        conn: u8,
    },
    Lost {
        n: u8,
    },
    Tick {
        ms: u16,
    },
    Exit {
        pid: u8,
    },
    Fork {
        pid: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Case {
    ops: Vec<Op>,
    /// Each moves one event later by up to 7 places: the reordering of per-CPU buffers.
    moves: Vec<(u8, u8)>,
}

fn header(kind: u8, conn: u8, seq: u64, ts_ns: u64) -> ht_event {
    let mut comm = [0u8; 16];
    comm[..5].copy_from_slice(b"fuzzy");
    ht_event {
        ts_ns,
        conn_id: u64::from(conn % 4) + 1,
        seq,
        tgid: 100 + u32::from(conn % 2),
        tid: 100 + u32::from(conn % 2),
        fd: 3 + i32::from(conn % 4),
        kind,
        comm,
        ..Default::default()
    }
}

fn bytes_of<T: plain::Plain>(v: &T) -> Vec<u8> {
    // SAFETY: the ABI types are #[repr(C)] integers and byte arrays with explicit padding
    // (http_trace::bpf implements Plain for them); viewing one as bytes reads initialised memory.
    unsafe { plain::as_bytes(v) }.to_vec()
}

enum Step {
    Sample(Vec<u8>),
    Lost(u64),
    Tick(u64),
}

fn data(h: ht_event, out: bool, ret: i64, bytes: &[u8], no_data: bool) -> Step {
    let mut h = h;
    h.direction = u8::from(out);
    h.ret = ret;
    h.len = bytes.len() as u32;
    h.flags = 1 | if no_data { 2 } else { 0 };
    let mut v = bytes_of(&h);
    v.extend_from_slice(bytes);
    Step::Sample(v)
}

fuzz_target!(|case: Case| {
    let mut seqs = [0u64; 4];
    let mut ts = 1_000u64;
    let mut steps = Vec::new();
    for op in case.ops.iter().take(200) {
        ts += 1_000;
        let mut next = |conn: u8| {
            let s = &mut seqs[usize::from(conn % 4)];
            *s += 1;
            *s - 1
        };
        let step = match *op {
            Op::Open { conn, how } => {
                let mut e = ht_conn_event {
                    hdr: header([1, 4, 5][usize::from(how % 3)], conn, next(conn), ts),
                    family: 2,
                    lport: 8080,
                    rport: 40000 + u16::from(conn),
                    ..Default::default()
                };
                e.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
                e.raddr[..4].copy_from_slice(&[127, 0, 0, 2]);
                Step::Sample(bytes_of(&e))
            }
            Op::Piece {
                conn,
                out,
                piece,
                cut,
            } => {
                let p = PIECES[usize::from(piece) % PIECES.len()];
                let (a, b) = p.split_at(usize::from(cut) % (p.len() + 1));
                // Two events of one call when cut: the first not the last.
                let h = header(2, conn, next(conn), ts);
                if b.is_empty() {
                    data(h, out, p.len() as i64, a, false)
                } else {
                    let first = data(h, out, p.len() as i64, a, false);
                    if let Step::Sample(mut v) = first {
                        // Clear HT_FLAG_LAST of the first event.
                        let flags_at = std::mem::offset_of!(ht_event, flags);
                        v[flags_at] = 0;
                        steps.push(Step::Sample(v));
                    }
                    let mut h2 = header(2, conn, next(conn), ts);
                    h2.offset = a.len() as u32;
                    data(h2, out, p.len() as i64, b, false)
                }
            }
            Op::Bytes {
                conn,
                out,
                ref bytes,
            } => data(
                header(2, conn, next(conn), ts),
                out,
                bytes.len() as i64,
                &bytes[..bytes.len().min(4096)],
                false,
            ),
            Op::Uncopied { conn, out, n } => data(
                header(2, conn, next(conn), ts),
                out,
                i64::from(n),
                &[],
                true,
            ),
            Op::Close { conn } => Step::Sample(bytes_of(&header(3, conn, next(conn), ts))),
            Op::Gap { conn } => {
                next(conn);
                continue;
            }
            Op::Lost { n } => Step::Lost(u64::from(n)),
            Op::Tick { ms } => {
                ts += u64::from(ms) * 1_000_000;
                Step::Tick(ts)
            }
            Op::Exit { pid } => {
                let mut e = ht_process_event {
                    hdr: header(6, 0, 0, ts),
                    ..Default::default()
                };
                e.hdr.conn_id = 0;
                e.hdr.tgid = 100 + u32::from(pid % 3);
                Step::Sample(bytes_of(&e))
            }
            Op::Fork { pid } => {
                let mut e = ht_process_event {
                    hdr: header(7, 0, 0, ts),
                    child_tgid: 200 + u32::from(pid),
                    ..Default::default()
                };
                e.hdr.conn_id = 0;
                Step::Sample(bytes_of(&e))
            }
        };
        steps.push(step);
    }
    for &(at, by) in case.moves.iter().take(100) {
        let n = steps.len();
        if n < 2 {
            break;
        }
        let from = usize::from(at) % n;
        let to = (from + usize::from(by % 8)).min(n - 1);
        let s = steps.remove(from);
        steps.insert(to, s);
    }
    let printer = Printer::new(Vec::new(), Format::Json, false, Clock::fixed(0));
    let mut pipeline = Pipeline::new(64, printer, None);
    for s in &steps {
        match s {
            Step::Sample(v) => {
                pipeline.apply(&Input::Sample(v));
            }
            Step::Lost(n) => {
                pipeline.apply(&Input::Lost(*n));
            }
            Step::Tick(now_ns) => {
                pipeline.apply(&Input::Tick { now_ns: *now_ns });
            }
        }
    }
    pipeline.finish();
    let c = &pipeline.counts;
    assert!(
        c.incomplete <= c.exchanges && c.unanswered <= c.exchanges,
        "{c:?}"
    );
    // Every request head and response is counted once, whatever happened; every byte too,
    // unless events were lost (what they carried is not known).
    let t = &pipeline.tracker.stats;
    let a = Accounting::new(c, t, &pipeline.tracker.parser_stats());
    assert_eq!(a.requests.unaccounted(), 0, "{a:?} {c:?} {t:?}");
    assert_eq!(a.responses.unaccounted(), 0, "{a:?} {c:?} {t:?}");
    if c.lost_events == 0 && t.events_missing == 0 && t.events_after_end == 0 {
        assert_eq!(a.bytes.unaccounted(), 0, "{a:?} {c:?} {t:?}");
    }
});
