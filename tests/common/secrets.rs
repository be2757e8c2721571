//! A corpus of secrets in every place and shape redaction must find, sent to a server.

use super::*;

/// The nginx the corpus is sent to: it answers everything with a secret of its own
/// (SECRET-RESPONSE-23, in a JSON body).
pub fn nginx_with_a_secret() -> Server {
    Server::nginx_answering_json(r#"{"access_token":"SECRET-RESPONSE-23"}"#)
}

/// Send the corpus to 127.0.0.1:`port` (nginx_with_a_secret): 14 exchanges. Returns the
/// secrets, each a string no output may show.
pub fn send_secrets(port: u16) -> Vec<&'static str> {
    let secrets = vec![
        "SECRET-BEARER-1",
        "SECRET-COOKIE-2",
        "SECRET-APIKEY-3",
        "SECRET-QUERY-4",
        "SECRET-JSON-5",
        "SECRET-FORM-6",
        "SECRET-APIKEY-7",
        "SECRET-AMZ-8",
        "SECRET-GOOG-9",
        "SECRET-PRIVATE-10",
        "SECRET-VAULT-11",
        "SECRET-QUERY-12",
        "SECRET-QUERY-13",
        "SECRET-PLAIN-JSON-14",
        "SECRET-ESCAPED-15",
        "SECRET-UNTYPED-FORM-16",
        "SECRET-USERINFO-17",
        "SECRET-MULTIPART-18",
        "SECRET-SPLIT-KEY-19",
        "SECRET-CHUNKED-20",
        "SECRET-SPLIT-HEADER-21",
        "SECRET-LONG-22",
        "SECRET-RESPONSE-23",
        "SECRET-REPEATED-24",
        "SECRET-REPEATED-25",
        "SECRET-NESTED-26",
    ];
    let base = format!("http://127.0.0.1:{port}");
    curl(&[
        "-H",
        "Authorization: Bearer SECRET-BEARER-1",
        "-H",
        "Cookie: sid=SECRET-COOKIE-2; theme=dark",
        "-H",
        "X-Api-Key: SECRET-APIKEY-3",
        &format!("{base}/login?access_token=SECRET-QUERY-4&page=1"),
    ]);
    curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        r#"{"user":"ann","auth":{"password":"SECRET-JSON-5"}}"#,
        &format!("{base}/json"),
    ]);
    curl(&[
        "--data-binary",
        "user=ann&client_secret=SECRET-FORM-6",
        &format!("{base}/form"),
    ]);
    // The shapes #30 found leaking: service headers, names with `-` or percent-escaped, JSON
    // sent as text/plain with an escaped key, a form with no type, a multipart field, a
    // password in a URL.
    curl(&[
        "-H",
        "Api-Key: SECRET-APIKEY-7",
        "-H",
        "X-Amz-Security-Token: SECRET-AMZ-8",
        "-H",
        "X-Goog-Api-Key: SECRET-GOOG-9",
        "-H",
        "Private-Token: SECRET-PRIVATE-10",
        "-H",
        "X-Vault-Token: SECRET-VAULT-11",
        &format!("{base}/shapes?access-token=SECRET-QUERY-12&pass%77ord=SECRET-QUERY-13"),
    ]);
    curl(&[
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        r#"{"private_key":"SECRET-PLAIN-JSON-14","pass\u0077ord":"SECRET-ESCAPED-15"}"#,
        &format!("{base}/plain"),
    ]);
    curl(&[
        "-H",
        "Content-Type:",
        "--data-binary",
        "user=ann&pwd=SECRET-UNTYPED-FORM-16",
        &format!("{base}/untyped"),
    ]);
    curl(&[
        "-F",
        "user=ann",
        "-F",
        "password=SECRET-MULTIPART-18",
        &format!("{base}/multipart"),
    ]);
    // A key repeated, in a form and in JSON, and one nested in an array of objects.
    curl(&[
        "--data-binary",
        "password=SECRET-REPEATED-24&password=SECRET-REPEATED-24&x=1",
        &format!("{base}/repeated-form"),
    ]);
    curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        r#"{"token":"SECRET-REPEATED-25","a":[{"b":{"token":"SECRET-REPEATED-25"}},{"secret":["SECRET-NESTED-26"]}]}"#,
        &format!("{base}/repeated-json"),
    ]);
    let mut c = Client::connect(port);
    c.send(&[b"GET http://ann:SECRET-USERINFO-17@127.0.0.1/userinfo HTTP/1.1\r\nHost: h\r\n\r\n"]);
    c.responses(1);
    // Split across the server's reads (each piece read before the next is sent): a JSON key,
    // a chunked body's key across its chunks, a header line; and a value of 200 kB, in many
    // events.
    let body = r#"{"user":"ann","password":"SECRET-SPLIT-KEY-19"}"#;
    let head = format!(
        "POST /split HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..21]
    );
    let mut c = Client::connect(port);
    c.send(&[head.as_bytes(), &body.as_bytes()[21..]]);
    c.responses(1);
    let mut c = Client::connect(port);
    c.send(&[
        b"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"token\r\n",
        b"16\r\n\":\"SECRET-CHUNKED-20\"}\r\n0\r\n\r\n",
    ]);
    c.responses(1);
    let mut c = Client::connect(port);
    c.send(&[
        b"GET /split-header HTTP/1.1\r\nHost: h\r\nX-Api-Key: SECRET-SPLIT-",
        b"HEADER-21\r\n\r\n",
    ]);
    c.responses(1);
    let long = format!(r#"{{"password":"SECRET-LONG-22{}"}}"#, "x".repeat(200_000));
    let mut c = Client::connect(port);
    c.send(&[format!(
        "POST /long HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{long}",
        long.len()
    )
    .as_bytes()]);
    c.responses(1);
    secrets
}
