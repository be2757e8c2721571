// SPDX-License-Identifier: GPL-2.0
/*
 * The events of a receive or send call entering and returning (with the user registers the
 * exit-side methods rebuild a call from), of splice and of sendmmsg/recvmmsg.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
/*
 * Event: receive or send call `c` entered; remember where its bytes are. A TCP socket not seen
 * being opened (open before tracing started, or opened by a call already in flight, which a
 * return probe attached meanwhile never sees) is followed from here on.
 */
static __always_inline int on_io_enter(void *ctx, struct ht_call *c)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_sock_info *si;
	struct ht_sock_ref ref;

	if (call_peeks(c) || !tgid_tracked(pid_tgid >> 32) || !sock_of_fd(c->fd, &ref) || !call_msg_iovecs(c))
		return 0;
	si = followed_socket(ctx, &ref, c->fd);
	if (!si && followable(&ref))
		si = track_socket(ctx, pid_tgid, c->fd, &ref, HT_EV_FOUND, c->syscall, 0,
				  tcp_bytes_consumed(ref.sk), tcp_bytes_written(ref.sk));
	if (si && !si->left_out)
		stash(pid_tgid, c->fd, c->buf, c->count, c->syscall, si->conn_id, (__u64)ref.sk);
	return 0;
}

/* Event: receive or send `syscall` entered with these arguments, in the syscall's order. */
static __always_inline int on_io_call(void *ctx, __u8 syscall, __u64 a1, __u64 a2, __u64 a3, __u64 a4)
{
	struct ht_call c = {};

	call_from_args(&c, syscall, a1, a2, a3, a4);
	return on_io_enter(ctx, &c);
}

/* Event: receive or send `syscall` entered; its arguments in the saved user registers `regs`. */
static __always_inline int on_io_regs(void *ctx, __u8 syscall, const struct pt_regs *regs)
{
	struct ht_call c = {};

	CALL_FROM_REGS(&c, syscall, regs);
	return on_io_enter(ctx, &c);
}

/*
 * A receive or send of a tracked process, `c`, returned `ret` > 0 bytes: what its entry would
 * have stashed goes into `in`, rebuilt from its arguments, which the saved user registers still
 * held; returns its socket, if it is one (and the call was not a peek). The raw tracepoint and
 * socket tracepoint methods work this way for every call; the others only for a call whose entry
 * was not seen (it was already blocked when tracing started). The bytes it moved are already
 * counted in the socket's totals. `expect_sk`: the socket the call used, when known.
 */
static __always_inline struct ht_sock_info *entry_from_regs(void *ctx, __u64 pid_tgid, long ret,
							    struct ht_call *c, struct ht_inflight *in,
							    __u64 expect_sk)
{
	__u64 moved_in = 0, moved_out = 0;
	struct ht_sock_info *si;
	struct ht_sock_ref ref;

	if (call_peeks(c) || !sock_of_fd(c->fd, &ref))
		return NULL;
	/* socket-tracepoint: another socket than the fd's is the kernel's own I/O in the call. */
	if (expect_sk && (__u64)ref.sk != expect_sk)
		return NULL;
	si = followed_socket(ctx, &ref, c->fd);
	if (!si) {
		if (!followable(&ref))
			return NULL;
		if (syscall_direction(c->syscall) == HT_DIR_IN)
			moved_in = ret;
		else
			moved_out = ret;
		si = track_socket(ctx, pid_tgid, c->fd, &ref, HT_EV_FOUND, c->syscall, 0,
				  tcp_bytes_consumed(ref.sk) - moved_in, tcp_bytes_written(ref.sk) - moved_out);
		if (!si)
			return NULL;
		/* Found on the way out: this call's bytes are already in the sequence numbers. */
		si->in_seq -= moved_in;
		si->out_seq -= moved_out;
	}
	if (!call_msg_iovecs(c))
		return NULL;
	in->buf = c->buf;
	in->conn_id = si->conn_id;
	in->sk = (__u64)ref.sk;
	in->fd = c->fd;
	in->iovcnt = c->count;
	in->syscall = c->syscall;
	return si;
}

/*
 * The current task's saved user registers, for the PT_REGS_*_CORE_SYSCALL readers. Before
 * bpf_task_pt_regs (5.15) and bpf_get_current_task_btf (5.11) their place is computed as the
 * kernel's task_pt_regs() does; a branch the verifier knows to be dead is not checked, so the
 * helpers may stay in the legacy build.
 */
static __always_inline struct pt_regs *current_user_regs(void)
{
#ifdef HT_LEGACY
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		/* x86-64 without KASAN: a 16 KiB kernel stack, the saved user registers at its top. */
		__u64 stack_top = (__u64)BPF_CORE_READ(task, stack) + 16384;

		return (struct pt_regs *)stack_top - 1;
	}
#endif
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl), and where the number is saved. */
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#define NR_read 0
#define NR_write 1
#define NR_close 3
#define NR_readv 19
#define NR_writev 20
#define NR_sendfile 40
#define NR_connect 42
#define NR_accept 43
#define NR_sendto 44
#define NR_recvfrom 45
#define NR_sendmsg 46
#define NR_recvmsg 47
#define NR_accept4 288
#define NR_splice 275
#define NR_recvmmsg 299
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_sendmmsg 307

/* Which of our receive and send syscalls `nr` is, or HT_SYS_NONE. */
static __always_inline __u8 io_syscall(long nr)
{
	switch (nr) {
	case NR_read:
		return HT_SYS_READ;
	case NR_readv:
	case NR_preadv2: /* at offset -1, the only one a socket takes: readv */
		return HT_SYS_READV;
	case NR_recvfrom:
		return HT_SYS_RECVFROM;
	case NR_recvmsg:
		return HT_SYS_RECVMSG;
	case NR_write:
		return HT_SYS_WRITE;
	case NR_writev:
	case NR_pwritev2:
		return HT_SYS_WRITEV;
	case NR_sendto:
		return HT_SYS_SENDTO;
	case NR_sendmsg:
		return HT_SYS_SENDMSG;
	case NR_sendfile:
		return HT_SYS_SENDFILE;
	}
	return HT_SYS_NONE;
}

/*
 * Whether the current task is a tracked process in one of the receive or send calls followed.
 * A socket held by a task while TCP changes its state is held by that task's call: packets
 * that came meanwhile wait in the socket's backlog, which the call works through as it lets
 * the socket go.
 */
static __always_inline bool in_followed_call(void)
{
	struct pt_regs *regs;

	if (!tgid_tracked(bpf_get_current_pid_tgid() >> 32))
		return false;
	regs = current_user_regs();
	return io_syscall(BPF_CORE_READ(regs, orig_ax)) != HT_SYS_NONE;
}

/*
 * A receive or send returned `ret` bytes (or an error). Its entry was stashed, or, where
 * `recover` names the syscall, its arguments are rebuilt from the saved user registers.
 * `vectored` is a constant of each wrapper, so that the verifier checks one copy path per program.
 */
static __always_inline int io_returned(void *ctx, long ret, bool vectored, __u8 recover)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_inflight *in, copy = {};

	in = bpf_map_lookup_elem(&inflight, &pid_tgid);
	if (in) {
		copy = *in;
		bpf_map_delete_elem(&inflight, &pid_tgid);
	} else {
		struct pt_regs *regs;
		struct ht_call c = {};

		if (recover == HT_SYS_NONE || ret <= 0 || !tgid_tracked(pid_tgid >> 32))
			return 0;
		regs = current_user_regs();
		CALL_FROM_REGS_CORE(&c, recover, regs);
		if (!entry_from_regs(ctx, pid_tgid, ret, &c, &copy, 0))
			return 0;
	}
	if (ret > 0 && copy.conn_id)
		emit_data(ctx, pid_tgid, &copy, ret, vectored, NULL);
	return 0;
}

/*
 * Event: a receive or send returned, its entry stashed (kprobe, fentry: their return probes never
 * fire for a call entered before they were attached).
 */
static __always_inline int on_io_return(void *ctx, long ret, bool vectored)
{
	return io_returned(ctx, ret, vectored, HT_SYS_NONE);
}

/*
 * Event: receive or send `syscall` returned (syscalls:* tracepoints); a call whose entry was not
 * seen (blocked when tracing started) is recovered from the saved registers.
 */
static __always_inline int on_io_exit(void *ctx, long ret, __u8 syscall)
{
	return io_returned(ctx, ret, syscall_vectored(syscall), syscall);
}

/*
 * Event: splice(2) from `fd_in` to `fd_out` entered. From a pipe into a socket, the pipe's
 * buffers are kept until it returns (see keep_waiting_buffers).
 */
static __always_inline int on_splice_enter(__u64 fd_in, __u64 fd_out)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pipe_inode_info *pipe;
	struct ht_data_event *e;
	struct ht_sock_ref ref;
	__u32 zero = 0;

	if (!tgid_tracked(pid_tgid >> 32) || !known_layout() || !sock_of_fd(fd_out, &ref))
		return 0;
	pipe = pipe_of_fd(fd_in);
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (pipe && e)
		keep_waiting_buffers(pid_tgid, pipe, e->data);
	return 0;
}

/*
 * Event: splice(2) from `fd_in` to `fd_out` moved `ret` bytes. Each end that is a followed socket
 * gets events of that many bytes, copied from the pipe's pages: out of a socket from the pipe's
 * newest buffers, into one from those its entry kept. Where they cannot be read (the direct map
 * not found, no entry seen) an event says how many bytes there were, so that a body keeps its
 * true size and the parser stays in step.
 */
static __always_inline int on_splice_done(void *ctx, long ret, __u64 fd_in, __u64 fd_out)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_pipe_span *span = span_room();
	struct ht_call c = {};
	struct ht_sock_info *si;
	struct ht_inflight in;

	if (!tgid_tracked(pid_tgid >> 32))
		return 0;
	if (ret > 0) {
		call_from_args(&c, HT_SYS_SPLICE_IN, fd_in, 0, fd_out, 0);
		si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, 0);
		if (si && span && splice_span(HT_SYS_SPLICE_IN, fd_out, ret, span)) {
			emit_call_data(ctx, pid_tgid, &in, ret, false, si, span);
			note_spliced_in(span);
		} else if (si) {
			emit_data(ctx, pid_tgid, &in, ret, false, si);
		}
		call_from_args(&c, HT_SYS_SPLICE_OUT, fd_in, 0, fd_out, 0);
		si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, 0);
		if (si)
			emit_call_data(ctx, pid_tgid, &in, ret, false, si, sent_buffers(pid_tgid, fd_in, ret, span));
	}
	bpf_map_delete_elem(&splices, &pid_tgid);
	return 0;
}

/* splice(2) returned: its ends from the saved user registers (probe reads). */
static __always_inline int on_splice_return(void *ctx, long ret)
{
	struct pt_regs *regs;

	if (!tgid_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	regs = current_user_regs();
	return on_splice_done(ctx, ret, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs));
}

/* Messages of one sendmmsg/recvmmsg whose sizes are read; bytes of later ones are counted only. */
#define HT_MMSG_READ 8

/*
 * Event: sendmmsg(2) (`dir` HT_DIR_OUT) or recvmmsg(2) on `fd` returned `ret` messages, whose
 * sizes the kernel wrote into `msgvec`. The first message's bytes are copied from its iovecs,
 * as a sendmsg's or recvmsg's: the verifier checks each copy path on its own, and a loop of
 * them (bpf_loop within bpf_loop) took raw-tracepoint's program past its limit. The other
 * messages whose sizes are read are a hole of their total size, in order; those past
 * HT_MMSG_READ are measured from a TCP socket's sequence numbers at its next event
 * (emit_unseen), and counted on a Unix socket, which has none.
 */
static __always_inline int on_mmsg_done(void *ctx, long ret, __s32 fd, __u64 msgvec, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_inflight in = {};
	struct ht_data_event *e;
	struct ht_sock_info *si;
	struct ht_sock_ref ref;
	struct user_msghdr h;
	__u32 zero = 0, len, first = 0;
	__s64 total = 0;
	int read = 0;

	if (ret <= 0 || !tgid_tracked(pid_tgid >> 32) || !sock_of_fd(fd, &ref))
		return 0;
	si = followed_socket(ctx, &ref, fd);
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!si || si->left_out || !e)
		return 0;
	for (int i = 0; i < HT_MMSG_READ; i++) {
		if (i >= ret)
			break;
		if (bpf_probe_read_user(&len, sizeof(len),
					(void *)(msgvec + i * sizeof(struct mmsghdr) +
						 __builtin_offsetof(struct mmsghdr, msg_len)))) {
			count_drop(HT_DROP_READ_FAILED);
			break;
		}
		if (i == 0)
			first = len;
		total += len;
		read = i + 1;
	}
	if (ret > read)
		count_drop(HT_DROP_OTHER_IO);
	/* What moved unseen before the call; then its messages, in order. */
	emit_unseen(ctx, pid_tgid, e, si, (__u64)ref.sk, fd, dir, total);
	if (first && !bpf_probe_read_user(&h, sizeof(h), (void *)msgvec)) {
		in.buf = (__u64)h.msg_iov;
		in.conn_id = si->conn_id;
		in.sk = (__u64)ref.sk;
		in.fd = fd;
		in.iovcnt = h.msg_iovlen;
		in.syscall = dir == HT_DIR_OUT ? HT_SYS_SENDMSG : HT_SYS_RECVMSG;
		emit_bytes(ctx, pid_tgid, &in, first, true, si, e, NULL);
		total -= first;
	}
	if (total > 0)
		emit_hole(ctx, pid_tgid, e, si, fd, dir, total);
	end_if_done(ctx, (__u64)ref.sk, si);
	return 0;
}

/* sendmmsg(2) or recvmmsg(2) returned: its fd and message vector from the saved registers. */
static __always_inline int on_mmsg_return(void *ctx, long ret, __u8 dir)
{
	struct pt_regs *regs;

	if (ret <= 0 || !tgid_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	regs = current_user_regs();
	return on_mmsg_done(ctx, ret, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs), dir);
}
