//! http-trace's command: parse the command line, run a session, exit with its status.

use std::process::ExitCode;

use http_trace::{cli, session};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match cli::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match session::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-trace: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
