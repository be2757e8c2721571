//! Processes the tests start: each in a process group of its own, killed and reaped whole
//! when its guard is dropped, or when the test binary is interrupted.

use super::*;

// Process groups alive, for the signal handler below: 0 is a free slot.
pub const GROUP_SLOTS: usize = 256;
pub static GROUPS: [AtomicI32; GROUP_SLOTS] = [const { AtomicI32::new(0) }; GROUP_SLOTS];

pub fn register_group(pgid: i32) {
    let free = GROUPS.iter().any(|s| {
        s.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    });
    assert!(free, "more than {GROUP_SLOTS} process groups at once");
}

pub fn unregister_group(pgid: i32) {
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

pub fn setup_process_handling() {
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
pub fn line_channel(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
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
pub fn wait_for_line(
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
