//! TLS libraries: the libssl each traced process maps, found in /proc/PID/maps and opened through
//! /proc/PID/root (so a container's own copy is the one probed), with the uprobes of
//! bpf/hooks_tls.bpf.h attached.
//!
//! A uprobe costs every process it is attached to a trap per call, traced or not: the probes
//! are attached per process (the kernel then sets no breakpoint in any other), as long as the
//! processes that map a library were there when tracing started. A process that appears later
//! (a child forked, a program --name or --container found started) has run before user space
//! can attach to it, and its first TLS calls would be lost: its library is then probed for
//! every process that maps it, once, and BPF keeps the traced ones' calls. So it is too past
//! `PER_PROCESS_MOST` processes, where per-process probes would cost more than they save.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libbpf_rs::skel::Skel;
use libbpf_rs::{ErrorKind, Link, ProgramMut, UprobeOpts};

use crate::bpf::HttpTraceSkel;

/// The library functions probed, each with the entry program (by name, less the legacy build's
/// suffix) and whether a library may lack it (OpenSSL before 1.1.1 has no _ex calls; a
/// program with OpenSSL linked in has what it uses); one return program serves them all. The
/// first is the one an OpenSSL cannot lack.
const ENTRIES: [(&str, &str, bool); 5] = [
    ("SSL_read", "uprobe_ssl_read", false),
    ("SSL_read_ex", "uprobe_ssl_read_ex", true),
    ("SSL_write", "uprobe_ssl_write", false),
    ("SSL_write_ex", "uprobe_ssl_write_ex", true),
    ("SSL_do_handshake", "uprobe_ssl_do_handshake", true),
];
const RETURN: &str = "uretprobe_ssl_call";

/// Processes probed one by one per library, at most (ten links, so ten fds, each).
const PER_PROCESS_MOST: usize = 64;

/// How soon a process found with no library is looked at again when it moves TLS records.
const LOOK_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// A library file's device and inode: one file, however many paths and processes.
type FileKey = (u64, u64);

/// Where a library's probes are attached.
enum Probes {
    /// In each of these processes only.
    PerProcess(HashMap<u32, Vec<Link>>),
    /// In every process that maps the file (held: a link detaches when dropped).
    Whole { _links: Vec<Link> },
}

/// A TLS library file, probed.
struct Library {
    /// Its file name, as the banner says it (libssl.so.3).
    name: String,
    /// Processes found to map it, over the session.
    processes: u64,
    probes: Probes,
    /// Kept open: to probe it whole later, whichever processes map it then.
    file: LibraryFile,
}

/// A traced process, looked at.
struct Looked {
    /// The library it maps; None when it mapped none when last looked at.
    library: Option<FileKey>,
    /// It appeared after tracing started.
    later: bool,
    /// When its maps were last read again for the records it moved.
    again: Option<Instant>,
}

/// The probes attached, per library file, and the traced processes looked at.
#[derive(Default)]
pub struct TlsProbes {
    libraries: HashMap<FileKey, Library>,
    processes: HashMap<u32, Looked>,
    /// Errors said once each (a library we could not attach to).
    failures: Vec<String>,
    /// Executables found without OpenSSL linked in.
    without_ssl: HashSet<FileKey>,
}

impl TlsProbes {
    /// Probe the TLS library of traced process `pid`, there when tracing started.
    pub fn look_at(&mut self, skel: &HttpTraceSkel<'_>, pid: u32) {
        if self.note(pid, false) {
            self.probe(skel, pid);
        }
    }

    /// Probe the TLS library of traced process `pid`, which appeared after tracing started:
    /// forked by traced process `parent`, or a program found started (None).
    pub fn look_at_new(&mut self, skel: &HttpTraceSkel<'_>, pid: u32, parent: Option<u32>) {
        if !self.note(pid, true) {
            return;
        }
        // A child maps what its parent mapped when it forked: that library is probed whole
        // even when the child is gone already (it served its one connection), so that the
        // children after it are read from their start.
        let key = parent
            .and_then(|p| self.processes.get(&p))
            .and_then(|p| p.library);
        if let Some(key) = key {
            if self.per_process(key) {
                if let Err(e) = self.widen(skel, key, pid, true) {
                    self.failed(format!("{e:#}"));
                }
            }
        }
        self.probe(skel, pid);
    }

    /// Note process `pid` as looked at; false when it was already.
    fn note(&mut self, pid: u32, later: bool) -> bool {
        if self.processes.contains_key(&pid) {
            return false;
        }
        let looked = Looked {
            library: None,
            later,
            again: None,
        };
        self.processes.insert(pid, looked);
        true
    }

    /// Whether library `key` is probed per process.
    fn per_process(&self, key: FileKey) -> bool {
        self.libraries
            .get(&key)
            .is_some_and(|l| matches!(l.probes, Probes::PerProcess(_)))
    }

    /// Process `pid` moved TLS records whose plaintext was not seen: when it mapped no library
    /// when last looked at, it has loaded one since (a dlopen, an exec after its fork).
    /// At once the first time, then at most once a second: a process with TLS of its own
    /// (Go's) moves records on every connection.
    pub fn records_seen(&mut self, skel: &HttpTraceSkel<'_>, pid: u32) {
        let Some(p) = self.processes.get_mut(&pid) else {
            return;
        };
        if p.library.is_none() && p.again.is_none_or(|t| t.elapsed() >= LOOK_AGAIN_AFTER) {
            let first = p.again.is_none();
            p.again = Some(Instant::now());
            self.probe(skel, pid);
            let found = self.processes.get(&pid).and_then(|p| p.library);
            if let Some(lib) = found.and_then(|key| self.libraries.get(&key)) {
                log::warn!(
                    "tls: process {pid} loaded {} after it was looked at: read from now on, its \
                     TLS connections before counted as not seen",
                    lib.name
                );
            } else if first {
                if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
                    self.failed(format!(
                        "{}: moves TLS records, but maps no libssl and has no SSL_read of its \
                         own (stripped, or another TLS library: Go's, rustls, BoringSSL): its \
                         HTTPS is counted, not read",
                        exe.display()
                    ));
                }
            }
        }
    }

    /// Process `pid` ended: its own probes go.
    pub fn gone(&mut self, pid: u32) {
        let Some(Looked {
            library: Some(key), ..
        }) = self.processes.remove(&pid)
        else {
            return;
        };
        if let Some(Library {
            probes: Probes::PerProcess(links),
            ..
        }) = self.libraries.get_mut(&key)
        {
            links.remove(&pid);
        }
    }

    /// Find the library of looked-at process `pid` and see that its calls are probed.
    fn probe(&mut self, skel: &HttpTraceSkel<'_>, pid: u32) {
        let Some((file, key)) = self.candidate(pid) else {
            return;
        };
        let later = self.processes.get(&pid).is_some_and(|p| p.later);
        // Whether this process needs probes of its own (Some(true)), or the library's whole
        // file must be probed (Some(false)); None: the file is probed whole already.
        let own = self.libraries.get(&key).map(|lib| match &lib.probes {
            Probes::Whole { .. } => None,
            Probes::PerProcess(links) => Some(!later && links.len() < PER_PROCESS_MOST),
        });
        let result = match own {
            None => match self.first(skel, key, file, pid, later) {
                Ok(false) => return,
                r => r.map(|_| ()),
            },
            Some(None) => Ok(()),
            Some(Some(true)) => attach(skel, &file, Some(pid)).map(|links| {
                if let Some(Library {
                    probes: Probes::PerProcess(own),
                    ..
                }) = self.libraries.get_mut(&key)
                {
                    own.insert(pid, links);
                }
            }),
            Some(Some(false)) => self.widen(skel, key, pid, later),
        };
        if result.is_ok() && own.is_some() {
            if let Some(lib) = self.libraries.get_mut(&key) {
                lib.processes += 1;
            }
        }
        match result {
            Ok(()) => {
                if let Some(p) = self.processes.get_mut(&pid) {
                    p.library = Some(key);
                }
            }
            // Per-process probes of a process gone meanwhile: nothing lost.
            Err(e) if !process_alive(pid) => log::info!("tls: process {pid} ended: {e:#}"),
            Err(e) => self.failed(format!("{e:#}")),
        }
    }

    /// The TLS library of process `pid`, open, and its key: the libssl it maps, else its
    /// executable, which may have OpenSSL linked in (unless already found without).
    fn candidate(&mut self, pid: u32) -> Option<(LibraryFile, FileKey)> {
        let (path, linked_in) = match libssl_of(pid) {
            Some(path) => (path, false),
            None => (PathBuf::from(format!("/proc/{pid}/exe")), true),
        };
        // Held open: the process may end before its probes are attached (a child that served
        // one connection), and its root with it.
        let file = match File::open(&path) {
            Ok(file) => LibraryFile {
                file,
                path,
                linked_in,
            },
            // Gone; or a kernel thread, whose exe is no file.
            Err(_) if linked_in || !process_alive(pid) => return None,
            Err(e) => {
                self.failed(format!("{}: {e}", path.display()));
                return None;
            }
        };
        let key = match file.file.metadata() {
            Ok(m) => (m.dev(), m.ino()),
            Err(e) => {
                self.failed(format!("{}: {e}", file.path.display()));
                return None;
            }
        };
        if linked_in && self.without_ssl.contains(&key) {
            return None;
        }
        Some((file, key))
    }

    /// Library `key`, `file`, found for the first time, in process `pid`: probed in that
    /// process, or in every one when the process appeared after tracing started. False when
    /// it has no SSL_read: an executable without OpenSSL linked in (or stripped), remembered.
    fn first(
        &mut self,
        skel: &HttpTraceSkel<'_>,
        key: FileKey,
        file: LibraryFile,
        pid: u32,
        later: bool,
    ) -> Result<bool> {
        let links = attach(skel, &file, (!later).then_some(pid))?;
        if links.is_empty() {
            if file.linked_in {
                self.without_ssl.insert(key);
                return Ok(false);
            }
            anyhow::bail!("{}: no SSL_read in it", file.path.display());
        }
        let mut name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file.linked_in {
            // /proc/PID/exe names no file: the link's target does.
            let exe = std::fs::read_link(&file.path).unwrap_or_default();
            let exe = exe.file_name().unwrap_or_default().to_string_lossy();
            name = format!("{exe} (OpenSSL linked in)");
        }
        // The version is libcrypto's (or the executable's) to say.
        let holder = match file.linked_in {
            true => Some(file.path.clone()),
            false => mapped(pid, "libcrypto.so"),
        };
        if let Some(version) = holder.and_then(|p| openssl_version(&p)) {
            name = match name.strip_suffix(" (OpenSSL linked in)") {
                Some(exe) => format!("{exe} ({version} linked in)"),
                None => format!("{name} ({version})"),
            };
        }
        let probes = if later {
            said_whole(&name, &format!("process {pid} started after tracing did"));
            Probes::Whole { _links: links }
        } else {
            Probes::PerProcess(HashMap::from([(pid, links)]))
        };
        log::info!("tls: probing {} for process {pid}", file.path.display());
        self.libraries.insert(
            key,
            Library {
                name,
                processes: 1,
                probes,
                file,
            },
        );
        Ok(true)
    }

    /// Probe library `key` in every process that maps it, in place of its per-process probes
    /// (attached before those are dropped, so that no call goes unseen between): process
    /// `pid` appeared after tracing started (`later`), or is one too many.
    fn widen(
        &mut self,
        skel: &HttpTraceSkel<'_>,
        key: FileKey,
        pid: u32,
        later: bool,
    ) -> Result<()> {
        let lib = self
            .libraries
            .get_mut(&key)
            .context("widening a library not probed")?;
        lib.probes = Probes::Whole {
            _links: attach(skel, &lib.file, None)?,
        };
        let why = if later {
            format!("process {pid} started after tracing did")
        } else {
            format!("more than {PER_PROCESS_MOST} processes map it")
        };
        said_whole(&lib.name, &why);
        Ok(())
    }

    /// Say `what` failed, once.
    fn failed(&mut self, what: String) {
        if !self.failures.contains(&what) {
            log::warn!("tls: {what}");
            self.failures.push(what);
        }
    }

    /// The libraries probed, by name, with how many processes map each; and how many
    /// processes looked at map none.
    pub fn found(&self) -> (Vec<(String, u64)>, u64) {
        let mut libs: Vec<(String, u64)> = self
            .libraries
            .values()
            .map(|l| (l.name.clone(), l.processes))
            .collect();
        libs.sort();
        let without = self
            .processes
            .values()
            .filter(|p| p.library.is_none())
            .count();
        (libs, without as u64)
    }

    /// The libraries that could not be probed, and why.
    pub fn failures(&self) -> &[String] {
        &self.failures
    }
}

/// Say that library `name` is probed in every process that maps it, and `why`: what that
/// costs the processes not traced.
fn said_whole(name: &str, why: &str) {
    log::warn!(
        "tls: {name} is probed in every process that maps it ({why}): those not traced take a \
         trap per TLS call too"
    );
}

/// A library file, open, and its path as the process that maps it was found to.
struct LibraryFile {
    file: File,
    path: PathBuf,
    /// It is an executable, with OpenSSL linked in (libssl.a).
    linked_in: bool,
}

/// Whether process `pid` is still there.
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The libssl process `pid` maps, as a path through its root; None when it maps none.
fn libssl_of(pid: u32) -> Option<PathBuf> {
    mapped(pid, "libssl.so")
}

/// The file whose name starts with `prefix` that process `pid` maps, as a path through its
/// root.
fn mapped(pid: u32, prefix: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let path = maps.lines().find_map(|line| {
        let path = line.split_whitespace().nth(5)?;
        let name = Path::new(path).file_name()?.to_str()?;
        name.starts_with(prefix).then_some(path)
    })?;
    Some(PathBuf::from(format!("/proc/{pid}/root{path}")))
}

/// The OpenSSL version the file at `path` (libcrypto, or an executable with it linked in)
/// says it is: "OpenSSL 3.0.19" of its "OpenSSL 3.0.19 27 Jan 2026"; read once per library.
fn openssl_version(path: &Path) -> Option<String> {
    const MOST: u64 = 256 << 20;
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(MOST)
        .read_to_end(&mut bytes)
        .ok()?;
    let at = bytes
        .windows(9)
        .position(|w| w.starts_with(b"OpenSSL ") && w[8].is_ascii_digit())?;
    let rest = &bytes[at + 8..];
    let len = rest
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'.'))
        .unwrap_or(rest.len());
    Some(format!("OpenSSL {}", String::from_utf8_lossy(&rest[..len])))
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

/// Attach the entry and return probes to the functions of library `file`: in process `pid`
/// only, or in every process that maps it (None).
fn attach(skel: &HttpTraceSkel<'_>, file: &LibraryFile, pid: Option<u32>) -> Result<Vec<Link>> {
    // The open file, by the path that names it in this process.
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.file.as_raw_fd()));
    let mut links = Vec::new();
    let ret = program(skel, RETURN).context("the TLS return program is not loaded")?;
    let target = pid.map_or(-1, |p| p as i32);
    for (func, entry, optional) in ENTRIES {
        let prog = program(skel, entry).context("a TLS entry program is not loaded")?;
        for (p, retprobe) in [(&prog, false), (&ret, true)] {
            let opts = UprobeOpts {
                func_name: Some(func.to_string()),
                retprobe,
                ..Default::default()
            };
            match p.attach_uprobe_with_opts(target, &path, 0, opts) {
                Ok(link) => links.push(link),
                // An executable without SSL_read has no OpenSSL linked in (or no symbols):
                // no probe.
                Err(e) if optional && e.kind() == ErrorKind::NotFound => break,
                Err(e) if links.is_empty() && e.kind() == ErrorKind::NotFound => return Ok(links),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("attaching to {func} in {}", file.path.display()))
                }
            }
        }
    }
    Ok(links)
}
