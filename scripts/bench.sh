#!/usr/bin/env bash
# The benchmark: nginx (one worker) under wrk on loopback, untraced and traced by http-trace and
# by the tools people use instead; prints a table and writes it as markdown. As root on Debian 12:
#   sudo scripts/bench.sh [--rounds N] [--seconds S] [--cases A,B] [--out FILE]
#                         [--baseline OTHER_BUILD [--baseline-label TEXT]]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
source scripts/env.sh
cargo build --release --locked --quiet --bin http-trace --example http_server
exec python3 scripts/bench.py --tracer target/release/http-trace \
    --example target/release/examples/http_server "$@"
