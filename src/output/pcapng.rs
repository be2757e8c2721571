//! pcapng, for Wireshark and tshark: each connection's byte streams as a TCP stream of
//! synthesized Ethernet, IP and TCP headers (the real addresses and ports; a handshake so that
//! dissectors see the stream start; sequence and acknowledgement numbers per direction; one
//! segment per event, split only where IP's length field requires; a FIN each way at its end),
//! on one interface, with the process that moved each segment as the packet's comment. Bytes
//! that moved but were not copied (past --capture-bytes, sendfile's, splice's or others not
//! copied, moved outside the calls followed) are segments of a marked pad (`~not copied~`
//! repeated) of their exact size in their place, with a comment that says how many and why: the
//! sequence numbers have no hole, so Wireshark's HTTP dissector still finds each body's end and
//! the next message (a gap left it pairing no response after one). Events lost from the
//! buffer, whose size is unknown, are said in the next packet's comment. A TLS connection's
//! stream is its plaintext, read through the TLS library, on its real ports, each packet's
//! comment saying so; its records are left out.
//!
//! A Unix-socket connection has no address: it gets the documented placeholder of TEST-NET-1
//! (RFC 5737), the listening side 192.0.2.1 port 80 and the other 192.0.2.2 with a port made
//! of its connection id, so that each is a stream of its own.

use std::borrow::Cow;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use etherparse::{
    EtherType, Ethernet2Header, IpHeaders, IpNumber, Ipv4Header, Ipv6Header, TcpHeader,
};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use rustc_hash::FxHashMap;

use crate::container::Identity;
use crate::decode::{CallPos, Chunk, ChunkKind, ConnMeta, Direction, Endpoints, Opened};
use crate::stream::RecordSniff;
use crate::tracker::Tapped;

use super::Clock;

/// TCP payload bytes per segment: an IPv4 packet's length field is 16 bits.
const MAX_SEGMENT: usize = 65_000;
/// What stands in for bytes not copied, repeated, and what the packets' comments call it.
const PAD: &[u8] = b"~not copied~";
const PAD_NOTE: &str = "filled with \"~not copied~\" repeated";
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One connection as a TCP stream: the traced process's end (`local`) and the other.
struct Stream {
    local: SocketAddr,
    peer: SocketAddr,
    /// Next sequence number each way: [local → peer, peer → local].
    next: [u32; 2],
    /// Events were lost before the next packet.
    gap: bool,
    /// Each way, the bytes of the current call accounted for (its events' offsets).
    call: [CallPos; 2],
    /// The socket calls' TLS records, not written: the stream is the plaintext the TLS
    /// library's events carry (`tls`, once one came), as the tracker parses it.
    records: RecordSniff,
    tls: bool,
}

impl Stream {
    fn new(local: SocketAddr, peer: SocketAddr) -> Self {
        Self {
            local,
            peer,
            // Any initial numbers do; these are easy to tell apart in a dissector's view.
            next: [1_000_000, 2_000_000],
            gap: false,
            call: [CallPos::default(); 2],
            records: RecordSniff::default(),
            tls: false,
        }
    }
}

pub struct Writer {
    out: PcapNgWriter<Vec<u8>>,
    streams: FxHashMap<u64, Stream>,
    ip_id: u16,
}

impl Writer {
    pub fn new() -> io::Result<Self> {
        let mut out = PcapNgWriter::new(Vec::new()).map_err(io::Error::other)?;
        out.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed("http-trace")),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                    "syscalls of the traced processes, as TCP streams",
                )),
                // The writer stores timestamps in ns.
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })
        .map_err(io::Error::other)?;
        Ok(Self {
            out,
            streams: FxHashMap::default(),
            ip_id: 0,
        })
    }

    /// The blocks written since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(self.out.get_mut())
    }

    /// One event of a connection, as the tracker applied it.
    /// `who`: the process's container, named in each packet's comment.
    pub fn tapped(&mut self, t: &Tapped, clock: &Clock, who: Option<&Identity>) -> io::Result<()> {
        match t {
            Tapped::Gap { conn_id } => {
                if let Some(s) = self.streams.get_mut(conn_id) {
                    s.gap = true;
                    s.call = [CallPos::default(); 2];
                }
                Ok(())
            }
            Tapped::Ended { conn_id } => {
                self.streams.remove(conn_id);
                Ok(())
            }
            Tapped::Event { chunk, .. } => self.event(chunk, clock, who),
        }
    }

    fn event(
        &mut self,
        c: &Chunk<Vec<u8>>,
        clock: &Clock,
        who: Option<&Identity>,
    ) -> io::Result<()> {
        let ts = clock.wall_ns(c.ts_ns);
        let comment = comment(&c.meta, who);
        match &c.kind {
            ChunkKind::Open { how, endpoints } => {
                let (local, peer) = addresses(c.conn_id, endpoints.as_ref(), *how);
                let mut s = Stream::new(local, peer);
                // The connecting side's SYN first: the process's own when it connected.
                let ours = matches!(how, Opened::Connected);
                let (a, b) = if ours { (0, 1) } else { (1, 0) };
                self.segment(&mut s, a, SYN, &[], ts, &comment)?;
                s.next[a] = s.next[a].wrapping_add(1);
                self.segment(&mut s, b, SYN | ACK, &[], ts, &comment)?;
                s.next[b] = s.next[b].wrapping_add(1);
                self.segment(&mut s, a, ACK, &[], ts, &comment)?;
                self.streams.insert(c.conn_id, s);
            }
            ChunkKind::Data(d) => {
                let Some(mut s) = self.streams.remove(&c.conn_id) else {
                    return Ok(());
                };
                if d.tls {
                    s.tls = true;
                } else if s.records.look(d) || s.tls {
                    self.streams.insert(c.conn_id, s);
                    return Ok(());
                }
                let way = match d.direction {
                    Direction::Out => 0,
                    Direction::In => 1,
                };
                let mut comment = if std::mem::take(&mut s.gap) {
                    format!("{comment}; events lost before this one: bytes may be missing")
                } else {
                    comment
                };
                if d.tls {
                    comment += "; TLS plaintext, read through the TLS library (the records \
                                themselves are not written)";
                }
                let bytes: &[u8] = if d.no_data || d.unseen { &[] } else { &d.bytes };
                let why = if d.unseen {
                    "moved outside the calls followed"
                } else if d.spliced {
                    "moved by splice, not copied"
                } else if d.no_data {
                    "sent from a file by sendfile, never in the process's memory"
                } else {
                    "past --capture-bytes, or unreadable"
                };
                let holes = s.call[way].place(d, bytes.len());
                if holes.before > 0 {
                    self.pad(&mut s, way, holes.before, ts, &comment, why)?;
                }
                for piece in bytes.chunks(MAX_SEGMENT) {
                    self.segment(&mut s, way, PSH | ACK, piece, ts, &comment)?;
                    s.next[way] = s.next[way].wrapping_add(piece.len() as u32);
                }
                if holes.after > 0 {
                    self.pad(&mut s, way, holes.after, ts, &comment, why)?;
                }
                self.streams.insert(c.conn_id, s);
            }
            ChunkKind::Close => {
                if let Some(mut s) = self.streams.remove(&c.conn_id) {
                    for way in [0, 1] {
                        self.segment(&mut s, way, FIN | ACK, &[], ts, &comment)?;
                        s.next[way] = s.next[way].wrapping_add(1);
                    }
                    self.segment(&mut s, 0, ACK, &[], ts, &comment)?;
                }
            }
        }
        Ok(())
    }

    /// `n` bytes that moved but were not copied (`why`), as segments of the marked pad in
    /// their place.
    fn pad(
        &mut self,
        s: &mut Stream,
        way: usize,
        n: u64,
        wall_ns: i128,
        comment: &str,
        why: &str,
    ) -> io::Result<()> {
        let comment = format!("{comment}; {n} bytes not copied ({why}): {PAD_NOTE}");
        let pad: Vec<u8> = PAD.iter().copied().cycle().take(MAX_SEGMENT).collect();
        let mut left = n;
        while left > 0 {
            let len = left.min(MAX_SEGMENT as u64) as usize;
            self.segment(s, way, PSH | ACK, &pad[..len], wall_ns, &comment)?;
            s.next[way] = s.next[way].wrapping_add(len as u32);
            left -= len as u64;
        }
        Ok(())
    }

    /// A TCP segment of `s` in direction `way` (0: from the traced process's end).
    fn segment(
        &mut self,
        s: &mut Stream,
        way: usize,
        flags: u8,
        payload: &[u8],
        wall_ns: i128,
        comment: &str,
    ) -> io::Result<()> {
        let (src, dst) = if way == 0 {
            (s.local, s.peer)
        } else {
            (s.peer, s.local)
        };
        let seq = s.next[way];
        let ack = if flags & SYN != 0 && flags & ACK == 0 {
            0
        } else {
            s.next[1 - way]
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let frame = frame(src, dst, seq, ack, flags, payload, self.ip_id);
        self.out
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_nanos(u64::try_from(wall_ns).unwrap_or(0)),
                original_len: frame.len() as u32,
                data: Cow::Owned(frame),
                options: vec![EnhancedPacketOption::Comment(Cow::Borrowed(comment))],
            })
            .map_err(io::Error::other)?;
        Ok(())
    }
}

/// The two ends of a connection as IP addresses: the real ones, or the placeholders of a Unix
/// socket (or of a connection whose addresses are unknown).
fn addresses(conn_id: u64, e: Option<&Endpoints>, how: Opened) -> (SocketAddr, SocketAddr) {
    if let Some(Endpoints::Inet { local, peer }) = e {
        return (unmapped(*local), unmapped(*peer));
    }
    let listener = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80);
    let other = SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        1024 + (conn_id % 64_000) as u16,
    );
    match how {
        Opened::Connected => (other, listener),
        _ => (listener, other),
    }
}

/// IPv4 in IPv6 (`::ffff:a.b.c.d`) as plain IPv4.
fn unmapped(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// An Ethernet frame carrying one TCP segment from `src` to `dst`; `payload` is at most
/// MAX_SEGMENT bytes.
fn frame(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
    ip_id: u16,
) -> Vec<u8> {
    let mut tcp = TcpHeader::new(src.port(), dst.port(), seq, 65_535);
    tcp.acknowledgment_number = ack;
    (tcp.fin, tcp.syn, tcp.psh, tcp.ack) = (
        flags & FIN != 0,
        flags & SYN != 0,
        flags & PSH != 0,
        flags & ACK != 0,
    );
    let mut f = Vec::with_capacity(Ethernet2Header::LEN + Ipv6Header::LEN + 20 + payload.len());
    let (ether_type, ip) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let len = (tcp.header_len() + payload.len()) as u16;
            let mut ip = Ipv4Header::new(len, 64, IpNumber::TCP, s.octets(), d.octets())
                .expect("a segment is smaller than an IP packet");
            ip.identification = ip_id;
            tcp.checksum = tcp.calc_checksum_ipv4(&ip, payload).expect("as above");
            (EtherType::IPV4, IpHeaders::Ipv4(ip, Default::default()))
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            let ip = Ipv6Header {
                payload_length: (tcp.header_len() + payload.len()) as u16,
                next_header: IpNumber::TCP,
                hop_limit: 64,
                source: v6(s),
                destination: v6(d),
                ..Default::default()
            };
            tcp.checksum = tcp.calc_checksum_ipv6(&ip, payload).expect("as above");
            (EtherType::IPV6, IpHeaders::Ipv6(ip, Default::default()))
        }
    };
    let ether = Ethernet2Header {
        source: [0, 0, 0, 0, 0, 1],
        destination: [0, 0, 0, 0, 0, 2],
        ether_type,
    };
    // Writing to a Vec fails only on an allocation failure, which aborts first.
    let written = ether
        .write(&mut f)
        .and_then(|()| ip.write(&mut f).map_err(io::Error::other))
        .and_then(|()| tcp.write(&mut f));
    debug_assert!(written.is_ok());
    f.extend_from_slice(payload);
    f
}

/// A packet's comment: the process, thread and fd that moved it, and its container.
fn comment(m: &ConnMeta, who: Option<&Identity>) -> String {
    let mut comment = format!(
        "pid {} tid {} comm {}",
        m.tgid,
        m.tid,
        String::from_utf8_lossy(m.comm.bytes()),
    );
    if let Some(thread) = m.thread_apart() {
        comment += &format!(" thread {}", String::from_utf8_lossy(thread.bytes()));
    }
    comment += &format!(" fd {}", m.fd);
    if let Some(who) = who {
        if who.ns_pid != 0 {
            comment += &format!(" ns_pid {}", who.ns_pid);
        }
        if !who.container_id.is_empty() {
            comment += &format!(" container {}", who.container_id);
        }
        if !who.pod_uid.is_empty() {
            comment += &format!(" pod {}", who.pod_uid);
        }
    }
    comment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_name_the_process_and_its_container() {
        let m = ConnMeta {
            tgid: 42,
            tid: 43,
            fd: 7,
            comm: crate::decode::Comm::new("nginx"),
            thread: crate::decode::Comm::new("nginx"),
        };
        assert_eq!(comment(&m, None), "pid 42 tid 43 comm nginx fd 7");
        // A thread of another name is named too.
        let worker = ConnMeta {
            thread: crate::decode::Comm::new("worker 3"),
            ..m
        };
        assert_eq!(
            comment(&worker, None),
            "pid 42 tid 43 comm nginx thread worker 3 fd 7"
        );
        let who = Identity {
            container_id: "c23cf607e723".into(),
            pod_uid: String::new(),
            ns_pid: 5,
        };
        assert_eq!(
            comment(&m, Some(&who)),
            "pid 42 tid 43 comm nginx fd 7 ns_pid 5 container c23cf607e723"
        );
    }

    #[test]
    fn a_frame_has_the_addresses_and_numbers_it_was_given() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let f = frame(a, b, 7, 9, PSH | ACK, b"hello", 1);
        assert_eq!(f.len(), 14 + 20 + 20 + 5);
        assert_eq!(&f[26..30], &[127, 0, 0, 1]);
        assert_eq!(&f[30..34], &[127, 0, 0, 2]);
        assert_eq!(&f[34..36], &8080u16.to_be_bytes());
        assert_eq!(&f[38..42], &7u32.to_be_bytes());
        assert_eq!(&f[42..46], &9u32.to_be_bytes());
        assert_eq!(&f[54..], b"hello");
        // Each checksum checks, as a reader of the file verifies it.
        let packet = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = packet.net else {
            panic!("not IPv4")
        };
        assert_eq!(
            ip.header().header_checksum(),
            ip.header().to_header().calc_header_checksum()
        );
        assert_eq!(ip.header().identification(), 1);
        assert!(ip.header().dont_fragment());
        let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else {
            panic!("not TCP")
        };
        assert!(tcp.psh() && tcp.ack() && !tcp.syn() && !tcp.fin());
        assert_eq!(
            tcp.checksum(),
            tcp.calc_checksum_ipv4(ip.header().source(), ip.header().destination())
                .unwrap()
        );
        // IPv6: the TCP checksum over its pseudo-header.
        let c: SocketAddr = "[::1]:8080".parse().unwrap();
        let f = frame(c, b, 1, 0, SYN, b"", 2);
        assert_eq!(f.len(), 14 + 40 + 20);
        let packet = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = packet.net else {
            panic!("not IPv6")
        };
        assert_eq!(
            &ip.header().destination()[10..],
            &[0xff, 0xff, 127, 0, 0, 2]
        );
        let Some(etherparse::TransportSlice::Tcp(tcp)) = packet.transport else {
            panic!("not TCP")
        };
        assert!(tcp.syn() && !tcp.ack());
        assert_eq!(
            tcp.checksum(),
            tcp.calc_checksum_ipv6(ip.header().source(), ip.header().destination())
                .unwrap()
        );
    }
}
