//! What /proc says about the traced processes, through the procfs crate: whether they live,
//! their descendants, the TCP connections they already have open when tracing starts, and
//! which Unix sockets still exist.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, SocketAddrV4};

use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

use crate::container::Identity;
use crate::decode::Role;

/// The kernel's command name of a program called `name`: its first 15 bytes.
pub fn comm_of(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(15)]
}

/// The processes (not threads) whose command name or executable's base name is one of `names`,
/// but for this one.
pub fn named(names: &[String]) -> Vec<u32> {
    if names.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| {
        let p = p.ok()?;
        let pid = u32::try_from(p.pid).ok().filter(|&pid| pid != me)?;
        let comm = p.stat().ok()?.comm;
        let exe = p.exe().ok();
        let base = exe
            .as_ref()
            .and_then(|e| e.file_name())
            .map(|b| b.to_string_lossy().into_owned());
        names
            .iter()
            .any(|n| comm.as_bytes() == comm_of(n) || base.as_deref() == Some(n.as_str()))
            .then_some(pid)
    })
    .collect()
}

/// The processes in the container whose id starts with `id` (lower-case hex), with the full
/// ids found (one, unless the prefix is ambiguous).
pub fn in_container(id: &str) -> (Vec<u32>, Vec<String>) {
    let mut pids = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let Ok(all) = procfs::process::all_processes() else {
        return (pids, ids);
    };
    for p in all.flatten() {
        let Ok(pid) = u32::try_from(p.pid) else {
            continue;
        };
        let cgroups = p.cgroups().map(|c| c.0).unwrap_or_default();
        if let Some((full, _)) =
            crate::container::container_of(cgroups.iter().map(|c| c.pathname.as_str()))
        {
            if full.starts_with(id) {
                pids.push(pid);
                if !ids.contains(&full) {
                    ids.push(full);
                }
            }
        }
    }
    (pids, ids)
}

/// The cgroups of process `pid`, as BPF sees them: the inode number of each of its cgroup
/// directories (cgroup v2, and each cgroup v1 hierarchy), found through this mount namespace's
/// cgroup mounts, with its hierarchy's id (0 for v2): each hierarchy numbers its own, so
/// that only the pair names one.
pub fn cgroup_inodes(pid: u32) -> Vec<(u64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let Some(cgroups) = process(pid).and_then(|p| p.cgroups().ok()) else {
        return Vec::new();
    };
    let Ok(mounts) = procfs::process::Process::myself().and_then(|p| p.mountinfo()) else {
        return Vec::new();
    };
    let mut inodes = Vec::new();
    for cgroup in &cgroups.0 {
        let (controllers, path) = (&cgroup.controllers, cgroup.pathname.as_str());
        let mount = mounts.0.iter().find(|m| {
            if controllers.is_empty() {
                m.fs_type == "cgroup2"
            } else {
                // A v1 hierarchy's mount names its controllers (or name=) in its options.
                m.fs_type == "cgroup" && controllers.iter().all(|c| m.super_options.contains_key(c))
            }
        });
        let Some(mount) = mount else { continue };
        // The mount's root is the hierarchy's path it shows (/ on the host).
        let root = mount.root.trim_end_matches('/');
        let Some(rel) = path.strip_prefix(root) else {
            continue;
        };
        let dir = mount.mount_point.join(rel.trim_start_matches('/'));
        if let Ok(meta) = std::fs::metadata(&dir) {
            if !inodes.contains(&(meta.ino(), cgroup.hierarchy)) {
                inodes.push((meta.ino(), cgroup.hierarchy));
            }
        }
    }
    inodes
}

/// Process `pid`'s container and PID in its own namespace (empty when on the host, or gone).
pub fn identity(pid: u32) -> Identity {
    let Some(p) = process(pid) else {
        return Identity::default();
    };
    let cgroups = p.cgroups().map(|c| c.0).unwrap_or_default();
    let nspid = p.status().ok().and_then(|s| s.nspid).unwrap_or_default();
    Identity::of(cgroups.iter().map(|c| c.pathname.as_str()), &nspid)
}

/// Process `pid` in /proc, if it is there.
fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

/// Whether process `pid` still exists.
pub fn process_alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|pid| Process::new(pid).is_ok())
}

/// Whether process `pid` has exited and waits for its parent to reap it.
pub fn is_zombie(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(|p| Process::new(p).ok()?.stat().ok())
        .is_some_and(|stat| stat.state == 'Z')
}

/// Processes descended from `roots` (children, their children, ...).
pub fn descendants(roots: &[u32]) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    // (pid, parent) of every process that is still there when read.
    let parent_of: Vec<(u32, u32)> = all
        .filter_map(|p| {
            let stat = p.ok()?.stat().ok()?;
            Some((
                u32::try_from(stat.pid).ok()?,
                u32::try_from(stat.ppid).ok()?,
            ))
        })
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

/// A TCP connection a process had open when tracing started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenConn {
    pub fd: i32,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Server when its local port is one that something in its network namespace listens on.
    pub role: Role,
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, a.port())),
            None => addr,
        },
        v4 => v4,
    }
}

/// The inodes of the Unix sockets in process `pid`'s network namespace (/proc/PID/net/unix);
/// None when the process is gone.
pub fn unix_socket_inodes(pid: u32) -> Option<HashSet<u64>> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let sockets = process.unix().ok()?;
    Some(sockets.into_iter().map(|s| s.inode).collect())
}

/// The established TCP connections process `pid` has open, by fd. The tables are those of the
/// process's network namespace (/proc/PID/net/tcp{,6}), a container's included.
pub fn open_connections(pid: u32) -> Vec<OpenConn> {
    let Some(process) = i32::try_from(pid).ok().and_then(|p| Process::new(p).ok()) else {
        return Vec::new();
    };
    let Ok(fds) = process.fd() else {
        return Vec::new();
    };
    let fd_of: HashMap<u64, i32> = fds
        .filter_map(|fd| match fd.ok()? {
            procfs::process::FDInfo {
                fd,
                target: FDTarget::Socket(inode),
                ..
            } => Some((inode, fd)),
            _ => None,
        })
        .collect();
    let mut rows = process.tcp().unwrap_or_default();
    rows.extend(process.tcp6().unwrap_or_default());
    let listening: HashSet<u16> = rows
        .iter()
        .filter(|r| r.state == TcpState::Listen)
        .map(|r| r.local_address.port())
        .collect();
    rows.iter()
        .filter(|r| r.state == TcpState::Established)
        .filter_map(|r| {
            Some(OpenConn {
                fd: *fd_of.get(&r.inode)?,
                local: canonical(r.local_address),
                peer: canonical(r.remote_address),
                role: if listening.contains(&r.local_address.port()) {
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
    fn ipv4_mapped_addresses_are_shown_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:80".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:80".parse().unwrap());
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn a_child_that_exited_unreaped_is_a_zombie() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "{pid} never became a zombie"
            );
            std::thread::yield_now();
        }
        assert!(process_alive(pid));
        child.wait().unwrap();
        assert!(!is_zombie(pid) && !process_alive(pid));
    }

    #[test]
    fn finds_this_process_descendants() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let found = descendants(&[std::process::id()]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found.contains(&child.id()), "{found:?}");
        assert!(process_alive(std::process::id()));
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
