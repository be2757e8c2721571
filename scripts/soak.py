"""The soak and the hostile cases at full size (scripts/soak.sh runs this as root; minutes, not
part of the test command, whose tests/hostile.rs runs the short versions).

soak: nginx (one worker, access log on) answers 1,000,000 requests from ab over 1,000 keep-alive
connections while http-trace traces it to JSON. The exchanges captured must equal the access
log's count, or fall short by no more than the loss the summary reports; the tracer's RSS at the
end must be within 10% of its RSS after the first 100,000 requests (two ab runs: 100,000, then
900,000).

hostile: nginx with four workers (the open-file limit here is 20,000 a process) traced while
50,000 connections from 127.0.x.y send half a request and stay open, and a 1 MB head, a 100 KB
request line, 1 MB of random bytes, 10,000 pipelined requests and a chunked body that goes on for
10 s come in; 100 normal requests must all be captured. Prints the tracer's memory at each step.

All traffic stays on loopback; every load is bounded in count and time.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

NGINX_CONF = """daemon off; {shape} pid {d}/nginx.pid; error_log {d}/error.log;
worker_rlimit_nofile 19500;
events {{ worker_connections 19000; }}
http {{
  access_log {d}/access.log;
  keepalive_requests 1000000; keepalive_timeout 300s; client_header_timeout 300s;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 127.0.0.1:{port} backlog=4096 {reuseport}; location / {{ return 200 "ok\\n"; }} }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(workdir, workers):
    port = free_port()
    shape = ("master_process off; worker_processes 1;" if workers == 0
             else f"master_process on; worker_processes {workers};")
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=workdir, port=port, shape=shape,
                                  reuseport="reuseport" if workers else ""))
    proc = subprocess.Popen(["nginx", "-c", conf, "-e", os.path.join(workdir, "error.log")],
                            stdin=subprocess.DEVNULL)
    end = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > end:
                sys.exit("soak: nginx did not start")
            time.sleep(0.05)
    return proc, port


def kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory(pid):
    return f"RSS {kib(pid, 'VmRSS') / 1024:.1f} MiB (heap {kib(pid, 'RssAnon') / 1024:.1f}), " \
           f"peak {kib(pid, 'VmHWM') / 1024:.1f} MiB"


class Tracer:
    def __init__(self, tracer, pid, workdir, extra=()):
        self.err_path = os.path.join(workdir, "tracer.err")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen([tracer, "--pid", str(pid), "-o", "json", *extra],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, start_new_session=True)
        self.exchanges = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        end = time.time() + 60
        while ": tracing " not in self.stderr():
            if self.proc.poll() is not None or time.time() > end:
                sys.exit(f"soak: http-trace did not start:\n{self.stderr()}")
            time.sleep(0.05)

    def _read(self):
        """Count exchanges by target prefix (the first path segment) as they come."""
        for line in self.proc.stdout:
            v = json.loads(line)
            if v.get("kind") == "exchange":
                key = (v.get("target") or "-").split("/")[1] if v.get("target") else "-"
                self.exchanges[key] = self.exchanges.get(key, 0) + 1

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self):
        os.kill(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=120)
        self.reader.join(timeout=60)
        return [l for l in self.stderr().splitlines() if " captured, " in l][-1]


def ab(port, n, c):
    out = subprocess.run(["ab", "-q", "-k", "-n", str(n), "-c", str(c), "-s", "60",
                          f"http://127.0.0.1:{port}/soak"],
                         capture_output=True, text=True, timeout=3600).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    return failed, rate


def soak(args, workdir):
    nginx, port = start_nginx(workdir, 0)
    tracer = Tracer(args.tracer, nginx.pid, workdir)
    try:
        first = args.requests // 10
        failed1, rate1 = ab(port, first, args.connections)
        time.sleep(1)
        after_first = kib(tracer.proc.pid, "VmRSS")
        print(f"soak: {first} requests over {args.connections} connections "
              f"({rate1:.0f} req/s, {failed1} failed): tracer {memory(tracer.proc.pid)}")
        failed2, rate2 = ab(port, args.requests - first, args.connections)
        time.sleep(1)
        at_end = kib(tracer.proc.pid, "VmRSS")
        print(f"soak: {args.requests - first} more ({rate2:.0f} req/s, {failed2} failed): "
              f"tracer {memory(tracer.proc.pid)}")
        summary = tracer.stop()
    finally:
        if tracer.proc.poll() is None:
            tracer.proc.kill()
        nginx.terminate()
        nginx.wait()
    with open(os.path.join(workdir, "access.log"), "rb") as f:
        served = sum(1 for _ in f)
    captured = int(re.search(r"(\d+) exchanges? captured", summary).group(1))
    lost = int(re.search(r"(\d+) events? lost", summary).group(1))
    growth = (at_end - after_first) / after_first
    print(f"soak: nginx's access log: {served}; {summary}")
    print(f"soak: RSS after {first}: {after_first / 1024:.1f} MiB, at the end "
          f"{at_end / 1024:.1f} MiB ({growth:+.1%})")
    ok = True
    if captured != served and not (captured < served and lost > 0):
        print(f"soak: FAILED: {captured} captured, {served} served, {lost} events lost")
        ok = False
    if growth > 0.10:
        print("soak: FAILED: the tracer's RSS grew more than 10% after the first tenth")
        ok = False
    return ok


def connect_from(host, port):
    s = socket.socket()
    s.bind((host, 0))
    s.connect(("127.0.0.1", port))
    return s


def hold_half_open(port, first, n, seconds, ready):
    """A process of its own (the open-file limit is per process): n connections from 127.0.x.y
    with half a request each, held for `seconds`."""
    pid = os.fork()
    if pid:
        return pid
    try:
        socks = []
        for i in range(n):
            k = first + i
            s = connect_from(f"127.0.{10 + k // 60000}.{1 + (k // 250) % 250}", port)
            s.send(b"GET /half HTTP/1.1\r\nHost: h\r\n")
            socks.append(s)
        os.write(ready, b"x")
        time.sleep(seconds)
    finally:
        os._exit(0)


def read_all(s, want=1, timeout=30):
    s.settimeout(timeout)
    data = b""
    try:
        while data.count(b"HTTP/1.1 ") < want:
            d = s.recv(1 << 16)
            if not d:
                break
            data += d
    except OSError:
        pass
    return data


def hostile(args, workdir):
    nginx, port = start_nginx(workdir, 4)
    time.sleep(0.5)
    tracer = Tracer(args.tracer, nginx.pid, workdir, ["--buffer-pages", "4096"])
    ok = True
    try:
        print(f"hostile: tracer at start: {memory(tracer.proc.pid)}")
        per = 16_700
        r, w = os.pipe()
        holders = []
        for first in range(0, args.half_open, per):
            holders.append(hold_half_open(port, first, min(per, args.half_open - first), 120, w))
        for _ in holders:
            os.read(r, 1)
        print(f"hostile: {args.half_open} half-open connections: tracer {memory(tracer.proc.pid)}")

        s = connect_from("127.0.0.1", port)
        big = b"GET /big HTTP/1.1\r\nHost: h\r\n" + b"".join(
            b"X-F-%d: %s\r\n" % (i, b"a" * 1000) for i in range(1000)) + b"\r\n"
        try:
            s.sendall(big)
        except OSError:
            pass
        print(f"hostile: 1 MB head: {read_all(s)[:12]!r}")
        s.close()
        s = connect_from("127.0.0.1", port)
        s.sendall(b"GET /" + b"l" * 100_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        print(f"hostile: 100 KB request line: {read_all(s)[:12]!r}")
        s.close()
        s = connect_from("127.0.0.1", port)
        try:
            s.sendall(b"\x16" + os.urandom((1 << 20) - 1))
        except OSError:
            pass
        print(f"hostile: 1 MB random: {read_all(s)[:12]!r}")
        s.close()
        s = connect_from("127.0.0.1", port)
        reqs = b"".join(b"GET /p/%d HTTP/1.1\r\nHost: h\r\n\r\n" % i for i in range(10_000))
        threading.Thread(target=s.sendall, args=(reqs,), daemon=True).start()
        print(f"hostile: 10,000 pipelined: {read_all(s, 10_000).count(b'HTTP/1.1 200')} answered")
        s.close()
        s = connect_from("127.0.0.1", port)
        s.sendall(b"POST /endless HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"400\r\n" + b"c" * 1024 + b"\r\n"
        end, sent = time.time() + 10, 0
        while time.time() < end:
            s.sendall(chunk)
            sent += 1024
        s.close()
        print(f"hostile: endless chunked body, {sent >> 20} MiB in 10 s: "
              f"tracer {memory(tracer.proc.pid)}")
        s = connect_from("127.0.0.1", port)
        for b in b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n":
            s.send(bytes([b]))
            time.sleep(0.01)
        print(f"hostile: a byte per 10 ms: {read_all(s)[:12]!r}")
        s.close()
        for i in range(100):
            s = connect_from("127.0.0.1", port)
            s.sendall(b"GET /normal/%d HTTP/1.1\r\nHost: h\r\n\r\n" % i)
            read_all(s)
            s.close()
        print(f"hostile: after every case: tracer {memory(tracer.proc.pid)}")
        for pid in holders:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        time.sleep(1)
        summary = tracer.stop()
        print(f"hostile: {summary}")
        for key, want in (("normal", 100), ("p", 10_000), ("slow", 1), ("endless", 1)):
            got = tracer.exchanges.get(key, 0)
            print(f"hostile: /{key}: {got} exchanges captured (want {want})")
            ok &= got == want
    finally:
        if tracer.proc.poll() is None:
            tracer.proc.kill()
        nginx.terminate()
        nginx.wait()
    return ok


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tracer", required=True)
    p.add_argument("--requests", type=int, default=1_000_000)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--half-open", type=int, default=50_000)
    p.add_argument("--only", choices=["soak", "hostile"])
    args = p.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="http-trace-soak.") as workdir:
        if args.only in (None, "soak"):
            ok &= soak(args, workdir)
        if args.only in (None, "hostile"):
            ok &= hostile(args, workdir)
    print("soak: " + ("passed" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
