//! Where a message's body ends (RFC 9112, 6.3): Content-Length, chunked encoding, the request's
//! method and the status, or the end of the connection.

use super::message::{header_name_bit, Message, RequestKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
    Switch,
}

/// Content-Length and chunked encoding as the headers give them (RFC 9112, 6.3).
fn declared_framing(msg: &Message) -> Result<Option<Framing>, &'static str> {
    const FRAMING: u64 = header_name_bit(b"transfer-encoding") | header_name_bit(b"content-length");
    // Most requests have neither: their headers are not looked through.
    if !msg.may_have_header(FRAMING) {
        return Ok(None);
    }
    let mut length: Option<u64> = None;
    let mut coded = None;
    // Only these two headers' values are decoded.
    for (name, value) in msg.headers() {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let value = String::from_utf8_lossy(value);
            let last = value.rsplit(',').next().unwrap_or("").trim();
            coded = Some(last.eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // The usual value: digits only, short enough not to overflow.
            if (1..=18).contains(&value.len()) && value.iter().all(u8::is_ascii_digit) {
                let n = value
                    .iter()
                    .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length values");
                }
                length = Some(n);
                continue;
            }
            let value = String::from_utf8_lossy(value);
            for part in value.split(',') {
                let part = part.trim();
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("invalid Content-Length");
                }
                let n: u64 = part.parse().map_err(|_| "invalid Content-Length")?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting Content-Length values");
                }
                length = Some(n);
            }
        }
    }
    Ok(match (coded, length) {
        (Some(true), _) => Some(Framing::Chunked),
        // Another coding last: only the end of the connection ends the body.
        (Some(false), _) => Some(Framing::UntilClose),
        (None, Some(n)) => Some(Framing::Length(n)),
        (None, None) => None,
    })
}

/// How a request's body is delimited: no Content-Length nor chunked means no body.
pub(super) fn request_framing(msg: &Message) -> Result<Framing, &'static str> {
    match declared_framing(msg)? {
        Some(Framing::UntilClose) => {
            Err("request body with a transfer coding other than chunked last")
        }
        Some(f) => Ok(f),
        None => Ok(Framing::None),
    }
}

/// How a final response's body is delimited, given the method of its request when known
/// (RFC 9112, 6.3): no body for HEAD, 204 and 304; a 2xx to CONNECT opens a tunnel; without
/// Content-Length or chunked, the body runs to the end of the connection.
pub(super) fn response_framing(status: u16, method: Option<RequestKind>, msg: &Message) -> Framing {
    let method = method.unwrap_or(RequestKind::Other);
    if method == RequestKind::Connect && (200..300).contains(&status) {
        return Framing::Switch;
    }
    if method == RequestKind::Head || status == 204 || status == 304 {
        return Framing::None;
    }
    // A malformed length in a response: the connection's end is the only boundary left.
    declared_framing(msg)
        .unwrap_or(Some(Framing::UntilClose))
        .unwrap_or(Framing::UntilClose)
}

/// The size in a chunk-size line (hex, then optional extensions) that ends in CRLF; a line that
/// ends in a bare LF (which RFC 9112 lets a recipient accept) is given its CR first.
pub(super) fn chunk_size(line: &mut Vec<u8>) -> Option<u64> {
    if !line.ends_with(b"\r\n") {
        line.pop();
        line.extend_from_slice(b"\r\n");
    }
    // httparse reads an empty size as 0: a size has at least one digit.
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return None;
    }
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((_, n))) => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_values() {
        let framing = |value: &str| {
            let m = Message::build("POST /x HTTP/1.1", &[("Content-Length", value)], b"", 0);
            declared_framing(&m)
        };
        assert_eq!(framing("5"), Ok(Some(Framing::Length(5))));
        assert_eq!(framing("007"), Ok(Some(Framing::Length(7))));
        assert_eq!(framing("5, 5"), Ok(Some(Framing::Length(5))));
        assert_eq!(
            framing("999999999999999999"),
            Ok(Some(Framing::Length(999_999_999_999_999_999)))
        );
        assert_eq!(framing("5, 6"), Err("conflicting Content-Length values"));
        for bad in ["+5", "-1", "5x", "0x10", "99999999999999999999"] {
            assert_eq!(framing(bad), Err("invalid Content-Length"), "{bad}");
        }
    }

    fn size(line: &[u8]) -> Option<u64> {
        chunk_size(&mut line.to_vec())
    }

    #[test]
    fn chunk_size_parsing() {
        assert_eq!(size(b"1a\r\n"), Some(26));
        assert_eq!(size(b"0\r\n"), Some(0));
        assert_eq!(size(b"0\n"), Some(0));
        assert_eq!(size(b"A;name=value\r\n"), Some(10));
        assert_eq!(size(b"\r\n"), None);
        assert_eq!(size(b"xyz\r\n"), None);
        assert_eq!(size(b"ffffffffffffffffff\r\n"), None);
    }
}
