//! Loading the BPF object and attaching it with one attach method, with the checks that make a
//! failure one clear line: privileges, PIDs, BTF, and which methods this kernel allows. The
//! event buffer (`buffer`) and return probes with room for many calls (`kretprobe`) live here.

pub mod buffer;
mod kretprobe;
mod layout;
pub mod tls;

use std::fmt;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, PrintLevel};

use self::buffer::BufferKind;
use self::kretprobe::KprobeEvents;
use crate::bpf::{HttpTraceSkel, HttpTraceSkelBuilder, OpenHttpTraceSkel};
use crate::proc_scan;
use crate::traced::Processes;

/// How the kernel is hooked (the README's "Attach methods and kernels").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SocketTracepoint,
    RawTracepoint,
    Kprobe,
    Tracepoint,
    Fentry,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--attach`: one method, or the first of AUTO_ORDER that works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    Auto,
    Only(Method),
}

impl clap::ValueEnum for Attach {
    fn value_variants<'a>() -> &'a [Self] {
        const CHOICES: [Attach; 6] = [
            Attach::Auto,
            Attach::Only(Method::SocketTracepoint),
            Attach::Only(Method::RawTracepoint),
            Attach::Only(Method::Kprobe),
            Attach::Only(Method::Tracepoint),
            Attach::Only(Method::Fentry),
        ];
        &CHOICES
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Attach::Auto => "auto",
            Attach::Only(m) => m.name(),
        }))
    }
}

impl Method {
    /// The name `--attach` takes.
    pub fn name(self) -> &'static str {
        match self {
            Method::SocketTracepoint => "socket-tracepoint",
            Method::RawTracepoint => "raw-tracepoint",
            Method::Kprobe => "kprobe",
            Method::Tracepoint => "tracepoint",
            Method::Fentry => "fentry",
        }
    }

    /// Whether a program in ELF section `section` belongs to this method.
    fn owns_section(self, section: &str) -> bool {
        let prefixes: &[&str] = match self {
            Method::SocketTracepoint => &["tp_btf/sock_", "tp_btf/tcp_rcv_space_adjust"],
            Method::RawTracepoint => &["tp_btf/sys_exit"],
            Method::Fentry => &["fentry/", "fexit/"],
            Method::Kprobe => &["kprobe/", "kretprobe/", "ksyscall/", "kretsyscall/"],
            Method::Tracepoint => &["tracepoint/"],
        };
        // socket-tracepoint sees a sendmmsg's messages pass without knowing which, and fexit
        // refuses sendmmsg on 5.10: both copy them at the syscall's own exit tracepoint, which
        // runs for those two syscalls only.
        let mmsg_exits = matches!(self, Method::SocketTracepoint | Method::Fentry)
            && MMSG_EXITS.contains(&section);
        // Process lifetime and TCP state go through raw tracepoints, which every method uses,
        // and the TLS library through uprobes.
        section.starts_with("raw_tp/")
            || is_uprobe(section)
            || prefixes.iter().any(|p| section.starts_with(p))
            || mmsg_exits
    }
}

/// Whether a program in ELF section `section` is a uprobe: attached per TLS library (tls.rs),
/// not at load.
fn is_uprobe(section: &str) -> bool {
    section == "uprobe" || section == "uretprobe"
}

/// The exit tracepoints of sendmmsg and recvmmsg (see Method::owns_section).
const MMSG_EXITS: [&str; 2] = [
    "tracepoint/syscalls/sys_exit_sendmmsg",
    "tracepoint/syscalls/sys_exit_recvmmsg",
];

/// What `auto` tries, in order: the first that loads and attaches wins.
/// - socket-tracepoint: the sock:sock_send_length/sock_recv_length tracepoints (6.3+) fire for
///   socket sends and receives only, so nothing else on the machine pays anything; they fire
///   when a call returns, also one already blocked when tracing started.
/// - raw-tracepoint: one program on the raw sys_exit tracepoint. A hook on every syscall sends
///   all of them, on the whole machine, down the kernel's slow exit path, and each pays a few
///   instructions to be told apart (benchmark, 9 rounds: an untraced server kept 0.94 of its
///   throughput, 1.00 with socket-tracepoint). Its exit fires for calls that were already blocked when
///   tracing started, so those are not lost. Needs BTF (5.5+).
/// - kprobe: only the traced functions pay, but each return probe costs a trap and, attached
///   while a call waits, never fires for that call.
/// - tracepoint: the syscalls:* tracepoints; like raw-tracepoint, but the kernel builds a perf
///   record for every call of every process first, which halved a loaded nginx's throughput while
///   tracing only an idle process.
/// - fentry is never picked: see FENTRY_WARNING.
const AUTO_ORDER: [Method; 4] = [
    Method::SocketTracepoint,
    Method::RawTracepoint,
    Method::Kprobe,
    Method::Tracepoint,
];

/// Why `auto` never picks fentry, said when it is forced. When any BPF program attaches to or
/// detaches from a function, its trampoline is rebuilt and the old one is patched to skip the
/// fexit programs for calls still inside it (kernel/bpf/trampoline.c, bpf_tramp_image_put).
const FENTRY_WARNING: &str = "warning: with fentry, a receive that is blocked while any BPF \
    program attaches to or detaches from the same kernel function (another tracer starting or \
    stopping) returns without fexit, and its request is lost; auto never picks fentry";

pub struct Config<'p> {
    /// Put in BPF's set before the programs attach.
    pub processes: &'p Processes,
    pub follow_children: bool,
    /// --name: command names whose programs are traced when they start.
    pub watch_names: &'p [String],
    /// --container: cgroups (directory inode numbers) whose processes are traced when they start.
    /// With each, its hierarchy's id (0: cgroup v2).
    pub watch_cgroups: &'p [(u64, u32)],
    /// --port: connections with none of these at either end are left out in the kernel (none:
    /// every connection is followed).
    pub ports: &'p [u16],
    pub capture_bytes: u32,
    pub buffer: BufferKind,
    /// The ring's size, when `buffer` is the ring.
    pub ring_bytes: u32,
    /// Load the TLS library's probes (not --no-tls).
    pub tls: bool,
}

pub struct Loaded {
    /// Every attachment, return probes included: detached all at once on drop, before the
    /// kprobe events they use and the programs are dropped (fields drop in this order).
    links: Vec<Link>,
    _kprobe_events: Option<KprobeEvents>,
    pub skel: HttpTraceSkel<'static>,
    pub method: Method,
    pub buffer: BufferKind,
    /// Why earlier candidates of `auto` were passed over.
    pub fallbacks: Vec<String>,
    /// Said on stderr when tracing starts (a forced method's known limits).
    pub warnings: Vec<String>,
}

impl Drop for Loaded {
    /// Detach side by side: closing a tracepoint's perf event waits for an RCU grace period
    /// (about 75 ms here), so the syscalls:* method's 21 links, closed one after the other, took
    /// 1.6 s to stop; closed together they share the grace periods.
    fn drop(&mut self) {
        std::thread::scope(|s| {
            for link in self.links.drain(..) {
                s.spawn(move || drop(link));
            }
        });
    }
}

impl Loaded {
    /// Calls whose return the kretprobes could not follow (0 for other methods).
    pub fn kretprobe_misses(&self) -> u64 {
        self._kprobe_events.as_ref().map_or(0, KprobeEvents::missed)
    }
}

/// A loaded and attached object, before it is known which method won.
struct Attached {
    skel: HttpTraceSkel<'static>,
    links: Vec<Link>,
    kprobe_events: Option<KprobeEvents>,
    warnings: Vec<String>,
}

/// Fill the maps of what --name, --container and --port watch for, before the programs attach.
fn watch(skel: &HttpTraceSkel<'_>, cfg: &Config<'_>) -> Result<()> {
    for &port in cfg.ports {
        skel.maps
            .watched_ports
            .update(&u32::from(port).to_ne_bytes(), &[1u8], MapFlags::ANY)
            .with_context(|| format!("watching port {port}"))?;
    }
    for name in cfg.watch_names {
        let mut key = [0u8; 16];
        let comm = proc_scan::comm_of(name);
        key[..comm.len()].copy_from_slice(comm);
        skel.maps
            .watched_names
            .update(&key, &[1u8], MapFlags::ANY)
            .with_context(|| format!("watching for programs named {name}"))?;
    }
    for &(ino, hierarchy) in cfg.watch_cgroups {
        crate::traced::watch_cgroup(skel, ino, hierarchy)
            .context("watching a container's cgroup")?;
    }
    Ok(())
}

/// The sysfs file whose presence says the kernel has BTF; tests point it elsewhere.
fn btf_path() -> String {
    std::env::var("HTTP_TRACE_SYSFS_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into())
}

/// Checks that need no BPF: privileges, the PIDs, BTF.
pub fn preflight(pids: &[u32]) -> Result<()> {
    if !has_bpf_privileges()? {
        bail!(
            "permission denied: tracing needs root (or CAP_BPF and CAP_PERFMON); run it with sudo"
        );
    }
    for &pid in pids {
        if proc_scan::is_zombie(pid) {
            bail!("process {pid} has exited (its parent has not reaped it yet)");
        }
        if !proc_scan::process_alive(pid) {
            bail!(
                "no such process: {pid} (it has exited, or it is not a PID as the host sees it: \
                 for a process in a container, give its host PID)"
            );
        }
    }
    let btf = btf_path();
    if !Path::new(&btf).exists() {
        bail!(
            "this kernel has no BTF ({btf} is missing); http-trace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.8 or later)"
        );
    }
    Ok(())
}

fn has_bpf_privileges() -> Result<bool> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let eff = procfs::process::Process::myself()
        .and_then(|p| p.status())
        .context("reading /proc/self/status")?
        .capeff;
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    Ok(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)))
}

/// Route libbpf's own log to `log` at debug level (RUST_LOG=debug shows it): a failed attempt
/// of `auto` is expected and must not print libbpf warnings. libbpf is asked only for the levels
/// `log` will show: formatting its debug lines (28,000 per start) took 0.3 of the 0.44 s of
/// user CPU a debug build spent starting, which the emulated kernels of scripts/vm-test.sh
/// multiply at every test.
pub fn route_libbpf_log() {
    fn print(level: PrintLevel, msg: String) {
        let msg = msg.trim_end();
        match level {
            PrintLevel::Warn | PrintLevel::Info => log::debug!("libbpf: {msg}"),
            PrintLevel::Debug => log::trace!("libbpf: {msg}"),
        }
    }
    let wanted = match log::max_level() {
        log::LevelFilter::Trace => Some(PrintLevel::Debug),
        log::LevelFilter::Debug => Some(PrintLevel::Info),
        _ => None,
    };
    libbpf_rs::set_print(wanted.map(|level| (level, print as fn(PrintLevel, String))));
}

/// Load and attach with the method `mode` asks for, or with the first one that works (`auto`).
pub fn load(attach: Attach, cfg: &Config<'_>) -> Result<Loaded> {
    let only;
    let candidates: &[Method] = match attach {
        Attach::Auto => &AUTO_ORDER,
        Attach::Only(m) => {
            only = [m];
            &only
        }
    };
    let build = Build::probe()?;
    log::info!("BPF build: {build:?}");
    let mut fallbacks = Vec::new();
    let forced = attach != Attach::Auto;
    for &method in candidates {
        match load_with(method, build, cfg, forced) {
            Ok(a) => {
                return Ok(Loaded {
                    links: a.links,
                    _kprobe_events: a.kprobe_events,
                    skel: a.skel,
                    method,
                    buffer: cfg.buffer,
                    fallbacks,
                    warnings: a.warnings,
                })
            }
            Err(e) => fallbacks.push(match e.downcast_ref::<Unavailable>() {
                Some(why) => format!("{method} is not available: {}", why.0),
                None => format!("{method} failed: {e:#}"),
            }),
        }
    }
    let why = fallbacks.join("; ");
    bail!("no attach method works on this kernel ({why})")
}

/// `forced`: the user asked for this method, so a known limit is a warning, not a reason to fail.
fn load_with(method: Method, build: Build, cfg: &Config<'_>, forced: bool) -> Result<Attached> {
    let mut warnings = Vec::new();
    let mut kprobe_events = prerequisites(method, forced, &mut warnings)?;
    let open = open_for(method, build, cfg)?;
    let skel = open
        .load()
        .context("loading the BPF programs (RUST_LOG=debug shows the kernel's log)")?;
    cfg.processes.track_all(&skel)?;
    watch(&skel, cfg)?;
    match layout::find_and_set(&skel) {
        Ok(l) => log::info!(
            "direct map at {:#x}, struct pages at {:#x}: spliced bytes are copied",
            l.direct_map,
            l.vmemmap
        ),
        Err(e) => log::warn!(
            "the kernel's memory layout was not found ({e:#}): bytes moved by splice are \
             counted, not copied"
        ),
    }
    // Attached one by one rather than by the skeleton, so that the links can be dropped side by
    // side (see Loaded's drop).
    let mut links = Vec::new();
    for prog in skel.object().progs_mut().filter(|p| p.autoload()) {
        let section = prog.section().to_string_lossy().into_owned();
        if section == PROBE_SECTION || is_uprobe(&section) {
            continue; // run by layout, never attached; attached per library
        }
        let link = match (kprobe_events.as_mut(), kretprobe::target_of(&section)) {
            // With a raised maxactive, through tracefs.
            (Some(events), Some(func)) => kretprobe::attach(events, &prog, &func)?,
            _ => prog
                .attach()
                .with_context(|| format!("attaching the {method} program {section}"))?,
        };
        links.push(link);
    }
    Ok(Attached {
        skel,
        links,
        kprobe_events,
        warnings,
    })
}

/// What `method` needs of the kernel before anything is loaded; for kprobes, the tracefs
/// kprobe_events file through which the kretprobes get a raised limit of calls in flight.
fn prerequisites(
    method: Method,
    forced: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<KprobeEvents>> {
    match method {
        Method::SocketTracepoint if !has_socket_tracepoints() => Err(Unavailable(
            "this kernel has no sock:sock_recv_length tracepoint (Linux 6.3+)",
        )
        .into()),
        Method::Kprobe => {
            if !kprobes_available() {
                return Err(Unavailable(
                    "this kernel has no kprobes (built without CONFIG_KPROBES?)",
                )
                .into());
            }
            match ensure_tracefs().and_then(|t| KprobeEvents::new(&t)) {
                Ok(events) => Ok(Some(events)),
                Err(e) if forced => {
                    warnings.push(format!(
                        "warning: kretprobes keep the kernel's default limit of calls in flight \
                         (max(10, 2 x CPUs)); with more threads blocked in a receive, requests \
                         are lost ({e:#})"
                    ));
                    Ok(None)
                }
                Err(e) => bail!(
                    "kretprobes could only have the kernel's default limit of calls in flight, \
                     which threads blocked in a receive exhaust ({e:#})"
                ),
            }
        }
        Method::Tracepoint => ensure_tracefs().map(|_| None),
        Method::Fentry => {
            warnings.push(FENTRY_WARNING.to_string());
            Ok(None)
        }
        Method::RawTracepoint | Method::SocketTracepoint => Ok(None),
    }
}

/// The BPF object opened with the settings of `cfg`, and only `method`'s programs of `build`
/// to be loaded.
fn open_for(method: Method, build: Build, cfg: &Config<'_>) -> Result<OpenHttpTraceSkel<'static>> {
    // The skeleton borrows its object storage for its whole life, which is the program's.
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = HttpTraceSkelBuilder::default()
        .open(storage)
        .context("opening the BPF object")?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("the BPF object has no read-only data section")?;
    rodata.capture_bytes = cfg.capture_bytes;
    rodata.follow_children = u8::from(cfg.follow_children);
    rodata.watch_execs = u8::from(!cfg.watch_names.is_empty() || !cfg.watch_cgroups.is_empty());
    rodata.watch_new_cgroups = u8::from(!cfg.watch_cgroups.is_empty());
    rodata.filter_ports = u8::from(!cfg.ports.is_empty());
    // The one method that sees no splice enter (see bpf/pipes.bpf.h: note_spliced_in).
    rodata.note_spliced_buffers = u8::from(method == Method::RawTracepoint);
    rodata.use_ringbuf = u8::from(cfg.buffer == BufferKind::Ring);
    rodata.wakeup_bytes = buffer::wakeup_bytes(cfg.ring_bytes);
    match cfg.buffer {
        BufferKind::Ring => open.maps.ring.set_max_entries(cfg.ring_bytes),
        BufferKind::Perf => open.maps.ring.set_autocreate(false),
    }
    .context("setting up the ring buffer map")?;
    let mut method_programs = 0;
    for mut prog in open.open_object_mut().progs_mut() {
        let section = prog.section().to_string_lossy().into_owned();
        let name = prog.name().to_string_lossy().into_owned();
        // The cgroups made are looked at only for --container (see on_cgroup_made).
        let wanted = (!name.starts_with("raw_tp_cgroup_mkdir") || !cfg.watch_cgroups.is_empty())
            && (cfg.tls || !is_uprobe(&section));
        let mine = (method.owns_section(&section) || section == PROBE_SECTION)
            && build.owns_program(&name)
            && wanted;
        prog.set_autoload(mine);
        if mine && !section.starts_with("raw_tp") && !is_uprobe(&section) {
            method_programs += 1;
        }
    }
    if method_programs == 0 {
        // The legacy build leaves out the socket tracepoints: its kernels predate them.
        return Err(Unavailable("the BPF build for this kernel has no programs for it").into());
    }
    Ok(open)
}

/// The section of the program layout runs to find the kernel's memory layout, with every method.
const PROBE_SECTION: &str = "raw_tp";

/// A method this kernel cannot have, as opposed to one that failed to load or attach.
#[derive(Debug)]
struct Unavailable(&'static str);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Unavailable {}

/// Which of the object's two builds of the BPF programs to load (see the top of
/// bpf/http_trace.bpf.c): the modern one where the kernel has bpf_loop() (5.17+, and with it
/// the atomics that return a value and callbacks), else the legacy one, whose programs end in
/// `_legacy`. HTTP_TRACE_BPF_BUILD=legacy or modern overrides the probe (tests, benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    Modern,
    Legacy,
}

impl Build {
    fn probe() -> Result<Self> {
        match std::env::var("HTTP_TRACE_BPF_BUILD").as_deref() {
            Ok("legacy") => return Ok(Build::Legacy),
            Ok("modern") => return Ok(Build::Modern),
            _ => {}
        }
        // libbpf's helper probe loads a kprobe program calling the helper: it answers for
        // tracing programs too.
        let has_loop = libbpf_rs::ProgramType::Kprobe
            .is_helper_supported(libbpf_rs::libbpf_sys::BPF_FUNC_loop)
            .context("probing the kernel for bpf_loop()")?;
        Ok(if has_loop {
            Build::Modern
        } else {
            Build::Legacy
        })
    }

    fn owns_program(self, name: &str) -> bool {
        name.ends_with("_legacy") == (self == Build::Legacy)
    }
}

/// Whether the kernel has the socket tracepoints (6.3+): by their directory in tracefs where it
/// is mounted, else by their BTF type. Parsing the kernel's BTF here repeats libbpf's own parse
/// at load (in a 6.12 guest, the two took 0.7 s of 4 KiB reads of a start's 4 s, and their
/// parsing besides), which the tracefs look-up saves.
fn has_socket_tracepoints() -> bool {
    for tracefs in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let events = Path::new(tracefs).join("events");
        if events.exists() {
            return events.join("sock/sock_recv_length").exists();
        }
    }
    libbpf_rs::btf::Btf::from_vmlinux().is_ok_and(|btf| {
        btf.type_by_name::<libbpf_rs::btf::types::Typedef<'_>>("btf_trace_sock_recv_length")
            .is_some()
    })
}

/// The kprobe PMU (perf_event_open) or the legacy tracefs interface.
fn kprobes_available() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || Path::new("/sys/kernel/debug/tracing/kprobe_events").exists()
}

/// libbpf finds syscall tracepoints through tracefs, and kprobe events are made there: mount it
/// where the system has not. Returns where it is.
fn ensure_tracefs() -> Result<PathBuf> {
    const TRACEFS: &str = "/sys/kernel/tracing";
    for dir in [TRACEFS, "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("events").exists() {
            return Ok(PathBuf::from(dir));
        }
    }
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL in constant");
    let (src, target, fstype) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; data is null.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("mounting tracefs at {TRACEFS}"));
    }
    log::info!("mounted tracefs at {TRACEFS}");
    Ok(PathBuf::from(TRACEFS))
}

/// Runs of our programs the kernel skipped because another BPF program was running on that CPU
/// (bpf_prog_info's recursion_misses): their events never existed, so no buffer reports them.
pub fn kernel_skips(skel: &HttpTraceSkel<'_>) -> u64 {
    use std::os::fd::{AsFd, AsRawFd};
    skel.object()
        .progs()
        .filter(|p| p.autoload())
        .map(|p| {
            let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
            let mut len = std::mem::size_of_val(&info) as u32;
            // SAFETY: the fd is a loaded program's, `info` is a zeroed bpf_prog_info that lives
            // across the call, and `len` is its size, so the kernel writes only inside it.
            let rc = unsafe {
                libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(
                    p.as_fd().as_raw_fd(),
                    &mut info,
                    &mut len,
                )
            };
            if rc == 0 {
                info.recursion_misses
            } else {
                0
            }
        })
        .sum()
}
