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
 * The socket at `fd` (into `ref`) of a tracked process's `syscall` that returned `ret` > 0 bytes,
 * if it is one to follow: followed from here on if it was not, the call's bytes already counted
 * in its totals. `expect_sk`: the socket the call used, when known.
 */
static __always_inline struct ht_sock_info *socket_of_call(void *ctx, __u64 pid_tgid, long ret, __s32 fd,
							   __u8 syscall, struct ht_sock_ref *ref, __u64 expect_sk)
{
	__u64 moved_in = 0, moved_out = 0;
	struct ht_sock_info *si;

	if (!sock_of_fd(fd, ref))
		return NULL;
	/* socket-tracepoint: another socket than the fd's is the kernel's own I/O in the call. */
	if (expect_sk && (__u64)ref->sk != expect_sk)
		return NULL;
	si = followed_socket(ctx, ref, fd);
	if (si)
		return si;
	if (!followable(ref))
		return NULL;
	if (syscall_direction(syscall) == HT_DIR_IN)
		moved_in = ret;
	else
		moved_out = ret;
	si = track_socket(ctx, pid_tgid, fd, ref, HT_EV_FOUND, syscall, 0, tcp_bytes_consumed(ref->sk) - moved_in,
			  tcp_bytes_written(ref->sk) - moved_out);
	if (!si)
		return NULL;
	/* Found on the way out: this call's bytes are already in the sequence numbers. */
	si->in_seq -= moved_in;
	si->out_seq -= moved_out;
	return si;
}

/*
 * A receive or send of a tracked process, `c`, returned `ret` > 0 bytes: what its entry would
 * have stashed goes into `in`, rebuilt from its arguments, which the saved user registers still
 * held; returns its socket, if it is one (and the call was not a peek). The raw tracepoint and
 * socket tracepoint methods work this way for every call; the others only for a call whose entry
 * was not seen (it was already blocked when tracing started). `expect_sk`: the socket the call
 * used, when known.
 */
static __always_inline struct ht_sock_info *entry_from_regs(void *ctx, __u64 pid_tgid, long ret,
							    struct ht_call *c, struct ht_inflight *in,
							    __u64 expect_sk)
{
	struct ht_sock_info *si;
	struct ht_sock_ref ref;

	if (call_peeks(c))
		return NULL;
	si = socket_of_call(ctx, pid_tgid, ret, c->fd, c->syscall, &ref, expect_sk);
	if (!si || !call_msg_iovecs(c))
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
#define NR_tee 276
#define NR_vmsplice 278
#define NR_recvmmsg 299
#define NR_preadv2 327
#define NR_pwritev2 328
#define NR_sendmmsg 307

/* Whether syscall `nr` is sendmmsg or recvmmsg. */
static __always_inline bool is_mmsg(long nr)
{
	return nr == NR_sendmmsg || nr == NR_recvmmsg;
}

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

/*
 * The bytes the first `n` messages at the user mmsghdr array `msgvec` moved (their msg_len, which
 * the kernel wrote), up to the first that cannot be read. A global function: the verifier checks
 * its loop once, not in every program that inlines the call's path. Scalars only, as 5.10 needs.
 */
__noinline __u64 N(ht_mmsg_bytes)(__u64 msgvec, __u32 n)
{
	__u64 total = 0;
	__u32 len;

	for (int i = 0; i < HT_MAX_IOV; i++) {
		if (i >= n)
			break;
		if (bpf_probe_read_user(&len, sizeof(len),
					(void *)(msgvec + i * sizeof(struct mmsghdr) +
						 __builtin_offsetof(struct mmsghdr, msg_len)))) {
			count_drop(HT_DROP_READ_FAILED);
			break;
		}
		total += len;
	}
	return total;
}

/*
 * Event: sendmmsg(2) (`dir` HT_DIR_OUT) or recvmmsg(2) on `fd` returned `ret` messages, whose
 * sizes the kernel wrote into `msgvec`: their bytes, in order, as one call's (a sendmsg's or a
 * recvmsg's), each message's iovecs walked to its size. What a walk cannot reach (more than
 * HT_MMSG_STEPS messages and iovecs) is counted in user space as not copied.
 */
static __always_inline int on_mmsg_done(void *ctx, long ret, __s32 fd, __u64 msgvec, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u8 syscall = dir == HT_DIR_OUT ? HT_SYS_SENDMSG : HT_SYS_RECVMSG;
	struct ht_data_event *e;
	struct ht_sock_info *si;
	struct ht_sock_ref ref;
	__u32 zero = 0, keep, off;
	__u64 total;

	if (ret <= 0 || !tgid_tracked(pid_tgid >> 32))
		return 0;
	total = N(ht_mmsg_bytes)(msgvec, ret);
	si = socket_of_call(ctx, pid_tgid, total, fd, syscall, &ref, 0);
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!si || si->left_out || !e)
		return 0;
	/* What moved unseen before the call; then its bytes. */
	emit_unseen(ctx, pid_tgid, e, si, (__u64)ref.sk, fd, dir, total);
	if (total) {
		keep = start_call_event(e, pid_tgid, syscall, fd, total, si);
		off = emit_messages(ctx, e, si, msgvec, ret, keep);
		/* A message or iovec could not be read: close the series; user space counts the rest. */
		if (off < keep)
			emit_chunk(ctx, e, si, 0, 0, off, true);
	}
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
