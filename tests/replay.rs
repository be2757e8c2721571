//! Replays of the committed sample recording (tests/data/sample.htr, described in
//! tests/data/capture-format.md): no root and no BPF needed. The expected outputs were printed
//! by the run that recorded it; after a deliberate change of an output format, regenerate them
//! with `http-trace -r tests/data/sample.htr -o json > tests/data/sample.json` (and `-v` for
//! sample.txt).

use std::process::Command;

const TRACER: &str = env!("CARGO_BIN_EXE_http-trace");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.htr");

fn replay(args: &[&str]) -> (String, String) {
    let out = Command::new(TRACER)
        .args(["-r", SAMPLE])
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run http-trace");
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        String::from_utf8(out.stderr).expect("UTF-8 messages"),
    )
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("read the expected output")
}

#[test]
fn the_sample_replays_to_its_json() {
    let (json, stderr) = replay(&["-o", "json"]);
    assert_eq!(json, expected("sample.json"));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("http-trace: reading ")
            && lines[0].contains(" with socket-tracepoint and the ring buffer (http-trace "),
        "{stderr}"
    );
    assert_eq!(lines[1], "http-trace: 6 exchanges captured, 0 events lost");
}

#[test]
fn the_sample_replays_to_its_text() {
    assert_eq!(replay(&["-v"]).0, expected("sample.txt"));
}

#[test]
fn options_of_the_output_apply_to_a_replay() {
    let (json, stderr) = replay(&["-o", "json", "--count", "2", "--max-body", "4"]);
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert!(lines[1].contains(r#""response_body":"POST","#), "{json}");
    // The summary counts what was printed; the replay read the whole file all the same.
    assert!(
        stderr.ends_with("http-trace: 2 exchanges captured, 0 events lost\n"),
        "{stderr}"
    );
}

#[test]
fn output_file_gets_the_records() {
    let dir = std::env::temp_dir().join(format!("http-trace-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("out.json");
    let (stdout, _) = replay(&["-o", "json", "--output-file", file.to_str().unwrap()]);
    assert_eq!(stdout, "");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        expected("sample.json")
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_newer_format_is_refused_and_a_foreign_file_named() {
    let dir = std::env::temp_dir().join(format!("http-trace-replay-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut newer = std::fs::read(SAMPLE).unwrap();
    newer[8] = 9;
    let file = dir.join("newer.htr");
    std::fs::write(&file, &newer).unwrap();
    let out = Command::new(TRACER).arg("-r").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "http-trace: error: {}: written by a newer http-trace (format version 9; this one \
             reads up to {}): read it with that version\n",
            file.display(),
            http_trace::capture::FORMAT_VERSION
        )
    );
    std::fs::write(&file, b"{\"kind\":\"exchange\"}\n").unwrap();
    let out = Command::new(TRACER).arg("-r").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "http-trace: error: {}: not an http-trace capture file\n",
            file.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
