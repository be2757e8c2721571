//! What the HTTPS tests need: certificates made here, a private copy of the system's libssl
//! (whose probes nothing else shares), and TLS servers other than nginx.

use super::*;

/// A self-signed certificate for localhost and its key, made in `dir` by openssl req.
pub fn self_signed_cert(dir: &TempDir) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    ])
    .args(["-subj", "/CN=localhost", "-keyout"])
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    let st = run("openssl req", &mut cmd, Duration::from_secs(60)).status;
    assert!(st.success(), "openssl req: {st}");
    (cert, key)
}

/// The system's libssl.so.3.
const SYSTEM_LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

/// A copy of the system's libssl in `dir`/lib, for LD_LIBRARY_PATH: a test whose library
/// gets probed for every process that maps it must not make other tests' untraced processes
/// take its probes.
pub fn private_libssl(dir: &TempDir) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).expect("make the library directory");
    std::fs::copy(SYSTEM_LIBSSL, lib.join("libssl.so.3")).expect("copy libssl");
    lib
}

/// Whether process `pid` took a uprobe since it started: the kernel maps the "[uprobes]" page
/// (the return probes' trampoline) into a process at its first probe hit.
pub fn took_uprobes(pid: u32) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/maps: {e}"));
    maps.lines().any(|l| l.ends_with("[uprobes]"))
}

impl Server {
    /// A Python HTTPS server (http.server, its `ssl`) forking a child per connection: the
    /// handshake is made in the parent, the exchanges in the child. It answers "TARGET\n" with
    /// a Content-Length, keep-alive. Its libssl is a private copy.
    pub fn python_tls_forking() -> Server {
        let dir = TempDir::new("tls-forking");
        let (cert, key) = self_signed_cert(&dir);
        let lib = private_libssl(&dir);
        let script = "import http.server, socketserver, ssl, sys\n\
                      class H(http.server.BaseHTTPRequestHandler):\n\
                      \x20   protocol_version = 'HTTP/1.1'\n\
                      \x20   def log_message(self, *a): pass\n\
                      \x20   def do_GET(self):\n\
                      \x20       body = self.path.encode() + b'\\n'\n\
                      \x20       self.send_response(200)\n\
                      \x20       self.send_header('Content-Length', str(len(body)))\n\
                      \x20       self.end_headers()\n\
                      \x20       self.wfile.write(body)\n\
                      class S(socketserver.ForkingMixIn, http.server.HTTPServer): pass\n\
                      s = S(('127.0.0.1', 0), H)\n\
                      ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
                      ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n\
                      s.socket = ctx.wrap_socket(s.socket, server_side=True)\n\
                      print('listening on 127.0.0.1:%d' % s.server_address[1], flush=True)\n\
                      s.serve_forever()\n";
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", script])
            .arg(&cert)
            .arg(&key)
            .env("LD_LIBRARY_PATH", &lib);
        Server::start("python tls forking server", cmd, None).keeping(dir)
    }

    /// tests/data/tls_server.c, OpenSSL linked in from libssl.a and libcrypto.a: no libssl
    /// in its maps. It answers "TARGET\n" with a Content-Length, keep-alive, using SSL_read
    /// and SSL_write.
    pub fn c_tls_static() -> Server {
        let bin = c_program(
            "tls_server",
            &["-l:libssl.a", "-l:libcrypto.a", "-lpthread"],
        );
        let dir = TempDir::new("tls-static");
        let (cert, key) = self_signed_cert(&dir);
        let mut cmd = Command::new(bin);
        cmd.arg(&cert).arg(&key);
        Server::start("static tls server", cmd, None).keeping(dir)
    }

    /// tests/data/https_server.go: Go's own TLS, no OpenSSL. It answers "TARGET\n".
    pub fn go_https() -> Server {
        let bin = go_program("https_server");
        let dir = TempDir::new("go-https");
        let (cert, key) = self_signed_cert(&dir);
        let mut cmd = Command::new(bin);
        cmd.arg(&cert).arg(&key);
        Server::start("go https server", cmd, None).keeping(dir)
    }
}
