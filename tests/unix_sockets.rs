//! Root integration tests over Unix stream sockets: a server, a proxy calling an upstream on
//! one, a client, answers sent with sendmmsg; and --port applied in the kernel, which leaves
//! Unix connections out.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// curl with `--unix-socket path` and these URLs, to its end; its PID.
fn curl_unix(path: &std::path::Path, urls: &[&str]) -> u32 {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "--max-time", "30", "--unix-socket"])
        .arg(path)
        .args(urls)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut curl = Group::spawn("curl", &mut cmd);
    let status = curl.wait("curl", Duration::from_secs(60));
    assert!(status.success(), "curl {urls:?}: {status}");
    curl.pid()
}

/// HTTP over a Unix stream socket, the server traced: curl connects three times (one request,
/// two on one connection, then one whose HTTP/1.0 response ends when the server closes). That
/// last one is reported as soon as the socket is gone, while tracing goes on, with every method
/// (socket-tracepoint and raw-tracepoint see no close(2): the socket leaves /proc/PID/net/unix, seen missing twice).
/// `local` is the socket's path; the peer is unbound, and its PID is curl's.
#[test]
fn a_server_on_a_unix_socket() {
    require_root!();
    let (server, path) = Server::python_unix();
    let mut tracer = Tracer::start(&[server.pid()], &[]);
    let curls = [
        curl_unix(&path, &["http://x/one"]),
        curl_unix(&path, &["http://x/two", "http://x/three"]),
        curl_unix(&path, &["http://x/close"]),
    ];
    // The last is reported when two liveness checks a second apart miss its socket.
    tracer.wait_for_records(4, Duration::from_secs(30));
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/one", 200),
            t("GET", "/two", 200),
            t("GET", "/three", 200),
            t("GET", "/close", 200)
        ],
        "stderr: {:#?}",
        out.stderr
    );
    let peers = [curls[0], curls[1], curls[1], curls[2]];
    for (e, peer) in ex.iter().zip(peers) {
        assert_eq!(
            (&e["role"], &e["local"], &e["peer"], &e["peer_pid"]),
            (
                &json!("server"),
                &json!(path.to_string_lossy()),
                &Value::Null,
                &json!(peer)
            ),
            "{e}"
        );
    }
    assert_eq!(
        (&ex[3]["response_body"], &ex[3]["response_complete"]),
        (&json!("closing\n"), &json!(true)),
        "{}",
        ex[3]
    );
    out.assert_summary(4);
}

/// A server that calls an HTTP API on a Unix socket for every request: nginx as a reverse proxy
/// to a Python server on a Unix socket, traced as nginx. Each request shows twice: served over
/// TCP, and asked of the upstream over the Unix socket (nginx the client; the socket's path the
/// peer, the upstream's PID the peer's).
#[test]
fn a_proxy_calling_an_upstream_on_a_unix_socket() {
    require_root!();
    let (upstream, path) = Server::python_unix();
    let nginx = Server::nginx_proxy_to_unix(&path);
    let mut tracer = Tracer::start(&[nginx.pid()], &[]);
    three_requests_closing(nginx.port);
    tracer.wait_for_records(6, Duration::from_secs(30));
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let want = [
        t("GET", "/p/0", 200),
        t("GET", "/p/1", 200),
        t("GET", "/p/2", 200),
    ];
    for role in ["server", "client"] {
        let side: Vec<Value> = ex.iter().filter(|e| e["role"] == role).cloned().collect();
        assert_eq!(triples(&side), want, "{role}: stderr: {:#?}", out.stderr);
    }
    for e in ex.iter().filter(|e| e["role"] == "client") {
        assert_eq!(
            (&e["local"], &e["peer"], &e["peer_pid"]),
            (
                &Value::Null,
                &json!(path.to_string_lossy()),
                &json!(upstream.pid())
            ),
            "{e}"
        );
        let body = format!("unix {}\n", e["target"].as_str().unwrap());
        assert_eq!(e["response_body"], body.as_str(), "{e}");
    }
    out.assert_summary(6);
}

/// GET /p/0, /p/1 and /p/2, each on a connection of its own (nginx proxies each on its own).
fn three_requests_closing(port: u16) {
    for i in 0..3 {
        let raw = format!("GET /p/{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(request(port, raw.as_bytes()), 200);
    }
}

/// `--port` is applied in the kernel: a connection with the port at neither end is left out
/// there, none of its bytes copied, and counted as such; user space then has no exchange of it to
/// hide ("not shown: filtered" would say it had parsed them). nginx proxying to a Unix socket,
/// traced with its own port: its three Unix connections have no port. Then our server calling an
/// upstream, traced with the upstream's port: only that connection of four is followed.
#[test]
fn the_port_filter_leaves_other_connections_out_in_the_kernel() {
    require_root!();
    let (_upstream, path) = Server::python_unix();
    let nginx = Server::nginx_proxy_to_unix(&path);
    let port = nginx.port.to_string();
    let mut tracer = Tracer::start(&[nginx.pid()], &["--port", &port]);
    three_requests_closing(nginx.port);
    tracer.wait_for_records(3, Duration::from_secs(30));
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/p/0", 200),
            t("GET", "/p/1", 200),
            t("GET", "/p/2", 200)
        ],
        "stderr: {:#?}",
        out.stderr
    );
    assert!(ex.iter().all(|e| e["role"] == "server"), "{ex:#?}");
    out.assert_summary_with(3, ", 3 connections on no --port left out in the kernel");

    let server = Server::ours("recv");
    let upstream = Server::ours("read");
    let up = upstream.port.to_string();
    let mut tracer = Tracer::start(&[server.pid()], &["--port", &up]);
    assert_eq!(get(server.port, "/before"), 200);
    assert_eq!(get(server.port, &format!("/r/upstream/{up}/up")), 200);
    assert_eq!(get(server.port, "/after"), 200);
    tracer.wait_for_records(1, Duration::from_secs(30));
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        [t("GET", "/up", 200)],
        "stderr: {:#?}",
        out.stderr
    );
    assert_eq!(ex[0]["role"], "client", "{ex:#?}");
    out.assert_summary_with(1, ", 3 connections on no --port left out in the kernel");
}

/// A server on a Unix socket that answers with one sendmmsg(2) of two messages (head, body):
/// every method copies both (socket-tracepoint and fentry at the syscall's exit tracepoint).
#[test]
fn a_unix_socket_answered_with_sendmmsg_is_captured() {
    require_root!();
    let (server, path) = Server::python_unix();
    let tracer = Tracer::start(&[server.pid()], &[]);
    curl_unix(&path, &["http://x/mmsg/0", "http://x/after"]);
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [t("GET", "/mmsg/0", 200), t("GET", "/after", 200)],
        "stderr: {:#?}",
        out.stderr
    );
    assert_eq!(ex[0]["response_body"], "unix /mmsg/0\n");
    assert_eq!(ex[0]["response_complete"], true);
    assert_eq!(ex[1]["response_body"], "unix /after\n");
    out.assert_summary(2);
}

/// The client side over a Unix socket: Python's http.client on a connected Unix socket makes
/// two requests on one connection. The peer is the server's path, with the server's PID.
#[test]
fn a_client_on_a_unix_socket() {
    require_root!();
    let (server, path) = Server::python_unix();
    let script = "import http.client, socket, sys\n\
                  class C(http.client.HTTPConnection):\n\
                  \x20   def connect(self):\n\
                  \x20       self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
                  \x20       self.sock.connect(sys.argv[1])\n\
                  sys.stdin.readline()\n\
                  c = C('x')\n\
                  for p in ('/c/0', '/c/1'):\n\
                  \x20   c.request('GET', p); c.getresponse().read()\n\
                  c.close()\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script]).arg(&path).stdin(Stdio::piped());
    let mut client = Group::spawn("python unix client", &mut cmd);
    let tracer = Tracer::start(&[client.pid()], &[]);
    let mut stdin = client.take_stdin();
    stdin.write_all(b"go\n").expect("tell the client to go");
    let status = client.wait("the client to end", Duration::from_secs(60));
    drop(stdin);
    assert!(status.success(), "client: {status}");
    let out = tracer.wait();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [t("GET", "/c/0", 200), t("GET", "/c/1", 200)],
        "stderr: {:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(
            (&e["role"], &e["local"], &e["peer"], &e["peer_pid"]),
            (
                &json!("client"),
                &Value::Null,
                &json!(path.to_string_lossy()),
                &json!(server.pid())
            ),
            "{e}"
        );
        assert_eq!(
            e["response_body"],
            format!("unix {}\n", e["target"].as_str().unwrap())
        );
    }
    out.assert_summary_with(2, ", 1 process exited");
}
