//! The parser's tests: byte fixtures of each state, and the proptests of any cutting and of
//! every byte counted once.

use super::*;

fn parse_all(pieces: &[&[u8]]) -> (Vec<Parsed>, Parser) {
    let mut p = Parser::new(64);
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        p.feed(piece, i as u64 + 1, &mut out);
    }
    (out, p)
}

fn requests(out: &[Parsed]) -> Vec<&Message> {
    out.iter()
        .filter_map(|p| match p {
            Parsed::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn line(m: &Message) -> String {
    match m.start() {
        StartLine::Request { method, target } => format!("{method} {target}"),
        StartLine::Response { status, reason } => {
            format!("{status} {}", String::from_utf8_lossy(reason))
        }
    }
}

/// Messages and errors, in order (request heads and switches left out).
fn targets(out: &[Parsed]) -> Vec<String> {
    out.iter()
        .filter_map(|p| match p {
            Parsed::Message(m) => Some(line(m)),
            Parsed::Malformed { reason, .. } => Some(format!("malformed: {reason}")),
            Parsed::RequestHead { .. }
            | Parsed::RequestGivenUp { .. }
            | Parsed::Switched
            | Parsed::Lost { .. } => None,
        })
        .collect()
}

const GET: &[u8] =
    b"GET /items?id=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nAccept: text/plain\r\n\r\n";

#[test]
fn parses_a_simple_request() {
    let (out, _) = parse_all(&[GET]);
    let r = requests(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(line(r[0]), "GET /items?id=1");
    assert_eq!(r[0].version, 1);
    assert_eq!(r[0].ts_ns, 1);
    assert_eq!(
        r[0].header_pairs(),
        vec![
            ("Host".to_string(), "example".to_string()),
            ("Accept".to_string(), "*/*".to_string()),
            ("Accept".to_string(), "text/plain".to_string()),
        ]
    );
    assert_eq!(r[0].body_bytes, 0);
    assert!(r[0].complete);
}

#[test]
fn request_split_byte_by_byte_is_the_same_request() {
    let pieces: Vec<&[u8]> = GET.chunks(1).collect();
    let (out, _) = parse_all(&pieces);
    let (whole, _) = parse_all(&[GET]);
    assert_eq!(requests(&out).len(), 1);
    assert_eq!(
        requests(&out)[0].header_pairs(),
        requests(&whole)[0].header_pairs()
    );
    // The timestamp is that of the piece holding the first byte.
    assert_eq!(requests(&out)[0].ts_ns, 1);
}

#[test]
fn pipelined_requests_in_one_piece() {
    let data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.0\r\n\r\n";
    let (out, _) = parse_all(&[data]);
    assert_eq!(targets(&out), ["GET /a", "POST /b", "GET /c"]);
    let r = requests(&out);
    assert_eq!(r[1].body(), b"abc");
    assert_eq!(r[2].version, 0);
}

#[test]
fn content_length_body_across_pieces() {
    let (out, _) = parse_all(&[
        b"PUT /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello",
        b" ",
        b"worldGET /next HTTP/1.1\r\n\r\n",
    ]);
    assert_eq!(targets(&out), ["PUT /x", "GET /next"]);
    let r = requests(&out);
    assert_eq!(r[0].body(), b"hello world");
    assert_eq!(r[0].body_bytes, 11);
    assert!(!r[0].body_cut());
}

#[test]
fn chunked_body_with_extensions_and_trailers_byte_by_byte() {
    let data: &[u8] = b"POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\nX-Sum:\t a b \r\n\r\nGET /after HTTP/1.1\r\n\r\n";
    for pieces in [vec![data], data.chunks(1).collect::<Vec<_>>()] {
        let (out, _) = parse_all(&pieces);
        assert_eq!(targets(&out), ["POST /up", "GET /after"]);
        let r = requests(&out);
        assert_eq!(r[0].body(), b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(r[0].body_bytes, 23);
        let trailers: Vec<_> = r[0].trailers().collect();
        assert_eq!(
            trailers,
            [(&b"X-Trailer"[..], &b"1"[..]), (&b"X-Sum"[..], &b"a b"[..])]
        );
        assert_eq!(r[0].trailers_len(), 28);
        assert_eq!(r[1].trailers().count(), 0);
    }
}

/// A trailer line that is no field makes its message incomplete and malformed; the next
/// message is found.
#[test]
fn a_malformed_trailer_field() {
    for bad in [
        &b"no colon"[..],
        b": no name",
        b"bad name: x",
        &[&b"B: "[..], &[b'v'; MAX_HEAD_BYTES]].concat(),
    ] {
        let mut data =
            b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n".to_vec();
        data.extend_from_slice(b"A: 1\r\n");
        data.extend_from_slice(bad);
        data.extend_from_slice(b"\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
        let (out, _) = parse_all(&[&data]);
        let reason = if bad.len() > MAX_HEAD_BYTES {
            "trailer section too large"
        } else {
            "malformed trailer field"
        };
        assert_eq!(
            targets(&out),
            ["POST /up", &format!("malformed: {reason}"), "GET /after"]
        );
        assert!(!requests(&out)[0].complete);
    }
}

#[test]
fn body_kept_up_to_the_limit_and_counted_past_it() {
    let mut data = b"POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\n".to_vec();
    data.extend(std::iter::repeat_n(b'z', 100));
    let (out, _) = parse_all(&[&data]);
    let r = requests(&out);
    assert_eq!(r[0].body().len(), 64);
    assert_eq!(r[0].body_bytes, 100);
    assert!(r[0].body_cut());
}

#[test]
fn non_http_connection_is_skipped_quietly() {
    let (out, p) = parse_all(&[b"\x16\x03\x01\x02\x00binary", b"GET / HTTP/1.1\r\n\r\n"]);
    assert!(out.is_empty());
    assert_eq!(p.stats.non_http_bytes, 29);
    let (out, _) = parse_all(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]);
    assert!(out.is_empty());
}

#[test]
fn lower_case_word_is_not_http() {
    let (out, p) = parse_all(&[b"hello there\r\n\r\n"]);
    assert!(out.is_empty());
    assert_eq!(p.stats.non_http_bytes, 15);
}

#[test]
fn malformed_request_is_reported_and_parsing_resumes() {
    let (out, _) = parse_all(&[
        b"GET /ok HTTP/1.1\r\n\r\n",
        b"GET /bad HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /again HTTP/1.1\r\n\r\n",
    ]);
    assert_eq!(
        targets(&out),
        [
            "GET /ok",
            "malformed: invalid request: invalid header name",
            "GET /again"
        ]
    );
}

#[test]
fn garbage_after_a_request_is_malformed_then_resynced() {
    let (out, p) = parse_all(&[
        b"GET /ok HTTP/1.1\r\n\r\n\x00\x01\x02garbage\r\n",
        b"POST /next HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    ]);
    assert_eq!(
        targets(&out),
        [
            "GET /ok",
            "malformed: bytes that are not an HTTP message",
            "POST /next"
        ]
    );
    assert!(p.stats.resync_bytes > 0);
}

#[test]
fn invalid_content_length_is_malformed() {
    let (out, _) = parse_all(&[
        b"POST /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"GET /y HTTP/1.1\r\n\r\n",
    ]);
    assert_eq!(
        targets(&out),
        ["malformed: conflicting Content-Length values", "GET /y"]
    );
}

#[test]
fn bad_chunk_size_is_malformed() {
    let (out, _) = parse_all(&[b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]);
    assert_eq!(targets(&out), ["POST /x", "malformed: invalid chunk size"]);
    assert!(!requests(&out)[0].complete);
}

#[test]
fn oversized_head_is_malformed() {
    let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 1));
    let (out, _) = parse_all(&[&head]);
    assert_eq!(
        targets(&out),
        ["malformed: message head larger than 64 KiB"]
    );
}

#[test]
fn empty_lines_between_requests_are_ignored() {
    let (out, _) = parse_all(&[
        b"\r\n\r\nGET /a HTTP/1.1\r\n\r\n\r\n",
        b"\r\nGET /b HTTP/1.1\r\n\r\n",
    ]);
    assert_eq!(targets(&out), ["GET /a", "GET /b"]);
}

#[test]
fn skipped_bytes_inside_a_body_are_counted() {
    let mut p = Parser::new(64);
    let mut out = Vec::new();
    p.feed(
        b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
        1,
        &mut out,
    );
    p.skip_counted(6, 2, false, &mut out);
    p.feed(b"GET /g HTTP/1.1\r\n\r\n", 2, &mut out);
    assert_eq!(targets(&out), ["POST /f", "GET /g"]);
    let r = requests(&out);
    assert_eq!(r[0].body_bytes, 10);
    assert_eq!(r[0].body_missing_bytes, 6);
    assert!(r[0].complete);
}

#[test]
fn skipped_bytes_in_a_head_lose_the_position_until_the_next_request() {
    let mut p = Parser::new(64);
    let mut out = Vec::new();
    p.feed(b"GET /lost HTTP/1.1\r\nHo", 1, &mut out);
    p.skip_counted(100, 2, false, &mut out);
    p.feed(b"st: x\r\n\r\nGET /found HTTP/1.1\r\n\r\n", 2, &mut out);
    assert_eq!(targets(&out), ["GET /found"]);
}

#[test]
fn gap_in_a_body_reports_the_request_incomplete() {
    let mut p = Parser::new(64);
    let mut out = Vec::new();
    p.feed(
        b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
        1,
        &mut out,
    );
    p.gap(&mut out);
    p.feed(b"89GET /g HTTP/1.1\r\n\r\n", 2, &mut out);
    assert_eq!(targets(&out), ["POST /f", "GET /g"]);
    assert!(!requests(&out)[0].complete);
}

#[test]
fn finish_reports_a_pending_body_and_a_partial_head() {
    let mut p = Parser::new(64);
    let mut out = Vec::new();
    p.feed(
        b"POST /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
        1,
        &mut out,
    );
    assert!(!p.finish(false, &mut out));
    assert_eq!(targets(&out), ["POST /f"]);
    assert!(!requests(&out)[0].complete);
    p.feed(b"GET /half HTTP/1.1\r\nHost", 2, &mut out);
    assert!(p.finish(false, &mut out));
    assert_eq!(targets(&out), ["POST /f"]);
}

#[test]
fn request_heads_are_announced_before_their_bodies() {
    let (out, _) =
        parse_all(&[b"HEAD /h HTTP/1.1\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nab"]);
    assert_eq!(
        out.iter()
            .filter_map(|p| match p {
                Parsed::RequestHead { method, .. } => Some(*method),
                _ => None,
            })
            .collect::<Vec<_>>(),
        [RequestKind::Head, RequestKind::Other]
    );
    assert_eq!(targets(&out), ["HEAD /h"]);
}

/// A response stream whose requests (by method) came the other way.
fn responses(methods: &[&str], pieces: &[&[u8]]) -> (Vec<Parsed>, Parser) {
    let mut p = Parser::new(64);
    for m in methods {
        p.expect_response(RequestKind::of(m));
    }
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        p.feed(piece, i as u64 + 1, &mut out);
    }
    (out, p)
}

#[test]
fn responses_framed_by_length_and_chunks() {
    let (out, _) = responses(
        &["GET", "GET"],
        &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            b"loHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ],
    );
    assert_eq!(targets(&out), ["200 OK", "404 Not Found"]);
    let r = requests(&out);
    assert_eq!(
        (r[0].body(), r[0].ts_ns, r[0].end_ts_ns),
        (&b"hello"[..], 1, 2)
    );
    assert_eq!((r[1].body(), r[1].version), (&b"abc"[..], 1));
}

#[test]
fn responses_without_a_body() {
    // HEAD announces a length it does not send; 204 and 304 have no body either.
    let (out, _) = responses(
        &["HEAD", "GET", "GET", "GET"],
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"],
    );
    assert_eq!(
        targets(&out),
        ["200 OK", "204 No Content", "304 Not Modified", "200 OK"]
    );
    assert_eq!(requests(&out)[0].body_bytes, 0);
    assert_eq!(requests(&out)[3].body(), b"x");
}

#[test]
fn interim_responses_are_skipped() {
    let (out, _) = responses(
        &["POST"],
        &[
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        ],
    );
    assert_eq!(targets(&out), ["201 Created"]);
}

#[test]
fn body_until_close_ends_with_the_connection() {
    let (mut out, mut p) = responses(&["GET"], &[b"HTTP/1.0 200 OK\r\n\r\nsome ", b"bytes"]);
    assert!(out.is_empty());
    assert!(!p.finish(true, &mut out));
    let r = requests(&out);
    assert_eq!(
        (r[0].body(), r[0].complete, r[0].end_ts_ns),
        (&b"some bytes"[..], true, 2)
    );
    // Tracing that stops first leaves it incomplete.
    let (mut out, mut p) = responses(&["GET"], &[b"HTTP/1.1 200 OK\r\n\r\nsome "]);
    p.finish(false, &mut out);
    assert!(!requests(&out)[0].complete);
}

#[test]
fn switching_protocols_leaves_the_connection_alone() {
    let (out, p) = responses(
        &["GET"],
        &[b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"],
    );
    assert_eq!(targets(&out), ["101 Switching Protocols"]);
    assert_eq!(out.last(), Some(&Parsed::Switched));
    assert_eq!(p.stats.switched_bytes, 7);
    let (out, _) = responses(
        &["CONNECT"],
        &[b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01"],
    );
    assert_eq!(out.last(), Some(&Parsed::Switched));
    // The request side is told by the connection; its tunnel bytes are then left alone.
    let (mut out, mut p) = parse_all(&[b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"]);
    p.switch_protocols(&mut out);
    p.feed(b"\x81\x85binary GET / HTTP/1.1\r\n\r\n", 3, &mut out);
    assert_eq!(targets(&out), ["GET /ws"]);
    assert_eq!(p.stats.resync_bytes, 0);
}

#[test]
fn a_connect_has_no_body_and_what_follows_waits_for_its_answer() {
    // Content-Length says 10; a CONNECT has no content: complete at its head. The client's
    // first tunnel bytes come before the answer.
    let (mut out, mut p) = parse_all(&[
        b"CONNECT db:443 HTTP/1.1\r\nHost: db:443\r\nContent-Length: 10\r\n\r\n\x16\x03",
        b"\x01\x02",
    ]);
    let m = requests(&out)[0];
    assert_eq!(
        (line(m), m.complete, m.body_bytes),
        ("CONNECT db:443".into(), true, 0)
    );
    assert!(!p.between_messages());
    // The 2xx: a tunnel; its bytes are counted as such, none as malformed.
    p.switch_protocols(&mut out);
    p.feed(b"more tunnel", 3, &mut out);
    assert_eq!(targets(&out), ["CONNECT db:443"]);
    assert_eq!((p.stats.switched_bytes, p.stats.resync_bytes), (15, 0));
    // Refused (407): what the client sent since is parsed.
    let (mut out, mut p) = parse_all(&[
        b"CONNECT db:443 HTTP/1.1\r\n\r\n",
        b"CONNECT db:443 HTTP/1.1\r\nProxy-Authorization: Basic eA==\r\n\r\n",
    ]);
    assert_eq!(targets(&out), ["CONNECT db:443"]);
    p.connect_refused(&mut out);
    assert_eq!(targets(&out), ["CONNECT db:443", "CONNECT db:443"]);
    // A connection that ends before the answer: its held bytes are the tunnel's.
    let (mut out, mut p) = parse_all(&[b"CONNECT h:1 HTTP/1.1\r\n\r\nabc"]);
    p.finish(true, &mut out);
    assert_eq!(p.stats.switched_bytes, 3);
}

#[test]
fn a_response_stream_joined_mid_stream_resyncs_on_a_status_line() {
    let mut p = Parser::new(64);
    p.start_mid_stream();
    let mut out = Vec::new();
    p.feed(b"tail of a body HTTP/1.1 is not at a line start\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1, &mut out);
    assert_eq!(targets(&out), ["200 OK"]);
}

#[test]
fn method_split_across_pieces_is_found_when_resyncing() {
    let mut p = Parser::new(64);
    let mut out = Vec::new();
    p.feed(
        b"GET /a HTTP/1.1\r\nBad Header\r\n\r\nnoise\r\nPO",
        1,
        &mut out,
    );
    p.feed(b"ST /b HTTP/1.1\r\n\r\n", 2, &mut out);
    assert_eq!(
        targets(&out),
        ["malformed: invalid request: invalid header name", "POST /b"]
    );
}

#[test]
fn joined_mid_stream_starts_at_the_next_request_line() {
    let mut p = Parser::new(64);
    p.start_mid_stream();
    let mut out = Vec::new();
    p.feed(
        b"rest of a body\r\n\x00\x01GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
        1,
        &mut out,
    );
    assert_eq!(targets(&out), ["GET /next"]);
    // A stream joined at a request start loses nothing.
    let mut p = Parser::new(64);
    p.start_mid_stream();
    let mut out = Vec::new();
    p.feed(b"GET /fi", 1, &mut out);
    p.feed(b"rst HTTP/1.1\r\n\r\n", 2, &mut out);
    assert_eq!(targets(&out), ["GET /first"]);
    assert_eq!(p.stats.resync_bytes, 0);
}

/// Streams of one direction, each with the request methods whose responses it carries (an
/// empty list for requests): real requests and responses, and what is not one.
const STREAMS: [(&[u8], &[RequestKind]); 9] = [
    (
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.0\r\n\r\n",
        &[],
    ),
    (
        b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        &[],
    ),
    (
        b"PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata",
        &[],
    ),
    (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all",
        &[],
    ),
    (
        b"GARBAGE\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
        &[],
    ),
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        &[RequestKind::Other, RequestKind::Other],
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
        &[RequestKind::Head, RequestKind::Other, RequestKind::Other],
    ),
    (
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body runs to the close",
        &[RequestKind::Other],
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nx",
        &[RequestKind::Other, RequestKind::Other],
    ),
];

fn parse_stream(pieces: &[&[u8]], expected: &[RequestKind]) -> (Vec<Parsed>, ParserStats) {
    parse_pieces(pieces, expected, 16)
}

#[test]
fn every_stream_parses_to_something() {
    for (i, (bytes, expected)) in STREAMS.iter().enumerate() {
        let (out, stats) = parse_stream(&[bytes], expected);
        assert!(
            !out.is_empty() || stats != ParserStats::default(),
            "stream {i}"
        );
    }
}

proptest::proptest! {
    /// Syscalls cut a stream anywhere: any cutting parses exactly as the whole.
    #[test]
    fn any_split_parses_as_the_whole(
        stream in 0..STREAMS.len(),
        cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..16),
    ) {
        let (bytes, expected) = STREAMS[stream];
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for a in at {
            pieces.push(&bytes[from..a]);
            from = a;
        }
        pieces.push(&bytes[from..]);
        proptest::prop_assert_eq!(parse_stream(&pieces, expected), parse_stream(&[bytes], expected));
    }

    /// Every byte fed or skipped is counted once: in a message, as non-HTTP, skipped to
    /// resynchronise, after a protocol switch, or in a head cut by the end; holes counted
    /// already (bytes not copied, moved unseen) in none of these.
    #[test]
    fn every_byte_is_counted_once(
        stream in 0..STREAMS.len(),
        cuts in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), 0u64..40, proptest::prelude::any::<bool>()),
            0..8,
        ),
    ) {
        let (bytes, expected) = STREAMS[stream];
        let mut p = Parser::new(16);
        for &kind in expected {
            p.expect_response(kind);
        }
        let mut out = Vec::new();
        let mut at: Vec<(usize, u64, bool)> =
            cuts.iter().map(|(i, n, c)| (i.index(bytes.len() + 1), *n, *c)).collect();
        at.sort_unstable();
        let (mut from, mut uncounted_holes) = (0, 0);
        for (a, hole, counted) in at {
            p.feed(&bytes[from..a], 1, &mut out);
            from = a;
            p.skip_counted(hole, 1, counted, &mut out);
            if !counted {
                uncounted_holes += hole;
            }
        }
        p.feed(&bytes[from..], 1, &mut out);
        p.finish(true, &mut out);
        let s = p.stats;
        proptest::prop_assert_eq!(
            bytes.len() as u64 + uncounted_holes,
            s.message_bytes + s.non_http_bytes + s.resync_bytes + s.switched_bytes
                + s.partial_head_bytes,
            "{:?}", s
        );
    }
}
