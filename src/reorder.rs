//! Putting one connection's events back in order. They come through any CPU's buffer, so each
//! carries a per-connection sequence number; an event that arrives early waits for the ones
//! before it. A sequence number that never arrives (an event lost in the kernel) is waited for
//! for GAP_TIMEOUT, then given up: the streams resynchronise and the gap is counted. (The
//! tracker also gives a gap up sooner when the events waiting hold too much: held_bytes.)
//!
//! Time here is event time (CLOCK_MONOTONIC, the clock of BPF's timestamps): the wait starts at
//! the timestamp of the first event that waits, and the caller says what time it is now. A
//! replay of a capture file then gives up on exactly the gaps that the live run gave up on.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::decode::{Chunk, ChunkKind};

/// How long a missing sequence number is waited for before its event is taken as lost.
pub const GAP_TIMEOUT: Duration = Duration::from_millis(300);

/// Where an arriving event stands in its connection's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The one expected: apply it now.
    InOrder,
    /// Ahead of a missing one: kept until its turn.
    Early,
    /// Behind: its sequence number was already given up on as lost.
    Late,
}

/// One connection's order: the sequence number expected next, and the events that wait.
#[derive(Debug, Default)]
pub struct Reorder {
    next_seq: u64,
    /// Events that arrived ahead of `next_seq`, with their bytes copied out of the buffer.
    pending: BTreeMap<u64, Chunk<Vec<u8>>>,
    /// Since when (event time, ns) `next_seq` has been missing while later events wait.
    gap_since: Option<u64>,
    /// Heap bytes of `pending`.
    held: usize,
}

/// What a waiting event holds besides its bytes: its chunk and its place in the tree, about.
const PENDING_OVERHEAD: usize = 96;

impl Reorder {
    /// Connections are followed from their opening (or discovery): sequence number 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take an arriving event: keep it when it is early, advance when it is the one expected.
    /// A gap's wait starts at its first early event's timestamp: the missing one was sent
    /// before it, so it is in a buffer by then, or lost.
    pub fn arrive(&mut self, chunk: &Chunk<&[u8]>) -> Arrival {
        if chunk.seq < self.next_seq {
            return Arrival::Late;
        }
        if chunk.seq > self.next_seq {
            let early = chunk.map_bytes(|b| b.to_vec());
            let size = held_by(&early);
            if let Some(old) = self.pending.insert(chunk.seq, early) {
                self.held -= held_by(&old);
            }
            self.held += size;
            self.gap_since.get_or_insert(chunk.ts_ns);
            return Arrival::Early;
        }
        self.next_seq += 1;
        Arrival::InOrder
    }

    /// Whether event `seq` waits here for one before it.
    pub fn holds(&self, seq: u64) -> bool {
        self.pending.contains_key(&seq)
    }

    /// The waiting event that is now expected, if any.
    pub fn next_ready(&mut self) -> Option<Chunk<Vec<u8>>> {
        let entry = self.pending.first_entry()?;
        if *entry.key() != self.next_seq {
            return None;
        }
        self.next_seq += 1;
        let chunk = entry.remove();
        self.held -= held_by(&chunk);
        Some(chunk)
    }

    /// Heap bytes of the events that wait.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// After the ready events were taken: whether a gap is still open, and since when (a new
    /// gap after the one just closed: since its first waiting event).
    pub fn settle(&mut self) {
        self.gap_since = match self.pending.first_key_value() {
            None => None,
            Some((_, first)) => self.gap_since.or(Some(first.ts_ns)),
        };
    }

    /// Whether events wait for a missing one.
    pub fn has_gap(&self) -> bool {
        self.gap_since.is_some()
    }

    /// Whether the missing event has been waited for long enough at `now_ns` (event time).
    pub fn gap_expired(&self, now_ns: u64) -> bool {
        self.gap_since
            .is_some_and(|t| now_ns.saturating_sub(t) >= GAP_TIMEOUT.as_nanos() as u64)
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Give up on the events missing before the first waiting one; returns how many were given
    /// up, or None when nothing waits.
    pub fn skip_gap(&mut self) -> Option<u64> {
        self.gap_since = None;
        let &first = self.pending.keys().next()?;
        let missing = first - self.next_seq;
        self.next_seq = first;
        Some(missing)
    }
}

fn held_by(chunk: &Chunk<Vec<u8>>) -> usize {
    PENDING_OVERHEAD
        + match &chunk.kind {
            ChunkKind::Data(d) => d.bytes.capacity(),
            _ => 0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::test_meta;

    fn event(seq: u64) -> Chunk<&'static [u8]> {
        Chunk {
            conn_id: 1,
            seq,
            ts_ns: seq,
            meta: test_meta(),
            kind: ChunkKind::Close,
        }
    }

    #[test]
    fn early_events_wait_for_the_missing_one() {
        let now = 2;
        let mut r = Reorder::new();
        assert_eq!(r.arrive(&event(0)), Arrival::InOrder);
        assert_eq!(r.arrive(&event(2)), Arrival::Early);
        assert_eq!(r.arrive(&event(3)), Arrival::Early);
        assert!(r.next_ready().is_none());
        r.settle();
        assert!(r.has_gap() && !r.gap_expired(now));
        assert_eq!(r.arrive(&event(1)), Arrival::InOrder);
        let seqs: Vec<u64> = std::iter::from_fn(|| r.next_ready())
            .map(|c| c.seq)
            .collect();
        assert_eq!(seqs, [2, 3]);
        r.settle();
        assert!(!r.has_gap() && !r.has_pending());
    }

    #[test]
    fn a_gap_given_up_counts_the_missing_events_and_drops_late_ones() {
        let timeout = GAP_TIMEOUT.as_nanos() as u64;
        let mut r = Reorder::new();
        r.arrive(&event(3));
        // The wait started at the early event's own time (its ts_ns is its seq here).
        assert!(!r.gap_expired(3 + timeout - 1));
        assert!(r.gap_expired(3 + timeout));
        assert_eq!(r.skip_gap(), Some(3));
        assert_eq!(r.next_ready().map(|c| c.seq), Some(3));
        assert_eq!(r.arrive(&event(1)), Arrival::Late);
        assert_eq!(r.skip_gap(), None);
    }
}
