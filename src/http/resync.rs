//! Finding the way back into a stream: whether bytes start like an HTTP/1.x message, and where
//! the next start line begins after lost or malformed bytes, or when a connection is joined
//! mid-stream.

/// Longest start line a resync waits for; past it a candidate start is given up.
const MAX_RESYNC_LINE: usize = 8 * 1024;
/// Longest method name accepted by the sniffer (the longest registered one is 17 bytes).
const MAX_METHOD_LEN: usize = 20;
/// Methods that mark a plausible request start when resynchronising mid-stream.
const KNOWN_METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];
/// How a status line starts.
const STATUS_PREFIX: &[u8] = b"HTTP/";

/// How many bytes at the start of `bytes` are empty lines, which may precede a request line
/// (RFC 9112, 2.2).
pub(super) fn empty_line_bytes(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len())
}

pub(super) enum Sniff {
    Request,
    Response,
    NotHttp,
    NeedMore,
}

/// Whether `buf` starts like an HTTP/1.x status line ("HTTP/"), or like a request line: an
/// upper-case method token and a space.
pub(super) fn sniff(buf: &[u8]) -> Sniff {
    if buf.starts_with(b"PRI * HTTP/2") {
        return Sniff::NotHttp; // HTTP/2 prior knowledge
    }
    if buf.starts_with(STATUS_PREFIX) {
        return Sniff::Response;
    }
    if STATUS_PREFIX.starts_with(buf) {
        return Sniff::NeedMore;
    }
    for (i, &b) in buf.iter().enumerate().take(MAX_METHOD_LEN + 1) {
        match b {
            b'A'..=b'Z' | b'-' | b'_' => {}
            b' ' if i > 0 => return Sniff::Request,
            _ => return Sniff::NotHttp,
        }
    }
    if buf.len() > MAX_METHOD_LEN {
        Sniff::NotHttp
    } else {
        Sniff::NeedMore
    }
}

pub(super) enum MessageStart {
    Found(usize),
    /// A possible start whose start line is not complete yet.
    Maybe(usize),
    None,
}

/// Whether `line` (without its CRLF) is a plausible start line: a known method with a line that
/// ends in " HTTP/1.x", or "HTTP/1.x " and a three-digit status.
fn plausible_start_line(line: &[u8]) -> bool {
    if KNOWN_METHODS.iter().any(|m| line.starts_with(m)) {
        return line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0");
    }
    let Some(status) = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
    else {
        return false;
    };
    status.len() >= 3
        && status[..3].iter().all(u8::is_ascii_digit)
        && (status.len() == 3 || status[3] == b' ')
}

/// Whether a start line could begin at `rest`: a known method or a status line prefix.
fn could_start(rest: &[u8]) -> (bool, bool) {
    let starts = KNOWN_METHODS.iter().any(|m| rest.starts_with(m))
        || rest.starts_with(b"HTTP/1.1 ")
        || rest.starts_with(b"HTTP/1.0 ");
    let prefix = KNOWN_METHODS.iter().any(|m| m.starts_with(rest))
        || b"HTTP/1.1 ".starts_with(rest)
        || b"HTTP/1.0 ".starts_with(rest);
    (starts, prefix)
}

/// The first place in `buf` where a start line begins. Used only to find the way back after
/// lost or malformed bytes.
pub(super) fn find_message_start(buf: &[u8]) -> MessageStart {
    for i in 0..buf.len() {
        let rest = &buf[i..];
        let (starts, prefix) = could_start(rest);
        if !starts {
            if prefix {
                return MessageStart::Maybe(i);
            }
            continue;
        }
        let window = &rest[..rest.len().min(MAX_RESYNC_LINE)];
        match window.windows(2).position(|w| w == b"\r\n") {
            Some(end) if plausible_start_line(&rest[..end]) => return MessageStart::Found(i),
            Some(_) => {}
            None if rest.len() < MAX_RESYNC_LINE => return MessageStart::Maybe(i),
            None => {}
        }
    }
    MessageStart::None
}
