//! HAR 1.2 (the HTTP Archive that browsers' developer tools read and write): one `log` whose
//! entries are streamed as exchanges complete, so that a long trace holds none of them in
//! memory; the document is opened when the printer is made and closed by its `finish`.
//!
//! Where HAR has no place for what we know, `_`-prefixed fields carry it (the process, role
//! and connection). A Unix-socket connection has no IP address: its URL's host is the Host
//! header, or `unix.invalid` (a name that RFC 2606 keeps from ever resolving) without one, and
//! `_unix_socket` names the socket's path. Responses whose request was not seen and malformed
//! messages have no place in HAR: the summary counts them.

use std::borrow::Cow;
use std::net::SocketAddr;

use base64::Engine;
use serde::Serialize;

use crate::container::Identity;
use crate::decode::{Endpoints, Role};
use crate::http::{Message, StartLine};
use crate::record::{ConnInfo, Record};

/// The document up to its first entry.
pub fn prologue() -> String {
    format!(
        r#"{{"log":{{"version":"1.2","creator":{{"name":"http-trace","version":"{}"}},"pages":[],"entries":["#,
        env!("CARGO_PKG_VERSION")
    )
}

/// What closes the document.
pub const EPILOGUE: &str = "]}}\n";

#[derive(Serialize)]
struct NameValue<'a> {
    name: Cow<'a, str>,
    value: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cookie<'a> {
    name: Cow<'a, str>,
    value: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secure: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostData<'a> {
    mime_type: Cow<'a, str>,
    text: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    method: &'a str,
    url: String,
    http_version: &'static str,
    cookies: Vec<Cookie<'a>>,
    headers: Vec<NameValue<'a>>,
    query_string: Vec<NameValue<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_data: Option<PostData<'a>>,
    headers_size: i64,
    body_size: i64,
    /// A chunked body's trailer fields (HAR has no place for them).
    #[serde(rename = "_trailers", skip_serializing_if = "Vec::is_empty")]
    trailers: Vec<NameValue<'a>>,
    /// What it was read leniently with.
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content<'a> {
    size: u64,
    mime_type: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    status: u16,
    status_text: Cow<'a, str>,
    http_version: &'static str,
    cookies: Vec<Cookie<'a>>,
    headers: Vec<NameValue<'a>>,
    content: Content<'a>,
    #[serde(rename = "redirectURL")]
    redirect_url: Cow<'a, str>,
    headers_size: i64,
    body_size: i64,
    #[serde(rename = "_trailers", skip_serializing_if = "Vec::is_empty")]
    trailers: Vec<NameValue<'a>>,
    #[serde(rename = "_error", skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

#[derive(Serialize)]
struct Timings {
    send: f64,
    wait: f64,
    receive: f64,
}

#[derive(Serialize)]
struct Cache {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    started_date_time: &'a str,
    time: f64,
    request: Request<'a>,
    response: Response<'a>,
    cache: Cache,
    timings: Timings,
    #[serde(rename = "serverIPAddress", skip_serializing_if = "Option::is_none")]
    server_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
    #[serde(rename = "_pid")]
    pid: u32,
    #[serde(rename = "_tid")]
    tid: u32,
    #[serde(rename = "_comm")]
    comm: Cow<'a, str>,
    #[serde(rename = "_thread", skip_serializing_if = "Option::is_none")]
    thread: Option<Cow<'a, str>>,
    #[serde(rename = "_ns_pid", skip_serializing_if = "Option::is_none")]
    ns_pid: Option<u32>,
    #[serde(rename = "_container_id", skip_serializing_if = "Option::is_none")]
    container_id: Option<&'a str>,
    #[serde(rename = "_pod_uid", skip_serializing_if = "Option::is_none")]
    pod_uid: Option<&'a str>,
    #[serde(rename = "_fd")]
    fd: i32,
    #[serde(rename = "_role")]
    role: &'static str,
    #[serde(rename = "_local", skip_serializing_if = "Option::is_none")]
    local: Option<String>,
    #[serde(rename = "_peer", skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    #[serde(rename = "_unix_socket", skip_serializing_if = "Option::is_none")]
    unix_socket: Option<String>,
    #[serde(rename = "_response_pid", skip_serializing_if = "Option::is_none")]
    response_pid: Option<u32>,
    #[serde(rename = "_response_fd", skip_serializing_if = "Option::is_none")]
    response_fd: Option<i32>,
    /// Read through the TLS library: the plaintext of an HTTPS connection.
    #[serde(rename = "_tls", skip_serializing_if = "std::ops::Not::not")]
    tls: bool,
    /// Whether a message of it was found after bytes skipped to resynchronise.
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'static str>,
}

fn lossy(b: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn version(m: &Message) -> &'static str {
    if m.version == 0 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}

/// The bytes of a message's header fields as sent: its head, and its trailer fields (headers
/// sent after a chunked body).
fn headers_size(m: &Message) -> i64 {
    (m.head_len() + m.trailers_len()) as i64
}

fn header<'m>(m: &'m Message, name: &str) -> Option<&'m [u8]> {
    m.headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

fn headers(m: &Message) -> Vec<NameValue<'_>> {
    fields(m.headers())
}

/// Header or trailer fields as HAR's name-value pairs.
fn fields<'m>(fields: impl Iterator<Item = (&'m [u8], &'m [u8])>) -> Vec<NameValue<'m>> {
    fields
        .map(|(n, v)| NameValue {
            name: lossy(n),
            value: lossy(v),
        })
        .collect()
}

/// `%XX` sequences decoded, and `+` as a space (form encoding, as browsers show query strings).
fn percent_decoded(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// The name-value pairs of a target's query.
fn query_string(target: &str) -> Vec<NameValue<'_>> {
    let Some((_, query)) = target.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            NameValue {
                name: percent_decoded(n),
                value: percent_decoded(v),
            }
        })
        .collect()
}

/// The cookies of a request's Cookie headers.
fn request_cookies(m: &Message) -> Vec<Cookie<'_>> {
    m.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, v)| lossy(v).split(';').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|c| {
            let (n, v) = c.trim().split_once('=')?;
            Some(Cookie {
                name: Cow::Owned(n.trim().to_string()),
                value: Cow::Owned(v.trim().to_string()),
                path: None,
                domain: None,
                http_only: None,
                secure: None,
            })
        })
        .collect()
}

/// The cookies a response sets, with the attributes HAR names.
fn response_cookies(m: &Message) -> Vec<Cookie<'_>> {
    m.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"set-cookie"))
        .filter_map(|(_, v)| {
            let v = lossy(v);
            let mut parts = v.split(';').map(str::trim);
            let (name, value) = parts.next()?.split_once('=')?;
            let mut c = Cookie {
                name: Cow::Owned(name.to_string()),
                value: Cow::Owned(value.to_string()),
                path: None,
                domain: None,
                http_only: None,
                secure: None,
            };
            for attr in parts {
                let (k, val) = attr.split_once('=').unwrap_or((attr, ""));
                match k.to_ascii_lowercase().as_str() {
                    "path" => c.path = Some(Cow::Owned(val.to_string())),
                    "domain" => c.domain = Some(Cow::Owned(val.to_string())),
                    "httponly" => c.http_only = Some(true),
                    "secure" => c.secure = Some(true),
                    _ => {}
                }
            }
            Some(c)
        })
        .collect()
}

/// The server's end of the connection, and the client's.
fn ends(conn: &ConnInfo) -> Option<(SocketAddr, SocketAddr)> {
    match &conn.endpoints {
        Some(Endpoints::Inet { local, peer }) => Some(match conn.role {
            Role::Client => (*peer, *local),
            _ => (*local, *peer),
        }),
        _ => None,
    }
}

/// The request's absolute URL: its target when absolute already, else from its Host header,
/// or the server's address, or the placeholder host of a Unix socket; https when read through
/// the TLS library.
fn url(conn: &ConnInfo, q: &Message, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        return target.to_string();
    }
    let host = match header(q, "host") {
        Some(h) if !h.is_empty() => lossy(h).into_owned(),
        _ => match ends(conn) {
            Some((server, _)) => server.to_string(),
            None => "unix.invalid".to_string(),
        },
    };
    let path = if target.starts_with('/') { target } else { "/" };
    let scheme = if conn.tls { "https" } else { "http" };
    format!("{scheme}://{host}{path}")
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

/// A body's content as HAR keeps it: text when it is UTF-8, else base64.
fn content<'m>(m: &'m Message) -> Content<'m> {
    let body = m.body();
    let mime = header(m, "content-type").map_or(Cow::Borrowed("x-unknown"), lossy);
    let (text, encoding) = match std::str::from_utf8(body) {
        Ok(t) => (Cow::Borrowed(t), None),
        Err(_) => (
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(body)),
            Some("base64"),
        ),
    };
    Content {
        size: m.body_bytes,
        mime_type: mime,
        text: Some(text),
        encoding,
        comment: m
            .body_cut()
            .then(|| format!("first {} of {} bytes kept", body.len(), m.body_bytes)),
    }
}

/// "read leniently: bare-lf, ..." where a message was read outside RFC 9112's grammar.
fn lenient_comment(m: &Message) -> Option<String> {
    (!m.lenient.is_empty()).then(|| {
        format!(
            "read leniently: {}",
            m.lenient.names().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The phases of an exchange, in ms (-1: not seen), and their sum.
fn timings(q: &Message, r: Option<&Message>) -> (Timings, f64) {
    let (wait, receive) = match r {
        Some(r) => (
            ms(r.ts_ns.saturating_sub(q.end_ts_ns)),
            ms(r.end_ts_ns.saturating_sub(r.ts_ns)),
        ),
        None => (-1.0, -1.0),
    };
    let timings = Timings {
        send: ms(q.end_ts_ns.saturating_sub(q.ts_ns)),
        wait,
        receive,
    };
    let time = [timings.send, timings.wait, timings.receive]
        .iter()
        .filter(|t| **t >= 0.0)
        .sum::<f64>();
    (timings, (time * 1e3).round() / 1e3)
}

fn request<'m>(conn: &ConnInfo, q: &'m Message, method: &'m str, target: &'m str) -> Request<'m> {
    Request {
        method,
        url: url(conn, q, target),
        http_version: version(q),
        cookies: request_cookies(q),
        headers: headers(q),
        query_string: query_string(target),
        post_data: (q.body_bytes > 0).then(|| PostData {
            mime_type: header(q, "content-type").map_or(Cow::Borrowed(""), lossy),
            text: lossy(q.body()),
            comment: q
                .body_cut()
                .then(|| format!("first {} of {} bytes kept", q.body().len(), q.body_bytes)),
        }),
        headers_size: headers_size(q),
        body_size: q.body_bytes as i64,
        trailers: fields(q.trailers()),
        comment: lenient_comment(q),
    }
}

fn response(r: Option<&Message>) -> Response<'_> {
    let Some(r) = r else {
        return Response {
            status: 0,
            status_text: Cow::Borrowed(""),
            http_version: "",
            cookies: Vec::new(),
            headers: Vec::new(),
            content: Content {
                size: 0,
                mime_type: Cow::Borrowed("x-unknown"),
                text: None,
                encoding: None,
                comment: None,
            },
            redirect_url: Cow::Borrowed(""),
            headers_size: -1,
            body_size: -1,
            trailers: Vec::new(),
            error: Some("no response"),
            comment: None,
        };
    };
    let (status, reason) = match r.start() {
        StartLine::Response { status, reason } => (status, lossy(reason)),
        StartLine::Request { .. } => (0, Cow::Borrowed("")),
    };
    Response {
        status,
        status_text: reason,
        http_version: version(r),
        cookies: response_cookies(r),
        headers: headers(r),
        content: content(r),
        redirect_url: header(r, "location").map_or(Cow::Borrowed(""), lossy),
        headers_size: headers_size(r),
        body_size: r.body_bytes as i64,
        trailers: fields(r.trailers()),
        error: (!r.complete).then_some("the response was cut short"),
        comment: lenient_comment(r),
    }
}

/// The local and peer addresses as shown, and a Unix connection's socket path.
fn addresses(conn: &ConnInfo) -> (Option<String>, Option<String>, Option<String>) {
    match &conn.endpoints {
        Some(Endpoints::Inet { local, peer }) => {
            (Some(local.to_string()), Some(peer.to_string()), None)
        }
        Some(Endpoints::Unix(u)) => (
            u.local.name(),
            u.peer.name(),
            u.local.name().or_else(|| u.peer.name()),
        ),
        None => (None, None, None),
    }
}

/// Append `rec` as a HAR entry to `buf`, after a comma unless it is the `first`; false when it
/// has no place in HAR (no request seen, a malformed message).
pub fn write(
    buf: &mut Vec<u8>,
    rec: &Record,
    ts: &str,
    who: Option<&Identity>,
    first: bool,
) -> bool {
    let Record::Exchange {
        conn,
        request: Some(q),
        response: r,
        responder,
    } = rec
    else {
        return false;
    };
    let StartLine::Request { method, target } = q.start() else {
        return false;
    };
    let (timings, time) = timings(q, r.as_ref());
    let (local, peer, unix) = addresses(conn);
    let m = &conn.meta;
    let entry = Entry {
        started_date_time: ts,
        time,
        request: request(conn, q, method, target),
        response: response(r.as_ref()),
        cache: Cache {},
        timings,
        server_ip_address: ends(conn).map(|(s, _)| s.ip().to_string()),
        connection: ends(conn).map(|(_, c)| c.port().to_string()),
        pid: m.tgid,
        tid: m.tid,
        comm: lossy(m.comm.bytes()),
        thread: m.thread_apart().map(|t| lossy(t.bytes())),
        ns_pid: who.map(|w| w.ns_pid).filter(|&p| p != 0),
        container_id: who
            .map(|w| w.container_id.as_str())
            .filter(|s| !s.is_empty()),
        pod_uid: who.map(|w| w.pod_uid.as_str()).filter(|s| !s.is_empty()),
        fd: m.fd,
        role: conn.role.as_str(),
        local,
        peer,
        unix_socket: unix,
        response_pid: responder.map(|r| r.tgid),
        response_fd: responder.map(|r| r.fd),
        tls: conn.tls,
        comment: (q.resynced || r.as_ref().is_some_and(|r| r.resynced))
            .then_some("found after bytes skipped to resynchronise"),
    };
    if !first {
        buf.push(b',');
    }
    let written = serde_json::to_writer(&mut *buf, &entry);
    // Writing to a Vec fails only on a Serialize impl's error, and ours return none.
    debug_assert!(written.is_ok());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_and_plus_decoded() {
        assert_eq!(percent_decoded("plain"), "plain");
        assert_eq!(percent_decoded("a%20b+c%2Bd"), "a b c+d");
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%4"), "%4");
        assert_eq!(percent_decoded("%zz%41"), "%zzA");
        assert_eq!(percent_decoded("caf%C3%A9"), "café");
        assert_eq!(percent_decoded("%ff"), "\u{fffd}");
    }

    #[test]
    fn query_strings_are_split_and_decoded() {
        let q = query_string("/s?q=a+b%21&x=&flag&e=%zz#frag");
        let got: Vec<(String, String)> = q
            .iter()
            .map(|nv| (nv.name.to_string(), nv.value.to_string()))
            .collect();
        let want = [("q", "a b!"), ("x", ""), ("flag", ""), ("e", "%zz")];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        assert!(query_string("/plain").is_empty());
    }
}
