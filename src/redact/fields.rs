//! The values inside bodies and URLs that redaction takes out: JSON and form bodies (declared or
//! sniffed), multipart fields, query parameters and a URL's userinfo password.

use super::{replacement, secret_name, Style, REDACTED};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyKind {
    Json,
    Form,
    /// multipart/form-data: fields named like secrets.
    Multipart,
}

/// What a body that declares no type, or `text/plain`, holds, from its first bytes: JSON (an
/// object or array), or a form (`name=value` pairs, nothing a form would have escaped).
pub(super) fn sniffed_kind(body: &[u8]) -> Option<BodyKind> {
    let text = body.trim_ascii_start();
    match text.first()? {
        b'{' | b'[' => Some(BodyKind::Json),
        _ if text.contains(&b'=')
            && text
                .iter()
                .all(|&c| c.is_ascii_graphic() && !matches!(c, b'"' | b'<' | b'>' | b'{')) =>
        {
            Some(BodyKind::Form)
        }
        _ => None,
    }
}

/// What a Content-Type value says of the body, for redaction.
pub(super) fn body_kind(v: &[u8]) -> Option<BodyKind> {
    let form = b"application/x-www-form-urlencoded";
    if v.windows(4).any(|w| w.eq_ignore_ascii_case(b"json")) {
        Some(BodyKind::Json)
    } else if v.len() >= form.len() && v[..form.len()].eq_ignore_ascii_case(form) {
        Some(BodyKind::Form)
    } else if v.len() >= 19 && v[..19].eq_ignore_ascii_case(b"multipart/form-data") {
        Some(BodyKind::Multipart)
    } else {
        None
    }
}

/// A body without its secrets, or None when it has none. Most bodies have none: they are
/// looked through first without a copy (a body is kept up to --max-body bytes, 4 KiB).
pub(super) fn body(kind: BodyKind, b: &[u8], extra: &[Vec<u8>], style: Style) -> Option<Vec<u8>> {
    let out = match kind {
        BodyKind::Json if json_has_secret_key(b, extra) => json(b, extra, style),
        BodyKind::Form
            if b.split(|&c| c == b'&').any(|p| {
                p.iter()
                    .position(|&c| c == b'=')
                    .is_some_and(|eq| secret_name(extra, p[..eq].trim_ascii()))
            }) =>
        {
            pairs(b, b'&', style, |n| secret_name(extra, n))
        }
        BodyKind::Multipart => return multipart(b, extra, style),
        _ => return None,
    };
    (out != b).then_some(out)
}

/// A multipart/form-data body with the values of the fields named like secrets replaced, or
/// None when it has none. A field is found by its Content-Disposition line (`form-data;
/// name="password"`); its value runs from the blank line after it to the next delimiter
/// (CRLF `--`), or the text's end when cut short. No boundary is needed, so a piece of a
/// stream is redacted as a whole body is.
pub(super) fn multipart(b: &[u8], extra: &[Vec<u8>], style: Style) -> Option<Vec<u8>> {
    const DISPOSITION: &[u8] = b"content-disposition:";
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while let Some(k) = b[i..]
        .windows(DISPOSITION.len())
        .position(|w| w.eq_ignore_ascii_case(DISPOSITION))
    {
        let line_start = i + k;
        let line_end = b[line_start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(b.len(), |e| line_start + e);
        i = line_end;
        let line = &b[line_start..line_end];
        let Some(n) = line
            .windows(6)
            .position(|w| w.eq_ignore_ascii_case(b"name=\""))
        else {
            continue;
        };
        // `name=`, not `filename=`: the byte before it is a separator.
        if n > 0 && !matches!(line[n - 1], b' ' | b';' | b'\t') {
            continue;
        }
        let name_start = n + 6;
        let Some(len) = line[name_start..].iter().position(|&c| c == b'"') else {
            continue;
        };
        if !secret_name(extra, &line[name_start..name_start + len]) {
            continue;
        }
        let Some(blank) = b[line_end..].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let value_start = line_end + blank + 4;
        let value_end = b[value_start..]
            .windows(4)
            .position(|w| w == b"\r\n--")
            .map_or(b.len(), |e| value_start + e);
        if value_end == value_start {
            continue;
        }
        let o = out.get_or_insert_with(|| Vec::with_capacity(b.len()));
        o.extend_from_slice(&b[copied..value_start]);
        o.extend_from_slice(&replacement(style, &b[value_start..value_end]));
        copied = value_end;
        i = value_end;
    }
    let mut o = out?;
    o.extend_from_slice(&b[copied..]);
    Some(o)
}

/// Whether JSON text has a key named like a secret: each string followed by `:` is checked.
pub(super) fn json_has_secret_key(b: &[u8], extra: &[Vec<u8>]) -> bool {
    let mut i = 0;
    while let Some(k) = b[i..].iter().position(|&c| c == b'"') {
        let start = i + k;
        let end = string_end(b, start);
        if end > start + 1 {
            let after = b[end..].iter().find(|c| !c.is_ascii_whitespace());
            if after == Some(&b':') && secret_name(extra, &b[start + 1..end - 1]) {
                return true;
            }
        }
        i = end;
        if i >= b.len() {
            break;
        }
    }
    false
}

/// `name=value` pairs separated by `sep`, the value replaced where `secret(name)` says.
pub(super) fn pairs(b: &[u8], sep: u8, style: Style, secret: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for (i, pair) in b.split(|&c| c == sep).enumerate() {
        if i > 0 {
            out.push(sep);
        }
        match pair.iter().position(|&c| c == b'=') {
            Some(eq) if secret(pair[..eq].trim_ascii()) && eq + 1 < pair.len() => {
                out.extend_from_slice(&pair[..=eq]);
                out.extend_from_slice(&replacement(style, &pair[eq + 1..]));
            }
            // A bare value (a cookie without a name), where every name is a secret.
            None if secret(b"") && !pair.trim_ascii().is_empty() => {
                let lead = pair.len() - pair.trim_ascii_start().len();
                out.extend_from_slice(&pair[..lead]);
                out.extend_from_slice(&replacement(style, &pair[lead..]));
            }
            _ => out.extend_from_slice(pair),
        }
    }
    out
}

/// A target, URL or request line without its secrets (a password in its userinfo, the values
/// of its secret query parameters), or None when it has none.
pub(super) fn url(b: &[u8], extra: &[Vec<u8>], style: Style) -> Option<Vec<u8>> {
    let without_password = userinfo_password(b, style);
    let b2 = without_password.as_deref().unwrap_or(b);
    query(b2, extra, style).or(without_password)
}

/// `b` with the password of its URL's userinfo (`http://user:pw@host/`) replaced, or None when
/// it has none.
fn userinfo_password(b: &[u8], style: Style) -> Option<Vec<u8>> {
    let scheme_end = b.windows(3).position(|w| w == b"://")? + 3;
    let authority_end = b[scheme_end..]
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#' | b' '))
        .map_or(b.len(), |i| scheme_end + i);
    let at = scheme_end
        + b[scheme_end..authority_end]
            .iter()
            .rposition(|&c| c == b'@')?;
    let colon = scheme_end + b[scheme_end..at].iter().position(|&c| c == b':')?;
    if colon + 1 == at {
        return None;
    }
    let mut out = b[..=colon].to_vec();
    out.extend_from_slice(&replacement(style, &b[colon + 1..at]));
    out.extend_from_slice(&b[at..]);
    Some(out)
}

/// A target, URL or request line with the values of its secret query parameters replaced,
/// or None when it has none. `code` counts only next to `state` (OAuth).
fn query(b: &[u8], extra: &[Vec<u8>], style: Style) -> Option<Vec<u8>> {
    let q = b.iter().position(|&c| c == b'?')?;
    // The query ends at a fragment or, in a request line, at the space before the version.
    let end = b[q..]
        .iter()
        .position(|&c| c == b'#' || c == b' ')
        .map_or(b.len(), |i| q + i);
    let query = &b[q + 1..end];
    let has_state = query
        .split(|&c| c == b'&')
        .any(|p| p.split(|&c| c == b'=').next() == Some(b"state"));
    let redacted = pairs(query, b'&', style, |name| {
        secret_name(extra, name) || (has_state && name == b"code")
    });
    if redacted == query {
        return None;
    }
    let mut out = b[..=q].to_vec();
    out.extend_from_slice(&redacted);
    out.extend_from_slice(&b[end..]);
    Some(out)
}

/// `b` (JSON) with the values of secret keys replaced: a string or scalar value whole, and the
/// elements of an array value (`"secret":["a","b"]`, arrays in it too). An object value keeps
/// its keys, whose values are redacted as their own names say (`"key":{"id":1}` stays).
pub(super) fn json(b: &[u8], extra: &[Vec<u8>], style: Style) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    // Whether the string just read was a key naming a secret, waiting for its ':'.
    let mut pending_secret = false;
    // The value of a secret key is an array about to open.
    let mut secret_array = false;
    // Per object or array open, whether its elements are secrets (an array a secret's value).
    let mut open: Vec<bool> = Vec::new();
    while i < b.len() {
        let in_secret = open.last() == Some(&true);
        match b[i] {
            b'"' => {
                let end = string_end(b, i);
                // A key is a string followed by ':'.
                let after = b[end..]
                    .iter()
                    .position(|c| !c.is_ascii_whitespace())
                    .map(|k| end + k);
                let key = after.is_some_and(|k| b[k] == b':');
                if in_secret && !key {
                    i = redact_value(b, i, style, &mut out);
                    continue;
                }
                let s = &b[i..end];
                out.extend_from_slice(s);
                pending_secret = key && s.len() >= 2 && secret_name(extra, &s[1..s.len() - 1]);
                i = end;
            }
            b':' if pending_secret => {
                out.push(b':');
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    out.push(b[i]);
                    i += 1;
                }
                pending_secret = false;
                match b.get(i) {
                    None => break,
                    Some(b'[') => secret_array = true,
                    // An object's keys say which of its values are secrets.
                    Some(b'{') => {}
                    Some(_) => i = redact_value(b, i, style, &mut out),
                }
            }
            c @ (b'{' | b'[') => {
                open.push(c == b'[' && (std::mem::take(&mut secret_array) || in_secret));
                out.push(c);
                i += 1;
            }
            c @ (b'}' | b']') => {
                open.pop();
                out.push(c);
                i += 1;
            }
            c if in_secret && !c.is_ascii_whitespace() && !matches!(c, b',' | b':') => {
                i = redact_value(b, i, style, &mut out);
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Redact the JSON string or scalar value at `b[i]` into `out`; returns where it ends.
fn redact_value(b: &[u8], i: usize, style: Style, out: &mut Vec<u8>) -> usize {
    if b[i] == b'"' {
        let end = string_end(b, i);
        let closed = end > i + 1 && b[end - 1] == b'"';
        let inner = &b[i + 1..if closed { end - 1 } else { end }];
        out.push(b'"');
        match style {
            Style::Marker => out.extend_from_slice(REDACTED.as_bytes()),
            Style::Stars => out.extend(std::iter::repeat_n(b'*', inner.len())),
        }
        if closed {
            out.push(b'"');
        }
        return end;
    }
    let end = b[i..]
        .iter()
        .position(|&c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
        .map_or(b.len(), |k| i + k);
    match style {
        Style::Marker => {
            out.push(b'"');
            out.extend_from_slice(REDACTED.as_bytes());
            out.push(b'"');
        }
        Style::Stars => out.extend(std::iter::repeat_n(b'*', end - i)),
    }
    end
}

/// Where the JSON string that starts at `b[start]` (a quote) ends: past its closing quote, or
/// at the end of the text.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}
