//! The BPF ABI: the skeleton generated from bpf/http_trace.bpf.c, the shared types of
//! bpf/http_trace.h, and the kernel side's limits and drop counters. The only module that knows
//! the kernel-side layout; the decoder turns its samples into the pipeline's own types.

#[allow(clippy::all, clippy::pedantic, unused_imports, dead_code, missing_docs)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/http_trace.skel.rs"));
}

pub use skel::types;
pub use skel::{HttpTraceSkel, HttpTraceSkelBuilder, OpenHttpTraceSkel};

use types::{
    ht_cgroup_event, ht_conn_event, ht_drop, ht_event, ht_layout, ht_limits, ht_process_event,
    ht_sock_info, ht_unix_conn_event,
};

// SAFETY: ht_event and ht_conn_event are #[repr(C)] structs the skeleton generates from
// bpf/http_trace.h; they hold only integers and byte arrays, with explicit padding, so every bit
// pattern is a valid value.
unsafe impl plain::Plain for ht_event {}
// SAFETY: as above.
unsafe impl plain::Plain for ht_conn_event {}
// SAFETY: as ht_conn_event: integers and byte arrays, explicit padding, any bit pattern valid.
unsafe impl plain::Plain for ht_unix_conn_event {}
// SAFETY: as ht_event: integers only, no padding.
unsafe impl plain::Plain for ht_process_event {}
// SAFETY: as ht_event: integers and a byte array, no padding.
unsafe impl plain::Plain for ht_cgroup_event {}
// SAFETY: as ht_event: the sockets map's value, integers only, no padding.
unsafe impl plain::Plain for ht_sock_info {}
// SAFETY: as ht_event: the layout map's value, u64s only.
unsafe impl plain::Plain for ht_layout {}

/// The event header every sample starts with.
pub const EVENT_HEADER_LEN: usize = std::mem::size_of::<ht_event>();
/// Upper bound of --capture-bytes: it bounds the BPF copy loops.
pub const MAX_CAPTURE_BYTES: u32 = ht_limits::HT_MAX_CAPTURE_BYTES.0;
/// Slots of the tracked-process prefilter array.
pub const TGID_SLOTS: u32 = ht_limits::HT_TGID_SLOTS.0;

/// How many kinds of drop BPF counts (enum ht_drop).
pub const DROP_KINDS: usize = ht_drop::HT_DROP_MAX.0 as usize;

/// BPF's drop counters, indexed by enum ht_drop.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drops(pub [u64; DROP_KINDS]);

impl Drops {
    /// Events BPF could not send (the buffer was full).
    pub fn output_failed(&self) -> u64 {
        self.0[ht_drop::HT_DROP_OUTPUT_FAILED.0 as usize]
    }

    /// The other counters, each with what the summary calls one and several, in its order.
    pub fn named(&self) -> impl Iterator<Item = (u64, &'static str, &'static str)> + '_ {
        DROP_NAMES
            .iter()
            .map(|&(kind, one, many)| (self.0[kind.0 as usize], one, many))
    }
}

/// What the summary calls each drop counter but HT_DROP_OUTPUT_FAILED, which is in the events
/// lost: one, several.
const DROP_NAMES: [(ht_drop, &str, &str); 9] = [
    (
        ht_drop::HT_DROP_SOCKETS_FULL,
        "connection not tracked (map full)",
        "connections not tracked (map full)",
    ),
    (
        ht_drop::HT_DROP_INFLIGHT_FULL,
        "syscall not followed (map full)",
        "syscalls not followed (map full)",
    ),
    (
        ht_drop::HT_DROP_PROCESSES_FULL,
        "child process not followed (map full)",
        "child processes not followed (map full)",
    ),
    (
        ht_drop::HT_DROP_OTHER_IO,
        "socket transfer outside the syscalls followed (io_uring) not captured",
        "socket transfers outside the syscalls followed (io_uring) not captured",
    ),
    (
        ht_drop::HT_DROP_READ_FAILED,
        "user-memory read failed",
        "user-memory reads failed",
    ),
    (
        ht_drop::HT_DROP_SEQ_UNLOCKED,
        "event numbered without its connection's lock (its order may be wrong)",
        "events numbered without their connection's lock (their order may be wrong)",
    ),
    (
        ht_drop::HT_DROP_TLS_NO_SOCKET,
        "TLS read or write whose socket is unknown, not shown",
        "TLS reads and writes whose socket is unknown, not shown",
    ),
    (
        ht_drop::HT_DROP_TLS_CALLS_FULL,
        "TLS read or write not followed (it could not be noted)",
        "TLS reads and writes not followed (they could not be noted)",
    ),
    (
        ht_drop::HT_DROP_PORT_LEFT_OUT,
        "connection on no --port left out in the kernel",
        "connections on no --port left out in the kernel",
    ),
];

/// Read the drop counters the BPF side keeps.
pub fn drops(skel: &HttpTraceSkel<'_>) -> Drops {
    skel.maps
        .bss_data
        .as_deref()
        .map_or(Drops::default(), |bss| Drops(bss.drops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_but_output_failed_is_named_once() {
        let mut seen = vec![ht_drop::HT_DROP_OUTPUT_FAILED.0];
        seen.extend(DROP_NAMES.iter().map(|(k, _, _)| k.0));
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (0..DROP_KINDS as u32).collect::<Vec<_>>());
    }
}
