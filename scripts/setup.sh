#!/usr/bin/env bash
# Installs what building and testing http-trace needs on Debian 12, as root; idempotent and quick
# when everything is already there. Sourced by demo.sh and test.sh.
#   scripts/setup.sh          build and host-test dependencies
#   scripts/setup.sh --vm     also QEMU, virtme-ng and Debian's 6.1 and 6.12 kernels, and Debian
#                             11's 5.10 (from the bullseye suite) (VM tests)
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

packages=(clang llvm libelf-dev zlib1g-dev pkg-config make gcc curl openssl libssl-dev python3 python3-pip nginx-light util-linux apache2-utils busybox-static docker.io haproxy varnish gunicorn uwsgi-core uwsgi-plugin-python3 chromium tshark tmux golang-go)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ "$want_vm" = 1 ]; then
    packages+=(qemu-system-x86 linux-image-amd64 linux-image-6.12-amd64)
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
    # The tests run docker, haproxy and varnish of their own (private paths; docker with no bridge
    # and no iptables): the packaged services, which systemd starts on install, are not needed.
    if command -v systemctl >/dev/null 2>&1; then
        for p in docker.io haproxy varnish; do
            [[ " ${missing[*]} " == *" $p "* ]] || continue
            case $p in
                docker.io) units=(docker.service docker.socket containerd.service) ;;
                haproxy) units=(haproxy.service) ;;
                varnish) units=(varnish.service varnishncsa.service) ;;
            esac
            systemctl disable --now "${units[@]}" >/dev/null 2>&1 || true
        done
    fi
fi

# The readers of http-trace's HAR that the tests use (tests/files.rs): har-validator and
# playwright-core, which drives Debian's Chromium (no browser download).
har_check="$(dirname "$0")/har-check"
if [ ! -d "$har_check/node_modules/playwright-core" ] || [ ! -d "$har_check/node_modules/har-validator" ]; then
    echo "setup: installing the HAR checkers (npm)"
    (cd "$har_check" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

if [ "$want_vm" = 1 ] && ! command -v vng >/dev/null 2>&1; then
    echo "setup: installing virtme-ng (pip)"
    pip install -q virtme-ng 2>/dev/null || pip install -q --break-system-packages virtme-ng
fi

# Debian 11's kernel comes from the bullseye suite, on the mirror this machine's own sources use,
# through a private package list so that the system's sources stay as they are.
if [ "$want_vm" = 1 ] && ! compgen -G "/boot/vmlinuz-5.10.*-amd64" >/dev/null; then
    echo "setup: installing Debian 11's 5.10 kernel"
    b11=$(mktemp -d)
    mkdir -p "$b11/lists/partial" "$b11/cache/archives/partial"
    mirror=$(grep -h -m1 -oE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -1)
    [ -n "$mirror" ] || mirror=$(grep -h -m1 -oE '^deb +[^ ]+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)
    [ -n "$mirror" ] || { echo "setup: no Debian mirror in this machine's apt sources" >&2; exit 1; }
    echo "deb $mirror bullseye main" > "$b11/sources.list"
    # Its own lists, cache and (empty) status: bookworm's packages must not answer for bullseye.
    o=(-o "Dir::Etc::sourcelist=$b11/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::lists=$b11/lists"
       -o "Dir::Cache=$b11/cache" -o Dir::State::status=/dev/null)
    apt-get "${o[@]}" update -qq 2>&1 | grep -v 'unsandboxed' || true
    # The newest 5.10 image, as bullseye's linux-image-amd64 names it.
    pkg=$(apt-cache "${o[@]}" depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-5\.10\.[^ ]*-amd64\)$/\1/p' | head -1)
    [ -n "$pkg" ] || { echo "setup: bullseye names no 5.10 kernel image" >&2; exit 1; }
    (cd "$b11" && apt-get "${o[@]}" download -qq "$pkg" 2>&1 | grep -v 'unsandboxed' || true)
    DEBIAN_FRONTEND=noninteractive dpkg -i "$b11"/linux-image-5.10.*.deb >/dev/null
    rm -rf "$b11"
fi
