//! What /proc says about the traced processes: whether they live, their descendants, and the TCP
//! connections they already have open when tracing starts.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::decode::Role;

/// Whether process `pid` still exists.
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Processes descended from `roots` (children, their children, ...).
pub fn descendants(roots: &[u32]) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parent_of: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_pid(pid)?)))
        .collect();
    let mut found: Vec<u32> = Vec::new();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parent_of {
            if parent == p && !roots.contains(&child) && !found.contains(&child) {
                found.push(child);
                frontier.push(child);
            }
        }
    }
    found
}

/// The parent PID in /proc/PID/stat (the field after the parenthesised command name).
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// A TCP connection a process had open when tracing started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenConn {
    pub fd: i32,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Server when its local port is one that something in its network namespace listens on.
    pub role: Role,
}

const TCP_ESTABLISHED: u8 = 0x01;
const TCP_LISTEN: u8 = 0x0A;

/// One line of /proc/net/tcp{,6}: local, remote, state, inode.
fn parse_tcp_line(line: &str) -> Option<(SocketAddr, SocketAddr, u8, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let addr = |s: &str| -> Option<SocketAddr> {
        let (ip, port) = s.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        // The kernel prints each 32-bit word of the address in host byte order.
        let words: Vec<u32> = (0..ip.len() / 8)
            .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).map(u32::from_be))
            .collect::<Result<_, _>>()
            .ok()?;
        let ip = match words.as_slice() {
            [a] => IpAddr::V4(Ipv4Addr::from(a.to_be_bytes())),
            [a, b, c, d] => {
                let mut bytes = [0u8; 16];
                for (i, w) in [a, b, c, d].iter().enumerate() {
                    bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
                }
                IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical()
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    };
    Some((
        addr(f.get(1)?)?,
        addr(f.get(2)?)?,
        u8::from_str_radix(f.get(3)?, 16).ok()?,
        f.get(9)?.parse().ok()?,
    ))
}

/// The established TCP connections process `pid` has open, by fd.
pub fn open_connections(pid: u32) -> Vec<OpenConn> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let fd_of: HashMap<u64, i32> = fds
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some((inode.parse().ok()?, fd))
        })
        .collect();
    let mut rows = Vec::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            rows.extend(text.lines().skip(1).filter_map(parse_tcp_line));
        }
    }
    let listening: HashSet<u16> = rows
        .iter()
        .filter(|r| r.2 == TCP_LISTEN)
        .map(|r| r.0.port())
        .collect();
    rows.iter()
        .filter(|r| r.2 == TCP_ESTABLISHED)
        .filter_map(|&(local, peer, _, inode)| {
            Some(OpenConn {
                fd: *fd_of.get(&inode)?,
                local,
                peer,
                role: if listening.contains(&local.port()) {
                    Role::Server
                } else {
                    Role::Client
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp_lines() {
        let v4 = "   1: 0100007F:1F90 0200007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(
            parse_tcp_line(v4),
            Some((
                "127.0.0.1:8080".parse().unwrap(),
                "127.0.0.2:50000".parse().unwrap(),
                TCP_ESTABLISHED,
                12345
            ))
        );
        let v6 = "   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1";
        let (local, peer, _, inode) = parse_tcp_line(v6).unwrap();
        assert_eq!(local, "[::1]:8080".parse().unwrap());
        assert_eq!(peer, "127.0.0.1:54321".parse().unwrap());
        assert_eq!(inode, 777);
        assert_eq!(
            parse_tcp_line("  sl  local_address rem_address   st tx_queue"),
            None
        );
    }

    #[test]
    fn finds_this_process_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        let open = open_connections(std::process::id());
        let find = |local: SocketAddr| open.iter().find(|c| c.local == local).copied();
        let c = find(client.local_addr().unwrap()).expect("client side found");
        assert_eq!(
            (c.role, c.peer),
            (Role::Client, listener.local_addr().unwrap())
        );
        let s = find(server_side.local_addr().unwrap()).expect("server side found");
        assert_eq!(s.role, Role::Server);
        use std::os::fd::AsRawFd;
        assert_eq!(s.fd, server_side.as_raw_fd());
    }
}
