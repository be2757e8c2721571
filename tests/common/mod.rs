//! Helpers for the root integration tests: start real servers and the real tracer, send real
//! requests, and read what the tracer printed.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TRACER: &str = env!("CARGO_BIN_EXE_http-trace");

/// The attach method under test: the VM runner sets it to run the suite once per method.
pub fn attach_method() -> String {
    std::env::var("HTTP_TRACE_TEST_ATTACH").unwrap_or_else(|_| "auto".into())
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the integration tests load BPF programs: run them as root"
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

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("http-trace-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
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

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub name: String,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Start `cmd` and wait until its output names the port it listens on (or, when `port` is
    /// given, until it accepts connections there).
    pub fn start(name: &str, mut cmd: Command, port: Option<u16>) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let out = line_channel(child.stdout.take().expect("stdout"));
        let _err = line_channel(child.stderr.take().expect("stderr"));
        let port = match port {
            Some(p) => {
                let deadline = Instant::now() + Duration::from_secs(30);
                while TcpStream::connect(("127.0.0.1", p)).is_err() {
                    assert!(Instant::now() < deadline, "{name} never listened on {p}");
                    thread::sleep(Duration::from_millis(50));
                }
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
            child,
            port,
            name: name.to_string(),
        }
    }

    pub fn ours(recv: &str) -> Server {
        Server::ours_with(recv, "send")
    }

    /// nginx answering "ok" to everything: one process (`workers` 0), or a master that forks
    /// `workers` worker processes.
    pub fn nginx(workers: u32) -> Server {
        let dir = temp_dir(&format!("nginx-{workers}"));
        let port = free_port();
        let shape = match workers {
            0 => "master_process off; worker_processes 1;".to_string(),
            n => format!("master_process on; worker_processes {n};"),
        };
        let conf = format!(
            "daemon off; {shape} pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               client_max_body_size 10m;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }} }}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.args([
            "-c",
            &dir.join("nginx.conf").to_string_lossy(),
            "-e",
            &dir.join("error.log").to_string_lossy(),
        ]);
        Server::start("nginx", cmd, Some(port))
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

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_port(line: &str) -> Option<u16> {
    if let Some(rest) = line.split("port ").nth(1) {
        return rest.split_whitespace().next()?.parse().ok();
    }
    line.rsplit(':').next()?.trim().parse().ok()
}

pub struct Tracer {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// What it said on stderr up to and including "tracing pid ...".
    pub banner: Vec<String>,
}

pub struct TraceOutput {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub status: std::process::ExitStatus,
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
            .find(|l| l.contains("exchanges captured"))
            .unwrap_or_else(|| panic!("no summary line in {:#?}", self.stderr))
    }

    /// Asserts the summary reports `n` exchanges, no lost events, and nothing else.
    pub fn assert_summary(&self, n: usize) {
        let s = self.summary();
        assert_eq!(
            s,
            format!("http-trace: {n} exchanges captured, 0 events lost"),
            "stderr: {:#?}",
            self.stderr
        );
    }
}

impl Tracer {
    /// Start tracing `pids` with JSON output and the attach method under test; returns once it
    /// says it is tracing.
    pub fn start(pids: &[u32], extra: &[&str]) -> Tracer {
        let mut cmd = Command::new(TRACER);
        for pid in pids {
            cmd.args(["--pid", &pid.to_string()]);
        }
        cmd.args(["--attach", &attach_method()]);
        if !extra.contains(&"--output") {
            cmd.args(["--output", "json"]);
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start http-trace");
        let stdout = line_channel(child.stdout.take().expect("stdout"));
        let stderr = line_channel(child.stderr.take().expect("stderr"));
        let banner = wait_for_line(&stderr, "tracing", |l| l.contains(": tracing pid"));
        Tracer {
            child,
            stdout,
            stderr,
            banner,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ctrl-C, then everything it printed.
    pub fn stop(self) -> TraceOutput {
        // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.wait()
    }

    /// Wait for it to end by itself (within 60 s), then everything it printed.
    pub fn wait(mut self) -> TraceOutput {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for http-trace") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("http-trace did not end");
            }
            thread::sleep(Duration::from_millis(20));
        };
        TraceOutput {
            stdout: drain(&self.stdout),
            stderr: self
                .banner
                .iter()
                .cloned()
                .chain(drain(&self.stderr))
                .collect(),
            status,
        }
    }
}

fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(line);
    }
    lines
}

/// Run the tracer to completion with these arguments (for error cases): (status, stdout, stderr).
pub fn run_tracer(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String, String) {
    let mut cmd = Command::new(TRACER);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run http-trace");
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

    /// Write each piece separately, pausing between them so that they arrive separately.
    pub fn send(&mut self, pieces: &[&[u8]]) -> &mut Self {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                thread::sleep(Duration::from_millis(30));
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
            self.buf.extend_from_slice(&tmp[..got]);
        }
        statuses
    }
}

/// One request on its own connection, response awaited.
pub fn request(port: u16, raw: &[u8]) -> u16 {
    Client::connect(port).send(&[raw]).responses(1)[0]
}

/// Captured records in the order their first byte was seen.
pub fn by_time(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    records
}

/// The PIDs whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
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
