//! One direction of a connection: the bytes of its syscalls, in order, into the HTTP parser of
//! that direction. Bytes a syscall moved but the kernel side did not copy (past
//! --capture-bytes, unreadable, or never in user memory as with sendfile) reach the parser as a
//! hole of known size, so bodies keep their true size and the parser stays in step.

use crate::decode::Data;
use crate::http::{Parsed, Parser};

pub struct Stream {
    pub parser: Parser,
    /// Offset in the current syscall up to which bytes have been accounted for.
    syscall_pos: u64,
}

impl Stream {
    pub fn new(body_limit: usize) -> Self {
        Self {
            parser: Parser::new(body_limit),
            syscall_pos: 0,
        }
    }

    /// Feed one event's bytes, moved at `ts_ns`, and the holes before and after them; what they
    /// complete goes to `out`. Returns the bytes that were moved but not captured.
    pub fn feed(&mut self, p: &Data<&[u8]>, ts_ns: u64, out: &mut Vec<Parsed>) -> u64 {
        let mut not_kept = 0;
        let offset = u64::from(p.offset);
        if offset == 0 {
            self.syscall_pos = 0;
        }
        // Bytes not copied are counted as such here: the parser counts them under no other
        // name (one count per byte).
        if offset > self.syscall_pos {
            let hole = offset - self.syscall_pos;
            not_kept += hole;
            self.parser.skip_counted(hole, ts_ns, true, out);
        }
        self.parser.feed(p.bytes, ts_ns, out);
        self.syscall_pos = offset + p.bytes.len() as u64;
        if p.last {
            let total = u64::try_from(p.ret).unwrap_or(0);
            if total > self.syscall_pos {
                let hole = total - self.syscall_pos;
                // sendfile's bytes were never meant to be captured: not a capture loss, counted
                // by the parser (in a body, or skipped). Unseen bytes and spliced ones not copied
                // are counted as such by the tracker, bytes not copied here: neither again by
                // the parser.
                if !p.no_data {
                    not_kept += hole;
                }
                let counted = !p.no_data || p.unseen || p.spliced;
                self.parser.skip_counted(hole, ts_ns, counted, out);
            }
            self.syscall_pos = 0;
        }
        not_kept
    }

    /// Events of unknown size were lost: the position in the stream is gone.
    pub fn gap(&mut self, out: &mut Vec<Parsed>) {
        self.syscall_pos = 0;
        self.parser.gap(out);
    }
}
