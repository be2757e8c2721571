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
        write!(
            self.out,
            "{} {}[{}] fd={} ",
            time_of_day(self.clock.wall_ns(rec.ts_ns())),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Comm, ConnMeta};

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T23:59:59.999999Z: a leap day.
        assert_eq!(
            rfc3339(1_709_251_199_999_999_000),
            "2024-02-29T23:59:59.999999Z"
        );
        assert_eq!(
            rfc3339(1_795_311_806_123_456_789),
            "2026-11-22T01:43:26.123456Z"
        );
        assert_eq!(time_of_day(1_795_311_806_123_456_789), "01:43:26.123456");
    }

    #[test]
    fn escapes_binary_and_indents_lines() {
        assert_eq!(
            escape_body(b"a\r\nb\x00\xff\xfe\tc", "  "),
            "  a\n  b\\u{0}\\xff\\xfe\tc"
        );
        assert_eq!(escape_body("héllo".as_bytes(), ""), "héllo");
    }

    fn record(body: &[u8], body_bytes: u64, complete: bool) -> Record {
        Record {
            meta: ConnMeta {
                tgid: 42,
                tid: 43,
                fd: 7,
                comm: Comm::new("nginx"),
            },
            parsed: Parsed::Request(Request {
                ts_ns: 5_000,
                method: "POST".into(),
                target: "/api?x=1".into(),
                version: 1,
                headers: vec![
                    ("Host".into(), "h".into()),
                    ("X-A".into(), "1".into()),
                    ("X-A".into(), "2".into()),
                ],
                body_bytes,
                body: body.to_vec(),
                body_missing_bytes: 0,
                complete,
            }),
        }
    }

    fn print(format: Format, verbose: bool, rec: &Record) -> String {
        let mut p = Printer::new(
            Vec::new(),
            format,
            verbose,
            Clock::fixed(1_795_311_806_000_000_000),
        );
        p.print(rec).unwrap();
        String::from_utf8(p.into_inner()).unwrap()
    }

    #[test]
    fn text_line_and_verbose_details() {
        let rec = record(b"{\"a\":1}", 7, true);
        assert_eq!(
            print(Format::Text, false, &rec),
            "01:43:26.000005 nginx[42] fd=7 POST /api?x=1 HTTP/1.1 body=7B\n"
        );
        assert_eq!(
            print(Format::Text, true, &rec),
            "01:43:26.000005 nginx[42] fd=7 POST /api?x=1 HTTP/1.1 body=7B\n    Host: h\n    X-A: 1\n    X-A: 2\n\n    {\"a\":1}\n"
        );
        let cut = record(b"abc", 10, false);
        assert_eq!(
            print(Format::Text, true, &cut),
            "01:43:26.000005 nginx[42] fd=7 POST /api?x=1 HTTP/1.1 body=10B (incomplete)\n    Host: h\n    X-A: 1\n    X-A: 2\n\n    abc\n    [body cut: 3 of 10 bytes shown]\n"
        );
    }

    #[test]
    fn json_object_per_line() {
        let line = print(Format::Json, false, &record(b"abc", 10, true));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({
                "kind": "request",
                "ts": "2026-11-22T01:43:26.000005Z",
                "pid": 42, "tid": 43, "comm": "nginx", "fd": 7,
                "method": "POST", "target": "/api?x=1", "version": "HTTP/1.1",
                "request_headers": [["Host", "h"], ["X-A", "1"], ["X-A", "2"]],
                "request_body_bytes": 10, "request_body": "abc", "request_body_cut": true,
                "complete": true,
            })
        );
    }

    #[test]
    fn malformed_records() {
        let rec = Record {
            meta: ConnMeta {
                tgid: 1,
                tid: 2,
                fd: 3,
                comm: Comm::new("srv"),
            },
            parsed: Parsed::Malformed {
                ts_ns: 0,
                reason: "invalid request: invalid token".into(),
            },
        };
        assert_eq!(
            print(Format::Text, false, &rec),
            "01:43:26.000000 srv[1] fd=3 malformed request: invalid request: invalid token\n"
        );
        let v: serde_json::Value = serde_json::from_str(&print(Format::Json, false, &rec)).unwrap();
        assert_eq!(v["kind"], "malformed");
        assert_eq!(v["reason"], "invalid request: invalid token");
    }
}
