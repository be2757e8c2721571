//! Every way tracing stops leaves the kernel as it was: no BPF program, map or link of the
//! tracer's stays loaded (asked of the kernel by id: bpf(2)'s GET_FD_BY_ID commands), nothing is
//! pinned, a new run starts and captures, and the traced service never notices, even when the
//! tracer is killed under load. Kprobe events that a killed tracer left in tracefs are removed by
//! the next run (in the VM guests, where kprobes exist).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The BPF objects a process holds open, by kind, as its fds' fdinfo names them.
#[derive(Debug, Default)]
struct BpfIds {
    progs: Vec<u32>,
    maps: Vec<u32>,
    links: Vec<u32>,
}

impl BpfIds {
    fn of(pid: u32) -> BpfIds {
        let mut ids = BpfIds::default();
        let dir = format!("/proc/{pid}/fdinfo");
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let Ok(text) = std::fs::read_to_string(entry.expect("fdinfo entry").path()) else {
                continue;
            };
            for line in text.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let Ok(id) = value.trim().parse::<u32>() else {
                    continue;
                };
                match key {
                    "prog_id" => ids.progs.push(id),
                    "map_id" => ids.maps.push(id),
                    "link_id" => ids.links.push(id),
                    _ => {}
                }
            }
        }
        ids
    }

    /// The ones the kernel still has.
    fn still_loaded(&self) -> Vec<String> {
        const PROG_GET_FD_BY_ID: libc::c_long = 13;
        const MAP_GET_FD_BY_ID: libc::c_long = 14;
        const LINK_GET_FD_BY_ID: libc::c_long = 30;
        let kinds = [
            ("program", PROG_GET_FD_BY_ID, &self.progs),
            ("map", MAP_GET_FD_BY_ID, &self.maps),
            ("link", LINK_GET_FD_BY_ID, &self.links),
        ];
        let mut left = Vec::new();
        for (kind, cmd, ids) in kinds {
            for &id in ids {
                // union bpf_attr for the GET_FD_BY_ID commands: the id, then next_id and
                // open_flags, zero.
                let attr = [id, 0, 0, 0];
                // SAFETY: bpf(2) reads `size` bytes of `attr`, which lives across the call.
                let fd = unsafe {
                    libc::syscall(
                        libc::SYS_bpf,
                        cmd,
                        attr.as_ptr(),
                        std::mem::size_of_val(&attr),
                    )
                };
                if fd >= 0 {
                    // SAFETY: fd was just returned to us and is closed once.
                    unsafe { libc::close(fd as i32) };
                    left.push(format!("{kind} {id}"));
                }
            }
        }
        left
    }
}

/// The tracer's BPF objects, once it traces: it must hold some, or the check proves nothing.
fn ids_of(tracer: &Tracer) -> BpfIds {
    let ids = BpfIds::of(tracer.pid());
    assert!(
        !ids.progs.is_empty() && !ids.maps.is_empty(),
        "no BPF programs or maps open in the tracer: {ids:?}"
    );
    // The check sees them while they are loaded.
    assert_eq!(
        ids.still_loaded().len(),
        ids.progs.len() + ids.maps.len() + ids.links.len()
    );
    ids
}

/// After the tracer ended: the kernel frees what it held (the last reference goes with its
/// fds; freeing is deferred a moment), and nothing of ours is pinned.
fn assert_released(ids: &BpfIds) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = ids.still_loaded();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still loaded 10 s after the tracer ended: {left:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    if let Ok(pinned) = std::fs::read_dir("/sys/fs/bpf") {
        for entry in pinned.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            assert!(
                !name.contains("http") && !name.starts_with("ht_"),
                "pinned: /sys/fs/bpf/{name}"
            );
        }
    }
}

/// A new tracer starts and captures: nothing the last one left is in its way.
fn assert_a_new_run_captures(server: &Server) {
    let tracer = Tracer::start(&[server.pid()], &[]);
    assert_eq!(get(server.port, "/after"), 200);
    let out = tracer.stop();
    assert!(out.status.success(), "{:#?}", out.stderr);
    assert_eq!(
        method_targets(&out.exchanges()),
        pairs(&[("GET", "/after")])
    );
    out.assert_summary(1);
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our child, not reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0, "kill {pid}");
}

#[test]
fn sigint_sigterm_and_sighup_end_with_the_summary_and_release_everything() {
    require_root!();
    if in_vm("sigint_sigterm_and_sighup_end_with_the_summary_and_release_everything") {
        return;
    }
    let server = Server::ours("recv");
    for (sig, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let mut tracer = Tracer::start(&[server.pid()], &[]);
        let ids = ids_of(&tracer);
        assert_eq!(get(server.port, &format!("/{name}")), 200);
        tracer.wait_for_records(1, Duration::from_secs(30));
        signal(tracer.pid(), sig);
        let out = tracer.wait();
        assert!(
            out.status.success(),
            "{name}: {} {:#?}",
            out.status,
            out.stderr
        );
        assert_eq!(
            method_targets(&out.exchanges()),
            pairs(&[("GET", &format!("/{name}"))])
        );
        out.assert_summary(1);
        assert_released(&ids);
    }
    assert_a_new_run_captures(&server);
}

#[test]
fn duration_count_and_the_traced_process_exiting_release_everything() {
    require_root!();
    if in_vm("duration_count_and_the_traced_process_exiting_release_everything") {
        return;
    }
    let mut server = Server::ours("recv");

    let tracer = Tracer::start(&[server.pid()], &["--duration", "1"]);
    let ids = ids_of(&tracer);
    let out = tracer.wait();
    assert!(out.status.success(), "{:#?}", out.stderr);
    out.assert_summary(0);
    assert_released(&ids);

    let tracer = Tracer::start(&[server.pid()], &["--count", "1"]);
    let ids = ids_of(&tracer);
    assert_eq!(get(server.port, "/counted"), 200);
    let out = tracer.wait();
    assert!(out.status.success(), "{:#?}", out.stderr);
    out.assert_summary(1);
    assert_released(&ids);

    assert_a_new_run_captures(&server);

    let tracer = Tracer::start(&[server.pid()], &[]);
    let ids = ids_of(&tracer);
    server.end();
    let out = tracer.wait();
    assert!(out.status.success(), "{:#?}", out.stderr);
    out.assert_said("http-trace: every traced process has exited");
    assert_released(&ids);
}

/// `http-trace ... | head -n 1`: the reader goes away; the next write fails with EPIPE and the
/// tracer ends, cleanly, with its summary on stderr.
#[test]
fn stdout_closed_by_the_reader_ends_the_trace_and_releases_everything() {
    require_root!();
    if in_vm("stdout_closed_by_the_reader_ends_the_trace_and_releases_everything") {
        return;
    }
    let server = Server::ours("recv");
    let mut cmd = Command::new(TRACER);
    cmd.args([
        "--pid",
        &server.pid().to_string(),
        "--attach",
        &attach_method(),
    ])
    .args(["--output", "text"])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut group = Group::spawn("http-trace", &mut cmd);
    let stderr = group.stderr_lines();
    let mut stdout = BufReader::new(group.take_stdout());
    wait_until("the banner", Duration::from_secs(60), || {
        stderr.try_recv().is_ok_and(|l| l.contains(": tracing "))
    });
    let ids = BpfIds::of(group.pid());
    assert!(
        !ids.progs.is_empty() && ids.still_loaded().len() >= ids.progs.len(),
        "{ids:?}"
    );
    assert_eq!(get(server.port, "/first"), 200);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the first line");
    assert!(line.contains("GET /first"), "{line:?}");
    drop(stdout);
    // Each exchange is a write into the closed pipe; the first fails and ends the trace.
    let mut sent = 0;
    let ended = Instant::now() + Duration::from_secs(30);
    while group_running(&group) {
        assert!(
            Instant::now() < ended,
            "still running after {sent} more requests"
        );
        assert_eq!(get(server.port, "/more"), 200);
        sent += 1;
        thread::sleep(Duration::from_millis(100));
    }
    let status = group.wait("http-trace to end", Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let rest: Vec<String> =
        std::iter::from_fn(|| stderr.recv_timeout(Duration::from_secs(5)).ok()).collect();
    assert!(
        rest.iter()
            .any(|l| l.starts_with("http-trace: ") && l.contains(" captured, 0 events lost")),
        "no summary in {rest:#?}"
    );
    assert_released(&ids);
    assert_a_new_run_captures(&server);
}

fn group_running(group: &Group) -> bool {
    procfs::process::Process::new(group.pid() as i32)
        .and_then(|p| p.stat())
        .is_ok_and(|s| s.state != 'Z')
}

/// SIGKILL gives the tracer no chance to clean up: the kernel must drop everything with its
/// fds (no pinning, no tracefs state but the kprobe events below). Runs in the guests too, for
/// each attach method.
#[test]
fn a_killed_tracer_leaves_nothing_loaded() {
    require_root!();
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let ids = ids_of(&tracer);
    assert_eq!(get(server.port, "/before"), 200);
    signal(tracer.pid(), libc::SIGKILL);
    let out = tracer.wait();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL)
    );
    assert_released(&ids);
    assert_a_new_run_captures(&server);
}

/// The traced server answers every request while a tracer is killed in the middle of a load:
/// four clients, keep-alive and new connections, for at most 4,000 requests or 60 s.
#[test]
fn a_traced_server_keeps_answering_while_the_tracer_is_killed() {
    require_root!();
    if in_vm("a_traced_server_keeps_answering_while_the_tracer_is_killed") {
        return;
    }
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let ids = ids_of(&tracer);
    let port = server.port;
    let clients: Vec<_> = (0..4)
        .map(|k| {
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut answered = 0;
                while answered < 1000 && Instant::now() < deadline {
                    // Clients 0 and 1 keep their connection for 50 requests, 2 and 3 open one
                    // per request.
                    let per_conn = if k < 2 { 50 } else { 1 };
                    let mut c = Client::connect(port);
                    for i in 0..per_conn {
                        let req = format!("GET /load/{k}/{i} HTTP/1.1\r\nHost: t\r\n\r\n");
                        c.send(&[req.as_bytes()]);
                        assert_eq!(c.responses(1), [200], "client {k}, request {answered}");
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    // Kill it once the load is well under way: it has captured some exchanges.
    let mut tracer = tracer;
    tracer.wait_for_records(100, Duration::from_secs(60));
    signal(tracer.pid(), libc::SIGKILL);
    let out = tracer.wait();
    assert!(out.stdout.len() >= 100);
    let answered: usize = clients
        .into_iter()
        .map(|c| c.join().expect("a client failed"))
        .sum();
    assert_eq!(answered, 4000, "every request answered, none failed");
    assert_released(&ids);
    assert_a_new_run_captures(&server);
}

/// The kprobe method makes its return probes in tracefs' kprobe_events (for their maxactive):
/// a SIGKILLed tracer leaves them there, and the next run removes them.
#[test]
fn kprobe_events_a_killed_tracer_left_are_removed_by_the_next_run() {
    require_root!();
    let test = "kprobe_events_a_killed_tracer_left_are_removed_by_the_next_run";
    if attach_method() != "kprobe" {
        skipped(test, "runs with --attach kprobe (in the VM guests)");
        return;
    }
    let events = [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("kprobe_events in tracefs");
    let ours = |pid: u32| -> Vec<String> {
        std::fs::read_to_string(events)
            .expect("read kprobe_events")
            .lines()
            .filter(|l| l.contains(&format!("http_trace/ht{pid}_")))
            .map(str::to_string)
            .collect()
    };
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &[]);
    let killed = tracer.pid();
    assert!(!ours(killed).is_empty(), "no kprobe events of the tracer");
    signal(killed, libc::SIGKILL);
    let out = tracer.wait();
    assert!(!out.status.success());
    assert!(!ours(killed).is_empty(), "a killed tracer's events stay");
    let next = Tracer::start(&[server.pid()], &[]);
    assert_eq!(
        ours(killed),
        Vec::<String>::new(),
        "removed by the next run"
    );
    let next_pid = next.pid();
    assert!(!ours(next_pid).is_empty());
    assert_eq!(get(server.port, "/after"), 200);
    let out = next.stop();
    out.assert_summary(1);
    assert_eq!(
        ours(next_pid),
        Vec::<String>::new(),
        "a clean stop removes its own"
    );
}
