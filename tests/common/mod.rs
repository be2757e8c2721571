//! Helpers for the root integration tests: start real servers and the real tracer, send real
//! requests, and read what the tracer printed.
//!
//! Nothing is left behind: every process a test starts runs in a process group of its own,
//! killed whole and reaped when its guard is dropped (also when the test panics), and every temp
//! dir is removed by its guard. Nothing waits by sleeping: `wait_until` polls the condition.

#![allow(dead_code)] // each test file uses its own subset

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

/// Say that `test` did not check what its name claims, and why. Written to the real stderr, past
/// the test harness's capture, so that it shows in passing runs too.
/// Whether this is a guest of scripts/vm-test.sh, where the tests of programs installed for the
/// host only (docker, HAProxy, gunicorn) do not run: says so and returns true.
pub fn in_vm(test: &str) -> bool {
    if std::env::var_os("HTTP_TRACE_IN_VM").is_some() {
        skipped(test, "tested on the host only");
        return true;
    }
    false
}

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

// Process groups alive, for the signal handler below: 0 is a free slot.
const GROUP_SLOTS: usize = 256;
static GROUPS: [AtomicI32; GROUP_SLOTS] = [const { AtomicI32::new(0) }; GROUP_SLOTS];

fn register_group(pgid: i32) {
    let free = GROUPS.iter().any(|s| {
        s.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    });
    assert!(free, "more than {GROUP_SLOTS} process groups at once");
}

fn unregister_group(pgid: i32) {
    for slot in &GROUPS {
        let _ = slot.compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// The test binary interrupted (Ctrl-C, a timeout's SIGTERM): no guard will run, and the groups,
/// being groups of their own, did not get the signal: kill and reap them, then die of the
/// signal. (Temp dirs are left: removing them is not async-signal-safe.)
extern "C" fn kill_groups_and_die(sig: libc::c_int) {
    for slot in &GROUPS {
        let pgid = slot.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill is async-signal-safe and has no memory-safety preconditions.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
    for slot in &GROUPS {
        let pgid = slot.load(Ordering::SeqCst);
        // SAFETY: waitpid is async-signal-safe; the status pointer may be null. Every process of
        // the group was killed above, so each wait ends.
        while pgid > 0 && unsafe { libc::waitpid(-pgid, std::ptr::null_mut(), 0) } > 0 {}
    }
    // SAFETY: signal and raise are async-signal-safe; the signal is re-raised with its default
    // action once this handler returns.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn setup_process_handling() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Orphans (nginx workers whose master was killed first) become our children, so that
        // their group can be reaped to the last process, whatever PID 1 does with orphans.
        // SAFETY: prctl with these arguments only sets a flag on this process.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler only calls async-signal-safe functions and reads atomics.
            unsafe { libc::signal(sig, kill_groups_and_die as *const () as libc::sighandler_t) };
        }
    });
}

/// A child process in a process group of its own. Dropping it kills the whole group (the child
/// and whatever it forked) and reaps every one of them.
pub struct Group {
    child: Child,
    status: Option<ExitStatus>,
}

impl Group {
    pub fn spawn(what: &str, cmd: &mut Command) -> Group {
        setup_process_handling();
        cmd.process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        register_group(child.id() as i32);
        Group {
            child,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn take_stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin piped")
    }

    pub fn take_stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout piped")
    }

    pub fn take_stderr(&mut self) -> ChildStderr {
        self.child.stderr.take().expect("stderr piped")
    }

    /// Lines of stdout, through a channel so that reads can time out.
    pub fn stdout_lines(&mut self) -> mpsc::Receiver<String> {
        line_channel(self.child.stdout.take().expect("stdout piped"))
    }

    pub fn stderr_lines(&mut self) -> mpsc::Receiver<String> {
        line_channel(self.child.stderr.take().expect("stderr piped"))
    }

    /// Whether the child has exited. It is not reaped, so its PID, the group's ID, stays ours.
    fn exited(&self) -> bool {
        // SAFETY: waitid writes only into `info`, a zeroed siginfo_t we own.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r = libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            r == 0 && info.si_pid() != 0
        }
    }

    /// Wait for the child to exit by itself; what is left of its group is then killed.
    pub fn wait(&mut self, what: &str, timeout: Duration) -> ExitStatus {
        if self.status.is_none() {
            wait_until(what, timeout, || self.exited());
        }
        self.end()
    }

    /// Kill the whole group and reap it; the child's exit status.
    pub fn end(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let pgid = self.child.id() as i32;
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet, so the
        // group is still ours.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let status = self.child.wait().expect("reap the child");
        // The rest of the group, killed above, became our children as their parents died.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: waitpid with a null status pointer has no memory-safety preconditions.
            let r = unsafe { libc::waitpid(-pgid, std::ptr::null_mut(), libc::WNOHANG) };
            if r < 0 {
                break; // ECHILD: none left
            }
            if r == 0 && Instant::now() > deadline {
                let _ = writeln!(std::io::stderr(), "group {pgid} outlived SIGKILL");
                break;
            }
            if r == 0 {
                // The polling interval, while the killed processes finish exiting.
                thread::sleep(Duration::from_millis(5));
            }
        }
        unregister_group(pgid);
        self.status = Some(status);
        status
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.end();
    }
}

/// Run `cmd` (in a group of its own) to its end, within `timeout`.
pub fn run(what: &str, cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut group = Group::spawn(what, cmd);
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(group.take_stdout()));
    let stderr = read_all(Box::new(group.take_stderr()));
    let status = group.wait(&format!("{what} to end"), timeout);
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// Lines of a child's pipe, delivered through a channel so that reads can time out.
fn line_channel(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // Keep reading after the receiver is gone: a child writing to a closed pipe fails.
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    rx
}

/// Lines up to and including the first that matches `pred`.
fn wait_for_line(
    rx: &mpsc::Receiver<String>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = pred(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no {what} line; saw: {seen:#?}");
}

/// The TCP sockets of this network namespace (/proc/net/tcp and tcp6), through procfs.
fn tcp_sockets() -> Vec<TcpNetEntry> {
    let mut sockets = procfs::net::tcp().unwrap_or_default();
    sockets.extend(procfs::net::tcp6().unwrap_or_default());
    sockets
}

/// (local port, remote port) of a socket.
fn ports(s: &TcpNetEntry) -> (u16, u16) {
    (s.local_address.port(), s.remote_address.port())
}

/// The descriptor through which `pid` holds the socket with this inode, if it does.
pub fn socket_fd(pid: u32, inode: u64) -> Option<i32> {
    let process = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    process
        .fd()
        .ok()?
        .filter_map(Result::ok)
        .find_map(|fd| match fd.target {
            FDTarget::Socket(i) if i == inode => Some(fd.fd),
            _ => None,
        })
}

/// Whether `pid` holds a socket listening on `port`, in its own network namespace (a
/// container's included).
pub fn listens(pid: u32, port: u16) -> bool {
    let Some(process) = i32::try_from(pid)
        .ok()
        .and_then(|p| procfs::process::Process::new(p).ok())
    else {
        return false;
    };
    let mut sockets = process.tcp().unwrap_or_default();
    sockets.extend(process.tcp6().unwrap_or_default());
    sockets.iter().any(|s| {
        s.state == TcpState::Listen
            && s.local_address.port() == port
            && socket_fd(pid, s.inode).is_some()
    })
}

/// How many connections to its port `port` process `pid` still holds open.
pub fn connections_held(pid: u32, port: u16) -> usize {
    tcp_sockets()
        .iter()
        .filter(|s| {
            s.state != TcpState::Listen
                && s.local_address.port() == port
                && socket_fd(pid, s.inode).is_some()
        })
        .count()
}

/// How many threads of `pid` sleep in one of `syscalls` (numbers, such as libc::SYS_recvfrom).
pub fn threads_blocked_in(pid: u32, syscalls: &[libc::c_long]) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            let dir = task.path();
            // "NR ARGS... SP PC" while in a syscall, "running" while running.
            let in_call = std::fs::read_to_string(dir.join("syscall")).is_ok_and(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|nr| nr.parse::<libc::c_long>().ok())
                    .is_some_and(|nr| syscalls.contains(&nr))
            });
            let sleeping = std::fs::read_to_string(dir.join("stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().next())
                    == Some("S")
            });
            in_call && sleeping
        })
        .count()
}

pub struct Server {
    // Declared before `dir`: the group is killed before its files are removed.
    group: Group,
    pub port: u16,
    pub name: String,
    dir: Option<TempDir>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// Kill the server (its whole group) and reap it.
    pub fn end(&mut self) {
        self.group.end();
    }

    /// Start `cmd` and wait until its output names the port it listens on (or, when `port` is
    /// given, until it listens there).
    pub fn start(name: &str, mut cmd: Command, port: Option<u16>) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = Group::spawn(name, &mut cmd);
        let out = group.stdout_lines();
        let _err = group.stderr_lines();
        let port = match port {
            Some(p) => {
                let pid = group.pid();
                wait_until(
                    &format!("{name} to listen on {p}"),
                    Duration::from_secs(30),
                    || listens(pid, p),
                );
                p
            }
            None => {
                let lines = wait_for_line(&out, "listening", |l| {
                    l.contains("listening on") || l.contains("Serving HTTP")
                });
                let line = lines.last().expect("a matching line");
                parse_port(line).unwrap_or_else(|| panic!("no port in {line:?}"))
            }
        };
        Server {
            group,
            port,
            name: name.to_string(),
            dir: None,
        }
    }

    pub fn ours(recv: &str) -> Server {
        Server::ours_with(recv, "send")
    }

    /// nginx answering "ok" to everything: one process (`workers` 0), or a master that forks
    /// `workers` worker processes.
    pub fn nginx(workers: u32) -> Server {
        Server::nginx_with(workers, "return 200 \"ok\\n\";")
    }

    /// nginx as a reverse proxy to the HTTP server on the Unix socket `path`.
    pub fn nginx_proxy_to_unix(path: &Path) -> Server {
        Server::nginx_with(0, &format!("proxy_pass http://unix:{}:;", path.display()))
    }

    /// nginx with `location` as what its one location does.
    fn nginx_with(workers: u32, location: &str) -> Server {
        let dir = TempDir::new(&format!("nginx-{workers}"));
        let port = free_port();
        let shape = match workers {
            0 => "master_process off; worker_processes 1;".to_string(),
            n => format!("master_process on; worker_processes {n};"),
        };
        let conf = format!(
            "daemon off; {shape} pid {d}/nginx.pid; error_log {d}/error.log;\n\
             worker_rlimit_nofile 10000; events {{ worker_connections 4096; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               client_max_body_size 10m; keepalive_requests 100000;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ {location} }} }} }}\n",
            d = dir.path().display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.args([
            "-c",
            &dir.join("nginx.conf").to_string_lossy(),
            "-e",
            &dir.join("error.log").to_string_lossy(),
        ]);
        let mut server = Server::start("nginx", cmd, Some(port));
        server.dir = Some(dir);
        server
    }

    /// A Python HTTP/1.1 server on the Unix socket `path` (in a temporary directory): it answers
    /// "unix TARGET\n" with a Content-Length, except for /close, which it answers HTTP/1.0 style
    /// with a body that ends when it closes the connection, and /mmsg/..., whose answer (status
    /// line, Content-Length, body, nothing else) it sends with sendmmsg(2).
    pub fn python_unix() -> (Server, PathBuf) {
        let dir = TempDir::new("unix");
        let path = dir.join("app.sock");
        let script = "import ctypes, http.server, socketserver, sys\n\
                      libc = ctypes.CDLL(None, use_errno=True)\n\
                      class Iovec(ctypes.Structure):\n\
                      \x20   _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n\
                      class Msghdr(ctypes.Structure):\n\
                      \x20   _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint),\n\
                      \x20       ('iov', ctypes.POINTER(Iovec)), ('iovlen', ctypes.c_size_t),\n\
                      \x20       ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t),\n\
                      \x20       ('flags', ctypes.c_int)]\n\
                      class Mmsghdr(ctypes.Structure):\n\
                      \x20   _fields_ = [('hdr', Msghdr), ('len', ctypes.c_uint)]\n\
                      def sendmmsg(fd, data):\n\
                      \x20   buf = ctypes.create_string_buffer(data, len(data))\n\
                      \x20   iov = Iovec(ctypes.cast(buf, ctypes.c_void_p), len(data))\n\
                      \x20   m = Mmsghdr()\n\
                      \x20   m.hdr.iov = ctypes.pointer(iov)\n\
                      \x20   m.hdr.iovlen = 1\n\
                      \x20   assert libc.sendmmsg(fd, ctypes.byref(m), 1, 0) == 1 and m.len == len(data)\n\
                      class H(http.server.BaseHTTPRequestHandler):\n\
                      \x20   protocol_version = 'HTTP/1.1'\n\
                      \x20   def address_string(self): return 'unix'\n\
                      \x20   def log_message(self, *a): pass\n\
                      \x20   def do_GET(self):\n\
                      \x20       if self.path == '/close':\n\
                      \x20           self.wfile.write(b'HTTP/1.0 200 OK\\r\\n\\r\\nclosing\\n')\n\
                      \x20           self.close_connection = True\n\
                      \x20           return\n\
                      \x20       body = b'unix ' + self.path.encode() + b'\\n'\n\
                      \x20       if self.path.startswith('/mmsg/'):\n\
                      \x20           head = b'HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body)\n\
                      \x20           sendmmsg(self.connection.fileno(), head + body)\n\
                      \x20           return\n\
                      \x20       self.send_response(200)\n\
                      \x20       self.send_header('Content-Length', str(len(body)))\n\
                      \x20       self.end_headers()\n\
                      \x20       self.wfile.write(body)\n\
                      s = socketserver.UnixStreamServer(sys.argv[1], H)\n\
                      print('listening on ' + sys.argv[1], flush=True)\n\
                      s.serve_forever()\n";
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", script]).arg(&path);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = Group::spawn("python unix server", &mut cmd);
        let out = group.stdout_lines();
        let _err = group.stderr_lines();
        wait_for_line(&out, "listening", |l| l.contains("listening on"));
        let server = Server {
            group,
            port: 0,
            name: "python unix server".to_string(),
            dir: Some(dir),
        };
        (server, path)
    }

    /// busybox httpd serving `index.html` ("hello\n"): it forks a child per connection, which
    /// moves the socket to fds 0 and 1 (dup2) and serves the request there.
    pub fn busybox_httpd() -> Server {
        let dir = TempDir::new("busybox-httpd");
        std::fs::write(dir.join("index.html"), "hello\n").expect("write index.html");
        let port = free_port();
        let mut cmd = Command::new("busybox");
        cmd.args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(dir.path());
        let mut server = Server::start("busybox httpd", cmd, Some(port));
        server.dir = Some(dir);
        server
    }

    /// Our example server, receiving and sending with the syscalls named.
    pub fn ours_with(recv: &str, send: &str) -> Server {
        let mut cmd = Command::new(example_bin("http_server"));
        cmd.args(["--port", "0", "--recv", recv, "--send", send]);
        Server::start(
            &format!("http_server --recv {recv} --send {send}"),
            cmd,
            None,
        )
    }
}

fn parse_port(line: &str) -> Option<u16> {
    if let Some(rest) = line.split("port ").nth(1) {
        return rest.split_whitespace().next()?.parse().ok();
    }
    line.rsplit(':').next()?.trim().parse().ok()
}

pub struct Tracer {
    group: Group,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// What it said on stderr up to and including "tracing ...".
    pub banner: Vec<String>,
    samples: PathBuf,
    /// Output lines taken early (wait_for_records).
    early: Vec<String>,
    /// The processes it was started on, and those its banner named.
    traced: Vec<u32>,
}

pub struct TraceOutput {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub status: ExitStatus,
    /// The events it received, recorded for when the test fails.
    samples: PathBuf,
}

impl Drop for TraceOutput {
    /// A failing test shows the events behind what was captured: a gap in a connection's
    /// sequence or an event never sent tells a capture fault from a parsing one, in a CI log.
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", event_listing(&self.samples));
        }
        let _ = std::fs::remove_file(&self.samples);
    }
}

/// Events shown at most when a test fails (the first and the last ones).
const LISTED_EVENTS: usize = 400;

/// The events in a samples file, a line each.
fn event_listing(path: &Path) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return format!("(no events recorded in {})", path.display());
    };
    let lines: Vec<String> = http_trace::decode::samples_file::read(&bytes)
        .map(event_line)
        .collect();
    let mut text = format!("events the tracer received ({}):\n", lines.len());
    for (i, line) in lines.iter().enumerate() {
        if lines.len() > LISTED_EVENTS && i == LISTED_EVENTS / 4 {
            text += &format!("  ... {} more ...\n", lines.len() - LISTED_EVENTS);
        }
        if lines.len() <= LISTED_EVENTS
            || i < LISTED_EVENTS / 4
            || i >= lines.len() - LISTED_EVENTS * 3 / 4
        {
            text += &format!("  {line}\n");
        }
    }
    text
}

fn event_line(sample: &[u8]) -> String {
    use http_trace::decode::{decode, ChunkKind, Event};
    match decode(sample) {
        Ok(Event::Conn(c)) => {
            let what = match &c.kind {
                ChunkKind::Open { how, endpoints } => format!("open {how:?} {endpoints:?}"),
                ChunkKind::Close => "close".to_string(),
                ChunkKind::Data(d) => format!(
                    "{:?} ret={} off={} len={}{}{} {:?}",
                    d.direction,
                    d.ret,
                    d.offset,
                    d.bytes.len(),
                    if d.last { " last" } else { "" },
                    if d.no_data { " no-data" } else { "" },
                    String::from_utf8_lossy(&d.bytes[..d.bytes.len().min(40)])
                ),
            };
            format!(
                "conn={} seq={} ts={} tgid={} tid={} fd={} {what}",
                c.conn_id, c.seq, c.ts_ns, c.meta.tgid, c.meta.tid, c.meta.fd
            )
        }
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("undecodable: {e}"),
    }
}

impl TraceOutput {
    pub fn json(&self) -> Vec<Value> {
        self.stdout
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect()
    }

    pub fn exchanges(&self) -> Vec<Value> {
        self.json()
            .into_iter()
            .filter(|v| v["kind"] == "exchange")
            .collect()
    }

    pub fn summary(&self) -> &str {
        self.stderr
            .iter()
            .rev()
            .find(|l| l.starts_with("http-trace: ") && l.contains(" captured, "))
            .unwrap_or_else(|| panic!("no summary line in {:#?}", self.stderr))
    }

    /// Asserts that the tracer said `line` on stderr.
    pub fn assert_said(&self, line: &str) {
        assert!(
            self.stderr.iter().any(|l| l == line),
            "no {line:?} in {:#?}",
            self.stderr
        );
    }

    /// Asserts the summary reports `n` exchanges, no lost events, then `more` and nothing else.
    pub fn assert_summary_with(&self, n: usize, more: &str) {
        assert_eq!(
            self.summary(),
            format!("http-trace: {}, 0 events lost{more}", captured(n)),
            "stderr: {:#?}",
            self.stderr
        );
    }

    /// Asserts the summary reports `n` exchanges, no lost events, and nothing else.
    pub fn assert_summary(&self, n: usize) {
        let s = self.summary();
        assert_eq!(
            s,
            format!("http-trace: {}, 0 events lost", captured(n)),
            "stderr: {:#?}",
            self.stderr
        );
    }
}

impl Tracer {
    /// Start tracing `pids` with JSON output and the attach method under test; returns once it
    /// says it is tracing.
    pub fn start(pids: &[u32], extra: &[&str]) -> Tracer {
        Self::start_env(pids, extra, &[])
    }

    /// As `start`, with these environment variables set for it.
    pub fn start_env(pids: &[u32], extra: &[&str], env: &[(&str, &str)]) -> Tracer {
        static TRACERS: AtomicUsize = AtomicUsize::new(0);
        let samples = std::env::temp_dir().join(format!(
            "http-trace-test-{}-{}.samples",
            std::process::id(),
            TRACERS.fetch_add(1, Ordering::SeqCst)
        ));
        let mut cmd = Command::new(TRACER);
        cmd.env(http_trace::decode::samples_file::ENV, &samples);
        cmd.envs(env.iter().copied());
        for pid in pids {
            cmd.args(["--pid", &pid.to_string()]);
        }
        cmd.args(["--attach", &attach_method()]);
        // -w records only, unless told to print too.
        if !extra.contains(&"--output") && !extra.contains(&"-w") {
            cmd.args(["--output", "json"]);
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = Group::spawn("http-trace", &mut cmd);
        let stdout = group.stdout_lines();
        let stderr = group.stderr_lines();
        let banner = wait_for_line(&stderr, "tracing", |l| l.contains(": tracing "));
        let mut traced = pids.to_vec();
        traced.extend(banner.iter().flat_map(|l| pids_in_banner(l)));
        Tracer {
            group,
            stdout,
            stderr,
            banner,
            samples,
            early: Vec::new(),
            traced,
        }
    }

    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// Wait until it has printed `n` records, which stay part of what `stop` returns: for what
    /// must be reported while tracing goes on.
    pub fn wait_for_records(&mut self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.early.len() < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!(
                    "{} records after {timeout:?}, not {n}: {:#?}",
                    self.early.len(),
                    self.early
                );
            };
            if let Ok(line) = self.stdout.recv_timeout(left) {
                self.early.push(line);
            }
        }
    }

    /// Ctrl-C, then everything it printed. A client can have a response before the server's
    /// send returns, which is when it is traced: the traced processes' calls return first.
    pub fn stop(self) -> TraceOutput {
        wait_for_calls_to_return(&self.traced);
        // SAFETY: kill has no memory-safety preconditions; the pid is our child, not reaped.
        unsafe { libc::kill(self.pid() as i32, libc::SIGINT) };
        self.wait()
    }

    /// Wait for it to end by itself (within 60 s), then everything it printed.
    pub fn wait(mut self) -> TraceOutput {
        let status = self
            .group
            .wait("http-trace to end", Duration::from_secs(60));
        TraceOutput {
            stdout: std::mem::take(&mut self.early)
                .into_iter()
                .chain(drain(&self.stdout))
                .collect(),
            stderr: self
                .banner
                .iter()
                .cloned()
                .chain(drain(&self.stderr))
                .collect(),
            status,
            samples: std::mem::take(&mut self.samples),
        }
    }
}

/// The PIDs a banner names ("http-trace: tracing pid 12, 34 and ...").
fn pids_in_banner(line: &str) -> Vec<u32> {
    let Some((_, rest)) = line.split_once(": tracing pid ") else {
        return Vec::new();
    };
    rest.split([',', ' '])
        .take_while(|w| w.is_empty() || w.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Wait until no thread of `pids` or of their descendants is on a CPU: a traced call whose
/// bytes a client already has is still running until it returns, when it is reported. Bounded:
/// a process busy for reasons of its own delays the stop by at most CALLS_RETURN, said on
/// stderr.
fn wait_for_calls_to_return(pids: &[u32]) {
    let deadline = Instant::now() + CALLS_RETURN;
    loop {
        let mut family = pids.to_vec();
        family.extend(http_trace::procs::descendants(pids));
        let busy: Vec<u32> = family.into_iter().filter(|&p| on_cpu(p)).collect();
        if busy.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let _ = writeln!(
                std::io::stderr(),
                "{}: processes {busy:?} still running after {CALLS_RETURN:?}: stopping the tracer anyway",
                test_name()
            );
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

const CALLS_RETURN: Duration = Duration::from_secs(10);

/// Whether a thread of `pid` (other than the caller's own) is running or waiting for a CPU.
fn on_cpu(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u32;
    tasks.filter_map(Result::ok).any(|task| {
        let tid = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok());
        tid != Some(me)
            && std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                // "TID (COMM) STATE ...": COMM may hold spaces and parentheses.
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('R'))
            })
    })
}

fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    lines
}

/// Run the tracer to completion with these arguments (for error cases): (status, stdout, stderr).
pub fn run_tracer(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(TRACER);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run("http-trace", &mut cmd, Duration::from_secs(60));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A client connection that writes requests in the pieces given and reads whole responses.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes received so far.
    pub received: u64,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: Vec::new(),
            received: 0,
        }
    }

    /// Read until what was received contains `needle` (for responses `responses` cannot frame,
    /// such as the answer to HEAD).
    pub fn read_until(&mut self, needle: &[u8]) {
        while !self.buf.windows(needle.len()).any(|w| w == needle) {
            let mut tmp = [0u8; 65536];
            let got = self.stream.read(&mut tmp).expect("read response");
            assert!(got > 0, "connection closed before {needle:?}");
            self.buf.extend_from_slice(&tmp[..got]);
        }
        self.buf.clear();
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().expect("local address").port()
    }

    fn peer_port(&self) -> u16 {
        self.stream.peer_addr().expect("peer address").port()
    }

    /// Whether the server has read everything sent on this connection: nothing is left
    /// unacknowledged on our side, nor unread on its side (in `sockets`, one snapshot).
    fn read_by_server_in(&self, sockets: &[TcpNetEntry]) -> bool {
        let (me, server) = (self.local_port(), self.peer_port());
        let mine = sockets
            .iter()
            .find(|s| s.inode != 0 && ports(s) == (me, server));
        let theirs = sockets
            .iter()
            .find(|s| s.inode != 0 && ports(s) == (server, me));
        matches!((mine, theirs), (Some(m), Some(t)) if m.tx_queue == 0 && t.rx_queue == 0)
    }

    /// The inode of the server's end of this connection (once the server has accepted it).
    pub fn server_socket_inode(&self) -> u64 {
        let (me, server) = (self.local_port(), self.peer_port());
        tcp_sockets()
            .iter()
            .find(|s| s.inode != 0 && ports(s) == (server, me))
            .map(|s| s.inode)
            .expect("the server's end of the connection, accepted")
    }

    /// Write each piece separately; before the next piece, wait until the server has read the
    /// previous one, so that each arrives in a receive of its own.
    pub fn send(&mut self, pieces: &[&[u8]]) -> &mut Self {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                wait_until_read_by_server(std::slice::from_ref(self));
            }
            self.stream.write_all(piece).expect("write request");
        }
        self
    }

    /// Read `n` responses (bodies framed by Content-Length, or by the end of the connection).
    pub fn responses(&mut self, n: usize) -> Vec<u16> {
        let mut statuses = Vec::new();
        let mut eof = false;
        while statuses.len() < n {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = resp.parse(&self.buf) {
                let len = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    });
                let status = resp.code.unwrap_or(0);
                match len {
                    Some(len) if self.buf.len() >= head + len => {
                        statuses.push(status);
                        self.buf.drain(..head + len);
                        continue;
                    }
                    None if eof => {
                        statuses.push(status);
                        self.buf.clear();
                        continue;
                    }
                    _ => {}
                }
            }
            assert!(
                !eof,
                "connection closed after {statuses:?}, wanted {n} responses; unparsed: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut tmp = [0u8; 65536];
            let got = self.stream.read(&mut tmp).expect("read response");
            eof = got == 0;
            self.received += got as u64;
            self.buf.extend_from_slice(&tmp[..got]);
        }
        statuses
    }
}

/// Wait until the server has read everything sent on each of these connections.
pub fn wait_until_read_by_server(clients: &[Client]) {
    wait_until(
        "the server to read what was sent",
        Duration::from_secs(10),
        || {
            let sockets = tcp_sockets();
            clients.iter().all(|c| c.read_by_server_in(&sockets))
        },
    );
}

/// curl with `args`, its output thrown away; it must succeed.
pub fn curl(args: &[&str]) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "--max-time", "30"])
        .args(args);
    let st = run("curl", &mut cmd, Duration::from_secs(60)).status;
    assert!(st.success(), "curl {args:?}: {st}");
}

/// One request on its own connection, response awaited.
pub fn request(port: u16, raw: &[u8]) -> u16 {
    Client::connect(port).send(&[raw]).responses(1)[0]
}

/// `GET target` without headers, on its own connection; the response's status.
pub fn get(port: u16, target: &str) -> u16 {
    request(port, format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes())
}

/// (method, target, status) of each exchange, status 0 when there was no response.
pub fn triples(ex: &[Value]) -> Vec<(String, String, u64)> {
    ex.iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("?").to_string(),
                e["target"].as_str().unwrap_or("?").to_string(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

pub fn t(method: &str, target: &str, status: u64) -> (String, String, u64) {
    (method.to_string(), target.to_string(), status)
}

/// Captured records in the order their first byte was seen.
pub fn by_time(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    records
}

/// Debian's Python, by its path: a `python3` found first on PATH may be a wrapper (pyenv's shim
/// is a shell script that forks helpers before it runs Python), whose extra processes a trace
/// of it would follow and count.
pub const PYTHON: &str = "/usr/bin/python3";

/// How the summary says that `n` exchanges were captured.
pub fn captured(n: usize) -> String {
    match n {
        1 => "1 exchange captured".to_string(),
        n => format!("{n} exchanges captured"),
    }
}

/// Whether process `pid` has ended: gone, or a zombie its parent has not reaped yet.
pub fn has_exited(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .map_or(true, |stat| stat.state == 'Z')
}

/// The processes `pid` forked (and theirs), from the library's own /proc reading.
pub fn children_of(pid: u32) -> Vec<u32> {
    http_trace::procs::descendants(&[pid])
}

/// (method, target) of captured requests, in order.
pub fn method_targets(reqs: &[Value]) -> Vec<(String, String)> {
    reqs.iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or("?").to_string(),
                r["target"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// (method, target) pairs, owned, to compare with what `method_targets` gives.
pub fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect()
}

/// Header values named `name` (case-insensitive) in a captured request.
pub fn header<'a>(req: &'a Value, name: &str) -> Vec<&'a str> {
    req["request_headers"]
        .as_array()
        .expect("request_headers")
        .iter()
        .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|h| h[1].as_str())
        .collect()
}
