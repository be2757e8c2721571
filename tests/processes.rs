//! Root integration tests of processes that share and pass sockets: servers that fork a
//! process per connection (busybox httpd on dup2 copies, children forked after tracing started),
//! nginx's master and workers traced by the master's PID, node's cluster passing connections to
//! its workers.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// GET `{prefix}0` to `{prefix}2` from a server that forks a child per connection, each on its
/// own connection; once the children exited, stop `tracer`: what it printed, and the exchanges
/// in time order, checked to be those three, answered.
fn three_gets_to_a_forking_server(
    tracer: Tracer,
    server: &Server,
    prefix: &str,
) -> (TraceOutput, Vec<Value>) {
    for i in 0..3 {
        assert_eq!(get(server.port, &format!("{prefix}{i}")), 200);
    }
    wait_until("the children to exit", Duration::from_secs(10), || {
        children_of(server.pid()).into_iter().all(has_exited)
    });
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let want: Vec<_> = (0..3)
        .map(|i| t("GET", &format!("{prefix}{i}"), 200))
        .collect();
    assert_eq!(triples(&ex), want, "stderr: {:#?}", out.stderr);
    (out, ex)
}

/// busybox httpd forks a child per connection, which dup2()s the accepted socket to fds 0 and 1
/// and closes the original: it reads the request on fd 0 and writes the response on fd 1. One
/// socket, so one connection, from the parent's accept to the child's exit: each exchange is
/// paired, named by the request's fd, with the response's alongside.
#[test]
fn busybox_httpd_serving_on_dup2_copies_of_the_socket() {
    require_root!();
    let server = Server::busybox_httpd();
    let tracer = Tracer::start(&[server.pid()], &[]);
    let (out, ex) = three_gets_to_a_forking_server(tracer, &server, "/index.html?");
    for e in &ex {
        assert_ne!(e["pid"], server.pid(), "served by a child: {e}");
        assert_eq!(
            (&e["role"], &e["fd"], &e["response_pid"], &e["response_fd"]),
            (&json!("server"), &json!(0), &e["pid"], &json!(1)),
            "{e}"
        );
        assert_eq!(e["response_body_bytes"], 6, "{e}");
    }
    assert_eq!(
        out.summary(),
        "http-trace: 3 exchanges captured, 0 events lost, 3 child processes followed, \
         3 processes exited"
    );
}

/// Node's cluster module on Linux: the primary accepts every connection and passes it to a
/// worker over a Unix socket (SCM_RIGHTS), then closes its own fd. The worker's fd is another
/// number in another process, for the same socket: one connection, from the primary's accept
/// to the worker's close, each exchange named by the worker that served it.
#[test]
fn node_cluster_workers_serving_connections_the_primary_passed() {
    require_root!();
    let script = "const cluster = require('cluster'), http = require('http');\n\
                  if (cluster.isPrimary) {\n\
                  \x20 cluster.schedulingPolicy = cluster.SCHED_RR;\n\
                  \x20 let ready = 0;\n\
                  \x20 for (let i = 0; i < 2; i++) cluster.fork().on('listening', (a) => {\n\
                  \x20   if (++ready === 2) console.log('listening on 127.0.0.1:' + a.port);\n\
                  \x20 });\n\
                  } else {\n\
                  \x20 http.createServer((req, res) => res.end('pid ' + process.pid + '\\n'))\n\
                  \x20   .listen(Number(process.argv[1]), '127.0.0.1');\n\
                  }\n";
    let mut cmd = Command::new("node");
    cmd.args(["-e", script, &free_port().to_string()]);
    let server = Server::start("node cluster", cmd, None);
    let workers = children_of(server.pid());
    assert_eq!(workers.len(), 2, "workers: {workers:?}");

    let tracer = Tracer::start(&[server.pid()], &[]);
    for i in 0..4 {
        // Node answers an HTTP/1.1 request without Host with 400.
        let raw = format!("GET /cluster/{i} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(request(server.port, raw.as_bytes()), 200);
    }
    // Two requests on one connection: the worker keeps it.
    let mut client = Client::connect(server.port);
    client.send(&[b"GET /cluster/kept/0 HTTP/1.1\r\nHost: x\r\n\r\n"]);
    client.responses(1);
    client.send(&[b"GET /cluster/kept/1 HTTP/1.1\r\nHost: x\r\n\r\n"]);
    client.responses(1);
    drop(client);
    wait_until(
        "the workers to close the connections",
        Duration::from_secs(10),
        || {
            workers
                .iter()
                .all(|&w| connections_held(w, server.port) == 0)
        },
    );
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/cluster/0", 200),
            t("GET", "/cluster/1", 200),
            t("GET", "/cluster/2", 200),
            t("GET", "/cluster/3", 200),
            t("GET", "/cluster/kept/0", 200),
            t("GET", "/cluster/kept/1", 200)
        ],
        "stderr: {:#?}",
        out.stderr
    );
    for e in &ex {
        let pid = e["pid"].as_u64().unwrap() as u32;
        assert!(workers.contains(&pid), "served by a worker, not {pid}: {e}");
        assert_eq!(e["role"], "server", "{e}");
        let body = format!("pid {pid}\n");
        assert_eq!(e["response_body"], body.as_str(), "{e}");
        assert!(e.get("response_pid").is_none(), "{e}");
    }
    assert_eq!(ex[4]["pid"], ex[5]["pid"]);
    // The primary and the workers talk JSON over Unix sockets, which are followed too.
    let summary = out.summary();
    assert!(
        summary.starts_with("http-trace: 6 exchanges captured, 0 events lost, ")
            && summary.ends_with(" bytes of non-HTTP traffic skipped")
            && summary.matches(", ").count() == 2,
        "{summary}"
    );
}

/// nginx in its usual shape: a master that forks workers, traced by the master's PID.
#[test]
fn nginx_workers_traced_by_the_master_pid() {
    require_root!();
    let server = Server::nginx(2);
    let port = server.port;
    // Workers are forked once nginx listens; wait for both.
    wait_until("2 nginx workers", Duration::from_secs(10), || {
        children_of(server.pid()).len() == 2
    });
    let workers = children_of(server.pid());
    assert_eq!(workers.len(), 2, "nginx workers");
    let tracer = Tracer::start(&[server.pid()], &[]);
    assert!(
        tracer
            .banner
            .iter()
            .any(|l| l.contains("and 2 child processes")),
        "{:#?}",
        tracer.banner
    );
    for i in 0..10 {
        assert_eq!(
            request(
                port,
                format!("GET /w/{i} HTTP/1.1\r\nHost: n\r\n\r\n").as_bytes()
            ),
            200
        );
    }
    let out = tracer.stop();
    let ex = out.exchanges();
    let want: Vec<_> = (0..10).map(|i| t("GET", &format!("/w/{i}"), 200)).collect();
    assert_eq!(triples(&by_time(ex.clone())), want);
    for e in &ex {
        let pid = e["pid"].as_u64().unwrap() as u32;
        assert!(workers.contains(&pid), "{pid} is not a worker: {e}");
    }
    out.assert_summary(10);
}

/// A server that forks a process per connection after tracing started.
#[test]
fn children_forked_later_are_followed_unless_turned_off() {
    require_root!();
    let script = "import http.server, socketserver\n\
                  class S(socketserver.ForkingMixIn, http.server.HTTPServer): pass\n\
                  class H(http.server.BaseHTTPRequestHandler):\n\
                  \x20   def do_GET(self):\n\
                  \x20       self.send_response(200); self.send_header('Content-Length', '3'); self.end_headers(); self.wfile.write(b'hi\\n')\n\
                  s = S(('127.0.0.1', 0), H)\n\
                  print('listening on 127.0.0.1:%d' % s.server_address[1], flush=True)\n\
                  s.serve_forever()\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script]);
    let server = Server::start("python forking", cmd, None);

    // The lines that narrate each child come with RUST_LOG=info only; the summary counts them.
    let tracer = Tracer::start_env(&[server.pid()], &[], &[("RUST_LOG", "info")]);
    let (out, ex) = three_gets_to_a_forking_server(tracer, &server, "/f/");
    for e in &ex {
        assert_ne!(e["pid"], server.pid(), "handled in a child: {e}");
        let child = e["pid"].as_u64().unwrap();
        let said = format!("following new child process {child}");
        assert!(
            out.stderr.iter().any(|l| l.ends_with(&said)),
            "{:#?}",
            out.stderr
        );
    }
    assert_eq!(
        out.summary(),
        "http-trace: 3 exchanges captured, 0 events lost, 3 child processes followed, \
         3 processes exited"
    );

    // Not following the children: the connection the traced parent accepted is served by a
    // process not traced, whose bytes are counted (from the socket's sequence numbers) once the
    // connection ends, not captured. socket-tracepoint sees no accept: the parent never used
    // the socket, which it then never followed.
    let tracer = Tracer::start(&[server.pid()], &["--no-children"]);
    let mut client = Client::connect(server.port);
    let request = b"GET /f/untraced HTTP/1.1\r\n\r\n";
    client.send(&[request]);
    assert_eq!(client.responses(1), [200]);
    let moved = request.len() as u64 + client.received;
    drop(client);
    wait_until("the child to exit", Duration::from_secs(10), || {
        children_of(server.pid()).into_iter().all(has_exited)
    });
    let out = tracer.stop();
    assert!(out.exchanges().is_empty(), "{:#?}", out.stdout);
    if out.stderr[0].contains("with socket-tracepoint") {
        out.assert_summary(0);
    } else {
        assert_eq!(
            out.summary(),
            format!("http-trace: 0 exchanges captured, 0 events lost, {moved} {UNSEEN}")
        );
    }
}
