//! The servers the tests trace: ours (examples/), nginx, node, Python and others.

use super::*;

pub struct Server {
    // Declared before `dir`: the group is killed before its files are removed.
    group: Group,
    pub port: u16,
    pub name: String,
    dir: Option<TempDir>,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// Kill the server (its whole group) and reap it.
    pub fn end(&mut self) {
        self.group.end();
    }

    /// Start `cmd` and wait until its output names the port it listens on (or, when `port` is
    /// given, until it listens there).
    pub fn start(name: &str, mut cmd: Command, port: Option<u16>) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = Group::spawn(name, &mut cmd);
        let out = group.stdout_lines();
        let _err = group.stderr_lines();
        let port = match port {
            Some(p) => {
                let pid = group.pid();
                wait_until(
                    &format!("{name} to listen on {p}"),
                    Duration::from_secs(30),
                    || listens(pid, p),
                );
                p
            }
            None => {
                let lines = wait_for_line(&out, "listening", |l| {
                    l.contains("listening on") || l.contains("Serving HTTP")
                });
                let line = lines.last().expect("a matching line");
                parse_port(line).unwrap_or_else(|| panic!("no port in {line:?}"))
            }
        };
        Server {
            group,
            port,
            name: name.to_string(),
            dir: None,
        }
    }

    pub fn ours(recv: &str) -> Server {
        Server::ours_with(recv, "send")
    }

    /// nginx answering "ok" to everything: one process (`workers` 0), or a master that forks
    /// `workers` worker processes.
    pub fn nginx(workers: u32) -> Server {
        Server::nginx_with(workers, "return 200 \"ok\\n\";")
    }

    /// nginx answering everything with the JSON object `json` (no `'` in it), one process.
    pub fn nginx_answering_json(json: &str) -> Server {
        Server::nginx_with(
            0,
            &format!("default_type application/json; return 200 '{json}';"),
        )
    }

    /// nginx as a reverse proxy to the HTTP server on the Unix socket `path`.
    pub fn nginx_proxy_to_unix(path: &Path) -> Server {
        Server::nginx_with(0, &format!("proxy_pass http://unix:{}:;", path.display()))
    }

    /// nginx with `location` as what its one location does.
    fn nginx_with(workers: u32, location: &str) -> Server {
        Server::nginx_serving(workers, location, false)
    }

    /// nginx answering everything with "ok\n" over HTTPS (a self-signed certificate made here
    /// for localhost), one process.
    pub fn nginx_tls() -> Server {
        Server::nginx_serving(0, "return 200 \"ok\\n\";", true)
    }

    /// nginx with `location` as what its one location does, over HTTPS when `tls`.
    fn nginx_serving(workers: u32, location: &str, tls: bool) -> Server {
        let dir = TempDir::new(&format!("nginx-{workers}"));
        let ssl = if tls {
            let (cert, key) = self_signed_cert(&dir);
            format!(
                " ssl; ssl_certificate {}; ssl_certificate_key {}",
                cert.display(),
                key.display()
            )
        } else {
            String::new()
        };
        let port = free_port();
        let shape = match workers {
            0 => "master_process off; worker_processes 1;".to_string(),
            n => format!("master_process on; worker_processes {n};"),
        };
        let conf = format!(
            "daemon off; {shape} pid {d}/nginx.pid; error_log {d}/error.log;\n\
             worker_rlimit_nofile 10000; events {{ worker_connections 4096; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               client_max_body_size 10m; keepalive_requests 100000;\n\
               server {{ listen 127.0.0.1:{port}{ssl}; location / {{ {location} }} }} }}\n",
            d = dir.path().display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let mut cmd = Command::new("nginx");
        cmd.args([
            "-c",
            &dir.join("nginx.conf").to_string_lossy(),
            "-e",
            &dir.join("error.log").to_string_lossy(),
        ]);
        let mut server = Server::start("nginx", cmd, Some(port));
        server.dir = Some(dir);
        server
    }

    /// Keep `dir` (the server's files) until the server is gone.
    pub fn keeping(mut self, dir: TempDir) -> Server {
        self.dir = Some(dir);
        self
    }

    /// A Python HTTP/1.1 server on the Unix socket `path` (in a temporary directory): it answers
    /// "unix TARGET\n" with a Content-Length, except for /close, which it answers HTTP/1.0 style
    /// with a body that ends when it closes the connection, and /mmsg/..., whose answer (status
    /// line and Content-Length, then the body: two messages) it sends with one sendmmsg(2).
    pub fn python_unix() -> (Server, PathBuf) {
        let dir = TempDir::new("unix");
        let path = dir.join("app.sock");
        let script = "import ctypes, http.server, socketserver, sys\n\
                      libc = ctypes.CDLL(None, use_errno=True)\n\
                      class Iovec(ctypes.Structure):\n\
                      \x20   _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n\
                      class Msghdr(ctypes.Structure):\n\
                      \x20   _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint),\n\
                      \x20       ('iov', ctypes.POINTER(Iovec)), ('iovlen', ctypes.c_size_t),\n\
                      \x20       ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t),\n\
                      \x20       ('flags', ctypes.c_int)]\n\
                      class Mmsghdr(ctypes.Structure):\n\
                      \x20   _fields_ = [('hdr', Msghdr), ('len', ctypes.c_uint)]\n\
                      def sendmmsg(fd, parts):\n\
                      \x20   bufs = [ctypes.create_string_buffer(p, len(p)) for p in parts]\n\
                      \x20   iovs = [Iovec(ctypes.cast(b, ctypes.c_void_p), len(p)) for b, p in zip(bufs, parts)]\n\
                      \x20   ms = (Mmsghdr * len(parts))()\n\
                      \x20   for m, v in zip(ms, iovs):\n\
                      \x20       m.hdr.iov = ctypes.pointer(v)\n\
                      \x20       m.hdr.iovlen = 1\n\
                      \x20   assert libc.sendmmsg(fd, ms, len(parts), 0) == len(parts)\n\
                      \x20   assert [m.len for m in ms] == [len(p) for p in parts]\n\
                      class H(http.server.BaseHTTPRequestHandler):\n\
                      \x20   protocol_version = 'HTTP/1.1'\n\
                      \x20   def address_string(self): return 'unix'\n\
                      \x20   def log_message(self, *a): pass\n\
                      \x20   def do_GET(self):\n\
                      \x20       if self.path == '/close':\n\
                      \x20           self.wfile.write(b'HTTP/1.0 200 OK\\r\\n\\r\\nclosing\\n')\n\
                      \x20           self.close_connection = True\n\
                      \x20           return\n\
                      \x20       body = b'unix ' + self.path.encode() + b'\\n'\n\
                      \x20       if self.path.startswith('/mmsg/'):\n\
                      \x20           head = b'HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body)\n\
                      \x20           sendmmsg(self.connection.fileno(), [head, body])\n\
                      \x20           return\n\
                      \x20       self.send_response(200)\n\
                      \x20       self.send_header('Content-Length', str(len(body)))\n\
                      \x20       self.end_headers()\n\
                      \x20       self.wfile.write(body)\n\
                      s = socketserver.UnixStreamServer(sys.argv[1], H)\n\
                      print('listening on ' + sys.argv[1], flush=True)\n\
                      s.serve_forever()\n";
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", script]).arg(&path);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut group = Group::spawn("python unix server", &mut cmd);
        let out = group.stdout_lines();
        let _err = group.stderr_lines();
        wait_for_line(&out, "listening", |l| l.contains("listening on"));
        let server = Server {
            group,
            port: 0,
            name: "python unix server".to_string(),
            dir: Some(dir),
        };
        (server, path)
    }

    /// busybox httpd serving `index.html` ("hello\n"): it forks a child per connection, which
    /// moves the socket to fds 0 and 1 (dup2) and serves the request there.
    pub fn busybox_httpd() -> Server {
        let dir = TempDir::new("busybox-httpd");
        std::fs::write(dir.join("index.html"), "hello\n").expect("write index.html");
        let port = free_port();
        let mut cmd = Command::new("busybox");
        cmd.args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(dir.path());
        let mut server = Server::start("busybox httpd", cmd, Some(port));
        server.dir = Some(dir);
        server
    }

    /// Our example server on ::1.
    pub fn ours_ipv6() -> Server {
        let mut cmd = Command::new(example_bin("http_server"));
        cmd.args(["--port", "0", "--ipv6"]);
        Server::start("http_server --ipv6", cmd, None)
    }

    /// Our example server, receiving and sending with the syscalls named.
    pub fn ours_with(recv: &str, send: &str) -> Server {
        let mut cmd = Command::new(example_bin("http_server"));
        cmd.args(["--port", "0", "--recv", recv, "--send", send]);
        Server::start(
            &format!("http_server --recv {recv} --send {send}"),
            cmd,
            None,
        )
    }
}

impl Server {
    /// Our example server, its vectored calls over `iovecs` iovecs of mixed sizes.
    pub fn ours_iovecs(recv: &str, send: &str, iovecs: usize) -> Server {
        let mut cmd = Command::new(example_bin("http_server"));
        let k = iovecs.to_string();
        cmd.args([
            "--port", "0", "--recv", recv, "--send", send, "--iovecs", &k,
        ]);
        Server::start(
            &format!("http_server --recv {recv} --send {send} --iovecs {k}"),
            cmd,
            None,
        )
    }
}

pub fn parse_port(line: &str) -> Option<u16> {
    if let Some(rest) = line.split("port ").nth(1) {
        return rest.split_whitespace().next()?.parse().ok();
    }
    line.rsplit(':').next()?.trim().parse().ok()
}
