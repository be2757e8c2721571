#!/usr/bin/env bash
# Runs inside a virtme-ng guest (scripts/vm-test.sh): the integration test binaries, once per
# attach method. Writes its log and a final marker into OUT, a directory shared with the host
# (more reliable than the guest console).
#   vm-guest.sh OUT "kprobe fentry tracepoint" TEST_BINARY...
set -uo pipefail
out=$1
methods=$2
shift 2
log=$out/guest.log
failures=0
echo "guest: kernel $(uname -r), $(nproc) CPUs" >> "$log"
for method in $methods; do
    for test in "$@"; do
        name=$(basename "$test" | sed 's/-[0-9a-f]*$//')
        start=$(date +%s)
        # fentry one test at a time: a tracer attaching or detaching rebuilds the trampolines
        # of another's calls in flight and skips their fexit (the README's known loss), which
        # two tests side by side do to each other.
        threads=2
        [ "$method" = fentry ] && threads=1
        if HTTP_TRACE_IN_VM=1 HTTP_TRACE_TEST_ATTACH=$method "$test" --test-threads=$threads > "$out/run.log" 2>&1; then
            result=ok
        else
            result=FAILED
            failures=$((failures + 1))
            cat "$out/run.log" >> "$log"
        fi
        summary=$(grep -E '^test result' "$out/run.log" | tail -1)
        echo "guest: $(uname -r) $method $name: $result ($(( $(date +%s) - start )) s) $summary" >> "$log"
    done
done
echo "VM-GUEST-DONE failures=$failures" >> "$log"
[ "$failures" -eq 0 ]
