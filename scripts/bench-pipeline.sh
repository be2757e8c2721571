#!/usr/bin/env bash
# The offline pipeline benchmark (benches/pipeline.rs): a recorded stream of 360 exchanges
# replayed through decoding, reassembly, parsing, pairing and output, counted in instructions
# with callgrind (stable on a shared machine, where wall-clock time is not). Prints the
# instructions per exchange for each output. No root needed.
#   scripts/bench-pipeline.sh [ROUNDS]      (default 5; instructions are exact, so few suffice)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
rounds=${1:-5}
if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
    else
        echo "bench-pipeline: valgrind is needed (apt-get install valgrind)" >&2
        exit 1
    fi
fi
bench=$(cargo bench --locked --bench pipeline --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pipeline" and m.get("executable"):
        print(m["executable"])
')
[ -x "$bench" ] || { echo "bench-pipeline: the bench binary was not built" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-8s %14s %10s %14s\n' output instructions exchanges "per exchange"
for format in ${HTTP_TRACE_BENCH_FORMATS:-json text verbose}; do
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" --toggle-collect='*replay_samples*' \
        "$bench" "$format" "$rounds" > "$out/stdout" 2> "$out/stderr"
    ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/stderr")
    exchanges=$(sed -n 's/^exchanges \([0-9]*\).*/\1/p' "$out/stdout")
    printf '%-8s %14s %10s %14s\n' "$format" "$ir" "$exchanges" "$((ir / exchanges))"
done
