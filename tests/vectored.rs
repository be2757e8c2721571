//! Root integration tests of vectored calls of any length: our example server receives with
//! readv or recvmsg over up to 1,024 iovecs of mixed sizes (empty ones among them), and answers
//! with one writev or sendmsg of 1, 8, 9, 64, 512 and 1,024 iovecs; or receives with recvmmsg
//! into up to 342 messages and answers with one sendmmsg of up to 1,024 messages. Every byte is
//! captured, in order, by both BPF builds (the legacy one walks them without bpf_loop).

mod common;

use common::*;
use serde_json::json;

/// The iovec counts of the answers: around the fast path's 8, and up to IOV_MAX.
const COUNTS: [usize; 6] = [1, 8, 9, 64, 512, 1024];
const BODY: usize = 10_000;

/// Trace our server receiving with `recv` and answering with `send`: a 5,000-byte upload, then
/// a GET of each of `targets`, whose answers carry BODY digits. Every byte, in order.
fn trace_vectored(recv: &str, send: &str, targets: &[String]) {
    require_root!();
    // Receives over 1,024 iovecs; the answers' shapes are per request.
    let server = Server::ours_iovecs(recv, send, 1024);
    let tracer = Tracer::start(&[server.pid()], &["--max-body", "65536"]);
    let body: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let post = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{body}");
    assert_eq!(request(server.port, post.as_bytes()), 200);
    for target in targets {
        assert_eq!(get(server.port, target), 200);
    }
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let mut want = vec![("POST".to_string(), "/up".to_string())];
    want.extend(targets.iter().map(|t| ("GET".to_string(), t.clone())));
    assert_eq!(method_targets(&ex), want, "{:#?}", out.stderr);
    assert_eq!(ex[0]["request_body"], body);
    assert_eq!(ex[0]["response_body"], "POST /up body=5000\n");
    for (e, t) in ex[1..].iter().zip(targets) {
        assert_eq!(e["response_body_bytes"], BODY, "{t}: {e}");
        assert_eq!(e["response_complete"], true, "{t}: {e}");
        assert_eq!(e["response_body"], digits(BODY), "{t}: {e}");
    }
    out.assert_summary(1 + targets.len());
}

fn trace_iovecs(recv: &str, send: &str) {
    trace_vectored(recv, send, &COUNTS.map(|k| format!("/r/iovecs/{k}/{BODY}")));
}

#[test]
fn readv_and_writev_of_any_length() {
    trace_iovecs("readv", "writev");
}

#[test]
fn recvmsg_and_sendmsg_of_any_length() {
    trace_iovecs("recvmsg", "sendmsg");
}

/// The messages and iovecs of the sendmmsg answers: one, two of five iovecs, past the 8
/// messages once read, 64 of three iovecs each, and 1,024 (the most the kernel takes) of one,
/// most of them empty.
const MESSAGES: [(usize, usize); 5] = [(1, 1), (2, 5), (9, 9), (64, 192), (1024, 1024)];

/// recvmmsg into messages of three iovecs of mixed sizes (a request's bytes spread over dozens of
/// them) and sendmmsg answers of up to 1,024 messages (the upload's: head and body as two):
/// every byte, in order.
#[test]
fn recvmmsg_and_sendmmsg_of_many_messages() {
    let targets = MESSAGES.map(|(m, k)| format!("/r/mmsg/{m}/{k}/{BODY}"));
    trace_vectored("recvmmsg", "sendmmsg", &targets);
}

/// node's http server corks a response written in pieces, and sends it, chunked, with its
/// trailer, in one writev: here of 49 iovecs (12 pieces, each with its chunk's size and CRLF).
#[test]
fn node_corked_writes_in_one_writev() {
    require_root!();
    let script = "require('http').createServer((q, s) => { q.resume(); q.on('end', () => { \
                  s.writeHead(200, {'Content-Type': 'text/plain', 'Trailer': 'X-Parts'}); \
                  s.cork(); for (let i = 0; i < 12; i++) s.write('part ' + i + '\\n'); \
                  s.addTrailers({'X-Parts': '12'}); s.end(); s.uncork(); }); })\
                  .listen(0, '127.0.0.1', function () { \
                  console.log('listening on 127.0.0.1:' + this.address().port); });";
    let mut cmd = std::process::Command::new("node");
    cmd.args(["-e", script]);
    let server = Server::start("node", cmd, None);
    let tracer = Tracer::start(&[server.pid()], &[]);
    for _ in 0..3 {
        // node refuses an HTTP/1.1 request without Host; the client reads a chunked body to
        // the connection's end.
        let raw = b"GET /corked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        assert_eq!(request(server.port, raw), 200);
    }
    let out = tracer.stop();
    let parts: String = (0..12).map(|i| format!("part {i}\n")).collect();
    let ex = out.exchanges();
    assert_eq!(ex.len(), 3, "{:#?}", out.stderr);
    for e in &ex {
        assert_eq!(e["target"], "/corked", "{e}");
        assert_eq!(e["status"], 200, "{e}");
        assert_eq!(e["response_complete"], true, "{e}");
        assert_eq!(e["response_body"], parts, "{e}");
        assert_eq!(e["response_trailers"], json!([["X-Parts", "12"]]), "{e}");
    }
    out.assert_summary(3);
}
