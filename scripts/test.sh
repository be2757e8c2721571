#!/usr/bin/env bash
# The whole test suite, as root on Debian 12: sudo scripts/test.sh
# Unit tests, then the root integration tests against real servers on this kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

echo "== build"
cargo build --all-targets --locked
echo "== unit and integration tests on this kernel ($(uname -r))"
cargo test --locked -- --test-threads=2
