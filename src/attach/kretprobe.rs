//! Return probes with room for many calls in flight.
//!
//! A kretprobe tracks each call in flight in one of `maxactive` instances; a thread blocked in the
//! probed function holds one, and once they are all taken further returns are missed. Kretprobes
//! made through perf_event_open (libbpf's way) get the kernel's default, max(10, 2 x CPUs): a
//! thread-per-connection server with a few idle connections exhausts it, and then requests on its
//! busy connections are lost. tracefs' kprobe_events takes an explicit maxactive, so the return
//! probes are made there, opened as tracepoint perf events, and the programs attached to those.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libbpf_rs::Link;

/// The kernel's ceiling for maxactive (KRETPROBE_MAXACTIVE_MAX).
pub const MAXACTIVE: u32 = 4096;

/// The kprobe events this process made; removed again on drop.
pub struct KprobeEvents {
    tracefs: PathBuf,
    /// Prefix of this process's event names, which kprobe_profile lists without their group.
    prefix: String,
    names: Vec<String>,
}

const GROUP: &str = "http_trace";

impl KprobeEvents {
    pub fn new(tracefs: &Path) -> Result<Self> {
        if !tracefs.join("kprobe_events").exists() {
            bail!("{} has no kprobe_events", tracefs.display());
        }
        let events = Self {
            tracefs: tracefs.to_path_buf(),
            prefix: format!("ht{}_", std::process::id()),
            names: Vec::new(),
        };
        events.remove_stale();
        Ok(events)
    }

    /// Remove the events of tracers that died without removing theirs (killed, say).
    fn remove_stale(&self) {
        let Ok(list) = std::fs::read_to_string(self.tracefs.join("kprobe_events")) else {
            return;
        };
        for (pid, name) in list.lines().filter_map(our_event) {
            if !crate::proc_scan::process_alive(pid) {
                if let Err(e) = self.write(&format!("-:{GROUP}/{name}")) {
                    log::debug!("removing stale kprobe event {GROUP}/{name}: {e}");
                }
            }
        }
    }

    /// Make a return probe on `func` with MAXACTIVE instances; returns its tracepoint id.
    fn add_return_probe(&mut self, func: &str) -> Result<u64> {
        let name = format!("{}{}", self.prefix, func.trim_start_matches('_'));
        self.write(&format!("r{MAXACTIVE}:{GROUP}/{name} {func}"))
            .with_context(|| format!("creating a return probe on {func}"))?;
        self.names.push(name.clone());
        let id_path = self
            .tracefs
            .join("events")
            .join(GROUP)
            .join(&name)
            .join("id");
        let id = std::fs::read_to_string(&id_path)
            .with_context(|| format!("reading {}", id_path.display()))?;
        id.trim()
            .parse()
            .with_context(|| format!("parsing {}", id_path.display()))
    }

    fn write(&self, line: &str) -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.tracefs.join("kprobe_events"))?;
        f.write_all(format!("{line}\n").as_bytes())
    }
}

impl KprobeEvents {
    /// Returns the kernel could not follow (every instance taken), from kprobe_profile, whose
    /// lines are "NAME HITS MISSES".
    pub fn missed(&self) -> u64 {
        let Ok(profile) = std::fs::read_to_string(self.tracefs.join("kprobe_profile")) else {
            return 0;
        };
        profile
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                match fields.as_slice() {
                    [name, _hits, misses] if self.names.iter().any(|n| n == name) => {
                        misses.parse::<u64>().ok()
                    }
                    _ => None,
                }
            })
            .sum()
    }
}

impl Drop for KprobeEvents {
    fn drop(&mut self) {
        for name in &self.names {
            if let Err(e) = self.write(&format!("-:{GROUP}/{name}")) {
                log::warn!("removing kprobe event {GROUP}/{name}: {e}");
            }
        }
    }
}

/// Open the tracepoint perf event `id` (on CPU 0: a BPF program on a trace event fires on all).
fn open_tracepoint(id: u64) -> Result<i32> {
    use perf_event_open_sys::bindings::{
        perf_event_attr, perf_event_attr__bindgen_ty_1, perf_event_attr__bindgen_ty_2,
        PERF_FLAG_FD_CLOEXEC, PERF_TYPE_TRACEPOINT,
    };
    let mut attr = perf_event_attr {
        type_: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<perf_event_attr>() as u32,
        config: id,
        __bindgen_anon_1: perf_event_attr__bindgen_ty_1 { sample_period: 1 },
        __bindgen_anon_2: perf_event_attr__bindgen_ty_2 { wakeup_events: 1 },
        ..Default::default()
    };
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares, alive for the call.
    let fd = unsafe {
        perf_event_open_sys::perf_event_open(&mut attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC.into())
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("perf_event_open on a kprobe event");
    }
    Ok(fd)
}

/// Attach `prog` as a return probe on `func` through `events`.
pub fn attach(
    events: &mut KprobeEvents,
    prog: &libbpf_rs::ProgramMut<'_>,
    func: &str,
) -> Result<Link> {
    let id = events.add_return_probe(func)?;
    let fd = open_tracepoint(id)?;
    // On success the link owns the perf event fd and closes it when dropped.
    prog.attach_perf_event(fd).map_err(|e| {
        // SAFETY: `fd` is the perf event fd opened above and owned by nothing else.
        unsafe { libc::close(fd) };
        anyhow::Error::new(e).context(format!("attaching the return probe on {func}"))
    })
}

/// (pid, name) of an http-trace event in a kprobe_events line ("r4096:http_trace/ht12_f f").
fn our_event(line: &str) -> Option<(u32, &str)> {
    let (_, rest) = line.split_once(':')?;
    let event = rest.split_whitespace().next()?;
    let name = event.strip_prefix(GROUP)?.strip_prefix('/')?;
    let (pid, _) = name.strip_prefix("ht")?.split_once('_')?;
    Some((pid.parse().ok()?, name))
}

/// The kernel function a kretprobe section names: `kretprobe/F` is F, `kretsyscall/S` is the
/// syscall's x86-64 entry point.
pub fn target_of(section: &str) -> Option<String> {
    if let Some(func) = section.strip_prefix("kretprobe/") {
        return Some(func.to_string());
    }
    section
        .strip_prefix("kretsyscall/")
        .map(|s| format!("__x64_sys_{s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_our_events() {
        assert_eq!(
            our_event("r4096:http_trace/ht1234_ksys_read ksys_read"),
            Some((1234, "ht1234_ksys_read"))
        );
        assert_eq!(our_event("r:kprobes/ht1234_ksys_read ksys_read"), None);
        assert_eq!(our_event("p:http_trace/other ksys_read"), None);
        assert_eq!(our_event(""), None);
    }

    #[test]
    fn targets_of_sections() {
        assert_eq!(
            target_of("kretprobe/ksys_read").as_deref(),
            Some("ksys_read")
        );
        assert_eq!(
            target_of("kretsyscall/readv").as_deref(),
            Some("__x64_sys_readv")
        );
        assert_eq!(target_of("kprobe/ksys_read"), None);
        assert_eq!(target_of("tracepoint/syscalls/sys_exit_read"), None);
    }
}
