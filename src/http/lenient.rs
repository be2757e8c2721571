//! The steps outside RFC 9112's grammar the parser takes to read a message, each by a short
//! name: a tool that shows what was sent reads what a lenient peer would, and says so, since a
//! strict peer would have answered 400 or read the bytes differently.

/// A set of leniencies, one bit each.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lenient(u16);

/// Each leniency's bit and name, in the order names are listed.
const NAMES: [(Lenient, &str); 13] = [
    (Lenient::BARE_LF, "bare-lf"),
    (Lenient::OBS_FOLD, "obs-fold"),
    (Lenient::STATUS_NO_SP, "status-no-sp"),
    (Lenient::TARGET_CHAR, "target-char"),
    (
        Lenient::EMPTY_LINE_BEFORE_STATUS,
        "empty-line-before-status",
    ),
    (Lenient::CHUNK_SIZE_WHITESPACE, "chunk-size-whitespace"),
    (Lenient::CHUNK_EXT_EMPTY, "chunk-ext-empty"),
    (Lenient::CHUNK_EXT_INVALID, "chunk-ext-invalid"),
    (Lenient::CONTENT_LENGTH_REPEATED, "content-length-repeated"),
    (Lenient::CONTENT_LENGTH_INVALID, "content-length-invalid"),
    (
        Lenient::TRANSFER_ENCODING_HTTP10,
        "transfer-encoding-http10",
    ),
    (
        Lenient::TRANSFER_ENCODING_WITH_CONTENT_LENGTH,
        "transfer-encoding-with-content-length",
    ),
    (Lenient::AFTER_LENIENT_FRAMING, "after-lenient-framing"),
];

impl Lenient {
    pub const NONE: Lenient = Lenient(0);
    /// A line (start line, field line, the empty line ending a head, a chunk or trailer line)
    /// ended by LF alone, or a lone CR among the empty lines before a message.
    pub const BARE_LF: Lenient = Lenient(1);
    /// A response field value continued on the next line (obs-fold); the value is shown with
    /// the line break as it was sent.
    pub const OBS_FOLD: Lenient = Lenient(1 << 1);
    /// A status line without the space after its status code (`HTTP/1.1 200` CRLF).
    pub const STATUS_NO_SP: Lenient = Lenient(1 << 2);
    /// A request target with bytes RFC 3986 does not allow (`"<>\^`{|}`, non-ASCII).
    pub const TARGET_CHAR: Lenient = Lenient(1 << 3);
    /// Empty lines before a status line (only a request line may follow empty lines).
    pub const EMPTY_LINE_BEFORE_STATUS: Lenient = Lenient(1 << 4);
    /// Whitespace after a chunk size with no extension after it (`a ` CRLF).
    pub const CHUNK_SIZE_WHITESPACE: Lenient = Lenient(1 << 5);
    /// A chunk extension with no name (`2;` CRLF).
    pub const CHUNK_EXT_EMPTY: Lenient = Lenient(1 << 6);
    /// A chunk extension that is not `name[=value]` of tokens or a quoted string.
    pub const CHUNK_EXT_INVALID: Lenient = Lenient(1 << 7);
    /// Content-Length given more than once (a list, or several lines) with the same value:
    /// RFC 9110 lets a recipient take the value or reject the message.
    pub const CONTENT_LENGTH_REPEATED: Lenient = Lenient(1 << 8);
    /// Transfer-Encoding in an HTTP/1.0 message, read as it says: RFC 9112 has the framing
    /// treated as faulty.
    pub const TRANSFER_ENCODING_HTTP10: Lenient = Lenient(1 << 9);
    /// A response with both Transfer-Encoding and Content-Length, framed by the first (a
    /// request with both is malformed).
    pub const TRANSFER_ENCODING_WITH_CONTENT_LENGTH: Lenient = Lenient(1 << 10);
    /// A later message in a direction where a leniency decided where an earlier message ended:
    /// a strict reader would have found other messages in these bytes, or none.
    pub const AFTER_LENIENT_FRAMING: Lenient = Lenient(1 << 11);
    /// A response with an invalid or conflicting Content-Length, read to the connection's end:
    /// RFC 9112 has a client discard it (a request with one is malformed).
    pub const CONTENT_LENGTH_INVALID: Lenient = Lenient(1 << 12);

    /// The leniencies that decide where a message ends wherever they occur (those of a head
    /// decide it only in a head that frames a body, or that ends with a bare LF).
    pub const FRAMING: Lenient = Lenient(
        Self::CHUNK_SIZE_WHITESPACE.0
            | Self::CHUNK_EXT_EMPTY.0
            | Self::CHUNK_EXT_INVALID.0
            | Self::CONTENT_LENGTH_REPEATED.0
            | Self::CONTENT_LENGTH_INVALID.0
            | Self::TRANSFER_ENCODING_HTTP10.0
            | Self::TRANSFER_ENCODING_WITH_CONTENT_LENGTH.0,
    );

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: Lenient) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn without(self, other: Lenient) -> Lenient {
        Lenient(self.0 & !other.0)
    }

    pub fn intersects(self, other: Lenient) -> bool {
        self.0 & other.0 != 0
    }

    /// The names of the leniencies in the set, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .filter(move |(l, _)| self.contains(*l))
            .map(|&(_, name)| name)
    }

    /// Every name, for the docs and tests.
    pub fn all_names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|&(_, name)| name)
    }
}

impl std::ops::BitOr for Lenient {
    type Output = Lenient;
    fn bitor(self, other: Lenient) -> Lenient {
        Lenient(self.0 | other.0)
    }
}

impl std::ops::BitOrAssign for Lenient {
    fn bitor_assign(&mut self, other: Lenient) {
        self.0 |= other.0;
    }
}

/// Whether a request target has a byte RFC 3986 does not allow in any of its parts. httparse
/// takes any visible ASCII and UTF-8; the bytes it takes that no URI may hold are these.
pub(super) fn target_has_invalid_char(target: &[u8]) -> bool {
    static INVALID: [u8; 256] = {
        let mut t = [0; 256];
        let mut b = 0x80;
        while b < 256 {
            t[b] = 1;
            b += 1;
        }
        let bad = b"\"<>\\^`{|}";
        let mut i = 0;
        while i < bad.len() {
            t[bad[i] as usize] = 1;
            i += 1;
        }
        t
    };
    // Eight lookups a step, no branch a byte: a target is short, and this runs on every one.
    let mut found = 0;
    let mut words = target.chunks_exact(8);
    for word in &mut words {
        for &b in word {
            found |= INVALID[usize::from(b)];
        }
    }
    for &b in words.remainder() {
        found |= INVALID[usize::from(b)];
    }
    found != 0
}

/// A chunk-size line's size, and the leniencies it was read with; None when it is no chunk
/// size at all. `line` ends with its LF. RFC 9112, 7.1:
/// `chunk-size [ chunk-ext ] CRLF`, `chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] )`.
pub(super) fn chunk_size_line(line: &[u8]) -> Option<(u64, Lenient)> {
    let mut lenient = Lenient::NONE;
    let line = line.strip_suffix(b"\n")?;
    let line = match line.strip_suffix(b"\r") {
        Some(l) => l,
        None => {
            lenient |= Lenient::BARE_LF;
            line
        }
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // A size fits in u64: at most 16 digits (leading zeros included, as httparse did).
    if digits == 0 || digits > 16 {
        return None;
    }
    let size = line[..digits].iter().fold(0u64, |n, &d| {
        n << 4 | u64::from(char::from(d).to_digit(16).unwrap_or(0))
    });
    let rest = &line[digits..];
    if rest.is_empty() {
        return Some((size, lenient));
    }
    let after_ws = trim_start(rest, is_ws);
    match after_ws.first() {
        None => return Some((size, lenient | Lenient::CHUNK_SIZE_WHITESPACE)),
        Some(b';') => {}
        // Another byte after the size: not a chunk size (as httparse reads it).
        Some(_) => return None,
    }
    if line.contains(&b'\r') {
        return None;
    }
    Some((size, lenient | chunk_extensions(after_ws)))
}

/// Whether `b` is a token character (RFC 9110, 5.6.2): field names, chunk extensions.
pub(super) fn is_token(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b)
}

/// Whether `b` is whitespace inside a line (SP or HTAB).
fn is_ws(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

fn trim_start(bytes: &[u8], pred: impl Fn(&u8) -> bool) -> &[u8] {
    let n = bytes.iter().take_while(|b| pred(b)).count();
    &bytes[n..]
}

/// What the extensions `exts` (from their first `;`) need to be read: nothing when each is
/// `name[=value]`.
fn chunk_extensions(mut exts: &[u8]) -> Lenient {
    let mut lenient = Lenient::NONE;
    while let Some(rest) = exts.strip_prefix(b";") {
        let rest = trim_start(rest, is_ws);
        let name = rest.iter().take_while(|b| is_token(b)).count();
        if name == 0 {
            lenient |= Lenient::CHUNK_EXT_EMPTY;
        }
        let mut rest = trim_start(&rest[name..], is_ws);
        if let Some(value) = rest.strip_prefix(b"=") {
            let value = trim_start(value, is_ws);
            let len = match value.first() {
                Some(b'"') => quoted_string_len(value),
                _ => Some(value.iter().take_while(|b| is_token(b)).count()).filter(|&n| n > 0),
            };
            let Some(len) = len else {
                return lenient | Lenient::CHUNK_EXT_INVALID;
            };
            rest = trim_start(&value[len..], is_ws);
        }
        exts = rest;
    }
    if exts.is_empty() {
        lenient
    } else {
        lenient | Lenient::CHUNK_EXT_INVALID
    }
}

/// The length of the quoted string that starts `bytes` (RFC 9110, 5.6.4), quotes included.
fn quoted_string_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some(i + 1),
            b'\\' if i + 1 < bytes.len() => i += 2,
            b'\t' | b' '..=b'~' | 0x80.. => i += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines() {
        let size = |line: &[u8]| chunk_size_line(line).map(|(n, l)| (n, l.names().collect()));
        let strict = |n: u64| Some((n, Vec::<&str>::new()));
        assert_eq!(size(b"1a\r\n"), strict(26));
        assert_eq!(size(b"0\r\n"), strict(0));
        assert_eq!(size(b"000A\r\n"), strict(10));
        assert_eq!(size(b"A;name=value\r\n"), strict(10));
        assert_eq!(size(b"A ; name = \"v \\\" x\" ;b\r\n"), strict(10));
        assert_eq!(size(b"ffffffffffffffff\r\n"), strict(u64::MAX));
        assert_eq!(size(b"0\n"), Some((0, vec!["bare-lf"])));
        assert_eq!(size(b"a \r\n"), Some((10, vec!["chunk-size-whitespace"])));
        assert_eq!(
            size(b"a\t\n"),
            Some((10, vec!["bare-lf", "chunk-size-whitespace"]))
        );
        assert_eq!(size(b"2;\r\n"), Some((2, vec!["chunk-ext-empty"])));
        assert_eq!(size(b"2;a;\r\n"), Some((2, vec!["chunk-ext-empty"])));
        assert_eq!(size(b"2;a=\r\n"), Some((2, vec!["chunk-ext-invalid"])));
        assert_eq!(size(b"2;a=\"x\r\n"), Some((2, vec!["chunk-ext-invalid"])));
        assert_eq!(size(b"2;a b\r\n"), Some((2, vec!["chunk-ext-invalid"])));
        assert_eq!(size(b"2;a=(x)\r\n"), Some((2, vec!["chunk-ext-invalid"])));
        for bad in [
            &b"\r\n"[..],
            b"xyz\r\n",
            b" 1\r\n",
            b"1 x\r\n",
            b"1x\r\n",
            b"fffffffffffffffff\r\n",
            b"1;a\rb\r\n",
            b"1",
        ] {
            assert_eq!(size(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn targets_with_bytes_no_uri_holds() {
        assert!(!target_has_invalid_char(b"/a/b?c=d&e=%20#f"));
        assert!(!target_has_invalid_char(b"*"));
        assert!(!target_has_invalid_char(b"example.com:443"));
        for bad in [
            "/a<b",
            "/\"",
            "/{x}",
            "/a|b",
            "/caf\u{e9}",
            "/a\\b",
            "/^",
            "/`",
        ] {
            assert!(target_has_invalid_char(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn every_bit_has_one_name() {
        let all = NAMES.iter().fold(Lenient::NONE, |set, &(l, _)| set | l);
        assert_eq!(
            all.names().collect::<Vec<_>>(),
            Lenient::all_names().collect::<Vec<_>>()
        );
        assert_eq!(all.0.count_ones() as usize, NAMES.len());
        assert_eq!(
            (Lenient::BARE_LF | Lenient::OBS_FOLD)
                .names()
                .collect::<Vec<_>>(),
            ["bare-lf", "obs-fold"]
        );
        assert!(Lenient::NONE.is_empty());
    }
}
