// SPDX-License-Identifier: GPL-2.0
/*
 * Attach method socket-tracepoint (6.3+): the socket send and receive tracepoints.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
#ifndef HT_LEGACY /* 6.3+ only, where the modern build is loaded */
/*
 * ---- Attach method: socket tracepoints (6.3+) ----
 * sock:sock_send_length and sock:sock_recv_length fire when a socket send or receive returns,
 * and only then: no other syscall on the machine runs anything (a hook on every syscall makes
 * the kernel take its slow exit path for all of them, traced or not). The call's arguments are
 * still in the saved user registers, as for raw-tracepoint. Accepts and connects are not seen:
 * a connection is found at its first bytes. Closes are seen as the TCP state reaching CLOSE.
 */

/* Event: socket `sk` of the current task sent (HT_DIR_OUT) or received `ret` bytes. */
static __always_inline int on_sock_io(void *ctx, struct sock *sk, int ret, int flags, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_sock_info *si;
	struct ht_inflight in;
	struct ht_call c = {};
	struct pt_regs *regs;
	__u8 syscall;

	/* A peek is read again later. */
	if ((flags & MSG_PEEK) || !tgid_maybe_tracked(pid_tgid >> 32))
		return 0;
	if (ret <= 0) {
		/*
		 * No bytes: the call a connection kept past CLOSE waited for may end it (no close()
		 * is seen here). A would-block return, the common one, never comes after CLOSE.
		 */
		if (ret != -EAGAIN) {
			si = bpf_map_lookup_elem(&sockets, &(__u64){ (__u64)sk });
			if (si)
				end_if_done(ctx, (__u64)sk, si);
		}
		return 0;
	}
	/*
	 * The socket's entry first: one whose last call was this process's, as nearly every one's
	 * is, spares the hash of processes (only calls of tracked processes set it).
	 */
	si = bpf_map_lookup_elem(&sockets, &(__u64){ (__u64)sk });
	if (!(si && si->tgid == pid_tgid >> 32) && !tgid_tracked(pid_tgid >> 32))
		return 0;
	/*
	 * --port left it out: nothing to copy. (A Unix entry may be a freed socket's, at this
	 * address: entry_from_regs tells.)
	 */
	if (si && si->left_out && si->tcp)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	syscall = io_syscall(SYSCALL_NR(regs));
	/* splice(2) into a socket sends through sock_sendmsg (6.5+): its bytes, in the pipe's pages. */
	if (SYSCALL_NR(regs) == NR_splice)
		syscall = dir == HT_DIR_OUT ? HT_SYS_SPLICE_OUT : HT_SYS_SPLICE_IN;
	if (syscall == HT_SYS_NONE || syscall_direction(syscall) != dir) {
		/*
		 * Not a call followed here (io_uring): a TCP socket's bytes are measured at its next
		 * event (emit_unseen); a followed Unix socket's are a hole here; a Unix socket not
		 * followed yet is counted. A sendmmsg's or recvmmsg's messages are copied when it
		 * returns (syscalls:sys_exit_sendmmsg, sys_exit_recvmmsg).
		 */
		__u32 zero = 0;
		struct ht_data_event *e;

		if (is_mmsg(SYSCALL_NR(regs)))
			return 0;
		if (si && !si->tcp) {
			e = bpf_map_lookup_elem(&scratch, &zero);
			if (e)
				emit_hole(ctx, pid_tgid, e, si, si->fd, dir, ret);
		} else if (!si && followed_kind(sk) && sk->__sk_common.skc_family == AF_UNIX) {
			count_drop(HT_DROP_OTHER_IO);
		}
		return 0;
	}
	CALL_FROM_REGS(&c, syscall, regs);
	/*
	 * A followed TCP socket, the common case, by its sock alone: no walk of the fd table. Its
	 * entry cannot be stale: TCP passes through CLOSE, which ends it, before a sock is freed.
	 * (A Unix socket's entry, or one kept past CLOSE, is checked against the fd's socket:
	 * entry_from_regs.)
	 */
	if (si && si->tcp && !si->closed && !call_peeks(&c) && call_msg_iovecs(&c)) {
		if (si->tgid != pid_tgid >> 32 || si->fd != c.fd) {
			si->tgid = pid_tgid >> 32;
			si->fd = c.fd;
		}
		in.buf = c.buf;
		in.conn_id = si->conn_id;
		in.sk = (__u64)sk;
		in.fd = c.fd;
		in.iovcnt = c.count;
		in.syscall = c.syscall;
	} else {
		si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, (__u64)sk);
		if (!si)
			return 0;
	}
	/* A splice into a socket: its bytes are in the pipe's buffers until sock_sendmsg returns. */
	emit_call_data(ctx, pid_tgid, &in, ret, syscall_vectored(syscall), si,
		       splice_span(syscall,
				   syscall == HT_SYS_SPLICE_OUT ? PT_REGS_PARM1_SYSCALL(regs) : PT_REGS_PARM3_SYSCALL(regs),
				   ret, span_room()));
	return 0;
}

/*
 * Event: TCP socket `sk` handed bytes to its process (tcp_rcv_space_adjust, after a receive or a
 * splice out of it). A splice(2) out of a socket passes no socket tracepoint (tcp_splice_read):
 * its bytes are the socket's copied_seq's advance, credited here as a splice's, at once (at the
 * connection's next event they would come late, or never for its last message).
 */
static __always_inline int on_tcp_consumed(void *ctx, struct sock *sk)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_pipe_span *span = span_room();
	struct ht_sock_info *si;
	struct ht_inflight in = {};
	struct pt_regs *regs;
	__s32 n;

	/* Every receive of a tracked process comes here: the hash lookup only for a splice. */
	if (!tgid_maybe_tracked(pid_tgid >> 32))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (SYSCALL_NR(regs) != NR_splice || !tgid_tracked(pid_tgid >> 32))
		return 0;
	si = bpf_map_lookup_elem(&sockets, &(__u64){ (__u64)sk });
	if (!si) {
		/*
		 * Its first bytes (no accept is seen here): all it gave its process are this splice's,
		 * unless the pipe holds fewer, which came before it was followed.
		 */
		struct pipe_inode_info *pipe = pipe_of_fd(PT_REGS_PARM3_SYSCALL(regs));
		struct ht_call c = {};

		n = pipe && span ? pipe_newest(pipe, tcp_bytes_consumed(sk), span) : 0;
		if (n <= 0)
			return 0;
		call_from_args(&c, HT_SYS_SPLICE_IN, PT_REGS_PARM1_SYSCALL(regs), 0, PT_REGS_PARM3_SYSCALL(regs), 0);
		si = entry_from_regs(ctx, pid_tgid, n, &c, &in, (__u64)sk);
		if (!si)
			return 0;
	} else {
		if (!si->tcp)
			return 0;
		n = data_seq_in(sk) - si->in_seq;
		if (n <= 0)
			return 0;
		in.conn_id = si->conn_id;
		in.sk = (__u64)sk;
		in.fd = PT_REGS_PARM1_SYSCALL(regs);
		in.syscall = HT_SYS_SPLICE_IN;
	}
	/* tcp_read_sock put them into the pipe before it let TCP adjust the receive space. */
	emit_call_data(ctx, pid_tgid, &in, n, false, si,
		       splice_span(HT_SYS_SPLICE_IN, PT_REGS_PARM3_SYSCALL(regs), n, span));
	return 0;
}

SEC("tp_btf/tcp_rcv_space_adjust")
int PROG(N(sock_tcp_consumed), struct sock *sk)
{
	return on_tcp_consumed(ctx, sk);
}

SEC("tp_btf/sock_recv_length")
int PROG(N(sock_recv_length), struct sock *sk, int ret, int flags)
{
	return on_sock_io(ctx, sk, ret, flags, HT_DIR_IN);
}

SEC("tp_btf/sock_send_length")
int PROG(N(sock_send_length), struct sock *sk, int ret, int flags)
{
	return on_sock_io(ctx, sk, ret, flags, HT_DIR_OUT);
}

#endif /* HT_LEGACY */
