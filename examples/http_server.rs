//! A small HTTP/1.1 server to trace: a thread per connection, keep-alive, pipelining, bodies by
//! Content-Length or chunked encoding. `--recv` picks the receive syscall, so that each one
//! http-trace follows can be exercised: read, recv (recvfrom), readv or recvmsg.
//!
//!     cargo run --example http_server -- --port 8080 --recv read
//!
//! It prints `listening on ADDR` once it accepts connections, and answers every request with
//! `200 OK` and a line naming the method, target and body size it read.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

#[derive(Clone, Copy)]
enum Syscall {
    Read,
    Recv,
    Readv,
    Recvmsg,
}

fn receive(stream: &TcpStream, how: Syscall, buf: &mut [u8]) -> std::io::Result<usize> {
    let fd = stream.as_raw_fd();
    let ptr = buf.as_mut_ptr().cast::<libc::c_void>();
    // Two iovecs, so that vectored receives really split the bytes.
    let half = buf.len() / 2;
    let mut iov = [
        libc::iovec {
            iov_base: ptr,
            iov_len: half,
        },
        // SAFETY: `half` is within `buf`.
        libc::iovec {
            iov_base: unsafe { ptr.cast::<u8>().add(half) }.cast(),
            iov_len: buf.len() - half,
        },
    ];
    // SAFETY: every pointer passed below points into `buf` or `iov`, which outlive the calls,
    // and the lengths given are theirs.
    let n = unsafe {
        match how {
            Syscall::Read => libc::read(fd, ptr, buf.len()),
            Syscall::Recv => libc::recv(fd, ptr, buf.len(), 0),
            Syscall::Readv => libc::readv(fd, iov.as_ptr(), 2),
            Syscall::Recvmsg => {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = iov.as_mut_ptr();
                msg.msg_iovlen = 2;
                libc::recvmsg(fd, &mut msg, 0)
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

fn serve(mut stream: TcpStream, how: Syscall) {
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    loop {
        // Answer every complete request in the buffer, in order.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let head_len = match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    return;
                }
            };
            let (end, size) = match body_end(&buf, head_len, req.headers) {
                None => break,
                Some(Ok(v)) => v,
                Some(Err(())) => return,
            };
            let text = format!(
                "{} {} body={}\n",
                req.method.unwrap_or(""),
                req.path.unwrap_or(""),
                size
            );
            let close = req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close")
            });
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            if stream.write_all(resp.as_bytes()).is_err() || close {
                return;
            }
            buf.drain(..end);
        }
        match receive(&stream, how, &mut tmp) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
}

fn main() {
    let mut port = 8080u16;
    let mut how = Syscall::Recv;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) => port = p.parse().expect("--port takes a number"),
            ("--recv", Some(r)) => {
                how = match r.as_str() {
                    "read" => Syscall::Read,
                    "recv" => Syscall::Recv,
                    "readv" => Syscall::Readv,
                    "recvmsg" => Syscall::Recvmsg,
                    _ => panic!("--recv takes read, recv, readv or recvmsg"),
                }
            }
            _ => panic!("usage: http_server [--port N] [--recv read|recv|readv|recvmsg]"),
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!(
        "listening on {}",
        listener.local_addr().expect("local address")
    );
    std::io::stdout().flush().expect("flush stdout");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream, how));
    }
}
