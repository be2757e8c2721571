//! The files and streams a run writes: the records' output, and how the recording is named.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::cli::Args;
use crate::output::Format;

/// Create `path` for writing, private (mode 0600: it will hold headers and bodies), as a root
/// tool must in a directory others can write to: never following a symbolic link, never writing
/// into or changing the mode of a file it did not create.
/// - Nothing there: a new file (O_EXCL, so whatever appears there meanwhile is refused).
/// - A regular file: kept unless `force`, then replaced: a new file beside it is renamed over
///   it, so a hard link elsewhere keeps the old bytes, mode and owner.
/// - A FIFO: written as it is (a reader such as Wireshark waits at its other end).
/// - Anything else (a symbolic link, a device such as /dev/null, a directory, a socket):
///   refused in one line, `force` or not.
pub(super) fn create_private(path: &Path, force: bool) -> Result<File> {
    let shown = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return new_file(path),
        Err(e) => bail!("{shown}: {e}"),
        Ok(m) => m,
    };
    let kind = meta.file_type();
    if kind.is_file() {
        ensure!(force, "{shown} exists: give --force to replace it");
        replace(path)
    } else if kind.is_fifo() {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .with_context(|| format!("opening {shown}"))?;
        // What was opened is what was looked at (not something put there meanwhile).
        let opened = file
            .metadata()
            .with_context(|| format!("reading what {shown} is"))?;
        ensure!(
            opened.file_type().is_fifo(),
            "{shown} changed while it was opened"
        );
        Ok(file)
    } else {
        bail!(
            "{shown} is {}, not a regular file: give the name of a new file (or of one to replace, \
             with --force, or of a FIFO)",
            kind_name(&kind)
        )
    }
}

/// A new file at `path`, mode 0600, where nothing was.
fn new_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                anyhow!("{} exists: give --force to replace it", path.display())
            } else {
                anyhow!("creating {}: {e}", path.display())
            }
        })
}

/// A new file renamed over the regular file at `path`.
fn replace(path: &Path) -> Result<File> {
    let shown = path.display();
    let name = path
        .file_name()
        .with_context(|| format!("{shown} names no file"))?
        .to_string_lossy();
    let dir = path.parent().unwrap_or(Path::new("."));
    for attempt in 0..100 {
        let temp = dir.join(format!(".{name}.{}-{attempt}.new", std::process::id()));
        let file = match new_file(&temp) {
            Ok(f) => f,
            Err(_) if temp.symlink_metadata().is_ok() => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = std::fs::rename(&temp, path) {
            let _ = std::fs::remove_file(&temp);
            bail!("replacing {shown}: {e}");
        }
        return Ok(file);
    }
    bail!("replacing {shown}: no free name for the new file beside it")
}

/// What a file that is not a regular file is, for messages.
fn kind_name(kind: &std::fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "of an unknown kind"
    }
}

/// Where records are printed: --output-file, else stdout (not a terminal for a binary format).
pub(super) fn records_output(args: &Args, format: Format) -> Result<Output> {
    Ok(match &args.output_file {
        Some(path) => Box::new(create_private(path, args.force)?),
        None => {
            if format == Format::Pcapng && io::stdout().is_terminal() {
                bail!("-o pcapng is binary: give --output-file FILE, or send stdout to a file or a pipe");
            }
            Box::new(io::stdout().lock())
        }
    })
}

/// How the recording is named in messages.
pub(super) fn capture_name(args: &Args) -> String {
    match args.write.as_deref() {
        Some(p) if p == Path::new("-") => "stdout".to_string(),
        Some(p) => p.display().to_string(),
        None => String::new(),
    }
}

/// Where printed records go: stdout or --output-file.
pub(super) type Output = Box<dyn Write>;

/// What a live run writes: the recording (-w), and the records in their format (none when -w
/// records without -o).
pub(super) struct Outputs {
    pub capture: Option<Box<dyn Write>>,
    pub format: Option<Format>,
    pub records: Option<Output>,
}

impl Outputs {
    pub(super) fn open(args: &Args) -> Result<Self> {
        let capture: Option<Box<dyn Write>> = match &args.write {
            None => None,
            Some(p) if p == Path::new("-") => {
                if io::stdout().is_terminal() {
                    bail!("-w - writes the recording (binary; secrets in clear with --show-secrets): send stdout to a file or a pipe");
                }
                Some(Box::new(io::stdout().lock()))
            }
            Some(path) => Some(Box::new(create_private(path, args.force)?)),
        };
        let format = match (&args.write, args.output) {
            _ if args.stats.top => Some(Format::Top),
            // The recording is redacted as the outputs are: its bytes are parsed for it.
            (Some(_), None) if !args.show_secrets => Some(Format::Discard),
            (Some(_), None) => None,
            (_, f) => Some(f.unwrap_or(Format::Text)),
        };
        let records = match format {
            Some(Format::Top | Format::Discard) => Some(Box::new(io::sink()) as Output),
            Some(f) => Some(records_output(args, f)?),
            None => None,
        };
        Ok(Outputs {
            capture,
            format,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("http-trace-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch dir");
        dir
    }

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn files_are_private_and_kept_unless_forced() {
        let dir = scratch("private");
        let path = dir.join("t.htr");
        drop(create_private(&path, false).expect("a new file"));
        assert_eq!(mode(&path), 0o600);
        let e = create_private(&path, false).expect_err("kept").to_string();
        assert_eq!(
            e,
            format!("{} exists: give --force to replace it", path.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// --force replaces a regular file by a new one: what was written goes to the new file, a
    /// hard link to the old one keeps its bytes and its mode, and no temporary file is left.
    #[test]
    fn a_forced_file_is_replaced_not_written_through() {
        let dir = scratch("replace");
        let path = dir.join("t.htr");
        let other = dir.join("other-link");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::hard_link(&path, &other).unwrap();
        let mut f = create_private(&path, true).expect("forced");
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&other).unwrap(), b"old");
        assert_eq!(mode(&other), 0o644);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["other-link", "t.htr"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Links (to a file, dangling), devices and directories are refused, forced or not, and
    /// left as they were; nothing is created where a dangling link points.
    #[test]
    fn what_is_not_a_regular_file_is_refused_and_left_alone() {
        let dir = scratch("refused");
        let target = dir.join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dangling = dir.join("dangling");
        std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
        let null_mode = mode(Path::new("/dev/null"));
        for force in [false, true] {
            for (path, what) in [
                (link.as_path(), "a symbolic link"),
                (dangling.as_path(), "a symbolic link"),
                (Path::new("/dev/null"), "a character device"),
                (dir.as_path(), "a directory"),
            ] {
                let e = create_private(path, force)
                    .expect_err("refused")
                    .to_string();
                assert_eq!(
                    e,
                    format!(
                        "{} is {what}, not a regular file: give the name of a new file (or of \
                         one to replace, with --force, or of a FIFO)",
                        path.display()
                    )
                );
            }
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(mode(&target), 0o640);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!dir.join("nowhere").exists());
        assert_eq!(mode(Path::new("/dev/null")), null_mode);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A FIFO is written as it is, to its reader, without --force; its mode is left alone.
    #[test]
    fn a_fifo_is_written_to_its_reader() {
        let dir = scratch("fifo");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let before = mode(&fifo);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let mut f = create_private(&fifo, false).expect("the FIFO");
        f.write_all(b"records").unwrap();
        drop(f);
        assert_eq!(reader.join().unwrap(), b"records");
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(mode(&fifo), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_recording_is_named_as_given() {
        use clap::Parser;
        let args = |line: &[&str]| {
            Args::try_parse_from(std::iter::once("http-trace").chain(line.iter().copied()))
                .expect("a valid command line")
        };
        assert_eq!(capture_name(&args(&["--pid", "1", "-w", "-"])), "stdout");
        assert_eq!(
            capture_name(&args(&["--pid", "1", "-w", "a/t.htr"])),
            "a/t.htr"
        );
        assert_eq!(capture_name(&args(&["--pid", "1"])), "");
    }
}
