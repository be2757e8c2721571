//! Bad input and unsupported situations end with one clear line on stderr and a non-zero exit.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

fn assert_one_line_error(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    assert!(lines[0].starts_with("http-trace: "), "{stderr}");
    assert!(lines[0].contains(needle), "want {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

fn self_pid() -> String {
    std::process::id().to_string()
}

#[test]
fn missing_pid_is_a_usage_error() {
    let (status, _, stderr) = run_tracer(&[], &[]);
    assert_eq!(status.code(), Some(2));
    assert_one_line_error(&stderr, "--pid");
}

#[test]
fn flags_out_of_range_are_usage_errors() {
    let pid = self_pid();
    for (args, needle) in [
        (vec!["--pid", "0"], "--pid"),
        (
            vec!["--pid", &pid, "--capture-bytes", "10"],
            "--capture-bytes",
        ),
        (
            vec!["--pid", &pid, "--capture-bytes", "2000000"],
            "--capture-bytes",
        ),
        (vec!["--pid", &pid, "--buffer-pages", "3"], "power of two"),
        (vec!["--pid", &pid, "--count", "0"], "--count"),
        (vec!["--pid", &pid, "--duration", "0"], "--duration"),
        (vec!["--pid", &pid, "--attach", "magic"], "--attach"),
        (vec!["--pid", "abc"], "--pid"),
    ] {
        let (status, _, stderr) = run_tracer(&args, &[]);
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert_one_line_error(&stderr, needle);
    }
}

#[test]
fn no_such_process() {
    require_root!();
    let (status, _, stderr) = run_tracer(&["--pid", "2147483646"], &[]);
    assert_eq!(status.code(), Some(1));
    assert_one_line_error(&stderr, "no such process: 2147483646");
}

#[test]
fn a_process_that_exited_is_said_to_have_exited() {
    require_root!();
    // Not reaped until the end: it stays a zombie, which /proc still lists.
    let mut child = Command::new("true").spawn().expect("start true");
    let pid = child.id();
    wait_until("true to exit", Duration::from_secs(10), || has_exited(pid));
    let (status, _, stderr) = run_tracer(&["--pid", &pid.to_string()], &[]);
    child.wait().expect("reap true");
    assert_eq!(status.code(), Some(1));
    assert_one_line_error(
        &stderr,
        &format!("process {pid} has exited (its parent has not reaped it yet)"),
    );
}

#[test]
fn not_root() {
    require_root!();
    // Run as nobody, with no capabilities, from a copy that nobody can reach (the checkout may
    // sit under a directory only root can enter).
    let dir = TempDir::new("nobody");
    let copy = dir.join("http-trace");
    std::fs::copy(TRACER, &copy).expect("copy the binary");
    for p in [dir.path(), &copy] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(&copy)
    .args(["--pid", &self_pid()]);
    let out = run("setpriv", &mut cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(
        &String::from_utf8_lossy(&out.stderr),
        "permission denied: tracing needs root",
    );
}

#[test]
fn kernel_without_btf() {
    require_root!();
    let (status, _, stderr) = run_tracer(
        &["--pid", &self_pid()],
        &[("HTTP_TRACE_SYSFS_BTF", "/nonexistent/vmlinux")],
    );
    assert_eq!(status.code(), Some(1));
    assert_one_line_error(&stderr, "this kernel has no BTF");
}

#[test]
fn forced_kprobe_method_on_a_kernel_without_kprobes() {
    require_root!();
    let kprobes = Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
    let (status, _, stderr) = run_tracer(
        &[
            "--pid",
            &self_pid(),
            "--attach",
            "kprobe",
            "--duration",
            "1",
        ],
        &[],
    );
    if kprobes {
        assert!(status.success(), "{stderr}");
        assert!(stderr.contains("with kprobe"), "{stderr}");
        skipped(
            "forced_kprobe_method_on_a_kernel_without_kprobes",
            "this kernel has kprobes; checked instead that the forced kprobe method works",
        );
    } else {
        assert_eq!(status.code(), Some(1));
        assert_one_line_error(
            &stderr,
            "no attach method works on this kernel (kprobe is not available: this kernel has no kprobes",
        );
    }
}
