//! What /proc says of the sockets and threads of the processes under test.

use super::*;

/// The TCP sockets of this network namespace (/proc/net/tcp and tcp6), through procfs.
pub fn tcp_sockets() -> Vec<TcpNetEntry> {
    let mut sockets = procfs::net::tcp().unwrap_or_default();
    sockets.extend(procfs::net::tcp6().unwrap_or_default());
    sockets
}

/// (local port, remote port) of a socket.
pub fn ports(s: &TcpNetEntry) -> (u16, u16) {
    (s.local_address.port(), s.remote_address.port())
}

/// The descriptor through which `pid` holds the socket with this inode, if it does.
pub fn socket_fd(pid: u32, inode: u64) -> Option<i32> {
    let process = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    process
        .fd()
        .ok()?
        .filter_map(Result::ok)
        .find_map(|fd| match fd.target {
            FDTarget::Socket(i) if i == inode => Some(fd.fd),
            _ => None,
        })
}

/// Whether `pid` holds a socket listening on `port`, in its own network namespace (a
/// container's included).
pub fn listens(pid: u32, port: u16) -> bool {
    let Some(process) = i32::try_from(pid)
        .ok()
        .and_then(|p| procfs::process::Process::new(p).ok())
    else {
        return false;
    };
    let mut sockets = process.tcp().unwrap_or_default();
    sockets.extend(process.tcp6().unwrap_or_default());
    sockets.iter().any(|s| {
        s.state == TcpState::Listen
            && s.local_address.port() == port
            && socket_fd(pid, s.inode).is_some()
    })
}

/// How many connections to its port `port` process `pid` still holds open.
pub fn connections_held(pid: u32, port: u16) -> usize {
    tcp_sockets()
        .iter()
        .filter(|s| {
            s.state != TcpState::Listen
                && s.local_address.port() == port
                && socket_fd(pid, s.inode).is_some()
        })
        .count()
}

/// How many threads of `pid` sleep in one of `syscalls` (numbers, such as libc::SYS_recvfrom).
pub fn threads_blocked_in(pid: u32, syscalls: &[libc::c_long]) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            let dir = task.path();
            // "NR ARGS... SP PC" while in a syscall, "running" while running.
            let in_call = std::fs::read_to_string(dir.join("syscall")).is_ok_and(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|nr| nr.parse::<libc::c_long>().ok())
                    .is_some_and(|nr| syscalls.contains(&nr))
            });
            let sleeping = std::fs::read_to_string(dir.join("stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|i| stat[i + 1..].split_whitespace().next())
                    == Some("S")
            });
            in_call && sleeping
        })
        .count()
}

/// Whether process `pid` has ended: gone, or a zombie its parent has not reaped yet.
pub fn has_exited(pid: u32) -> bool {
    procfs::process::Process::new(pid as i32)
        .and_then(|p| p.stat())
        .map_or(true, |stat| stat.state == 'Z')
}

/// The processes `pid` forked (and theirs), from the library's own /proc reading.
pub fn children_of(pid: u32) -> Vec<u32> {
    http_trace::proc_scan::descendants(&[pid])
}
