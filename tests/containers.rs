//! Root integration tests with real containers: Debian's docker.io, a daemon of the test's own
//! (private paths, no bridge, no iptables), an image imported from a tarball holding
//! busybox-static. Traffic stays on the loopback inside the container's own network namespace
//! and on the daemon's Unix socket. Host only: the VM guests skip them.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const DOCKERD: &str = "/usr/sbin/dockerd";
/// Debian's client, which speaks the daemon's API version (a newer one elsewhere in PATH would
/// only negotiate down).
const DOCKER: &str = "/usr/bin/docker";

/// One daemon at a time: two would share containerd's fixed paths under /run.
static ONE_DAEMON: Mutex<()> = Mutex::new(());

/// A private docker daemon, removed with everything it made when dropped.
struct Dockerd {
    // Declared first: killed (its process group) before the directory goes.
    group: Group,
    dir: TempDir,
    containers: Vec<String>,
    /// Directories of the host the daemon makes if missing, and leaves behind.
    made: Vec<PathBuf>,
}

impl Dockerd {
    fn start() -> Dockerd {
        assert!(
            Path::new(DOCKERD).exists(),
            "{DOCKERD} is missing: scripts/setup.sh installs docker.io"
        );
        let made: Vec<PathBuf> = [
            "/run/docker/plugins",
            "/run/docker",
            "/run/containerd/s",
            "/run/containerd",
        ]
        .iter()
        .map(PathBuf::from)
        .chain(cgroup_dirs())
        .filter(|p| !p.exists())
        .collect();
        let dir = TempDir::new("dockerd");
        // dockerd 20.10 writes its key to /etc/docker unless told otherwise.
        std::fs::write(
            dir.join("daemon.json"),
            format!(
                "{{\"deprecated-key-path\": \"{}\"}}\n",
                dir.join("key.json").display()
            ),
        )
        .expect("write daemon.json");
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("sock").display()))
            .args(["--bridge", "none", "--iptables=false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let group = Group::spawn("dockerd", &mut cmd);
        let daemon = Dockerd {
            group,
            dir,
            containers: Vec::new(),
            made,
        };
        wait_until("dockerd to answer", Duration::from_secs(60), || {
            daemon.try_docker(&["version"]).is_some()
        });
        daemon
    }

    fn pid(&self) -> u32 {
        self.group.pid()
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// `docker ARGS`'s output, or None when it failed.
    fn try_docker(&self, args: &[&str]) -> Option<String> {
        let out = run("docker", &mut self.command(args), Duration::from_secs(60));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn docker(&self, args: &[&str]) -> String {
        self.try_docker(args)
            .unwrap_or_else(|| panic!("docker {args:?} failed"))
    }

    /// An image holding busybox (static) and /www/index.html.
    fn import_busybox(&self, name: &str) {
        let rootfs = self.dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir rootfs/bin");
        std::fs::create_dir_all(rootfs.join("www")).expect("mkdir rootfs/www");
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("copy /bin/busybox (busybox-static)");
        // Started as /bin/httpd, busybox's httpd has the command name httpd.
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin/httpd"));
        // The example server, with the shared libraries it needs (ldd's list) at their paths.
        let server = example_bin("http_server");
        std::fs::copy(&server, rootfs.join("bin/http_server")).expect("copy the example server");
        let ldd = Command::new("ldd").arg(&server).output().expect("run ldd");
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            let to = rootfs.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().expect("a library's directory"))
                .expect("mkdir for a library");
            std::fs::copy(lib, &to).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
        }
        std::fs::write(rootfs.join("www/index.html"), "hello from a container\n")
            .expect("write index.html");
        let mut import = Command::new("sh");
        import.arg("-c").arg(format!(
            "tar -C '{}' -c . | {DOCKER} import - {name}",
            rootfs.display()
        ));
        import.env("DOCKER_HOST", format!("unix://{}", self.socket().display()));
        let out = run("docker import", &mut import, Duration::from_secs(60));
        assert!(out.status.success(), "docker import: {out:?}");
    }

    /// `docker run -d` with no network but the container's own loopback; its id.
    fn run_detached(&mut self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--network", "none"];
        all.extend_from_slice(args);
        let id = self.docker(&all);
        self.containers.push(id.clone());
        id
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.containers) {
            let _ = self.try_docker(&["rm", "-f", &id]);
        }
        // SAFETY: kill has no memory-safety preconditions; the pid is our child, not reaped.
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !has_exited(self.pid()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.group.end();
        // What the daemon mounted under its directory (itself, overlays, netns), innermost first.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let prefix = self.dir.path().to_string_lossy().into_owned();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        // Listed children first.
        for dir in &self.made {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Each test's start: root, on the host (a VM guest says it skips), one daemon at a time.
fn docker_test(test: &str) -> Option<(std::sync::MutexGuard<'static, ()>, Dockerd)> {
    require_root!(None);
    if in_vm(test) {
        return None;
    }
    let one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    Some((one, Dockerd::start()))
}

/// The docker cgroup of each cgroup v1 controller, or of the v2 hierarchy.
fn cgroup_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("docker"))
        .collect();
    dirs.push(PathBuf::from("/sys/fs/cgroup/docker"));
    dirs
}

/// busybox httpd in a real container (no network but its own loopback), traced from the host
/// by the PID the host sees; the clients run inside with `docker exec`. Each connection is
/// served by a child that moves the socket to fds 0 and 1, and sends the file with sendfile:
/// every exchange is captured once, paired, with the body's true size.
#[test]
fn busybox_httpd_in_a_container() {
    let Some((_one, mut daemon)) = docker_test("busybox_httpd_in_a_container") else {
        return;
    };
    daemon.import_busybox("local/http-trace-busybox:1");
    let id = daemon.run_detached(&[
        "local/http-trace-busybox:1",
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "127.0.0.1:8080",
        "-h",
        "/www",
    ]);
    let pid: u32 = daemon
        .docker(&["inspect", "-f", "{{.State.Pid}}", &id])
        .parse()
        .expect("the container's host PID");
    wait_until(
        "httpd to listen in the container",
        Duration::from_secs(30),
        || listens(pid, 8080),
    );
    let dir = TempDir::new("container-recording");
    let recording = dir.join("c.htr");
    let tracer = Tracer::start(&[pid], &["-w", recording.to_str().unwrap(), "-o", "json"]);
    for i in 0..3 {
        let url = format!("http://127.0.0.1:8080/index.html?{i}");
        let body = daemon.docker(&["exec", &id, "/bin/busybox", "wget", "-q", "-O", "-", &url]);
        assert_eq!(body, "hello from a container");
    }
    wait_until("httpd's children to exit", Duration::from_secs(10), || {
        children_of(pid).into_iter().all(has_exited)
    });
    let out = tracer.stop();
    let mut ex = out.exchanges();
    ex.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    let want: Vec<_> = (0..3)
        .map(|i| t("GET", &format!("/index.html?{i}"), 200))
        .collect();
    assert_eq!(triples(&ex), want, "stderr: {:#?}", out.stderr);
    for e in &ex {
        assert_ne!(e["pid"], pid, "served by a child: {e}");
        // Each child is in the container: its id, and its PID there (httpd is 1 there; each
        // connection's child, forked after the exec'd clients, comes later).
        assert_eq!(e["container_id"], json!(id), "{e}");
        let ns_pid = e["ns_pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("no ns_pid: {e}"));
        assert!(
            (2..1000).contains(&ns_pid) && e["pid"] != json!(ns_pid),
            "{e}"
        );
        assert_eq!(
            (&e["role"], &e["fd"], &e["response_pid"], &e["response_fd"]),
            (&json!("server"), &json!(0), &e["pid"], &json!(1)),
            "{e}"
        );
        assert_eq!(e["local"], "127.0.0.1:8080", "{e}");
        // The body goes out with sendfile: its size is known, its bytes are not copied.
        assert_eq!(
            (&e["response_body_bytes"], &e["response_complete"]),
            (&json!(23), &json!(true)),
            "{e}"
        );
    }
    assert_eq!(
        out.summary(),
        "http-trace: 3 exchanges captured, 0 events lost, 3 child processes followed, \
         3 processes exited"
    );
    // The recording keeps them: its text replay shows COMM[PID/NS_PID SHORT_ID].
    let replay = Command::new(TRACER)
        .arg("-r")
        .arg(&recording)
        .output()
        .expect("run http-trace -r");
    let text = String::from_utf8_lossy(&replay.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, e) in lines.iter().zip(&ex) {
        let comm = e["comm"].as_str().unwrap_or("?");
        let who = format!("{comm}[{}/{} {}] server ", e["pid"], e["ns_pid"], &id[..12]);
        assert!(line.contains(&who), "{who:?} in {line}");
    }
}

/// The Docker API: dockerd traced by its PID while `docker ps` runs twice. The client speaks
/// HTTP/1.1 over the daemon's Unix socket: `HEAD /_ping`, then `GET /v1.NN/containers/json`
/// on the same connection; `local` is the socket's path and `peer_pid` the client's PID.
#[test]
fn the_docker_api_traced_by_the_daemon_pid() {
    require_root!();
    if in_vm("the_docker_api_traced_by_the_daemon_pid") {
        return;
    }
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = Dockerd::start();
    // Its children (containerd) are left out: they speak gRPC, which is not HTTP/1.x.
    let tracer = Tracer::start(&[daemon.pid()], &["--no-children"]);
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut ps = daemon.command(&["ps"]);
        ps.stdout(Stdio::null());
        let mut client = Group::spawn("docker ps", &mut ps);
        let status = client.wait("docker ps", Duration::from_secs(60));
        assert!(status.success(), "docker ps: {status}");
        clients.push(client.pid());
    }
    let out = tracer.stop();
    let mut ex = out.exchanges();
    ex.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
    let got: Vec<(String, u64)> = ex
        .iter()
        .map(|e| {
            let target = e["target"].as_str().unwrap_or("?");
            // The API version in the path is the daemon's: /v1.41/containers/json.
            let target = match target.split_once("/containers/") {
                Some((version, rest)) if version.starts_with("/v1.") => {
                    format!("/vN/containers/{rest}")
                }
                _ => target.to_string(),
            };
            (
                format!("{} {target}", e["method"].as_str().unwrap_or("?")),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let one_ps = [
        ("HEAD /_ping".to_string(), 200),
        ("GET /vN/containers/json".to_string(), 200),
    ];
    assert_eq!(
        got,
        [one_ps.clone(), one_ps].concat(),
        "stderr: {:#?}",
        out.stderr
    );
    let socket = daemon.socket().to_string_lossy().into_owned();
    for (i, e) in ex.iter().enumerate() {
        assert_eq!(
            (
                &e["pid"],
                &e["role"],
                &e["local"],
                &e["peer"],
                &e["peer_pid"]
            ),
            (
                &json!(daemon.pid()),
                &json!("server"),
                &json!(socket),
                &Value::Null,
                &json!(clients[i / 2])
            ),
            "{e}"
        );
    }
    // No container runs: the list is empty.
    assert_eq!(ex[1]["response_body"], "[]\n", "{}", ex[1]);
    out.assert_summary(4);
}

/// The host PID of container `id`'s first process.
fn host_pid(daemon: &Dockerd, id: &str) -> u32 {
    daemon
        .docker(&["inspect", "-f", "{{.State.Pid}}", id])
        .parse()
        .expect("the container's host PID")
}

/// The image's httpd (command name httpd) on 127.0.0.1:8080 in a new container, with `docker
/// run` options `options`, listening: its id and host PID.
fn httpd_container(daemon: &mut Dockerd, options: &[&str]) -> (String, u32) {
    daemon.import_busybox("local/http-trace-busybox:1");
    let mut args = options.to_vec();
    args.extend([
        "local/http-trace-busybox:1",
        "/bin/httpd",
        "-f",
        "-p",
        "127.0.0.1:8080",
        "-h",
        "/www",
    ]);
    let id = daemon.run_detached(&args);
    let pid = host_pid(daemon, &id);
    wait_until("httpd to listen", Duration::from_secs(30), || {
        listens(pid, 8080)
    });
    (id, pid)
}

/// `busybox wget` run in the container with docker exec: the body.
fn wget(daemon: &Dockerd, id: &str, url: &str) -> String {
    daemon.docker(&["exec", id, "/bin/busybox", "wget", "-q", "-O", "-", url])
}

/// --container NAME: every process of a running container, and those started in it later with
/// docker exec, which are not children of any traced process: a second httpd started after
/// tracing began, and each wget client. Every exchange carries the container's id and the PID
/// there. Then the refusals of a container that is not running and of a name nobody knows.
#[test]
fn a_container_is_traced_with_the_processes_started_in_it() {
    let Some((_one, mut daemon)) =
        docker_test("a_container_is_traced_with_the_processes_started_in_it")
    else {
        return;
    };
    let name = format!("ht-web-{}", std::process::id());
    let (id, pid) = httpd_container(&mut daemon, &["--name", &name]);
    let docker_host = format!("unix://{}", daemon.socket().display());
    let env = [("DOCKER_HOST", docker_host.as_str())];
    let tracer = Tracer::start_env(&[], &["--container", &name], &env);
    let banner = tracer.banner.last().unwrap().clone();
    assert!(
        banner.starts_with(&format!("http-trace: tracing pid {pid} with "))
            && banner.contains(&format!(
                "; watching container {} (1 process, and those started in it)",
                &id[..12]
            )),
        "{banner}"
    );
    assert_eq!(
        wget(&daemon, &id, "http://127.0.0.1:8080/index.html?a"),
        "hello from a container"
    );
    start_second_httpd(&daemon, &id, pid);
    assert_eq!(
        wget(&daemon, &id, "http://127.0.0.1:8081/index.html?b"),
        "hello from a container"
    );
    let out = tracer.stop();
    check_container_exchanges(&out, &id);
    refusals_of_other_names(&env);
}

/// A second httpd in the container, on port 8081, started with docker exec: it is no child of
/// any traced process.
fn start_second_httpd(daemon: &Dockerd, id: &str, pid: u32) {
    daemon.docker(&[
        "exec",
        "-d",
        id,
        "/bin/httpd",
        "-f",
        "-p",
        "127.0.0.1:8081",
        "-h",
        "/www",
    ]);
    // Its process is not known here: anything listening in the container's namespace.
    wait_until(
        "the second httpd to listen",
        Duration::from_secs(30),
        || {
            let p = procfs::process::Process::new(pid as i32).expect("the first httpd");
            p.tcp()
                .unwrap_or_default()
                .iter()
                .any(|s| s.state == procfs::net::TcpState::Listen && s.local_address.port() == 8081)
        },
    );
}

/// Both servers' exchanges and both clients', each with the container's id and PID there.
fn check_container_exchanges(out: &TraceOutput, id: &str) {
    let ex = by_time(out.exchanges());
    let of = |role: &str| -> Vec<(String, String)> {
        ex.iter()
            .filter(|e| e["role"] == role)
            .map(|e| {
                (
                    e["local"].as_str().unwrap_or("?").to_string(),
                    e["target"].as_str().unwrap_or("?").to_string(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        of("server"),
        [
            pair("127.0.0.1:8080", "/index.html?a"),
            pair("127.0.0.1:8081", "/index.html?b")
        ],
        "{:#?}",
        out.stderr
    );
    // The clients, started with docker exec, are in the container too.
    let clients: Vec<String> = of("client").into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        clients,
        ["/index.html?a", "/index.html?b"],
        "{:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(e["container_id"], json!(id), "{e}");
        assert!(e["ns_pid"].as_u64().is_some_and(|p| p > 1), "{e}");
        assert_eq!(e["status"], 200, "{e}");
    }
    // The two clients and the second httpd; the first httpd's children are its children.
    assert!(
        out.summary()
            .contains(", 3 processes started later followed, "),
        "{}",
        out.summary()
    );
}

/// Not running, or not a container at all: one line each, exit status 1.
fn refusals_of_other_names(env: &[(&str, &str)]) {
    for (arg, said) in [
        (
            "0123456789ab",
            "http-trace: error: no running container has the id 0123456789ab".to_string(),
        ),
        (
            "no-such-container",
            "http-trace: error: --container no-such-container: not a container id (12 hex \
             digits or more, as docker ps shows) nor a name that docker, podman or crictl \
             resolves (docker does not know it, no podman, no crictl)"
                .to_string(),
        ),
    ] {
        let (status, _, stderr) = run_tracer(&["--container", arg], env);
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.trim(), said);
    }
}

/// --name across a container's restart: `docker restart` starts httpd again as a new process
/// (a child of nothing traced), found as it starts; the exchanges after the restart are
/// captured with the container's id.
#[test]
fn a_restarted_container_is_followed_by_name() {
    let Some((_one, mut daemon)) = docker_test("a_restarted_container_is_followed_by_name") else {
        return;
    };
    let (id, first) = httpd_container(&mut daemon, &[]);
    let tracer = Tracer::start(&[], &["--name", "httpd"]);
    assert_eq!(
        wget(&daemon, &id, "http://127.0.0.1:8080/index.html?before"),
        "hello from a container"
    );
    daemon.docker(&["restart", "-t", "1", &id]);
    let second = host_pid(&daemon, &id);
    assert_ne!(first, second);
    wait_until("httpd to listen again", Duration::from_secs(30), || {
        listens(second, 8080)
    });
    assert_eq!(
        wget(&daemon, &id, "http://127.0.0.1:8080/index.html?after"),
        "hello from a container"
    );
    wait_until("httpd's children to exit", Duration::from_secs(10), || {
        children_of(second).into_iter().all(has_exited)
    });
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    assert_eq!(
        triples(&ex),
        [
            t("GET", "/index.html?before", 200),
            t("GET", "/index.html?after", 200)
        ],
        "{:#?}",
        out.stderr
    );
    for e in &ex {
        assert_eq!(e["container_id"], json!(id), "{e}");
    }
    assert!(
        out.summary()
            .contains(", 1 process started later followed, "),
        "{}",
        out.summary()
    );
}

/// --container across each way a container starts again: `docker restart`, `docker stop` then
/// `start`, and a crash (its httpd killed from the host) that the restart policy answers. Each
/// start makes the container a new cgroup, which BPF reports as it is made: its httpd is
/// traced from its exec, and the request after each start is captured on both sides, with the
/// container's id. The summary counts the three restarts.
#[test]
fn a_restarted_container_is_followed_by_its_id() {
    let Some((_one, mut daemon)) = docker_test("a_restarted_container_is_followed_by_its_id")
    else {
        return;
    };
    let (id, mut pid) = httpd_container(&mut daemon, &["--restart", "always"]);
    let tracer = Tracer::start(&[], &["--container", &id[..12]]);
    let mut targets = Vec::new();
    for (i, how) in ["first", "restart", "stop-start", "crash"]
        .into_iter()
        .enumerate()
    {
        match how {
            "restart" => {
                daemon.docker(&["restart", "-t", "1", &id]);
            }
            "stop-start" => {
                daemon.docker(&["stop", "-t", "1", &id]);
                daemon.docker(&["start", &id]);
            }
            "crash" => {
                // SAFETY: kill has no memory-safety preconditions; the pid is the container's.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                wait_until(
                    "the restart policy to start it again",
                    Duration::from_secs(30),
                    || {
                        daemon
                            .try_docker(&["inspect", "-f", "{{.State.Pid}}", &id])
                            .and_then(|p| p.parse::<u32>().ok())
                            .is_some_and(|p| p != 0 && p != pid)
                    },
                );
            }
            _ => {}
        }
        if i > 0 {
            let again = host_pid(&daemon, &id);
            assert_ne!(again, pid, "{how}: the same process");
            pid = again;
            wait_until("httpd to listen again", Duration::from_secs(30), || {
                listens(pid, 8080)
            });
        }
        let target = format!("/index.html?{how}");
        assert_eq!(
            wget(&daemon, &id, &format!("http://127.0.0.1:8080{target}")),
            "hello from a container"
        );
        targets.push(target);
    }
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    for role in ["server", "client"] {
        let seen: Vec<&str> = ex
            .iter()
            .filter(|e| e["role"] == role)
            .map(|e| e["target"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(seen, targets, "{role}: {:#?}", out.stderr);
    }
    for e in &ex {
        assert_eq!(
            (&e["container_id"], &e["status"]),
            (&json!(id), &json!(200)),
            "{e}"
        );
    }
    assert!(
        out.summary().contains(", 3 container restarts followed, "),
        "{}",
        out.summary()
    );
}

/// A connection open before tracing starts, in a container's own network namespace: found there
/// at start (the host's tables do not have it), with the addresses the container sees, and its
/// next exchange captured with the container's id.
#[test]
fn a_connection_open_in_a_container_before_tracing() {
    let Some((_one, mut daemon)) = docker_test("a_connection_open_in_a_container_before_tracing")
    else {
        return;
    };
    let (id, pid) = httpd_container(&mut daemon, &[]);
    // nc in the container connects; httpd forks a child that waits for the request.
    let mut nc = daemon
        .command(&["exec", "-i", &id, "/bin/busybox", "nc", "127.0.0.1", "8080"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker exec nc");
    wait_until(
        "httpd's child for the connection",
        Duration::from_secs(30),
        || !children_of(pid).is_empty(),
    );
    let tracer = Tracer::start(&[pid], &[]);
    assert!(
        tracer
            .banner
            .last()
            .unwrap()
            .contains("; 1 connection already open, followed from their next message"),
        "{:?}",
        tracer.banner
    );
    let mut stdin = nc.stdin.take().expect("nc's stdin");
    stdin
        .write_all(b"GET /index.html?open HTTP/1.0\r\n\r\n")
        .expect("write the request");
    let mut response = String::new();
    nc.stdout
        .take()
        .expect("nc's stdout")
        .read_to_string(&mut response)
        .expect("read the response");
    drop(stdin);
    let _ = nc.wait();
    assert!(response.ends_with("hello from a container\n"), "{response}");
    let out = tracer.stop();
    let ex = out.exchanges();
    assert_eq!(
        triples(&ex),
        [t("GET", "/index.html?open", 200)],
        "{:#?}",
        out.stderr
    );
    let e = &ex[0];
    assert_eq!(
        (&e["role"], &e["local"], &e["container_id"]),
        (&json!("server"), &json!("127.0.0.1:8080"), &json!(id)),
        "{e}"
    );
    assert!(
        e["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{e}"
    );
}

/// The example server (a thread per connection) as a container's only process, PID 1 there,
/// traced by `--container ID`: every exchange has the host PID, 1 as the PID in the container,
/// and the container's id; the clients (wget, exec'd) too.
#[test]
fn our_server_in_a_container_is_pid_1_there() {
    let Some((_one, mut daemon)) = docker_test("our_server_in_a_container_is_pid_1_there") else {
        return;
    };
    daemon.import_busybox("local/http-trace-busybox:1");
    let id = daemon.run_detached(&[
        "local/http-trace-busybox:1",
        "/bin/http_server",
        "--port",
        "8080",
    ]);
    let pid = host_pid(&daemon, &id);
    wait_until("the server to listen", Duration::from_secs(30), || {
        listens(pid, 8080)
    });
    let tracer = Tracer::start(&[], &["--container", &id[..12]]);
    for i in 0..3 {
        let body = wget(&daemon, &id, &format!("http://127.0.0.1:8080/c/{i}"));
        assert_eq!(body, format!("GET /c/{i} body=0"));
    }
    let out = tracer.stop();
    let ex = by_time(out.exchanges());
    let servers: Vec<&Value> = ex.iter().filter(|e| e["role"] == "server").collect();
    assert_eq!(servers.len(), 3, "{:#?}", out.stderr);
    for (i, e) in servers.iter().enumerate() {
        assert_eq!(
            (
                &e["target"],
                &e["pid"],
                &e["ns_pid"],
                &e["container_id"],
                &e["comm"]
            ),
            (
                &json!(format!("/c/{i}")),
                &json!(pid),
                &json!(1),
                &json!(id),
                &json!("http_server")
            ),
            "{e}"
        );
    }
    assert_eq!(ex.len(), 6, "the three wget clients too: {ex:#?}");
    out.assert_summary_with(
        6,
        ", 3 processes started later followed, 3 processes exited",
    );
}
