//! The HTTP parser fed any bytes in any split: byte 0 says which responses the stream answers
//! (bit 0: a stream of responses; bits 1-3: HEAD, CONNECT or another method for the first three
//! requests), byte 1 seeds where the stream is cut, the rest is the stream. Parsing the pieces
//! must give exactly what parsing the whole stream gives, and never panic.

#![no_main]

use http_trace::http::{parse_pieces, RequestKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [how, seed, stream @ ..] = data else {
        return;
    };
    let expected: Vec<RequestKind> = if how & 1 == 0 {
        Vec::new()
    } else {
        (1..4)
            .map(|bit| match (how >> bit) & 1 {
                0 => RequestKind::Other,
                _ if bit == 2 => RequestKind::Connect,
                _ => RequestKind::Head,
            })
            .collect()
    };
    // Cut points from a small xorshift generator: up to 16 pieces, empty ones included.
    let mut state = u32::from(*seed).wrapping_mul(2_654_435_761) | 1;
    let mut cuts: Vec<usize> = (0..(seed % 16))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as usize % (stream.len() + 1)
        })
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for at in cuts {
        pieces.push(&stream[from..at]);
        from = at;
    }
    pieces.push(&stream[from..]);
    assert_eq!(
        parse_pieces(&pieces, &expected, 64),
        parse_pieces(&[stream], &expected, 64)
    );
});
