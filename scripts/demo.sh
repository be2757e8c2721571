#!/usr/bin/env bash
# The demo: build http-trace and the example server, trace the server, send it requests, and
# show what was captured. Run as root on Debian 12: sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

echo "== building"
cargo build --release --quiet --bin http-trace --example http_server

work=$(mktemp -d)
cleanup() { kill "${server:-}" "${upstream:-}" "${tracer:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Start an example server writing to $1.out; sets $pid and $port.
start_server() {
    target/release/examples/http_server --port 0 --recv read --send writev > "$work/$1.out" &
    pid=$!
    for _ in $(seq 100); do grep -q listening "$work/$1.out" && break; sleep 0.1; done
    port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$work/$1.out")
}
start_server upstream
upstream=$pid upstream_port=$port
start_server server
server=$pid
echo "== example server: pid $server, port $port (it calls another, untraced, on port $upstream_port)"

echo "== sudo http-trace --pid $server -v"
target/release/http-trace --pid "$server" -v > "$work/trace.out" 2> "$work/trace.err" &
tracer=$!
for _ in $(seq 300); do grep -q "tracing pid" "$work/trace.err" && break; sleep 0.1; done

echo "== sending requests with curl"
curl -s "http://127.0.0.1:$port/users?id=42" -H 'Accept: application/json' > /dev/null
curl -s "http://127.0.0.1:$port/users" -H 'Content-Type: application/json' -d '{"name":"Ada","role":"admin"}' > /dev/null
curl -s "http://127.0.0.1:$port/upload" -H 'Transfer-Encoding: chunked' --data-binary 'chunked body' > /dev/null
curl -s "http://127.0.0.1:$port/a" "http://127.0.0.1:$port/r/chunked" > /dev/null   # one keep-alive connection
curl -s "http://127.0.0.1:$port/r/upstream/$upstream_port/inventory" > /dev/null   # the server calls out
sleep 0.5
kill -INT "$tracer"
wait "$tracer" || true
tracer=

echo "== what http-trace printed (stderr's summary line comes last, as in a terminal)"
head -n -1 "$work/trace.err"
cat "$work/trace.out"
tail -n 1 "$work/trace.err"
