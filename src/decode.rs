//! Decoding: the raw buffer samples that bpf/http_trace.bpf.c sends become the pipeline's
//! events (`Chunk`s of a connection, process forks and exits), and the types those carry.

use std::fmt;
use std::mem::{offset_of, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use crate::bpf::types::{
    ht_cgroup_event, ht_conn_event, ht_direction, ht_event, ht_event_kind, ht_flags, ht_limits,
    ht_process_event, ht_syscall, ht_unix_conn_event,
};
use crate::bpf::EVENT_HEADER_LEN as HEADER_LEN;

/// A task's command name as the kernel keeps it: up to 16 bytes, NUL-padded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Comm(pub [u8; 16]);

impl Comm {
    /// A name as the kernel gave it: what follows its NUL is cleared. (A comm read raw, as the
    /// group leader's is, keeps what a longer name set before left there on kernels whose
    /// set_task_comm did not pad it, 5.10's: names equal as text must be equal here.)
    pub fn from_kernel(mut raw: [u8; 16]) -> Self {
        // Most events name nobody (data events): nothing to clear.
        if raw[0] == 0 {
            return Self::default();
        }
        if let Some(end) = raw.iter().position(|&b| b == 0) {
            raw[end..].fill(0);
        }
        Self(raw)
    }

    pub fn new(name: &str) -> Self {
        let mut bytes = [0; 16];
        let n = name.len().min(15);
        bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }

    /// Most data events carry no names (reading them cost BPF 6% of its time per request); the
    /// tracker names them (`tracker::names`).
    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }

    /// The name, when it is UTF-8 (it nearly always is): no allocation.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()).ok()
    }
}

impl std::fmt::Display for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_str() {
            Some(s) => f.write_str(s),
            None => f.write_str(&String::from_utf8_lossy(self.bytes())),
        }
    }
}

/// Who a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnMeta {
    pub tgid: u32,
    pub tid: u32,
    pub fd: i32,
    /// The process's name (what ps and --name show) and the calling thread's.
    pub comm: Comm,
    pub thread: Comm,
}

impl ConnMeta {
    /// The calling thread's name where it is not the process's: shown beside it.
    pub fn thread_apart(&self) -> Option<&Comm> {
        (!self.thread.is_empty() && self.thread != self.comm).then_some(&self.thread)
    }
}

/// Bytes of a Unix socket address after its family.
pub const UNIX_PATH_BYTES: usize = ht_limits::HT_UNIX_PATH_BYTES.0 as usize;

/// A Unix socket's address as the kernel keeps it: a path (NUL-terminated), an abstract name
/// (after a NUL), or nothing for an unbound socket. Inline, so that records stay Copy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UnixAddr {
    len: u8,
    bytes: [u8; UNIX_PATH_BYTES],
}

impl UnixAddr {
    pub fn new(raw: &[u8]) -> Self {
        let n = raw.len().min(UNIX_PATH_BYTES);
        let mut bytes = [0; UNIX_PATH_BYTES];
        bytes[..n].copy_from_slice(&raw[..n]);
        Self {
            len: n as u8,
            bytes,
        }
    }

    /// How it is shown: the path, "@name" for an abstract name; None when unbound.
    pub fn name(&self) -> Option<String> {
        match &self.bytes[..usize::from(self.len)] {
            [] | [0] => None,
            [0, name @ ..] => Some(format!("@{}", String::from_utf8_lossy(name))),
            path => {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Some(String::from_utf8_lossy(&path[..end]).into_owned())
            }
        }
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

/// Where a connection's two ends are. A Unix socket's addresses are shared, not copied with
/// every event and record: inline, they made every event several times bigger and cost the
/// pipeline benchmark 3.5% (13,043 instructions per exchange, 12,598 shared; 12,437 before
/// exchanges were named by their own calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    Inet { local: SocketAddr, peer: SocketAddr },
    Unix(Arc<UnixEnds>),
}

/// A Unix stream socket's ends: `peer_pid` is the process at the other end as the kernel has it
/// (the client for an accepted socket, the listener's for a connected one); `ino` and `sk` name
/// the socket, so that its end can be found when no call shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixEnds {
    pub local: UnixAddr,
    pub peer: UnixAddr,
    pub peer_pid: Option<u32>,
    pub ino: u64,
    pub sk: u64,
}

/// Which way bytes moved, seen from the traced process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn other(self) -> Self {
        match self {
            Direction::In => Direction::Out,
            Direction::Out => Direction::In,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }
}

/// The traced process's side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It accepted the connection (or receives requests on it).
    Server,
    /// It connected (or sends requests on it).
    Client,
    /// Found already open, and no request seen yet.
    Unknown,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
            Role::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Accepted,
    Connected,
    /// First seen on a receive or send (open before tracing, or opened by a call in flight),
    /// after the process had received and sent these many bytes on it; None where the socket
    /// does not count them (Unix).
    Found {
        received: Option<u64>,
        sent: Option<u64>,
    },
}

/// Bytes `offset..offset + bytes.len()` of a syscall that moved `ret` bytes; `last` closes that
/// syscall's series of events; `no_data`: the bytes were never in user memory (sendfile);
/// `unseen`: with `no_data`, bytes that moved outside the calls followed (io_uring, a
/// process not traced that shares the socket), known from the TCP socket's sequence numbers;
/// `spliced`: with `no_data`, a splice's bytes, which BPF could not read from the pipe's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data<B> {
    pub direction: Direction,
    pub offset: u32,
    pub ret: i64,
    pub last: bool,
    pub no_data: bool,
    pub unseen: bool,
    pub spliced: bool,
    /// The plaintext of a TLS library's read or write (not a socket call's bytes).
    pub tls: bool,
    pub bytes: B,
}

/// One direction's place in its current call: a call's bytes can come in several events, and
/// the bytes its events skip, or leave after the last one, moved but were not copied.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallPos(u64);

/// The bytes of a call an event shows were moved but not copied: before its own bytes, and
/// after them when it is the call's last event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Holes {
    pub before: u64,
    pub after: u64,
}

impl CallPos {
    /// Place the next event of `d`'s call, which carries `len` of its bytes.
    pub fn place<B>(&mut self, d: &Data<B>, len: usize) -> Holes {
        let offset = u64::from(d.offset);
        if offset == 0 {
            self.0 = 0;
        }
        let before = offset.saturating_sub(self.0);
        self.0 = offset + len as u64;
        let mut after = 0;
        if d.last {
            after = u64::try_from(d.ret).unwrap_or(0).saturating_sub(self.0);
            self.0 = 0;
        }
        Holes { before, after }
    }

    /// Events were lost: the next one starts a call.
    pub fn reset(&mut self) {
        self.0 = 0;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkKind<B> {
    Open {
        how: Opened,
        endpoints: Option<Endpoints>,
    },
    Data(Data<B>),
    Close,
}

/// One decoded event; `B` is a borrowed slice on the hot path and a Vec when it must wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk<B> {
    pub conn_id: u64,
    pub seq: u64,
    pub ts_ns: u64,
    pub meta: ConnMeta,
    pub kind: ChunkKind<B>,
}

impl<B> Chunk<B> {
    /// The same event with its bytes converted by `f`.
    pub fn map_bytes<'a, C>(&'a self, f: impl FnOnce(&'a B) -> C) -> Chunk<C> {
        Chunk {
            conn_id: self.conn_id,
            seq: self.seq,
            ts_ns: self.ts_ns,
            meta: self.meta,
            kind: match &self.kind {
                ChunkKind::Open { how, endpoints } => ChunkKind::Open {
                    how: *how,
                    endpoints: endpoints.clone(),
                },
                ChunkKind::Close => ChunkKind::Close,
                ChunkKind::Data(d) => ChunkKind::Data(Data {
                    direction: d.direction,
                    offset: d.offset,
                    ret: d.ret,
                    last: d.last,
                    no_data: d.no_data,
                    unseen: d.unseen,
                    spliced: d.spliced,
                    tls: d.tls,
                    bytes: f(&d.bytes),
                }),
            },
        }
    }
}

const AF_UNIX: u16 = libc::AF_UNIX as u16;
const POSITION_UNKNOWN: u32 = ht_flags::HT_FLAG_POSITION_UNKNOWN.0;
const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;

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

/// One decoded sample: an event of a connection, or of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    Conn(Chunk<&'a [u8]>),
    /// The last thread of tracked process `tgid` exited.
    Exit {
        tgid: u32,
    },
    /// A process that --name or --container watches for started a program, and is tracked;
    /// `cgroup`: the watched cgroup (inode number) it was found in, 0 when found by its name.
    Exec {
        tgid: u32,
        ns_pid: u32,
        cgroup: u64,
    },
    /// Tracked process `parent` forked `child`, now tracked too; `ns_pid` is the child's PID in
    /// its own PID namespace (0: the host's).
    Fork {
        parent: u32,
        child: u32,
        ns_pid: u32,
    },
}

fn endpoint(family: u16, addr: [u8; 16], port: u16) -> Option<SocketAddr> {
    let ip = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(addr)).to_canonical(),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Copy a `T` out of the start of `sample`: buffer samples are not 8-byte aligned.
fn read_struct<T: plain::Plain + Default>(sample: &[u8]) -> Result<T, DecodeError> {
    let mut v = T::default();
    let raw = sample
        .get(..size_of::<T>())
        .ok_or(DecodeError::Short(sample.len()))?;
    plain::copy_from_bytes(&mut v, raw).map_err(|_| DecodeError::Short(sample.len()))?;
    Ok(v)
}

/// Decode one sample. Structs are copied out; the data stays borrowed from the sample.
pub fn decode(sample: &[u8]) -> Result<Event<'_>, DecodeError> {
    let h: ht_event = read_struct(sample)?;
    let kind = match ht_event_kind(u32::from(h.kind)) {
        ht_event_kind::HT_EV_EXIT | ht_event_kind::HT_EV_EXEC | ht_event_kind::HT_EV_FORK => {
            return process_event(sample)
        }
        ht_event_kind::HT_EV_ACCEPT => opened(sample, Opened::Accepted)?,
        ht_event_kind::HT_EV_CONNECT => opened(sample, Opened::Connected)?,
        ht_event_kind::HT_EV_FOUND => opened(
            sample,
            Opened::Found {
                received: None,
                sent: None,
            },
        )?,
        ht_event_kind::HT_EV_CLOSE => ChunkKind::Close,
        ht_event_kind::HT_EV_DATA => ChunkKind::Data(data(&h, sample)?),
        _ => return Err(DecodeError::UnknownKind(h.kind)),
    };
    Ok(Event::Conn(Chunk {
        conn_id: h.conn_id,
        seq: h.seq,
        ts_ns: h.ts_ns,
        meta: ConnMeta {
            tgid: h.tgid,
            tid: h.tid,
            fd: h.fd,
            comm: Comm::from_kernel(h.comm),
            thread: Comm::from_kernel(h.thread),
        },
        kind,
    }))
}

fn process_event(sample: &[u8]) -> Result<Event<'_>, DecodeError> {
    let p: ht_process_event = read_struct(sample)?;
    Ok(match ht_event_kind(u32::from(p.hdr.kind)) {
        ht_event_kind::HT_EV_EXEC => Event::Exec {
            tgid: p.hdr.tgid,
            ns_pid: p.ns_pid,
            cgroup: p.cgroup,
        },
        ht_event_kind::HT_EV_FORK => Event::Fork {
            parent: p.hdr.tgid,
            child: p.child_tgid,
            ns_pid: p.ns_pid,
        },
        _ => Event::Exit { tgid: p.hdr.tgid },
    })
}

/// A cgroup BPF saw made (--container).
#[derive(Debug, PartialEq, Eq)]
pub struct CgroupMade<'a> {
    /// Its id, as BPF compares cgroups (its directory's inode number).
    pub cgroup: u64,
    /// Its hierarchy's id (one per cgroup v1 controller set, one for v2).
    pub hierarchy: u32,
    /// Its path within its hierarchy.
    pub path: &'a [u8],
}

/// The cgroup made that `sample` reports; None for every other event: the kind is looked at
/// first, so that the other samples cost a byte's read.
pub fn cgroup_made(sample: &[u8]) -> Option<CgroupMade<'_>> {
    let kind = *sample.get(offset_of!(ht_event, kind))?;
    if ht_event_kind(u32::from(kind)) != ht_event_kind::HT_EV_CGROUP {
        return None;
    }
    let e: ht_cgroup_event = read_struct(sample).ok()?;
    let start = offset_of!(ht_cgroup_event, path);
    let len = (e.path_len as usize).min(e.path.len());
    Some(CgroupMade {
        cgroup: e.cgroup,
        hierarchy: e.hierarchy,
        path: &sample[start..start + len],
    })
}

/// A connection's opening: its addresses, and for a found one where it joined each stream.
fn opened(sample: &[u8], how: Opened) -> Result<ChunkKind<&[u8]>, DecodeError> {
    let c: ht_conn_event = read_struct(sample)?;
    let endpoints = if c.family == AF_UNIX {
        let u: ht_unix_conn_event = read_struct(sample)?;
        Some(Endpoints::Unix(Arc::new(UnixEnds {
            local: UnixAddr::new(&u.local_path[..usize::from(u.local_len)]),
            peer: UnixAddr::new(&u.peer_path[..usize::from(u.peer_len)]),
            peer_pid: (u.peer_pid != 0).then_some(u.peer_pid),
            ino: u.ino,
            sk: u.sk,
        })))
    } else {
        endpoint(c.family, c.laddr, c.lport)
            .zip(endpoint(c.family, c.raddr, c.rport))
            .map(|(local, peer)| Endpoints::Inet { local, peer })
    };
    let how = match how {
        // A socket that counts no bytes (Unix): its position in each stream is unknown.
        Opened::Found { .. } if u32::from(c.hdr.flags) & POSITION_UNKNOWN != 0 => how,
        Opened::Found { .. } => Opened::Found {
            received: Some(c.received_before),
            sent: Some(c.sent_before),
        },
        other => other,
    };
    Ok(ChunkKind::Open { how, endpoints })
}

fn data<'a>(h: &ht_event, sample: &'a [u8]) -> Result<Data<&'a [u8]>, DecodeError> {
    let bytes =
        sample
            .get(HEADER_LEN..HEADER_LEN + h.len as usize)
            .ok_or(DecodeError::DataPastEnd {
                len: h.len,
                sample: sample.len(),
            })?;
    let flags = u32::from(h.flags);
    let no_data = flags & ht_flags::HT_FLAG_NO_DATA.0 != 0;
    let syscall = ht_syscall(u32::from(h.syscall));
    Ok(Data {
        direction: if ht_direction(u32::from(h.direction)) == ht_direction::HT_DIR_OUT {
            Direction::Out
        } else {
            Direction::In
        },
        offset: h.offset,
        ret: h.ret,
        last: flags & ht_flags::HT_FLAG_LAST.0 != 0,
        no_data,
        unseen: flags & ht_flags::HT_FLAG_UNSEEN.0 != 0,
        spliced: no_data
            && (syscall == ht_syscall::HT_SYS_SPLICE_IN
                || syscall == ht_syscall::HT_SYS_SPLICE_OUT),
        tls: syscall == ht_syscall::HT_SYS_TLS_READ || syscall == ht_syscall::HT_SYS_TLS_WRITE,
        bytes,
    })
}

/// Rewrite a sample of a capture file of format version 3 or older into the header of version
/// 4, which names the thread beside the process: their `comm` was the calling thread's name,
/// now its `thread`, and stays the process's name, which they did not record. (First, before
/// `upgrade_format2_sample`, which reads the header of this build.)
pub fn widen_format3_header(sample: &mut Vec<u8>) {
    const OLD_HEADER: usize = offset_of!(ht_event, thread);
    let comm = offset_of!(ht_event, comm);
    if sample.len() < OLD_HEADER {
        return;
    }
    let thread: [u8; 16] = sample[comm..OLD_HEADER].try_into().expect("16 bytes");
    sample.splice(OLD_HEADER..OLD_HEADER, thread);
}

/// Rewrite a sample of a capture file of format version 2 or older into this build's layout.
/// Those files' process events were a bare header (a fork's child in `ret`, an exec's cgroup in
/// `ret`, the namespace PID in `offset`), and a found socket's bytes received before were its
/// `ret`, with no `received_before` field in the opening event.
pub fn upgrade_format2_sample(sample: &mut Vec<u8>) {
    let Ok(h) = read_struct::<ht_event>(sample) else {
        return;
    };
    match ht_event_kind(u32::from(h.kind)) {
        kind @ (ht_event_kind::HT_EV_EXIT
        | ht_event_kind::HT_EV_EXEC
        | ht_event_kind::HT_EV_FORK) => {
            let mut p = ht_process_event {
                hdr: h,
                ns_pid: h.offset,
                ..Default::default()
            };
            p.hdr.ret = 0;
            p.hdr.offset = 0;
            match kind {
                ht_event_kind::HT_EV_EXEC => p.cgroup = h.ret as u64,
                ht_event_kind::HT_EV_FORK => p.child_tgid = u32::try_from(h.ret).unwrap_or(0),
                _ => {}
            }
            *sample = as_bytes(&p).to_vec();
        }
        kind @ (ht_event_kind::HT_EV_ACCEPT
        | ht_event_kind::HT_EV_CONNECT
        | ht_event_kind::HT_EV_FOUND) => {
            let at = offset_of!(ht_conn_event, received_before);
            if sample.len() < at {
                return;
            }
            let mut received = 0u64;
            if kind == ht_event_kind::HT_EV_FOUND {
                received = u64::try_from(h.ret).unwrap_or(0);
                let ret_at = offset_of!(ht_event, ret);
                sample[ret_at..ret_at + 8].fill(0);
            }
            sample.splice(at..at, received.to_ne_bytes());
        }
        _ => {}
    }
}

/// A BPF ABI value's bytes.
fn as_bytes<T: plain::Plain>(v: &T) -> &[u8] {
    // SAFETY: the ABI types are Plain (bpf.rs): integers and byte arrays with explicit padding,
    // so every byte of one is initialised.
    unsafe { plain::as_bytes(v) }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The calls of a test's events: one thread of process 1, on fd 3.
    pub fn test_meta() -> ConnMeta {
        ConnMeta {
            tgid: 1,
            tid: 1,
            fd: 3,
            comm: Comm::new("t"),
            thread: Comm::new("t"),
        }
    }

    #[test]
    fn a_call_s_holes_are_the_bytes_its_events_skip_or_leave() {
        let event = |offset, ret, last| Data {
            direction: Direction::Out,
            offset,
            ret,
            last,
            no_data: false,
            unseen: false,
            spliced: false,
            tls: false,
            bytes: (),
        };
        let mut pos = CallPos::default();
        // 10 bytes copied, 5 skipped, 10 copied, and the call moved 40: 15 after.
        assert_eq!(pos.place(&event(0, 40, false), 10), Holes::default());
        let skipped = pos.place(&event(15, 40, false), 10);
        assert_eq!((skipped.before, skipped.after), (5, 0));
        let end = pos.place(&event(25, 40, true), 0);
        assert_eq!((end.before, end.after), (0, 15));
        // The next call starts again at 0, whatever the last one left.
        let next = pos.place(&event(0, 3, true), 3);
        assert_eq!(next, Holes::default());
    }

    /// A sample as the BPF side lays it out: header, then data, then perf's padding to 8 bytes.
    pub fn sample(h: &ht_event, data: &[u8]) -> Vec<u8> {
        let mut v = as_bytes(h).to_vec();
        v.extend_from_slice(data);
        v.resize(v.len().next_multiple_of(8) + 4, 0);
        v
    }

    /// A header of connection 7's event 3, the last of its call, by nginx.
    pub fn header(kind: ht_event_kind, len: u32) -> ht_event {
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
            thread: comm,
        }
    }

    fn chunk(e: Event<'_>) -> Chunk<&[u8]> {
        match e {
            Event::Conn(c) => c,
            other => panic!("not a connection event: {other:?}"),
        }
    }

    #[test]
    fn decodes_data_event_from_unaligned_sample() {
        let mut h = header(ht_event_kind::HT_EV_DATA, 5);
        h.direction = ht_direction::HT_DIR_OUT.0 as u8;
        let raw = sample(&h, b"GET /");
        // Shift by one byte so the header is not aligned, as in a real perf buffer.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&raw);
        let c = chunk(decode(&shifted[1..]).unwrap());
        assert_eq!((c.conn_id, c.seq, c.ts_ns), (7, 3, 42));
        assert_eq!((c.meta.tgid, c.meta.tid, c.meta.fd), (100, 101, 9));
        assert_eq!(c.meta.comm.bytes(), b"nginx");
        assert_eq!(
            c.kind,
            ChunkKind::Data(Data {
                direction: Direction::Out,
                offset: 0,
                ret: 5,
                last: true,
                no_data: false,
                unseen: false,
                spliced: false,
                tls: false,
                bytes: &b"GET /"[..]
            })
        );
    }

    fn conn_sample(kind: ht_event_kind, family: u16) -> Vec<u8> {
        let mut c = ht_conn_event {
            hdr: header(kind, 0),
            family,
            lport: 8080,
            rport: 50000,
            received_before: 5,
            sent_before: 9,
            ..Default::default()
        };
        c.laddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        c.raddr[15] = 1;
        if family == AF_INET {
            c.raddr[..4].copy_from_slice(&[10, 0, 0, 2]);
            c.raddr[15] = 0;
        }
        let mut v = as_bytes(&c).to_vec();
        v.resize(v.len() + 4, 0);
        v
    }

    #[test]
    fn decodes_connection_events_with_addresses() {
        let raw = conn_sample(ht_event_kind::HT_EV_ACCEPT, AF_INET);
        let c = chunk(decode(&raw).unwrap());
        assert_eq!(
            c.kind,
            ChunkKind::Open {
                how: Opened::Accepted,
                endpoints: Some(Endpoints::Inet {
                    local: "127.0.0.1:8080".parse().unwrap(),
                    peer: "10.0.0.2:50000".parse().unwrap(),
                }),
            }
        );
        let raw = conn_sample(ht_event_kind::HT_EV_FOUND, AF_INET6);
        let c = chunk(decode(&raw).unwrap());
        let ChunkKind::Open { how, endpoints } = c.kind else {
            panic!("not an open event")
        };
        assert_eq!(
            how,
            Opened::Found {
                received: Some(5),
                sent: Some(9)
            }
        );
        let Some(Endpoints::Inet { peer, .. }) = endpoints else {
            panic!("not an IP connection: {endpoints:?}")
        };
        assert_eq!(peer, "[::1]:50000".parse().unwrap());
        let raw = conn_sample(ht_event_kind::HT_EV_CONNECT, 0);
        let c = chunk(decode(&raw).unwrap());
        assert_eq!(
            c.kind,
            ChunkKind::Open {
                how: Opened::Connected,
                endpoints: None
            }
        );
    }

    fn process_sample(kind: ht_event_kind, child_tgid: u32, ns_pid: u32, cgroup: u64) -> Vec<u8> {
        let p = ht_process_event {
            hdr: ht_event {
                conn_id: 0,
                ret: 0,
                ..header(kind, 0)
            },
            child_tgid,
            ns_pid,
            cgroup,
        };
        sample(&p.hdr, &as_bytes(&p)[HEADER_LEN..])
    }

    /// A new cgroup's id and path, and nothing from the other events.
    #[test]
    fn a_cgroup_made_names_its_path() {
        let path = b"/system.slice/docker-0123.scope";
        let mut e = ht_cgroup_event {
            hdr: header(ht_event_kind::HT_EV_CGROUP, 0),
            cgroup: 4242,
            path_len: path.len() as u32,
            hierarchy: 1,
            ..Default::default()
        };
        e.path[..path.len()].copy_from_slice(path);
        let raw = sample(&e.hdr, &as_bytes(&e)[HEADER_LEN..]);
        assert_eq!(
            cgroup_made(&raw),
            Some(CgroupMade {
                cgroup: 4242,
                hierarchy: 1,
                path
            })
        );
        // A length past the field is cut to it.
        e.path_len = 1 << 20;
        let raw = sample(&e.hdr, &as_bytes(&e)[HEADER_LEN..]);
        assert_eq!(cgroup_made(&raw).map(|c| c.path.len()), Some(e.path.len()));
        let raw = process_sample(ht_event_kind::HT_EV_EXEC, 0, 3, 4242);
        assert_eq!(cgroup_made(&raw), None);
        assert_eq!(cgroup_made(&[]), None);
    }

    #[test]
    fn decodes_close_and_process_events() {
        let raw = sample(&header(ht_event_kind::HT_EV_CLOSE, 0), b"");
        assert_eq!(chunk(decode(&raw).unwrap()).kind, ChunkKind::Close);
        let raw = process_sample(ht_event_kind::HT_EV_EXIT, 0, 0, 0);
        assert_eq!(decode(&raw).unwrap(), Event::Exit { tgid: 100 });
        let raw = process_sample(ht_event_kind::HT_EV_FORK, 5, 7, 0);
        assert_eq!(
            decode(&raw).unwrap(),
            Event::Fork {
                parent: 100,
                child: 5,
                ns_pid: 7
            }
        );
        let raw = process_sample(ht_event_kind::HT_EV_EXEC, 0, 3, 4026531835);
        assert_eq!(
            decode(&raw).unwrap(),
            Event::Exec {
                tgid: 100,
                ns_pid: 3,
                cgroup: 4026531835
            }
        );
        // A process event cut to its header is refused, not read as zeros.
        let raw = sample(&header(ht_event_kind::HT_EV_FORK, 0), b"");
        assert!(matches!(
            decode(&raw[..HEADER_LEN]),
            Err(DecodeError::Short(_))
        ));
    }

    /// Format 2 files: the fields then punned in the header are moved to their own.
    #[test]
    fn format2_samples_are_rewritten_to_this_layout() {
        let mut h = header(ht_event_kind::HT_EV_FORK, 0);
        (h.conn_id, h.ret, h.offset) = (0, 5, 7);
        let mut raw = as_bytes(&h).to_vec();
        upgrade_format2_sample(&mut raw);
        assert_eq!(
            raw,
            process_sample(ht_event_kind::HT_EV_FORK, 5, 7, 0)[..raw.len()]
        );
        let mut h = header(ht_event_kind::HT_EV_EXEC, 0);
        (h.conn_id, h.ret, h.offset) = (0, 4026531835, 3);
        let mut raw = as_bytes(&h).to_vec();
        upgrade_format2_sample(&mut raw);
        assert_eq!(
            decode(&raw).unwrap(),
            Event::Exec {
                tgid: 100,
                ns_pid: 3,
                cgroup: 4026531835
            }
        );
        // A found socket: `ret` had the bytes received before; the opening lacked the field.
        let new = conn_sample(ht_event_kind::HT_EV_FOUND, AF_INET6);
        let at = offset_of!(ht_conn_event, received_before);
        let mut old = new.clone();
        old.drain(at..at + 8);
        upgrade_format2_sample(&mut old);
        let mut expected = new.clone();
        let ret_at = offset_of!(ht_event, ret);
        expected[ret_at..ret_at + 8].fill(0);
        assert_eq!(old, expected);
        assert_eq!(decode(&old), decode(&new));
        // An accept's `ret` (the fd) stays; its received_before is 0.
        let new = conn_sample(ht_event_kind::HT_EV_ACCEPT, AF_INET);
        let mut old = new.clone();
        old.drain(at..at + 8);
        upgrade_format2_sample(&mut old);
        assert_eq!(decode(&old), decode(&new));
    }

    /// Format 3 and older: the header had no `thread`; the name it had is the thread's.
    #[test]
    fn format3_headers_are_widened() {
        let mut h = header(ht_event_kind::HT_EV_DATA, 3);
        h.comm = Comm::new("puma srv tp 001").0;
        h.thread = [0xee; 16];
        let new = sample(&h, b"abc");
        let at = offset_of!(ht_event, thread);
        let mut old = new.clone();
        old.drain(at..at + 16);
        widen_format3_header(&mut old);
        let Event::Conn(c) = decode(&old).unwrap() else {
            panic!("a data event");
        };
        assert_eq!(
            (c.meta.comm, c.meta.thread),
            (Comm::new("puma srv tp 001"), Comm::new("puma srv tp 001"))
        );
        assert_eq!(old.len(), new.len());
        assert_eq!(old[..at], new[..at]);
        assert_eq!(old[at + 16..], new[at + 16..]);
        // What follows a name's NUL is not part of it.
        let mut raw = *b"nginx\0er process";
        raw[15] = 0;
        assert_eq!(Comm::from_kernel(raw), Comm::new("nginx"));
        // Too short to be an event: left to the decoder to refuse.
        let mut short = vec![1u8; 10];
        widen_format3_header(&mut short);
        assert_eq!(short, [1u8; 10]);
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
