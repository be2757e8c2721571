//! http-trace: show the plaintext HTTP/1.1 traffic of a running process, live, with eBPF.
//!
//! The pipeline, in the order data flows through it; each module uses only modules listed
//! before it (`layers_are_respected` below checks the `crate::` paths):
//!
//! - `bpf`: the BPF ABI: the generated skeleton, the types shared with bpf/http_trace.h, the
//!   kernel side's limits and drop counters. Nothing else knows the kernel-side layout.
//! - `container`: which container a process is in, and its PID there, from its cgroup paths.
//! - `decode`: buffer samples into events (`Chunk`s of a connection, process forks and exits).
//! - `reorder`: a connection's events back in order across CPUs; gaps waited for, then given up.
//! - `http`: HTTP/1.x parsing of one direction: messages, framing, resynchronisation.
//! - `stream`: one direction's syscalls, holes included, into its parser.
//! - `record`: what the pipeline hands out: exchanges and malformed messages.
//! - `filter`: which records are shown (--method, --path, --status, ...).
//! - `redact`: secrets taken out of records and byte streams before any output.
//! - `pairing`: requests paired with responses, in order.
//! - `tracker`: per connection, the stages above tied together.
//! - `stats`: endpoint statistics of the records shown (--stats).
//! - `output`: records as text, JSON lines, HAR or pcapng, or on the live view (--top).
//! - `pipeline`: samples to printed records, as one value a session or a replay drives.
//! - `capture`: the capture file of -w and -r: the pipeline's inputs, framed, with a header.
//! - `proc_scan`: what /proc says (processes by name and container, children, identities,
//!   connections open at start, Unix sockets still there).
//! - `traced`: the one home of the traced processes: alive, forked, started, exited, their
//!   identities, and BPF's set of them.
//! - `attach`: checks, loading and attaching with one attach method; the event buffer.
//! - `cli`: the command line.
//! - `session`: one run: start, poll, finish, the summary.

pub mod attach;
pub mod bpf;
pub mod capture;
pub mod cli;
pub mod container;
pub mod decode;
pub mod filter;
pub mod http;
pub mod output;
pub mod pairing;
pub mod pipeline;
pub mod proc_scan;
pub mod record;
pub mod redact;
pub mod reorder;
pub mod session;
pub mod stats;
pub mod stream;
pub mod traced;
pub mod tracker;

/// The modules in layer order, lowest first (as listed above).
#[cfg(test)]
const LAYERS: [&str; 20] = [
    "bpf",
    "container",
    "decode",
    "reorder",
    "http",
    "stream",
    "record",
    "filter",
    "redact",
    "pairing",
    "tracker",
    "stats",
    "output",
    "pipeline",
    "capture",
    "proc_scan",
    "traced",
    "attach",
    "cli",
    "session",
];

#[cfg(test)]
mod tests {
    use super::LAYERS;
    use std::path::Path;

    /// The module a file under src/ belongs to: its first path component, without `.rs`.
    fn module_of(rel: &Path) -> String {
        let first = rel.components().next().expect("a path under src");
        let name = first.as_os_str().to_string_lossy();
        name.trim_end_matches(".rs").to_string()
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = e.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }

    /// The crate modules a source text names through `crate::` paths.
    fn crate_paths(text: &str) -> Vec<String> {
        text.match_indices("crate::")
            .map(|(i, m)| {
                let rest = &text[i + m.len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                rest[..end].to_string()
            })
            .collect()
    }

    /// The files compiled into test builds only: `#[cfg(test)] mod NAME;` in a file of `dir`.
    fn test_only_files(files: &[std::path::PathBuf]) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file).expect("readable source");
            let dir = file.parent().expect("a file in a directory");
            for (attr, decl) in text.lines().zip(text.lines().skip(1)) {
                let name = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';'));
                if let (true, Some(name)) = (attr.trim() == "#[cfg(test)]", name) {
                    found.push(dir.join(format!("{name}.rs")));
                }
            }
        }
        found
    }

    #[test]
    fn layers_are_respected() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let test_only = test_only_files(&files);
        let rank = |m: &str| LAYERS.iter().position(|&l| l == m);
        let mut checked = 0;
        for file in files {
            let rel = file.strip_prefix(&src).expect("under src");
            let module = module_of(rel);
            if module == "lib" || module == "main" {
                continue;
            }
            let mine = rank(&module).unwrap_or_else(|| panic!("{module} is not in LAYERS"));
            let text = std::fs::read_to_string(&file).expect("readable source");
            // Test code may use any module (a test oracle reads its fixture with `capture`):
            // a file's `#[cfg(test)] mod tests` at its end, or a file in test builds only, is
            // not checked.
            if test_only.contains(&file) {
                continue;
            }
            let text = text
                .split("\n#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or_default();
            for used in crate_paths(text) {
                let theirs = rank(&used).unwrap_or_else(|| panic!("{used} is not in LAYERS"));
                assert!(
                    theirs <= mine,
                    "{} uses crate::{used}, which is above it in the pipeline",
                    rel.display()
                );
                checked += 1;
            }
        }
        assert!(
            checked > 20,
            "only {checked} crate:: paths found: is the scan broken?"
        );
    }

    /// docs/architecture.md lists the modules as LAYERS does, in the same order.
    #[test]
    fn the_architecture_page_lists_every_module() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
        let doc = std::fs::read_to_string(doc).expect("docs/architecture.md");
        let listed: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("- `")?.split_once("`: ").map(|(m, _)| m))
            .filter(|m| !m.contains(['/', ' ']))
            .collect();
        assert_eq!(listed, LAYERS, "docs/architecture.md's module list");
    }

    #[test]
    fn crate_paths_are_found() {
        assert_eq!(
            crate_paths("use crate::http::{Message};\nlet x = crate::bpf::drops(s);"),
            ["http", "bpf"]
        );
    }
}
