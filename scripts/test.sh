#!/usr/bin/env bash
# The whole test suite, as root on Debian 12: sudo scripts/test.sh
# Unit and property tests, the root integration tests against real servers on this kernel (attach
# method auto, then raw-tracepoint and tracepoint, then the legacy BPF build), the fuzz targets
# for a minute each (scripts/fuzz.sh, nightly), then the same integration tests inside Debian's
# 5.10, 6.1 and 6.12 kernels with the other attach methods (scripts/vm-test.sh).
# HTTP_TRACE_SKIP_VM=1 leaves out the VM part.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --vm
source scripts/env.sh

echo "== build"
cargo build --all-targets --locked
echo "== unit and integration tests on this kernel ($(uname -r), attach auto)"
cargo test --locked -- --test-threads=2
for method in raw-tracepoint tracepoint; do
    echo "== integration tests on this kernel with --attach $method"
    HTTP_TRACE_TEST_ATTACH=$method cargo test --locked --test capture --test exchanges --test containers --test proxies -- --test-threads=2
done
echo "== integration tests on this kernel with the legacy BPF build (kernels before 5.17), raw-tracepoint"
HTTP_TRACE_BPF_BUILD=legacy HTTP_TRACE_TEST_ATTACH=raw-tracepoint \
    cargo test --locked --test capture --test exchanges --test containers --test proxies -- --test-threads=2
echo "== fuzzing: each target for 60 s from its committed seeds"
scripts/fuzz.sh 60
if [ "${HTTP_TRACE_SKIP_VM:-0}" = 1 ]; then
    echo "== VM tests skipped (HTTP_TRACE_SKIP_VM=1)"
else
    echo "== integration tests in Debian's kernels, per attach method"
    scripts/vm-test.sh
fi
