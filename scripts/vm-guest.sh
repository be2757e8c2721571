#!/usr/bin/env bash
# Runs inside a virtme-ng guest (scripts/vm-test.sh): the integration test binaries, once per
# attach method. Prints one result line per run and a final marker the host checks.
#   vm-guest.sh "kprobe fentry tracepoint" TEST_BINARY...
set -uo pipefail
methods=$1
shift
failures=0
echo "guest: kernel $(uname -r), $(nproc) CPUs"
for method in $methods; do
    for test in "$@"; do
        name=$(basename "$test" | sed 's/-[0-9a-f]*$//')
        start=$(date +%s)
        if HTTP_TRACE_TEST_ATTACH=$method "$test" --test-threads=2 > /tmp/vm-test.log 2>&1; then
            result=ok
        else
            result=FAILED
            failures=$((failures + 1))
            cat /tmp/vm-test.log
        fi
        summary=$(grep -E '^test result' /tmp/vm-test.log | tail -1)
        echo "guest: $(uname -r) $method $name: $result ($(( $(date +%s) - start )) s) $summary"
    done
done
echo "VM-GUEST-DONE failures=$failures"
[ "$failures" -eq 0 ]
