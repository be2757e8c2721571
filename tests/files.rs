//! Root integration tests of the file formats, each read back by a program we did not write:
//! HAR by har-validator and by Playwright's routeFromHAR in Debian's Chromium
//! (scripts/har-check), pcapng by tshark, on real traffic of the example server, nginx and a
//! client. The
//! recordings are made with -w and turned into each format with -r, which the capture tests
//! show prints what the live run prints. On the host only: guests skip them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// Record `pids` with -w while `traffic` runs; the directory and the recording.
fn record(pids: &[u32], traffic: impl FnOnce()) -> (TempDir, PathBuf) {
    record_with(pids, &[], traffic)
}

/// As `record`, with `extra` options.
fn record_with(pids: &[u32], extra: &[&str], traffic: impl FnOnce()) -> (TempDir, PathBuf) {
    let dir = TempDir::new("files");
    let file = dir.join("t.htr");
    let mut args = vec!["-w", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let tracer = Tracer::start(pids, &args);
    traffic();
    let out = tracer.stop();
    assert!(out.status.success(), "{:#?}", out.stderr);
    (dir, file)
}

/// `http-trace -r FILE` and `args`: what it wrote to `out` (a file in `dir`).
fn replay_to(file: &Path, args: &[&str], out: &Path) -> String {
    let run = Command::new(TRACER)
        .arg("-r")
        .arg(file)
        .args(args)
        .arg("--output-file")
        .arg(out)
        .output()
        .expect("run http-trace -r");
    assert!(run.status.success(), "{run:?}");
    String::from_utf8_lossy(&std::fs::read(out).expect("read the output")).into_owned()
}

/// The HAR of `file`, checked by scripts/har-check against the JSON of the same recording: the
/// requests the browser made, one line each.
fn har_checked(dir: &TempDir, file: &Path) -> Vec<String> {
    let (har, json) = (dir.join("t.har"), dir.join("t.jsonl"));
    let doc: serde_json::Value =
        serde_json::from_str(&replay_to(file, &["-o", "har"], &har)).expect("HAR is JSON");
    assert_eq!(doc["log"]["version"], "1.2");
    replay_to(file, &["-o", "json"], &json);
    let check = Command::new("node")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/har-check"))
        .arg("check.mjs")
        .arg(&har)
        .arg(&json)
        .stderr(Stdio::inherit())
        .output()
        .expect("run node scripts/har-check/check.mjs (scripts/setup.sh installs it)");
    let said = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(check.status.success(), "{said}");
    said.lines()
        .skip(1) // har-validator's line
        .map(str::to_string)
        .collect()
}

/// Exchanges of every framing with the example server: a query, a JSON body, a chunked
/// response, a body ended by the close, a 404, a chunked request, two pipelined requests.
fn example_traffic(port: u16) {
    let base = format!("http://127.0.0.1:{port}");
    curl(&[&format!("{base}/items?id=1&q=a%20b")]);
    curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "{\"name\":\"x\"}",
        &format!("{base}/items"),
    ]);
    curl(&[&format!("{base}/r/chunked")]);
    curl(&[&format!("{base}/r/close")]);
    curl(&[&format!("{base}/r/status/404")]);
    let mut c = Client::connect(port);
    c.send(&[b"POST /c HTTP/1.1\r\nHost: pipelined\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"]);
    assert_eq!(c.responses(1), [200]);
    c.send(&[
        b"GET /p1 HTTP/1.1\r\nHost: pipelined\r\n\r\nGET /p2 HTTP/1.1\r\nHost: pipelined\r\n\r\n",
    ]);
    assert_eq!(c.responses(2), [200, 200]);
}

#[test]
fn har_of_the_example_server_is_valid_and_replays_in_a_browser() {
    if in_vm("har_of_the_example_server_is_valid_and_replays_in_a_browser") {
        return;
    }
    require_root!();
    let server = Server::ours("recv");
    let port = server.port;
    let (dir, file) = record(&[server.pid()], || example_traffic(port));
    let checked = har_checked(&dir, &file);
    let host = format!("http://127.0.0.1:{port}");
    assert_eq!(
        checked,
        [
            format!("ok GET {host}/items?id=1&q=a%20b -> 200 31B"),
            format!("ok POST {host}/items -> 200 20B"),
            format!("ok GET {host}/r/chunked -> 200 25B"),
            format!("ok GET {host}/r/close -> 200 20B"),
            format!("ok GET {host}/r/status/404 -> 404 25B"),
            "ok POST http://pipelined/c -> 200 15B".to_string(),
            "ok GET http://pipelined/p1 -> 200 15B".to_string(),
            "ok GET http://pipelined/p2 -> 200 15B".to_string(),
        ]
    );
}

#[test]
fn har_of_nginx_and_of_a_client_replays_in_a_browser() {
    if in_vm("har_of_nginx_and_of_a_client_replays_in_a_browser") {
        return;
    }
    require_root!();
    let nginx = Server::nginx(1);
    let port = nginx.port;
    let (dir, file) = record(&[nginx.pid()], || {
        curl(&[&format!("http://127.0.0.1:{port}/nginx/a")]);
        curl(&[
            "--data-binary",
            "abc",
            &format!("http://127.0.0.1:{port}/nginx/b"),
        ]);
    });
    assert_eq!(
        har_checked(&dir, &file),
        [
            format!("ok GET http://127.0.0.1:{port}/nginx/a -> 200 3B"),
            format!("ok POST http://127.0.0.1:{port}/nginx/b -> 200 3B"),
        ]
    );

    // A client's view: the requests it made, the URLs from its Host header.
    let server = Server::ours("recv");
    let script = "import sys, http.client\n\
                  sys.stdin.readline()\n\
                  c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]))\n\
                  for i in range(2):\n\
                  \x20   c.request('GET', '/client/%d' % i)\n\
                  \x20   c.getresponse().read()\n";
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-c", script, &server.port.to_string()])
        .stdin(Stdio::piped());
    let mut client = Group::spawn("python", &mut cmd);
    let mut go = client.take_stdin();
    let (dir, file) = record(&[client.pid()], || {
        use std::io::Write;
        go.write_all(b"go\n").expect("tell the client to go");
        let status = client.wait("the client", std::time::Duration::from_secs(30));
        assert!(status.success());
    });
    let sport = server.port;
    assert_eq!(
        har_checked(&dir, &file),
        [
            format!("ok GET http://127.0.0.1:{sport}/client/0 -> 200 21B"),
            format!("ok GET http://127.0.0.1:{sport}/client/1 -> 200 21B"),
        ]
    );
}

/// What tshark makes of a pcapng file, in frame order: the requests' methods and URIs, the
/// responses' status and body size (Content-Length, or the chunks' sizes), and how many
/// segments it found missing.
fn tshark(pcap: &Path) -> (Vec<String>, Vec<String>, usize) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args([
            "-Y",
            "http || tcp.analysis.lost_segment",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args(["-e", "http.request.method", "-e", "http.request.uri"])
        .args(["-e", "http.response.code", "-e", "http.content_length"])
        .args(["-e", "http.chunk_size", "-e", "tcp.analysis.lost_segment"])
        .args(["-e", "http.file_data"])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark (scripts/setup.sh installs it)");
    assert!(out.status.success(), "{out:?}");
    let (mut requests, mut responses) = (Vec::new(), Vec::new());
    let mut lost = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('|').collect();
        if !f[5].is_empty() {
            lost += 1;
        }
        // Pipelined requests in one segment come as lists.
        let methods: Vec<&str> = f[0].split(',').filter(|m| !m.is_empty()).collect();
        let uris: Vec<&str> = f[1].split(',').collect();
        for (m, u) in methods.iter().zip(&uris) {
            requests.push(format!("{m} {u}"));
        }
        let codes: Vec<&str> = f[2].split(',').filter(|c| !c.is_empty()).collect();
        let lengths: Vec<&str> = f[3].split(',').collect();
        for (i, code) in codes.iter().enumerate() {
            let chunks: Vec<&str> = f[4].split(',').filter(|c| !c.is_empty()).collect();
            let size: u64 = match lengths.get(i).filter(|l| !l.is_empty()) {
                Some(l) => l.parse().unwrap(),
                None if !chunks.is_empty() => {
                    chunks.iter().map(|c| c.parse::<u64>().unwrap()).sum()
                }
                // Ended by the close: the body's own length, as tshark escapes it.
                None => unescaped_len(f[6]),
            };
            responses.push(format!("{code} {size}B"));
        }
    }
    (requests, responses, lost)
}

/// The length of a tshark field as it was before tshark escaped it (`\n`, `\\`, `\xhh`).
fn unescaped_len(field: &str) -> u64 {
    let b = field.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        i += match (b[i], b.get(i + 1)) {
            (b'\\', Some(b'x')) => 4,
            (b'\\', Some(_)) => 2,
            _ => 1,
        };
        n += 1;
    }
    n
}

/// The same, from http-trace's JSON of the same recording.
fn json_messages(json: &str) -> (Vec<String>, Vec<String>) {
    let mut exchanges: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    exchanges.sort_by_key(|e| e["ts"].as_str().unwrap().to_string());
    let (mut requests, mut responses) = (Vec::new(), Vec::new());
    for e in exchanges {
        requests.push(format!(
            "{} {}",
            e["method"].as_str().unwrap(),
            e["target"].as_str().unwrap()
        ));
        responses.push(format!("{} {}B", e["status"], e["response_body_bytes"]));
    }
    (requests, responses)
}

#[test]
fn pcapng_reads_in_tshark_as_the_json_says() {
    if in_vm("pcapng_reads_in_tshark_as_the_json_says") {
        return;
    }
    require_root!();
    let server = Server::ours("recv");
    let port = server.port;
    let (dir, file) = record(&[server.pid()], || example_traffic(port));
    let pcap = dir.join("t.pcapng");
    replay_to(&file, &["-o", "pcapng"], &pcap);
    let json = replay_to(&file, &["-o", "json"], &dir.join("t.jsonl"));
    let (requests, responses, lost) = tshark(&pcap);
    assert_eq!(lost, 0);
    assert_eq!((requests.clone(), responses), json_messages(&json));
    assert_eq!(requests.len(), 8, "{requests:#?}");
}

/// Bytes that moved but were not copied (past --capture-bytes in a request and in a response,
/// sendfile's) are a marked pad of their size in Wireshark, not a gap: tshark finds every
/// request and response that the JSON shows, with the same sizes, and no segment lost; a
/// vectored answer of 64 iovecs and a chunked one are read as sent.
#[test]
fn pcapng_fills_bytes_not_copied_so_every_exchange_pairs() {
    if in_vm("pcapng_fills_bytes_not_copied_so_every_exchange_pairs") {
        return;
    }
    require_root!();
    let server = Server::ours("recv");
    let port = server.port;
    let (dir, file) = record_with(&[server.pid()], &["--capture-bytes", "1024"], || {
        assert_eq!(get(port, "/before"), 200);
        let mut c = Client::connect(port);
        let mut req = b"POST /big HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
        req.resize(req.len() + 100_000, b'x');
        c.send(&[&req]);
        assert_eq!(c.responses(1), [200]);
        for target in ["/r/bytes/300000", "/r/file", "/r/iovecs/64/5000"] {
            c.send(&[format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()]);
            assert_eq!(c.responses(1), [200], "{target}");
        }
        c.send(&[b"GET /r/chunked HTTP/1.1\r\n\r\n"]);
        c.read_until(b"\r\n0\r\n\r\n");
        assert_eq!(get(port, "/after"), 200);
    });
    let pcap = dir.join("t.pcapng");
    replay_to(&file, &["-o", "pcapng"], &pcap);
    let json = replay_to(&file, &["-o", "json"], &dir.join("t.jsonl"));
    let (requests, responses, lost) = tshark(&pcap);
    assert_eq!(lost, 0, "{requests:#?}");
    assert_eq!((requests.clone(), responses), json_messages(&json));
    assert_eq!(requests.len(), 7, "{requests:#?}");
    let pcap_bytes = std::fs::read(&pcap).unwrap();
    let said = String::from_utf8_lossy(&pcap_bytes);
    assert!(
        said.contains("bytes not copied (past --capture-bytes, or unreadable): filled with"),
        "no comment on the pad"
    );
    assert!(said.contains("5000 bytes not copied (sent from a file by sendfile"));
}

/// #30's mixed run, in one recording: keep-alive, pipelined, chunked answers sent by writev, a
/// 2 MB answer (past what -w copies, 256 KiB), a 100 KB POST, a Unix socket, IPv6, answers
/// spliced from a pipe. tshark
/// finds as many requests and responses as the JSON shows, with their sizes, and flags nothing
/// in the TCP streams (no segment lost, no analysis flag).
#[test]
fn pcapng_of_a_mixed_run_reads_whole_in_tshark() {
    if in_vm("pcapng_of_a_mixed_run_reads_whole_in_tshark") {
        return;
    }
    require_root!();
    let v4 = Server::ours_with("recv", "writev");
    let v6 = Server::ours_ipv6();
    let (unix, path) = Server::python_unix();
    let spliced = Server::ours_with("recv", "splice");
    let (port, port6) = (v4.port, v6.port);
    let pids = [v4.pid(), v6.pid(), unix.pid(), spliced.pid()];
    let (dir, file) = record(&pids, || {
        let mut c = Client::connect(port);
        c.send(&[b"GET /r/chunked HTTP/1.1\r\n\r\n"]);
        c.read_until(b"\r\n0\r\n\r\n");
        for target in ["/keep/1", "/keep/2", "/r/bytes/2000000"] {
            c.send(&[format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()]);
            assert_eq!(c.responses(1), [200], "{target}");
        }
        c.send(&[b"GET /p1 HTTP/1.1\r\n\r\nGET /p2 HTTP/1.1\r\n\r\n"]);
        assert_eq!(c.responses(2), [200, 200]);
        let mut post = b"POST /upload HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
        post.resize(post.len() + 100_000, b'u');
        c.send(&[&post]);
        assert_eq!(c.responses(1), [200]);
        drop(c);
        curl(&["-g", &format!("http://[::1]:{port6}/over-ipv6")]);
        let mut c = Client::connect(spliced.port);
        for target in ["/spliced", "/r/bytes/300000"] {
            c.send(&[format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()]);
            assert_eq!(c.responses(1), [200], "{target}");
        }
        curl(&[
            "--unix-socket",
            path.to_str().unwrap(),
            "http://localhost/over-unix",
        ]);
    });
    let pcap = dir.join("t.pcapng");
    replay_to(&file, &["-o", "pcapng"], &pcap);
    let json = replay_to(&file, &["-o", "json"], &dir.join("t.jsonl"));
    let (mut requests, mut responses, lost) = tshark(&pcap);
    assert_eq!(lost, 0, "{requests:#?}");
    let (mut want_requests, mut want_responses) = json_messages(&json);
    // Connections interleave in the file as their messages complete: compared as sets.
    for v in [
        &mut requests,
        &mut responses,
        &mut want_requests,
        &mut want_responses,
    ] {
        v.sort();
    }
    assert_eq!((&requests, &responses), (&want_requests, &want_responses));
    assert_eq!(requests.len(), 11, "{requests:#?}");
    assert!(
        responses.contains(&"200 2000000B".to_string()),
        "{responses:#?}"
    );
    let flagged = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-Y", "tcp.analysis.flags || tcp.analysis.lost_segment"])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    assert_eq!(
        String::from_utf8_lossy(&flagged.stdout),
        "",
        "TCP analysis flags"
    );
}

/// A Unix-socket connection has no address: HAR takes the URL's host from its Host header and
/// names the socket in `_unix_socket`; pcapng gives it the documented placeholder addresses.
#[test]
fn unix_socket_connections_in_har_and_pcapng() {
    if in_vm("unix_socket_connections_in_har_and_pcapng") {
        return;
    }
    require_root!();
    let (server, path) = Server::python_unix();
    let (dir, file) = record(&[server.pid()], || {
        curl(&[
            "--unix-socket",
            path.to_str().unwrap(),
            "http://localhost/u/1",
        ]);
    });
    let har: serde_json::Value =
        serde_json::from_str(&replay_to(&file, &["-o", "har"], &dir.join("t.har"))).unwrap();
    let e = &har["log"]["entries"][0];
    assert_eq!(e["request"]["url"], "http://localhost/u/1");
    assert_eq!(e["_unix_socket"], path.to_str().unwrap());
    assert!(e.get("serverIPAddress").is_none(), "{e}");
    let pcap = dir.join("t.pcapng");
    replay_to(&file, &["-o", "pcapng"], &pcap);
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-Y",
            "http.request",
            "-T",
            "fields",
            "-e",
            "ip.dst",
            "-e",
            "tcp.dstport",
        ])
        .args(["-e", "http.request.uri"])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "192.0.2.1\t80\t/u/1\n"
    );
}

/// Secrets sent in every place the rules name, to nginx: found in no output of the session
/// (live JSON, the -w recording; text -v, JSON, HAR, pcapng replayed from it and from a raw
/// recording), found in the raw recording (-w with --show-secrets keeps what the kernel sent),
/// and shown when it is replayed with --show-secrets.
#[test]
fn no_secret_reaches_any_output_by_default() {
    if in_vm("no_secret_reaches_any_output_by_default") {
        return;
    }
    require_root!();
    let nginx = nginx_with_a_secret();
    let port = nginx.port;
    let dir = TempDir::new("secrets");
    let file = dir.join("t.htr");
    let raw_file = dir.join("raw.htr");
    let live = dir.join("live.json");
    let tracer = Tracer::start(
        &[nginx.pid()],
        &[
            "-w",
            file.to_str().unwrap(),
            "--output",
            "json",
            "--output-file",
            live.to_str().unwrap(),
            "--stats",
        ],
    );
    // Beside it, a raw recording of the same traffic.
    let raw_tracer = Tracer::start(
        &[nginx.pid()],
        &["-w", raw_file.to_str().unwrap(), "--show-secrets"],
    );
    let secrets = send_secrets(port);
    let out = tracer.stop();
    assert!(out.status.success(), "{:#?}", out.stderr);
    let live_stderr = out.stderr.join("\n");
    let out = raw_tracer.stop();
    assert!(out.status.success(), "{:#?}", out.stderr);
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    // --stats: its table and accounting on stderr, and their JSON lines in the output.
    assert!(live_stderr.contains("/login"), "{live_stderr}");
    let mut outputs = vec![
        ("live json".to_string(), read(&live)),
        ("live --stats".to_string(), live_stderr),
        ("the recording".to_string(), read(&file)),
    ];
    // Each output replayed from the raw recording (redacted as it is read) and from the
    // redacted one.
    for (name, args) in [
        ("text", vec!["-v"]),
        ("json", vec!["-o", "json"]),
        ("har", vec!["-o", "har"]),
        ("pcapng", vec!["-o", "pcapng"]),
    ] {
        for (from, f) in [("raw", &raw_file), ("redacted", &file)] {
            let path = dir.join(&format!("{name}-{from}"));
            outputs.push((
                format!("{name} of the {from} recording"),
                replay_to(f, &args, &path),
            ));
        }
    }
    for (name, text) in &outputs {
        assert!(
            text.contains("/login") && (name.contains("--stats") || text.contains("theme")),
            "{name}: the exchanges are there"
        );
        for s in &secrets {
            assert!(!text.contains(s), "{name} shows {s}");
        }
    }
    let output = |name: &str| &outputs.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(
        output("text of the raw recording").contains("Authorization: Bearer <redacted>"),
        "{}",
        output("text of the raw recording")
    );
    // The redacted recording replays to what the live run printed.
    let replayed = replay_to(&file, &["-o", "json", "--stats"], &dir.join("again"));
    assert_eq!(replayed, read(&live));
    // A redacted body keeps its true size and is not called cut.
    let json: Vec<serde_json::Value> = output("json of the raw recording")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let plain = json
        .iter()
        .find(|e| e["target"] == "/plain")
        .expect("/plain");
    assert_eq!(plain["request_body_cut"], false, "{plain}");
    assert_eq!(plain["request_body_bytes"], 74, "{plain}");
    let raw = read(&raw_file);
    // (The header split across two reads is in two samples.)
    assert!(
        secrets
            .iter()
            .filter(|s| !s.contains("SPLIT-HEADER"))
            .all(|s| raw.contains(s)),
        "the raw recording keeps what was sent"
    );
    // --redact NAME adds a name: /login's page parameter.
    let more = replay_to(
        &raw_file,
        &["-o", "json", "--redact", "page"],
        &dir.join("more"),
    );
    assert!(
        more.contains("page=<redacted>") && !more.contains("page=1"),
        "{more}"
    );
    let shown = replay_to(
        &raw_file,
        &["-o", "json", "--show-secrets"],
        &dir.join("shown"),
    );
    assert!(secrets.iter().all(|s| shown.contains(s)), "{shown}");
}

/// HTTPS (nginx, its plaintext read through libssl) in the files: the -w recording replays as
/// the live trace showed it (`tls`), the HAR's URLs are https and its entries marked `_tls`,
/// the pcapng is the plaintext on the real ports (tshark finds every request and response the
/// JSON shows, nothing lost; the records are left out), each packet saying so. The bearer token
/// sent inside TLS is in no file.
#[test]
fn https_in_har_and_pcapng_is_its_plaintext() {
    if in_vm("https_in_har_and_pcapng_is_its_plaintext") {
        return;
    }
    require_root!();
    let server = Server::nginx_tls();
    let port = server.port;
    let secret = "tls-bearer-0d1e2f";
    let (dir, file) = record(&[server.pid()], || {
        let base = format!("https://127.0.0.1:{port}");
        let auth = format!("Authorization: Bearer {secret}");
        curl(&[
            "-k",
            "--http1.1",
            "-H",
            &auth,
            &format!("{base}/a"),
            &format!("{base}/b?q=1"),
        ]);
        curl(&["-k", "--http1.1", "-d", "x=1", &format!("{base}/form")]);
    });
    let json = replay_to(&file, &["-o", "json"], &dir.join("t.jsonl"));
    let exchanges: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exchanges.len(), 3, "{json}");
    assert!(exchanges.iter().all(|e| e["tls"] == true), "{json}");
    let har: serde_json::Value =
        serde_json::from_str(&replay_to(&file, &["-o", "har"], &dir.join("t.har"))).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    let urls: Vec<&str> = entries
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap())
        .collect();
    let host = format!("https://127.0.0.1:{port}");
    assert_eq!(
        urls,
        [
            format!("{host}/a"),
            format!("{host}/b?q=1"),
            format!("{host}/form")
        ]
    );
    assert!(entries.iter().all(|e| e["_tls"] == true), "{har}");
    let pcap = dir.join("t.pcapng");
    replay_to(&file, &["-o", "pcapng"], &pcap);
    let (requests, responses, lost) = tshark(&pcap);
    assert_eq!(lost, 0, "{requests:#?}");
    assert_eq!((requests.clone(), responses), json_messages(&json));
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let pcap_bytes = std::fs::read(&pcap).unwrap();
    let said = String::from_utf8_lossy(&pcap_bytes);
    assert!(said.contains("TLS plaintext, read through the TLS library"));
    for f in [&file, &pcap, &dir.join("t.har"), &dir.join("t.jsonl")] {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{} holds the secret",
            f.display()
        );
    }
}
