//! The text output: a readable line per exchange, and with -v the headers and the start of the
//! bodies, `>` for the request and `<` for the response.

use std::io::{self, Write};

use super::latency_ns;

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
            prefix(buf, conn, ts, who)?;
            let what = match direction {
                Direction::In => "received",
                Direction::Out => "sent",
            };
            return writeln!(buf, "malformed message {what}: {reason}");
        }
    };
    prefix(buf, conn, ts, who)?;
    match request.map(|m| (m.start(), m)) {
        Some((StartLine::Request { method, target }, m)) => {
            write!(buf, "{method} {target} HTTP/1.{}", m.version)?;
            if !m.complete {
                write!(buf, " (incomplete)")?;
            }
        }
        _ => write!(buf, "(request not seen)")?,
    }
    match response.map(|m| (m.start(), m)) {
        Some((StartLine::Response { status, reason }, m)) => {
            write!(buf, " -> {status}")?;
            if !reason.is_empty() {
                write!(buf, " {reason}")?;
            }
            if !m.complete {
                write!(buf, " (incomplete)")?;
            }
            if let Some(ns) = latency_ns(request, response) {
                write!(buf, " {:.3}ms", ns as f64 / 1e6)?;
            }
        }
        _ => write!(buf, " -> (no response)")?,
    }
    if let Some(r) = responder {
        write!(buf, " (response by pid {} fd {})", r.tgid, r.fd)?;
    }
    let size = |m: Option<&Message>| m.map_or("-".to_string(), |m| format!("{}B", m.body_bytes));
    writeln!(buf, " req={} resp={}", size(request), size(response))?;
    if verbose {
        for (m, mark) in [(request, '>'), (response, '<')] {
            if let Some(m) = m {
                details(buf, m, mark)?;
            }
        }
    }
    Ok(())
}

/// Time of day, process, role and peer: how every text line starts.
fn prefix(
    buf: &mut Vec<u8>,
    conn: &ConnInfo,
    stamp: &str,
    who: Option<&Identity>,
) -> io::Result<()> {
    let m = &conn.meta;
    // The time of day, with microseconds: "HH:MM:SS.uuuuuu".
    write!(buf, "{} {}[{}", &stamp[11..stamp.len() - 1], m.comm, m.tgid)?;
    // In a container: nginx[4321/7 c23cf607e723], its PID there and the container's short id.
    if let Some(who) = who {
        if who.ns_pid != 0 {
            write!(buf, "/{}", who.ns_pid)?;
        }
        if !who.container_id.is_empty() {
            write!(buf, " {}", who.short_id())?;
        }
    }
    write!(buf, "] {} ", conn.role.as_str())?;
    match &conn.endpoints {
        Some(Endpoints::Inet { peer, .. }) => write!(buf, "{peer} "),
        // A server's peer is usually unbound: its own path says more.
        Some(Endpoints::Unix(u)) => {
            write!(
                buf,
                "unix:{} ",
                u.peer.name().or(u.local.name()).unwrap_or_default()
            )
        }
        None => write!(buf, "fd={} ", m.fd),
    }
}

/// Headers and the start of the body, each line marked '>' (request) or '<' (response).
fn details(buf: &mut Vec<u8>, m: &Message, mark: char) -> io::Result<()> {
    let indent = format!("    {mark} ");
    for (name, value) in m.headers_lossy() {
        writeln!(buf, "{indent}{name}: {value}")?;
    }
    let shown = &m.body()[..m.body().len().min(TEXT_BODY_PREVIEW)];
    if !shown.is_empty() {
        // A final line break would only print an empty marked line.
        let text = shown.strip_suffix(b"\n").unwrap_or(shown);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        writeln!(buf, "{}", indent.trim_end())?;
        writeln!(buf, "{}", escape_body(text, &indent))?;
    }
    if (shown.len() as u64) < m.body_bytes {
        writeln!(
            buf,
            "{indent}[body cut: {} of {} bytes shown]",
            shown.len(),
            m.body_bytes
        )?;
    }
    Ok(())
}

/// Body bytes for a terminal: text as is, other bytes escaped, lines indented.
pub fn escape_body(body: &[u8], indent: &str) -> String {
    let mut s = String::with_capacity(body.len() + indent.len());
    s.push_str(indent);
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
                c if c.is_control() => s.extend(c.escape_default()),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_binary_and_indents_lines() {
        assert_eq!(
            escape_body(b"a\r\nb\x00\xff\xfe\tc", "  "),
            "  a\n  b\\u{0}\\xff\\xfe\tc"
        );
        assert_eq!(escape_body("héllo".as_bytes(), ""), "héllo");
    }
}
