//! Root integration tests of HTTPS: the plaintext of TLS connections read through uprobes on the
//! traced process's OpenSSL (Debian's libssl.so.3), shown as any exchange is, marked `tls`, its
//! records counted apart and never parsed as HTTP.

mod common;

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
        out.stderr
            .iter()
            .any(|l| l == "http-trace: tls: libssl.so.3 in 1 process"),
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
            && summary.ends_with(" bytes of TLS records (encrypted)"),
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
