//! The files and streams a run writes: the records' output, and how the recording is named.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::Args;
use crate::output::Format;

/// Create `path` for writing, mode 0600 (it will hold headers and bodies): never over an
/// existing file unless `force`.
pub(super) fn create_private(path: &Path, force: bool) -> Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            anyhow!("{} exists: give --force to overwrite it", path.display())
        } else {
            anyhow!("creating {}: {e}", path.display())
        }
    })?;
    if force {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    Ok(file)
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
            Some(p) if p == Path::new("-") => Some(Box::new(io::stdout().lock())),
            Some(path) => Some(Box::new(create_private(path, args.force)?)),
        };
        let format = match (&args.write, args.output) {
            _ if args.stats.top => Some(Format::Top),
            (Some(_), None) => None,
            (_, f) => Some(f.unwrap_or(Format::Text)),
        };
        let records = match format {
            Some(Format::Top) => Some(Box::new(io::sink()) as Output),
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
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("http-trace-unit-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch dir");
        dir
    }

    #[test]
    fn files_are_private_and_kept_unless_forced() {
        let dir = scratch("private");
        let path = dir.join("t.htr");
        drop(create_private(&path, false).expect("a new file"));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let e = create_private(&path, false).expect_err("kept").to_string();
        assert_eq!(
            e,
            format!("{} exists: give --force to overwrite it", path.display())
        );
        std::fs::write(&path, b"old").unwrap();
        drop(create_private(&path, true).expect("forced"));
        assert_eq!(std::fs::read(&path).unwrap(), b"");
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
