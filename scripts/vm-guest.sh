#!/usr/bin/env bash
# Runs inside a virtme-ng guest (scripts/vm-test.sh): the integration test binaries, once per
# attach method. Writes its log and a final marker into OUT, a directory shared with the host
# (more reliable than the guest console).
#   vm-guest.sh OUT "kprobe fentry:hooks tracepoint" TEST_BINARY...
# A method written METHOD:hooks runs only the tests in `hooks` below, the rest run them all.
set -uo pipefail
out=$1
methods=${2:-}

# The tests that go through each hook a method attaches (every receive and send call, accept,
# connect, close, fork, exit, Unix sockets, sendmmsg, splice, TLS uprobes, a CLOSE inside a send, calls
# blocked when tracing starts or ends, detaching): what differs between methods. What the hooks
# feed (reassembly, pairing, framing, output) is shared by all, and runs whole with the methods
# that run everything.
hooks=(
    our_server_with_read_and_write our_server_with_readv_and_writev readv_and_writev_of_any_length
    our_server_with_preadv2_and_pwritev2
    our_server_with_recv_and_send our_server_with_recvmsg_and_sendmsg
    our_server_peeking_before_it_receives many_threads_blocked_in_receive
    ends_when_the_traced_process_exits nginx
    a_server_on_a_unix_socket a_client_on_a_unix_socket a_node_client_with_non_blocking_connects
    connects_that_end_after_their_call_returned a_reused_fd_is_a_new_connection
    a_body_spliced_into_the_socket_is_captured a_go_relay_splicing_both_ways
    responses_sent_with_sendmmsg_are_captured recvmmsg_and_sendmmsg_of_many_messages
    a_unix_socket_answered_with_sendmmsg_is_captured nginx_over_https_is_read_in_plaintext
    a_forking_server_is_read_in_its_children a_hundred_parallel_pipelined_connections_are_read
    children_forked_later_are_followed_unless_turned_off an_answer_sent_into_a_reset_is_captured
    connections_open_before_tracing_are_followed_from_their_next_request
    a_killed_tracer_leaves_nothing_loaded kprobe_events_a_killed_tracer_left_are_removed_by_the_next_run
)

if [ "$1" = --list-hooks ]; then
    printf '%s\n' "${hooks[@]}"
    exit 0
fi

shift 2
log=$out/guest.log
failures=0
echo "guest: kernel $(uname -r), $(nproc) CPUs" >> "$log"
for entry in $methods; do
    method=${entry%%:*}
    only=()
    [ "$entry" = "$method:hooks" ] && only=("${hooks[@]}" --exact)
    for test in "$@"; do
        name=$(basename "$test" | sed 's/-[0-9a-f]*$//')
        start=$(date +%s)
        # fentry one test at a time: a tracer attaching or detaching rebuilds the trampolines
        # of another's calls in flight and skips their fexit (the README's known loss), which
        # two tests side by side do to each other.
        threads=2
        [ "$method" = fentry ] && threads=1
        if HTTP_TRACE_IN_VM=1 HTTP_TRACE_TEST_ATTACH=$method "$test" --test-threads=$threads "${only[@]}" > "$out/run.log" 2>&1; then
            result=ok
        else
            result=FAILED
            failures=$((failures + 1))
            cat "$out/run.log" >> "$log"
        fi
        summary=$(grep -E '^test result' "$out/run.log" | tail -1)
        echo "guest: $(uname -r) $entry $name: $result ($(( $(date +%s) - start )) s) $summary" >> "$log"
    done
done
echo "VM-GUEST-DONE failures=$failures" >> "$log"
[ "$failures" -eq 0 ]
