//! The buffer events arrive through: the BPF ring buffer where the kernel has it (one buffer for
//! all CPUs, woken in batches), else the perf event array of the product card (one per CPU).

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::{MapType, PerfBuffer, PerfBufferBuilder, RingBuffer, RingBufferBuilder};

use crate::bpf::HttpTraceSkel;

const PAGE_BYTES: u64 = 4096;
/// The ring's size cap: max_entries is a u32 power of two.
const MAX_RING_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BufferMode {
    Auto,
    Ring,
    Perf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferKind {
    Ring,
    Perf,
}

impl fmt::Display for BufferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BufferKind::Ring => "ring buffer",
            BufferKind::Perf => "perf buffer",
        })
    }
}

/// Which buffer to use: the ring where the kernel has one (5.8+), unless told otherwise.
pub fn resolve(mode: BufferMode) -> Result<BufferKind> {
    let ring = || {
        MapType::RingBuf
            .is_supported()
            .context("probing for the BPF ring buffer")
    };
    Ok(match mode {
        BufferMode::Perf => BufferKind::Perf,
        BufferMode::Ring if !ring()? => {
            bail!("this kernel has no BPF ring buffer (it came in 5.8); use --buffer perf")
        }
        BufferMode::Ring => BufferKind::Ring,
        BufferMode::Auto if ring()? => BufferKind::Ring,
        BufferMode::Auto => BufferKind::Perf,
    })
}

/// The ring's size for `pages_per_cpu`: as much memory as the perf buffers would take, rounded
/// up to the power of two the kernel requires.
pub fn ring_bytes(pages_per_cpu: usize, cpus: usize) -> u32 {
    let want = (pages_per_cpu as u64 * PAGE_BYTES * cpus.max(1) as u64)
        .next_power_of_two()
        .min(MAX_RING_BYTES);
    u32::try_from(want).unwrap_or(u32::MAX)
}

/// Wake user space once this much waits in the ring: a wakeup per event would cost the traced
/// process more than the copy itself.
pub fn wakeup_bytes(ring_bytes: u32) -> u64 {
    u64::from(ring_bytes / 16).max(1)
}

pub enum EventBuffer<'a> {
    Ring(RingBuffer<'a>),
    Perf(PerfBuffer<'a>),
}

impl<'a> EventBuffer<'a> {
    /// `on_sample` gets each event; `on_lost` the events perf reports lost (the ring's losses are
    /// counted in BPF instead).
    pub fn open(
        skel: &'a HttpTraceSkel<'static>,
        kind: BufferKind,
        pages_per_cpu: usize,
        mut on_sample: impl FnMut(&[u8]) + 'a,
        mut on_lost: impl FnMut(u64) + 'a,
    ) -> Result<Self> {
        Ok(match kind {
            BufferKind::Ring => {
                let mut b = RingBufferBuilder::new();
                b.add(&skel.maps.ring, move |data: &[u8]| {
                    on_sample(data);
                    0
                })
                .context("adding the ring buffer")?;
                EventBuffer::Ring(b.build().context("creating the ring buffer")?)
            }
            BufferKind::Perf => EventBuffer::Perf(
                PerfBufferBuilder::new(&skel.maps.events)
                    .pages(pages_per_cpu)
                    .sample_cb(move |_cpu, data: &[u8]| on_sample(data))
                    .lost_cb(move |_cpu, n| on_lost(n))
                    .build()
                    .context("creating the perf buffer")?,
            ),
        })
    }

    /// Wait up to `timeout` for events and handle what arrived. The ring wakes user space only in
    /// batches, so it is drained on every call as well.
    pub fn poll(&self, timeout: Duration) -> Result<()> {
        let r = match self {
            EventBuffer::Ring(rb) => rb.poll(timeout).and_then(|()| rb.consume()),
            EventBuffer::Perf(pb) => pb.poll(timeout),
        };
        match r {
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => Ok(()),
            r => r.context("polling the event buffer"),
        }
    }

    /// Handle every event already buffered, without waiting.
    pub fn consume(&self) -> Result<()> {
        match self {
            EventBuffer::Ring(rb) => rb.consume(),
            EventBuffer::Perf(pb) => pb.consume(),
        }
        .context("draining the event buffer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_takes_what_the_perf_buffers_would_rounded_up() {
        assert_eq!(ring_bytes(512, 2), 4 << 20);
        assert_eq!(ring_bytes(512, 3), 8 << 20);
        assert_eq!(ring_bytes(8, 1), 32 << 10);
        assert_eq!(ring_bytes(65536, 64), 1 << 30);
    }

    #[test]
    fn wakeup_is_a_fraction_of_the_ring() {
        assert_eq!(wakeup_bytes(4 << 20), 256 << 10);
    }
}
