#!/usr/bin/env bash
# Installs what building and testing http-trace needs on Debian 12, as root; idempotent and quick
# when everything is already there. Sourced by demo.sh and test.sh.
#   scripts/setup.sh          build and host-test dependencies
#   scripts/setup.sh --vm     also QEMU, virtme-ng and Debian's 6.1 and 6.12 kernels (VM tests)
#   scripts/setup.sh --bench  also wrk and the tools the benchmark compares with
set -euo pipefail

want_vm=0
want_bench=0
for arg in "$@"; do
    case "$arg" in
        --vm) want_vm=1 ;;
        --bench) want_bench=1 ;;
        *) echo "setup: unknown option $arg" >&2; exit 2 ;;
    esac
done

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (sudo $0): it installs packages and the tests load BPF programs" >&2
    exit 1
fi

packages=(clang llvm libelf-dev zlib1g-dev pkg-config make gcc curl python3 python3-pip nginx-light util-linux)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
if [ "$want_vm" = 1 ]; then
    packages+=(qemu-system-x86 busybox-static linux-image-amd64 linux-image-6.12-amd64)
fi
if [ "$want_bench" = 1 ]; then
    packages+=(wrk tcpdump strace bpftrace)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$want_vm" = 1 ] && ! command -v vng >/dev/null 2>&1; then
    echo "setup: installing virtme-ng (pip)"
    pip install -q virtme-ng 2>/dev/null || pip install -q --break-system-packages virtme-ng
fi
