#!/usr/bin/env bash
# The soak (1,000,000 requests over 1,000 keep-alive connections against traced nginx, captured
# exchanges against its access log, the tracer's RSS after the first tenth and at the end) and
# the hostile cases at full size (50,000 half-open connections, ...). Minutes; not part of the
# test command. As root on Debian 12:
#   sudo scripts/soak.sh [--requests N] [--connections C] [--half-open N] [--only soak|hostile]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --bench
source scripts/env.sh
cargo build --release --locked --quiet --bin http-trace
exec python3 scripts/soak.py --tracer target/release/http-trace "$@"
