//! The `-w` recording redacted as the outputs are (unless --show-secrets): every input is
//! written in the order it came, but a sample of a connection's bytes waits until the pipeline
//! has decided what they may show (redact::StreamRedactor holds a message's events until it is
//! whole), and is written with its secrets replaced by `*` of their length.

use std::collections::VecDeque;
use std::io::{self, Write};

use crate::capture::{self, SAMPLE_AT};
use crate::decode::{self, ChunkKind, Event};
use crate::pipeline::{Input, Pipeline, RecordingBytes};

/// Bytes held back at most; past it the connection at the front is let go (redacted as its
/// bytes stand).
const MAX_HELD_BACK: usize = 32 << 20;
/// How long (event time, ns) the front may wait (a message that trickles in, a stream that
/// never ends) before its connection is let go the same way.
const MAX_WAIT_NS: u64 = 2_000_000_000;

/// One input, as the record the file gets.
struct Held {
    record: Vec<u8>,
    /// A data event's sample: its connection, its event and where its bytes are in `record`.
    event: Option<(u64, u64, usize)>,
    /// The bytes of the sample it is, if it is one (the writer counts them).
    sample: Option<usize>,
}

#[derive(Default)]
pub(super) struct HeldBack {
    records: VecDeque<Held>,
    bytes: usize,
    /// Since when (the poll's time, ns) the front has waited.
    waiting_since: Option<u64>,
}

impl HeldBack {
    /// Take the next input, before the pipeline applies it.
    pub(super) fn push(&mut self, input: &Input<'_>) -> io::Result<()> {
        let mut record = Vec::new();
        capture::write_input(&mut record, input)?;
        let (event, sample) = match *input {
            Input::Sample(data) => (data_event(data), Some(data.len())),
            _ => (None, None),
        };
        self.bytes += record.len();
        self.records.push_back(Held {
            record,
            event,
            sample,
        });
        Ok(())
    }

    /// Write to `out` what the pipeline has decided, from the front. `now_ns`: a poll ended
    /// then (the front's wait is measured at polls).
    pub(super) fn release<P: Write, W: Write>(
        &mut self,
        pipeline: &mut Pipeline<P>,
        out: &mut capture::Writer<W>,
        now_ns: Option<u64>,
    ) -> io::Result<()> {
        let waited = match (now_ns, self.waiting_since) {
            (Some(now), Some(since)) => now.saturating_sub(since),
            _ => 0,
        };
        let force = self.bytes > MAX_HELD_BACK || waited > MAX_WAIT_NS;
        self.write_decided(pipeline, out, force)?;
        if let (Some(now), false) = (now_ns, self.records.is_empty()) {
            self.waiting_since.get_or_insert(now);
        }
        Ok(())
    }

    /// The pipeline has finished: everything is written.
    pub(super) fn release_all<P: Write, W: Write>(
        &mut self,
        pipeline: &mut Pipeline<P>,
        out: &mut capture::Writer<W>,
    ) -> io::Result<()> {
        self.write_decided(pipeline, out, true)?;
        // Nothing is held once the pipeline finished; were something, it goes as it came.
        while let Some(h) = self.records.pop_front() {
            out.encoded(&h.record, h.sample)?;
        }
        self.bytes = 0;
        Ok(())
    }

    fn write_decided<P: Write, W: Write>(
        &mut self,
        pipeline: &mut Pipeline<P>,
        out: &mut capture::Writer<W>,
        force: bool,
    ) -> io::Result<()> {
        while let Some(front) = self.records.front_mut() {
            if let Some((conn_id, seq, at)) = front.event {
                let decided = match pipeline.recording_bytes(conn_id, seq) {
                    RecordingBytes::Held if force => {
                        pipeline.let_go(conn_id);
                        pipeline.recording_bytes(conn_id, seq)
                    }
                    b => b,
                };
                match decided {
                    RecordingBytes::Held => return Ok(()),
                    RecordingBytes::Redacted(b) => {
                        if let Some(place) = front.record.get_mut(at..at + b.len()) {
                            place.copy_from_slice(&b);
                        }
                    }
                    RecordingBytes::AsTheyCame => {}
                }
            }
            let h = self.records.pop_front().expect("front checked");
            self.bytes -= h.record.len();
            self.waiting_since = None;
            out.encoded(&h.record, h.sample)?;
        }
        Ok(())
    }
}

/// A sample of a connection's bytes: its connection, its event, and where its bytes start in
/// its record.
fn data_event(sample: &[u8]) -> Option<(u64, u64, usize)> {
    let Ok(Event::Conn(chunk)) = decode::decode(sample) else {
        return None;
    };
    let ChunkKind::Data(d) = &chunk.kind else {
        return None;
    };
    if d.bytes.is_empty() {
        return None;
    }
    // The chunk's bytes are a slice of the sample.
    let at = (d.bytes.as_ptr() as usize).checked_sub(sample.as_ptr() as usize)?;
    Some((chunk.conn_id, chunk.seq, SAMPLE_AT + at))
}
