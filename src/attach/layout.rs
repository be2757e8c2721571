//! Where the kernel maps memory, so that BPF can read the pages of a pipe's buffers: the bytes
//! splice(2) moves between a followed socket and a pipe are nowhere else (bpf/pipes.bpf.h).
//! A page's address is `direct_map + (page - vmemmap) / sizeof(struct page) * 4096`, and
//! kernel address randomization moves both bases at each boot (page_offset_base and
//! vmemmap_base, which /proc/kallsyms lists only with CONFIG_KALLSYMS_ALL, and reading it cost
//! each start 2 s in the emulated kernels of the tests). They are found from a page of our own:
//! - its page frame number, from /proc/self/pagemap (root);
//! - its struct page, from the buffer of a pipe that vmsplice(2) gave it to, read by BPF: then
//!   `vmemmap` follows;
//! - the direct map's base, aligned to 1 GiB (x86-64's PUD size, randomized or not), by BPF
//!   looking for the page's random bytes at each candidate below an address known to be in the
//!   direct map (our task_struct, slab memory): no further below it than the machine's memory
//!   reaches, so a few dozen candidates, 4-level or 5-level paging alike. The search stops at
//!   the first match, and never looks above that address or below where the direct map can
//!   start: places no device memory is mapped at (reads of which could have effects).
//!
//! Either way the result is checked: our page's bytes must be at its place in the direct map.
//!
//! Where this fails, BPF sends a splice's size only and the summary counts its bytes as moved
//! by splice, not copied.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use anyhow::{bail, ensure, Context, Result};
use libbpf_rs::skel::Skel;
use libbpf_rs::{MapCore, MapFlags, ProgramInput};

use crate::bpf::types::ht_layout;
use crate::bpf::HttpTraceSkel;

const PAGE_SIZE: u64 = 4096;
/// The direct map starts at a multiple of this (x86-64's PUD size), randomized or not.
const ALIGN: u64 = 1 << 30;
/// Where the direct map's randomization range starts, with 4-level and 5-level paging.
const DIRECT_MAP_L4: u64 = 0xffff_8880_0000_0000;
const DIRECT_MAP_L5: u64 = 0xff11_0000_0000_0000;
/// Places probe_layout tries per run (HT_PROBE_TRIES).
const TRIES_PER_RUN: u64 = 256;
/// How far above the memory's size page frames may reach: the holes of the physical address
/// space (PCI's below 4 GiB, firmware's), generously.
const MEMORY_HOLES: u64 = 64 << 30;

/// The direct map's and the page array's bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub direct_map: u64,
    pub vmemmap: u64,
}

/// Find the layout and hand it to the BPF programs (the `layout` map).
pub fn find_and_set(skel: &HttpTraceSkel<'_>) -> Result<Layout> {
    let found = find(skel)?;
    let value = ht_layout {
        direct_map: found.direct_map,
        vmemmap: found.vmemmap,
        ..Default::default()
    };
    // SAFETY: ht_layout is Plain (crate::bpf): a #[repr(C)] struct of u64s.
    let bytes = unsafe { plain::as_bytes(&value) };
    skel.maps
        .layout
        .update(&0u32.to_ne_bytes(), bytes, MapFlags::ANY)
        .context("setting the kernel's memory layout in BPF")?;
    Ok(found)
}

fn find(skel: &HttpTraceSkel<'_>) -> Result<Layout> {
    let page = MarkedPage::new()?;
    let pfn = page.frame_number()?;
    let (read_end, write_end) = pipe()?;
    page.give_to(&write_end)?;
    let probe = Probe { skel };
    let struct_page = probe.run([0, read_end.as_raw_fd() as u64, 0, 0, 0, 0])?;
    let page_struct_size = probe.answer()?.page_struct_size;
    ensure!(
        page_struct_size > 0 && struct_page > pfn * page_struct_size,
        "the pipe's page ({struct_page:#x}) cannot be page frame {pfn}"
    );
    let vmemmap = struct_page - pfn * page_struct_size;
    let [a, b] = page.mark;
    // The direct map holds every page frame at `base + pfn * 4096`: a slab object's address
    // less its frame's offset is the base, so the base is at most that address rounded down,
    // and no lower than the highest frame's offset below it.
    let task = probe.run([2, 0, 0, 0, 0, 0])?;
    let lowest = if vmemmap >= 0xffff_8000_0000_0000 {
        DIRECT_MAP_L4
    } else {
        DIRECT_MAP_L5
    };
    let highest = task & !(ALIGN - 1);
    ensure!(
        highest >= lowest,
        "our task ({task:#x}) is not in the direct map"
    );
    let reach = (memory_bytes()? + MEMORY_HOLES).next_multiple_of(ALIGN);
    let candidates = ((highest - lowest) / ALIGN).min(reach / ALIGN) + 1;
    let first = highest - (candidates - 1) * ALIGN;
    let mut done = 0;
    while done < candidates {
        let at = first + done * ALIGN + pfn * PAGE_SIZE;
        let tries = (candidates - done).min(TRIES_PER_RUN);
        if let Ok(found) = probe.run([1, at, ALIGN, a, b, tries]) {
            return Ok(Layout {
                direct_map: found - pfn * PAGE_SIZE,
                vmemmap,
            });
        }
        done += tries;
    }
    bail!("page frame {pfn} was not found in {candidates} places of the direct map below {task:#x}")
}

/// The machine's memory (MemTotal): the direct map spans at least this much.
fn memory_bytes() -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .context("no MemTotal in /proc/meminfo")
}

/// The probe_layout program of the build that was loaded, run in this process.
struct Probe<'a, 'b> {
    skel: &'a HttpTraceSkel<'b>,
}

impl Probe<'_, '_> {
    /// Run it with `args` (see probe_layout); its answer, `probe_page`.
    fn run(&self, args: [u64; 6]) -> Result<u64> {
        let prog = self
            .skel
            .object()
            .progs_mut()
            .find(|p| p.autoload() && p.section() == super::PROBE_SECTION)
            .context("the BPF object has no probe_layout program")?;
        let mut ctx: Vec<u8> = args.iter().flat_map(|a| a.to_ne_bytes()).collect();
        let input = ProgramInput {
            context_in: Some(&mut ctx),
            ..Default::default()
        };
        let out = prog
            .test_run(input)
            .context("running the memory layout probe (BPF_PROG_TEST_RUN)")?;
        ensure!(out.return_value == 0, "no answer");
        Ok(self.answer()?.probe_page)
    }

    fn answer(&self) -> Result<ht_layout> {
        let bytes = self
            .skel
            .maps
            .layout
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .context("reading the layout map")?
            .context("the layout map has no entry")?;
        let mut value = ht_layout::default();
        plain::copy_from_bytes(&mut value, &bytes)
            .map_err(|e| anyhow::anyhow!("the layout map's value: {e:?}"))?;
        Ok(value)
    }
}

/// One page of ours, locked in memory, that starts with 16 random bytes.
struct MarkedPage {
    addr: *mut libc::c_void,
    mark: [u64; 2],
}

impl MarkedPage {
    fn new() -> Result<Self> {
        let mut random = [0u8; 16];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .context("reading /dev/urandom")?;
        let mark = [
            u64::from_ne_bytes(random[..8].try_into().expect("8 bytes")),
            u64::from_ne_bytes(random[8..].try_into().expect("8 bytes")),
        ];
        // SAFETY: a new private anonymous mapping; the result is checked.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mapping a page");
        }
        // SAFETY: the mapping is PAGE_SIZE bytes, writable, and ours alone.
        unsafe { std::ptr::copy_nonoverlapping(random.as_ptr(), addr.cast::<u8>(), 16) };
        // SAFETY: the mapping above; a failure only lets the page move, which the search shows.
        unsafe { libc::mlock(addr, PAGE_SIZE as usize) };
        Ok(Self { addr, mark })
    }

    /// Its page frame number (/proc/self/pagemap: bit 63 present, bits 0-54 the frame).
    fn frame_number(&self) -> Result<u64> {
        let pagemap = File::open("/proc/self/pagemap").context("opening /proc/self/pagemap")?;
        let mut entry = [0u8; 8];
        pagemap
            .read_exact_at(&mut entry, self.addr as u64 / PAGE_SIZE * 8)
            .context("reading /proc/self/pagemap")?;
        let entry = u64::from_ne_bytes(entry);
        let pfn = entry & ((1 << 55) - 1);
        ensure!(
            entry >> 63 == 1 && pfn != 0,
            "/proc/self/pagemap shows no page frame"
        );
        Ok(pfn)
    }

    /// Put the page itself (not a copy) into the pipe's first buffer.
    fn give_to(&self, pipe: &OwnedFd) -> Result<()> {
        let iov = libc::iovec {
            iov_base: self.addr,
            iov_len: PAGE_SIZE as usize,
        };
        // SAFETY: one iovec over our mapping, which outlives the call.
        let n = unsafe { libc::vmsplice(pipe.as_raw_fd(), &iov, 1, 0) };
        if n != PAGE_SIZE as isize {
            return Err(std::io::Error::last_os_error()).context("vmsplice of a page into a pipe");
        }
        Ok(())
    }
}

impl Drop for MarkedPage {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new(), unmapped once.
        unsafe { libc::munmap(self.addr, PAGE_SIZE as usize) };
    }
}

/// A new pipe: its read and write ends.
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("making a pipe");
    }
    // SAFETY: both fds are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
