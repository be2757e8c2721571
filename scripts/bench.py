#!/usr/bin/env python3
"""The benchmark behind scripts/bench.sh (run that: it installs and builds what this needs).

nginx with one worker process serves a fixed 200 response on loopback; wrk loads it for a few
seconds at a time, in turn: untraced; traced by http-trace (JSON to a file), with the attach
method `auto` picks, with raw-tracepoint, and with `auto` again while the kernel times its BPF
programs (kernel.bpf_stats_enabled, which costs a little itself); and by the tools people use
instead: tcpdump writing a pcap, strace -f on the worker, a bpftrace script printing the
requests. A second nginx, untraced, is also loaded while http-trace traces the first (both
ways), to show what a process that is not traced pays; and http-trace traces the first with a
--port filter that leaves every connection of the load out, to show what filtered traffic costs. The example server
(examples/http_server) answers 1,000 bytes with one writev of 8 or of 64 iovecs, to show what a
long vectored send costs against the fast path's. The TLS rows repeat the main ones with nginx
over HTTPS (its plaintext read through uprobes on libssl), the second server's included: what
a process on the same libssl pays while another is traced. Each round runs every case once; the
table gives the median over the rounds. Throughput ratios compare runs of the same round.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

NGINX_CONF = """daemon off; master_process off; worker_processes 1;
pid {d}/nginx-{name}.pid; error_log {d}/error-{name}.log;
worker_rlimit_nofile 10000;
events {{ worker_connections 4096; }}
http {{
  access_log {d}/access-{name}.log;
  client_body_temp_path {d}/body-{name}; proxy_temp_path {d}/proxy-{name};
  fastcgi_temp_path {d}/fastcgi-{name}; uwsgi_temp_path {d}/uwsgi-{name}; scgi_temp_path {d}/scgi-{name};
  sendfile off;
  server {{ listen 127.0.0.1:{port}{ssl}; location / {{ return 200 "hello\\n"; }}
    location = /big {{ alias {d}/big.bin; default_type application/octet-stream; }} }}
}}
"""

# Requests as bpftrace users write it: copy the start of each recvfrom of the worker.
BPFTRACE_SCRIPT = """
tracepoint:syscalls:sys_enter_recvfrom /pid == $1/ { @buf[tid] = (uint64)args->ubuf; }
tracepoint:syscalls:sys_exit_recvfrom /pid == $1/ {
  $b = @buf[tid];
  if ($b != 0 && args->ret > 0) { printf("%d %r\\n", tid, buf((uint8 *)$b, args->ret)); }
  delete(@buf[tid]);
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: nothing listens on port {port}")


def self_signed_cert(workdir):
    """A certificate for the HTTPS servers, made here; (cert, key)."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   capture_output=True, check=True)
    return cert, key


class Nginx:
    """nginx with one worker; over HTTPS (OpenSSL 3, TLS 1.3) when `tls` is (cert, key)."""

    def __init__(self, workdir, name, tls=None):
        self.port = free_port()
        self.scheme = "https" if tls else "http"
        self.log = os.path.join(workdir, f"access-{name}.log")
        conf = os.path.join(workdir, f"nginx-{name}.conf")
        ssl = f" ssl; ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]}" if tls else ""
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(d=workdir, name=name, port=self.port, ssl=ssl))
        self.proc = subprocess.Popen(
            ["nginx", "-c", conf, "-e", os.path.join(workdir, f"error-{name}.log")],
            stdin=subprocess.DEVNULL,
        )
        wait_port(self.port)
        self.pid = self.proc.pid

    def served(self):
        """Requests completed so far (lines of the access log)."""
        try:
            with open(self.log, "rb") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Example:
    """The example server (examples/http_server, a thread per connection), answering with
    writev; it keeps no log, so what it served is what wrk counted."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary, "--port", "0", "--send", "writev"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r":(\d+)$", line.strip())
        if not m:
            sys.exit(f"bench: the example server said {line!r}")
        self.port = int(m.group(1))
        self.pid = self.proc.pid
        self.counted = 0

    def served(self):
        return self.counted

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def wrk(port, seconds, threads, connections, path="/", server=None, scheme="http"):
    """Requests per second; `server`, an Example, is told how many wrk completed."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
         f"{scheme}://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        sys.exit(f"bench: no Requests/sec in wrk's output:\n{out}")
    if server is not None:
        n = re.search(r"(\d+) requests in", out)
        server.counted += int(n.group(1)) if n else 0
    return float(m.group(1))


class Tool:
    """A tracer run in the background; `ready` is a line of its output that says it is on."""

    def __init__(self, argv, ready, out_path, workdir, stdout_to_file=False):
        self.err_path = os.path.join(workdir, "tool.err")
        self.out_path = out_path
        err = open(self.err_path, "w")
        out = open(out_path, "w") if stdout_to_file else err
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     start_new_session=True)
        end = time.time() + 60
        while not self._said(ready):
            if self.proc.poll() is not None or time.time() > end:
                sys.exit(f"bench: {argv[0]} did not start:\n{self.stderr()}")
            time.sleep(0.05)
        time.sleep(0.3)

    def _said(self, ready):
        text = self.stderr()
        if self.out_path and os.path.exists(self.out_path) and ready not in text:
            with open(self.out_path, errors="replace") as f:
                text = f.read(1 << 16)
        return ready in text

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def cpu_seconds(self):
        """CPU time used so far (user + system)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def bpf_run_ns(self):
        """Time spent so far in the BPF programs this process loaded (kernel.bpf_stats_enabled
        must be on): each program's fdinfo has it, once per program."""
        runs = {}
        fd_dir = f"/proc/{self.proc.pid}/fdinfo"
        for fd in os.listdir(fd_dir):
            try:
                with open(os.path.join(fd_dir, fd)) as f:
                    info = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if "run_time_ns" in info and "prog_id" in info:
                runs[info["prog_id"].strip()] = int(info["run_time_ns"])
        return sum(runs.values())

    def stop(self):
        """SIGINT, then its CPU seconds (till it ended) and peak RSS in MiB (while it ran)."""
        peak = 0.0
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
        os.kill(self.proc.pid, signal.SIGINT)
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = status
        return usage.ru_utime + usage.ru_stime, peak


def count_pcap_exchanges(path):
    """Requests and responses whose first bytes are in a TCP payload of the pcap (loopback)."""
    requests = responses = 0
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return 0
        endian = "<" if head[:4] == b"\xd4\xc3\xb2\xa1" else ">"
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        link_len = 14 if linktype == 1 else 16 if linktype == 113 else 4
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                break
            incl = struct.unpack(endian + "I", rec[8:12])[0]
            pkt = f.read(incl)
            ip = pkt[link_len:]
            if not ip or ip[0] >> 4 != 4:
                continue
            ihl = (ip[0] & 15) * 4
            tcp = ip[ihl:]
            if len(tcp) < 20:
                continue
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload.startswith(b"GET "):
                requests += 1
            elif payload.startswith(b"HTTP/1.1 "):
                responses += 1
    return min(requests, responses)


def count_strace_exchanges(path):
    requests = responses = 0
    with open(path, errors="replace") as f:
        for line in f:
            if "recvfrom(" in line and '"GET ' in line:
                requests += 1
            elif ("writev(" in line or "sendto(" in line or "write(" in line) and '"HTTP/1.1 ' in line:
                responses += 1
    return min(requests, responses)


BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"


def set_bpf_stats(on):
    """Have the kernel time every BPF program run (it costs a little: one case only)."""
    with open(BPF_STATS, "w") as f:
        f.write("1" if on else "0")


def run_case(case, args, workdir, a, b, ex, tracer):
    """One load run (http-trace's cases with the binary `tracer`); returns a dict of figures.
    A TLS case is its plain twin, run by the caller on the HTTPS servers as `a` and `b`."""
    case = case.removeprefix(TLS)
    out = os.path.join(workdir, "capture")
    tool = None
    target = ex if IOVECS in case else a
    bpf_stats = "BPF run time" in case
    if bpf_stats:
        set_bpf_stats(True)
    if case == "http-trace -w (record only)":
        tool = Tool([tracer, "--pid", str(a.pid), "-w", out], "tracing pid", None, workdir)
    elif case in TRACER_CASES:
        argv = [tracer, "--pid", str(target.pid), "-o", "json"]
        if "raw-tracepoint" in case:
            argv += ["--attach", "raw-tracepoint"]
        if "--capture-bytes" in case:
            argv += ["--capture-bytes", "4096"]
        if "--port" in case:
            # A port the load is not on: every connection filtered out (in the kernel, by
            # builds that can; a baseline build may parse them all and hide them).
            argv += ["--port", str(b.port)]
        tool = Tool(argv, "tracing pid", out, workdir, stdout_to_file=True)
        if case.startswith("second server"):
            target = b
    elif case == "tcpdump":
        tool = Tool(["tcpdump", "-i", "lo", "-s", "0", "-w", out, f"tcp port {a.port}"],
                    "listening on", None, workdir)
    elif case == "tshark -Y http":
        # What a person would run to see exchanges live: the HTTP dissector, one line per message.
        tool = Tool(["tshark", "-i", "lo", "-l", "-f", f"tcp port {a.port}", "-Y", "http",
                     "-T", "fields", "-e", "http.request.method", "-e", "http.request.uri",
                     "-e", "http.response.code"], "Capturing on", out, workdir,
                    stdout_to_file=True)
    elif case == "strace -f":
        tool = Tool(["strace", "-f", "-s", "4096", "-o", out, "-p", str(a.pid)], "attached", None,
                    workdir)
    elif case == "bpftrace":
        script = os.path.join(workdir, "requests.bt")
        with open(script, "w") as f:
            f.write(BPFTRACE_SCRIPT)
        tool = Tool(["bpftrace", script, str(a.pid)], "Attaching", out, workdir,
                    stdout_to_file=True)
    elif case == "bpftrace uprobes (count only)":
        # The cost of the traps alone: empty uprobes on the calls http-trace probes.
        lib = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
        calls = ",".join(f"{kind}:{lib}:{f}" for kind in ("uprobe", "uretprobe")
                         for f in ("SSL_read", "SSL_read_ex", "SSL_write", "SSL_write_ex",
                                   "SSL_do_handshake"))
        tool = Tool(["bpftrace", "-e", f"{calls} /pid == {a.pid}/ {{ @calls = count(); }}"],
                    "Attaching", out, workdir, stdout_to_file=True)
    elif case == "second server untraced":
        target = b
    before = target.served()
    cpu_before = tool.cpu_seconds() if tool else 0.0
    bpf_before = tool.bpf_run_ns() if bpf_stats else 0
    path = "/big" if BIG in case else "/"
    m = re.search(r"(\d+)-iovec answers", case)
    if m:
        path = f"/r/iovecs/{m.group(1)}/1000"
    rps = wrk(target.port, args.seconds, args.threads, connections_of(case, args), path,
              target if target is ex else None, getattr(target, "scheme", "http"))
    time.sleep(0.2)
    served = target.served() - before
    row = {"rps": rps, "served": served, "cpu": None, "rss": None, "lost": None, "captured": None,
           "cpu_load": None, "bpf_ns": None}
    if tool is None:
        return row
    row["cpu_load"] = tool.cpu_seconds() - cpu_before
    if bpf_stats:
        row["bpf_ns"] = (tool.bpf_run_ns() - bpf_before) / max(served, 1)
        set_bpf_stats(False)
    row["cpu"], row["rss"] = tool.stop()
    err = tool.stderr()
    if case == "http-trace -w (record only)":
        m = re.search(r"recorded to \S+, (\d+) events? lost", err)
        if not m:
            sys.exit(f"bench: no summary from http-trace -w:\n{err}")
        row["lost"] = int(m.group(1))
        # Every exchange in the file, checked by replaying it; the replay is not timed.
        replay = subprocess.run([tracer, "-r", out, "-o", "json"], capture_output=True,
                                text=True)
        m = re.search(r"(\d+) exchanges captured", replay.stderr)
        row["captured"] = int(m.group(1)) if m else None
        # The CPU per exchange is the recording's, over what the replay found.
    elif case in TRACER_CASES:
        m = re.search(r"(\d+) exchanges captured, (\d+) events lost", err)
        if not m:
            sys.exit(f"bench: no summary from http-trace:\n{err}")
        row["captured"], row["lost"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"tracing pid \d+ with (\S+)", err)
        row["method"] = m.group(1) if m else None
    elif case == "tcpdump":
        m = re.search(r"(\d+) packets dropped by kernel", err)
        row["lost"] = int(m.group(1)) if m else None
        row["captured"] = count_pcap_exchanges(out)
    elif case == "tshark -Y http":
        m = re.search(r"(\d+) packets? dropped", err)
        row["lost"] = int(m.group(1)) if m else 0
        with open(out, errors="replace") as f:
            row["captured"] = sum(1 for line in f if re.match(r"^\t\t\d{3}", line))
    elif case == "strace -f":
        row["lost"] = 0
        row["captured"] = count_strace_exchanges(out)
    elif case == "bpftrace uprobes (count only)":
        pass
    elif case == "bpftrace":
        with open(out, errors="replace") as f:
            text = f.read()
        row["lost"] = sum(int(n) for n in re.findall(r"Lost (\d+) events", text + err))
        row["captured"] = len(re.findall(r"^\d+ GET ", text, re.M))
    os.remove(out) if os.path.exists(out) else None
    return row


CASES = [
    "untraced",
    "http-trace",
    "http-trace (raw-tracepoint)",
    "http-trace (BPF run time counted)",
    "http-trace raw-tracepoint (BPF run time counted)",
    "http-trace -w (record only)",
    "http-trace --port (the load on another port)",
    "http-trace --port (the load on another port; BPF run time counted)",
    "tcpdump",
    "tshark -Y http",
    "strace -f",
    "bpftrace",
    "second server untraced",
    "second server (first traced)",
    "second server (first traced by raw-tracepoint)",
    "second server (first traced; BPF run time counted)",
    "untraced (256 connections)",
    "http-trace (256 connections)",
    "untraced (2000 connections)",
    "http-trace (2000 connections)",
    "untraced (64 KiB bodies)",
    "http-trace (64 KiB bodies)",
    "http-trace --capture-bytes 4096 (64 KiB bodies)",
    "untraced (example server with 8-iovec answers)",
    "http-trace (example server with 8-iovec answers; BPF run time counted)",
    "untraced (example server with 64-iovec answers)",
    "http-trace (example server with 64-iovec answers; BPF run time counted)",
    "TLS: untraced",
    "TLS: http-trace",
    "TLS: http-trace (BPF run time counted)",
    "TLS: http-trace -w (record only)",
    "TLS: bpftrace uprobes (count only)",
    "TLS: second server untraced",
    "TLS: second server (first traced)",
]
# The rows of nginx over HTTPS (keep-alive: the handshakes are few), its plaintext read through
# libssl; the second server's rows show what a process on the same libssl that is not traced
# pays (the probes are attached to the traced process only).
TLS = "TLS: "
# The rows of the example server answering 1,000 bytes with one writev of 8 or 64 iovecs: what
# a long vectored send costs against the fast path's (at most 8 iovecs and 8 KiB).
IOVECS = "example server"
# The rows whose responses carry BIG_BYTES of body (nginx reads a file and writes it, sendfile
# off, so that its bytes pass through user memory): what copying bodies costs.
BIG = "(64 KiB bodies)"
BIG_BYTES = 64 << 10


def big_body():
    """BIG_BYTES of what a REST service sends: a JSON array of records."""
    items, n = [], 2
    while True:
        item = (f'{{"id":{len(items)},"name":"item {len(items)}","price":{len(items) % 97}.5,'
                f'"tags":["red","large"],"in_stock":true}}')
        if n + len(item) + 1 > BIG_BYTES:
            break
        items.append(item)
        n += len(item) + 1
    return ("[" + ",".join(items) + "]").ljust(BIG_BYTES).encode()
# The cases that run http-trace: on the first server, or on it while the second is loaded.
TRACER_CASES = [c for c in CASES if "http-trace" in c or "first traced" in c]
# What each traced case's throughput is compared with.
BASELINE = {c: "second server untraced" for c in CASES if c.startswith("second server")}
# (Case names hold no comma: --cases is a comma-separated list.)
BASELINE.update({c: c.replace("http-trace", "untraced") for c in CASES
                 if c.startswith("http-trace") and c.endswith("connections)")})
BASELINE.update({c: f"untraced {BIG}" for c in CASES if BIG in c})
BASELINE.update({c: re.sub(r"http-trace \((.*); BPF run time counted\)", r"untraced (\1)", c)
                 for c in CASES if IOVECS in c and c.startswith("http-trace")})
BASELINE.update({c: TLS + BASELINE.get(c.removeprefix(TLS), "untraced")
                 for c in CASES if c.startswith(TLS)})


def connections_of(case, args):
    """The scale rows name their connection count; the others use --connections."""
    m = re.search(r"(\d+) connections", case)
    return int(m.group(1)) if m else args.connections


def per_exchange_us(row):
    """The tracer's CPU during the load, per exchange it captured (start-up left out)."""
    if row["cpu_load"] is None or not row["captured"]:
        return None
    return row["cpu_load"] * 1e6 / row["captured"]


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracer", required=True)
    ap.add_argument("--example", required=True, help="examples/http_server, built")
    ap.add_argument("--baseline", help="a second http-trace binary (another build): each of "
                    "http-trace's cases also runs with it, right after, as '<case> [baseline]'")
    ap.add_argument("--baseline-label", help="what the table's header calls the baseline build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    ap.add_argument("--out", default="target/bench-results.md")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (sudo scripts/bench.sh)")
    cases = [c for c in CASES if c in args.cases.split(",")]
    # (case as the table names it, case run, binary): a baseline build's twin follows each
    # http-trace case, so that both builds meet the same moment of this machine's load.
    runs = []
    for c in cases:
        runs.append((c, c, args.tracer))
        if args.baseline and c in TRACER_CASES:
            runs.append((c + " [baseline]", c, args.baseline))
    names = [name for name, _, _ in runs]
    for tool in ("nginx", "wrk", "tcpdump", "tshark", "strace", "bpftrace"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (scripts/bench.sh installs it)")

    workdir = tempfile.mkdtemp(prefix="http-trace-bench-")
    os.chmod(workdir, 0o755)
    with open(os.path.join(workdir, "big.bin"), "wb") as f:
        f.write(big_body())
    os.chmod(os.path.join(workdir, "big.bin"), 0o644)
    a, b = Nginx(workdir, "a"), Nginx(workdir, "b")
    cert = self_signed_cert(workdir)
    at, bt = Nginx(workdir, "at", cert), Nginx(workdir, "bt", cert)
    ex = Example(args.example)
    results = {name: [] for name in names}
    with open(BPF_STATS) as f:
        bpf_stats_before = f.read().strip() == "1"
    try:
        for server in (a, b, at, bt):  # warm up
            wrk(server.port, 1, args.threads, args.connections, scheme=server.scheme)
        for r in range(args.rounds):
            for name, case, tracer in runs:
                pair = (at, bt) if case.startswith(TLS) else (a, b)
                row = run_case(case, args, workdir, *pair, ex, tracer)
                results[name].append(row)
                print(f"round {r + 1}/{args.rounds} {name}: {row['rps']:.0f} req/s, "
                      f"cpu {fmt(row['cpu'], '.2f')} s, rss {fmt(row['rss'], '.1f')} MiB, "
                      f"lost {fmt(row['lost'], 'd')}, captured {fmt(row['captured'], 'd')} "
                      f"of {row['served']}, tracer {fmt(per_exchange_us(row), '.1f')} us/exchange"
                      + (f", BPF {row['bpf_ns'] / 1000:.2f} us/request" if row["bpf_ns"] else ""),
                      file=sys.stderr, flush=True)
    finally:
        set_bpf_stats(bpf_stats_before)
        for server in (a, b, at, bt, ex):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def ratio(name, i):
        case = name.removesuffix(" [baseline]")
        base = BASELINE.get(case, "untraced")
        if base not in results:
            return None
        return results[name][i]["rps"] / results[base][i]["rps"]

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    lines = [
        "| case | requests/s | vs untraced | tracer CPU s | tracer CPU us / exchange | BPF us / request | tracer peak RSS MiB | events lost | exchanges captured / completed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in names:
        rows = results[case]
        n = len(rows)
        captured = med([r["captured"] for r in rows])
        served = med([r["served"] for r in rows])
        share = "-" if captured is None else f"{captured:.0f} / {served:.0f}"
        lines.append(
            f"| {case} | {med([r['rps'] for r in rows]):.0f} "
            f"| {fmt(med([ratio(case, i) for i in range(n)]), '.2f')} "
            f"| {fmt(med([r['cpu'] for r in rows]), '.2f')} "
            f"| {fmt(med([per_exchange_us(r) for r in rows]), '.1f')} "
            f"| {fmt(med([r['bpf_ns'] and r['bpf_ns'] / 1000 for r in rows]), '.2f')} "
            f"| {fmt(med([r['rss'] for r in rows]), '.1f')} "
            f"| {fmt(med([r['lost'] for r in rows]), '.0f')} | {share} |"
        )
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    auto = next((r.get("method") for r in results.get("http-trace", [])), None)
    header = (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, Linux {platform.release()}, "
        f"{os.cpu_count()} CPUs ({cpu}); nginx 1 worker, `wrk -t{args.threads} "
        f"-c{args.connections} -d{args.seconds}s`, median of {args.rounds} rounds"
        + (f"; http-trace's `auto` took {auto}" if auto else "")
        + (f"; [baseline]: {args.baseline_label or args.baseline}" if args.baseline else "")
    )
    table = header + "\n\n" + "\n".join(lines) + "\n"
    print("\n" + table)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(table)
    print(f"bench: written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
