//! Helpers for the root integration tests: start real servers and the real tracer, send real
//! requests, and read what the tracer printed.
//!
//! Nothing is left behind: every process a test starts runs in a process group of its own,
//! killed whole and reaped when its guard is dropped (also when the test panics), and every temp
//! dir is removed by its guard. Nothing waits by sleeping: `wait_until` polls the condition.

#![allow(dead_code)] // each test file uses its own subset

mod client;
mod groups;
mod secrets;
mod server;
mod sockets;
mod tls;
mod tracer;

// Each test file uses its own subset.
#[allow(unused_imports)]
pub use {client::*, groups::*, secrets::*, server::*, sockets::*, tls::*, tracer::*};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{
    Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio,
};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{mpsc, Once};
use std::thread;
use std::time::{Duration, Instant};

use procfs::net::{TcpNetEntry, TcpState};
use procfs::process::FDTarget;
use serde_json::Value;

pub const TRACER: &str = env!("CARGO_BIN_EXE_http-trace");

/// The attach method under test: the VM runner sets it to run the suite once per method.
pub fn attach_method() -> String {
    std::env::var("HTTP_TRACE_TEST_ATTACH").unwrap_or_else(|_| "auto".into())
}

/// Whether this process runs as root, which loading BPF programs takes.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The running test's name: libtest runs each test on a thread named after it.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string()
}

/// A root test run without root: says it is skipped, and why, and returns from the test, so that
/// `cargo test` as a user runs every pure test and passes. In a helper, `require_root!(VALUE)`
/// returns VALUE.
macro_rules! require_root {
    () => {
        $crate::common::require_root!(())
    };
    ($skip:expr) => {
        if !$crate::common::is_root() {
            $crate::common::skipped(
                &$crate::common::test_name(),
                "needs root (it loads BPF programs): run it with sudo",
            );
            return $skip;
        }
    };
}
pub(crate) use require_root;

/// Whether this is a guest of scripts/vm-test.sh, where the tests of programs installed for the
/// host only (docker, HAProxy, gunicorn) do not run: says so and returns true.
pub fn in_vm(test: &str) -> bool {
    if std::env::var_os("HTTP_TRACE_IN_VM").is_some() {
        skipped(test, "tested on the host only");
        return true;
    }
    false
}

/// Say that `test` did not check what its name claims, and why. Written to the real stderr, past
/// the test harness's capture, so that it shows in passing runs too.
pub fn skipped(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {reason}");
}

/// Poll `cond` until it holds; panics naming `what` if it still does not after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        // The polling interval, not a guess at how long the condition takes.
        thread::sleep(Duration::from_millis(5));
    }
}

/// Wait until the file at `path` holds `needle` (a recording being written, for example).
pub fn wait_for_bytes(path: &Path, needle: &[u8]) {
    wait_until(
        &format!(
            "{} to hold {:?}",
            path.display(),
            String::from_utf8_lossy(needle)
        ),
        Duration::from_secs(30),
        || std::fs::read(path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)),
    );
}

/// target/<profile>/ of this build, from the test binary's own path (target/<profile>/deps/...).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

pub fn example_bin(name: &str) -> PathBuf {
    let path = target_profile_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo build --examples)",
        path.display()
    );
    path
}

/// The Go program tests/data/NAME.go, built with Debian's Go (offline: standard library only)
/// into target/<profile>/go/ once, and again when its source changes.
pub fn go_program(name: &str) -> PathBuf {
    let cache = TempDir::new("go-cache");
    built(&format!("{name}.go"), "go", |source, out| {
        let mut cmd = Command::new("go");
        cmd.arg("build")
            .arg("-o")
            .arg(out)
            .arg(source)
            .env("GO111MODULE", "off")
            .env("GOCACHE", cache.path())
            .env("GOPATH", cache.join("gopath"));
        cmd
    })
}

/// The C program tests/data/`name`.c, built with gcc and `libs` into target/<profile>/c/ once,
/// and again when its source changes.
pub fn c_program(name: &str, libs: &[&str]) -> PathBuf {
    built(&format!("{name}.c"), "c", |source, out| {
        let mut cmd = Command::new("gcc");
        cmd.args(["-O2", "-D_GNU_SOURCE", "-o"])
            .arg(out)
            .arg(source)
            .args(libs);
        cmd
    })
}

/// tests/data/`source` built by the command `build(source, output)` makes into
/// target/<profile>/`kind`/, unless it is there already, newer than its source.
fn built(source: &str, kind: &str, build: impl FnOnce(&Path, &Path) -> Command) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(source);
    let name = source.file_stem().expect("a source file name").to_owned();
    let dir = target_profile_dir().join(kind);
    let bin = dir.join(&name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&bin).is_some() && modified(&bin) >= modified(&source) {
        return bin;
    }
    std::fs::create_dir_all(&dir).expect("create the build directory");
    // Built aside, then renamed: a guest running the suite beside the host sees the whole file.
    let partial = dir.join(format!("{}.{}", name.to_string_lossy(), std::process::id()));
    let mut cmd = build(&source, &partial);
    let out = run("build", &mut cmd, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "building {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &bin).expect("move the program into place");
    bin
}

const TEMP_PREFIX: &str = "http-trace-test-";

/// A fresh directory under the temp dir, removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_stale_temp_dirs);
        let dir = std::env::temp_dir().join(format!(
            "{TEMP_PREFIX}{}-{}-{tag}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            let _ = writeln!(std::io::stderr(), "removing {}: {e}", self.0.display());
        }
    }
}

/// Remove the temp dirs of test runs that were killed before their guards ran: those named for
/// a PID no process has.
fn remove_stale_temp_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next()?.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
