//! The command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;

use crate::attach::buffer::BufferMode;
use crate::attach::Attach;
use crate::bpf::MAX_CAPTURE_BYTES;
use crate::decode::Role;
use crate::filter::{self, Filter, FilterArgs, HeaderSpec, PeerSpec, StatusSpec};
use crate::output::Format;
use crate::stats::RouteTemplate;

/// Bytes kept of each receive or send syscall by default (a 64 KiB head arrives whole); the rest
/// is counted.
pub const DEFAULT_CAPTURE_BYTES: u32 = 64 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "http-trace",
    version,
    about = "Show the HTTP/1.1 exchanges of a running process, as server and as client, live, without touching it",
    after_help = "Examples:\n  sudo http-trace --pid $(pidof myservice)\n  sudo http-trace --pid 1234 --pid 5678 -o json --duration 60 > requests.jsonl\n  \
                  sudo http-trace --pid 1234 -w trace.htr    (record now: no parsing)\n  \
                  http-trace -r trace.htr -o json            (look later, anywhere)\n  \
                  sudo http-trace --name myservice           (running now or started later)\n  \
                  sudo http-trace --container web            (a container's name or id)\n\n\
                  A process in a container can also be given by its host PID (as `ps` on the host shows it)."
)]
pub struct Args {
    /// Host PID of a process to trace (repeat to trace several)
    #[arg(short, long = "pid", value_name = "PID",
          required_unless_present_any = ["read", "names", "containers"],
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pids: Vec<u32>,

    /// Trace every process whose command name or executable's base name is NAME, those running
    /// and those started later (a service restarted is followed); tracing then waits for the
    /// next one when none is left (repeat for several)
    #[arg(long = "name", value_name = "NAME", value_parser = parse_name)]
    pub names: Vec<String>,

    /// Trace every process of a container, and those started in it later (docker exec): its id
    /// as `docker ps` shows it (12 hex digits or more), or its name where the docker, podman or
    /// crictl command can resolve it (repeat for several)
    #[arg(long = "container", value_name = "ID")]
    pub containers: Vec<String>,

    /// Trace only the given processes, not the processes they fork (now or later)
    #[arg(long)]
    pub no_children: bool,

    /// Do not read the plaintext of TLS connections (uprobes on the processes' OpenSSL): their
    /// records are then counted, not shown
    #[arg(long)]
    pub no_tls: bool,

    /// How to hook the kernel: auto picks the best method that works on this kernel
    #[arg(long, value_enum, default_value_t = Attach::Auto)]
    pub attach: Attach,

    /// Output format [default: text; with -w: none, unless given]
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,

    /// Write the output to FILE instead of stdout (created mode 0600)
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Record the events to FILE (- for stdout), for -r later; with -w only the banner and a
    /// summary are printed, unless -o asks for output too. The file is created mode 0600: it
    /// holds whole headers and bodies, secrets redacted unless --show-secrets
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Replay a capture file that -w wrote (no root needed), with any output format and option
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with_all =
          ["pids", "names", "containers", "write", "attach", "no_children", "no_tls", "capture_bytes", "buffer", "buffer_pages",
           "duration"])]
    pub read: Option<PathBuf>,

    /// Overwrite the file of -w or --output-file if it exists
    #[arg(long)]
    pub force: bool,

    /// Show headers and the start of bodies (text output)
    #[arg(short, long)]
    pub verbose: bool,

    /// Stop after this long: seconds (90, 2.5), or with a unit (500ms, 1.5s, 2m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many requests
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Bytes copied of each receive or send syscall; the rest is counted, not kept [default:
    /// 65536; with -w or -o pcapng, whose readers want whole bodies: 262144, the most]
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(256..=i64::from(MAX_CAPTURE_BYTES)))]
    pub capture_bytes: Option<u32>,

    /// Body bytes kept per message for -v and JSON; the rest is counted [default: 4096; with
    /// -r: the recording's]
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(0..=16_777_216))]
    pub max_body: Option<u32>,

    /// How events reach user space: auto uses the BPF ring buffer where the kernel has it (5.8+)
    #[arg(long, value_enum, default_value_t = BufferMode::Auto)]
    pub buffer: BufferMode,

    /// Event buffer memory per CPU, in pages (a power of two); the ring takes the total
    #[arg(long, value_name = "PAGES", default_value_t = 512, value_parser = parse_pages)]
    pub buffer_pages: usize,

    /// Show only exchanges of this method (repeat for several)
    #[arg(long = "method", value_name = "METHOD", help_heading = FILTERS)]
    pub methods: Vec<String>,

    /// Show only paths (without the query) matching GLOB: * within a segment, ** across them
    #[arg(long = "path", value_name = "GLOB", value_parser = filter::parse_glob, help_heading = FILTERS)]
    pub paths: Vec<globset::Glob>,

    /// Show only paths (without the query) matching the regular expression RE
    #[arg(long = "path-regex", value_name = "RE", value_parser = filter::parse_regex, help_heading = FILTERS)]
    pub path_regexes: Vec<regex::Regex>,

    /// Show only requests whose Host header names NAME (its port ignored)
    #[arg(long = "host", value_name = "NAME", help_heading = FILTERS)]
    pub hosts: Vec<String>,

    /// Show only these statuses: 404, 5xx, 400-499, or none (no response)
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status, help_heading = FILTERS)]
    pub statuses: Vec<StatusSpec>,

    /// Show only exchanges that took at least DURATION (request's first byte to response's last)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = FILTERS)]
    pub min_latency: Option<Duration>,

    /// Show only the exchanges where the traced process is the server, or the client
    #[arg(long, value_enum, help_heading = FILTERS)]
    pub role: Option<RoleArg>,

    /// Show only connections with this local or peer port
    #[arg(long = "port", value_name = "PORT", help_heading = FILTERS)]
    pub ports: Vec<u16>,

    /// Show only connections whose peer is ADDR: an IP, IP:PORT, or a network (10.0.0.0/8)
    #[arg(long = "peer", value_name = "ADDR", value_parser = parse_peer, help_heading = FILTERS)]
    pub peers: Vec<PeerSpec>,

    /// Show only exchanges with a request or response header NAME whose value contains the
    /// substring: 'Name: substring' (the name in any case)
    #[arg(long = "header", value_name = "'NAME: TEXT'", value_parser = parse_header, help_heading = FILTERS)]
    pub headers: Vec<HeaderSpec>,

    #[command(flatten)]
    pub stats: StatsArgs,

    /// Show secrets as they were sent: credential headers, cookies, secret query parameters
    /// and body fields are redacted by default in every output (and in the -w recording, which
    /// with this keeps the raw bytes)
    #[arg(long, help_heading = "Secrets")]
    pub show_secrets: bool,

    /// Redact this header's value too (repeat for several)
    #[arg(long = "redact-header", value_name = "NAME", help_heading = "Secrets")]
    pub redact_headers: Vec<String>,

    /// Redact the values of query parameters, JSON keys and form fields of this name too, as
    /// password's are (repeat for several)
    #[arg(long = "redact", value_name = "NAME", help_heading = "Secrets")]
    pub redact_names: Vec<String>,
}

/// The statistics options, apart for readability.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// At exit, print per role, method and route: count, requests/s, outcomes, latency
    /// percentiles and mean body sizes (on stderr; with -o json also as JSON lines of kind
    /// "stats" on stdout)
    #[arg(long = "stats", help_heading = "Statistics")]
    pub enabled: bool,

    /// Also print the statistics every DURATION (event time: a replay prints them at the same
    /// points)
    #[arg(long = "stats-interval", value_name = "DURATION", value_parser = parse_duration,
          requires = "enabled", help_heading = "Statistics")]
    pub interval: Option<Duration>,

    /// A live view of these statistics, like top(1): refreshed every second with the requests
    /// per second of the last interval, the latest errors and the slowest exchanges below; keys
    /// c, r, p and e sort by count, req/s, p99 and errors; q quits and prints the summary
    #[arg(long = "top", help_heading = "Statistics",
          conflicts_with_all = ["output", "output_file", "write", "read", "interval", "verbose"])]
    pub top: bool,

    /// A route to count under, matched before the automatic folding of ids (repeat for
    /// several): /users/{id}/orders, where {...} matches one path segment
    #[arg(long = "route", value_name = "TEMPLATE", value_parser = parse_route,
          help_heading = "Statistics")]
    pub routes: Vec<RouteTemplate>,
}

fn parse_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains('/') || s.contains('\0') {
        return Err(format!(
            "'{s}' is not a command name: give the program's base name, as ps -o comm shows it"
        ));
    }
    Ok(s.to_string())
}

fn parse_route(s: &str) -> Result<RouteTemplate, String> {
    s.parse()
}

/// The `--role` filter's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Server,
    Client,
}

impl Args {
    /// Bytes copied of each call: as given, else the default for what is written.
    pub fn capture_bytes(&self) -> u32 {
        let whole = self.write.is_some() || self.output == Some(Format::Pcapng);
        self.capture_bytes.unwrap_or(if whole {
            MAX_CAPTURE_BYTES
        } else {
            DEFAULT_CAPTURE_BYTES
        })
    }

    /// The filters of the command line.
    pub fn filter(&self) -> Filter {
        Filter::new(FilterArgs {
            methods: self.methods.clone(),
            paths: self.paths.clone(),
            path_regexes: self.path_regexes.clone(),
            hosts: self.hosts.clone(),
            statuses: self.statuses.clone(),
            min_latency_ns: self
                .min_latency
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            role: self.role.map(|r| match r {
                RoleArg::Server => Role::Server,
                RoleArg::Client => Role::Client,
            }),
            ports: self.ports.clone(),
            peers: self.peers.clone(),
            headers: self.headers.clone(),
        })
        // Each glob was checked alone by clap; a set of valid globs builds.
        .expect("valid globs make a glob set")
    }
}

fn parse_status(s: &str) -> Result<StatusSpec, String> {
    s.parse()
}

fn parse_peer(s: &str) -> Result<PeerSpec, String> {
    s.parse()
}

fn parse_header(s: &str) -> Result<HeaderSpec, String> {
    s.parse()
}

/// The heading of the filters in --help.
const FILTERS: &str =
    "Filters (ANDed across kinds, ORed within one; the summary counts what they hide)";

/// Body bytes kept per message unless --max-body says.
pub const DEFAULT_MAX_BODY: u32 = 4096;

/// The longest --duration: a year.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A bare number is seconds (fractions allowed); anything else is humantime's syntax.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.parse::<f64>() {
        Ok(secs) => {
            Duration::try_from_secs_f64(secs).map_err(|_| format!("'{s}' is not a duration"))?
        }
        Err(_) => humantime::parse_duration(s).map_err(|e| {
            format!("'{s}' is not a duration ({e}); for example 90, 2.5, 500ms, 2m")
        })?,
    };
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!("'{s}' is not between 1 ns and a year"));
    }
    Ok(d)
}

fn parse_pages(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !(8..=65536).contains(&n) || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two from 8 to 65536"));
    }
    Ok(n)
}

/// The command line, or the exit code after clap printed help or the version, or after a bad
/// command line was said in one line.
pub fn parse() -> Result<Args, ExitCode> {
    match Args::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            eprintln!("http-trace: {} (see --help)", one_line(&e.to_string()));
            Err(ExitCode::from(2))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Recordings and pcapng copy the most of each call unless told: their readers want
    /// whole bodies.
    #[test]
    fn capture_bytes_default_by_what_is_written() {
        use clap::Parser;
        let bytes = |line: &[&str]| {
            Args::try_parse_from(["http-trace", "--pid", "1"].iter().chain(line))
                .expect("a valid command line")
                .capture_bytes()
        };
        assert_eq!(bytes(&[]), DEFAULT_CAPTURE_BYTES);
        assert_eq!(bytes(&["-o", "json"]), DEFAULT_CAPTURE_BYTES);
        assert_eq!(bytes(&["-o", "pcapng"]), MAX_CAPTURE_BYTES);
        assert_eq!(bytes(&["-w", "t.htr"]), MAX_CAPTURE_BYTES);
        assert_eq!(bytes(&["-w", "t.htr", "--capture-bytes", "1024"]), 1024);
    }

    #[test]
    fn durations_in_seconds_or_with_units() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("90", ms(90_000)),
            ("2.5", ms(2_500)),
            ("0.25", ms(250)),
            ("500ms", ms(500)),
            ("1.5s", ms(1_500)),
            ("2m", ms(120_000)),
            ("1h 30m", ms(5_400_000)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["0", "0s", "-1", "abc", "5 parsecs", "NaN", "inf", "2y"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
