//! Clients that send real requests, and helpers to read what was captured.

use super::*;

/// A client connection that writes requests in the pieces given and reads whole responses.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes received so far.
    pub received: u64,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            buf: Vec::new(),
            received: 0,
        }
    }

    /// Read until what was received contains `needle` (for responses `responses` cannot frame,
    /// such as the answer to HEAD).
    pub fn read_until(&mut self, needle: &[u8]) {
        while !self.buf.windows(needle.len()).any(|w| w == needle) {
            let mut tmp = [0u8; 65536];
            let got = self.stream.read(&mut tmp).expect("read response");
            assert!(got > 0, "connection closed before {needle:?}");
            self.buf.extend_from_slice(&tmp[..got]);
        }
        self.buf.clear();
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().expect("local address").port()
    }

    fn peer_port(&self) -> u16 {
        self.stream.peer_addr().expect("peer address").port()
    }

    /// Whether the server has read everything sent on this connection: nothing is left
    /// unacknowledged on our side, nor unread on its side (in `sockets`, one snapshot).
    fn read_by_server_in(&self, sockets: &[TcpNetEntry]) -> bool {
        let (me, server) = (self.local_port(), self.peer_port());
        let mine = sockets
            .iter()
            .find(|s| s.inode != 0 && ports(s) == (me, server));
        let theirs = sockets
            .iter()
            .find(|s| s.inode != 0 && ports(s) == (server, me));
        matches!((mine, theirs), (Some(m), Some(t)) if m.tx_queue == 0 && t.rx_queue == 0)
    }

    /// The inode of the server's end of this connection (once the server has accepted it).
    pub fn server_socket_inode(&self) -> u64 {
        let (me, server) = (self.local_port(), self.peer_port());
        tcp_sockets()
            .iter()
            .find(|s| s.inode != 0 && ports(s) == (server, me))
            .map(|s| s.inode)
            .expect("the server's end of the connection, accepted")
    }

    /// Write each piece separately; before the next piece, wait until the server has read the
    /// previous one, so that each arrives in a receive of its own.
    pub fn send(&mut self, pieces: &[&[u8]]) -> &mut Self {
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                wait_until_read_by_server(std::slice::from_ref(self));
            }
            self.stream.write_all(piece).expect("write request");
        }
        self
    }

    /// Read `n` responses (bodies framed by Content-Length, or by the end of the connection).
    pub fn responses(&mut self, n: usize) -> Vec<u16> {
        let mut statuses = Vec::new();
        let mut eof = false;
        while statuses.len() < n {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = resp.parse(&self.buf) {
                let len = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    });
                let status = resp.code.unwrap_or(0);
                match len {
                    Some(len) if self.buf.len() >= head + len => {
                        statuses.push(status);
                        self.buf.drain(..head + len);
                        continue;
                    }
                    None if eof => {
                        statuses.push(status);
                        self.buf.clear();
                        continue;
                    }
                    _ => {}
                }
            }
            assert!(
                !eof,
                "connection closed after {statuses:?}, wanted {n} responses; unparsed: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            let mut tmp = [0u8; 65536];
            let got = self.stream.read(&mut tmp).expect("read response");
            eof = got == 0;
            self.received += got as u64;
            self.buf.extend_from_slice(&tmp[..got]);
        }
        statuses
    }
}

/// Wait until the server has read everything sent on each of these connections.
pub fn wait_until_read_by_server(clients: &[Client]) {
    wait_until(
        "the server to read what was sent",
        Duration::from_secs(10),
        || {
            let sockets = tcp_sockets();
            clients.iter().all(|c| c.read_by_server_in(&sockets))
        },
    );
}

/// curl with `args`, its output thrown away; it must succeed.
pub fn curl(args: &[&str]) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "--max-time", "30"])
        .args(args);
    let st = run("curl", &mut cmd, Duration::from_secs(60)).status;
    assert!(st.success(), "curl {args:?}: {st}");
}

/// One request on its own connection, response awaited.
pub fn request(port: u16, raw: &[u8]) -> u16 {
    Client::connect(port).send(&[raw]).responses(1)[0]
}

/// `GET target` without headers, on its own connection; the response's status.
pub fn get(port: u16, target: &str) -> u16 {
    request(port, format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes())
}

/// (method, target, status) of each exchange, status 0 when there was no response.
pub fn triples(ex: &[Value]) -> Vec<(String, String, u64)> {
    ex.iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or("?").to_string(),
                e["target"].as_str().unwrap_or("?").to_string(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

pub fn t(method: &str, target: &str, status: u64) -> (String, String, u64) {
    (method.to_string(), target.to_string(), status)
}

/// Captured records in the order their first byte was seen.
pub fn by_time(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    records
}

/// Debian's Python, by its path: a `python3` found first on PATH may be a wrapper (pyenv's shim
/// is a shell script that forks helpers before it runs Python), whose extra processes a trace
/// of it would follow and count.
pub const PYTHON: &str = "/usr/bin/python3";

/// The example server's body of `/r/bytes/N` (and `/r/iovecs/K/N`): "0123456789" repeated.
pub fn digits(n: usize) -> String {
    (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect()
}

/// How the summary says that `n` exchanges were captured.
pub fn captured(n: usize) -> String {
    match n {
        1 => "1 exchange captured".to_string(),
        n => format!("{n} exchanges captured"),
    }
}

/// (method, target) of captured requests, in order.
pub fn method_targets(reqs: &[Value]) -> Vec<(String, String)> {
    reqs.iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or("?").to_string(),
                r["target"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// (method, target) pairs, owned, to compare with what `method_targets` gives.
pub fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
    want.iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect()
}

/// Header values named `name` (case-insensitive) in a captured request.
pub fn header<'a>(req: &'a Value, name: &str) -> Vec<&'a str> {
    req["request_headers"]
        .as_array()
        .expect("request_headers")
        .iter()
        .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .filter_map(|h| h[1].as_str())
        .collect()
}

/// A body of 100,000 bytes: larger than what one event carries.
pub const LARGE_BODY: usize = 100_000;

/// Requests of every shape the core must handle, over four connections. Each waits for its
/// responses before the next is sent, so the captured order is known.
pub fn send_standard_traffic(port: u16) {
    let mut keep_alive = Client::connect(port);
    keep_alive.send(&[b"GET /items?id=1 HTTP/1.1\r\nHost: test\r\nUser-Agent: it/1\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n"]);
    assert_eq!(keep_alive.responses(1), [200]);
    keep_alive.send(&[b"POST /items HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"name\":\"x\"}\n"]);
    assert_eq!(keep_alive.responses(1), [200]);
    keep_alive.send(&[b"GE", b"T /split HTT", b"P/1.1\r\nHost: te", b"st\r\n\r\n"]);
    assert_eq!(keep_alive.responses(1), [200]);

    let mut pipelined = Client::connect(port);
    pipelined
        .send(&[b"GET /p1 HTTP/1.1\r\nHost: test\r\n\r\nGET /p2 HTTP/1.1\r\nHost: test\r\n\r\n"]);
    assert_eq!(pipelined.responses(2), [200, 200]);

    let mut chunked = Client::connect(port);
    chunked.send(&[
        b"POST /chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"7\r\n, world\r\n0\r\n\r\n",
    ]);
    assert_eq!(chunked.responses(1), [200]);

    let mut large = Client::connect(port);
    let mut req =
        format!("POST /large HTTP/1.1\r\nHost: test\r\nContent-Length: {LARGE_BODY}\r\n\r\n")
            .into_bytes();
    req.extend((0..LARGE_BODY).map(|i| b'a' + (i % 26) as u8));
    large.send(&[&req]);
    assert_eq!(large.responses(1), [200]);
    // Some servers (nginx) answer before reading the whole body; the answer to a next request on
    // the same connection proves the body was read, so the capture is complete when we stop.
    large.send(&[b"GET /after-large HTTP/1.1\r\nHost: test\r\n\r\n"]);
    assert_eq!(large.responses(1), [200]);
}

/// How the summary names bytes that moved outside the calls followed.
pub const UNSEEN: &str =
    "bytes moved outside the calls followed (io_uring, processes not traced), not captured";
