//! Hostile traffic against a traced nginx, short versions (scripts/soak.sh has the full sizes):
//! connections that send half a request and stay open, a 1 MB head, a 100 KB request line, an
//! endless chunked body, random bytes, 10,000 pipelined requests in one write, a client sending
//! a byte every 10 ms. Meanwhile a well-behaved client's exchanges must all be captured, exactly;
//! every give-up is in the summary under its name; the tracer's memory stays bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A connection to 127.0.0.1:`port` from the source address 127.0.0.`host`: a test can open
/// more connections than one source address has ephemeral ports.
fn connect_from(host: u8, port: u16) -> TcpStream {
    // SAFETY: plain socket(2); the fd is owned by the TcpStream made below or closed on error.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh socket that nothing else owns; the TcpStream closes it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let addr = |a: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let local = addr([127, 0, 0, host], 0);
    // SAFETY: `local` is a valid sockaddr_in of `len` bytes for the duration of the call.
    let r = unsafe { libc::bind(fd, (&raw const local).cast(), len) };
    assert_eq!(
        r,
        0,
        "bind 127.0.0.{host}: {}",
        std::io::Error::last_os_error()
    );
    let peer = addr([127, 0, 0, 1], port);
    // SAFETY: as above, for `peer`.
    let r = unsafe { libc::connect(fd, (&raw const peer).cast(), len) };
    assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    stream
}

/// Read until the peer closes the connection, or `want` responses' status lines came.
fn read_responses(stream: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while count(&got, b"HTTP/1.1 ") < want {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// Send `bytes` on a connection of its own (the server may close before it read them all) and
/// return the answer's status line.
fn answer_to(port: u16, bytes: &[u8]) -> String {
    let mut s = connect_from(1, port);
    s.write_all(bytes).ok();
    let answer = read_responses(&mut s, 1);
    let line = answer.split(|&b| b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(line).to_string()
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Deterministic bytes that are not HTTP (xorshift; the first is not a letter).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    out[0] = 0x16;
    out
}

/// A field of /proc/PID/status, in kB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

const HALF_OPEN: usize = 2000;
const PIPELINED: usize = 10_000;
const NORMAL: usize = 20;

#[test]
fn hostile_traffic_is_bounded_counted_and_the_rest_captured() {
    require_root!();
    if in_vm("hostile_traffic_is_bounded_counted_and_the_rest_captured") {
        return;
    }
    let server = Server::nginx(0);
    let port = server.port;
    // nginx answers the 10,000 pipelined requests in a burst of 10,000 writes (about 20 ms)
    // that overflows the default ring (4 MB here; losses are counted, see capture.rs): a
    // larger one makes every exchange of the burst fit.
    let tracer = Tracer::start(&[server.pid()], &["--buffer-pages", "4096"]);

    let half_open = send_hostile_traffic(port);
    // The heap (RssAnon: the event buffer is a shared mapping, counted apart) keeps its high
    // mark, as glibc rarely returns memory: a case held without bounds shows here. Holding the
    // 10,000 exchanges of the burst in one batch took 35 MB more.
    let (hwm, anon) = (
        status_kib(tracer.pid(), "VmHWM"),
        status_kib(tracer.pid(), "RssAnon"),
    );
    eprintln!("hostile: tracer VmHWM {hwm} kB, RssAnon {anon} kB, {HALF_OPEN} connections open");
    assert!(anon < 30 * 1024, "tracer RssAnon {anon} kB");
    drop(half_open);
    let out = tracer.stop();

    let malformed = check_exchanges(&out);
    check_summary(&out, malformed);
}

/// Every kind of hostile traffic, and the well-behaved clients' exchanges; the half-open
/// connections are returned, still open.
fn send_hostile_traffic(port: u16) -> Vec<TcpStream> {
    // Half a request each, left open, from four source addresses.
    let half_open: Vec<TcpStream> = (0..HALF_OPEN)
        .map(|i| {
            let mut s = connect_from(2 + (i % 4) as u8, port);
            s.write_all(b"GET /half HTTP/1.1\r\nHost: h\r\n")
                .expect("half a request");
            s
        })
        .collect();

    // A 1 MB head (1,000 header lines of 1 KB): nginx answers 400 and closes.
    let mut big = b"GET /big-head HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..1000 {
        big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(1000)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(answer_to(port, &big), "HTTP/1.1 400 Bad Request");

    // A 100 KB request line: 414.
    let line = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "l".repeat(100_000));
    assert_eq!(
        answer_to(port, line.as_bytes()),
        "HTTP/1.1 414 Request-URI Too Large"
    );

    // 1 MB of random bytes: 400.
    assert_eq!(
        answer_to(port, &random_bytes(1 << 20)),
        "HTTP/1.1 400 Bad Request"
    );

    // 10,000 pipelined requests in one write, all answered.
    let mut s = connect_from(1, port);
    let reqs: Vec<u8> = (0..PIPELINED)
        .flat_map(|i| format!("GET /p/{i} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes())
        .collect();
    let writer = {
        let mut w = s.try_clone().expect("clone");
        thread::spawn(move || w.write_all(&reqs).expect("pipelined requests"))
    };
    let answers = read_responses(&mut s, PIPELINED);
    writer.join().expect("writer");
    assert_eq!(count(&answers, b"HTTP/1.1 200"), PIPELINED);
    drop(s);

    // A chunked body that does not end (2 MB in 1 KB chunks), then the client goes away.
    let mut s = connect_from(1, port);
    s.write_all(b"POST /endless HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    let chunk = [b"400\r\n".as_slice(), &[b'c'; 1024], b"\r\n"].concat();
    for _ in 0..2048 {
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(s);

    // One byte every 10 ms.
    let mut s = connect_from(1, port);
    for b in b"GET /slow-client HTTP/1.1\r\nHost: h\r\n\r\n" {
        s.write_all(&[*b]).expect("a byte");
        thread::sleep(Duration::from_millis(10));
    }
    let answer = read_responses(&mut s, 1);
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    drop(s);

    // The well-behaved client, while the half-open connections still wait.
    for i in 0..NORMAL {
        let req = format!("GET /normal/{i} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(request(port, req.as_bytes()), 200);
    }
    half_open
}

/// The exchanges captured, exact; the number of heads given up as malformed.
fn check_exchanges(out: &TraceOutput) -> usize {
    let records = out.json();
    let ex: Vec<&Value> = records.iter().filter(|v| v["kind"] == "exchange").collect();
    let normal: Vec<&&Value> = ex
        .iter()
        .filter(|e| e["target"].as_str().unwrap_or("").starts_with("/normal/"))
        .collect();
    assert_eq!(normal.len(), NORMAL);
    for (i, e) in normal.iter().enumerate() {
        assert_eq!(e["target"], format!("/normal/{i}"));
        assert_eq!(e["status"], 200);
        assert_eq!(e["response_body"], "ok\n");
    }
    let pipelined: Vec<&&Value> = ex
        .iter()
        .filter(|e| e["target"].as_str().unwrap_or("").starts_with("/p/"))
        .collect();
    assert_eq!(pipelined.len(), PIPELINED, "{}", out.summary());
    let unanswered: Vec<usize> = (0..PIPELINED)
        .filter(|&i| pipelined[i]["status"] != 200)
        .collect();
    assert_eq!(unanswered, Vec::<usize>::new(), "{}", out.summary());
    for (i, e) in pipelined.iter().enumerate() {
        assert_eq!(e["target"], format!("/p/{i}"));
    }
    let endless: Vec<&&Value> = ex.iter().filter(|e| e["target"] == "/endless").collect();
    assert_eq!(endless.len(), 1, "{endless:#?}");
    let e = endless[0];
    eprintln!(
        "endless: {} {} {} {} {}",
        e["request_body_bytes"],
        e["request_complete"],
        e["status"],
        e["response_complete"],
        e["latency_ms"]
    );
    assert_eq!(endless[0]["request_complete"], false);
    assert_eq!(
        endless[0]["request_body"].as_str().map(str::len),
        Some(4096)
    );
    let slow: Vec<&&Value> = ex
        .iter()
        .filter(|e| e["target"] == "/slow-client")
        .collect();
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0]["status"], 200);
    let malformed: Vec<&str> = records
        .iter()
        .filter(|v| v["kind"] == "malformed")
        .map(|v| v["reason"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        malformed
            .iter()
            .all(|r| *r == "message head larger than 64 KiB"),
        "{malformed:?}"
    );
    malformed.len()
}

/// The summary counts each hostile case once, under its name.
fn check_summary(out: &TraceOutput, oversized: usize) {
    let exchanges = NORMAL + PIPELINED + 2;
    let summary = out.summary();
    eprintln!("{summary}");
    assert!(!summary.contains("whose request was not seen"), "{summary}");
    assert!(
        summary.starts_with(&format!(
            "http-trace: {}, 0 events lost",
            captured(exchanges)
        )),
        "{summary}"
    );
    // After its error answer nginx reads what the client still sends (its lingering close), up
    // to a time limit: the tracer sees each oversized head pass 64 KiB and gives it up, or, on
    // a busy machine, sees the connection end first and drops it unfinished. Either way it is
    // counted, once.
    let partial: usize = summary
        .split(", ")
        .find_map(|p| p.strip_suffix(" partial message heads dropped"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no partial heads in {summary}"));
    assert_eq!(oversized + (partial - HALF_OPEN), 2, "{summary}");
    let mut parts = vec![
        // nginx answers 414 and 400 before the heads are whole, and 400 to bytes that are not
        // HTTP: each counted once, under what it answered.
        ", 2 responses sent before a whole request came (early error answers), not paired, 1 \
         response to bytes that were not an HTTP request (uwsgi, FastCGI, garbage), not paired"
            .to_string(),
    ];
    if oversized > 0 {
        parts.push(format!(
            ", {oversized} malformed, {oversized} message head{} larger than 64 KiB given up \
             (counted malformed)",
            if oversized == 1 { "" } else { "s" }
        ));
    }
    for part in &parts {
        assert!(summary.contains(part), "no {part:?} in {summary}");
    }
}

/// Connections that each hold an unfinished 60 KB head: together more than the tracer's budget
/// for what connections hold (128 MiB). The ones that hold the most give up their heads,
/// counted; their answers are skipped, and every other exchange is captured whole.
#[test]
fn past_the_memory_budget_the_largest_unfinished_heads_are_given_up_and_counted() {
    require_root!();
    if in_vm("past_the_memory_budget_the_largest_unfinished_heads_are_given_up_and_counted") {
        return;
    }
    const CONNS: usize = 2200;
    let server = Server::ours("recv");
    let port = server.port;
    let tracer = Tracer::start(&[server.pid()], &["--buffer-pages", "4096"]);
    let filler: String = (0..60)
        .map(|i| format!("X-Filler-{i:02}: {}\r\n", "f".repeat(986)))
        .collect();
    let mut held: Vec<TcpStream> = (0..CONNS)
        .map(|i| {
            let mut s = connect_from(2 + (i % 4) as u8, port);
            s.write_all(format!("GET /held/{i} HTTP/1.1\r\nHost: h\r\n{filler}").as_bytes())
                .expect("an unfinished head");
            s
        })
        .collect();
    for (i, s) in held.iter_mut().enumerate() {
        s.write_all(b"\r\n").expect("the end of the head");
        let answer = read_responses(s, 1);
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{i}: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(40)])
        );
    }
    // The heap keeps its high mark: 128 MiB held at most, on top of the ~10 MB the tracer
    // needs for itself (the 2,200 heads' 64 KiB buffers alone are 137 MiB).
    let anon = status_kib(tracer.pid(), "RssAnon");
    eprintln!("budget: tracer RssAnon {anon} kB after {CONNS} unfinished 60 KB heads");
    assert!(anon < 136 * 1024, "tracer RssAnon {anon} kB");
    drop(held);
    let out = tracer.stop();
    let summary = out.summary();
    eprintln!("{summary}");
    let given_up: usize = summary
        .split(", ")
        .find_map(|p| {
            p.strip_suffix(" unfinished message heads given up to keep within 128 MiB held")
        })
        .unwrap_or_else(|| panic!("no heads given up: {summary}"))
        .parse()
        .expect("a count");
    // 2,200 heads of 64 KiB (their buffers) are 137 MiB: at least 300 must go to get back to
    // three quarters of the budget, and no more than needed are taken.
    assert!((300..=1000).contains(&given_up), "{given_up}");
    let ex = out.exchanges();
    assert_eq!(ex.len(), CONNS - given_up, "{summary}");
    for e in &ex {
        assert_eq!(e["status"], 200);
        assert_eq!(e["request_headers"].as_array().map(Vec::len), Some(61));
    }
    assert_eq!(
        summary,
        format!(
            "http-trace: {}, 0 events lost, {given_up} unfinished message heads given up to keep \
             within 128 MiB held, {given_up} responses to requests given up, not shown, \
             {} bytes skipped to resynchronise",
            captured(CONNS - given_up),
            summary
                .rsplit(", ")
                .next()
                .and_then(|p| p.strip_suffix(" bytes skipped to resynchronise"))
                .unwrap_or("?")
        )
    );
}

/// Requests only a lenient reader reads as they are shown, through a real nginx (which reads
/// them leniently too, and answers): the smuggling shape (a bare LF before Content-Length, then
/// a request hidden in the body) and what follows it on the connection, a target with bytes no
/// URI holds. Each says how it was read, in JSON and in the text of a replay; the summary
/// counts them. A strict exchange beside them says nothing of the kind.
#[test]
fn requests_read_leniently_are_marked_and_counted() {
    require_root!();
    if in_vm("requests_read_leniently_are_marked_and_counted") {
        return;
    }
    let server = Server::nginx(0);
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut statuses = Vec::new();
    for (requests, answers) in [
        (
            &b"GET /smuggle HTTP/1.1\r\nHost: a\r\nDummy: x\nContent-Length: 23\r\n\r\n\
               GET /admin HTTP/1.1\r\n\r\n\
               GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"[..],
            2,
        ),
        (
            b"GET /a<b> HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            1,
        ),
        (
            b"GET /strict HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            1,
        ),
    ] {
        let mut s = connect_from(1, server.port);
        s.write_all(requests).expect("send");
        let answer = read_responses(&mut s, answers);
        for line in answer.split(|&b| b == b'\n') {
            if let Some(status) = line.strip_prefix(b"HTTP/1.1 ") {
                statuses.push(
                    String::from_utf8_lossy(&status[..3])
                        .parse::<u64>()
                        .unwrap(),
                );
            }
        }
    }
    assert_eq!(statuses.len(), 4, "nginx's answers: {statuses:?}");
    let out = tracer.stop();
    let seen: Vec<(String, Value, Value, Value)> = out
        .exchanges()
        .iter()
        .map(|v| {
            (
                v["target"].as_str().unwrap_or_default().to_string(),
                v.get("request_lenient").cloned().unwrap_or(Value::Null),
                v["status"].clone(),
                v.get("resynced").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    let want = [
        ("/smuggle", serde_json::json!(["bare-lf"])),
        ("/after", serde_json::json!(["after-lenient-framing"])),
        ("/a<b>", serde_json::json!(["target-char"])),
        ("/strict", Value::Null),
    ];
    let want: Vec<(String, Value, Value, Value)> = want
        .iter()
        .zip(&statuses)
        .map(|((target, lenient), status)| {
            (
                target.to_string(),
                lenient.clone(),
                serde_json::json!(status),
                Value::Null,
            )
        })
        .collect();
    assert_eq!(seen, want);
    assert!(
        out.summary()
            .contains(", 3 messages read leniently, outside RFC 9112's grammar"),
        "{}",
        out.summary()
    );
    let text = out.replayed(&["-o", "text", "-v"]);
    let marked: Vec<&str> = text
        .lines()
        .filter(|l| l.ends_with("[lenient]") || l.contains("[read leniently: "))
        .collect();
    assert_eq!(marked.len(), 6, "{text}");
    assert!(
        text.contains("    > [read leniently: after-lenient-framing]\n"),
        "{text}"
    );
}
