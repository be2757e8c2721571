//! The capture file of `-w` and `-r`: the pipeline's inputs as a live run took them in, raw
//! events included, unparsed. A replay applies them again, so that it prints what the live run
//! printed, byte for byte. The layout is documented in tests/data/capture-format.md:
//!
//! - a magic number, then the format version (u32, little-endian);
//! - the header: its length (u32) and a JSON object (`Header`);
//! - records, each a kind (u8), a length (u32) and that many bytes, up to the End record
//!   (JSON: `End`), which a file cut short (the recorder killed) lacks.

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use crate::decode::{self, Role};
use crate::pipeline::Input;

/// A live run records every input into the file this variable names, as -w would, whatever else
/// it was asked for: the tests list the events of a failing run from it, and the pipeline
/// benchmark's data was recorded so.
pub const RECORD_ENV: &str = "HTTP_TRACE_RECORD";

/// The first bytes of every capture file. The high byte, CR LF and ^Z catch a file mangled by
/// a text-mode copy, as PNG's signature does.
pub const MAGIC: [u8; 8] = *b"\x89HTR\r\n\x1a\n";
/// The format version this build writes, and the newest it reads. Version 2 added the
/// process record; a version 1 file reads the same. Version 3 gave process events and a found
/// socket's opening fields of their own; version 4 named the process and the thread apart
/// (the header's `thread`): older samples are rewritten as they are read.
pub const FORMAT_VERSION: u32 = 4;
/// Bounds what a damaged length can make the reader allocate: the largest record is a sample
/// (BPF caps them far below this) or the header.
const MAX_RECORD_BYTES: u32 = 16 << 20;

const SAMPLE: u8 = 1;
const LOST: u8 = 2;
const PREOPENED: u8 = 3;
const TICK: u8 = 4;
const PROCESS_GONE: u8 = 5;
const SOCKET_GONE: u8 = 6;
const PRINT: u8 = 7;
const PROCESS: u8 = 8;
const END: u8 = 0xff;

/// What a recording says of itself: enough to replay it and to read its timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The http-trace version that wrote the file.
    pub http_trace: String,
    /// The kernel release it ran on (`uname -r`).
    pub kernel: String,
    /// Wall-clock time when the recording started, RFC 3339.
    pub started: String,
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: turns event timestamps into wall time.
    pub realtime_minus_monotonic_ns: i64,
    /// CPUs the kernel had (possible CPUs: the buffers' count).
    pub cpus: u32,
    /// The attach method and the event buffer.
    pub attach: String,
    pub buffer: String,
    /// The capture options: bytes copied per call, body bytes kept (the replay's default),
    /// whether children were followed.
    pub capture_bytes: u32,
    pub max_body: u32,
    pub follow_children: bool,
    /// The processes named with --pid.
    pub pids: Vec<u32>,
}

/// The last record: how the recording ended, and what the kernel side counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Every traced process had exited.
    pub all_exited: bool,
    /// BPF's drop counters, indexed by enum ht_drop.
    pub drops: Vec<u64>,
    pub kretprobe_misses: u64,
    pub skipped_runs: u64,
    /// Child processes followed, and traced processes that exited.
    pub children_followed: u64,
    pub processes_exited: u64,
    /// Processes --name or --container found started (format 2).
    #[serde(default)]
    pub processes_started: u64,
    /// Restarts of the containers --container follows (format 3).
    #[serde(default)]
    pub containers_restarted: u64,
}

/// A record read back.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry<'a> {
    Input(Input<'a>),
    End(End),
}

/// Writes a capture file; counts what it wrote.
pub struct Writer<W: Write> {
    out: W,
    pub samples: u64,
    pub sample_bytes: u64,
}

impl<W: Write> Writer<W> {
    /// Start a file: the magic number, the version and the header.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        out.write_all(&MAGIC)?;
        out.write_all(&FORMAT_VERSION.to_le_bytes())?;
        let json = serde_json::to_vec(header)?;
        out.write_all(&(json.len() as u32).to_le_bytes())?;
        out.write_all(&json)?;
        Ok(Self {
            out,
            samples: 0,
            sample_bytes: 0,
        })
    }

    pub fn input(&mut self, input: &Input<'_>) -> io::Result<()> {
        if let Input::Sample(data) = *input {
            self.samples += 1;
            self.sample_bytes += data.len() as u64;
        }
        write_input(&mut self.out, input)
    }

    /// A record `write_input` wrote to memory earlier (held back, to be redacted); `sample`:
    /// the bytes of the sample it holds, if it holds one.
    pub fn encoded(&mut self, record: &[u8], sample: Option<usize>) -> io::Result<()> {
        if let Some(n) = sample {
            self.samples += 1;
            self.sample_bytes += n as u64;
        }
        self.out.write_all(record)
    }

    /// The last record; flushed.
    pub fn end(&mut self, end: &End) -> io::Result<()> {
        let json = serde_json::to_vec(end)?;
        self.record(END, &[&json])?;
        self.flush()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn record(&mut self, kind: u8, parts: &[&[u8]]) -> io::Result<()> {
        record(&mut self.out, kind, parts)
    }
}

/// Where a sample's bytes start in its record as `write_input` writes it: after the kind and
/// the length.
pub const SAMPLE_AT: usize = 5;

/// Write `input` to `out` as a record.
pub fn write_input(out: &mut impl Write, input: &Input<'_>) -> io::Result<()> {
    match *input {
        Input::Sample(data) => record(out, SAMPLE, &[data]),
        Input::Lost(n) => record(out, LOST, &[&n.to_le_bytes()]),
        Input::Preopened { pid, fd, role } => record(
            out,
            PREOPENED,
            &[&pid.to_le_bytes(), &fd.to_le_bytes(), &[role_byte(role)]],
        ),
        Input::Tick { now_ns } => record(out, TICK, &[&now_ns.to_le_bytes()]),
        Input::ProcessGone(pid) => record(out, PROCESS_GONE, &[&pid.to_le_bytes()]),
        Input::SocketGone(id) => record(out, SOCKET_GONE, &[&id.to_le_bytes()]),
        Input::Print => record(out, PRINT, &[]),
        Input::Process {
            pid,
            ns_pid,
            container_id,
            pod_uid,
        } => record(
            out,
            PROCESS,
            &[
                &pid.to_le_bytes(),
                &ns_pid.to_le_bytes(),
                container_id.as_bytes(),
                b"\0",
                pod_uid.as_bytes(),
            ],
        ),
    }
}

fn record(out: &mut impl Write, kind: u8, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_RECORD_BYTES)
        .ok_or(io::ErrorKind::InvalidInput)?;
    out.write_all(&[kind])?;
    out.write_all(&len.to_le_bytes())?;
    for p in parts {
        out.write_all(p)?;
    }
    Ok(())
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Server => 0,
        Role::Client => 1,
        Role::Unknown => 2,
    }
}

/// Why a file could not be read (further).
#[derive(Debug)]
pub enum ReadError {
    /// Not a capture file at all.
    Foreign,
    /// Written by a newer http-trace, in a format version this one does not know.
    Newer(u32),
    /// The file ends inside a record, or before its header ends: the recorder was stopped
    /// while writing. What came before is good.
    Cut {
        offset: u64,
    },
    /// A record that cannot be: bad kind, length or contents.
    Damaged {
        offset: u64,
        why: String,
    },
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Foreign => f.write_str("not an http-trace capture file"),
            ReadError::Newer(v) => write!(
                f,
                "written by a newer http-trace (format version {v}; this one reads up to \
                 {FORMAT_VERSION}): read it with that version"
            ),
            ReadError::Cut { offset } => write!(f, "cut short at byte {offset}"),
            ReadError::Damaged { offset, why } => write!(f, "damaged at byte {offset}: {why}"),
            ReadError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a capture file.
pub struct Reader<R: BufRead> {
    input: R,
    pub header: Header,
    /// Bytes read so far: where the next record starts.
    offset: u64,
    /// The record being read (a sample's bytes are lent out of it).
    buf: Vec<u8>,
    ended: bool,
    version: u32,
}

impl<R: BufRead> Reader<R> {
    /// Check the magic number and the version, and read the header.
    pub fn new(mut input: R) -> Result<Self, ReadError> {
        let mut start = [0u8; 12];
        let got = read_full(&mut input, &mut start).map_err(ReadError::Io)?;
        if got < MAGIC.len() || start[..MAGIC.len()] != MAGIC {
            return Err(ReadError::Foreign);
        }
        if got < start.len() {
            return Err(ReadError::Cut { offset: got as u64 });
        }
        let version = u32::from_le_bytes(start[8..12].try_into().expect("4 bytes"));
        if version > FORMAT_VERSION {
            return Err(ReadError::Newer(version));
        }
        if version == 0 {
            return Err(ReadError::Damaged {
                offset: 8,
                why: "format version 0".into(),
            });
        }
        let mut r = Self {
            input,
            header: Header::default_for_reading(),
            offset: start.len() as u64,
            buf: Vec::new(),
            ended: false,
            version,
        };
        let header_at = r.offset;
        let len = r.read_len()?;
        r.read_body(len)?;
        r.header = serde_json::from_slice(&r.buf).map_err(|e| ReadError::Damaged {
            offset: header_at,
            why: format!("its header is not what this version reads ({e})"),
        })?;
        Ok(r)
    }

    /// The next record; None after the End record, or at the end of a file without one (the
    /// caller tells these apart with `ended`).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ReadError> {
        if self.ended {
            return Ok(None);
        }
        let at = self.offset;
        let mut kind = [0u8; 1];
        if read_full(&mut self.input, &mut kind).map_err(ReadError::Io)? == 0 {
            return Ok(None);
        }
        self.offset += 1;
        let len = self.read_len()?;
        self.read_body(len)?;
        if kind[0] == SAMPLE && self.version <= 3 {
            decode::widen_format3_header(&mut self.buf);
        }
        if kind[0] == SAMPLE && self.version <= 2 {
            decode::upgrade_format2_sample(&mut self.buf);
        }
        let damaged = |why: &str| ReadError::Damaged {
            offset: at,
            why: why.to_string(),
        };
        let b = &self.buf;
        let fixed = |n: usize| {
            if b.len() == n {
                Ok(b.as_slice())
            } else {
                Err(damaged("a record of the wrong size"))
            }
        };
        let input = match kind[0] {
            SAMPLE => Input::Sample(b),
            LOST => Input::Lost(u64::from_le_bytes(fixed(8)?.try_into().expect("8"))),
            PREOPENED => {
                let b = fixed(9)?;
                Input::Preopened {
                    pid: u32::from_le_bytes(b[0..4].try_into().expect("4")),
                    fd: i32::from_le_bytes(b[4..8].try_into().expect("4")),
                    role: match b[8] {
                        0 => Role::Server,
                        1 => Role::Client,
                        2 => Role::Unknown,
                        _ => return Err(damaged("an unknown role")),
                    },
                }
            }
            TICK => Input::Tick {
                now_ns: u64::from_le_bytes(fixed(8)?.try_into().expect("8")),
            },
            PROCESS_GONE => {
                Input::ProcessGone(u32::from_le_bytes(fixed(4)?.try_into().expect("4")))
            }
            SOCKET_GONE => Input::SocketGone(u64::from_le_bytes(fixed(8)?.try_into().expect("8"))),
            PRINT => {
                fixed(0)?;
                Input::Print
            }
            PROCESS if b.len() >= 9 => {
                let names = std::str::from_utf8(&b[8..])
                    .map_err(|_| damaged("a process record that is not UTF-8"))?;
                let (container_id, pod_uid) = names
                    .split_once('\0')
                    .ok_or_else(|| damaged("a process record without its separator"))?;
                Input::Process {
                    pid: u32::from_le_bytes(b[0..4].try_into().expect("4")),
                    ns_pid: u32::from_le_bytes(b[4..8].try_into().expect("4")),
                    container_id,
                    pod_uid,
                }
            }
            PROCESS => return Err(damaged("a record of the wrong size")),
            END => {
                self.ended = true;
                let end = serde_json::from_slice(b)
                    .map_err(|e| damaged(&format!("its end record does not read ({e})")))?;
                return Ok(Some(Entry::End(end)));
            }
            k => return Err(damaged(&format!("a record of unknown kind {k}"))),
        };
        Ok(Some(Entry::Input(input)))
    }

    /// Whether the End record was read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn read_len(&mut self) -> Result<u32, ReadError> {
        let mut len = [0u8; 4];
        if read_full(&mut self.input, &mut len).map_err(ReadError::Io)? < len.len() {
            return Err(ReadError::Cut {
                offset: self.offset,
            });
        }
        let len = u32::from_le_bytes(len);
        if len > MAX_RECORD_BYTES {
            return Err(ReadError::Damaged {
                offset: self.offset - 1,
                why: format!("a record of {len} bytes"),
            });
        }
        self.offset += 4;
        Ok(len)
    }

    fn read_body(&mut self, len: u32) -> Result<(), ReadError> {
        self.buf.resize(len as usize, 0);
        let got = read_full(&mut self.input, &mut self.buf).map_err(ReadError::Io)?;
        if got < self.buf.len() {
            return Err(ReadError::Cut {
                offset: self.offset,
            });
        }
        self.offset += u64::from(len);
        Ok(())
    }
}

impl Header {
    /// Placeholder until the real header is read.
    fn default_for_reading() -> Self {
        Self {
            http_trace: String::new(),
            kernel: String::new(),
            started: String::new(),
            realtime_minus_monotonic_ns: 0,
            cpus: 0,
            attach: String::new(),
            buffer: String::new(),
            capture_bytes: 0,
            max_body: 0,
            follow_children: false,
            pids: Vec::new(),
        }
    }
}

/// Read until `buf` is full or the input ends; how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            http_trace: "0.1.0".into(),
            kernel: "6.18.0".into(),
            started: "2026-11-30T12:00:00.000000Z".into(),
            realtime_minus_monotonic_ns: 1_700_000_000_000_000_000,
            cpus: 2,
            attach: "socket-tracepoint".into(),
            buffer: "ring buffer".into(),
            capture_bytes: 65536,
            max_body: 4096,
            follow_children: true,
            pids: vec![42],
        }
    }

    fn inputs() -> Vec<Input<'static>> {
        vec![
            Input::Preopened {
                pid: 42,
                fd: 7,
                role: Role::Client,
            },
            Input::Sample(b"an event"),
            Input::Sample(b""),
            Input::Lost(3),
            Input::Tick { now_ns: 123 },
            Input::ProcessGone(43),
            Input::SocketGone(9),
            Input::Print,
            Input::Process {
                pid: 43,
                ns_pid: 7,
                container_id: "c23cf607e723",
                pod_uid: "",
            },
            Input::Process {
                pid: 44,
                ns_pid: 0,
                container_id: "",
                pod_uid: "",
            },
        ]
    }

    fn file(end: bool) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &header()).unwrap();
        for i in inputs() {
            w.input(&i).unwrap();
        }
        if end {
            w.end(&End {
                all_exited: true,
                drops: vec![0, 1, 2],
                ..End::default()
            })
            .unwrap();
        }
        assert_eq!((w.samples, w.sample_bytes), (2, 8));
        w.out
    }

    /// Every entry of `bytes`, then how the reading ended.
    fn read_all(bytes: &[u8]) -> (Vec<String>, Result<bool, ReadError>) {
        let mut r = match Reader::new(bytes) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Err(e)),
        };
        assert_eq!(r.header, header());
        let mut seen = Vec::new();
        loop {
            match r.next_entry() {
                Ok(Some(e)) => seen.push(format!("{e:?}")),
                Ok(None) => return (seen, Ok(r.ended())),
                Err(e) => return (seen, Err(e)),
            }
        }
    }

    #[test]
    fn inputs_come_back_as_written() {
        let (seen, end) = read_all(&file(true));
        let mut want: Vec<String> = inputs()
            .into_iter()
            .map(|i| format!("{:?}", Entry::Input(i)))
            .collect();
        want.push(format!(
            "{:?}",
            Entry::End(End {
                all_exited: true,
                drops: vec![0, 1, 2],
                ..End::default()
            })
        ));
        assert_eq!(seen, want);
        assert!(end.unwrap());
    }

    #[test]
    fn a_file_cut_anywhere_reads_up_to_the_cut() {
        let whole = file(false);
        let header_end = 12 + 4 + serde_json::to_vec(&header()).unwrap().len();
        let (all, end) = read_all(&whole);
        assert!(!end.unwrap(), "no End record: not ended");
        for cut in header_end..whole.len() {
            let (seen, end) = read_all(&whole[..cut]);
            assert_eq!(seen, all[..seen.len()], "cut at {cut}");
            match end {
                Ok(false) | Err(ReadError::Cut { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        for cut in 8..header_end {
            assert!(matches!(
                read_all(&whole[..cut]).1,
                Err(ReadError::Cut { .. })
            ));
        }
    }

    #[test]
    fn foreign_newer_and_damaged_files_are_refused() {
        assert!(matches!(read_all(b"").1, Err(ReadError::Foreign)));
        assert!(matches!(
            read_all(b"GET / HTTP/1.1\r\n\r\n").1,
            Err(ReadError::Foreign)
        ));
        let mut newer = file(true);
        newer[8] = FORMAT_VERSION as u8 + 1;
        assert!(matches!(read_all(&newer).1, Err(ReadError::Newer(v)) if v == FORMAT_VERSION + 1));
        // Version 1 (no process records) reads as it did.
        let mut older = file(true);
        older[8] = 1;
        assert_eq!(read_all(&older).0.len(), inputs().len() + 1);
        let mut bad_kind = file(true);
        let first_record = 12 + 4 + serde_json::to_vec(&header()).unwrap().len();
        bad_kind[first_record] = 0x42;
        let (_, end) = read_all(&bad_kind);
        assert_eq!(
            end.unwrap_err().to_string(),
            format!("damaged at byte {first_record}: a record of unknown kind 66")
        );
        let mut huge = file(true);
        huge[first_record + 4] = 0x7f;
        assert!(matches!(read_all(&huge).1, Err(ReadError::Damaged { .. })));
    }
}
