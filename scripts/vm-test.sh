#!/usr/bin/env bash
# Runs the root integration tests inside Debian's stock kernels, which have kprobes and fentry
# (this host's kernel has neither), with every attach method on every kernel, each kernel booted
# once: the tests of each method's hooks (scripts/vm-guest.sh lists them), and on the oldest
# kernel the whole suite with the method auto picks there. The host runs the whole suite with
# socket-tracepoint, raw-tracepoint and tracepoint, and the legacy build: what the hooks feed
# (reassembly, pairing, framing, output) does not depend on the kernel, and the whole suite in
# 6.1 and 6.12 as well took 20 of the guests' 90 CPU-minutes to run the host's tests again.
#   5.10 (Debian 11): auto, whole (raw-tracepoint there: no socket tracepoints, the legacy BPF
#                     build); kprobe, tracepoint and fentry, their hooks
#   6.1:  auto (raw-tracepoint there), kprobe, tracepoint and fentry, their hooks
#   6.12: socket-tracepoint (auto's first choice, named so that a fallback fails), kprobe,
#         raw-tracepoint, tracepoint and fentry, their hooks
# QEMU runs under software emulation (KVM fails on this host), with virtme-ng sharing this
# machine's file system, so the binaries built here run there as they are. Each guest is one
# host thread: 5.10's guest in one lane, 6.1's then 6.12's in the other, side by side on the two
# cores; test.sh runs the host's suites meanwhile (they wait on servers and tracers about half of
# their time). A guest that fails to boot or a failing test fails the run, with the guest's
# output shown.
#   sudo scripts/vm-test.sh [KERNEL_GLOB...]
# HTTP_TRACE_VM_METHODS="kprobe fentry:hooks" runs those on each kernel (METHOD:hooks: the
# tests of its hooks only).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --vm
source scripts/env.sh

# The methods for a kernel, unless HTTP_TRACE_VM_METHODS says.
methods_for() {
    if [ -n "${HTTP_TRACE_VM_METHODS:-}" ]; then
        echo "$HTTP_TRACE_VM_METHODS"
    else
        case "$1" in
            *5.10.*) echo "auto kprobe:hooks tracepoint:hooks fentry:hooks" ;;
            *6.1.*) echo "auto:hooks kprobe:hooks tracepoint:hooks fentry:hooks" ;;
            *) echo "socket-tracepoint:hooks kprobe:hooks raw-tracepoint:hooks tracepoint:hooks fentry:hooks" ;;
        esac
    fi
}

# Two lanes of "glob|methods" jobs: each kernel booted once, the lanes about even.
lane_a=() lane_b=()
if [ "$#" -gt 0 ]; then
    i=0
    for glob in "$@"; do
        job="$glob|$(methods_for "$glob")"
        if [ $((i % 2)) -eq 0 ]; then lane_a+=("$job"); else lane_b+=("$job"); fi
        i=$((i + 1))
    done
else
    for glob in "/boot/vmlinuz-5.10.*-amd64" "/boot/vmlinuz-6.1.*-amd64" "/boot/vmlinuz-6.12.*-amd64"; do
        job="$glob|$(methods_for "$glob")"
        case "$glob" in
            *5.10.*) lane_a+=("$job") ;;
            *) lane_b+=("$job") ;;
        esac
    done
fi

cargo build --all-targets --locked --quiet
# The suites that trace: the others (replays, file formats read by third-party programs,
# filters on a recording) do not depend on the kernel, and run on the host only.
mapfile -t tests < <(cargo test --locked --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
guest = {"capture", "exchanges", "vectored", "unix_sockets", "processes", "recording", "errors", "proxies",
         "containers", "stops", "tls"}
for line in sys.stdin:
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m["target"]["kind"] == ["test"]
            and m.get("executable") and m["target"]["name"] in guest):
        print(m["executable"])
')
[ "${#tests[@]}" -gt 0 ] || { echo "vm-test: no integration test binaries found" >&2; exit 1; }
# A hook test renamed or removed would run nowhere, silently: each must be a test.
all_tests=$(for t in "${tests[@]}"; do "$t" --list 2>/dev/null; done | sed -n 's/: test$//p')
for hook in $(scripts/vm-guest.sh --list-hooks); do
    grep -qx "$hook" <<< "$all_tests" || { echo "vm-test: hook test $hook: no such test" >&2; exit 1; }
done

# The Go programs the tests run (tests/common/mod.rs: go_program), built where the tests look
# for them before the guests start: their root file system is read-only.
go_dir="$(dirname "$(dirname "${tests[0]}")")/go"
go_cache=$(mktemp -d)
mkdir -p "$go_dir"
for src in tests/data/*.go; do
    GO111MODULE=off GOCACHE="$go_cache" GOPATH="$go_cache/gopath" \
        go build -o "$go_dir/$(basename "$src" .go)" "$src" || exit 1
done
rm -rf "$go_cache"

# Boot the newest kernel matching $1 and run the tests with the methods $2; 0 when all passed.
run_guest() {
    local glob=$1 methods=$2 kernel shared rc
    # shellcheck disable=SC2206 # the glob is meant to expand
    local kernels=($glob)
    kernel=$(printf '%s\n' "${kernels[@]}" | sort -V | tail -1)
    if [ ! -e "$kernel" ]; then
        echo "vm-test: no kernel matches $glob" >&2
        return 1
    fi
    shared=$(mktemp -d)
    echo "== $(basename "$kernel"): integration tests with $methods"
    set +e
    # Single-threaded TCG: with one host thread per vCPU (QEMU's default), the 6.12 guest
    # panicked ("Oops: int3" in __schedule) while the kernel live-patched its own text.
    timeout 2700 vng --verbose --run "$kernel" --disable-kvm --memory 2G --cpus 2 \
        --qemu-opts='-accel tcg,thread=single' --rwdir "$shared" \
        --exec "$PWD/scripts/vm-guest.sh $shared '$methods' ${tests[*]}" > "$shared/console" 2>&1
    rc=$?
    set -e
    grep '^guest: ' "$shared/guest.log" 2>/dev/null || true
    if [ "$rc" -ne 0 ] || ! grep -q '^VM-GUEST-DONE failures=0' "$shared/guest.log" 2>/dev/null; then
        echo "vm-test: $(basename "$kernel") failed (exit $rc); the guest's log and console:" >&2
        cat "$shared/guest.log" "$shared/console" >&2 2>/dev/null || true
        rm -rf "$shared"
        return 1
    fi
    rm -rf "$shared"
}

# Run a lane's jobs one after the other; its output is printed when it is done, in one piece.
run_lane() {
    local failed=0 job
    for job in "$@"; do
        run_guest "${job%%|*}" "${job#*|}" || failed=1
    done
    return "$failed"
}

out_a=$(mktemp) out_b=$(mktemp)
trap 'rm -f "$out_a" "$out_b"' EXIT
run_lane "${lane_a[@]}" > "$out_a" 2>&1 &
pid_a=$!
status_b=0
if [ "${#lane_b[@]}" -gt 0 ]; then
    run_lane "${lane_b[@]}" > "$out_b" 2>&1 || status_b=1
fi
status_a=0
wait "$pid_a" || status_a=1
cat "$out_a" "$out_b"
[ "$status_a" -eq 0 ] && [ "$status_b" -eq 0 ]
