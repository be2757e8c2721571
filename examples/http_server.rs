//! A small HTTP/1.1 server to trace: a thread per connection, keep-alive, pipelining, bodies by
//! Content-Length or chunked encoding. `--recv` and `--send` pick the syscalls, so that each one
//! http-trace follows can be exercised: read, recv (recvfrom), readv, preadv2, recvmsg or recvmmsg,
//! or peek (recv and recvmsg with MSG_PEEK before each recv); write, send (sendto), writev,
//! pwritev2, sendmsg or sendmmsg.
//!
//!     cargo run --example http_server -- --port 8080 --recv read --send writev
//!
//! Vectored calls use two iovecs (a send's head and body; a receive's buffer in halves), or with
//! `--iovecs K`, K of mixed sizes (0, 1, 7, 0, 30, 3 bytes, over and over, the last one taking the
//! rest), so that calls of many iovecs, empty ones among them, can be exercised. recvmmsg
//! receives into messages of three of them (one of the two halves); sendmmsg sends a head and
//! body as two messages.
//!
//! It prints `listening on ADDR` once it accepts connections, and answers `200 OK` with a line
//! naming the method, target and body size it read, except on these targets:
//! - `/r/chunked`: the same line in a chunked body;
//! - `/r/file`: a 5000-byte body sent with sendfile(2);
//! - `/r/splice/N`: a body of N bytes ("s" repeated) moved into the socket with splice(2) from a
//!   pipe the server fills; `/r/vmsplice/N` and `/r/tee/N`: the same, the pipe filled with
//!   vmsplice(2), or by tee(2) from another pipe;
//! - `/r/close`: a body without length, ended by closing the connection;
//! - `/r/status/N`: status N, with no body for 204 and 304;
//! - `/r/bytes/N`: a body of N bytes ("0123456789" repeated);
//! - `/r/iovecs/K/N`: the same, head and body sent with one writev (sendmsg with `--send
//!   sendmsg`) of K iovecs of mixed sizes (see `--iovecs`);
//! - `/r/mmsg/M/K/N`: the same, sent with one sendmmsg of M messages (at most 1,024) over K
//!   iovecs (at least M), message i taking iovecs i*K/M to (i+1)*K/M;
//! - `/r/slow`: the answer after 3 s;
//! - `/r/sleep/MS`: the answer after MS milliseconds (at most 10 s);
//! - `/r/upstream/PORT/PATH`: the answer of GET /PATH on 127.0.0.1:PORT, asked on a new connection
//!   (the server is then a client too).
//!
//! HEAD gets the head of the GET answer; `Expect: 100-continue` gets a `100 Continue` first.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// --iovecs: how many iovecs vectored calls spread their bytes over (None: two).
static IOVECS: OnceLock<Option<usize>> = OnceLock::new();

/// The sizes of `k` iovecs over `len` bytes: a mix, empty ones included, the last the rest.
fn spread(len: usize, k: usize) -> Vec<usize> {
    const PATTERN: [usize; 6] = [0, 1, 7, 0, 30, 3];
    let mut left = len;
    let mut sizes: Vec<usize> = (0..k.saturating_sub(1))
        .map(|i| {
            let n = PATTERN[i % PATTERN.len()].min(left);
            left -= n;
            n
        })
        .collect();
    sizes.push(left);
    sizes
}

/// `bytes` as `k` iovecs (`spread`), or as two, the first of `two` bytes, when `k` is None.
fn iovecs(bytes: &mut [u8], two: usize, k: Option<usize>) -> Vec<libc::iovec> {
    let sizes = match k {
        Some(k) => spread(bytes.len(), k),
        None => vec![two.min(bytes.len()), bytes.len() - two.min(bytes.len())],
    };
    let mut rest = bytes;
    sizes
        .into_iter()
        .map(|n| {
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n);
            rest = tail;
            libc::iovec {
                iov_base: piece.as_mut_ptr().cast(),
                iov_len: n,
            }
        })
        .collect()
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Syscall {
    Read,
    Recv,
    Readv,
    /// preadv2(2) at offset -1, the file's position: readv with flags.
    Preadv2,
    Recvmsg,
    /// recvmmsg(2) with MSG_WAITFORONE, into messages of three iovecs each.
    Recvmmsg,
    /// Peek with recv, then with recvmsg, then receive with recv: as servers that sniff.
    Peek,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SendCall {
    Write,
    Send,
    Writev,
    /// pwritev2(2) at offset -1, the file's position: writev with flags.
    Pwritev2,
    Sendmsg,
    /// sendmmsg(2): the head and body as two messages.
    Sendmmsg,
    /// write(2) into a pipe, then splice(2) from the pipe into the socket: the bytes are never
    /// in a send call's buffer (a relay's way, with the server writing the pipe itself).
    Splice,
}

/// Send `bytes` to socket `fd` through a pipe: written into it, spliced out of it, a pipe's
/// worth (64 KiB) at a time.
fn send_spliced(fd: i32, bytes: &[u8]) -> std::io::Result<()> {
    let mut pipe = [0i32; 2];
    // SAFETY: `pipe` has room for the two fds pipe2 writes.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [rd, wr] = pipe;
    let result = (|| {
        for piece in bytes.chunks(64 << 10) {
            // SAFETY: `piece` is valid for its length.
            let n = unsafe { libc::write(wr, piece.as_ptr().cast(), piece.len()) };
            if n != piece.len() as isize {
                return Err(std::io::Error::last_os_error());
            }
            let mut left = piece.len();
            while left > 0 {
                // SAFETY: no offsets (null): both ends are a pipe and a socket.
                let m = unsafe {
                    libc::splice(rd, std::ptr::null_mut(), fd, std::ptr::null_mut(), left, 0)
                };
                if m <= 0 {
                    return Err(std::io::Error::last_os_error());
                }
                left -= m as usize;
            }
        }
        Ok(())
    })();
    // SAFETY: the two fds are ours, closed once.
    unsafe {
        libc::close(rd);
        libc::close(wr);
    }
    result
}

/// Send `head` and `body`, all of it, with the chosen syscall (vectored ones send both at once).
fn send_all(stream: &TcpStream, how: SendCall, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    send_over(stream, how, head, body, IOVECS.get().copied().flatten(), 2)
}

/// sendmmsg(2) of `iov` as `m` messages (message i has iovecs i*K/m to (i+1)*K/m); the bytes
/// sent (or -1).
///
/// # Safety
/// Every iovec of `iov` must point at memory valid for its length.
unsafe fn send_messages(fd: i32, iov: &[libc::iovec], m: usize) -> isize {
    let k = iov.len();
    let m = m.clamp(1, k.max(1));
    let mut msgs: Vec<libc::mmsghdr> = (0..m)
        .map(|i| {
            // SAFETY: mmsghdr is plain data, for which zeroes are a valid value.
            let mut msg: libc::mmsghdr = unsafe { std::mem::zeroed() };
            let (from, to) = (i * k / m, (i + 1) * k / m);
            msg.msg_hdr.msg_iov = iov[from..to].as_ptr().cast_mut();
            msg.msg_hdr.msg_iovlen = to - from;
            msg
        })
        .collect();
    // SAFETY: the messages point into `iov`, valid per the caller.
    let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), m as u32, 0) };
    if n < 0 {
        return -1;
    }
    msgs[..n as usize].iter().map(|m| m.msg_len as isize).sum()
}

/// As `send_all`, a vectored call's bytes over `k` iovecs (two when None), sendmmsg's as `m`
/// messages.
fn send_over(
    stream: &TcpStream,
    how: SendCall,
    head: &[u8],
    body: &[u8],
    k: Option<usize>,
    m: usize,
) -> std::io::Result<()> {
    let fd = stream.as_raw_fd();
    let mut bytes = [head, body].concat();
    if matches!(how, SendCall::Splice) {
        return send_spliced(fd, &bytes);
    }
    let mut sent = 0;
    while sent < bytes.len() {
        let iov = iovecs(&mut bytes[sent..], head.len().saturating_sub(sent), k);
        let count = iov.len();
        let rest = &bytes[sent..];
        // SAFETY: every pointer points into `bytes` or `iov`, which outlive the calls, with
        // their lengths.
        let n = unsafe {
            match how {
                SendCall::Write => libc::write(fd, rest.as_ptr().cast(), rest.len()),
                SendCall::Send => libc::send(fd, rest.as_ptr().cast(), rest.len(), 0),
                SendCall::Writev => libc::writev(fd, iov.as_ptr(), count as i32),
                SendCall::Pwritev2 => libc::pwritev2(fd, iov.as_ptr(), count as i32, -1, 0),
                SendCall::Sendmsg => {
                    let mut msg: libc::msghdr = std::mem::zeroed();
                    msg.msg_iov = iov.as_ptr().cast_mut();
                    msg.msg_iovlen = count;
                    libc::sendmsg(fd, &msg, 0)
                }
                SendCall::Splice => unreachable!("sent by send_spliced"),
                SendCall::Sendmmsg => send_messages(fd, &iov, m),
            }
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        sent += n as usize;
    }
    Ok(())
}

/// GET `path` from 127.0.0.1:`port` on a new connection; the answer's status and body.
fn fetch(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut up = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        up,
        "GET /{path} HTTP/1.1\r\nHost: upstream\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut up, &mut answer)?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&answer) {
        Ok(httparse::Status::Complete(n)) => Ok((resp.code.unwrap_or(502), answer[n..].to_vec())),
        _ => Ok((502, Vec::new())),
    }
}

/// The body of /r/bytes/N: "0123456789" repeated.
fn digits(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'0' + (i % 10) as u8).collect()
}

/// The file /r/file sends with sendfile(2).
fn body_file() -> std::fs::File {
    let path = std::env::temp_dir().join(format!("http_server_body_{}", std::process::id()));
    std::fs::write(&path, vec![b'f'; 5000]).expect("write the /r/file body");
    let file = std::fs::File::open(&path).expect("open the /r/file body");
    let _ = std::fs::remove_file(&path);
    file
}

/// How `splice_body` puts the bytes into the pipe it splices into the socket.
#[derive(Clone, Copy)]
enum Fill {
    Write,
    /// vmsplice(2): the pipe takes the user pages.
    Vmsplice,
    /// write(2) into a first pipe, tee(2) into the second, which is spliced (the first drained).
    Tee,
}

/// A pipe's two ends (read, write).
fn pipe_ends() -> std::io::Result<[i32; 2]> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fds)
}

/// Put `bytes` into the pipe whose write end is `fds[1]`, as `fill` says (`first`: tee's first
/// pipe).
fn fill_pipe(fds: [i32; 2], first: [i32; 2], bytes: &[u8], fill: Fill) -> std::io::Result<()> {
    let len = bytes.len();
    // SAFETY: `bytes` outlives the calls and holds `len` bytes; the fds are the pipes' ends.
    let put = unsafe {
        match fill {
            Fill::Write => libc::write(fds[1], bytes.as_ptr().cast(), len),
            Fill::Vmsplice => {
                let iov = libc::iovec {
                    iov_base: bytes.as_ptr().cast_mut().cast(),
                    iov_len: len,
                };
                libc::vmsplice(fds[1], &iov, 1, 0)
            }
            Fill::Tee => {
                if libc::write(first[1], bytes.as_ptr().cast(), len) != len as isize {
                    return Err(std::io::Error::last_os_error());
                }
                let teed = libc::tee(first[0], fds[1], len, 0);
                let mut sink = vec![0u8; len];
                if libc::read(first[0], sink.as_mut_ptr().cast(), len) != len as isize {
                    return Err(std::io::Error::last_os_error());
                }
                teed
            }
        }
    };
    if put != len as isize {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A body of `n` bytes ("s" repeated) moved into the socket with splice(2) from a pipe the
/// server fills as `fill` says, 16 KiB at a time.
fn splice_body(stream: &TcpStream, mut n: usize, fill: Fill) -> std::io::Result<()> {
    let fds = pipe_ends()?;
    let first = pipe_ends()?;
    let piece = [b's'; 16384];
    let result = (|| {
        while n > 0 {
            let len = n.min(piece.len());
            fill_pipe(fds, first, &piece[..len], fill)?;
            let mut left = len;
            while left > 0 {
                // SAFETY: both descriptors are open; null offsets are what pipes and sockets take.
                let moved = unsafe {
                    libc::splice(
                        fds[0],
                        std::ptr::null_mut(),
                        stream.as_raw_fd(),
                        std::ptr::null_mut(),
                        left,
                        0,
                    )
                };
                if moved <= 0 {
                    return Err(std::io::Error::last_os_error());
                }
                left -= moved as usize;
            }
            n -= len;
        }
        Ok(())
    })();
    // SAFETY: the descriptors came from pipe(2) above and are closed once.
    unsafe {
        for fd in fds.into_iter().chain(first) {
            libc::close(fd);
        }
    }
    result
}

/// Answer one request; false when the connection is to be closed.
fn answer(
    stream: &TcpStream,
    how: SendCall,
    method: &str,
    target: &str,
    text: &str,
) -> std::io::Result<bool> {
    let head_only = method == "HEAD";
    let reply = |status: &str, extra: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        );
        send_all(
            stream,
            how,
            head.as_bytes(),
            if head_only { b"" } else { body },
        )
    };
    if target.starts_with("/r/chunked") {
        let body = format!("{:x}\r\n{text}\r\n3\r\nend\r\n0\r\n\r\n", text.len());
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        send_all(
            stream,
            how,
            head.as_bytes(),
            if head_only { b"" } else { body.as_bytes() },
        )?;
    } else if target.starts_with("/r/file") {
        let file = body_file();
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
        send_all(stream, how, head.as_bytes(), b"")?;
        if !head_only {
            let mut left = 5000usize;
            while left > 0 {
                // SAFETY: both fds are open for the duration of the call; a null offset uses the
                // file's own position.
                let n = unsafe {
                    libc::sendfile(
                        stream.as_raw_fd(),
                        file.as_raw_fd(),
                        std::ptr::null_mut(),
                        left,
                    )
                };
                if n <= 0 {
                    return Err(std::io::Error::last_os_error());
                }
                left -= n as usize;
            }
        }
    } else if let Some((fill, n)) = [
        ("/r/splice/", Fill::Write),
        ("/r/vmsplice/", Fill::Vmsplice),
        ("/r/tee/", Fill::Tee),
    ]
    .iter()
    .find_map(|(prefix, fill)| Some((*fill, target.strip_prefix(prefix)?)))
    {
        let n: usize = n.parse().unwrap_or(0);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
        send_all(stream, how, head.as_bytes(), b"")?;
        if !head_only {
            splice_body(stream, n, fill)?;
        }
    } else if target.starts_with("/r/close") {
        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
        send_all(stream, how, head.as_bytes(), text.as_bytes())?;
        return Ok(false);
    } else if let Some(code) = target.strip_prefix("/r/status/") {
        let status = format!("{code} Status {code}");
        let body: &[u8] = if code == "204" || code == "304" {
            b""
        } else {
            text.as_bytes()
        };
        if body.is_empty() {
            let head = format!("HTTP/1.1 {status}\r\n\r\n");
            send_all(stream, how, head.as_bytes(), b"")?;
        } else {
            reply(&status, "", body)?;
        }
    } else if let Some(rest) = target.strip_prefix("/r/iovecs/") {
        // /r/iovecs/K/N: N body bytes as /r/bytes/N, head and body in one vectored call of K
        // iovecs (writev unless --send sendmsg or pwritev2).
        let (k, n) = rest.split_once('/').unwrap_or((rest, "0"));
        let k: usize = k.parse().unwrap_or(1).clamp(1, 1024);
        let n: usize = n.parse().unwrap_or(0);
        let body = digits(n);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
        let how = match how {
            SendCall::Sendmsg | SendCall::Pwritev2 => how,
            _ => SendCall::Writev,
        };
        send_over(stream, how, head.as_bytes(), &body, Some(k), 1)?;
    } else if let Some(rest) = target.strip_prefix("/r/mmsg/") {
        // /r/mmsg/M/K/N: N body bytes as /r/bytes/N, head and body in one sendmmsg of M
        // messages over K iovecs.
        let mut nums = rest.split('/').map(|v| v.parse::<usize>().unwrap_or(1));
        let m = nums.next().unwrap_or(1).clamp(1, 1024);
        let k = nums.next().unwrap_or(m).clamp(m, 4096);
        let n = nums.next().unwrap_or(0);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
        send_over(
            stream,
            SendCall::Sendmmsg,
            head.as_bytes(),
            &digits(n),
            Some(k),
            m,
        )?;
    } else if let Some(n) = target.strip_prefix("/r/bytes/") {
        // A body of n bytes, "0123456789" repeated: big responses, one send call each.
        let n: usize = n.parse().unwrap_or(0);
        reply("200 OK", "", &digits(n))?;
    } else if let Some(ms) = target.strip_prefix("/r/sleep/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(ms.min(10_000)));
        reply("200 OK", "", text.as_bytes())?;
    } else if target.starts_with("/r/slow") {
        std::thread::sleep(std::time::Duration::from_secs(3));
        reply("200 OK", "", text.as_bytes())?;
    } else if let Some(rest) = target.strip_prefix("/r/upstream/") {
        let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
        match port.parse().map(|p| fetch(p, path)) {
            Ok(Ok((status, body))) => reply(&format!("{status} From Upstream"), "", &body)?,
            _ => reply("502 Bad Gateway", "", b"")?,
        }
    } else {
        reply("200 OK", "", text.as_bytes())?;
    }
    Ok(true)
}

/// recvmmsg(2) with MSG_WAITFORONE into `iov` (over `buf`), three iovecs a message; the bytes
/// received, moved together at the start of `buf`.
fn receive_messages(fd: i32, buf: &mut [u8], iov: &mut [libc::iovec]) -> std::io::Result<usize> {
    let base = buf.as_ptr() as usize;
    let mut msgs: Vec<libc::mmsghdr> = iov
        .chunks_mut(3)
        .map(|group| {
            // SAFETY: mmsghdr is plain data, for which zeroes are a valid value.
            let mut msg: libc::mmsghdr = unsafe { std::mem::zeroed() };
            msg.msg_hdr.msg_iov = group.as_mut_ptr();
            msg.msg_hdr.msg_iovlen = group.len();
            msg
        })
        .collect();
    let starts: Vec<usize> = iov
        .chunks(3)
        .map(|group| group[0].iov_base as usize - base)
        .collect();
    let count = msgs.len() as u32;
    // SAFETY: the messages' iovecs point into `buf`, which outlives the call, with their lengths.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            count,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // A message's bytes start at its first iovec; the next message's may not follow them.
    let mut end = 0;
    for (msg, start) in msgs.iter().zip(starts).take(n as usize) {
        let len = msg.msg_len as usize;
        buf.copy_within(start..start + len, end);
        end += len;
    }
    Ok(end)
}

fn receive(stream: &TcpStream, how: Syscall, buf: &mut [u8]) -> std::io::Result<usize> {
    let fd = stream.as_raw_fd();
    let ptr = buf.as_mut_ptr().cast::<libc::c_void>();
    let len = buf.len();
    // Two halves, so that vectored receives really split the bytes (or --iovecs K).
    let mut iov = iovecs(buf, len / 2, IOVECS.get().copied().flatten());
    let count = iov.len();
    // SAFETY: every pointer passed below points into `buf` or `iov`, which outlive the calls,
    // and the lengths given are theirs.
    let n = unsafe {
        match how {
            Syscall::Read => libc::read(fd, ptr, len),
            Syscall::Recv => libc::recv(fd, ptr, len, 0),
            Syscall::Readv => libc::readv(fd, iov.as_ptr(), count as i32),
            Syscall::Preadv2 => libc::preadv2(fd, iov.as_ptr(), count as i32, -1, 0),
            Syscall::Recvmsg => {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = iov.as_mut_ptr();
                msg.msg_iovlen = count;
                libc::recvmsg(fd, &mut msg, 0)
            }
            Syscall::Recvmmsg => return receive_messages(fd, buf, &mut iov),
            Syscall::Peek => {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = iov.as_mut_ptr();
                msg.msg_iovlen = count;
                if libc::recv(fd, ptr, len, libc::MSG_PEEK) <= 0
                    || libc::recvmsg(fd, &mut msg, libc::MSG_PEEK) <= 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                libc::recv(fd, ptr, len, 0)
            }
        }
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Where the body that starts at `start` ends, if it is all in `buf`; and its decoded size.
fn body_end(
    buf: &[u8],
    start: usize,
    headers: &[httparse::Header],
) -> Option<Result<(usize, usize), ()>> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if header("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        let (mut pos, mut size) = (start, 0);
        loop {
            let line_end = pos + buf.get(pos..)?.windows(2).position(|w| w == b"\r\n")?;
            let line = std::str::from_utf8(&buf[pos..line_end]).ok()?;
            let Ok(n) = usize::from_str_radix(line.split(';').next()?.trim(), 16) else {
                return Some(Err(()));
            };
            pos = line_end + 2;
            if n == 0 {
                // Trailers end with an empty line.
                loop {
                    let end = pos + buf.get(pos..)?.windows(2).position(|w| w == b"\r\n")?;
                    let empty = end == pos;
                    pos = end + 2;
                    if empty {
                        return Some(Ok((pos, size)));
                    }
                }
            }
            if buf.len() < pos + n + 2 {
                return None;
            }
            size += n;
            pos += n + 2;
        }
    }
    let len = match header("content-length") {
        Some(v) => match v.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return Some(Err(())),
        },
        None => 0,
    };
    (buf.len() >= start + len).then_some(Ok((start + len, len)))
}

fn has_header(headers: &[httparse::Header], name: &str, value: &str) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case(name) && h.value.eq_ignore_ascii_case(value.as_bytes())
    })
}

fn serve(stream: TcpStream, how: Syscall, send: SendCall) {
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    // Whether the request being read got its 100 Continue.
    let mut continued = false;
    loop {
        // Answer every complete request in the buffer, in order.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let head_len = match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    let _ = send_all(&stream, send, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", b"");
                    return;
                }
            };
            let (end, size) = match body_end(&buf, head_len, req.headers) {
                None => {
                    if has_header(req.headers, "expect", "100-continue") && !continued {
                        continued = true;
                        let _ = send_all(&stream, send, b"HTTP/1.1 100 Continue\r\n\r\n", b"");
                    }
                    break;
                }
                Some(Ok(v)) => v,
                Some(Err(())) => return,
            };
            let text = format!(
                "{} {} body={}\n",
                req.method.unwrap_or(""),
                req.path.unwrap_or(""),
                size
            );
            let close = has_header(req.headers, "connection", "close");
            continued = false;
            let method = req.method.unwrap_or("").to_string();
            let target = req.path.unwrap_or("").to_string();
            match answer(&stream, send, &method, &target, &text) {
                Ok(true) if !close => {}
                _ => return,
            }
            buf.drain(..end);
        }
        match receive(&stream, how, &mut tmp) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

/// A small HTTP/1.1 server to trace, on 127.0.0.1 (or ::1).
#[derive(clap::Parser)]
struct Args {
    /// Port to listen on (0: any free one; the line "listening on ADDR" tells which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Listen on ::1 instead of 127.0.0.1.
    #[arg(long)]
    ipv6: bool,
    /// Syscall that receives requests.
    #[arg(long, value_enum, default_value_t = Syscall::Recv)]
    recv: Syscall,
    /// Syscall that sends responses.
    #[arg(long, value_enum, default_value_t = SendCall::Send)]
    send: SendCall,
    /// Iovecs of each vectored call (1 to 1024), of mixed sizes; two when not given.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    iovecs: Option<u16>,
}

fn main() {
    let Args {
        port,
        ipv6,
        recv: how,
        send,
        iovecs,
    } = clap::Parser::parse();
    IOVECS.set(iovecs.map(usize::from)).expect("set once");
    let host = if ipv6 { "::1" } else { "127.0.0.1" };
    let listener = TcpListener::bind((host, port)).expect("bind");
    println!(
        "listening on {}",
        listener.local_addr().expect("local address")
    );
    std::io::stdout().flush().expect("flush stdout");
    for stream in listener.incoming().flatten() {
        // A thread name of its own, as servers' workers have: the tests check that records name
        // the process and this thread apart.
        std::thread::Builder::new()
            .name("conn worker".into())
            .spawn(move || serve(stream, how, send))
            .expect("spawn a connection's thread");
    }
}
