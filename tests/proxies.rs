//! Root integration tests with real proxies and app servers installed for them (Debian's
//! haproxy, varnish, gunicorn and uwsgi): HAProxy moving bodies with splice(2), Varnish's long
//! writev calls, gunicorn on a Unix socket behind nginx, uWSGI's binary protocol. Host only: the
//! VM guests skip them.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// haproxy in the foreground with `config` (a file in `dir`), until dropped.
fn haproxy(dir: &TempDir, config: &str, port: u16) -> Server {
    std::fs::write(dir.join("haproxy.cfg"), config).expect("write haproxy.cfg");
    let mut cmd = Command::new("haproxy");
    cmd.arg("-f").arg(dir.join("haproxy.cfg")).arg("-db");
    Server::start("haproxy", cmd, Some(port))
}

/// HAProxy with `option splice-response` in front of the example server: a 20 MB body, then two
/// small ones on the same client connection. HAProxy reads each response body from the origin
/// and writes it to the client with splice(2), through a pipe, even the 13-byte ones; the
/// bodies are read from the pipe's pages on both sides (raw-tracepoint: those sent to the client
/// from the notes taken as they came from the origin), keep their true size, and every exchange
/// is paired, complete, on every method.
#[test]
fn haproxy_splicing_a_20_mb_body_then_more_requests() {
    require_root!();
    if in_vm("haproxy_splicing_a_20_mb_body_then_more_requests") {
        return;
    }
    let origin = Server::ours("recv");
    let dir = TempDir::new("haproxy");
    let port = free_port();
    let config = format!(
        "global\n  maxconn 64\n  nbthread 1\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  \
         option http-keep-alive\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  option splice-response\n  default_backend be\n\
         backend be\n  server origin 127.0.0.1:{}\n",
        origin.port
    );
    let proxy = haproxy(&dir, &config, port);
    // 4 KiB copied per call rather than 64: 20 MB relayed at loopback speed and copied whole
    // both ways (40 MB of events in about 50 ms) outruns the event buffer, as a relay by
    // read and write would; what is lost is counted, but this test is of what is copied.
    let tracer = Tracer::start(&[proxy.pid()], &["--capture-bytes", "4096"]);
    const BIG: u64 = 20 * 1024 * 1024;
    let targets = [
        format!("/r/bytes/{BIG}"),
        "/r/bytes/13".into(),
        "/r/bytes/14".into(),
    ];
    let mut client = Client::connect(port);
    for target in &targets {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        client.send(&[raw.as_bytes()]);
        assert_eq!(client.responses(1), [200]);
    }
    drop(client);
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let want: Vec<_> = targets.iter().map(|p| t("GET", p, 200)).collect();
    for role in ["server", "client"] {
        let side: Vec<Value> = ex.iter().filter(|e| e["role"] == role).cloned().collect();
        assert_eq!(triples(&side), want, "{role}: stderr: {:#?}", out.stderr);
        for (e, size) in side.iter().zip([BIG, 13, 14]) {
            assert_eq!(
                (&e["response_body_bytes"], &e["response_complete"]),
                (&json!(size), &json!(true)),
                "{e}: stderr: {:#?}",
                out.stderr
            );
            // The body's start, up to what the first event of it kept (its head took the
            // rest of the 4 KiB).
            let body = e["response_body"].as_str().unwrap_or("");
            assert!(body.len() >= 13.min(size as usize), "{role}: {e}");
            assert_eq!(body, digits(body.len()), "{role}");
        }
    }
    // What was moved past the 4 KiB of each call (most of the 20 MB, each way), nothing else.
    let summary = out.summary();
    let not_kept = summary
        .strip_prefix("http-trace: 6 exchanges captured, 0 events lost, ")
        .and_then(|rest| rest.strip_suffix(" bytes counted but not captured"))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        not_kept.is_some_and(|n| n > BIG && n < 2 * BIG),
        "{summary}"
    );
}

/// Varnish (Debian's 7.1) caching in front of the example server. It writes each response head
/// with one writev of 19 to 24 iovecs, and asks the origin so too: every exchange on both
/// sides, bodies exact; a repeated request is answered from the cache, without a fetch.
#[test]
fn varnish_in_front_of_our_server() {
    require_root!();
    if in_vm("varnish_in_front_of_our_server") {
        return;
    }
    let origin = Server::ours("recv");
    let dir = TempDir::new("varnish");
    let port = free_port();
    let mut cmd = Command::new("varnishd");
    cmd.args(["-F", "-j", "none", "-s", "malloc,16m", "-n"])
        .arg(dir.path())
        .args(["-a", &format!("127.0.0.1:{port}")])
        .args(["-b", &format!("127.0.0.1:{}", origin.port)]);
    let varnish = Server::start("varnishd", cmd, Some(port));
    // Its manager and the child it forked, which serves.
    let tracer = Tracer::start(&[varnish.pid()], &[]);
    let sizes = [1000, 20_000, 3];
    for size in sizes.iter().chain(&[1000]) {
        let raw = format!("GET /r/bytes/{size} HTTP/1.1\r\nHost: v\r\n\r\n");
        assert_eq!(request(port, raw.as_bytes()), 200);
    }
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    for (role, sizes) in [
        ("server", &[1000, 20_000, 3, 1000][..]),
        ("client", &sizes[..]),
    ] {
        let side: Vec<&Value> = ex.iter().filter(|e| e["role"] == role).collect();
        let targets: Vec<String> = side.iter().map(|e| e["target"].to_string()).collect();
        let want: Vec<String> = sizes.iter().map(|n| format!("\"/r/bytes/{n}\"")).collect();
        assert_eq!(targets, want, "{role}: stderr: {:#?}", out.stderr);
        for (e, &n) in side.iter().zip(sizes) {
            // Varnish's child names its main thread cache-main (which ps shows) and its
            // workers cache-worker: the process's name and the thread's, apart.
            assert_eq!(
                (&e["comm"], &e["thread"]),
                (&json!("cache-main"), &json!("cache-worker"))
            );
            assert_eq!(e["status"], 200, "{e}");
            assert_eq!(e["response_complete"], true, "{e}");
            assert_eq!(e["response_body_bytes"], n, "{e}");
            assert_eq!(e["response_body"], digits(n.min(4096)), "{e}");
        }
    }
    out.assert_summary(7);
}

/// A WSGI app answering "hello PATH\n".
const APP: &str = "def application(environ, start_response):\n\
                   \x20   body = ('hello %s\\n' % environ.get('PATH_INFO', '/')).encode()\n\
                   \x20   start_response('200 OK', [('Content-Type', 'text/plain'),\n\
                   \x20                             ('Content-Length', str(len(body)))])\n\
                   \x20   return [body]\n";

/// gunicorn (its master and two sync workers) on a Unix socket; its group and the socket path.
fn gunicorn(dir: &TempDir) -> (Group, PathBuf) {
    std::fs::write(dir.join("app.py"), APP).expect("write app.py");
    let socket = dir.join("app.sock");
    let mut cmd = Command::new("gunicorn");
    cmd.arg("--chdir")
        .arg(dir.path())
        .arg("--bind")
        .arg(format!("unix:{}", socket.display()))
        .args(["--workers", "2", "app:application"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let group = Group::spawn("gunicorn", &mut cmd);
    let pid = group.pid();
    wait_until("gunicorn's two workers", Duration::from_secs(30), || {
        socket.exists() && children_of(pid).len() == 2
    });
    (group, socket)
}

/// Three requests to nginx, which proxies them to gunicorn over its Unix socket.
fn three_requests(nginx: &Server) {
    for i in 0..3 {
        let raw = format!("GET /g/{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(request(nginx.port, raw.as_bytes()), 200);
    }
}

fn want() -> Vec<(String, String, u64)> {
    (0..3).map(|i| t("GET", &format!("/g/{i}"), 200)).collect()
}

fn socket_name(path: &Path) -> Value {
    json!(path.to_string_lossy())
}

/// gunicorn behind nginx on a Unix socket, traced as gunicorn (its master's PID): every request
/// is served by a worker, on the socket's path, from nginx's process.
#[test]
fn gunicorn_on_a_unix_socket_behind_nginx() {
    require_root!();
    if in_vm("gunicorn_on_a_unix_socket_behind_nginx") {
        return;
    }
    let dir = TempDir::new("gunicorn");
    let (app, socket) = gunicorn(&dir);
    let workers = children_of(app.pid());
    let nginx = Server::nginx_proxy_to_unix(&socket);
    let mut tracer = Tracer::start(&[app.pid()], &[]);
    three_requests(&nginx);
    tracer.wait_for_records(3, Duration::from_secs(30));
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(triples(&ex), want(), "stderr: {:#?}", out.stderr);
    for e in &ex {
        let pid = e["pid"].as_u64().unwrap() as u32;
        assert!(workers.contains(&pid), "served by a worker, not {pid}: {e}");
        assert_eq!(
            (&e["role"], &e["local"], &e["peer"], &e["peer_pid"]),
            (
                &json!("server"),
                &socket_name(&socket),
                &Value::Null,
                &json!(nginx.pid())
            ),
            "{e}"
        );
        assert_eq!(
            e["response_body"],
            format!("hello {}\n", e["target"].as_str().unwrap())
        );
    }
    out.assert_summary(3);
}

/// The same, traced as nginx: each request served over TCP and asked of gunicorn over the Unix
/// socket, whose peer process is gunicorn's master (the kernel keeps the listener's for a
/// connected socket).
#[test]
fn nginx_calling_gunicorn_on_a_unix_socket() {
    require_root!();
    if in_vm("nginx_calling_gunicorn_on_a_unix_socket") {
        return;
    }
    let dir = TempDir::new("gunicorn");
    let (app, socket) = gunicorn(&dir);
    let nginx = Server::nginx_proxy_to_unix(&socket);
    let mut tracer = Tracer::start(&[nginx.pid()], &[]);
    three_requests(&nginx);
    tracer.wait_for_records(6, Duration::from_secs(30));
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    for role in ["server", "client"] {
        let side: Vec<Value> = ex.iter().filter(|e| e["role"] == role).cloned().collect();
        assert_eq!(triples(&side), want(), "{role}: stderr: {:#?}", out.stderr);
    }
    for e in ex.iter().filter(|e| e["role"] == "client") {
        assert_eq!(
            (&e["local"], &e["peer"], &e["peer_pid"]),
            (&Value::Null, &socket_name(&socket), &json!(app.pid())),
            "{e}"
        );
    }
    out.assert_summary(6);
}

/// One uwsgi-protocol request (what nginx's uwsgi_pass sends) for PATH_INFO `path`.
fn uwsgi_packet(path: &str) -> Vec<u8> {
    let mut vars = Vec::new();
    for (k, v) in [
        ("REQUEST_METHOD", "GET"),
        ("PATH_INFO", path),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
    ] {
        for s in [k, v] {
            vars.extend_from_slice(&(s.len() as u16).to_le_bytes());
            vars.extend_from_slice(s.as_bytes());
        }
    }
    let mut packet = vec![0u8];
    packet.extend_from_slice(&(vars.len() as u16).to_le_bytes());
    packet.push(0);
    packet.extend_from_slice(&vars);
    packet
}

/// uWSGI (Debian's, its master and one worker) speaking the uwsgi protocol: binary requests, HTTP
/// answers. Each request's bytes are non-HTTP traffic and each answer a response to a request
/// that was not HTTP, each counted once under that name (not as an early error answer).
#[test]
fn uwsgi_answers_binary_requests_in_http() {
    require_root!();
    if in_vm("uwsgi_answers_binary_requests_in_http") {
        return;
    }
    let dir = TempDir::new("uwsgi");
    std::fs::write(dir.join("app.py"), APP).expect("write app.py");
    let port = free_port();
    let mut cmd = Command::new("uwsgi");
    cmd.args([
        "--plugin",
        "python3",
        "--master",
        "--processes",
        "1",
        "--disable-logging",
    ])
    .arg("--socket")
    .arg(format!("127.0.0.1:{port}"))
    .arg("--wsgi-file")
    .arg(dir.join("app.py"));
    let uwsgi = Server::start("uwsgi", cmd, Some(port));
    let tracer = Tracer::start(&[uwsgi.pid()], &[]);
    let mut sent = 0;
    for path in ["/a", "/bb", "/ccc"] {
        let packet = uwsgi_packet(path);
        sent += packet.len();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(&packet).expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("the answer");
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n")
                && answer.ends_with(&format!("hello {path}\n")),
            "{answer}"
        );
    }
    let out = tracer.stop();
    out.assert_summary_with(
        0,
        &format!(
            ", 3 responses to bytes that were not an HTTP request (uwsgi, FastCGI, garbage), not \
             paired, \
             {sent} bytes of non-HTTP traffic skipped"
        ),
    );
}
