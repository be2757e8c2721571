#!/usr/bin/env bash
# Runs the root integration tests inside Debian's stock 6.1 and 6.12 kernels, which have kprobes
# and fentry (this host's kernel has neither), once per attach method: on 6.1 auto (which falls
# back to raw-tracepoint there), kprobe and tracepoint; on 6.12 socket-tracepoint (auto's first
# choice), raw-tracepoint, kprobe and fentry. That keeps the run near 35 minutes (each method
# costs a kernel about 4.5 minutes under emulation). QEMU runs under software
# emulation (KVM fails on this host), with virtme-ng sharing this machine's file system, so the
# binaries built here run there as they are. A guest that fails to boot or a failing test fails
# the run, with the guest's output shown.
#   sudo scripts/vm-test.sh [KERNEL_GLOB...]     (HTTP_TRACE_VM_METHODS="kprobe" runs those on each)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --vm
source scripts/env.sh

globs=("$@")
[ "${#globs[@]}" -gt 0 ] || globs=("/boot/vmlinuz-6.1.*-amd64" "/boot/vmlinuz-6.12.*-amd64")
# The methods for a kernel, unless HTTP_TRACE_VM_METHODS says.
methods_for() {
    if [ -n "${HTTP_TRACE_VM_METHODS:-}" ]; then
        echo "$HTTP_TRACE_VM_METHODS"
    else
        case "$1" in
            # 6.1 has no socket tracepoints: auto falls back to raw-tracepoint there.
            *vmlinuz-6.1.*) echo "auto kprobe tracepoint" ;;
            *) echo "socket-tracepoint raw-tracepoint kprobe fentry" ;;
        esac
    fi
}

cargo build --all-targets --locked --quiet
mapfile -t tests < <(cargo test --locked --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["kind"] == ["test"] and m.get("executable"):
        print(m["executable"])
')
[ "${#tests[@]}" -gt 0 ] || { echo "vm-test: no integration test binaries found" >&2; exit 1; }

failed=0
for glob in "${globs[@]}"; do
    # shellcheck disable=SC2206 # the glob is meant to expand
    kernels=($glob)
    kernel=$(printf '%s\n' "${kernels[@]}" | sort -V | tail -1)
    if [ ! -e "$kernel" ]; then
        echo "vm-test: no kernel matches $glob" >&2
        failed=1
        continue
    fi
    shared=$(mktemp -d)
    methods=$(methods_for "$kernel")
    echo "== $(basename "$kernel"): integration tests with $methods"
    set +e
    # Single-threaded TCG: with one host thread per vCPU (QEMU's default), the 6.12 guest
    # panicked ("Oops: int3" in __schedule) while the kernel live-patched its own text.
    timeout 1500 vng --verbose --run "$kernel" --disable-kvm --memory 2G --cpus 2 \
        --qemu-opts='-accel tcg,thread=single' --rwdir "$shared" \
        --exec "$PWD/scripts/vm-guest.sh $shared '$methods' ${tests[*]}" > "$shared/console" 2>&1
    rc=$?
    set -e
    grep '^guest: ' "$shared/guest.log" 2>/dev/null || true
    if [ "$rc" -ne 0 ] || ! grep -q '^VM-GUEST-DONE failures=0' "$shared/guest.log" 2>/dev/null; then
        echo "vm-test: $(basename "$kernel") failed (exit $rc); the guest's log and console:" >&2
        cat "$shared/guest.log" "$shared/console" >&2 2>/dev/null || true
        failed=1
    fi
    rm -rf "$shared"
done
exit "$failed"
