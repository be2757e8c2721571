//! Root integration tests of HTTPS: the plaintext of TLS connections read through uprobes on the
//! traced process's OpenSSL (Debian's libssl.so.3), shown as any exchange is, marked `tls`, its
//! records counted apart and never parsed as HTTP.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// nginx over HTTPS (a certificate made by the test), curl the client: keep-alive requests on
/// one connection, a 1 MB upload on another; every exchange whole, marked tls.
#[test]
fn nginx_over_https_is_read_in_plaintext() {
    require_root!();
    let server = Server::nginx_tls();
    let tracer = Tracer::start(&[server.pid()], &[]);
    let base = format!("https://127.0.0.1:{}", server.port);
    let (a, b) = (format!("{base}/a"), format!("{base}/b?x=1"));
    curl(&["-k", "--http1.1", &a, &b]);
    let upload = TempDir::new("tls-upload");
    let file = upload.join("body");
    std::fs::write(&file, vec![b'u'; 1_000_000]).expect("write the upload");
    let data = format!("@{}", file.display());
    curl(&[
        "-k",
        "--http1.1",
        "--data-binary",
        &data,
        &format!("{base}/up"),
    ]);
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/a", 200),
            t("GET", "/b?x=1", 200),
            t("POST", "/up", 200)
        ],
        "stderr: {:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(e["tls"], true, "{e}");
        assert_eq!(e["response_body"], "ok\n", "{e}");
        assert_eq!(e["response_complete"], true, "{e}");
    }
    assert_eq!(ex[2]["request_body_bytes"], 1_000_000);
    assert!(
        out.stderr.iter().any(
            |l| l.starts_with("http-trace: tls: libssl.so.3 (OpenSSL 3.")
                && l.ends_with(") in 1 process")
        ),
        "{:#?}",
        out.stderr
    );
    let summary = out.summary();
    let rest = summary
        .strip_prefix("http-trace: 3 exchanges captured, 0 events lost, ")
        .and_then(|r| r.strip_suffix(" bytes of TLS records (encrypted)"))
        .unwrap_or_else(|| panic!("{summary}"));
    // The records carry more than the plaintext.
    assert!(rest.parse::<u64>().unwrap() > 1_000_000, "{summary}");
}

/// --no-tls: the records are counted, nothing is parsed, nothing is malformed.
#[test]
fn no_tls_counts_the_records_only() {
    require_root!();
    let server = Server::nginx_tls();
    let tracer = Tracer::start(&[server.pid()], &["--no-tls"]);
    curl(&["-k", &format!("https://127.0.0.1:{}/a", server.port)]);
    let out = tracer.stop();
    assert_eq!(out.exchanges().len(), 0, "{:#?}", out.stderr);
    let summary = out.summary();
    assert!(
        summary.starts_with("http-trace: 0 exchanges captured, 0 events lost, ")
            && summary.ends_with(
                " bytes of TLS records (encrypted), 1 TLS connection whose plaintext was not seen"
            ),
        "{summary}"
    );
}

/// A TLS ClientHello sent to a plain HTTP server (an https:// URL at an http port): its bytes
/// are counted as TLS records, not as non-HTTP traffic or a malformed request, and the server's
/// 400 as an answer to bytes that were not a request.
#[test]
fn a_tls_hello_at_a_plain_server_is_counted_as_records() {
    require_root!();
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 a client hello";
    assert_eq!(request(server.port, hello), 400);
    let out = tracer.stop();
    assert_eq!(out.exchanges().len(), 0, "{:#?}", out.stdout);
    assert_eq!(
        out.summary(),
        format!(
            "http-trace: 0 exchanges captured, 0 events lost, 1 response to bytes that were not \
             an HTTP request (uwsgi, FastCGI, garbage), not paired, {} bytes of TLS records \
             (encrypted)",
            hello.len()
        )
    );
}

/// The probes are attached to the traced process only: another nginx over HTTPS on the same
/// machine, from the same libssl, served while tracing takes no uprobe (the kernel maps the
/// probes' page into a process at its first hit), and what it served is not shown.
#[test]
fn a_tls_process_not_traced_takes_no_probe() {
    require_root!();
    let traced = Server::nginx_tls();
    let other = Server::nginx_tls();
    let tracer = Tracer::start(&[traced.pid()], &[]);
    let url = |s: &Server, t: &str| format!("https://127.0.0.1:{}{t}", s.port);
    curl(&[
        "-k",
        "--http1.1",
        &url(&other, "/other"),
        &url(&traced, "/traced"),
    ]);
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        [t("GET", "/traced", 200)],
        "{:#?}",
        out.stderr
    );
    assert_eq!(ex[0]["tls"], true);
    assert!(took_uprobes(traced.pid()), "the traced nginx took none");
    assert!(!took_uprobes(other.pid()), "the nginx not traced took some");
}

/// A server forking a child per connection (Python's ForkingMixIn over `ssl`): its first
/// child appeared after tracing started, so the library is probed for every process that maps
/// it, and said so; that child may have run before (its exchanges then missing), every later
/// one is read from its first call.
#[test]
fn a_forking_server_is_read_in_its_children() {
    require_root!();
    let server = Server::python_tls_forking();
    let mut tracer = Tracer::start(&[server.pid()], &[]);
    let base = format!("https://127.0.0.1:{}", server.port);
    let mut want = Vec::new();
    for c in 1..=4 {
        let (a, b) = (format!("/c{c}/a"), format!("/c{c}/b"));
        curl(&[
            "-k",
            "--http1.1",
            &format!("{base}{a}"),
            &format!("{base}{b}"),
        ]);
        if c == 1 {
            tracer.wait_for_said(
                "is probed in every process that maps it (process ",
                Duration::from_secs(30),
            );
        } else {
            want.extend([t("GET", &a, 200), t("GET", &b, 200)]);
        }
    }
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let (first, later): (Vec<_>, Vec<_>) = ex.iter().cloned().partition(|e| {
        e["target"].as_str().is_some_and(|t| t.starts_with("/c1/")) || e["target"].is_null()
    });
    assert_eq!(triples(&later), want, "{:#?}", out.stderr);
    for e in &later {
        assert_eq!(e["tls"], true, "{e}");
        assert_eq!(
            e["response_body"].as_str().unwrap(),
            format!("{}\n", e["target"].as_str().unwrap()),
            "{e}"
        );
    }
    // Its first child's exchanges all missing: counted, as a connection not read, or (its
    // last answer read) as a response whose request was not seen. (One of two read: the
    // other is counted only as bytes of records, see the README.)
    if first.is_empty() {
        assert_first_counted(&out);
    }
}

/// The summary counts what a connection whose probes came late lost: none of it read (a TLS
/// connection whose plaintext was not seen), its answer read without its request (seen on the
/// 5.10 guest and the host), or its plaintext read from the middle of a message (non-HTTP
/// bytes skipped, seen on the 5.10 guest).
fn assert_first_counted(out: &TraceOutput) {
    let summary = out.summary();
    assert!(
        summary.contains("1 TLS connection whose plaintext was not seen")
            || summary.contains("1 response whose request was not seen")
            || summary.contains("bytes of non-HTTP traffic skipped"),
        "{summary}"
    );
}

/// A Python client traced before it imports `ssl` (so before its libssl is mapped), then
/// making three HTTPS requests with http.client (SSL_read_ex, SSL_write_ex), each on its own
/// connection. The first one's records make the tracer look at it again, probe its library
/// and say so; the client then makes the others, which are read in plaintext. The first is
/// read or counted.
#[test]
fn a_client_that_loads_libssl_later_is_probed() {
    require_root!();
    let server = Server::nginx_tls();
    let script = "import sys\n\
                  sys.stdin.readline()\n\
                  import ssl, http.client\n\
                  ctx = ssl._create_unverified_context()\n\
                  def get(t):\n\
                  \x20   c = http.client.HTTPSConnection('127.0.0.1', int(sys.argv[1]), context=ctx)\n\
                  \x20   c.request('GET', t)\n\
                  \x20   r = c.getresponse()\n\
                  \x20   print(t, r.status, r.read(), flush=True)\n\
                  \x20   c.close()\n\
                  get('/first')\n\
                  sys.stdin.readline()\n\
                  get('/second')\n\
                  get('/third')\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script])
        .arg(server.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut client = Group::spawn("python https client", &mut cmd);
    let mut stdin = client.take_stdin();
    let said = client.stdout_lines();
    let mut tracer = Tracer::start(&[client.pid()], &[]);
    stdin.write_all(b"go\n").expect("tell the client to go");
    wait_for_line(&said, "the first answer", |l| l.starts_with("/first 200"));
    tracer.wait_for_said(
        &format!("tls: process {} loaded libssl.so.3 (OpenSSL ", client.pid()),
        Duration::from_secs(30),
    );
    stdin.write_all(b"go\n").expect("tell the client to go on");
    let st = client.wait("python https client", Duration::from_secs(60));
    assert!(st.success(), "the client: {st}");
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let got = triples(&ex);
    let want = [
        t("GET", "/first", 200),
        t("GET", "/second", 200),
        t("GET", "/third", 200),
    ];
    assert!(
        got.len() >= 2 && got[..] == want[3 - got.len()..],
        "{got:#?} {:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(e["tls"], true, "{e}");
        assert_eq!(e["role"], "client", "{e}");
        assert_eq!(e["response_body"], "ok\n", "{e}");
    }
    if got.len() == 2 {
        assert_first_counted(&out);
    }
}

/// A server with OpenSSL linked in (libssl.a, built by the test): found by the SSL_read of its
/// own executable, named so in the banner, its keep-alive exchanges read whole.
#[test]
fn a_server_with_openssl_linked_in_is_read() {
    require_root!();
    let server = Server::c_tls_static();
    let tracer = Tracer::start(&[server.pid()], &[]);
    let base = format!("https://127.0.0.1:{}", server.port);
    curl(&[
        "-k",
        "--http1.1",
        &format!("{base}/s/1"),
        &format!("{base}/s/2?x=y"),
    ]);
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [t("GET", "/s/1", 200), t("GET", "/s/2?x=y", 200)],
        "{:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(e["tls"], true, "{e}");
        assert_eq!(
            e["response_body"].as_str().unwrap(),
            format!("{}\n", e["target"].as_str().unwrap())
        );
    }
    assert!(
        out.stderr
            .iter()
            .any(|l| l.starts_with("http-trace: tls: tls_server (OpenSSL ")
                && l.ends_with("linked in) in 1 process")),
        "{:#?}",
        out.stderr
    );
}

/// A Go HTTPS server (crypto/tls, no OpenSSL): its connection is counted as one whose
/// plaintext was not seen, and the tracer says once why.
#[test]
fn tls_without_openssl_is_counted_and_said() {
    require_root!();
    let server = Server::go_https();
    let mut tracer = Tracer::start(&[server.pid()], &[]);
    let url = format!("https://127.0.0.1:{}/go", server.port);
    curl(&["-k", "--http1.1", &url]);
    tracer.wait_for_said(
        "moves TLS records, but maps no libssl",
        Duration::from_secs(30),
    );
    curl(&["-k", "--http1.1", &url]);
    let out = tracer.stop();
    assert_eq!(out.exchanges().len(), 0, "{:#?}", out.stderr);
    let summary = out.summary();
    assert!(
        summary.ends_with(
            " bytes of TLS records (encrypted), 2 TLS connections whose plaintext was not seen"
        ),
        "{summary}"
    );
    let said: Vec<&String> = out
        .stderr
        .iter()
        .filter(|l| l.contains("moves TLS records, but maps no libssl and has no SSL_read"))
        .collect();
    assert_eq!(said.len(), 1, "{:#?}", out.stderr);
    assert!(said[0].contains("https_server:"), "{said:?}");
}

/// 100 HTTPS connections at once to nginx, from Python threads over `ssl` sockets, each with
/// two requests pipelined in one write: every exchange read, each on its own connection, in
/// order (200 exchanges, 100 connections, two targets each).
#[test]
fn a_hundred_parallel_pipelined_connections_are_read() {
    require_root!();
    let server = Server::nginx_tls();
    let tracer = Tracer::start(&[server.pid()], &[]);
    let script = "import socket, ssl, sys, concurrent.futures as cf\n\
                  ctx = ssl._create_unverified_context()\n\
                  def one(i):\n\
                  \x20   s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))))\n\
                  \x20   s.sendall(b''.join(b'GET /p/%d/%d HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n' % (i, k) for k in (1, 2)))\n\
                  \x20   got = b''\n\
                  \x20   while got.count(b'ok\\n') < 2:\n\
                  \x20       b = s.recv(65536)\n\
                  \x20       if not b: raise SystemExit('closed early')\n\
                  \x20       got += b\n\
                  \x20   s.close()\n\
                  \x20   return got.count(b'HTTP/1.1 200')\n\
                  with cf.ThreadPoolExecutor(100) as pool:\n\
                  \x20   assert sum(pool.map(one, range(100))) == 200\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script]).arg(server.port.to_string());
    let done = run("python https clients", &mut cmd, Duration::from_secs(120));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(ex.len(), 200, "{:#?}", out.stderr);
    let mut by_conn: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for e in by_time(ex) {
        assert_eq!(e["tls"], true, "{e}");
        assert_eq!(e["status"], 200, "{e}");
        assert_eq!(e["response_body"], "ok\n", "{e}");
        let target = e["target"].as_str().unwrap().to_string();
        let conn = target.rsplit_once('/').unwrap().0.to_string();
        by_conn
            .entry(format!("{}:{}", e["pid"], e["peer"]))
            .or_default()
            .push(target.clone());
        assert!(conn.starts_with("/p/"), "{target}");
    }
    assert_eq!(by_conn.len(), 100, "{by_conn:#?}");
    for targets in by_conn.values() {
        let conn = targets[0].rsplit_once('/').unwrap().0;
        assert_eq!(targets, &[format!("{conn}/1"), format!("{conn}/2")]);
    }
    assert!(out
        .summary()
        .starts_with("http-trace: 200 exchanges captured, 0 events lost"));
}
