//! TLS libraries: the libssl each traced process maps, found in /proc/PID/maps and opened through
//! /proc/PID/root (so a container's own copy is the one probed), with the uprobes of
//! bpf/hooks_tls.bpf.h attached once per library file, for every process that maps it: BPF
//! keeps what tracked processes do.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libbpf_rs::skel::Skel;
use libbpf_rs::{Link, ProgramMut, UprobeOpts};

use crate::bpf::HttpTraceSkel;

/// The library functions probed, each with the entry program (by name, less the legacy build's
/// suffix); one return program serves them all.
const ENTRIES: [(&str, &str); 4] = [
    ("SSL_read", "uprobe_ssl_read"),
    ("SSL_read_ex", "uprobe_ssl_read_ex"),
    ("SSL_write", "uprobe_ssl_write"),
    ("SSL_write_ex", "uprobe_ssl_write_ex"),
];
const RETURN: &str = "uretprobe_ssl_call";

/// A TLS library file, probed.
struct Library {
    /// Its file name, as the banner says it (libssl.so.3).
    name: String,
    processes: u64,
}

/// The probes attached, per library file, and which processes were looked at.
#[derive(Default)]
pub struct TlsProbes {
    /// Keyed by the file's device and inode: one file, however many paths and processes.
    libraries: HashMap<(u64, u64), Library>,
    looked_at: HashSet<u32>,
    without: u64,
    /// Errors said once each (a library we could not attach to).
    failures: Vec<String>,
    links: Vec<Link>,
}

impl TlsProbes {
    /// Probe the TLS library of process `pid`, if it maps one not probed yet; once per process.
    pub fn look_at(&mut self, skel: &HttpTraceSkel<'_>, pid: u32) {
        if !self.looked_at.insert(pid) {
            return;
        }
        let Some(path) = libssl_of(pid) else {
            self.without += 1;
            return;
        };
        let key = match std::fs::metadata(&path) {
            Ok(m) => (m.dev(), m.ino()),
            Err(e) => {
                self.failed(format!("{}: {e}", path.display()));
                return;
            }
        };
        if let Some(lib) = self.libraries.get_mut(&key) {
            lib.processes += 1;
            return;
        }
        match attach(skel, &path) {
            Ok(links) => {
                self.links.extend(links);
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                log::info!("tls: probing {} for process {pid}", path.display());
                self.libraries.insert(key, Library { name, processes: 1 });
            }
            Err(e) => self.failed(format!("{e:#}")),
        }
    }

    fn failed(&mut self, what: String) {
        log::warn!("tls: {what}");
        self.failures.push(what);
    }

    /// The libraries probed, by name, with how many processes map each; and how many
    /// processes map none.
    pub fn found(&self) -> (Vec<(String, u64)>, u64) {
        let mut libs: Vec<(String, u64)> = self
            .libraries
            .values()
            .map(|l| (l.name.clone(), l.processes))
            .collect();
        libs.sort();
        (libs, self.without)
    }

    /// The libraries that could not be probed, and why.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

/// The libssl process `pid` maps, as a path through its root; None when it maps none.
fn libssl_of(pid: u32) -> Option<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let path = maps.lines().find_map(|line| {
        let path = line.split_whitespace().nth(5)?;
        let name = Path::new(path).file_name()?.to_str()?;
        name.starts_with("libssl.so").then_some(path)
    })?;
    Some(PathBuf::from(format!("/proc/{pid}/root{path}")))
}

/// The program named `name` (either build's) that is loaded.
fn program<'a>(skel: &'a HttpTraceSkel<'_>, name: &str) -> Option<ProgramMut<'a>> {
    skel.object().progs_mut().find(|p| {
        p.autoload() && {
            let n = p.name().to_string_lossy();
            n == name || n.strip_suffix("_legacy") == Some(name)
        }
    })
}

/// Attach the entry and return probes to the functions of the library at `path`.
fn attach(skel: &HttpTraceSkel<'_>, path: &Path) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    let ret = program(skel, RETURN).context("the TLS return program is not loaded")?;
    for (func, entry) in ENTRIES {
        let prog = program(skel, entry).context("a TLS entry program is not loaded")?;
        for (p, retprobe) in [(&prog, false), (&ret, true)] {
            let opts = UprobeOpts {
                func_name: Some(func.to_string()),
                retprobe,
                ..Default::default()
            };
            let link = p
                .attach_uprobe_with_opts(-1, path, 0, opts)
                .with_context(|| format!("attaching to {func} in {}", path.display()))?;
            links.push(link);
        }
    }
    Ok(links)
}
