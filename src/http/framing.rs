//! Where a message's body ends (RFC 9112, 6.3): Content-Length, chunked encoding, the request's
//! method and the status, or the end of the connection.

use super::lenient::Lenient;
use super::message::{header_name_bit, Message, RequestKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
    Switch,
}

/// Content-Length and chunked encoding as the headers give them (RFC 9112, 6.3); what was
/// read leniently is added to `lenient`.
fn declared_framing(msg: &Message, lenient: &mut Lenient) -> Result<Option<Framing>, &'static str> {
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
                if length.is_some() {
                    *lenient |= Lenient::CONTENT_LENGTH_REPEATED;
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
                if length.is_some() {
                    *lenient |= Lenient::CONTENT_LENGTH_REPEATED;
                }
                length = Some(n);
            }
        }
    }
    if coded.is_some() {
        if msg.version == 0 {
            *lenient |= Lenient::TRANSFER_ENCODING_HTTP10;
        }
        if length.is_some() {
            // Smuggling's usual shape (RFC 9112, 6.3): a strict server rejects the request.
            if msg.is_request() {
                return Err("Transfer-Encoding with Content-Length");
            }
            *lenient |= Lenient::TRANSFER_ENCODING_WITH_CONTENT_LENGTH;
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
pub(super) fn request_framing(
    msg: &Message,
    lenient: &mut Lenient,
) -> Result<Framing, &'static str> {
    match declared_framing(msg, lenient)? {
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
pub(super) fn response_framing(
    status: u16,
    method: Option<RequestKind>,
    msg: &Message,
    lenient: &mut Lenient,
) -> Framing {
    let method = method.unwrap_or(RequestKind::Other);
    if method == RequestKind::Connect && (200..300).contains(&status) {
        return Framing::Switch;
    }
    if method == RequestKind::Head || status == 204 || status == 304 {
        return Framing::None;
    }
    // A malformed length in a response: the connection's end is the only boundary left.
    declared_framing(msg, lenient)
        .unwrap_or_else(|_| {
            *lenient |= Lenient::CONTENT_LENGTH_INVALID;
            Some(Framing::UntilClose)
        })
        .unwrap_or(Framing::UntilClose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_values() {
        let framing = |value: &str| {
            let m = Message::build("POST /x HTTP/1.1", &[("Content-Length", value)], b"", 0);
            declared_framing(&m, &mut Lenient::default())
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
}
