//! The offline pipeline benchmark: the raw samples of a recording (360 exchanges of the example
//! server: keep-alive, pipelined, chunked, bodies, HEAD, errors; a capture file, as -w and
//! HTTP_TRACE_RECORD write them) replayed through decode, reassembly, parsing, pairing and the
//! JSON (or text) output, into a sink. Wall-clock time on a shared machine varies run to run, so the
//! figure that counts is the instruction count: `scripts/bench-pipeline.sh` runs this under
//! callgrind and prints instructions per exchange.
//!
//!     cargo bench --bench pipeline [-- json|text|verbose [ROUNDS]]

use std::hint::black_box;
use std::io;
use std::time::Instant;

use http_trace::capture::{Entry, Reader};
use http_trace::output::{Clock, Format, Printer};
use http_trace::pipeline::{Input, Pipeline};

const RECORDING: &[u8] = include_bytes!("data/example-server.htr");

/// The recording's samples, read before the replays so that reading stays out of the count.
fn samples() -> Vec<Vec<u8>> {
    let mut reader = Reader::new(RECORDING).expect("the benchmark's recording");
    let mut samples = Vec::new();
    while let Some(Entry::Input(input)) = reader.next_entry().expect("a whole recording") {
        if let Input::Sample(s) = input {
            samples.push(s.to_vec());
        }
    }
    samples
}

/// One replay of the whole stream; callgrind counts the instructions inside it alone
/// (`--toggle-collect`), so start-up and the file's loading stay out.
#[inline(never)]
fn replay_samples(samples: &[Vec<u8>], format: Format, verbose: bool) -> u64 {
    let printer = Printer::new(io::sink(), format, verbose, Clock::fixed(0));
    let mut pipeline = Pipeline::new(4096, printer, None);
    for sample in black_box(samples) {
        pipeline.sample(sample);
    }
    pipeline.finish();
    pipeline.counts.exchanges
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let (format, verbose) = match args.next().as_deref() {
        None | Some("json") => (Format::Json, false),
        Some("text") => (Format::Text, false),
        Some("verbose") => (Format::Text, true),
        Some(other) => {
            eprintln!("pipeline bench: unknown format {other} (json, text or verbose)");
            std::process::exit(2);
        }
    };
    let rounds: u64 = args
        .next()
        .map_or(20, |r| r.parse().expect("ROUNDS is a number"));
    let samples = samples();
    let start = Instant::now();
    let mut exchanges = 0;
    for _ in 0..rounds {
        exchanges += replay_samples(&samples, format, verbose);
    }
    let elapsed = start.elapsed();
    println!(
        "exchanges {exchanges} rounds {rounds} ns/exchange {:.0}",
        elapsed.as_nanos() as f64 / exchanges.max(1) as f64
    );
}
