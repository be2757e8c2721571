#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets) for a bounded time from its committed seeds
# (fuzz/seeds), with cargo fuzz on the nightly toolchain: scripts/fuzz.sh [SECONDS] (default 60).
# New inputs go to a scratch corpus, removed after; a crash leaves its input in
# fuzz/artifacts/TARGET/ and fails the run (keep it as a regression test).
#   scripts/fuzz.sh --build-only    builds the targets (5-6 minutes on 2 cores from clean), no run
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
if [ "${1:-}" = --build-only ]; then
    build_only=1
    shift
fi
secs=${1:-60}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    if ! cargo install cargo-fuzz --locked --quiet; then
        echo "fuzz: skipped: cargo-fuzz could not be installed"
        exit 0
    fi
fi
# A target that does not build is a failure like a crash.
cargo +nightly fuzz build --fuzz-dir fuzz
[ "$build_only" = 1 ] && exit 0
for target in http_parser pipeline; do
    work=$(mktemp -d /tmp/http-trace-fuzz.XXXXXX)
    echo "== fuzz $target for ${secs}s"
    set +e
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$work" "fuzz/seeds/$target" -- \
        -max_total_time="$secs" -max_len=8192 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|thread .* panicked|Failing input|artifact_prefix)'
    status=${PIPESTATUS[0]}
    set -e
    rm -rf "$work"
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target failed (exit $status): see fuzz/artifacts/$target/"
        exit 1
    fi
done
