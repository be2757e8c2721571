//! Output: a readable line per request (plus headers and body with -v), or one JSON object per
//! line. Writes go through a buffer that the caller flushes once per batch of events.

use std::io::{self, Write};

use serde_json::json;

use crate::conn::Record;
use crate::http::{Parsed, Request};

/// Body bytes the text output shows with -v; JSON carries all that was kept (--max-body).
const TEXT_BODY_PREVIEW: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Converts BPF timestamps (CLOCK_MONOTONIC) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    realtime_minus_monotonic_ns: i128,
}

impl Clock {
    pub fn now() -> io::Result<Self> {
        let mono = clock_ns(libc::CLOCK_MONOTONIC)?;
        let real = clock_ns(libc::CLOCK_REALTIME)?;
        Ok(Self {
            realtime_minus_monotonic_ns: real - mono,
        })
    }

    #[cfg(test)]
    pub fn fixed(realtime_minus_monotonic_ns: i128) -> Self {
        Self {
            realtime_minus_monotonic_ns,
        }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn wall_ns(&self, monotonic_ns: u64) -> i128 {
        i128::from(monotonic_ns) + self.realtime_minus_monotonic_ns
    }
}

fn clock_ns(clock: libc::clockid_t) -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian (H. Hinnant's method).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 UTC with microseconds, e.g. 2026-11-22T01:43:26.123456Z.
pub fn rfc3339(wall_ns: i128) -> String {
    let micros = wall_ns.div_euclid(1_000);
    let secs = micros.div_euclid(1_000_000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        micros.rem_euclid(1_000_000)
    )
}

/// Time of day, UTC, with microseconds: the text output's first column.
fn time_of_day(wall_ns: i128) -> String {
    let s = rfc3339(wall_ns);
    s[11..s.len() - 1].to_string()
}

/// Body bytes for a terminal: text as is, other bytes escaped, lines indented.
pub fn escape_body(body: &[u8], indent: &str) -> String {
    let mut s = String::with_capacity(body.len() + indent.len());
    s.push_str(indent);
    for chunk in body.utf8_chunks() {
        let mut chars = chunk.valid().chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    s.push('\n');
                    s.push_str(indent);
                }
                '\t' => s.push(c),
                c if c.is_control() => s.extend(c.escape_default()),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

pub struct Printer<W: Write> {
    out: W,
    format: Format,
    verbose: bool,
    clock: Clock,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, verbose: bool, clock: Clock) -> Self {
        Self {
            out,
            format,
            verbose,
            clock,
        }
    }

    pub fn print(&mut self, rec: &Record) -> io::Result<()> {
        match self.format {
            Format::Text => self.print_text(rec),
            Format::Json => self.print_json(rec),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    fn print_text(&mut self, rec: &Record) -> io::Result<()> {
        let m = &rec.meta;
        let ts = match &rec.parsed {
            Parsed::Request(r) => r.ts_ns,
            Parsed::Malformed { ts_ns, .. } => *ts_ns,
        };
        write!(
            self.out,
            "{} {}[{}] fd={} ",
            time_of_day(self.clock.wall_ns(ts)),
            m.comm.to_string_lossy(),
            m.tgid,
            m.fd
        )?;
        let r = match &rec.parsed {
            Parsed::Malformed { reason, .. } => {
                return writeln!(self.out, "malformed request: {reason}");
            }
            Parsed::Request(r) => r,
        };
        write!(self.out, "{} {} HTTP/1.{}", r.method, r.target, r.version)?;
        if r.body_bytes > 0 {
            write!(self.out, " body={}B", r.body_bytes)?;
        }
        if !r.complete {
            write!(self.out, " (incomplete)")?;
        }
        writeln!(self.out)?;
        if self.verbose {
            self.print_details(r)?;
        }
        Ok(())
    }

    fn print_details(&mut self, r: &Request) -> io::Result<()> {
        for (name, value) in &r.headers {
            writeln!(self.out, "    {name}: {value}")?;
        }
        let shown = &r.body[..r.body.len().min(TEXT_BODY_PREVIEW)];
        if !shown.is_empty() {
            writeln!(self.out)?;
            writeln!(self.out, "{}", escape_body(shown, "    "))?;
        }
        if (shown.len() as u64) < r.body_bytes {
            writeln!(
                self.out,
                "    [body cut: {} of {} bytes shown]",
                shown.len(),
                r.body_bytes
            )?;
        }
        Ok(())
    }

    fn print_json(&mut self, rec: &Record) -> io::Result<()> {
        let m = &rec.meta;
        let value = match &rec.parsed {
            Parsed::Request(r) => json!({
                "kind": "request",
                "ts": rfc3339(self.clock.wall_ns(r.ts_ns)),
                "pid": m.tgid,
                "tid": m.tid,
                "comm": m.comm.to_string_lossy(),
                "fd": m.fd,
                "method": r.method,
                "target": r.target,
                "version": format!("HTTP/1.{}", r.version),
                "request_headers": r.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
                "request_body_bytes": r.body_bytes,
                "request_body": String::from_utf8_lossy(&r.body),
                "request_body_cut": r.body_cut(),
                "complete": r.complete,
            }),
            Parsed::Malformed { ts_ns, reason } => json!({
                "kind": "malformed",
                "ts": rfc3339(self.clock.wall_ns(*ts_ns)),
                "pid": m.tgid,
                "tid": m.tid,
                "comm": m.comm.to_string_lossy(),
                "fd": m.fd,
                "reason": reason,
            }),
        };
        serde_json::to_writer(&mut self.out, &value)?;
        writeln!(self.out)
    }
}
