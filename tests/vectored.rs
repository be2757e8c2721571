//! Root integration tests of vectored calls of any length: our example server receives with
//! readv or recvmsg over up to 1,024 iovecs of mixed sizes (empty ones among them), and answers
//! with one writev or sendmsg of 1, 8, 9, 64, 512 and 1,024 iovecs. Every byte is captured, in
//! order, by both BPF builds (the legacy one walks them without bpf_loop).

mod common;

use common::*;

/// The iovec counts of the answers: around the fast path's 8, and up to IOV_MAX.
const COUNTS: [usize; 6] = [1, 8, 9, 64, 512, 1024];
const BODY: usize = 10_000;

fn digits(n: usize) -> String {
    (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect()
}

fn trace_iovecs(recv: &str, send: &str) {
    require_root!();
    // Receives over 1,024 iovecs; the answers' counts are per request.
    let server = Server::ours_iovecs(recv, send, 1024);
    let tracer = Tracer::start(&[server.pid()], &["--max-body", "65536"]);
    let body: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let post = format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{body}");
    assert_eq!(request(server.port, post.as_bytes()), 200);
    for k in COUNTS {
        assert_eq!(get(server.port, &format!("/r/iovecs/{k}/{BODY}")), 200);
    }
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let mut want = vec![("POST".to_string(), "/up".to_string())];
    want.extend(COUNTS.map(|k| ("GET".to_string(), format!("/r/iovecs/{k}/{BODY}"))));
    assert_eq!(method_targets(&ex), want, "{:#?}", out.stderr);
    assert_eq!(ex[0]["request_body"], body);
    assert_eq!(ex[0]["response_body"], "POST /up body=5000\n");
    for (e, k) in ex[1..].iter().zip(COUNTS) {
        assert_eq!(e["response_body_bytes"], BODY, "{k} iovecs: {e}");
        assert_eq!(e["response_complete"], true, "{k} iovecs: {e}");
        assert_eq!(e["response_body"], digits(BODY), "{k} iovecs: {e}");
    }
    out.assert_summary(1 + COUNTS.len());
}

#[test]
fn readv_and_writev_of_any_length() {
    trace_iovecs("readv", "writev");
}

#[test]
fn recvmsg_and_sendmsg_of_any_length() {
    trace_iovecs("recvmsg", "sendmsg");
}
