// SPDX-License-Identifier: GPL-2.0
/*
 * Where connections end: close(2), and the TCP state reaching CLOSE.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
/*
 * Event: close(2) of `fd` entered. The connection ends if this fd holds the socket's last
 * reference; otherwise another fd or process still has it (dup, fork, a socket passed on), and
 * it ends with that one's close, or with its TCP state (which is how the methods that do not
 * see close(2) enter end it: on_sock_state).
 */
static __always_inline int on_close_enter(void *ctx, __s32 fd)
{
	struct ht_sock_info *si;
	struct ht_sock_ref ref;

	if (!tgid_tracked(bpf_get_current_pid_tgid() >> 32) || !sock_of_fd(fd, &ref))
		return 0;
	si = followed_socket(ctx, &ref, fd);
	if (si && file_last_ref(ref.file))
		end_connection(ctx, HT_SYS_CLOSE, (__u64)ref.sk, si, false);
	return 0;
}

/*
 * Event: TCP socket `sk` reached state `state`. At CLOSE a followed connection ends, whichever
 * process had it (or, when that process has bytes to read yet or is in a receive or send on it,
 * once it read them or the call returned): TCP goes through CLOSE before a sock is freed, so a
 * sock's memory never holds a new socket while its old entry stands, but for an entry kept past
 * CLOSE, checked by inode number.
 */
static __always_inline int on_sock_state(void *ctx, __u64 sk, int state)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct ht_data_event *e;
	struct ht_sock_info *si;
	__u32 zero = 0, in_end;
	int in_call;

	if (state == TCP_ESTABLISHED) {
		si = bpf_map_lookup_elem(&sockets, &sk);
		if (si && si->syn_sent)
			sync_syn_sent(si, (struct sock *)sk);
		return 0;
	}
	if (state != TCP_CLOSE)
		return 0;
	si = bpf_map_lookup_elem(&sockets, &sk);
	if (!si)
		return 0;
	/* A sock passes CLOSE once: the entry kept past it is a freed socket's, at this address. */
	if (si->closed) {
		end_connection(ctx, HT_SYS_NONE, sk, si, true);
		return 0;
	}
	/* Nothing of it is reported: no last bytes to wait for. */
	if (si->left_out) {
		end_connection(ctx, HT_SYS_NONE, sk, si, false);
		return 0;
	}
	/* The old state, still (below): whether it had sent our FIN stays known at CLOSE. */
	if (fin_out_state(KREAD(struct sock, sk, __sk_common.skc_state)))
		si->fin_out = 1;
	/*
	 * Still held by its process (not orphaned), and either with bytes it has not read, or in a
	 * receive or send on it: the entry stays until the bytes are read, or the call returns. A
	 * client that shut its sending side down gets the response and the peer's FIN in
	 * FIN_WAIT2, which goes to CLOSE at once (tcp_time_wait), before the response is read. A
	 * send into a socket the peer closed meets the peer's RST inside the call (loopback hands
	 * it over in the call's own softirq, and the call takes it from the socket's backlog as it
	 * lets the socket go): the call's bytes are in write_seq already, and its return reports
	 * them, as its own.
	 * Read here, the state is still the old one; the peer's FIN, when it came (SOCK_DONE), is
	 * the last sequence number received.
	 */
	in_end = KREAD(struct tcp_sock, tp, rcv_nxt);
	if (fin_received((struct sock *)sk))
		in_end--;
	in_call = KREAD(struct sock, sk, sk_lock.owned) && in_followed_call();
	if (si->tcp && !(KREAD(struct sock, sk, __sk_common.skc_flags) & (1UL << SOCK_DEAD)) &&
	    (in_call || (__s32)(in_end - KREAD(struct tcp_sock, tp, copied_seq)) > 0)) {
		if (!in_call) {
			e = bpf_map_lookup_elem(&scratch, &zero);
			if (!e)
				return 0;
			/* Settled on the old state, whose FIN correction is known; nothing is sent after. */
			emit_unseen(ctx, (__u64)si->tgid << 32, e, si, sk, si->fd, HT_DIR_NONE, 0);
			si->out_seq = KREAD(struct tcp_sock, tp, write_seq);
		}
		si->in_end = in_end;
		si->closed = 1;
		return 0;
	}
	end_connection(ctx, HT_SYS_NONE, sk, si, false);
	return 0;
}
