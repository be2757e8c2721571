//! What the command line asks for, checked before anything is loaded, and applied to the
//! pipeline.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Result};

use crate::cli::Args;
use crate::output::Format;
use crate::pipeline::Pipeline;
use crate::redact::Redactor;
use crate::stats::Stats;

/// The pipeline's redaction and statistics, as the command line asks for them.
pub(super) trait WithOptions {
    fn with_options_of(self, args: &Args) -> Self;
}

impl<W: Write> WithOptions for Pipeline<W> {
    fn with_options_of(self, args: &Args) -> Self {
        let this = self.with_redactor(
            (!args.show_secrets).then(|| Redactor::new(&args.redact_headers, &args.redact_names)),
        );
        // The live view keeps its own.
        if !args.stats.enabled || args.stats.top {
            return this;
        }
        let every = args
            .stats
            .interval
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        this.with_stats(Stats::new(args.stats.routes.clone()), every)
    }
}

/// Filters select exchanges: they need an output made of exchanges.
pub(super) fn check_filters(args: &Args) -> Result<()> {
    if !args.filter().is_active() {
        return Ok(());
    }
    if args.output == Some(Format::Pcapng) {
        bail!("filters select exchanges, and -o pcapng writes whole connections: filter in Wireshark, or use another -o");
    }
    if args.write.is_some() && args.output.is_none() {
        bail!("-w records everything, unfiltered: give the filters to -r when reading it, or add -o to print the filtered exchanges");
    }
    Ok(())
}

/// --stats counts parsed exchanges: -w alone parses nothing.
pub(super) fn check_stats(args: &Args) -> Result<()> {
    if args.stats.enabled && args.write.is_some() && args.output.is_none() {
        bail!("--stats counts exchanges, which -w alone does not parse: give it to -r when reading the recording, or add -o");
    }
    Ok(())
}

/// What the banner says of secrets: only that they are shown, when they are.
pub(super) fn secrets_said(shown: bool) -> &'static str {
    if shown {
        "; secrets shown (--show-secrets)"
    } else {
        ""
    }
}

/// The combinations of options a live run refuses, in one line each.
pub(super) fn check_live_args(args: &Args) -> Result<()> {
    let to_stdout = args.write.as_deref() == Some(Path::new("-"));
    if to_stdout && args.output.is_some() && args.output_file.is_none() {
        bail!("-w - writes the recording to stdout: give --output-file for the output of -o");
    }
    check_filters(args)?;
    check_stats(args)?;
    if args.stats.top && !io::stdout().is_terminal() {
        bail!("--top draws on a terminal, and stdout is not one: use --stats, or -o json, to write elsewhere");
    }
    if args.write.is_some() && args.output.is_none() && args.count.is_some() {
        bail!("--count counts exchanges, which -w alone does not parse: add -o to print them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("http-trace").chain(line.iter().copied()))
            .expect("a valid command line")
    }

    fn refused(line: &[&str]) -> String {
        check_live_args(&args(line))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn combinations_a_live_run_refuses() {
        assert!(refused(&["--pid", "1", "-w", "-", "-o", "json"]).contains("--output-file"));
        assert!(refused(&["--pid", "1", "-w", "t.htr", "--method", "GET"])
            .starts_with("-w records everything, unfiltered"));
        assert!(refused(&["--pid", "1", "-o", "pcapng", "--status", "500"])
            .starts_with("filters select exchanges"));
        assert!(refused(&["--pid", "1", "-w", "t.htr", "--stats"]).starts_with("--stats counts"));
        assert!(
            refused(&["--pid", "1", "-w", "t.htr", "--count", "3"]).starts_with("--count counts")
        );
    }

    #[test]
    fn combinations_a_live_run_takes() {
        for line in [
            &["--pid", "1"][..],
            &["--pid", "1", "-w", "t.htr", "-o", "json", "--method", "GET"],
            &[
                "--pid",
                "1",
                "-w",
                "-",
                "-o",
                "json",
                "--output-file",
                "x.jsonl",
            ],
            &["--pid", "1", "-w", "t.htr", "-o", "text", "--count", "3"],
            &["--pid", "1", "--stats"],
        ] {
            check_live_args(&args(line)).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        }
    }

    #[test]
    fn the_banner_says_only_that_secrets_are_shown() {
        assert_eq!(secrets_said(false), "");
        assert!(secrets_said(true).contains("--show-secrets"));
    }
}
