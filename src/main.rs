//! http-trace: show the plaintext HTTP/1.1 traffic of a running process, live, with eBPF.

mod buffer;
mod cli;
mod conn;
mod event;
mod http;
mod kretprobe;
mod loader;
mod output;
mod procs;
mod session;

mod skel {
    #![allow(clippy::all, clippy::pedantic, unused_imports, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/http_trace.skel.rs"));
}

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            eprintln!("http-trace: {} (see --help)", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    match session::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-trace: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// clap's message on one line: what is wrong, without the usage block and tips after it.
fn one_line(clap_message: &str) -> String {
    clap_message
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ")
}
