//! Root integration tests of recordings written live (-w): replayed to the same bytes, written
//! alone or to stdout, kept unless forced, private, cut short, a full disk, every way of
//! stopping. How files are handled does not depend on the kernel: most run on the host only.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `http-trace -r FILE` and `extra`, run as the user nobody (a replay needs no root), on a copy
/// of the recording that nobody owns: its stdout and stderr.
fn replay(file: &std::path::Path, extra: &[&str]) -> (Vec<u8>, String, bool) {
    use std::os::unix::fs::chown;
    let dir = TempDir::new("replay");
    chown(dir.path(), Some(65534), Some(65534)).expect("chown");
    let copy = dir.join("copy.htr");
    std::fs::copy(file, &copy).expect("copy the recording");
    chown(&copy, Some(65534), Some(65534)).expect("chown");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            TRACER,
            "-r",
        ])
        .arg(&copy)
        .args(extra)
        .output()
        .expect("run setpriv");
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// The mode bits of `path`.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// What a live run printed and what a replay of its recording prints are the same bytes, and
/// the same summary: every kind of exchange, timestamps included.
#[test]
fn a_recording_replays_to_the_same_bytes() {
    require_root!();
    let dir = TempDir::new("record");
    let (file, printed) = (dir.join("t.htr"), dir.join("live.json"));
    let server = Server::ours("recv");
    let tracer = Tracer::start(
        &[server.pid()],
        &[
            "-w",
            file.to_str().unwrap(),
            "--output",
            "json",
            "--output-file",
            printed.to_str().unwrap(),
        ],
    );
    send_standard_traffic(server.port);
    let out = tracer.stop();
    assert!(out.status.success());
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&printed), 0o600);
    let live = std::fs::read(&printed).expect("read the live output");
    assert_eq!(live.iter().filter(|&&b| b == b'\n').count(), 8);
    let (replayed, stderr, ok) = replay(&file, &["-o", "json"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&replayed),
        String::from_utf8_lossy(&live)
    );
    assert_eq!(stderr.lines().last(), Some(out.summary()), "{stderr}");
    assert!(
        stderr.contains(&format!(": pid {} traced from ", server.pid())),
        "{stderr}"
    );
}

/// -w alone parses nothing and prints no record: the banner, then what it recorded; the file
/// replays to the exchanges, in any format.
#[test]
fn recording_alone_prints_only_a_summary() {
    // How files are handled does not depend on the kernel: on the host only.
    if in_vm("recording_alone_prints_only_a_summary") {
        return;
    }
    require_root!();
    let dir = TempDir::new("record");
    let file = dir.join("t.htr");
    let server = Server::ours("read");
    let tracer = Tracer::start(&[server.pid()], &["-w", file.to_str().unwrap()]);
    assert_eq!(get(server.port, "/rec/1"), 200);
    assert_eq!(get(server.port, "/rec/2"), 200);
    let out = tracer.stop();
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "{:#?}", out.stdout);
    let last = out.stderr.last().expect("a summary");
    let file_name = file.display().to_string();
    assert!(
        last.starts_with("http-trace: ")
            && last.ends_with(&format!("recorded to {file_name}, 0 events lost")),
        "{last}"
    );
    let (text, stderr, ok) = replay(&file, &[]);
    assert!(ok, "{stderr}");
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains(" GET /rec/1 HTTP/1.1 -> 200 OK "),
        "{text}"
    );
    assert!(
        lines[1].contains(" GET /rec/2 HTTP/1.1 -> 200 OK "),
        "{text}"
    );
    assert_eq!(
        stderr.lines().last(),
        Some("http-trace: 2 exchanges captured, 0 events lost")
    );
}

/// `-w -` writes the recording to stdout, for a pipe or a redirection.
#[test]
fn recording_to_stdout() {
    // How files are handled does not depend on the kernel: on the host only.
    if in_vm("recording_to_stdout") {
        return;
    }
    require_root!();
    let dir = TempDir::new("record");
    let file = dir.join("t.htr");
    let server = Server::ours("recv");
    let mut cmd = Command::new(TRACER);
    cmd.args([
        "--pid",
        &server.pid().to_string(),
        "--attach",
        &attach_method(),
    ])
    .args(["-w", "-"])
    .stdout(std::fs::File::create(&file).expect("create"))
    .stderr(std::process::Stdio::piped());
    let mut group = Group::spawn("http-trace", &mut cmd);
    let stderr = group.stderr_lines();
    let pid = group.pid();
    while !stderr
        .recv_timeout(Duration::from_secs(30))
        .expect("the banner")
        .contains(": tracing pid")
    {}
    assert_eq!(get(server.port, "/to-stdout"), 200);
    // The response's bytes in the file: the exchange was taken in (the recorder flushes on each
    // poll).
    wait_for_bytes(&file, b"GET /to-stdout body=0");
    // SAFETY: kill has no memory-safety preconditions; the pid is our child, not reaped.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert!(group.wait("http-trace", Duration::from_secs(30)).success());
    let (json, stderr, ok) = replay(&file, &["-o", "json"]);
    assert!(ok, "{stderr}");
    // SIGTERM ended it cleanly: the file has its last record (no note about a cut).
    assert!(!stderr.contains("note:"), "{stderr}");
    let json = String::from_utf8_lossy(&json);
    assert_eq!(json.lines().count(), 1, "{json}");
    assert!(json.contains(r#""target":"/to-stdout""#), "{json}");
}

/// A file that exists is not replaced without --force; with it, it is, by a private file.
#[test]
fn an_existing_file_is_replaced_only_with_force() {
    // How files are handled does not depend on the kernel: on the host only.
    if in_vm("an_existing_file_is_replaced_only_with_force") {
        return;
    }
    require_root!();
    let dir = TempDir::new("record");
    let file = dir.join("t.htr");
    std::fs::write(&file, b"keep me").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let server = Server::ours("recv");
    for flag in ["-w", "--output-file"] {
        let out = Command::new(TRACER)
            .args(["--pid", &server.pid().to_string(), flag])
            .arg(&file)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "http-trace: error: {} exists: give --force to replace it\n",
                file.display()
            )
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    }
    let tracer = Tracer::start(&[server.pid()], &["-w", file.to_str().unwrap(), "--force"]);
    assert_eq!(get(server.port, "/forced"), 200);
    let out = tracer.stop();
    assert!(out.status.success());
    assert_eq!(mode(&file), 0o600);
    let (_, stderr, ok) = replay(&file, &[]);
    assert!(ok, "{stderr}");
}

/// In a sticky directory anyone can write to, as root: a link another user planted there,
/// pointing at a root-owned file, is never followed, by -w or --output-file, forced or not;
/// the file, its mode and the link are left as they were. /dev/null is refused too, its mode
/// left alone (a chmod of it broke every other user's writes to it).
#[test]
fn a_planted_link_or_a_device_is_never_written_through() {
    if in_vm("a_planted_link_or_a_device_is_never_written_through") {
        return;
    }
    require_root!();
    use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
    let dir = TempDir::new("sticky");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let root_file = dir.join("root-file");
    std::fs::write(&root_file, b"root's").unwrap();
    std::fs::set_permissions(&root_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.join("t.htr");
    symlink(&root_file, &link).unwrap();
    lchown(&link, Some(65534), Some(65534)).unwrap();
    let null_mode = mode(std::path::Path::new("/dev/null"));
    let server = Server::ours("recv");
    let pid = server.pid().to_string();
    for (path, what) in [
        (&link, "a symbolic link"),
        (&std::path::PathBuf::from("/dev/null"), "a character device"),
    ] {
        for flag in ["-w", "--output-file"] {
            for force in [&[][..], &["--force"][..]] {
                let out = Command::new(TRACER)
                    .args(["--pid", &pid, flag])
                    .arg(path)
                    .args(force)
                    .output()
                    .expect("run");
                assert_eq!(out.status.code(), Some(1), "{flag} {force:?}");
                assert_eq!(
                    String::from_utf8_lossy(&out.stderr),
                    format!(
                        "http-trace: error: {} is {what}, not a regular file: give the name of a \
                         new file (or of one to replace, with --force, or of a FIFO)\n",
                        path.display()
                    ),
                    "{flag} {force:?}"
                );
            }
        }
    }
    assert_eq!(std::fs::read(&root_file).unwrap(), b"root's");
    assert_eq!(mode(&root_file), 0o644);
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(meta.uid(), 65534);
    assert_eq!(mode(std::path::Path::new("/dev/null")), null_mode);
}

/// Raw bytes never go to a terminal: -w - and -o pcapng with stdout on one (a pseudo-terminal
/// that script(1) gives the tracer) are refused in one line.
#[test]
fn raw_outputs_to_a_terminal_are_refused() {
    if in_vm("raw_outputs_to_a_terminal_are_refused") {
        return;
    }
    require_root!();
    let server = Server::ours("recv");
    for (args, said) in [
        (
            "-w -",
            "-w - writes the recording (binary; secrets in clear with --show-secrets): send stdout to a file or a pipe",
        ),
        (
            "-o pcapng",
            "-o pcapng is binary: give --output-file FILE, or send stdout to a file or a pipe",
        ),
    ] {
        let command = format!("{TRACER} --pid {} {args}", server.pid());
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .expect("run script");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{args}: {shown}");
        assert_eq!(shown.trim_end(), format!("http-trace: error: {said}"), "{args}");
    }
}

/// A recording cut short (the recorder killed, a full disk) is read up to the cut, with a note;
/// a file that is not a recording is refused in one line.
#[test]
fn a_recording_cut_short_is_read_up_to_the_cut() {
    // How files are handled does not depend on the kernel: on the host only.
    if in_vm("a_recording_cut_short_is_read_up_to_the_cut") {
        return;
    }
    require_root!();
    let dir = TempDir::new("record");
    let file = dir.join("t.htr");
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &["-w", file.to_str().unwrap()]);
    assert_eq!(get(server.port, "/first"), 200);
    wait_for_bytes(&file, b"GET /first body=0");
    let first_part = std::fs::metadata(&file).unwrap().len();
    assert_eq!(get(server.port, "/second"), 200);
    let out = tracer.stop();
    assert!(out.status.success());
    let whole = std::fs::read(&file).unwrap();
    // Cut inside the second exchange's events, as a killed recorder leaves it.
    let cut = dir.join("cut.htr");
    std::fs::write(&cut, &whole[..first_part as usize + 10]).unwrap();
    let (json, stderr, ok) = replay(&cut, &["-o", "json"]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("(the recording was stopped while writing): read up to there"),
        "{stderr}"
    );
    let json = String::from_utf8_lossy(&json);
    assert!(
        json.lines()
            .next()
            .unwrap()
            .contains(r#""target":"/first""#),
        "{json}"
    );
    std::fs::write(&cut, b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let (_, stderr, ok) = replay(&cut, &[]);
    assert!(!ok);
    assert!(
        stderr.ends_with(": not an http-trace capture file\n"),
        "{stderr}"
    );
}

/// A full disk ends the recording with a clear error; what was written before reads back.
#[test]
fn a_full_disk_ends_the_recording_clearly() {
    // How files are handled does not depend on the kernel: on the host only.
    if in_vm("a_full_disk_ends_the_recording_clearly") {
        return;
    }
    require_root!();
    let dir = TempDir::new("tmpfs");
    let mount = dir.join("small");
    std::fs::create_dir(&mount).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&mount)
        .status()
        .expect("mount");
    assert!(ok.success(), "mount a small tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let file = mount.join("t.htr");
    let server = Server::ours("recv");
    let tracer = Tracer::start(&[server.pid()], &["-w", file.to_str().unwrap()]);
    // 100 KB bodies, each copied up to --capture-bytes: the 512 KB disk fills within a few.
    for _ in 0..40 {
        if has_exited(tracer.pid()) {
            break;
        }
        let before = std::fs::metadata(&file).map_or(0, |m| m.len());
        let mut c = Client::connect(server.port);
        let mut req =
            format!("POST /fill HTTP/1.1\r\nContent-Length: {LARGE_BODY}\r\n\r\n").into_bytes();
        req.resize(req.len() + LARGE_BODY, b'x');
        c.send(&[&req]);
        assert_eq!(c.responses(1), [200]);
        // Its events written (the file grew) or the writing failed (the tracer ends).
        wait_until(
            "the recording to grow or end",
            Duration::from_secs(30),
            || has_exited(tracer.pid()) || std::fs::metadata(&file).map_or(0, |m| m.len()) > before,
        );
    }
    let out = tracer.wait();
    assert_eq!(out.status.code(), Some(1), "{:#?}", out.stderr);
    let last = out.stderr.last().unwrap();
    assert_eq!(
        last,
        &format!(
            "http-trace: error: writing {}: No space left on device (os error 28); it holds \
             what was written before, which -r reads",
            file.display()
        )
    );
    let (json, stderr, ok) = replay(&file, &["-o", "json"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("note:"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&json).contains(r#""target":"/fill""#),
        "{stderr}"
    );
}

/// Every stop path leaves a whole recording (its last record written) and a whole document:
/// the traced process exiting, --count, --duration; the replay says what the live run said.
#[test]
fn every_stop_path_leaves_a_whole_recording_and_document() {
    // How files are handled does not depend on the kernel: on the host only.
    if in_vm("every_stop_path_leaves_a_whole_recording_and_document") {
        return;
    }
    require_root!();
    let dir = TempDir::new("record");
    // The traced process exits.
    let file = dir.join("exit.htr");
    let mut server = Server::ours("recv");
    let tracer = Tracer::start(
        &[server.pid()],
        &["-w", file.to_str().unwrap(), "--output", "json"],
    );
    assert_eq!(get(server.port, "/bye"), 200);
    server.end();
    let out = tracer.wait();
    assert!(out.status.success());
    let (json, stderr, ok) = replay(&file, &["-o", "json"]);
    assert!(ok, "{stderr}");
    assert_eq!(String::from_utf8_lossy(&json).lines().count(), 1);
    assert!(!stderr.contains("note:"), "{stderr}");
    assert!(
        stderr.contains("\nhttp-trace: every traced process has exited\n"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().last(), Some(out.summary()));
    assert!(
        out.summary().ends_with(", 1 process exited"),
        "{}",
        out.summary()
    );

    // --count, with a HAR document printed live: closed, whole JSON.
    let file = dir.join("count.htr");
    let server = Server::ours("recv");
    let tracer = Tracer::start(
        &[server.pid()],
        &[
            "-w",
            file.to_str().unwrap(),
            "--output",
            "har",
            "--count",
            "2",
        ],
    );
    for i in 0..3 {
        assert_eq!(get(server.port, &format!("/n{i}")), 200);
    }
    let out = tracer.wait();
    assert!(out.status.success());
    let har: Value = serde_json::from_str(&out.stdout.join("\n")).expect("a whole HAR document");
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[1]["request"]["url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some("n1")
    );
    let (_, stderr, ok) = replay(&file, &[]);
    assert!(ok && !stderr.contains("note:"), "{stderr}");

    // --duration.
    let file = dir.join("duration.htr");
    let tracer = Tracer::start(
        &[server.pid()],
        &["-w", file.to_str().unwrap(), "--duration", "1"],
    );
    let out = tracer.wait();
    assert!(out.status.success());
    let (_, stderr, ok) = replay(&file, &[]);
    assert!(ok && !stderr.contains("note:"), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("http-trace: 0 exchanges captured, 0 events lost")
    );
}
