//! Root integration tests of whole exchanges: responses of every framing, pairing, the client
//! side, connection lifetime and processes that fork. Real servers and clients, real BPF.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Trace a client program that waits for a line on stdin before it starts, and prints "done"
/// when it has finished; what the tracer printed, once it ended with the client.
fn trace_client(name: &str, mut cmd: Command) -> TraceOutput {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut client = Group::spawn(name, &mut cmd);
    let tracer = Tracer::start(&[client.pid()], &[]);
    let mut stdin = client.take_stdin();
    stdin.write_all(b"go\n").expect("tell the client to go");
    let mut stdout = client.take_stdout();
    let status = client.wait(&format!("{name} to end"), Duration::from_secs(60));
    drop(stdin);
    assert!(status.success(), "{name}: {status}");
    let mut said = String::new();
    stdout.read_to_string(&mut said).expect("read stdout");
    assert_eq!(said, "done\n");
    let out = tracer.wait();
    out.assert_said("http-trace: every traced process has exited");
    out
}

/// Response bodies small enough for one event per send call, and bigger, through each send
/// call: every size is counted exactly and the kept start is the body's.
#[test]
fn response_sizes_across_event_boundaries() {
    require_root!();
    let sizes = [100u64, 8000, 9000, 40000];
    for send in ["writev", "sendmsg", "write"] {
        let server = Server::ours_with("recv", send);
        let tracer = Tracer::start(&[server.pid()], &[]);
        let urls: Vec<String> = sizes
            .iter()
            .map(|n| format!("http://127.0.0.1:{}/r/bytes/{n}", server.port))
            .collect();
        curl(&urls.iter().map(String::as_str).collect::<Vec<_>>());
        let out = tracer.stop();
        let ex = by_time(out.exchanges());
        let got: Vec<u64> = ex
            .iter()
            .map(|e| e["response_body_bytes"].as_u64().unwrap())
            .collect();
        assert_eq!(got, sizes, "{send}: stderr {:#?}", out.stderr);
        for (e, &n) in ex.iter().zip(&sizes) {
            let kept = n.min(4096) as usize;
            assert_eq!(e["response_body"], digits(kept), "{send} {n}");
            assert_eq!(e["response_body_cut"], n > 4096, "{send} {n}");
            assert_eq!(e["response_complete"], true, "{send} {n}");
        }
        out.assert_summary(sizes.len());
    }
}

#[test]
fn responses_of_every_framing() {
    require_root!();
    let server = Server::ours_with("recv", "writev");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let base = format!("http://127.0.0.1:{}", server.port);
    curl(&[&format!("{base}/r/chunked")]);
    curl(&["-I", &format!("{base}/head")]);
    curl(&[&format!("{base}/r/file")]);
    curl(&[&format!("{base}/r/close")]);
    curl(&[&format!("{base}/r/status/204")]);
    curl(&[&format!("{base}/r/status/304")]);
    curl(&[
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        "abc",
        &format!("{base}/continue"),
    ]);
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/r/chunked", 200),
            t("HEAD", "/head", 200),
            t("GET", "/r/file", 200),
            t("GET", "/r/close", 200),
            t("GET", "/r/status/204", 204),
            t("GET", "/r/status/304", 304),
            t("POST", "/continue", 200),
        ],
        "stderr: {:#?}",
        out.stderr
    );
    let sizes: Vec<u64> = ex
        .iter()
        .map(|e| e["response_body_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [25, 0, 5000, 20, 0, 0, 22]);
    assert_eq!(ex[0]["response_body"], "GET /r/chunked body=0\nend");
    // sendfile's bytes are counted, never copied: the body is known by size only.
    assert_eq!(ex[2]["response_body"], "");
    assert_eq!(ex[2]["response_body_cut"], true);
    assert_eq!(ex[3]["response_body"], "GET /r/close body=0\n");
    assert_eq!(ex[6]["request_body"], "abc");
    for e in &ex {
        assert_eq!(e["request_complete"], true, "{e}");
        assert_eq!(e["response_complete"], true, "{e}");
    }
    out.assert_summary(7);
}

/// A relay written in Go (io.Copy between two TCP connections: splice(2) through a pipe, both
/// ways) in front of the example server, four requests on one connection: every exchange on
/// both of its connections, heads and bodies read from the pipe's pages, the request body too,
/// sizes exact; nothing counted as lost.
#[test]
fn a_go_relay_splicing_both_ways() {
    require_root!();
    let origin = Server::ours("recv");
    let mut cmd = Command::new(go_program("splice_relay"));
    cmd.args(["127.0.0.1:0", &format!("127.0.0.1:{}", origin.port)]);
    let relay = Server::start("splice_relay", cmd, None);
    let tracer = Tracer::start(&[relay.pid()], &[]);
    let upload = digits(5000);
    let requests = [
        "GET /r/bytes/100 HTTP/1.1\r\nHost: r\r\n\r\n".to_string(),
        format!("POST /upload HTTP/1.1\r\nHost: r\r\nContent-Length: 5000\r\n\r\n{upload}"),
        "GET /r/bytes/200000 HTTP/1.1\r\nHost: r\r\n\r\n".to_string(),
        "GET /after HTTP/1.1\r\nHost: r\r\n\r\n".to_string(),
    ];
    let mut client = Client::connect(relay.port);
    for raw in &requests {
        assert_eq!(client.send(&[raw.as_bytes()]).responses(1), [200]);
    }
    drop(client);
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    for role in ["server", "client"] {
        let side: Vec<&Value> = ex.iter().filter(|e| e["role"] == role).collect();
        let got: Vec<_> = side
            .iter()
            .map(|e| {
                (
                    e["method"].as_str().unwrap_or("?"),
                    e["target"].as_str().unwrap_or("?"),
                    e["status"].as_u64().unwrap_or(0),
                    e["request_body_bytes"].as_u64().unwrap_or(0),
                    e["response_body_bytes"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("GET", "/r/bytes/100", 200, 0, 100),
                ("POST", "/upload", 200, 5000, 23),
                ("GET", "/r/bytes/200000", 200, 0, 200000),
                ("GET", "/after", 200, 0, 18),
            ],
            "{role}: stderr: {:#?}",
            out.stderr
        );
        assert_eq!(side[0]["response_body"], digits(100), "{role}");
        assert_eq!(side[1]["request_body"], digits(4096), "{role}");
        assert_eq!(
            side[1]["response_body"], "POST /upload body=5000\n",
            "{role}"
        );
        assert_eq!(side[2]["response_body"], digits(4096), "{role}");
        assert_eq!(side[3]["response_body"], "GET /after body=0\n", "{role}");
        for e in &side {
            assert_eq!(
                (&e["request_complete"], &e["response_complete"]),
                (&json!(true), &json!(true)),
                "{e}"
            );
        }
    }
    out.assert_summary(8);
}

/// Bodies moved into the socket with splice(2) from a pipe the server fills (with write, with
/// vmsplice, by tee from another pipe) are read from the pipe's pages (their first
/// --capture-bytes), their sizes exact, and the next exchange on the keep-alive connection is
/// found after them. raw-tracepoint, which sees no splice enter, rebuilds where the bytes sent
/// began from notes the calls that filled the pipe left.
#[test]
fn a_body_spliced_into_the_socket_is_captured() {
    require_root!();
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let base = format!("http://127.0.0.1:{}", server.port);
    let spliced = ["/r/splice/200000", "/r/vmsplice/100000", "/r/tee/50000"];
    // One connection: curl reuses it for all.
    let urls: Vec<String> = spliced
        .iter()
        .chain(&["/after"])
        .map(|p| format!("{base}{p}"))
        .collect();
    curl(&urls.iter().map(String::as_str).collect::<Vec<_>>());
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let mut want: Vec<_> = spliced.iter().map(|p| t("GET", p, 200)).collect();
    want.push(t("GET", "/after", 200));
    assert_eq!(triples(&ex), want, "stderr: {:#?}", out.stderr);
    for (e, size) in ex.iter().zip([200000, 100000, 50000]) {
        assert_eq!(e["response_body_bytes"], size, "{e}");
        assert_eq!(e["response_body"], "s".repeat(4096), "{e}");
    }
    assert_eq!(ex[3]["response_body"], "GET /after body=0\n");
    for e in &ex {
        assert_eq!(e["response_complete"], true, "{e}");
    }
    out.assert_summary(4);
}

#[test]
fn pipelined_requests_pair_with_their_responses() {
    require_root!();
    let server = Server::ours("read");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut c = Client::connect(server.port);
    c.send(&[b"GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 1\r\n\r\nzGET /d HTTP/1.1\r\n\r\n"]);
    c.read_until(b"GET /d body=0\n");
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/a", 200),
            t("HEAD", "/b", 200),
            t("POST", "/c", 200),
            t("GET", "/d", 200)
        ]
    );
    // Each response names its request: pairing is exact.
    let bodies: Vec<&str> = ex
        .iter()
        .map(|e| e["response_body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["GET /a body=0\n", "", "POST /c body=1\n", "GET /d body=0\n"]
    );
    out.assert_summary(4);
}

#[test]
fn a_one_megabyte_upload() {
    require_root!();
    const SIZE: usize = 1_000_000;
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut req = format!("PUT /upload HTTP/1.1\r\nContent-Length: {SIZE}\r\n\r\n").into_bytes();
    req.extend((0..SIZE).map(|i| b'0' + (i % 10) as u8));
    assert_eq!(request(server.port, &req), 200);
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(triples(&ex), [t("PUT", "/upload", 200)]);
    assert_eq!(ex[0]["request_body_bytes"], SIZE);
    assert_eq!(ex[0]["request_complete"], true);
    assert_eq!(ex[0]["request_body_cut"], true);
    assert!(ex[0]["request_body"]
        .as_str()
        .unwrap()
        .starts_with("0123456789012"));
    assert_eq!(ex[0]["response_body"], format!("PUT /upload body={SIZE}\n"));
    out.assert_summary(1);
}

#[test]
fn a_thousand_requests_in_a_row() {
    require_root!();
    const N: usize = 1000;
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut c = Client::connect(server.port);
    for i in 0..N {
        c.send(&[format!("GET /k/{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()]);
        assert_eq!(c.responses(1), [200]);
    }
    let out = tracer.stop();
    let ex = out.exchanges();
    let want: Vec<_> = (0..N).map(|i| t("GET", &format!("/k/{i}"), 200)).collect();
    assert_eq!(triples(&ex), want);
    out.assert_summary(N);
}

/// A connection opened before tracing, whose server thread is already blocked in a receive.
#[test]
fn connections_open_before_tracing_are_followed_from_their_next_request() {
    require_root!();
    let server = Server::ours("recv");
    let mut c = Client::connect(server.port);
    c.send(&[b"GET /before HTTP/1.1\r\n\r\n"]);
    assert_eq!(c.responses(1), [200]);
    wait_until(
        "the connection's thread to block in recvfrom",
        Duration::from_secs(10),
        || threads_blocked_in(server.pid(), &[libc::SYS_recvfrom]) == 1,
    );
    let tracer = Tracer::start(&[server.pid()], &[]);
    assert!(
        tracer
            .banner
            .iter()
            .any(|l| l.contains("; 1 connection already open, followed from their next message;")),
        "{:#?}",
        tracer.banner
    );
    for target in ["/after/1", "/after/2"] {
        c.send(&[format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()]);
        assert_eq!(c.responses(1), [200]);
    }
    let out = tracer.stop();
    let ex = out.exchanges();
    for e in &ex {
        assert_eq!(e["role"], "server");
        assert_eq!(e["peer"], format!("127.0.0.1:{}", c.local_port()));
        assert_eq!(e["local"], format!("127.0.0.1:{}", server.port));
    }
    let method = attach_method();
    if matches!(method.as_str(), "kprobe" | "fentry") {
        // A return probe attached while the call waits never fires for it: the receive already
        // blocked at start is lost, and its response is reported without its request.
        assert_eq!(triples(&ex), [t("GET", "/after/2", 200)]);
        assert_eq!(
            out.summary(),
            "http-trace: 1 exchange captured, 0 events lost, 1 response whose request was not seen"
        );
        skipped(
            "connections_open_before_tracing_are_followed_from_their_next_request",
            &format!(
                "with {method} the receive blocked before tracing is lost (its return probe \
                 never fires), so its connection is followed from the request after; checked \
                 that this is what is reported"
            ),
        );
        return;
    }
    // Syscall tracepoints fire on the way out of it too, and its arguments are recovered.
    assert_eq!(
        triples(&ex),
        [t("GET", "/after/1", 200), t("GET", "/after/2", 200)]
    );
    out.assert_summary(2);
}

/// nginx accepts only once a connection is ready, so a new connection gets the fd just freed (a
/// blocking accept, as in our server, takes its fd before it waits).
#[test]
fn a_reused_fd_is_a_new_connection() {
    require_root!();
    let server = Server::nginx(0);
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut a = Client::connect(server.port);
    a.send(&[b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"]);
    assert_eq!(a.responses(1), [200]);
    // Half a head, then the connection ends: the server closes its fd.
    a.send(&[b"GET /cut HTTP/1.1\r\nX-Half: "]);
    let socket = a.server_socket_inode();
    assert!(socket_fd(server.pid(), socket).is_some());
    drop(a);
    wait_until(
        "nginx to close the first connection's fd",
        Duration::from_secs(10),
        || socket_fd(server.pid(), socket).is_none(),
    );
    let mut b = Client::connect(server.port);
    b.send(&[b"GET /second HTTP/1.1\r\nHost: b\r\n\r\n"]);
    assert_eq!(b.responses(1), [200]);
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        [t("GET", "/first", 200), t("GET", "/second", 200)]
    );
    assert_eq!(ex[0]["fd"], ex[1]["fd"], "the fd was not reused: {ex:#?}");
    assert_eq!(ex[1]["request_headers"], serde_json::json!([["Host", "b"]]));
    assert_eq!(
        out.summary(),
        "http-trace: 2 exchanges captured, 0 events lost, 1 partial message head dropped"
    );
}

#[test]
fn a_request_still_unanswered_when_tracing_ends_is_reported() {
    require_root!();
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut c = Client::connect(server.port);
    c.send(&[b"GET /r/slow HTTP/1.1\r\n\r\n"]);
    // The request read, its thread sleeps before answering (3 s).
    wait_until(
        "the server to read the request and sleep",
        Duration::from_secs(10),
        || {
            threads_blocked_in(
                server.pid(),
                &[libc::SYS_clock_nanosleep, libc::SYS_nanosleep],
            ) == 1
        },
    );
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(triples(&ex), [t("GET", "/r/slow", 0)]);
    assert_eq!(ex[0]["status"], Value::Null);
    assert_eq!(ex[0]["latency_ms"], Value::Null);
    assert_eq!(
        out.summary(),
        "http-trace: 1 exchange captured, 0 events lost, 1 without a response"
    );
}

#[test]
fn a_server_calling_upstream_is_traced_on_both_sides() {
    require_root!();
    let upstream = Server::ours("recv");
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut c = Client::connect(server.port);
    c.send(&[format!("GET /r/upstream/{}/data HTTP/1.1\r\n\r\n", upstream.port).as_bytes()]);
    assert_eq!(c.responses(1), [200]);
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", &format!("/r/upstream/{}/data", upstream.port), 200),
            t("GET", "/data", 200)
        ]
    );
    assert_eq!(ex[0]["role"], "server");
    assert_eq!(ex[1]["role"], "client");
    assert_eq!(ex[1]["peer"], format!("127.0.0.1:{}", upstream.port));
    assert_eq!(ex[1]["response_body"], "GET /data body=0\n");
    assert_eq!(ex[0]["response_body"], "GET /data body=0\n");
    // The outer exchange took at least as long as the call it made.
    assert!(ex[0]["latency_ms"].as_f64() >= ex[1]["latency_ms"].as_f64());
    out.assert_summary(2);
}

#[test]
fn a_python_client_making_outgoing_calls() {
    require_root!();
    let server = Server::ours("recv");
    let script = "import sys, http.client\n\
                  sys.stdin.readline()\n\
                  c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))\n\
                  for i in range(3):\n\
                  \x20   c.request('POST' if i == 1 else 'GET', '/py/%d' % i, body=b'x' * i)\n\
                  \x20   r = c.getresponse(); r.read()\n\
                  print('done', flush=True)\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script, &server.port.to_string()]);
    let out = trace_client("python", cmd);
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/py/0", 200),
            t("POST", "/py/1", 200),
            t("GET", "/py/2", 200)
        ]
    );
    for e in &ex {
        assert_eq!(e["role"], "client", "{e}");
        assert_eq!(e["comm"], "python3");
        assert_eq!(e["peer"], format!("127.0.0.1:{}", server.port));
    }
    assert_eq!(ex[1]["request_body"], "x");
    assert_eq!(ex[1]["response_body"], "POST /py/1 body=1\n");
    out.assert_summary_with(3, ", 1 process exited");
}

/// A client that shuts its sending side down after the request (as `nc -N` does) gets the
/// response and the server's FIN in FIN_WAIT2, where TCP goes to CLOSE at once: the response is
/// read from a socket already CLOSE, and is captured all the same.
#[test]
fn a_response_read_after_the_connection_reached_close() {
    require_root!();
    let server = Server::ours("recv");
    let script = "import sys, socket, time\n\
                  sys.stdin.readline()\n\
                  for i in range(3):\n\
                  \x20   c = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n\
                  \x20   c.sendall(b'GET /shut/%d HTTP/1.1\\r\\nHost: h\\r\\nConnection: close\\r\\n\\r\\n' % i)\n\
                  \x20   c.shutdown(socket.SHUT_WR)\n\
                  \x20   deadline = time.time() + 10\n\
                  \x20   while c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] != 7:\n\
                  \x20       assert time.time() < deadline, 'the socket never reached CLOSE'\n\
                  \x20       time.sleep(0.01)\n\
                  \x20   data = b''\n\
                  \x20   while True:\n\
                  \x20       d = c.recv(65536)\n\
                  \x20       if not d: break\n\
                  \x20       data += d\n\
                  \x20   assert data.startswith(b'HTTP/1.1 200'), data\n\
                  \x20   c.close()\n\
                  print('done', flush=True)\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script, &server.port.to_string()]);
    let out = trace_client("python", cmd);
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/shut/0", 200),
            t("GET", "/shut/1", 200),
            t("GET", "/shut/2", 200)
        ]
    );
    for e in &ex {
        assert_eq!(e["role"], "client", "{e}");
        assert_eq!(
            e["response_body"],
            format!("GET {} body=0\n", e["target"].as_str().unwrap())
        );
    }
    out.assert_summary_with(3, ", 1 process exited");
}

/// A client that sends its request and closes at once (a health check that gave up, wrk at the
/// end of its run): the answer reaches a closed socket, whose RST the kernel hands to the
/// server's socket inside the server's own send (loopback), taking it to CLOSE before the call
/// returns. The answer is that call's bytes, captured, not bytes moved unseen.
#[test]
fn an_answer_sent_into_a_reset_is_captured() {
    require_root!();
    let server = Server::ours_with("recv", "writev");
    let mut tracer = Tracer::start(&[server.pid()], &[]);
    for ms in [100, 101, 102] {
        let mut client = Client::connect(server.port);
        client.send(&[format!("GET /r/sleep/{ms} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()]);
        // Closed before the answer, which comes after `ms` milliseconds.
    }
    tracer.wait_for_records(3, Duration::from_secs(30));
    let out = tracer.stop();
    let ex = out.exchanges();
    // Three server threads answer at about the same time.
    let mut seen = triples(&ex);
    seen.sort();
    assert_eq!(
        seen,
        [
            t("GET", "/r/sleep/100", 200),
            t("GET", "/r/sleep/101", 200),
            t("GET", "/r/sleep/102", 200)
        ]
    );
    for e in &ex {
        assert_eq!(
            e["response_body"],
            format!("GET {} body=0\n", e["target"].as_str().unwrap())
        );
    }
    out.assert_summary(3);
}

/// A client whose TCP connections get fd numbers that a UDP socket held just before (a DNS
/// lookup, a metrics client): whether an fd is followed is decided by its socket, so none of
/// the connections is missed.
#[test]
fn connections_on_fd_numbers_a_udp_socket_held_are_followed() {
    require_root!();
    let server = Server::ours("recv");
    let script = "import sys, socket\n\
                  sys.stdin.readline()\n\
                  for i in range(3):\n\
                  \x20   u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
                  \x20   u.sendto(b'metric:1|c', ('127.0.0.1', 9)); fd = u.fileno(); u.close()\n\
                  \x20   c = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n\
                  \x20   assert c.fileno() == fd, (c.fileno(), fd)\n\
                  \x20   c.sendall(b'GET /after-udp/%d HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' % i)\n\
                  \x20   while c.recv(65536): pass\n\
                  \x20   c.close()\n\
                  print('done', flush=True)\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script, &server.port.to_string()]);
    let out = trace_client("python", cmd);
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/after-udp/0", 200),
            t("GET", "/after-udp/1", 200),
            t("GET", "/after-udp/2", 200)
        ],
        "stderr: {:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(e["role"], "client", "{e}");
    }
    out.assert_summary_with(3, ", 1 process exited");
}

/// A server that answers with sendmmsg(2), head and body as two messages: every method copies
/// both (socket-tracepoint and fentry at the syscall's exit tracepoint), on one connection.
#[test]
fn responses_sent_with_sendmmsg_are_captured() {
    require_root!();
    let mut server = Server::ours_with("recv", "sendmmsg");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let mut client = Client::connect(server.port);
    for i in 0..3 {
        let request = format!("GET /mm/{i} HTTP/1.1\r\nHost: x\r\n\r\n");
        client.send(&[request.as_bytes()]);
        assert_eq!(client.responses(1), [200]);
    }
    drop(client);
    let out = tracer.stop();
    server.end();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/mm/0", 200),
            t("GET", "/mm/1", 200),
            t("GET", "/mm/2", 200)
        ],
        "stderr: {:#?}",
        out.stderr
    );
    for (i, e) in ex.iter().enumerate() {
        assert_eq!(e["response_body"], format!("GET /mm/{i} body=0\n"), "{e}");
    }
    out.assert_summary(3);
}

/// ApacheBench as the client, with keep-alive (HTTP/1.0's, which nginx answers): every request
/// is captured, none is missed.
#[test]
fn apache_bench_as_the_client() {
    require_root!();
    let server = Server::nginx(0);
    let url = format!("http://127.0.0.1:{}/ab", server.port);
    // The shell waits for the tracer, then becomes ab (same PID).
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "read go && exec ab -q -k -n 20 -c 1 \"$0\" > /dev/null",
        &url,
    ])
    .stdin(Stdio::piped());
    let mut client = Group::spawn("ab", &mut cmd);
    let tracer = Tracer::start(&[client.pid()], &[]);
    let mut stdin = client.take_stdin();
    stdin.write_all(b"go\n").expect("tell ab to go");
    let status = client.wait("ab to end", Duration::from_secs(60));
    drop(stdin);
    assert!(status.success(), "ab: {status}");
    let out = tracer.wait();
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        vec![t("GET", "/ab", 200); 20],
        "stderr: {:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(
            (&e["role"], &e["comm"]),
            (&json!("client"), &json!("ab")),
            "{e}"
        );
    }
    out.assert_summary_with(20, ", 1 process exited");
}

/// node's http client connects without blocking (connect returns EINPROGRESS).
#[test]
fn a_node_client_with_non_blocking_connects() {
    require_root!();
    let server = Server::ours("recv");
    let script = "process.stdin.once('data', async () => {\n\
                    const get = (path) => new Promise((ok) => require('http').get(\n\
                      { host: '127.0.0.1', port: Number(process.argv[1]), path, agent: false },\n\
                      (res) => { res.resume(); res.on('end', ok); }));\n\
                    await get('/node/1'); await get('/node/2');\n\
                    console.log('done'); process.exit(0);\n\
                  });";
    let mut cmd = Command::new("node");
    cmd.args(["-e", script, &server.port.to_string()]);
    let out = trace_client("node", cmd);
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [t("GET", "/node/1", 200), t("GET", "/node/2", 200)]
    );
    for e in &ex {
        assert_eq!(e["role"], "client", "{e}");
        assert_eq!(e["peer"], format!("127.0.0.1:{}", server.port));
        assert_eq!(e["response_complete"], true);
    }
    out.assert_summary_with(2, ", 1 process exited");
}

/// A non-blocking connect that returns before the handshake ends: the socket is followed from
/// SYN_SENT, where TCP has not yet learned where the peer's bytes start (copied_seq is 0 until
/// the SYN-ACK). The server's accept queue is full, so its kernel drops the first SYN and the
/// handshake ends a second later, at the retransmit. Three rounds: a stale start, half the time,
/// looks like a count of bytes that went by unseen.
#[test]
fn connects_that_end_after_their_call_returned() {
    require_root!();
    let server_script = "import socket, sys\n\
                         l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(0)\n\
                         port = l.getsockname()[1]\n\
                         for i in range(3):\n\
                         \x20   filler = socket.create_connection(('127.0.0.1', port))\n\
                         \x20   print(port, flush=True)\n\
                         \x20   sys.stdin.readline()\n\
                         \x20   l.accept()[0].close(); filler.close()\n\
                         \x20   c = l.accept()[0]\n\
                         \x20   req = b''\n\
                         \x20   while not req.endswith(b'\\r\\n\\r\\n'): req += c.recv(4096)\n\
                         \x20   c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')\n\
                         \x20   c.close()\n";
    let client_script = "import socket, select, sys\n\
                         for i in range(3):\n\
                         \x20   port = int(sys.stdin.readline())\n\
                         \x20   s = socket.socket(); s.setblocking(False)\n\
                         \x20   print(s.connect_ex(('127.0.0.1', port)), flush=True)\n\
                         \x20   assert select.select([], [s], [], 30)[1], 'no handshake'\n\
                         \x20   s.setblocking(True)\n\
                         \x20   s.sendall(b'GET /late/%d HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n' % i)\n\
                         \x20   resp = b''\n\
                         \x20   while not resp.endswith(b'ok'): resp += s.recv(4096)\n\
                         \x20   s.close()\n";
    // Each told what to do on stdin, and saying where it is on stdout.
    let python = |what: &str, script: &str| {
        let mut group = Group::spawn(
            what,
            Command::new(PYTHON)
                .args(["-c", script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        );
        let (stdin, stdout) = (group.take_stdin(), group.stdout_lines());
        (group, stdin, stdout)
    };
    let (_server, mut server_in, server_out) = python("python server", server_script);
    let (mut client, mut client_in, client_out) = python("python client", client_script);
    let tracer = Tracer::start(&[client.pid()], &[]);
    let timeout = Duration::from_secs(30);
    for _ in 0..3 {
        // The server's accept queue is full: the client's SYN is dropped.
        let port = server_out.recv_timeout(timeout).expect("the server's port");
        writeln!(client_in, "{port}").expect("tell the client to connect");
        let connected = client_out.recv_timeout(timeout).expect("connect's result");
        assert_eq!(connected, libc::EINPROGRESS.to_string(), "connect_ex");
        // Room for the retransmitted SYN.
        writeln!(server_in, "accept").expect("tell the server to accept");
    }
    let status = client.wait("the client to end", Duration::from_secs(60));
    assert!(status.success(), "client: {status}");
    let out = tracer.wait();
    assert_eq!(
        triples(&out.exchanges()),
        [
            t("GET", "/late/0", 200),
            t("GET", "/late/1", 200),
            t("GET", "/late/2", 200)
        ]
    );
    out.assert_summary_with(3, ", 1 process exited");
}

/// Heads up to 64 KiB are captured whole.
#[test]
fn a_60_kib_head_is_captured_whole() {
    require_root!();
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let big = "c".repeat(60 * 1024);
    let req = format!("GET /big-head HTTP/1.1\r\nX-Big: {big}\r\nX-After: yes\r\n\r\n");
    assert_eq!(request(server.port, req.as_bytes()), 200);
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(triples(&ex), [t("GET", "/big-head", 200)]);
    assert_eq!(header(&ex[0], "x-big"), [big.as_str()]);
    assert_eq!(header(&ex[0], "x-after"), ["yes"]);
    out.assert_summary(1);
}

/// Trailer fields both ways, with node's http server: a chunked POST whose trailer carries a
/// checksum, answered chunked with trailers of its own, one of them a secret header (redacted,
/// as a header would be). JSON carries them; -v shows them after the body; HAR has them as
/// `_trailers` and counts them in headersSize.
#[test]
fn trailer_fields_both_ways() {
    require_root!();
    let script = "require('http').createServer((q, s) => { q.resume(); q.on('end', () => { \
                  s.writeHead(200, {'Trailer': 'X-Parts, X-Api-Key'}); s.write('ok:'); \
                  s.write(q.trailers['x-checksum']); \
                  s.addTrailers({'X-Parts': '2', 'X-Api-Key': 'k3y'}); s.end(); }); })\
                  .listen(0, '127.0.0.1', function () { \
                  console.log('listening on 127.0.0.1:' + this.address().port); });";
    let mut cmd = Command::new("node");
    cmd.args(["-e", script]);
    let server = Server::start("node", cmd, None);
    let tracer = Tracer::start(&[server.pid()], &[]);
    let raw = b"POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\
                Trailer: X-Checksum\r\nConnection: close\r\n\r\n\
                3\r\nabc\r\n0\r\nX-Checksum: 9001\r\n\r\n";
    assert_eq!(request(server.port, raw), 200);
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(ex.len(), 1, "{:#?}", out.stderr);
    let e = &ex[0];
    assert_eq!(
        (&e["request_body"], &e["request_trailers"]),
        (&json!("abc"), &json!([["X-Checksum", "9001"]])),
        "{e}"
    );
    assert_eq!(
        (&e["response_body"], &e["response_trailers"]),
        (
            &json!("ok:9001"),
            &json!([["X-Parts", "2"], ["X-Api-Key", "<redacted>"]])
        ),
        "{e}"
    );
    out.assert_summary(1);
    let text = out.replayed(&["-v"]);
    assert!(
        text.contains("    > abc\n    > [trailer fields]\n    > X-Checksum: 9001\n")
            && text.ends_with(
                "    < ok:9001\n    < [trailer fields]\n    < X-Parts: 2\n    < X-Api-Key: <redacted>\n"
            ),
        "{text}"
    );
    let har: Value = serde_json::from_str(&out.replayed(&["-o", "har"])).expect("HAR");
    let entry = &har["log"]["entries"][0];
    assert_eq!(
        entry["request"]["_trailers"],
        json!([{"name": "X-Checksum", "value": "9001"}])
    );
    assert_eq!(entry["response"]["_trailers"][1]["value"], "<redacted>");
    // The head as sent, and the trailer field lines ("X-Checksum: 9001\r\n").
    let head = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(entry["request"]["headersSize"], json!(head + 18));
}
