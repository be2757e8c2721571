//! Decoding of the raw perf buffer samples that bpf/http_trace.bpf.c sends.

use std::fmt;
use std::mem::size_of;

use crate::conn::{Chunk, ChunkKind, Comm, ConnMeta};
use crate::skel::types::{ht_event, ht_event_kind, ht_flags};

// SAFETY: ht_event is the #[repr(C)] struct the skeleton generates from bpf/http_trace.h; it holds
// only integers and byte arrays, with explicit padding, so every bit pattern is a valid value.
unsafe impl plain::Plain for ht_event {}

pub const HEADER_LEN: usize = size_of::<ht_event>();

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Short(usize),
    DataPastEnd { len: u32, sample: usize },
    UnknownKind(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short(n) => write!(f, "sample of {n} bytes is shorter than an event header"),
            Self::DataPastEnd { len, sample } => {
                write!(f, "event claims {len} data bytes in a {sample}-byte sample")
            }
            Self::UnknownKind(k) => write!(f, "unknown event kind {k}"),
        }
    }
}

/// Decode one sample. Perf samples are not 8-byte aligned, so the header is copied out; the data
/// stays borrowed from the sample.
pub fn decode(sample: &[u8]) -> Result<Chunk<&[u8]>, DecodeError> {
    let head = sample
        .get(..HEADER_LEN)
        .ok_or(DecodeError::Short(sample.len()))?;
    let mut h = ht_event::default();
    plain::copy_from_bytes(&mut h, head).map_err(|_| DecodeError::Short(sample.len()))?;
    let meta = ConnMeta {
        tgid: h.tgid,
        tid: h.tid,
        fd: h.fd,
        comm: Comm(h.comm),
    };
    let kind = match ht_event_kind(u32::from(h.kind)) {
        ht_event_kind::HT_EV_ACCEPT => ChunkKind::Accept,
        ht_event_kind::HT_EV_CLOSE => ChunkKind::Close,
        ht_event_kind::HT_EV_FOUND => ChunkKind::Found {
            consumed: u64::try_from(h.ret).unwrap_or(0),
        },
        ht_event_kind::HT_EV_DATA => {
            let bytes = sample.get(HEADER_LEN..HEADER_LEN + h.len as usize).ok_or(
                DecodeError::DataPastEnd {
                    len: h.len,
                    sample: sample.len(),
                },
            )?;
            ChunkKind::Data {
                offset: h.offset,
                ret: h.ret,
                last: u32::from(h.flags) & ht_flags::HT_FLAG_LAST.0 != 0,
                bytes,
            }
        }
        _ => return Err(DecodeError::UnknownKind(h.kind)),
    };
    Ok(Chunk {
        conn_id: h.conn_id,
        seq: h.seq,
        ts_ns: h.ts_ns,
        meta,
        kind,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A sample as the BPF side lays it out: header, then data, then perf's padding to 8 bytes.
    pub fn sample(h: &ht_event, data: &[u8]) -> Vec<u8> {
        // SAFETY: ht_event is Plain (see above); viewing it as bytes reads only initialised memory.
        let mut v = unsafe { plain::as_bytes(h) }.to_vec();
        v.extend_from_slice(data);
        v.resize(v.len().next_multiple_of(8) + 4, 0);
        v
    }

    fn header(kind: ht_event_kind, len: u32) -> ht_event {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"nginx\0");
        ht_event {
            ts_ns: 42,
            conn_id: 7,
            seq: 3,
            ret: 5,
            tgid: 100,
            tid: 101,
            fd: 9,
            offset: 0,
            len,
            kind: kind.0 as u8,
            syscall: 4,
            direction: 0,
            flags: ht_flags::HT_FLAG_LAST.0 as u8,
            comm,
        }
    }

    #[test]
    fn decodes_data_event_from_unaligned_sample() {
        let raw = sample(&header(ht_event_kind::HT_EV_DATA, 5), b"GET /");
        // Shift by one byte so the header is not aligned, as in a real perf buffer.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&raw);
        let c = decode(&shifted[1..]).unwrap();
        assert_eq!((c.conn_id, c.seq, c.ts_ns), (7, 3, 42));
        assert_eq!((c.meta.tgid, c.meta.tid, c.meta.fd), (100, 101, 9));
        assert_eq!(c.meta.comm.to_string_lossy(), "nginx");
        assert_eq!(
            c.kind,
            ChunkKind::Data {
                offset: 0,
                ret: 5,
                last: true,
                bytes: &b"GET /"[..]
            }
        );
    }

    #[test]
    fn decodes_control_events() {
        let raw = sample(&header(ht_event_kind::HT_EV_ACCEPT, 0), b"");
        assert_eq!(decode(&raw).unwrap().kind, ChunkKind::Accept);
        let raw = sample(&header(ht_event_kind::HT_EV_CLOSE, 0), b"");
        assert_eq!(decode(&raw).unwrap().kind, ChunkKind::Close);
        let raw = sample(&header(ht_event_kind::HT_EV_FOUND, 0), b"");
        assert_eq!(decode(&raw).unwrap().kind, ChunkKind::Found { consumed: 5 });
    }

    #[test]
    fn rejects_bad_samples() {
        assert_eq!(decode(&[0; 10]), Err(DecodeError::Short(10)));
        let raw = sample(&header(ht_event_kind::HT_EV_DATA, 5000), b"abc");
        assert!(matches!(
            decode(&raw),
            Err(DecodeError::DataPastEnd { len: 5000, .. })
        ));
        let raw = sample(&header(ht_event_kind(99), 0), b"");
        assert_eq!(decode(&raw), Err(DecodeError::UnknownKind(99)));
    }
}
