#!/usr/bin/env bash
# The whole test suite, as root on Debian 12: sudo scripts/test.sh
# Built once (the crate, then the fuzz targets); then, side by side: the integration tests
# inside Debian's 5.10, 6.1 and 6.12 kernels, every attach method on each (scripts/vm-test.sh:
# two guests at a time, one per core), and on this kernel the unit and property tests, the root
# integration tests (attach method auto, then raw-tracepoint and tracepoint, then the legacy BPF
# build) and the fuzz targets for a minute each (scripts/fuzz.sh, nightly). The host's suites
# wait on servers and tracers about half of their time: the guests take that CPU. The builds
# come first: beside them the emulated kernels got a tenth of a core, and tests timed out there.
# HTTP_TRACE_SKIP_VM=1 leaves out the VM part; `cargo test` alone (no root needed) runs the pure
# tests and says which root tests it skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --vm
source scripts/env.sh

start=$(date +%s)
stamp() { echo "== [$(( ($(date +%s) - start) / 60 ))m$(( ($(date +%s) - start) % 60 ))s] $*"; }

stamp "build"
cargo build --all-targets --locked
stamp "build of the fuzz targets"
scripts/fuzz.sh --build-only
vm_log=$(mktemp)
trap 'rm -f "$vm_log"' EXIT
vm_pid=
if [ "${HTTP_TRACE_SKIP_VM:-0}" = 1 ]; then
    stamp "VM tests skipped (HTTP_TRACE_SKIP_VM=1)"
else
    stamp "integration tests in Debian's kernels, per attach method: started, reported at the end"
    scripts/vm-test.sh > "$vm_log" 2>&1 &
    vm_pid=$!
fi

host_status=0
host() {
    stamp "$1"
    shift
    "$@" || host_status=1
}
host "unit and integration tests on this kernel ($(uname -r), attach auto)" \
    cargo test --locked -- --test-threads=2
# The suites that go through the attach method and the BPF build (the others trace nothing, or
# test what does not depend on them: errors, stops, files, filters, hostile traffic, --top).
per_method=(--test capture --test exchanges --test vectored --test unix_sockets --test processes
            --test recording --test containers --test proxies --test tls)
for method in raw-tracepoint tracepoint; do
    host "integration tests on this kernel with --attach $method" \
        env HTTP_TRACE_TEST_ATTACH=$method cargo test --locked "${per_method[@]}" -- --test-threads=2
done
host "integration tests on this kernel with the legacy BPF build (kernels before 5.17), raw-tracepoint" \
    env HTTP_TRACE_BPF_BUILD=legacy HTTP_TRACE_TEST_ATTACH=raw-tracepoint \
    cargo test --locked "${per_method[@]}" -- --test-threads=2
# At a lower priority than the guests: each run is bounded in time, not in work.
host "fuzzing: each target for 60 s from its committed seeds" nice -n 10 scripts/fuzz.sh 60
stamp "host suites done (status $host_status)"

vm_status=0
if [ -n "$vm_pid" ]; then
    wait "$vm_pid" || vm_status=1
    stamp "integration tests in Debian's kernels (status $vm_status):"
    cat "$vm_log"
fi
stamp "done"
[ "$host_status" -eq 0 ] && [ "$vm_status" -eq 0 ]
