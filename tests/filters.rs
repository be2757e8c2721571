//! Root integration tests of the filters on real traffic: one recording of the example server
//! serving requests of every kind (and calling a second server as a client), replayed with each
//! filter (replays print what the live run prints: tests/capture.rs).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// `http-trace -r FILE -o json` and `filter`: the targets shown, in time order, and the summary.
fn shown(file: &Path, filter: &[&str]) -> (Vec<String>, String) {
    let out = Command::new(TRACER)
        .arg("-r")
        .arg(file)
        .args(["-o", "json"])
        .args(filter)
        .output()
        .expect("run http-trace -r");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut ex: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    ex.sort_by_key(|e| e["ts"].as_str().unwrap().to_string());
    let targets = ex
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (targets, stderr.lines().last().unwrap_or("").to_string())
}

#[test]
fn each_filter_on_real_traffic() {
    require_root!();
    let dir = TempDir::new("filters");
    let file = dir.join("t.htr");
    let server = Server::ours("recv");
    let upstream = Server::ours("read");
    let tracer = Tracer::start(&[server.pid()], &["-w", file.to_str().unwrap()]);
    let port = server.port;
    let send = |raw: &str| request(port, raw.as_bytes());
    assert_eq!(
        send("GET /api/users/1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
        200
    );
    assert_eq!(
        send("GET /api/users/2/orders?x=1 HTTP/1.1\r\nHost: API.example.com:8080\r\nX-Tenant: acme-corp\r\n\r\n"),
        200
    );
    assert_eq!(
        send("POST /api/users HTTP/1.1\r\nHost: admin.example.com\r\nContent-Length: 2\r\n\r\nhi"),
        200
    );
    assert_eq!(
        send("DELETE /api/users/3 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
        200
    );
    assert_eq!(get(port, "/r/status/404"), 404);
    assert_eq!(get(port, "/r/status/503"), 503);
    // As a client: the server asks the upstream on a connection of its own.
    assert_eq!(get(port, &format!("/r/upstream/{}/up", upstream.port)), 200);
    // Slow (3 s), then one still unanswered when tracing stops.
    assert_eq!(get(port, "/r/slow"), 200);
    let mut pending = Client::connect(port);
    pending.send(&[b"GET /r/slow?never HTTP/1.1\r\n\r\n"]);
    wait_until_read_by_server(std::slice::from_ref(&pending));
    let out = tracer.stop();
    assert!(out.status.success(), "{:#?}", out.stderr);

    let all = shown(&file, &[]).0;
    assert_eq!(all.len(), 10, "{all:#?}");
    check_filters(&file, &all, upstream.port);
    check_stats(&file);
    // --count counts what is shown.
    assert_eq!(
        shown(&file, &["--status", "2xx", "--count", "2"]).0,
        ["GET /api/users/1", "GET /api/users/2/orders?x=1"]
    );
    assert!(all.contains(&format!("GET /r/upstream/{}/up", upstream.port)));
}

/// Each filter shows what it should of the recording's exchanges (`all`), and says how many it
/// hid.
fn check_filters(file: &Path, all: &[String], upstream_port: u16) {
    let upstream_port = upstream_port.to_string();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--method", "delete", "--method", "POST"],
            vec!["POST /api/users", "DELETE /api/users/3"],
        ),
        (
            vec!["--path", "/api/users/*"],
            vec!["GET /api/users/1", "DELETE /api/users/3"],
        ),
        (
            vec!["--path", "/api/**"],
            vec![
                "GET /api/users/1",
                "GET /api/users/2/orders?x=1",
                "POST /api/users",
                "DELETE /api/users/3",
            ],
        ),
        (
            vec!["--path-regex", r"^/api/users/\d+/orders$"],
            vec!["GET /api/users/2/orders?x=1"],
        ),
        (
            vec!["--host", "api.example.com"],
            vec![
                "GET /api/users/1",
                "GET /api/users/2/orders?x=1",
                "DELETE /api/users/3",
            ],
        ),
        (
            vec!["--status", "4xx", "--status", "503"],
            vec!["GET /r/status/404", "GET /r/status/503"],
        ),
        (vec!["--status", "none"], vec!["GET /r/slow?never"]),
        (vec!["--min-latency", "2s"], vec!["GET /r/slow"]),
        (vec!["--role", "client"], vec!["GET /up"]),
        (vec!["--port", &upstream_port], vec!["GET /up"]),
        (
            vec!["--header", "x-tenant: acme"],
            vec!["GET /api/users/2/orders?x=1"],
        ),
        (
            vec![
                "--method",
                "GET",
                "--host",
                "api.example.com",
                "--path",
                "/api/users/*",
            ],
            vec!["GET /api/users/1"],
        ),
    ];
    for (filter, want) in cases {
        let (got, summary) = shown(file, &filter);
        assert_eq!(got, want, "{filter:?}");
        let hidden = all.len() - want.len();
        assert!(
            summary.contains(&format!(
                ", {hidden} exchange{} not shown: filtered",
                if hidden == 1 { "" } else { "s" }
            )),
            "{filter:?}: {summary}"
        );
    }
    let peer = format!("127.0.0.1:{upstream_port}");
    assert_eq!(shown(file, &["--peer", &peer]).0, ["GET /up"]);
    assert_eq!(
        shown(file, &["--peer", "192.0.2.0/24"]).0,
        Vec::<String>::new()
    );
    assert_eq!(shown(file, &["--peer", "127.0.0.0/8"]).0, all);
}

/// --stats over the recording: routes folded, a template first, outcomes, latencies; filtered;
/// periodic.
fn check_stats(file: &Path) {
    let out = Command::new(TRACER)
        .arg("-r")
        .arg(file)
        .args(["-o", "json", "--stats", "--route", "/api/users/{id}/orders"])
        .output()
        .expect("run http-trace -r --stats");
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "stats")
        .collect();
    let row = |role: &str, method: &str, route: &str| -> Value {
        rows.iter()
            .find(|r| r["role"] == role && r["method"] == method && r["route"] == route)
            .unwrap_or_else(|| panic!("no row {role} {method} {route}: {rows:#?}"))
            .clone()
    };
    assert_eq!(rows.len(), 8, "{rows:#?}");
    assert_eq!(row("server", "GET", "/api/users/{id}")["count"], 1);
    assert_eq!(row("server", "GET", "/api/users/{id}/orders")["count"], 1);
    assert_eq!(row("server", "DELETE", "/api/users/{id}")["count"], 1);
    assert_eq!(row("server", "POST", "/api/users")["mean_request_bytes"], 2);
    let statuses = row("server", "GET", "/r/status/{id}");
    assert_eq!(
        (
            statuses["count"].as_u64(),
            statuses["status_4xx"].as_u64(),
            statuses["status_5xx"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(row("client", "GET", "/up")["count"], 1);
    let slow = row("server", "GET", "/r/slow");
    assert_eq!(
        (slow["count"].as_u64(), slow["no_response"].as_u64()),
        (Some(2), Some(1))
    );
    // The server waits 3 s before it answers: no shorter latency can be measured.
    let p50 = slow["p50_ms"].as_f64().unwrap();
    assert!((3000.0..30_000.0).contains(&p50), "{slow}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\nrole    method  route "), "{stderr}");
    // Filtered: only what is shown is counted.
    let out = Command::new(TRACER)
        .arg("-r")
        .arg(file)
        .args(["--status", "5xx", "--stats"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stderr);
    let table_rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("server ") || l.starts_with("client "))
        .collect();
    assert_eq!(table_rows.len(), 1, "{table}");
    assert!(
        table_rows[0].starts_with("server  GET     /r/status/{id}"),
        "{table}"
    );
    // Every half second of event time too: the recording spans more than the 3 s of the slow
    // exchange: at least 4 periodic tables, and the last.
    let out = Command::new(TRACER)
        .arg("-r")
        .arg(file)
        .args(["--stats", "--stats-interval", "500ms"])
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stderr)
        .matches("role    method")
        .count();
    assert!(headers >= 5, "{headers} tables");
}

/// Percentiles of a live server with known delays: 45 answers after 10 ms and 5 after 300 ms.
/// No latency can be shorter than its delay; the upper bounds are loose (a busy machine).
#[test]
fn percentiles_of_known_delays() {
    require_root!();
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &["--stats"]);
    for i in 0..50 {
        let ms = if i % 10 == 9 { 300 } else { 10 };
        assert_eq!(get(server.port, &format!("/r/sleep/{ms}")), 200);
    }
    let out = tracer.stop();
    out.assert_summary(50);
    let rows: Vec<Value> = out
        .json()
        .into_iter()
        .filter(|v| v["kind"] == "stats")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let r = &rows[0];
    assert_eq!(r["route"], "/r/sleep/{id}");
    assert_eq!(
        (r["count"].as_u64(), r["status_2xx"].as_u64()),
        (Some(50), Some(50))
    );
    let ms = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    // p50 and p90 are of the 10 ms answers; p99 and the maximum of the 300 ms ones.
    for k in ["p50_ms", "p90_ms"] {
        assert!((10.0..250.0).contains(&ms(k)), "{k}: {r}");
    }
    for k in ["p99_ms", "max_ms"] {
        assert!((300.0..3000.0).contains(&ms(k)), "{k}: {r}");
    }
    assert!(ms("p99_ms") <= ms("max_ms"), "{r}");
}
