//! The text output: a readable line per exchange, and with -v the headers and the start of the
//! bodies, `>` for the request and `<` for the response.

use std::io::{self, Write};

use super::{latency_ns, push_int, push_socket_addr};

use crate::container::Identity;
use crate::decode::{Direction, Endpoints};
use crate::http::{Message, StartLine};
use crate::record::{ConnInfo, Record};

/// Body bytes the text output shows with -v; JSON carries all that was kept (--max-body).
const TEXT_BODY_PREVIEW: usize = 1024;

pub(super) fn write(
    buf: &mut Vec<u8>,
    rec: &Record,
    ts: &str,
    who: Option<&Identity>,
    verbose: bool,
) -> io::Result<()> {
    let (conn, request, response, responder) = match rec {
        Record::Exchange {
            conn,
            request,
            response,
            responder,
        } => (conn, request.as_ref(), response.as_ref(), responder),
        Record::Malformed {
            conn,
            direction,
            reason,
            ..
        } => {
            prefix(buf, conn, ts, who);
            let what = match direction {
                Direction::In => "received",
                Direction::Out => "sent",
            };
            return writeln!(buf, "malformed message {what}: {reason}");
        }
    };
    prefix(buf, conn, ts, who);
    // Appended piece by piece: through write! this line took twice the instructions.
    request_line(buf, request);
    response_line(buf, request, response);
    if let Some(r) = responder {
        buf.extend_from_slice(b" (response by pid ");
        push_int(buf, r.tgid);
        buf.extend_from_slice(b" fd ");
        push_int(buf, r.fd);
        buf.push(b')');
    }
    for (key, m) in [(&b" req="[..], request), (b" resp=", response)] {
        buf.extend_from_slice(key);
        match m {
            Some(m) => {
                push_int(buf, m.body_bytes);
                buf.push(b'B');
            }
            None => buf.push(b'-'),
        }
    }
    // What a strict reader would not have read so: -v says how.
    let seen = || [request, response].into_iter().flatten();
    if conn.tls {
        buf.extend_from_slice(b" [tls]");
    }
    if seen().any(|m| !m.lenient.is_empty()) {
        buf.extend_from_slice(b" [lenient]");
    }
    if seen().any(|m| m.resynced) {
        buf.extend_from_slice(b" [resynced]");
    }
    buf.push(b'\n');
    if verbose {
        for (m, mark) in [(request, b'>'), (response, b'<')] {
            if let Some(m) = m {
                details(buf, m, mark);
            }
        }
    }
    Ok(())
}

/// "GET /path HTTP/1.1", or what stands in for it.
fn request_line(buf: &mut Vec<u8>, request: Option<&Message>) {
    match request.map(|m| (m.start(), m)) {
        Some((StartLine::Request { method, target }, m)) => {
            push_shown(buf, method.as_bytes());
            buf.push(b' ');
            push_shown(buf, target.as_bytes());
            buf.extend_from_slice(if m.version == 0 {
                b" HTTP/1.0"
            } else {
                b" HTTP/1.1"
            });
            if !m.complete {
                buf.extend_from_slice(b" (incomplete)");
            }
        }
        _ => buf.extend_from_slice(b"(request not seen)"),
    }
}

/// " -> 200 OK 1.234ms", or what stands in for it.
fn response_line(buf: &mut Vec<u8>, request: Option<&Message>, response: Option<&Message>) {
    match response.map(|m| (m.start(), m)) {
        Some((StartLine::Response { status, reason }, m)) => {
            buf.extend_from_slice(b" -> ");
            push_int(buf, status);
            if !reason.is_empty() {
                buf.push(b' ');
                push_shown(buf, reason);
            }
            if !m.complete {
                buf.extend_from_slice(b" (incomplete)");
            }
            if let Some(ns) = latency_ns(request, response) {
                push_millis(buf, ns);
            }
        }
        _ => buf.extend_from_slice(b" -> (no response)"),
    }
}

/// " 1.234ms": `ns` in milliseconds to the microsecond, rounded half up. In integers: through
/// `{:.3}` of an f64 it took about 250 instructions an exchange (the pipeline benchmark,
/// 2026-12-07), more than the leniency checks added to the parser.
fn push_millis(buf: &mut Vec<u8>, ns: u64) {
    let us = ns / 1000 + u64::from(ns % 1000 >= 500);
    buf.push(b' ');
    push_int(buf, us / 1000);
    let frac = us % 1000;
    buf.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
        b'm',
        b's',
    ]);
}

/// Time of day, process, role and peer: how every text line starts.
fn prefix(buf: &mut Vec<u8>, conn: &ConnInfo, stamp: &str, who: Option<&Identity>) {
    let m = &conn.meta;
    // The time of day, with microseconds: "HH:MM:SS.uuuuuu".
    buf.extend_from_slice(&stamp.as_bytes()[11..stamp.len() - 1]);
    buf.push(b' ');
    // A process names itself: its name is traffic too.
    push_shown(buf, m.comm.bytes());
    buf.push(b'[');
    push_int(buf, m.tgid);
    // In a container: nginx[4321/7 c23cf607e723], its PID there and the container's short id.
    if let Some(who) = who {
        if who.ns_pid != 0 {
            buf.push(b'/');
            push_int(buf, who.ns_pid);
        }
        if !who.container_id.is_empty() {
            buf.push(b' ');
            buf.extend_from_slice(who.short_id().as_bytes());
        }
    }
    buf.extend_from_slice(b"] ");
    buf.extend_from_slice(conn.role.as_str().as_bytes());
    buf.push(b' ');
    match &conn.endpoints {
        Some(Endpoints::Inet { peer, .. }) => push_socket_addr(buf, *peer),
        // A server's peer is usually unbound: its own path says more.
        Some(Endpoints::Unix(u)) => {
            buf.extend_from_slice(b"unix:");
            let path = u.peer.name().or(u.local.name()).unwrap_or_default();
            push_shown(buf, path.as_bytes());
        }
        None => {
            buf.extend_from_slice(b"fd=");
            push_int(buf, m.fd);
        }
    }
    buf.push(b' ');
}

/// Headers, the start of the body and trailer fields, each line marked '>' (request) or '<'
/// (response).
fn details(buf: &mut Vec<u8>, m: &Message, mark: u8) {
    let indent = [b' ', b' ', b' ', b' ', mark, b' '];
    if !m.lenient.is_empty() {
        buf.extend_from_slice(&indent);
        buf.extend_from_slice(b"[read leniently: ");
        for (i, name) in m.lenient.names().enumerate() {
            if i > 0 {
                buf.extend_from_slice(b", ");
            }
            buf.extend_from_slice(name.as_bytes());
        }
        buf.extend_from_slice(b"]\n");
    }
    if m.resynced {
        buf.extend_from_slice(&indent);
        buf.extend_from_slice(b"[found after bytes skipped to resynchronise]\n");
    }
    field_lines(buf, &indent, m.headers());
    let shown = &m.body()[..m.body().len().min(TEXT_BODY_PREVIEW)];
    if !shown.is_empty() {
        // A final line break would only print an empty marked line.
        let text = shown.strip_suffix(b"\n").unwrap_or(shown);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        buf.extend_from_slice(indent.trim_ascii_end());
        buf.push(b'\n');
        escape_body(buf, text, &indent);
        buf.push(b'\n');
    }
    // Cut for the preview, or cut when it was kept (a redacted value is neither).
    if shown.len() < m.body().len() || m.body_cut() {
        buf.extend_from_slice(&indent);
        buf.extend_from_slice(b"[body cut: ");
        push_int(buf, shown.len());
        buf.extend_from_slice(b" of ");
        push_int(buf, m.body_bytes);
        buf.extend_from_slice(b" bytes shown]\n");
    }
    if m.trailers_len() > 0 {
        buf.extend_from_slice(&indent);
        buf.extend_from_slice(b"[trailer fields]\n");
        field_lines(buf, &indent, m.trailers());
    }
}

/// One `name: value` line per field.
fn field_lines<'m>(
    buf: &mut Vec<u8>,
    indent: &[u8],
    fields: impl Iterator<Item = (&'m [u8], &'m [u8])>,
) {
    for (name, value) in fields {
        buf.extend_from_slice(indent);
        push_shown(buf, name);
        buf.extend_from_slice(b": ");
        push_shown(buf, value);
        buf.push(b'\n');
    }
}

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, and C1, whose
/// CSI a terminal may take as an escape sequence's start) and the bidirectional overrides,
/// embeddings, isolates and marks, which reorder what is shown around them.
fn unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Bytes from the traffic (or a process's name) on one line, appended to `buf`: text as it is,
/// characters unsafe_for_terminal but tab escaped (`\u{9b}`), bytes that are not UTF-8 as
/// `\xNN`.
fn push_shown(buf: &mut Vec<u8>, text: &[u8]) {
    if text.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        buf.extend_from_slice(text);
        return;
    }
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c != '\t' && unsafe_for_terminal(c) {
                let _ = write!(buf, "{}", c.escape_default());
            } else {
                let mut utf8 = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        for b in chunk.invalid() {
            let _ = write!(buf, "\\x{b:02x}");
        }
    }
}

/// Body bytes for a terminal, appended to `buf`: text as is, other bytes escaped, lines
/// indented.
fn escape_body(buf: &mut Vec<u8>, body: &[u8], indent: &[u8]) {
    buf.extend_from_slice(indent);
    for chunk in body.utf8_chunks() {
        let valid = chunk.valid();
        let mut plain_from = 0;
        let mut chars = valid.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let escaped = match c {
                '\r' if chars.peek().is_some_and(|&(_, n)| n == '\n') => None,
                '\n' => Some(None),
                '\t' => continue,
                c if unsafe_for_terminal(c) => Some(Some(c)),
                _ => continue,
            };
            // Text up to here as it is, then this character's replacement.
            buf.extend_from_slice(&valid.as_bytes()[plain_from..i]);
            plain_from = i + c.len_utf8();
            match escaped {
                None => {}
                Some(None) => {
                    buf.push(b'\n');
                    buf.extend_from_slice(indent);
                }
                Some(Some(c)) => {
                    let _ = write!(buf, "{}", c.escape_default());
                }
            }
        }
        buf.extend_from_slice(&valid.as_bytes()[plain_from..]);
        for b in chunk.invalid() {
            let _ = write!(buf, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_binary_and_indents_lines() {
        let escaped = |body: &[u8], indent: &str| {
            let mut buf = Vec::new();
            escape_body(&mut buf, body, indent.as_bytes());
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(
            escaped(b"a\r\nb\x00\xff\xfe\tc", "  "),
            "  a\n  b\\u{0}\\xff\\xfe\tc"
        );
        assert_eq!(escaped("héllo".as_bytes(), ""), "héllo");
        // A lone CR is a control character; CR LF is a line break.
        assert_eq!(
            escaped(b"x\ry\r\n\r\nz\x1b[0m", "> "),
            "> x\\ry\n> \n> z\\u{1b}[0m"
        );
        // Against the rule written a character at a time, over every string of up to four
        // of these pieces.
        let reference = |body: &[u8], indent: &str| {
            let mut s = indent.to_string();
            for chunk in body.utf8_chunks() {
                let mut chars = chunk.valid().chars().peekable();
                while let Some(c) = chars.next() {
                    match c {
                        '\r' if chars.peek() == Some(&'\n') => {}
                        '\n' => {
                            s.push('\n');
                            s.push_str(indent);
                        }
                        '\t' => s.push(c),
                        c if unsafe_for_terminal(c) => s.extend(c.escape_default()),
                        c => s.push(c),
                    }
                }
                for b in chunk.invalid() {
                    s.push_str(&format!("\\x{b:02x}"));
                }
            }
            s
        };
        let pieces: [&[u8]; 8] = [
            b"a",
            b"\r",
            b"\n",
            b"\t",
            b"\x00",
            b"\xc3",
            b"\xa9",
            "é".as_bytes(),
        ];
        let mut strings: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = strings
                .iter()
                .flat_map(|s| pieces.iter().map(move |p| [s.as_slice(), p].concat()))
                .collect();
            strings.extend(longer);
        }
        for body in &strings {
            assert_eq!(escaped(body, "  < "), reference(body, "  < "), "{body:?}");
        }
    }
}
