//! Secrets kept out of every output, by default (`--show-secrets` turns it off): the values of
//! credential headers (the scheme of Authorization kept, cookie names kept), of query
//! parameters named like secrets in targets and in URL headers, and of keys named like secrets
//! in JSON and form bodies, at any depth, the rest left as it was. Records get `<redacted>`;
//! byte streams (pcapng) get `*` of the same length, so that sizes and sequence numbers still
//! add up; the `-w` recording too (unless --show-secrets: then it keeps what the kernel sent,
//! and redaction applies when it is read).

use std::borrow::Cow;

use crate::http::{header_name_bit, Message, StartLine};
use crate::record::Record;

mod fields;
mod stream;

use self::fields::{body, body_kind, multipart, pairs, sniffed_kind, url, BodyKind};
pub use self::stream::StreamRedactor;

pub const REDACTED: &str = "<redacted>";

/// Headers whose whole value is a secret (Authorization-like and cookies are handled apart):
/// the API keys and tokens of common services and gateways.
const SECRET_HEADERS: [&str; 12] = [
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-access-token",
    "x-api-token",
    "x-amz-security-token",
    "x-goog-api-key",
    "private-token",
    "x-vault-token",
    "x-session-token",
    "x-auth-key",
];

/// Query parameters and body keys whose value is a secret, as credential scanners name them
/// (gitleaks', detect-secrets' keyword lists), compared with `-` as `_`, case aside, after
/// percent- and JSON-decoding (`code` only next to `state`: an OAuth authorization code).
const SECRET_NAMES: [&str; 27] = [
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth_token",
    "api_token",
    "session_token",
    "security_token",
    "api_key",
    "apikey",
    "key",
    "access_key",
    "secret_key",
    "private_key",
    "auth_key",
    "client_key",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "client_secret",
    "credential",
    "credentials",
    "signature",
    "sig",
    "x_api_key",
];

/// Whether `name` (as it came: percent-encoded in a query or form, escaped in JSON) names a
/// secret.
fn secret_name(extra: &[Vec<u8>], name: &[u8]) -> bool {
    let decoded: Cow<[u8]> = if name.contains(&b'%') || name.contains(&b'\\') {
        Cow::Owned(decode_name(name))
    } else {
        Cow::Borrowed(name)
    };
    let same = |s: &[u8]| {
        s.len() == decoded.len()
            && s.iter().zip(decoded.iter()).all(|(&a, &b)| {
                let b = if b == b'-' {
                    b'_'
                } else {
                    b.to_ascii_lowercase()
                };
                a == b
            })
    };
    SECRET_NAMES.iter().any(|s| same(s.as_bytes())) || extra.iter().any(|s| same(s))
}

/// A name with its percent-escapes (`%77`) and JSON escapes (`\u0077`, `\"`) decoded; what
/// does not decode stays as it is.
fn decode_name(name: &[u8]) -> Vec<u8> {
    let hex = |h: &[u8]| {
        std::str::from_utf8(h)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        match (name[i], name.get(i + 1)) {
            (b'%', _) if i + 3 <= name.len() => match hex(&name[i + 1..i + 3]) {
                Some(v) => {
                    out.push(v as u8);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            (b'\\', Some(b'u')) if i + 6 <= name.len() => match hex(&name[i + 2..i + 6]) {
                Some(v) if v < 0x80 => {
                    out.push(v as u8);
                    i += 6;
                    continue;
                }
                _ => out.push(b'\\'),
            },
            (b'\\', Some(&c)) => {
                out.push(c);
                i += 2;
                continue;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    out
}

/// How a secret is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `<redacted>`, whatever the length.
    Marker,
    /// `*` for each byte: the length kept.
    Stars,
}

fn replacement(style: Style, secret: &[u8]) -> Cow<'static, [u8]> {
    match style {
        Style::Marker => Cow::Borrowed(REDACTED.as_bytes()),
        Style::Stars => Cow::Owned(vec![b'*'; secret.len()]),
    }
}

/// The headers whose values `Redactor::header` looks into, each with how (SECRET_HEADERS and
/// --redact-header's come on top, redacted whole). One table for the lookup and for the
/// fingerprint that lets most messages skip it.
const REDACTED_HEADERS: [(&str, &[u8]); 7] = [
    ("authorization", b"authorization"),
    ("proxy-authorization", b"authorization"),
    ("cookie", b"cookie"),
    ("set-cookie", b"set-cookie"),
    ("location", b"location"),
    ("referer", b"location"),
    ("content-location", b"location"),
];

#[derive(Debug, Clone)]
pub struct Redactor {
    /// Lowercase names of the other headers to redact whole (`--redact-header`).
    extra_headers: Vec<String>,
    /// The other query parameters, body keys and form fields whose values are secrets
    /// (`--redact`), lowercase with `-` as `_`, as secret_name compares them.
    extra_names: Vec<Vec<u8>>,
    /// The header_name_bit()s of every header it redacts: a message with none of them has only
    /// its target and its body to look at.
    header_bits: u64,
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl Redactor {
    /// The default rules, and `extra_headers` redacted whole, `extra_names` (parameters and
    /// keys) redacted as the default secret names are.
    pub fn new(extra_headers: &[String], extra_names: &[String]) -> Self {
        let extra_headers: Vec<String> = extra_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let header_bits = REDACTED_HEADERS
            .iter()
            .map(|(h, _)| h)
            .chain(&SECRET_HEADERS)
            .map(|h| h.as_bytes())
            .chain(extra_headers.iter().map(|h| h.as_bytes()))
            .fold(0, |bits, h| bits | header_name_bit(h));
        let extra_names = extra_names
            .iter()
            .map(|n| n.to_ascii_lowercase().replace('-', "_").into_bytes())
            .collect();
        Self {
            extra_headers,
            extra_names,
            header_bits,
        }
    }

    /// `rec` with its secrets redacted: a copy of each message that holds one.
    pub fn record(&self, rec: &Record) -> Option<Record> {
        let Record::Exchange {
            conn,
            request,
            response,
            responder,
        } = rec
        else {
            return None;
        };
        let q = request.as_ref().and_then(|m| self.message(m));
        let r = response.as_ref().and_then(|m| self.message(m));
        if q.is_none() && r.is_none() {
            return None;
        }
        Some(Record::Exchange {
            conn: conn.clone(),
            request: q.or_else(|| request.clone()),
            response: r.or_else(|| response.clone()),
            responder: *responder,
        })
    }

    /// A copy of `m` without its secrets, or None when it has none.
    pub fn message(&self, m: &Message) -> Option<Message> {
        let target = match m.start() {
            StartLine::Request { target, .. } => {
                url(target.as_bytes(), &self.extra_names, Style::Marker)
            }
            StartLine::Response { .. } => None,
        };
        // One pass over the headers; nothing is allocated for a message without secrets, the
        // usual one.
        let mut values: Option<Vec<Option<Vec<u8>>>> = None;
        // The body's declared type: None for none, Some(None) for one that says nothing of
        // secrets' places.
        let mut declared: Option<Option<BodyKind>> = None;
        let content_type = |n: &[u8]| n.len() == 12 && n.eq_ignore_ascii_case(b"content-type");
        let kind_of = |v: &[u8]| {
            // text/plain is what a client that did not say sends: looked into as undeclared.
            let plain = b"text/plain";
            if v.len() >= plain.len() && v[..plain.len()].eq_ignore_ascii_case(plain) {
                None
            } else {
                Some(body_kind(v))
            }
        };
        if m.may_have_header(self.header_bits) {
            for (i, (n, v)) in m.headers().enumerate() {
                if let Some(new) = self.header(n, v, Style::Marker) {
                    values.get_or_insert_with(|| vec![None; m.headers().count()])[i] = Some(new);
                } else if content_type(n) {
                    declared = kind_of(v);
                }
            }
        } else if !m.body().is_empty() && m.may_have_header(header_name_bit(b"content-type")) {
            // None of the headers it redacts, as most messages: only the body's type matters.
            declared = m
                .headers()
                .filter(|(n, _)| content_type(n))
                .last()
                .and_then(|(_, v)| kind_of(v));
        }
        let kind = match declared {
            Some(kind) => kind,
            None => sniffed_kind(m.body()),
        };
        let body = kind
            .filter(|_| !m.body().is_empty())
            .and_then(|t| body(t, m.body(), &self.extra_names, Style::Marker));
        let trailers = self.trailers(m);
        if target.is_none() && values.is_none() && body.is_none() && trailers.is_none() {
            return None;
        }
        let target = target.map(|t| String::from_utf8_lossy(&t).into_owned());
        let mut edited = m.edited(
            target.as_deref(),
            values.as_deref().unwrap_or(&[]),
            body.as_deref(),
        )?;
        if let Some(fields) = trailers {
            edited.set_trailers(fields.iter().map(|(n, v)| (*n, v.as_ref())));
        }
        Some(edited)
    }

    /// A chunked body's trailer fields with the secrets of each redacted as a header's would
    /// be, or None when none has one (or there are none, as in most messages).
    fn trailers<'m>(&self, m: &'m Message) -> Option<Vec<Field<'m>>> {
        if m.trailers_len() == 0 {
            return None;
        }
        let mut any = false;
        let fields = m
            .trailers()
            .map(|(n, v)| match self.header(n, v, Style::Marker) {
                Some(new) => {
                    any = true;
                    (n, Cow::Owned(new))
                }
                None => (n, Cow::Borrowed(v)),
            })
            .collect();
        any.then_some(fields)
    }

    /// The value of header `name` without its secrets, or None when it has none.
    fn header(&self, name: &[u8], value: &[u8], style: Style) -> Option<Vec<u8>> {
        if value.is_empty() {
            return None;
        }
        // Told apart by their length first, without an allocation.
        let is = |h: &str| h.len() == name.len() && h.as_bytes().eq_ignore_ascii_case(name);
        let kind: &[u8] = if let Some((_, kind)) = REDACTED_HEADERS.iter().find(|(h, _)| is(h)) {
            kind
        } else if SECRET_HEADERS
            .iter()
            .copied()
            .chain(self.extra_headers.iter().map(String::as_str))
            .any(is)
        {
            b"secret"
        } else {
            return None;
        };
        match kind {
            b"authorization" | b"proxy-authorization" => {
                // The scheme is kept: `Bearer <redacted>`.
                let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
                    Some(i) => (&value[..=i], &value[i + 1..]),
                    None => (&b""[..], value),
                };
                let mut out = scheme.to_vec();
                out.extend_from_slice(&replacement(style, rest));
                Some(out)
            }
            b"cookie" => Some(pairs(value, b';', style, |_| true)),
            b"set-cookie" => {
                // The first pair is the cookie; the attributes after it stay.
                let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
                let mut out = pairs(&value[..end], b';', style, |_| true);
                out.extend_from_slice(&value[end..]);
                Some(out)
            }
            b"location" => url(value, &self.extra_names, style),
            _ => Some(replacement(style, value).into_owned()),
        }
    }

    /// Redact the secrets in a piece of a byte stream that does not start a message (bytes
    /// after a gap, say), in place and at the same length: header lines and request lines it
    /// holds whole, and JSON or form text (StreamRedactor holds whole messages for the rest).
    pub fn stream_piece(&self, bytes: &mut [u8]) {
        self.stream_lines(bytes);
        self.stream_piece_body(bytes);
    }

    /// Redact the request line and header fields among the lines of `bytes`.
    fn stream_lines(&self, bytes: &mut [u8]) {
        let mut start = 0;
        while start < bytes.len() {
            let end = bytes[start..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(bytes.len(), |i| start + i);
            let line = &bytes[start..end];
            // A request line first: an absolute target has a colon too.
            let new = if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
                url(line, &self.extra_names, Style::Stars).map(|v| (0, v))
            } else if let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = &line[..colon];
                let value_at =
                    colon + 1 + line[colon + 1..].iter().take_while(|&&b| b == b' ').count();
                if name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
                    self.header(name, &line[value_at..], Style::Stars)
                        .map(|v| (value_at, v))
                } else {
                    None
                }
            } else {
                None
            };
            if let Some((at, v)) = new {
                if v.len() == line.len() - at {
                    bytes[start + at..end].copy_from_slice(&v);
                }
            }
            start = end + 2;
        }
    }

    fn stream_piece_body(&self, bytes: &mut [u8]) {
        // The body: past the head's end in this piece, or the whole piece when it holds no
        // line of a head. JSON and forms both (the rules name whole keys only, so either scan
        // leaves other text as it is).
        // A multipart field's value follows lines of its own head: looked for in the whole
        // piece.
        if let Some(v) = multipart(bytes, &self.extra_names, Style::Stars) {
            if v.len() == bytes.len() {
                bytes.copy_from_slice(&v);
            }
        }
        let body_at = match bytes.windows(4).rposition(|w| w == b"\r\n\r\n") {
            Some(i) => i + 4,
            None if bytes.windows(2).any(|w| w == b"\r\n") => return,
            None => 0,
        };
        let region = &mut bytes[body_at..];
        for kind in [BodyKind::Json, BodyKind::Form] {
            if let Some(v) = body(kind, region, &self.extra_names, Style::Stars) {
                if v.len() == region.len() {
                    region.copy_from_slice(&v);
                }
            }
        }
    }
}

/// A header or trailer field: its name, and its value, redacted or as it was.
type Field<'m> = (&'m [u8], Cow<'m, [u8]>);

#[cfg(test)]
mod tests {
    use super::fields::json;
    use super::*;

    fn hv(r: &Redactor, name: &str, value: &str) -> Option<String> {
        r.header(name.as_bytes(), value.as_bytes(), Style::Marker)
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn a_secret_s_array_value_is_redacted_its_objects_by_their_keys() {
        let j = |t: &str, style| String::from_utf8(json(t.as_bytes(), &[], style)).unwrap();
        assert_eq!(
            j(
                r#"{"secret":["s1",["s2"],{"k":"v","token":"t"}],"x":"y","tokens":["a"]}"#,
                Style::Marker
            ),
            r#"{"secret":["<redacted>",["<redacted>"],{"k":"v","token":"<redacted>"}],"x":"y","tokens":["a"]}"#
        );
        // Stars keep the length; what follows the container is left as it was.
        assert_eq!(
            j(r#"{"secret": [ "ab", 7 ], "id": 3}"#, Style::Stars),
            r#"{"secret": [ "**", * ], "id": 3}"#
        );
    }

    #[test]
    fn credential_headers_keep_their_scheme_and_cookie_names() {
        let r = Redactor::new(&["X-Internal".to_string()], &[]);
        assert_eq!(
            hv(&r, "Authorization", "Bearer abc.def"),
            Some("Bearer <redacted>".into())
        );
        assert_eq!(
            hv(&r, "proxy-authorization", "Basic dXNlcjpwdw=="),
            Some("Basic <redacted>".into())
        );
        assert_eq!(hv(&r, "Authorization", "opaque"), Some("<redacted>".into()));
        assert_eq!(
            hv(&r, "Cookie", "sid=s3cr3t; theme=dark"),
            Some("sid=<redacted>; theme=<redacted>".into())
        );
        assert_eq!(hv(&r, "Cookie", "bare-token"), Some("<redacted>".into()));
        assert_eq!(
            hv(&r, "Set-Cookie", "sid=s3cr3t; Path=/; HttpOnly"),
            Some("sid=<redacted>; Path=/; HttpOnly".into())
        );
        for h in ["X-Api-Key", "x-auth-token", "X-CSRF-Token", "x-internal"] {
            assert_eq!(hv(&r, h, "v"), Some("<redacted>".into()), "{h}");
        }
        assert_eq!(hv(&r, "Host", "example.com"), None);
        assert_eq!(
            hv(&r, "Location", "/cb?code=abc&state=xyz"),
            Some("/cb?code=<redacted>&state=xyz".into())
        );
    }

    #[test]
    fn secret_query_parameters_in_targets() {
        let u =
            |t: &str| url(t.as_bytes(), &[], Style::Marker).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            u("/a?access_token=xyz&page=2&API_KEY=k#f"),
            Some("/a?access_token=<redacted>&page=2&API_KEY=<redacted>#f".into())
        );
        assert_eq!(u("/a?code=123"), None, "code alone is not a secret");
        assert_eq!(
            u("/cb?code=123&state=s"),
            Some("/cb?code=<redacted>&state=s".into())
        );
        assert_eq!(u("/a?page=2"), None);
        assert_eq!(u("/a"), None);
        assert_eq!(u("/a?sig="), None, "nothing to hide");
    }

    #[test]
    fn json_and_form_bodies_at_any_depth_the_rest_untouched() {
        let j = |t: &str| String::from_utf8(json(t.as_bytes(), &[], Style::Marker)).unwrap();
        assert_eq!(
            j(
                r#"{"user": "ann", "password": "hunter2", "n": {"Token": 42, "list": [{"secret":true}]}}"#
            ),
            r#"{"user": "ann", "password": "<redacted>", "n": {"Token": "<redacted>", "list": [{"secret":"<redacted>"}]}}"#
        );
        assert_eq!(
            j(r#"{"key": {"id": 1, "sig": "a\"b"}}"#),
            r#"{"key": {"id": 1, "sig": "<redacted>"}}"#
        );
        assert_eq!(
            j(r#"["password", "token"]"#),
            r#"["password", "token"]"#,
            "strings, not keys"
        );
        assert_eq!(j(r#"{"password": "cut sho"#), r#"{"password": "<redacted>"#);
        let stars =
            String::from_utf8(json(br#"{"token":"abcd","x":1}"#, &[], Style::Stars)).unwrap();
        assert_eq!(stars, r#"{"token":"****","x":1}"#);
        let form = pairs(
            b"user=ann&password=hunter2&client_secret=x",
            b'&',
            Style::Marker,
            |n| secret_name(&[], n),
        );
        assert_eq!(
            form,
            b"user=ann&password=<redacted>&client_secret=<redacted>"
        );
    }

    /// The shapes #30 found leaking: service headers, names spelled with `-`, percent- or
    /// JSON-escaped, a password in a URL's userinfo, JSON and forms sent as text/plain or
    /// with no type; a redacted body keeps its true size and is not called cut.
    #[test]
    fn common_shapes_of_secrets() {
        let r = Redactor::default();
        for h in [
            "Api-Key",
            "X-Amz-Security-Token",
            "X-Goog-Api-Key",
            "Private-Token",
            "X-Vault-Token",
        ] {
            assert_eq!(hv(&r, h, "v"), Some("<redacted>".into()), "{h}");
        }
        let u =
            |t: &str| url(t.as_bytes(), &[], Style::Marker).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            u("/a?access-token=x&pass%77ord=y&page=1"),
            Some("/a?access-token=<redacted>&pass%77ord=<redacted>&page=1".into())
        );
        assert_eq!(
            u("http://ann:hunter2@example.com/x?q=1"),
            Some("http://ann:<redacted>@example.com/x?q=1".into())
        );
        assert_eq!(
            u("http://ann:pw@h/?token=t"),
            Some("http://ann:<redacted>@h/?token=<redacted>".into())
        );
        assert_eq!(u("http://ann@h/"), None, "no password");
        assert_eq!(u("/a@b:c"), None, "no URL");
        let j = |t: &str| String::from_utf8(json(t.as_bytes(), &[], Style::Marker)).unwrap();
        assert_eq!(
            j(
                r#"{"private_key":"k","credentials":{"x":1},"pass\u0077ord":"p","Client-Secret":"c"}"#
            ),
            r#"{"private_key":"<redacted>","credentials":{"x":1},"pass\u0077ord":"<redacted>","Client-Secret":"<redacted>"}"#
        );
        let body = br#"{"user":"ann","password":"a very long password indeed"}"#;
        for content_type in [Some("text/plain"), None] {
            let headers: Vec<(&str, &str)> = content_type
                .map(|t| ("Content-Type", t))
                .into_iter()
                .collect();
            let q = Message::build("POST /j HTTP/1.1", &headers, body, body.len() as u64);
            let m = r.message(&q).expect("sniffed as JSON");
            assert_eq!(m.body(), br#"{"user":"ann","password":"<redacted>"}"#);
            assert_eq!(m.body_bytes, body.len() as u64);
            assert!(!m.body_cut(), "a redacted body is not cut");
            let form = Message::build("POST /f HTTP/1.1", &headers, b"user=ann&pwd=x", 14);
            assert_eq!(
                r.message(&form).expect("sniffed as a form").body(),
                b"user=ann&pwd=<redacted>"
            );
        }
        let text = Message::build("POST /t HTTP/1.1", &[], b"my password=1 is here", 21);
        assert!(r.message(&text).is_none(), "prose is not a form");
    }

    /// multipart/form-data: a field named like a secret has its value replaced, in a message
    /// and in a stream piece (same length); other fields and a file named so are kept.
    #[test]
    fn multipart_fields_named_like_secrets() {
        let body = b"--X\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nann\r\n\
            --X\r\ncontent-disposition: form-data; name=\"Password\"\r\n\r\nhunter2\r\n\
            --X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"password\"\r\n\
            Content-Type: text/plain\r\n\r\ndata\r\n--X--\r\n";
        let q = Message::build(
            "POST /up HTTP/1.1",
            &[("Content-Type", "multipart/form-data; boundary=X")],
            body,
            body.len() as u64,
        );
        let m = Redactor::default().message(&q).expect("a secret field");
        let want = String::from_utf8_lossy(body).replace("hunter2", "<redacted>");
        assert_eq!(String::from_utf8_lossy(m.body()), want);
        let mut piece = body.to_vec();
        Redactor::default().stream_piece(&mut piece);
        let want = String::from_utf8_lossy(body).replace("hunter2", "*******");
        assert_eq!(String::from_utf8_lossy(&piece), want);
    }

    /// --redact NAME: that name's values too, in a target, a JSON body and a form, spelled
    /// with `-` or `_`, case aside.
    #[test]
    fn names_given_are_redacted_as_the_default_ones() {
        let r = Redactor::new(&[], &["Account-Number".to_string()]);
        let q = Message::build(
            "POST /p?account_number=1&x=2 HTTP/1.1",
            &[("Content-Type", "application/json")],
            br#"{"ACCOUNT-NUMBER":"12345","name":"ann"}"#,
            39,
        );
        let m = r.message(&q).expect("a secret");
        assert_eq!(
            m.start(),
            StartLine::Request {
                method: "POST",
                target: "/p?account_number=<redacted>&x=2"
            }
        );
        assert_eq!(m.body(), br#"{"ACCOUNT-NUMBER":"<redacted>","name":"ann"}"#);
        assert!(
            Redactor::default().message(&q).is_none(),
            "not a default name"
        );
    }

    #[test]
    fn messages_are_rebuilt_with_true_sizes() {
        let q = Message::build(
            "POST /login?token=abc HTTP/1.1",
            &[
                ("Host", "h"),
                ("Authorization", "Bearer xyz"),
                ("Content-Type", "application/json"),
            ],
            br#"{"password":"hunter2"}"#,
            22,
        );
        let r = Redactor::default().message(&q).expect("secrets");
        assert_eq!(
            r.start(),
            StartLine::Request {
                method: "POST",
                target: "/login?token=<redacted>"
            }
        );
        assert_eq!(
            r.header_pairs()[1],
            ("Authorization".into(), "Bearer <redacted>".into())
        );
        assert_eq!(r.body(), br#"{"password":"<redacted>"}"#);
        assert_eq!((r.body_bytes, r.head_len()), (q.body_bytes, q.head_len()));
        let plain = Message::build("GET / HTTP/1.1", &[("Host", "h")], b"", 0);
        assert!(Redactor::default().message(&plain).is_none());
    }

    /// Trailer fields are redacted as headers are, the others kept, the size as sent; a
    /// message whose only secret is in a trailer is rebuilt too.
    #[test]
    fn trailer_fields_are_redacted_as_headers() {
        let (out, _) = crate::http::parse_pieces(
            &[b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Sum: 1\r\nAuthorization: Bearer xyz\r\n\r\n"],
            &[],
            64,
        );
        let Some(crate::http::Parsed::Message(q)) = out.last() else {
            panic!("{out:?}");
        };
        let r = Redactor::default()
            .message(q)
            .expect("a secret in a trailer");
        let fields: Vec<(&[u8], &[u8])> = r.trailers().collect();
        assert_eq!(
            fields,
            [
                (&b"X-Sum"[..], &b"1"[..]),
                (b"Authorization", b"Bearer <redacted>")
            ]
        );
        assert_eq!(r.trailers_len(), q.trailers_len());
        assert_eq!(r.header_pairs(), q.header_pairs());
    }

    #[test]
    fn stream_pieces_keep_their_length() {
        let mut piece = b"GET /a?p=1&token=abc HTTP/1.1\r\nAuthorization: Bearer xyz\r\nCookie: a=1\r\n\r\n{\"password\":\"pw\"}".to_vec();
        let len = piece.len();
        Redactor::default().stream_piece(&mut piece);
        assert_eq!(piece.len(), len);
        assert_eq!(
            String::from_utf8(piece).unwrap(),
            "GET /a?p=1&token=*** HTTP/1.1\r\nAuthorization: Bearer ***\r\nCookie: a=*\r\n\r\n{\"password\":\"**\"}"
        );
        let mut form = b"user=ann&password=pw".to_vec();
        Redactor::default().stream_piece(&mut form);
        assert_eq!(form, b"user=ann&password=**");
        // An absolute target's colon does not make its request line a header line.
        let mut absolute =
            b"GET http://ann:pw@h/?Api-Key=k HTTP/1.1\r\nX-Vault-Token: v\r\n\r\n".to_vec();
        Redactor::default().stream_piece(&mut absolute);
        assert_eq!(
            absolute,
            b"GET http://ann:**@h/?Api-Key=* HTTP/1.1\r\nX-Vault-Token: *\r\n\r\n"
        );
    }
}
