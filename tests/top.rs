//! Root integration tests of the live view (`--top`) in a real terminal: http-trace runs in a
//! tmux session of its own while a server is loaded, and the screen is read with capture-pane.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::*;

/// A tmux server of this test's own, killed (with what runs in it) when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `command` in a detached session of `width` x `height`; the pane stays after it exits.
    fn start(command: &str, width: u16, height: u16) -> Tmux {
        // A server per test: the tests of this file run in parallel.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let t = Tmux {
            socket: format!(
                "http-trace-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let (w, h) = (width.to_string(), height.to_string());
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            &w,
            "-y",
            &h,
            command,
        ]);
        t.run(&["set-option", "-t", "top", "remain-on-exit", "on"]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux (scripts/setup.sh installs it)");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "top", keys]);
    }

    /// The screen once `cond` holds of it.
    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let mut seen = false;
        for _ in 0..600 {
            last = self.screen();
            if cond(&last) {
                seen = true;
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        assert!(seen, "the screen never showed {what}:\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The cells of the table row of `route` (role, method, route, count, req/s, 2xx, 3xx, 4xx,
/// 5xx, none, p50, p90, p99, max), if the screen shows it.
fn row(screen: &str, route: &str) -> Option<Vec<String>> {
    screen
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cells| cells.len() == 14 && cells[2] == route)
}

#[test]
fn the_live_view_shows_what_was_sent() {
    require_root!();
    if in_vm("the_live_view_shows_what_was_sent") {
        return;
    }
    let server = Server::ours("recv");
    let port = server.port;
    let command = format!(
        "{TRACER} --pid {} --top --route '/api/users/{{id}}/orders'; echo EXIT=$?",
        server.pid()
    );
    let tmux = Tmux::start(&command, 180, 50);
    tmux.wait_for("the table's header", |s| s.contains("sorted by count"));
    send_load(port);
    // The view drawn whole: tmux can show a screen while it is being painted (CI caught one
    // cut in the middle of the errors list, the slowest list still empty).
    let screen = tmux.wait_for("every exchange", |s| {
        s.contains("1064 exchanges")
            && s.find("slowest exchanges")
                .is_some_and(|i| s[i..].contains(" -> 200 OK "))
    });
    check_screen(&screen);
    // The load is over: the next refresh's rates are 0.
    let idle = tmux.wait_for("the rates of an idle second", |s| {
        s.contains("exchanges, 0.0 req/s")
    });
    assert_eq!(row(&idle, "/api/users/{id}").unwrap()[4], "0.0", "{idle}");
    // Sorted by errors, the statuses come first.
    tmux.keys("e");
    let sorted = tmux.wait_for("the sort by errors", |s| s.contains("sorted by errors"));
    let first = sorted
        .lines()
        .skip_while(|l| !l.starts_with("role "))
        .nth(1)
        .unwrap_or("");
    assert!(first.contains("/r/status/{id}"), "{sorted}");
    // q: the terminal is back, with the table and the summary, and the exit status 0.
    tmux.keys("q");
    let end = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(end.contains("EXIT=0"), "{end}");
    assert!(end.contains(&captured(1064)), "{end}");
    assert!(end.contains("role    method  route"), "{end}");
    assert!(!end.contains("sorted by"), "the view was left: {end}");
}

/// Four clients at once: 1,000 requests to user pages, 20 to a templated route, 30 errors, 4
/// with a password in their query.
fn send_load(port: u16) {
    let clients: Vec<_> = (0..4)
        .map(|c| {
            thread::spawn(move || {
                for i in 0..250 {
                    let target = format!("/api/users/{}", c * 1000 + i);
                    assert_eq!(get(port, &target), 200);
                }
                for i in 0..5 {
                    assert_eq!(get(port, &format!("/api/users/{i}/orders")), 200);
                }
                for _ in 0..5 {
                    assert_eq!(get(port, "/r/status/503"), 503);
                    assert_eq!(get(port, "/r/status/404"), 404);
                }
                assert_eq!(
                    get(port, "/api/login?user=ann&password=hunter2&state=x"),
                    200
                );
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client");
    }
}

/// The view of that load: its rows, its lists of errors and of the slowest, no secret.
fn check_screen(screen: &str) {
    let users = row(screen, "/api/users/{id}").expect("the users row");
    assert_eq!(
        users[..10],
        [
            "server",
            "GET",
            "/api/users/{id}",
            "1000",
            users[4].as_str(),
            "1000",
            "0",
            "0",
            "0",
            "0"
        ],
        "{screen}"
    );
    let orders = row(screen, "/api/users/{id}/orders").expect("the template's row");
    assert_eq!(orders[3], "20", "{screen}");
    let statuses = row(screen, "/r/status/{id}").expect("the statuses row");
    assert_eq!(
        statuses[3..10],
        ["40", statuses[4].as_str(), "0", "0", "20", "20", "0"],
        "{screen}"
    );
    let login = row(screen, "/api/login").expect("the login row");
    assert_eq!(login[3], "4", "{screen}");
    // The errors below the table, newest first; the slowest exchanges; no secret anywhere.
    let errors = screen.find("latest errors").expect("the errors list");
    let slowest = screen.find("slowest exchanges").expect("the slowest list");
    assert!(errors < slowest, "{screen}");
    let error_lines = &screen[errors..slowest];
    assert!(
        error_lines.contains("GET /r/status/503 HTTP/1.1 -> 503"),
        "{screen}"
    );
    assert!(
        error_lines.contains("GET /r/status/404 HTTP/1.1 -> 404"),
        "{screen}"
    );
    assert!(!error_lines.contains("-> 200"), "{screen}");
    assert!(screen[slowest..].contains(" -> 200 OK "), "{screen}");
    assert!(!screen.contains("hunter2"), "{screen}");
}

/// The corpus of secrets (tests/files.rs's, whose outputs hold none) through the live view:
/// no secret on its screen (rows, errors, slowest exchanges) nor in the table left at exit.
#[test]
fn the_live_view_shows_no_secret() {
    require_root!();
    if in_vm("the_live_view_shows_no_secret") {
        return;
    }
    let nginx = nginx_with_a_secret();
    let command = format!("{TRACER} --pid {} --top; echo EXIT=$?", nginx.pid());
    let tmux = Tmux::start(&command, 200, 60);
    tmux.wait_for("the table's header", |s| s.contains("sorted by count"));
    let secrets = send_secrets(nginx.port);
    let screen = tmux.wait_for("every exchange", |s| {
        s.contains("14 exchanges")
            && s.find("slowest exchanges")
                .is_some_and(|i| s[i..].contains(" -> 200 OK "))
    });
    assert!(screen.contains("/userinfo"), "{screen}");
    tmux.keys("q");
    let end = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(end.contains("EXIT=0"), "{end}");
    for s in &secrets {
        assert!(!screen.contains(s), "the view shows {s}: {screen}");
        assert!(!end.contains(s), "the exit shows {s}: {end}");
    }
}

#[test]
fn the_live_view_needs_a_terminal_and_no_other_output() {
    let server = Server::ours("recv");
    let pid = server.pid().to_string();
    let out = Command::new(TRACER)
        .args(["--pid", &pid, "--top"])
        .output()
        .expect("run http-trace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "http-trace: error: --top draws on a terminal, and stdout is not one: use --stats, or -o json, to write elsewhere"
    );
    for other in [&["-o", "json"][..], &["-w", "x.htr"], &["-v"]] {
        let out = Command::new(TRACER)
            .args(["--pid", &pid, "--top"])
            .args(other)
            .output()
            .expect("run http-trace");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{other:?}: {stderr}");
        assert!(
            stderr.starts_with("http-trace: error: the argument '--top' cannot be used with"),
            "{other:?}: {stderr}"
        );
    }
}
