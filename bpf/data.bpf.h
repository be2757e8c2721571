// SPDX-License-Identifier: GPL-2.0
/*
 * Receive and send calls, and their bytes: what a call moved, copied into chunk events (gathered
 * from the iovecs of a vectored call), and the holes where bytes moved unseen.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
/* Which way the bytes of receive or send `syscall` move. */
static __always_inline __u8 syscall_direction(__u8 syscall)
{
	switch (syscall) {
	case HT_SYS_WRITE:
	case HT_SYS_WRITEV:
	case HT_SYS_SENDTO:
	case HT_SYS_SENDMSG:
	case HT_SYS_SENDFILE:
	case HT_SYS_SPLICE_OUT:
	case HT_SYS_TLS_WRITE:
		return HT_DIR_OUT;
	}
	return HT_DIR_IN;
}

/* Whether the bytes of `syscall` never pass through user memory: only their number is sent. */
static __always_inline bool syscall_no_data(__u8 syscall)
{
	return syscall == HT_SYS_SENDFILE || syscall == HT_SYS_SPLICE_IN || syscall == HT_SYS_SPLICE_OUT;
}

/* Whether `syscall` moves its bytes through an iovec array. */
static __always_inline bool syscall_vectored(__u8 syscall)
{
	return syscall == HT_SYS_READV || syscall == HT_SYS_WRITEV || syscall == HT_SYS_RECVMSG ||
	       syscall == HT_SYS_SENDMSG;
}

/* A peek's bytes are received again by a later call: it is skipped. */
static __always_inline bool call_peeks(const struct ht_call *c)
{
	return (c->syscall == HT_SYS_RECVFROM || c->syscall == HT_SYS_RECVMSG) && (c->flags & MSG_PEEK);
}

/* The call's receive or send arguments, from the four syscall arguments they can use. */
static __always_inline void call_from_args(struct ht_call *c, __u8 syscall, __u64 a1, __u64 a2, __u64 a3,
					   __u64 a4)
{
	/* splice(fd_in, off_in, fd_out, ...): the socket end is fd_out when it sends. */
	c->fd = syscall == HT_SYS_SPLICE_OUT ? a3 : a1;
	c->buf = a2;
	c->syscall = syscall;
	c->count = syscall_vectored(syscall) && syscall != HT_SYS_RECVMSG && syscall != HT_SYS_SENDMSG ? a3 : 0;
	c->flags = syscall == HT_SYS_RECVMSG ? a3 : syscall == HT_SYS_RECVFROM ? a4 : 0;
}

/*
 * The call's arguments from the saved user registers `regs`: `P` is PT_REGS_PARM (direct loads,
 * for a BTF pointer) or PT_REGS_PARM..._CORE (probe reads).
 */
#define CALL_FROM_REGS(c, syscall, regs)                                                              \
	call_from_args(c, syscall, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs),           \
		       PT_REGS_PARM3_SYSCALL(regs), PT_REGS_PARM4_SYSCALL(regs))
#define CALL_FROM_REGS_CORE(c, syscall, regs)                                                         \
	call_from_args(c, syscall, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs), \
		       PT_REGS_PARM3_CORE_SYSCALL(regs), PT_REGS_PARM4_CORE_SYSCALL(regs))

/* recvmsg and sendmsg: their iovecs, from the user msghdr; false when it cannot be read. */
static __always_inline bool call_msg_iovecs(struct ht_call *c)
{
	struct user_msghdr m;

	if (c->syscall != HT_SYS_RECVMSG && c->syscall != HT_SYS_SENDMSG)
		return true;
	if (bpf_probe_read_user(&m, sizeof(m), (const void *)c->buf)) {
		count_drop(HT_DROP_READ_FAILED);
		return false;
	}
	c->buf = (__u64)m.msg_iov;
	c->count = m.msg_iovlen;
	return true;
}

/* Output one event with ring buffer flags `rb_flags`; a failure (buffer full) is counted. */
static __always_inline void output(void *ctx, void *data, __u64 size, __u64 rb_flags)
{
	long err;

	/*
	 * Bounded here, whatever path computed it: 5.10's verifier lost a data event's bound on
	 * one path of the tracepoint method's readv program ("R3 unbounded memory access").
	 * No path makes a larger event; were one to, it is lost like any that cannot be output.
	 */
	barrier_var(size);
	if (size > sizeof(struct ht_data_event)) {
		count_drop(HT_DROP_OUTPUT_FAILED);
		return;
	}
	if (use_ringbuf)
		err = bpf_ringbuf_output(&ring, data, size, rb_flags);
	else
		err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, data, size);
	if (err)
		count_drop(HT_DROP_OUTPUT_FAILED);
}

/* Send one event; a failure (buffer full) is counted here and, with perf, by user space too. */
static __always_inline void send_event(void *ctx, void *data, __u64 size)
{
	__u64 waiting = 0;
	bool wake = false;

	if (use_ringbuf) {
		/*
		 * Wake user space when this event takes the backlog past a multiple of wakeup_bytes,
		 * not whenever the backlog is over it: until user space runs, every event would
		 * wake it again, and a wakeup costs the traced process more than the copy.
		 */
		waiting = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
		wake = (waiting + size) / wakeup_bytes != waiting / wakeup_bytes;
	}
	output(ctx, data, size, wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* False when `tgid` is surely not tracked: an array lookup, cheaper than the hash's below. */
static __always_inline bool tgid_maybe_tracked(__u32 tgid)
{
	__u32 slot = tgid % HT_TGID_SLOTS;
	__u8 *set = bpf_map_lookup_elem(&tgid_slots, &slot);

	return set && *set;
}

static __always_inline bool tgid_tracked(__u32 tgid)
{
	return tgid_maybe_tracked(tgid) && bpf_map_lookup_elem(&tracked_tgids, &tgid) != NULL;
}

/* The current process's name (its main thread's) and the current thread's, into `h`. */
static __always_inline void name_caller(struct ht_event *h)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	BPF_CORE_READ_INTO(&h->comm, task, group_leader, comm);
	bpf_get_current_comm(h->thread, sizeof(h->thread));
}

static __always_inline void fill_header(struct ht_event *h, __u64 pid_tgid, __u8 kind, __u8 syscall,
					__s32 fd, __s64 ret, __u64 conn_id)
{
	h->ts_ns = bpf_ktime_get_ns();
	h->conn_id = conn_id;
	h->seq = 0;
	h->ret = ret;
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->fd = fd;
	h->offset = 0;
	h->len = 0;
	h->kind = kind;
	h->syscall = syscall;
	h->direction = HT_DIR_IN;
	h->flags = 0;
	/*
	 * Data events name no command as a rule: reading it was 6% of the programs' time per
	 * request (100 ns of 1,595). User space names them (tracker::names).
	 */
	if (kind == HT_EV_DATA) {
		__builtin_memset(h->comm, 0, sizeof(h->comm));
		__builtin_memset(h->thread, 0, sizeof(h->thread));
	} else {
		name_caller(h);
	}
}

/*
 * A data event of a thread other than the one the connection's events last named carries the
 * names (a worker thread serving what another accepted): user space then knows each data
 * event's thread, at a read of the names per thread and socket rather than per call.
 */
static __always_inline void name_new_caller(struct ht_event *h, struct ht_sock_info *si)
{
	if (si->named_tid == h->tid)
		return;
	si->named_tid = h->tid;
	name_caller(h);
}


/* A process event (exit, fork, exec): it belongs to no connection. */
static __always_inline void emit_process(void *ctx, __u32 tgid, __u8 kind, __u32 child_tgid, __u32 ns_pid,
					 __u64 cgroup)
{
	struct ht_process_event e;

	fill_header(&e.hdr, (__u64)tgid << 32 | tgid, kind, HT_SYS_NONE, -1, 0, 0);
	e.child_tgid = child_tgid;
	e.ns_pid = ns_pid;
	e.cgroup = cgroup;
	send_event(ctx, &e, sizeof(e));
}

/*
 * Send `n` bytes at user address `src` as one event. A chunk whose bytes cannot be read is still
 * sent, empty, so that user space sees a hole of known size rather than a gap in the sequence.
 */
static __always_inline void emit_chunk(void *ctx, struct ht_data_event *e, struct ht_sock_info *si,
				       __u64 src, __u64 n, __u32 offset, bool last)
{
	/* 64-bit and unsigned, so that the verifier keeps the bound for the copy below. */
	barrier_var(n);
	if (n > HT_CHUNK_BYTES)
		n = HT_CHUNK_BYTES;
	if (n && bpf_probe_read_user(e->data, n, (const void *)src)) {
		count_drop(HT_DROP_READ_FAILED);
		n = 0;
	}
	e->hdr.seq = next_seq(si);
	e->hdr.offset = offset;
	e->hdr.len = (__u32)n;
	e->hdr.flags = last ? HT_FLAG_LAST : 0;
	send_event(ctx, e, sizeof(e->hdr) + n);
}

/*
 * The bytes of a receive or send, walked one piece at a time into events of up to
 * HT_CHUNK_BYTES: a piece is what is left of the current iovec (or buffer), or what fills the
 * event, whichever is less, so one event gathers many small iovecs. The walk's position lives in
 * a map, whose contents the verifier does not track, so that the states one step's branches
 * leave match: each step costs the verifier the same instead of multiplying the next one's paths.
 */
struct ht_walk {
	__u64 iov;    /* user iovec array; 0: one buffer, at `base` (or a pipe's buffers) */
	__u64 base;   /* next byte of the current buffer or iovec */
	__u32 left;   /* bytes of it still to copy (within `keep`) */
	__u32 off;    /* bytes of the syscall walked: sent, or in the event being filled */
	__u32 keep;
	__u32 j;      /* next iovec (or pipe buffer) */
	__u32 iovcnt; /* iovecs (or pipe buffers) */
	__u32 fill;   /* bytes in the event being filled */
	/*
	 * sendmmsg/recvmmsg: the user mmsghdr array (0 otherwise), whose messages' iovecs are walked
	 * in turn, each to its msg_len, the bytes the kernel says it moved.
	 */
	__u64 msgs;
	__u32 msg;      /* next message */
	__u32 nmsg;     /* messages the call moved */
	__u32 msg_left; /* bytes of the current message still to walk */
	__u32 pad;
	/* A splice's bytes: the pipe's buffers, in kernel memory, where the user iovecs would be. */
	struct ht_pipe_span pipe;
	__u64 direct_map;
	__u64 vmemmap;
};

SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_walk);
} walks SEC(".maps");

/* What each step needs besides the walk: pointers, which a map cannot hold. */
struct ht_pieces {
	void *ctx;
	struct ht_data_event *e;
	struct ht_sock_info *si;
	struct ht_walk *w;
};

/* Send the event being filled, whose bytes end at the walk's `off`. */
static __always_inline void flush_piece(struct ht_pieces *p, bool last)
{
	struct ht_walk *w = p->w;
	__u64 n = w->fill;

	/* Never more than a chunk (see walk_step); the bound is for the verifier. */
	if (n > HT_CHUNK_BYTES)
		n = HT_CHUNK_BYTES;
	p->e->hdr.seq = next_seq(p->si);
	p->e->hdr.offset = w->off - (__u32)n;
	p->e->hdr.len = (__u32)n;
	p->e->hdr.flags = last ? HT_FLAG_LAST : 0;
	send_event(p->ctx, p->e, sizeof(p->e->hdr) + n);
	w->fill = 0;
}

/*
 * The walk's next pipe buffer, as the iovec of its bytes in the direct map (the span's first
 * without the bytes it skips); false when there is none or it cannot be read.
 */
static __always_inline bool next_pipe_buffer(struct ht_walk *w, struct iovec *v)
{
	__u64 addr;
	__u32 len, skip = w->pipe.skip;

	/* Past the span: what it holds was sent; user space counts the rest as not copied. */
	if (w->j >= w->pipe.count || w->j >= HT_PIPE_BUFS)
		return false;
	if (!pipe_buffer_bytes(w->direct_map, w->vmemmap, w->pipe.bufs, w->pipe.first + w->j, w->pipe.mask,
			       &addr, &len)) {
		count_drop(HT_DROP_READ_FAILED);
		return false;
	}
	w->pipe.skip = 0;
	if (skip > len)
		skip = len;
	v->iov_base = (void *)(addr + skip);
	v->iov_len = len - skip;
	return true;
}

/* What a step of the walk leaves its caller to do. */
enum ht_step {
	HT_STEP_MORE = 0,  /* nothing: step on */
	HT_STEP_FLUSH = 1, /* send the event being filled (full, or before a hole), step on */
	HT_STEP_DONE = 2,  /* send the event being filled, the last: all `keep` bytes walked */
	HT_STEP_STOP = 3,  /* send what was filled: an iovec could not be read */
};

/*
 * A step of a sendmmsg/recvmmsg walk: on to the next message, whose iovecs are walked next. An
 * empty message is a step of its own too.
 */
static __always_inline int next_message(struct ht_walk *w)
{
	struct mmsghdr m;

	if (w->msg >= w->nmsg || w->msg >= HT_MAX_IOV)
		return HT_STEP_STOP;
	if (bpf_probe_read_user(&m, sizeof(m), (const struct mmsghdr *)w->msgs + w->msg)) {
		count_drop(HT_DROP_READ_FAILED);
		return HT_STEP_STOP;
	}
	w->msg++;
	w->iov = (__u64)m.msg_hdr.msg_iov;
	w->iovcnt = m.msg_hdr.msg_iovlen;
	w->j = 0;
	w->msg_left = m.msg_len;
	return HT_STEP_MORE;
}

/*
 * One step: read the next iovec when the current one is done, then copy a piece of it into the
 * event at `fill`: what is left of the iovec, or what fills the event, or HT_PIECE_BYTES,
 * whichever is least. A piece that cannot be read is a hole: the event before it is sent first,
 * and the next one starts past it. Each step ends an iovec or a message, fills an event, copies
 * HT_PIECE_BYTES or flushes before a hole, so HT_WALK_STEPS steps suffice.
 */
static __always_inline int walk_step(struct ht_walk *w, struct ht_data_event *e)
{
	__u64 fill, n;

	if (w->off >= w->keep)
		return HT_STEP_DONE;
	if (!w->left) {
		struct iovec v;

		if (w->msgs && !w->msg_left)
			return next_message(w);
		if (w->pipe.bufs) {
			if (!next_pipe_buffer(w, &v))
				return HT_STEP_STOP;
		} else {
			if (!w->iov || w->j >= w->iovcnt || w->j >= HT_MAX_IOV)
				return HT_STEP_STOP;
			if (bpf_probe_read_user(&v, sizeof(v), (const struct iovec *)w->iov + w->j)) {
				count_drop(HT_DROP_READ_FAILED);
				return HT_STEP_STOP;
			}
		}
		w->j++;
		w->base = (__u64)v.iov_base;
		w->left = v.iov_len < w->keep - w->off ? v.iov_len : w->keep - w->off;
		if (w->msgs && w->left > w->msg_left)
			w->left = w->msg_left;
		if (!w->left)
			return HT_STEP_MORE;
	}
	/*
	 * The copy lands at `fill`, below HT_CHUNK_BYTES, and takes at most what fills the event
	 * and HT_PIECE_BYTES: the verifier sees only those bounds, and the scratch map's room past
	 * `data` is HT_PIECE_BYTES (a per-CPU value may not pass 32 KiB).
	 */
	fill = w->fill & (HT_CHUNK_BYTES - 1);
	n = HT_CHUNK_BYTES - fill;
	if (w->left < n)
		n = w->left;
	barrier_var(n);
	if (n > HT_PIECE_BYTES)
		n = HT_PIECE_BYTES;
	if (w->pipe.bufs ? bpf_probe_read_kernel(e->data + fill, n, (const void *)w->base)
			 : bpf_probe_read_user(e->data + fill, n, (const void *)w->base)) {
		if (fill)
			return HT_STEP_FLUSH; /* the same read, tried again at an empty event */
		count_drop(HT_DROP_READ_FAILED);
	} else {
		w->fill = fill + n;
	}
	w->off += n;
	w->base += n;
	w->left -= n;
	w->msg_left -= w->msgs ? n : 0;
	if (w->off >= w->keep)
		return HT_STEP_DONE;
	return w->fill >= HT_CHUNK_BYTES ? HT_STEP_FLUSH : HT_STEP_MORE;
}

/* Do what a step said; false when the walk is over. */
static __always_inline bool after_step(struct ht_pieces *p, int step)
{
	if (step == HT_STEP_MORE)
		return true;
	if (step == HT_STEP_FLUSH) {
		flush_piece(p, false);
		return true;
	}
	if (step == HT_STEP_DONE)
		flush_piece(p, true);
	else if (p->w->fill)
		flush_piece(p, false);
	return false;
}

/*
 * Each step ends an iovec or a message, fills an event, copies half a chunk or flushes before a
 * hole: a walk of `iov_steps` iovecs and messages takes at most this many steps.
 */
#define HT_WALK_STEPS(iov_steps) (2 * HT_MAX_CHUNKS + (iov_steps) + 1)
/*
 * iovecs and messages a sendmmsg/recvmmsg walk steps through: 1,024 messages (UIO_MAXIOV, all
 * the kernel takes) of one iovec each, or fewer of more. Past them, the rest is not copied.
 */
#define HT_MMSG_STEPS (2 * HT_MAX_IOV)

#ifdef HT_LEGACY
/* Steps of one call of ht_walk_steps. */
#define HT_LEGACY_STEPS 32

/*
 * Up to HT_LEGACY_STEPS steps of the current walk, until one leaves something to do. A global
 * function: without bpf_loop, the verifier checks it once per program rather than at every step
 * of the caller's loop (inlined, 256 steps took 77 s to load in a 5.10 guest). It takes scalars
 * only, as 5.10 requires, and finds the walk and the event in their maps.
 */
__noinline int ht_walk_steps(void)
{
	__u32 zero = 0;
	struct ht_walk *w = bpf_map_lookup_elem(&walks, &zero);
	struct ht_data_event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!w || !e)
		return HT_STEP_STOP;
	for (int i = 0; i < HT_LEGACY_STEPS; i++) {
		int step = walk_step(w, e);

		if (step != HT_STEP_MORE)
			return step;
	}
	return HT_STEP_MORE;
}
#else
/* A bpf_loop() callback: one step. */
static long emit_piece(__u64 k, void *data)
{
	struct ht_pieces *p = data;

	return after_step(p, walk_step(p->w, p->e)) ? 0 : 1;
}
#endif

/*
 * The walk of a call's `keep` bytes from its first: at user address `buf`, or at the iovecs
 * `iov` (`buf` 0; a splice's pipe buffers or a sendmmsg's messages, neither given, are set by
 * the caller). NULL when its map has none.
 */
static __always_inline struct ht_walk *new_walk(__u64 iov, __u32 iovcnt, __u64 buf, __u32 keep)
{
	__u32 zero = 0;
	struct ht_walk *w = bpf_map_lookup_elem(&walks, &zero);

	if (!w)
		return NULL;
	w->pipe.bufs = 0;
	w->msgs = 0;
	w->msg_left = 0;
	w->iov = iov;
	w->base = buf;
	w->left = buf ? keep : 0;
	w->off = 0;
	w->keep = keep;
	w->j = 0;
	w->iovcnt = iovcnt;
	w->fill = 0;
	return w;
}

/*
 * Walk `w` of `iov_steps` iovecs and messages at most (a constant), sending its bytes as
 * events; returns how many were walked (fewer than its `keep` when one could not be read).
 */
static __always_inline __u32 run_walk(void *ctx, struct ht_data_event *e, struct ht_sock_info *si,
				      struct ht_walk *w, __u32 iov_steps)
{
	struct ht_pieces p = { .ctx = ctx, .e = e, .si = si, .w = w };
#ifdef HT_LEGACY
	/*
	 * Each call ends at a flush or after HT_LEGACY_STEPS steps. The bound comes from
	 * capture_bytes (read-only: the verifier knows it, and walks no more calls than a walk of
	 * that many bytes can need: 42 with the default 64 KiB and 1,024 iovecs).
	 */
	__u32 chunks = (capture_bytes + HT_CHUNK_BYTES - 1) / HT_CHUNK_BYTES;
	__u32 calls = (2 * chunks + iov_steps + 1) / HT_LEGACY_STEPS + 2 * chunks + 2;

	for (int k = 0; k < HT_WALK_STEPS(HT_MMSG_STEPS) && k < calls; k++) {
		if (!after_step(&p, ht_walk_steps()))
			break;
	}
#else
	bpf_loop(HT_WALK_STEPS(iov_steps), emit_piece, &p, 0);
#endif
	return w->off;
}

/*
 * The header of the events of a `syscall` on `fd` of connection `si` that moved `ret` bytes;
 * returns how many of them are copied.
 */
static __always_inline __u32 start_call_event(struct ht_data_event *e, __u64 pid_tgid, __u8 syscall, __s32 fd,
					      __s64 ret, struct ht_sock_info *si)
{
	fill_header(&e->hdr, pid_tgid, HT_EV_DATA, syscall, fd, ret, si->conn_id);
	name_new_caller(&e->hdr, si);
	e->hdr.direction = syscall_direction(syscall);
	return ret < capture_bytes ? ret : capture_bytes;
}

/*
 * Send the `keep` bytes at user address `buf` (at the iovecs `iov`, when given; in the pipe
 * buffers of `pipe`, when given with the kernel's layout `l`) as events; returns how many were
 * walked (fewer than `keep` when an iovec could not be read).
 */
static __always_inline __u32 emit_pieces(void *ctx, struct ht_data_event *e, struct ht_sock_info *si,
					 const struct iovec *iov, __u32 iovcnt, __u64 buf, __u32 keep,
					 const struct ht_pipe_span *pipe, const struct ht_layout *l)
{
	struct ht_walk *w = new_walk((__u64)iov, iovcnt, buf, keep);

	if (!w)
		return 0;
	if (pipe && l) {
		w->pipe = *pipe;
		w->direct_map = l->direct_map;
		w->vmemmap = l->vmemmap;
	}
	return run_walk(ctx, e, si, w, HT_MAX_IOV);
}

/*
 * Send the `keep` bytes of the `nmsg` messages a sendmmsg or recvmmsg moved, at the user mmsghdr
 * array `msgs`, as events of one call; returns how many were walked.
 */
static __always_inline __u32 emit_messages(void *ctx, struct ht_data_event *e, struct ht_sock_info *si,
					   __u64 msgs, __u32 nmsg, __u32 keep)
{
	struct ht_walk *w = new_walk(0, 0, 0, keep);

	if (!w)
		return 0;
	w->msgs = msgs;
	w->msg = 0;
	w->nmsg = nmsg;
	return run_walk(ctx, e, si, w, HT_MMSG_STEPS);
}

/*
 * The `keep` (at most HT_GATHER_BYTES) bytes of a vectored call of at most HT_GATHER_IOV iovecs
 * as one event, their array read at once: the common small response (a head and its body
 * written together), cheaper than the walk. False, with nothing sent, when an iovec cannot be
 * read or there are more: the caller then walks them, which shows the holes.
 */
static __always_inline bool emit_gathered(void *ctx, struct ht_data_event *e, struct ht_sock_info *si,
					  const struct iovec *iov, __u32 iovcnt, __u64 keep)
{
	/* The iovecs, read at once (each user read costs), go after the room the bytes take. */
	struct iovec *iovs = (struct iovec *)(e->data + HT_GATHER_BYTES);
	/* 64-bit: a 32-bit value is widened in a copy, which the verifier bounds, not it. */
	__u64 count = iovcnt, off = 0;

	barrier_var(count);
	if (count > HT_GATHER_IOV)
		return false;
	/*
	 * The size again as a mask, which the verifier bounds wherever the value went: 6.1's lost
	 * the test's bound where the compiler had spilled `count` before it and read it back after
	 * (raw-tracepoint, in a path that inlined it a second time). The barrier keeps the compiler from dropping the mask.
	 */
	barrier_var(count);
	if (bpf_probe_read_user(iovs, (count & (2 * HT_GATHER_IOV - 1)) * sizeof(*iovs), iov))
		return false;
	for (int j = 0; j < HT_GATHER_IOV; j++) {
		struct iovec v;
		__u64 len;

		if (off >= keep || j >= count)
			break;
		v = iovs[j];
		len = v.iov_len < keep - off ? v.iov_len : keep - off;
		/*
		 * Bounds the verifier can add up, so that the copy stays inside e->data. The
		 * compiler would drop them as implied by `keep`: the barriers keep them.
		 */
		barrier_var(len);
		barrier_var(off);
		if (len > HT_GATHER_BYTES || off >= HT_GATHER_BYTES)
			return false;
		if (len && bpf_probe_read_user(e->data + off, len, v.iov_base))
			return false;
		off += len;
	}
	if (off < keep || off > HT_GATHER_BYTES)
		return false;
	e->hdr.seq = next_seq(si);
	e->hdr.offset = 0;
	e->hdr.len = off;
	e->hdr.flags = HT_FLAG_LAST;
	send_event(ctx, e, sizeof(e->hdr) + off);
	return true;
}

/*
 * Whether the peer's FIN arrived on `sk`: tcp_fin sets SOCK_DONE. (RCV_SHUTDOWN says nothing of
 * a FIN: a local close or shutdown sets it too.)
 */
static __always_inline bool fin_received(struct sock *sk)
{
	return KREAD(struct sock, sk, __sk_common.skc_flags) & (1UL << SOCK_DONE);
}

/*
 * TCP socket `sk`'s data bytes consumed by its process, as a sequence number: copied_seq, less
 * the peer's FIN once the process has read it (it is then the last sequence number received).
 * A server that shut its sending side down and closed before the client's FIN came (Python's
 * forking server) has RCV_SHUTDOWN from its own close and copied_seq at rcv_nxt: taking one off
 * there lost a byte of the count.
 */
static __always_inline __u32 data_seq_in(struct sock *sk)
{
	__u32 copied = KREAD(struct tcp_sock, sk, copied_seq);

	if (fin_received(sk) && copied == KREAD(struct tcp_sock, sk, rcv_nxt))
		return copied - 1;
	return copied;
}

/*
 * Connection `si`, followed from SYN_SENT, is established: where the peer's bytes start is
 * known now (the kernel sets copied_seq before the state), and nothing was read yet.
 */
static __always_inline void sync_syn_sent(struct ht_sock_info *si, struct sock *sk)
{
	si->in_seq = KREAD(struct tcp_sock, sk, copied_seq);
	si->syn_sent = 0;
}

/* Whether TCP state `state` comes only after our FIN was queued (it is in write_seq). */
static __always_inline bool fin_out_state(__u8 state)
{
	return state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_CLOSING || state == TCP_LAST_ACK ||
	       state == TCP_TIME_WAIT;
}

/*
 * TCP socket `sk`'s data bytes sent by its process: write_seq, less our FIN once it went out.
 * The state is read before `fin_out`, which on_sock_state sets before the state becomes CLOSE.
 */
static __always_inline __u32 data_seq_out(struct sock *sk, const struct ht_sock_info *si)
{
	__u32 written = KREAD(struct tcp_sock, sk, write_seq);
	__u8 state = KREAD(struct sock, sk, __sk_common.skc_state);

	if (fin_out_state(state) || (state == TCP_CLOSE && si->fin_out))
		return written - 1;
	return written;
}

/* A hole of `n` bytes in direction `dir` of connection `si`: bytes that moved unseen. */
static __always_inline void emit_hole(void *ctx, __u64 pid_tgid, struct ht_data_event *e, struct ht_sock_info *si,
				      __s32 fd, __u8 dir, __s32 n)
{
	if (si->left_out)
		return;
	fill_header(&e->hdr, pid_tgid, HT_EV_DATA, HT_SYS_NONE, fd, n, si->conn_id);
	name_new_caller(&e->hdr, si);
	e->hdr.direction = dir;
	e->hdr.seq = next_seq(si);
	e->hdr.flags = HT_FLAG_LAST | HT_FLAG_NO_DATA | HT_FLAG_UNSEEN;
	send_event(ctx, e, sizeof(e->hdr));
}

/* The stream positions of a TCP socket now, and the bytes each way that moved unseen before. */
struct ht_unseen {
	__u32 in_now;
	__u32 out_now;
	__s32 in;
	__s32 out;
};

/*
 * Bytes of TCP connection `si` that moved outside the calls followed since its last event
 * (io_uring, a splice out of the socket where it is not seen): the socket's
 * own sequence numbers say how many each way, less this call's `ret` bytes in direction `dir`,
 * which are already in them. Two threads receiving on one socket at once could make a
 * difference negative: it is then taken as none.
 */
static __always_inline void measure_unseen(struct ht_sock_info *si, __u64 sk, __u8 dir, long ret,
					   struct ht_unseen *u)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	u->in_now = KREAD(struct tcp_sock, tp, copied_seq);
	u->out_now = KREAD(struct tcp_sock, tp, write_seq);
	u->in = u->in_now - (dir == HT_DIR_IN ? (__u32)ret : 0) - si->in_seq;
	u->out = u->out_now - (dir == HT_DIR_OUT ? (__u32)ret : 0) - si->out_seq;
	/* Nearly always none: the FIN corrections, more reads, only where a difference shows. */
	if (u->in) {
		u->in_now = data_seq_in((struct sock *)sk);
		u->in = u->in_now - (dir == HT_DIR_IN ? (__u32)ret : 0) - si->in_seq;
	}
	if (u->out) {
		u->out_now = data_seq_out((struct sock *)sk, si);
		u->out = u->out_now - (dir == HT_DIR_OUT ? (__u32)ret : 0) - si->out_seq;
	}
}

/*
 * Each way's unseen bytes as a hole of that size, before the call's own bytes: a body keeps its
 * size and the parser its place.
 */
static __always_inline void emit_holes(void *ctx, __u64 pid_tgid, struct ht_data_event *e, struct ht_sock_info *si,
				       __s32 fd, const struct ht_unseen *u)
{
	if (u->in > 0)
		emit_hole(ctx, pid_tgid, e, si, fd, HT_DIR_IN, u->in);
	if (u->out > 0)
		emit_hole(ctx, pid_tgid, e, si, fd, HT_DIR_OUT, u->out);
}

/*
 * Bytes TCP connection `si` moved unseen before this event (measure_unseen), as holes: in the
 * call's own direction `dir` only (both where it has none: a close, the end). The other way's
 * sequence number may already count the bytes of a call another thread has made but whose
 * event is still to come (a relay's reader and writer: the response came back before the
 * request's send reached its exit), which would be counted twice, as a hole and as its bytes.
 * Bytes that did go by unseen that way are found by that way's next event, in their place.
 */
static __always_inline void emit_unseen(void *ctx, __u64 pid_tgid, struct ht_data_event *e, struct ht_sock_info *si,
					__u64 sk, __s32 fd, __u8 dir, long ret)
{
	struct ht_unseen u;

	if (!si->tcp)
		return;
	measure_unseen(si, sk, dir, ret, &u);
	if (dir == HT_DIR_OUT)
		u.in = 0;
	else
		si->in_seq = u.in_now;
	if (dir == HT_DIR_IN)
		u.out = 0;
	else
		si->out_seq = u.out_now;
	emit_holes(ctx, pid_tgid, e, si, fd, &u);
}

/*
 * The connection `si` of socket `sk` ended (`syscall`: how that was seen, HT_SYS_NONE when not
 * by a call of its process): bytes that moved unseen since its last event first (`stale`: the
 * sock at `sk` is another socket's now, which says nothing of this one), then the end, in its
 * sequence; and forget it. `si` is gone afterwards.
 *
 * Two CPUs can see one end at once (close() on one, the state change to CLOSE in softirq on
 * another, each holding the entry): the delete, atomic under the bucket's lock, picks the one
 * that reports it. The loser's pointer stays readable: a preallocated element is reused only by
 * a later insert, and its value is left as it was. The unseen bytes are measured before the
 * delete: a change to CLOSE that comes after it (on another CPU, or in a softirq nested in this
 * program) finds no entry to note that our FIN had gone (fin_out), and CLOSE's write_seq would
 * then count the FIN as a byte sent unseen (CI: 5.10, kprobe, a forking server's close).
 */
static __always_inline void end_connection(void *ctx, __u8 syscall, __u64 sk, struct ht_sock_info *si,
					   bool stale)
{
	/* Maybe in softirq, on another task's time: the event names the last user, thread unknown. */
	__u64 pid_tgid = syscall == HT_SYS_NONE ? (__u64)si->tgid << 32 : bpf_get_current_pid_tgid();
	struct ht_unseen unseen = {};
	struct ht_data_event *e;
	__u32 zero = 0;

	if (!stale && si->tcp && !si->left_out)
		measure_unseen(si, sk, HT_DIR_NONE, 0, &unseen);
	if (bpf_map_delete_elem(&sockets, &sk))
		return; /* another CPU reported this end */
	if (si->left_out)
		return;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	emit_holes(ctx, pid_tgid, e, si, si->fd, &unseen);
	fill_header(&e->hdr, pid_tgid, HT_EV_CLOSE, syscall, si->fd, 0, si->conn_id);
	e->hdr.seq = next_seq(si);
	send_event(ctx, e, sizeof(e->hdr));
}

/*
 * Connection `si`, kept past CLOSE (on_sock_state) for a call in progress or bytes not read yet,
 * ends once its process has read them, at the return of a call on it.
 */
static __always_inline void end_if_done(void *ctx, __u64 sk, struct ht_sock_info *si)
{
	if (si->closed && (__s32)(si->in_end - KREAD(struct tcp_sock, sk, copied_seq)) <= 0)
		end_connection(ctx, HT_SYS_NONE, sk, si, false);
}

/*
 * Copy the `ret` bytes a receive or send moved, up to capture_bytes, into events built in `e`.
 * `vectored` (readv, writev, recvmsg, sendmsg) is a constant of each return wrapper: `in->buf`
 * is then an iovec array. A splice's bytes are in the pipe's buffers `pipe` (NULL where they
 * cannot be read); sendfile's are not in memory we can name: one empty event says how many
 * there were.
 */
static __always_inline void emit_bytes(void *ctx, __u64 pid_tgid, const struct ht_inflight *in, long ret,
				       bool vectored, struct ht_sock_info *si, struct ht_data_event *e,
				       const struct ht_pipe_span *pipe)
{
	const struct iovec *iov = (const struct iovec *)in->buf;
	struct ht_layout *l = pipe ? known_layout() : NULL;
	__u32 keep = start_call_event(e, pid_tgid, in->syscall, in->fd, ret, si), off = 0;

	if (syscall_no_data(in->syscall) && !l) {
		e->hdr.seq = next_seq(si);
		e->hdr.flags = HT_FLAG_LAST | HT_FLAG_NO_DATA;
		send_event(ctx, e, sizeof(e->hdr));
		return;
	}

	if (l) {
		off = emit_pieces(ctx, e, si, NULL, 0, 0, keep, pipe, l);
	} else if (!vectored) {
		if (keep <= HT_CHUNK_BYTES)
			emit_chunk(ctx, e, si, in->buf, keep, 0, true);
		else
			emit_pieces(ctx, e, si, NULL, 0, in->buf, keep, NULL, NULL);
		return;
	} else {
		if (keep <= HT_GATHER_BYTES && emit_gathered(ctx, e, si, iov, in->iovcnt, keep))
			return;
		off = emit_pieces(ctx, e, si, iov, in->iovcnt, 0, keep, NULL, NULL);
	}
	/* An iovec or pipe buffer could not be read: close the series; user space counts the rest. */
	if (off < keep)
		emit_chunk(ctx, e, si, 0, 0, off, true);
}

/*
 * A call on connection `si` moved `ret` bytes (`in` says which call, on which socket; `pipe`:
 * for a splice, where its bytes are): the bytes that moved unseen before it, then its own. A
 * connection kept past CLOSE for its last bytes ends once they are read.
 */
static __always_inline void emit_call_data(void *ctx, __u64 pid_tgid, const struct ht_inflight *in, long ret,
					   bool vectored, struct ht_sock_info *si, const struct ht_pipe_span *pipe)
{
	struct ht_data_event *e;
	__u64 sk = in->sk;
	__u32 zero = 0;

	/* `si`: the socket, when the caller just looked it up; else it is checked again here. */
	if (!si)
		si = bpf_map_lookup_elem(&sockets, &sk);
	if (!si || si->conn_id != in->conn_id)
		return; /* ended (and maybe its memory reused) while the syscall was in flight */
	if (si->left_out)
		return;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	emit_unseen(ctx, pid_tgid, e, si, sk, in->fd, syscall_direction(in->syscall), ret);
	tls_in_call(pid_tgid, sk);
	emit_bytes(ctx, pid_tgid, in, ret, vectored, si, e, pipe);
	end_if_done(ctx, sk, si);
}

/* emit_call_data of a call whose bytes were in user memory (or not readable: sendfile). */
static __always_inline void emit_data(void *ctx, __u64 pid_tgid, const struct ht_inflight *in, long ret,
				      bool vectored, struct ht_sock_info *si)
{
	emit_call_data(ctx, pid_tgid, in, ret, vectored, si, NULL);
}
