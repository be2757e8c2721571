//! One direction of a connection: the bytes of its syscalls, in order, into the HTTP parser of
//! that direction. Bytes a syscall moved but the kernel side did not copy (past
//! --capture-bytes, unreadable, or never in user memory as with sendfile) reach the parser as a
//! hole of known size, so bodies keep their true size and the parser stays in step. Tapped:
//! the events as applied, for outputs made of the byte streams.

use crate::decode::{CallPos, Chunk, ChunkKind, Data, Direction};
use crate::http::{Parsed, Parser};

pub struct Stream {
    pub parser: Parser,
    call: CallPos,
}

impl Stream {
    pub fn new(body_limit: usize) -> Self {
        Self {
            parser: Parser::new(body_limit),
            call: CallPos::default(),
        }
    }

    /// Feed one event's bytes, moved at `ts_ns`, and the holes before and after them; what they
    /// complete goes to `out`. Returns the bytes that were moved but not captured.
    pub fn feed(&mut self, p: &Data<&[u8]>, ts_ns: u64, out: &mut Vec<Parsed>) -> u64 {
        let holes = self.call.place(p, p.bytes.len());
        // Bytes not copied are counted as such here: the parser counts them under no other
        // name (one count per byte).
        if holes.before > 0 {
            self.parser.skip_counted(holes.before, ts_ns, true, out);
        }
        self.parser.feed(p.bytes, ts_ns, out);
        let mut not_kept = holes.before;
        if holes.after > 0 {
            // sendfile's bytes were never meant to be captured: not a capture loss, counted by
            // the parser (in a body, or skipped). Unseen bytes and spliced ones not copied are
            // counted as such by the tracker, bytes not copied here: neither again by the
            // parser.
            if !p.no_data {
                not_kept += holes.after;
            }
            let counted = !p.no_data || p.unseen || p.spliced;
            self.parser.skip_counted(holes.after, ts_ns, counted, out);
        }
        not_kept
    }

    /// Events of unknown size were lost: the position in the stream is gone.
    pub fn gap(&mut self, out: &mut Vec<Parsed>) {
        self.call.reset();
        self.parser.gap(out);
    }
}

/// Per direction of a connection, whether its socket calls carry TLS records, known from the
/// direction's first bytes: a record's header (content type 20 to 23, version 3.x). Their
/// plaintext, where the TLS library was probed, comes in events of its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordSniff([Option<bool>; 2]);

impl RecordSniff {
    /// Look at socket-call bytes `d` (the first of its direction, when none came before):
    /// whether its direction carries records.
    pub fn look<B: AsRef<[u8]>>(&mut self, d: &Data<B>) -> bool {
        let first = &mut self.0[d.direction.index()];
        if first.is_none() && !d.no_data {
            *first = Some(matches!(d.bytes.as_ref(), [20..=23, 3, 0..=4, ..]));
        }
        *first == Some(true)
    }

    /// Whether direction `dir` carries records.
    pub fn carries(&self, dir: Direction) -> bool {
        self.0[dir.index()] == Some(true)
    }

    /// Whether both do: a TLS connection (a hello sent to a plain server gets no record back).
    pub fn both(&self) -> bool {
        self.0 == [Some(true); 2]
    }
}

/// A connection's event as the tracker applied it, in order, for outputs of the byte streams
/// themselves (pcapng); or the events of unknown size that were given up on before the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tapped {
    /// `settled`: after a data event, its direction was between messages (every byte of it so
    /// far belongs to a whole message): what redaction decides on (redact::StreamRedactor).
    Event {
        chunk: Chunk<Vec<u8>>,
        settled: bool,
    },
    Gap {
        conn_id: u64,
    },
    /// The connection was let go without a close event (its process exited, its socket was
    /// found gone, tracing ended).
    Ended {
        conn_id: u64,
    },
}

impl Tapped {
    /// The bytes it carries.
    pub fn bytes_len(&self) -> usize {
        match self {
            Tapped::Event { chunk, .. } => match &chunk.kind {
                ChunkKind::Data(d) => d.bytes.len(),
                _ => 0,
            },
            Tapped::Gap { .. } | Tapped::Ended { .. } => 0,
        }
    }

    /// The direction of a data event (Direction::index).
    pub fn direction(&self) -> Option<usize> {
        match self {
            Tapped::Event { chunk, .. } => match &chunk.kind {
                ChunkKind::Data(d) => Some(d.direction.index()),
                _ => None,
            },
            Tapped::Gap { .. } | Tapped::Ended { .. } => None,
        }
    }
}
