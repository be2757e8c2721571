//! The edge-case corpus (#38): messages in both directions, each stream with the exact messages,
//! errors and flags it must give, parsed whole, a byte at a time, and cut in two at every byte;
//! and a property test that nothing reported was not in the bytes.

use super::parse::{parse_pieces, Parsed, ParserStats};
use super::{Message, RequestKind, StartLine};

use RequestKind::{Connect, Head, Other};

/// One line per message or error: `GET /a 1.1 [Host: x] 5:"hello"`, then `incomplete`,
/// `trailers [...]`, `lenient=a,b`, `resynced` where they apply.
fn describe(out: &[Parsed]) -> Vec<String> {
    out.iter()
        .filter_map(|p| match p {
            Parsed::Message(m) => Some(describe_message(m)),
            Parsed::Malformed { reason, .. } => Some(format!("malformed: {reason}")),
            Parsed::Switched => Some("switched".into()),
            Parsed::Lost { .. } | Parsed::RequestHead { .. } | Parsed::RequestGivenUp { .. } => {
                None
            }
        })
        .collect()
}

fn describe_message(m: &Message) -> String {
    let shown = |b: &[u8]| b.escape_ascii().to_string();
    let mut s = match m.start() {
        StartLine::Request { method, target } => format!("{method} {}", shown(target.as_bytes())),
        StartLine::Response { status, reason } => format!("{status} {}", shown(reason)),
    };
    s += &format!(" 1.{} [", m.version);
    let headers: Vec<String> = m
        .headers()
        .map(|(n, v)| format!("{}: {}", shown(n), shown(v)))
        .collect();
    s += &headers.join(", ");
    s += &format!("] {}:\"{}\"", m.body_bytes, shown(m.body()));
    if !m.complete {
        s += " incomplete";
    }
    if m.trailers_len() > 0 {
        let t: Vec<String> = m
            .trailers()
            .map(|(n, v)| format!("{}: {}", shown(n), shown(v)))
            .collect();
        s += &format!(" trailers [{}]", t.join(", "));
    }
    if !m.lenient.is_empty() {
        s += &format!(
            " lenient={}",
            m.lenient.names().collect::<Vec<_>>().join(",")
        );
    }
    if m.resynced {
        s += " resynced";
    }
    s
}

/// A stream of one direction, the methods whose responses it carries (none: requests), and
/// what it must give.
struct Case {
    name: &'static str,
    expected: &'static [RequestKind],
    bytes: &'static [u8],
    want: &'static [&'static str],
}

const REQUESTS: &[Case] = &[
    Case {
        name: "strict, pipelined",
        expected: &[],
        bytes: b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        want: &["GET /a?b=c 1.1 [Host: x] 0:\"\"", "POST /p 1.0 [Content-Length: 3] 3:\"abc\""],
    },
    Case {
        name: "the smuggling shape: a bare LF before Content-Length",
        expected: &[],
        bytes: b"GET / HTTP/1.1\r\nDummy: x\nContent-Length: 23\r\n\r\nGET /admin HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        want: &[
            "GET / 1.1 [Dummy: x, Content-Length: 23] 23:\"GET /admin HTTP/1.1\\r\\n\\r\\n\" lenient=bare-lf",
            "GET /next 1.1 [] 0:\"\" lenient=after-lenient-framing",
        ],
    },
    Case {
        name: "a bare LF that frames nothing",
        expected: &[],
        bytes: b"GET / HTTP/1.1\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        want: &["GET / 1.1 [Host: x] 0:\"\" lenient=bare-lf", "GET /b 1.1 [] 0:\"\""],
    },
    Case {
        name: "a head ended by a bare LF",
        expected: &[],
        bytes: b"GET / HTTP/1.1\r\nHost: x\r\n\nGET /b HTTP/1.1\r\n\r\n",
        want: &[
            "GET / 1.1 [Host: x] 0:\"\" lenient=bare-lf",
            "GET /b 1.1 [] 0:\"\" lenient=after-lenient-framing",
        ],
    },
    Case {
        name: "chunked, strict, with extensions and trailers",
        expected: &[],
        bytes: b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c=\"d e\"\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /n HTTP/1.1\r\n\r\n",
        want: &[
            "POST /c 1.1 [Transfer-Encoding: chunked] 3:\"abc\" trailers [T: 1]",
            "GET /n 1.1 [] 0:\"\"",
        ],
    },
    Case {
        name: "whitespace after a chunk size",
        expected: &[],
        bytes: b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\nGET /n HTTP/1.1\r\n\r\n",
        want: &[
            "POST /c 1.1 [Transfer-Encoding: chunked] 3:\"abc\" lenient=chunk-size-whitespace",
            "GET /n 1.1 [] 0:\"\" lenient=after-lenient-framing",
        ],
    },
    Case {
        name: "an empty chunk extension, an invalid one",
        expected: &[],
        bytes: b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nab\r\n1;a b\r\nc\r\n0\r\n\r\n",
        want: &["POST /c 1.1 [Transfer-Encoding: chunked] 3:\"abc\" lenient=chunk-ext-empty,chunk-ext-invalid"],
    },
    Case {
        name: "bare LFs in a chunked body's lines",
        expected: &[],
        bytes: b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\r\nT: 1\n\n",
        want: &["POST /c 1.1 [Transfer-Encoding: chunked] 3:\"abc\" trailers [T: 1] lenient=bare-lf"],
    },
    Case {
        name: "Content-Length repeated, as a list and on two lines",
        expected: &[],
        bytes: b"POST /a HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nabPOST /b HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nc",
        want: &[
            "POST /a 1.1 [Content-Length: 2, 2] 2:\"ab\" lenient=content-length-repeated",
            "POST /b 1.1 [Content-Length: 1, Content-Length: 1] 1:\"c\" lenient=content-length-repeated,after-lenient-framing",
        ],
    },
    Case {
        name: "Transfer-Encoding in HTTP/1.0",
        expected: &[],
        bytes: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        want: &["POST / 1.0 [Transfer-Encoding: chunked] 1:\"x\" lenient=transfer-encoding-http10"],
    },
    Case {
        name: "Transfer-Encoding with Content-Length: malformed, what follows resynced",
        expected: &[],
        bytes: b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
        want: &["malformed: Transfer-Encoding with Content-Length", "GET /x 1.1 [] 0:\"\" resynced"],
    },
    Case {
        name: "bytes no URI holds in a target",
        expected: &[],
        bytes: b"GET /a|b<c>{d} HTTP/1.1\r\n\r\nGET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
        want: &[
            "GET /a|b<c>{d} 1.1 [] 0:\"\" lenient=target-char",
            "GET /caf\\xc3\\xa9 1.1 [] 0:\"\" lenient=target-char",
        ],
    },
    Case {
        name: "an obs-fold in a request: malformed, as a strict server answers 400",
        expected: &[],
        bytes: b"GET /f HTTP/1.1\r\nA: b\r\n c\r\n\r\nGET /g HTTP/1.1\r\n\r\n",
        want: &["malformed: invalid request: invalid header name", "GET /g 1.1 [] 0:\"\" resynced"],
    },
    Case {
        name: "empty lines before a request: CRLFs allowed, a bare LF and a lone CR not",
        expected: &[],
        bytes: b"\r\n\r\nGET /a HTTP/1.1\r\n\r\n\nGET /b HTTP/1.1\r\n\r\n\rGET /c HTTP/1.1\r\n\r\n",
        want: &[
            "GET /a 1.1 [] 0:\"\"",
            "GET /b 1.1 [] 0:\"\" lenient=bare-lf",
            "GET /c 1.1 [] 0:\"\" lenient=bare-lf",
        ],
    },
    Case {
        name: "a CONNECT with Content-Length and an early tunnel byte",
        expected: &[],
        bytes: b"CONNECT db:443 HTTP/1.1\r\nHost: db:443\r\nContent-Length: 10\r\n\r\n\x16\x03\x01",
        want: &["CONNECT db:443 1.1 [Host: db:443, Content-Length: 10] 0:\"\""],
    },
    Case {
        name: "a CONNECT whose client waits",
        expected: &[],
        bytes: b"CONNECT db:443 HTTP/1.1\r\nHost: db:443\r\n\r\n",
        want: &["CONNECT db:443 1.1 [Host: db:443] 0:\"\""],
    },
    Case {
        name: "garbage between requests",
        expected: &[],
        bytes: b"GET /a HTTP/1.1\r\n\r\n\x00\x01junk\r\nGET /b HTTP/1.1\r\n\r\n",
        want: &["GET /a 1.1 [] 0:\"\"", "malformed: bytes that are not an HTTP message", "GET /b 1.1 [] 0:\"\" resynced"],
    },
];

const RESPONSES: &[Case] = &[
    Case {
        name: "strict, HEAD, 204, 304, to the close",
        expected: &[Other, Head, Other, Other, Other],
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest",
        want: &[
            "200 OK 1.1 [Content-Length: 2] 2:\"ok\"",
            "200 OK 1.1 [Content-Length: 9] 0:\"\"",
            "204 No Content 1.1 [] 0:\"\"",
            "304 Not Modified 1.1 [] 0:\"\"",
            "200 OK 1.0 [] 4:\"rest\"",
        ],
    },
    Case {
        name: "reason phrases with obs-text: UTF-8 and Latin-1, every byte kept",
        expected: &[Other, Other],
        bytes: "HTTP/1.1 500 Oriëntatieprobleem\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 Caf\u{e9}\r\n\r\n".as_bytes(),
        want: &[
            "500 Ori\\xc3\\xabntatieprobleem 1.1 [Content-Length: 0] 0:\"\"",
            "200 Caf\\xc3\\xa9 1.1 [] 0:\"\"",
        ],
    },
    Case {
        name: "a Latin-1 reason phrase",
        expected: &[Other],
        bytes: b"HTTP/1.1 200 Caf\xe9\r\nContent-Length: 0\r\n\r\n",
        want: &["200 Caf\\xe9 1.1 [Content-Length: 0] 0:\"\""],
    },
    Case {
        name: "no space after the status",
        expected: &[Other],
        bytes: b"HTTP/1.1 204\r\n\r\n",
        want: &["204  1.1 [] 0:\"\" lenient=status-no-sp"],
    },
    Case {
        name: "an obs-fold in a response that frames its body",
        expected: &[Other, Other],
        bytes: b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nzHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        want: &[
            "200 OK 1.1 [X: a\\r\\n b, Content-Length: 1] 1:\"z\" lenient=obs-fold",
            "200 OK 1.1 [Content-Length: 0] 0:\"\" lenient=after-lenient-framing",
        ],
    },
    Case {
        name: "an empty line before a status line",
        expected: &[Other, Other],
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        want: &[
            "200 OK 1.1 [Content-Length: 1] 1:\"x\"",
            "200 OK 1.1 [Content-Length: 0] 0:\"\" lenient=empty-line-before-status",
        ],
    },
    Case {
        name: "Transfer-Encoding with Content-Length in a response",
        expected: &[Other],
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        want: &["200 OK 1.1 [Content-Length: 50, Transfer-Encoding: chunked] 2:\"ok\" lenient=transfer-encoding-with-content-length"],
    },
    Case {
        name: "an invalid Content-Length in a response: read to the close",
        expected: &[Other],
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\nrest",
        want: &["200 OK 1.1 [Content-Length: zz] 4:\"rest\" lenient=content-length-invalid"],
    },
    Case {
        name: "an interim response read leniently, then the final one",
        expected: &[Other],
        bytes: b"HTTP/1.1 100 Continue\n\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        want: &["201 Created 1.1 [Content-Length: 0] 0:\"\" lenient=bare-lf,after-lenient-framing"],
    },
    Case {
        name: "a tunnel opened, and a 101",
        expected: &[Connect],
        bytes: b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01",
        want: &["200 Connection established 1.1 [] 0:\"\"", "switched"],
    },
    Case {
        name: "a malformed response, the next resynced",
        expected: &[Other, Other],
        bytes: b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        want: &[
            "malformed: invalid response: invalid header name",
            "404 Not Found 1.1 [Content-Length: 0] 0:\"\" resynced",
        ],
    },
];

fn parse(case: &Case, pieces: &[&[u8]]) -> (Vec<Parsed>, ParserStats) {
    parse_pieces(pieces, case.expected, 64)
}

#[test]
fn every_case_gives_exactly_its_messages_however_it_is_cut() {
    for case in REQUESTS.iter().chain(RESPONSES) {
        let (whole, stats) = parse(case, &[case.bytes]);
        assert_eq!(describe(&whole), case.want, "{}", case.name);
        let bytes: Vec<&[u8]> = case.bytes.chunks(1).collect();
        assert_eq!(
            parse(case, &bytes),
            (whole.clone(), stats),
            "{}: a byte at a time",
            case.name
        );
        for at in 0..=case.bytes.len() {
            let (a, b) = case.bytes.split_at(at);
            assert_eq!(
                parse(case, &[a, b]),
                (whole.clone(), stats),
                "{}: cut at {at}",
                case.name
            );
        }
    }
}

#[test]
fn every_leniency_name_is_in_the_corpus() {
    let corpus: Vec<&str> = REQUESTS
        .iter()
        .chain(RESPONSES)
        .flat_map(|c| c.want.iter().copied())
        .collect();
    for name in super::Lenient::all_names() {
        assert!(
            corpus
                .iter()
                .any(|w| w.contains(&format!("lenient={name}")) || w.contains(&format!(",{name}"))),
            "{name}"
        );
    }
}

#[test]
fn skipped_bytes_and_the_messages_found_after_them_are_counted() {
    let case = &REQUESTS[REQUESTS.len() - 1];
    let (_, stats) = parse(case, &[case.bytes]);
    // "\x00\x01junk\r\n": the first byte as the malformed message's, the rest skipped.
    assert_eq!((stats.resync_bytes, stats.resynced_messages), (8, 1));
    let (_, stats) = parse(&REQUESTS[1], &[REQUESTS[1].bytes]);
    assert_eq!(stats.lenient_messages, 2);
}

/// Pieces of HTTP and of what is not, for the odd bytes of streams that stress the parser.
const PIECES: &[&[u8]] = &[
    b"GET ",
    b"HTTP/1.1 ",
    b"200",
    b" OK",
    b"/",
    b"?b=c",
    b"<",
    b"\xe9",
    b"\xc3\xa9",
    b" HTTP/1.1",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"X",
    b":",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"0",
    b"3",
    b"a",
    b";",
    b"=",
    b"\"",
    b",",
    b"\x00",
    b"\x7f",
];
/// How messages start: a request line or a status line without its line end.
const STARTS: &[&[u8]] = &[
    b"GET /",
    b"POST /p",
    b"HEAD /h",
    b"CONNECT h:1",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 OK",
    b"HTTP/1.0 404 Caf\xe9",
    b"HTTP/1.1 100 Continue",
    b"HTTP/1.1 204",
];
const NAMES: &[&[u8]] = &[
    b"Host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"X-A",
    b" X",
    b"B",
];

/// A message of a start line (with odd bytes after it), fields (a name and odd bytes each) and
/// odd bytes after them (a body, or what is not one), each line ended by CRLF or by one piece.
fn message_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::collection::vec;
    use proptest::prelude::any;
    let picks = || vec(0..PIECES.len(), 0..4);
    let end = || any::<bool>();
    (
        (0..STARTS.len(), picks(), end()),
        vec((0..NAMES.len(), picks(), end()), 0..5),
        end(),
        picks(),
    )
        .prop_map(|((start, after, crlf), fields, blank_crlf, body)| {
            let line_end = |crlf: bool| -> &[u8] {
                if crlf {
                    b"\r\n"
                } else {
                    b"\n"
                }
            };
            let mut m = STARTS[start].to_vec();
            if STARTS[start].starts_with(b"GET") || STARTS[start].starts_with(b"POST") {
                m.extend(after.iter().flat_map(|&i| PIECES[i].iter().copied()));
                m.extend_from_slice(b" HTTP/1.1");
            }
            m.extend_from_slice(line_end(crlf));
            for (name, value, crlf) in fields {
                m.extend_from_slice(NAMES[name]);
                m.extend_from_slice(b": ");
                m.extend(value.iter().flat_map(|&i| PIECES[i].iter().copied()));
                m.extend_from_slice(line_end(crlf));
            }
            m.extend_from_slice(line_end(blank_crlf));
            m.extend(body.iter().flat_map(|&i| PIECES[i].iter().copied()));
            m
        })
}

use proptest::strategy::Strategy;

proptest::proptest! {
    /// Whatever the bytes, every method, target, status, reason, header name and value and
    /// trailer reported is in them: the parser reports what was sent, never what it guessed.
    #[test]
    fn nothing_reported_is_absent_from_the_bytes(
        messages in proptest::collection::vec(message_strategy(), 1..6),
        response in proptest::prelude::any::<bool>(),
    ) {
        let bytes = messages.concat();
        let expected: &[RequestKind] = if response { &[Other, Head, Other, Connect] } else { &[] };
        let (out, _) = parse_pieces(&[&bytes], expected, 64);
        let has = |part: &[u8]| part.is_empty() || bytes.windows(part.len()).any(|w| w == part);
        for p in &out {
            let Parsed::Message(m) = p else { continue };
            match m.start() {
                StartLine::Request { method, target } => {
                    proptest::prop_assert!(has(method.as_bytes()) && has(target.as_bytes()));
                }
                StartLine::Response { status, reason } => {
                    let status = format!("{status:03}");
                    proptest::prop_assert!(has(status.as_bytes()) && has(reason));
                }
            }
            for (name, value) in m.headers().chain(m.trailers()) {
                proptest::prop_assert!(has(name) && has(value), "{:?}", (name, value));
            }
        }
    }
}
