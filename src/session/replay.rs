//! -r: a recording read back through the same pipeline a live run drives.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::checks::{check_filters, secrets_said, WithOptions};
use super::files::records_output;
use super::summary::{pipeline_summary, KernelCounts};
use crate::capture::{self, Entry, ReadError};
use crate::cli::Args;
use crate::output::{Clock, Format, Printer};
use crate::pipeline::Pipeline;

/// Replay the capture file at `path` (- for stdin) through the pipeline.
pub(super) fn replay(args: &Args, path: &Path) -> Result<()> {
    check_filters(args)?;
    let name = path.display().to_string();
    let input: Box<dyn io::BufRead> = if path == Path::new("-") {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        Box::new(BufReader::with_capacity(
            256 << 10,
            File::open(path).with_context(|| format!("opening {name}"))?,
        ))
    };
    let mut reader = capture::Reader::new(input).map_err(|e| anyhow!("{name}: {e}"))?;
    let h = reader.header.clone();
    let clock = Clock::fixed(i128::from(h.realtime_minus_monotonic_ns));
    let max_body = args.max_body.unwrap_or(h.max_body);
    let format = args.output.unwrap_or(Format::Text);
    let printer = Printer::new(records_output(args, format)?, format, args.verbose, clock);
    let mut pipeline = Pipeline::new(max_body as usize, printer, args.count)
        .with_filter(args.filter())
        .with_options_of(args);
    eprintln!(
        "http-trace: reading {name}: pid {} traced from {} on Linux {} with {} and the {} \
         (http-trace {}){}",
        h.pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        h.started,
        h.kernel,
        h.attach,
        h.buffer,
        h.http_trace,
        secrets_said(args.show_secrets)
    );
    let end = loop {
        match reader.next_entry() {
            // Applied to the end even after --count's last record: the summary counts it all.
            Ok(Some(Entry::Input(input))) => {
                pipeline.apply(&input);
            }
            Ok(Some(Entry::End(end))) => break Some(end),
            Ok(None) => {
                eprintln!(
                    "http-trace: note: {name} ends without its last record (the recording was \
                     stopped while writing): read up to there"
                );
                break None;
            }
            Err(ReadError::Cut { offset }) => {
                eprintln!(
                    "http-trace: note: {name} is cut short at byte {offset} (the recording was \
                     stopped while writing): read up to there"
                );
                break None;
            }
            Err(e) => bail!("{name}: {e}"),
        }
    };
    let end = end.unwrap_or_default();
    if end.all_exited {
        eprintln!("http-trace: every traced process has exited");
    }
    pipeline.finish();
    pipeline.print_stats();
    pipeline.print_accounting();
    pipeline.flush();
    eprintln!(
        "{}",
        pipeline_summary(&pipeline, &KernelCounts::from_end(&end))
    );
    if let Some(e) = pipeline.output_error() {
        bail!("writing the output: {e}");
    }
    Ok(())
}
