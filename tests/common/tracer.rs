//! The tracer under test: started, stopped, and what it printed (with the events it received,
//! listed when a test fails).

use super::*;

pub struct Tracer {
    group: Group,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// What it said on stderr up to and including "tracing ...".
    pub banner: Vec<String>,
    recording: PathBuf,
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
    recording: PathBuf,
}

impl Drop for TraceOutput {
    /// A failing test shows the events behind what was captured: a gap in a connection's
    /// sequence or an event never sent tells a capture fault from a parsing one, in a CI log.
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", event_listing(&self.recording));
        }
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// Events shown at most when a test fails (the first and the last ones).
pub const LISTED_EVENTS: usize = 400;

/// The events a recording (capture::RECORD_ENV) holds, a line each: its samples decoded, and
/// what the session took in besides (connections open at start, processes and sockets found
/// gone, identities); ticks left out.
pub fn event_listing(path: &Path) -> String {
    use http_trace::capture::{Entry, Reader};
    use http_trace::pipeline::Input;
    let Ok(file) = std::fs::File::open(path) else {
        return format!("(no events recorded in {})", path.display());
    };
    let mut reader = match Reader::new(BufReader::new(file)) {
        Ok(r) => r,
        Err(e) => return format!("(no events recorded in {}: {e})", path.display()),
    };
    let mut lines = Vec::new();
    while let Ok(Some(Entry::Input(input))) = reader.next_entry() {
        match input {
            Input::Sample(sample) => lines.push(event_line(sample)),
            Input::Tick { .. } => {}
            other => lines.push(format!("{other:?}")),
        }
    }
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

pub fn event_line(sample: &[u8]) -> String {
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

    /// The attach method the tracer said it traced with (its banner).
    pub fn method(&self) -> &str {
        let banner = self
            .stderr
            .iter()
            .find(|l| l.contains(": tracing "))
            .unwrap_or_else(|| panic!("no banner in {:#?}", self.stderr));
        let rest = &banner[banner.find(" with ").expect("the method in the banner") + 6..];
        rest.split(' ').next().unwrap_or("")
    }

    pub fn summary(&self) -> &str {
        self.stderr
            .iter()
            .rev()
            .find(|l| l.starts_with("http-trace: ") && l.contains(" captured, "))
            .unwrap_or_else(|| panic!("no summary line in {:#?}", self.stderr))
    }

    /// What `http-trace -r` of this run's recording prints with `args` (another output format,
    /// -v): the same events, shown otherwise.
    pub fn replayed(&self, args: &[&str]) -> String {
        let file = self.recording.to_string_lossy().into_owned();
        let mut all = vec!["-r", file.as_str()];
        all.extend_from_slice(args);
        let (status, stdout, stderr) = run_tracer(&all, &[]);
        assert!(status.success(), "-r {args:?}: {stderr}");
        stdout
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
        let recording = std::env::temp_dir().join(format!(
            "http-trace-test-{}-{}.htr",
            std::process::id(),
            TRACERS.fetch_add(1, Ordering::SeqCst)
        ));
        let mut cmd = Command::new(TRACER);
        cmd.env(http_trace::capture::RECORD_ENV, &recording);
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
            recording,
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

    /// Wait until it says (on stderr) a line that contains `part`, which stays part of what
    /// `stop` returns.
    pub fn wait_for_said(&mut self, part: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.banner.iter().any(|l| l.contains(part)) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                panic!("it did not say {part:?} in {timeout:?}: {:#?}", self.banner);
            };
            if let Ok(line) = self.stderr.recv_timeout(left) {
                self.banner.push(line);
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
            recording: std::mem::take(&mut self.recording),
        }
    }
}

/// The PIDs a banner names ("http-trace: tracing pid 12, 34 and ...").
pub fn pids_in_banner(line: &str) -> Vec<u32> {
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
pub fn wait_for_calls_to_return(pids: &[u32]) {
    let deadline = Instant::now() + CALLS_RETURN;
    loop {
        let mut family = pids.to_vec();
        family.extend(http_trace::proc_scan::descendants(pids));
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

pub const CALLS_RETURN: Duration = Duration::from_secs(10);

/// Whether a thread of `pid` (other than the caller's own) is running or waiting for a CPU.
pub fn on_cpu(pid: u32) -> bool {
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

pub fn drain(rx: &mpsc::Receiver<String>) -> Vec<String> {
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
