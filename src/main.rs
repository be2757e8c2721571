//! http-trace's command: parse the command line, run a session, exit with its status.

use std::process::ExitCode;

use http_trace::{cli, output, session};

fn main() -> ExitCode {
    let args = match cli::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    if args.stats.top {
        // The live view owns the terminal: log lines wait until it closes.
        logger.target(env_logger::Target::Pipe(Box::new(output::top::HeldLog)));
    }
    logger.init();
    match session::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http-trace: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
