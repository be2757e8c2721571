# Sourced by the scripts: find cargo even under sudo, whose PATH drops ~/.cargo/bin.
for dir in "$HOME/.cargo/bin" "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin}"; do
    if [ -n "$dir" ] && [ -x "$dir/cargo" ]; then
        export PATH="$dir:$PATH"
        break
    fi
done
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust 1.83 or newer (rustup), then run this again" >&2
    exit 1
fi
