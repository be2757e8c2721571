// SPDX-License-Identifier: GPL-2.0
/*
 * Pipes: the bytes splice(2) moves between a followed socket and a pipe are never in user
 * memory, only in the pages of the pipe's buffers. Reading them takes each page's place in the
 * kernel's direct map, which kernel address randomization moves at every boot: user space finds
 * it at start (src/attach/layout.rs) with the probe program below, and where it could not, the
 * bytes are counted as moved by splice, not copied.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
#define S_IFIFO 0010000
#define HT_PAGE_SIZE 4096

/* Where the kernel maps memory, set by user space after load; 0: not known. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_layout);
} layout SEC(".maps");

/* The open file behind `fd` of the current process, or NULL. */
static __always_inline struct file *file_of_fd(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = KREAD(struct task_struct, task, files);
	struct fdtable *fdt = KREAD(struct files_struct, files, fdt);
	struct file **fds = KREAD(struct fdtable, fdt, fd);
	struct file *file = NULL;

	if (fd < 0 || fd >= KREAD(struct fdtable, fdt, max_fds))
		return NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]))
		return NULL;
	return file;
}

/* The pipe behind `fd` of the current process, or NULL when it is not one. */
static __always_inline struct pipe_inode_info *pipe_of_fd(__s32 fd)
{
	struct file *file = file_of_fd(fd);
	struct inode *inode;

	if (!file)
		return NULL;
	inode = BPF_CORE_READ(file, f_inode);
	if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFIFO)
		return NULL;
	return BPF_CORE_READ(file, private_data);
}

/*
 * Buffers of a pipe's ring whose bytes are copied: a splice moves at most the ring's (16 by
 * default, up to 256 where a program grows the pipe, as Go's io.Copy does).
 */
#define HT_PIPE_BUFS 256

/* Where a walk of a pipe's buffers (struct ht_walk) starts. */
struct ht_pipe_span {
	__u64 bufs;  /* the array of struct pipe_buffer (a ring) */
	__u32 first; /* ring index of the first buffer */
	__u32 count; /* buffers to walk */
	__u32 mask;  /* ring size - 1 */
	__u32 skip;  /* bytes of the first buffer before the span */
};

/*
 * Where a splice's bytes are, in a map rather than on the stack: the verifier does not track a
 * map's contents, so a walk back over a pipe's buffers does not leave it one state per count of
 * buffers to check the copy after in (5.10's gave up: too many instructions).
 */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_pipe_span);
} spans SEC(".maps");

static __always_inline struct ht_pipe_span *span_room(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&spans, &zero);
}

/* Whether the pages' place is known: the bytes of pipes can be read. */
static __always_inline struct ht_layout *known_layout(void)
{
	__u32 zero = 0;
	struct ht_layout *l = bpf_map_lookup_elem(&layout, &zero);

	return l && l->direct_map ? l : NULL;
}

/* The address of slot `index` of ring `bufs`. */
static __always_inline __u64 pipe_slot(__u64 bufs, __u32 index, __u32 mask)
{
	return bufs + (__u64)(index & mask) * bpf_core_type_size(struct pipe_buffer);
}

/*
 * Buffer `index` of ring `bufs` (mask `mask`): the address its bytes start at in the direct map
 * (`direct_map`, `vmemmap`: the layout) and their number, or false when it cannot be read.
 */
static __always_inline bool pipe_buffer_bytes(__u64 direct_map, __u64 vmemmap, __u64 bufs, __u32 index,
					      __u32 mask, __u64 *addr, __u32 *len)
{
	struct pipe_buffer *buf = (struct pipe_buffer *)pipe_slot(bufs, index, mask);
	__u64 page = (__u64)BPF_CORE_READ(buf, page);

	if (!page || page < vmemmap)
		return false;
	*len = BPF_CORE_READ(buf, len);
	*addr = direct_map + (page - vmemmap) / bpf_core_type_size(struct page) * HT_PAGE_SIZE +
		BPF_CORE_READ(buf, offset);
	return true;
}

/* The buffers a pipe holds now, from its tail: what a splice out of it moves next. */
static __always_inline bool pipe_waiting_span(struct pipe_inode_info *pipe, struct ht_pipe_span *s)
{
	__u32 head = BPF_CORE_READ(pipe, head), tail = BPF_CORE_READ(pipe, tail);

	s->bufs = (__u64)BPF_CORE_READ(pipe, bufs);
	s->mask = BPF_CORE_READ(pipe, ring_size) - 1;
	s->first = tail;
	s->count = head - tail;
	s->skip = 0;
	return s->bufs && s->count && s->count <= HT_PIPE_BUFS;
}

/*
 * The buffers that hold the last `n` bytes put into a pipe, into `s`: what a splice into it just
 * added, found walking back from its head. Returns how many of the `n` bytes it holds: fewer
 * when it holds fewer (`s` then spans them all), or when they are in more than HT_PIPE_BUFS
 * buffers (0).
 */
static __always_inline __u32 pipe_newest(struct pipe_inode_info *pipe, __u32 n, struct ht_pipe_span *s)
{
	__u32 head = BPF_CORE_READ(pipe, head), tail = BPF_CORE_READ(pipe, tail), sum = 0;

	s->bufs = (__u64)BPF_CORE_READ(pipe, bufs);
	s->mask = BPF_CORE_READ(pipe, ring_size) - 1;
	s->skip = 0;
	if (!s->bufs)
		return 0;
	for (__u32 k = 1; k <= HT_PIPE_BUFS; k++) {
		struct pipe_buffer *buf;

		if (head - tail < k) {
			s->first = tail;
			s->count = k - 1;
			return sum;
		}
		buf = (struct pipe_buffer *)pipe_slot(s->bufs, head - k, s->mask);
		sum += BPF_CORE_READ(buf, len);
		if (sum >= n) {
			s->first = head - k;
			s->count = k;
			s->skip = sum - n;
			return n;
		}
	}
	return 0;
}

/*
 * A splice (`syscall`) of `n` bytes between a socket and pipe `fd_pipe`: where its bytes are in
 * the pipe's buffers, into `s`; NULL when they cannot be read. Called where the bytes are still
 * there: a splice into a socket before the pipe lets them go, one out of it after it added them.
 */
static __always_inline const struct ht_pipe_span *splice_span(__u8 syscall, __s32 fd_pipe, __u32 n,
								struct ht_pipe_span *s)
{
	struct pipe_inode_info *pipe;

	if ((syscall != HT_SYS_SPLICE_IN && syscall != HT_SYS_SPLICE_OUT) || !s || !known_layout())
		return NULL;
	pipe = pipe_of_fd(fd_pipe);
	if (!pipe)
		return NULL;
	if (syscall == HT_SYS_SPLICE_OUT ? pipe_waiting_span(pipe, s) : pipe_newest(pipe, n, s) == n)
		return s;
	return NULL;
}

/*
 * A splice from a pipe into a socket lets the pipe's buffers go as it sends their bytes: where
 * its return is seen after that (every method but socket-tracepoint), its entry keeps a copy of
 * the buffers it may send (their pages stay: the socket holds them until they are sent), keyed
 * by thread. The copy is of the kernel's struct pipe_buffer, so that one walk reads either.
 */
#define HT_SNAP_BUFS 16
#define HT_PIPE_BUFFER_ROOM 64

struct ht_splice_snap {
	__u32 count;
	__u32 pad;
	__u8 raw[HT_SNAP_BUFS * HT_PIPE_BUFFER_ROOM];
};

SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, struct ht_splice_snap);
} splices SEC(".maps");

/* The buffers of `pipe` that a splice into a socket by thread `pid_tgid` may send, kept. */
static __always_inline void keep_waiting_buffers(__u64 pid_tgid, struct pipe_inode_info *pipe, void *room)
{
	struct ht_splice_snap *snap = room;
	__u64 size = bpf_core_type_size(struct pipe_buffer);
	struct ht_pipe_span s;

	if (size > HT_PIPE_BUFFER_ROOM || !pipe_waiting_span(pipe, &s))
		return;
	snap->count = 0;
	for (__u32 i = 0; i < HT_SNAP_BUFS; i++) {
		if (i >= s.count)
			break;
		if (bpf_probe_read_kernel(snap->raw + i * size, size, (void *)pipe_slot(s.bufs, s.first + i, s.mask)))
			break;
		snap->count++;
	}
	if (bpf_map_update_elem(&splices, &pid_tgid, snap, BPF_ANY))
		count_drop(HT_DROP_INFLIGHT_FULL);
}

/* The buffers kept at the entry of thread `pid_tgid`'s splice, as a span; NULL if none. */
static __always_inline const struct ht_pipe_span *kept_buffers(__u64 pid_tgid, struct ht_pipe_span *s)
{
	struct ht_splice_snap *snap = bpf_map_lookup_elem(&splices, &pid_tgid);

	if (!snap)
		return NULL;
	s->bufs = (__u64)snap->raw;
	s->first = 0;
	s->count = snap->count < HT_SNAP_BUFS ? snap->count : HT_SNAP_BUFS;
	s->mask = HT_SNAP_BUFS - 1;
	s->skip = 0;
	return s;
}

/* Places probe_layout looks at per run for user space's page. */
#define HT_PROBE_TRIES 256

/*
 * raw-tracepoint sees no splice enter: by the return of a splice into a socket, the pipe's
 * buffers it sent say where their bytes ended, not where they began. Where they came from a
 * splice out of a followed socket (a relay: Go's io.Copy, HAProxy) or a write of a tracked
 * process, that call's return noted each buffer (keyed by its slot in the ring), and the
 * buffers sent are rebuilt from the notes.
 */
GLOBAL(const volatile __u8 note_spliced_buffers, 0);

struct ht_slot_note {
	__u64 page;
	__u32 offset;
	__u32 len;
};

SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ht_slot_note);
} slot_notes SEC(".maps");

/* The buffers rebuilt for one splice (per CPU: used within one program run). */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_splice_snap);
} rebuilt SEC(".maps");

/* Note the buffers of span `s`, which a splice out of a followed socket just filled. */
static __always_inline void note_spliced_in(const struct ht_pipe_span *s)
{
	__u32 skip = s->skip;

	if (!note_spliced_buffers)
		return;
	for (__u32 k = 0; k < HT_SNAP_BUFS; k++) {
		struct pipe_buffer *buf;
		struct ht_slot_note note;
		__u64 slot;

		if (k >= s->count)
			break;
		slot = pipe_slot(s->bufs, s->first + k, s->mask);
		buf = (struct pipe_buffer *)slot;
		note.page = (__u64)BPF_CORE_READ(buf, page);
		note.offset = BPF_CORE_READ(buf, offset) + skip;
		note.len = BPF_CORE_READ(buf, len) - skip;
		skip = 0;
		bpf_map_update_elem(&slot_notes, &slot, &note, BPF_ANY);
	}
}

/*
 * A tracked process wrote `n` bytes into `fd`: where it is a pipe, note the buffers that hold
 * them, each whole from where it starts now (a write adds to the last buffer while it has room),
 * for a splice of them into a followed socket: a server that fills a pipe and splices it out.
 * A global function: checked once, not in the program of every syscall's exit that calls it.
 * Scalars only, as 5.10 needs.
 */
__noinline int N(ht_note_pipe_write)(__s32 fd, __u32 n)
{
	struct ht_pipe_span *s = span_room();
	struct pipe_inode_info *pipe;

	if (!note_spliced_buffers || !s || !known_layout())
		return 0;
	pipe = pipe_of_fd(fd);
	if (!pipe || !pipe_newest(pipe, n, s))
		return 0;
	s->skip = 0;
	note_spliced_in(s);
	return 0;
}

/* Write a struct pipe_buffer of `page`, `offset`, `len` as entry `i` of `snap`. */
static __always_inline void put_buffer(struct ht_splice_snap *snap, __u32 i, __u64 page, __u32 offset, __u32 len)
{
	__u64 at = (__u64)(i & (HT_SNAP_BUFS - 1)) * bpf_core_type_size(struct pipe_buffer);

	if (bpf_core_type_size(struct pipe_buffer) > HT_PIPE_BUFFER_ROOM)
		return;
	*(__u64 *)(snap->raw + at + bpf_core_field_offset(struct pipe_buffer, page)) = page;
	*(__u32 *)(snap->raw + at + bpf_core_field_offset(struct pipe_buffer, offset)) = offset;
	*(__u32 *)(snap->raw + at + bpf_core_field_offset(struct pipe_buffer, len)) = len;
}

/*
 * The `ret` bytes a splice from `pipe` into a socket just sent, rebuilt from the notes of the
 * buffers it sent as a span `s` (see note_spliced_in); NULL where a buffer had no note.
 */
static __always_inline const struct ht_pipe_span *rebuild_sent(struct pipe_inode_info *pipe, __u32 ret,
								 struct ht_pipe_span *s)
{
	__u32 head = BPF_CORE_READ(pipe, head), tail = BPF_CORE_READ(pipe, tail), zero = 0;
	__u32 mask = BPF_CORE_READ(pipe, ring_size) - 1, part = 0, sum = 0, n = 0;
	__u64 bufs = (__u64)BPF_CORE_READ(pipe, bufs), page = 0, slot;
	struct ht_splice_snap *snap = bpf_map_lookup_elem(&rebuilt, &zero);
	struct ht_slot_note *note, *partial = NULL;
	struct pipe_buffer *buf;

	if (!note_spliced_buffers || !snap || !bufs)
		return NULL;
	/* The buffer at the tail, if the splice sent part of it. */
	if (head != tail) {
		slot = pipe_slot(bufs, tail, mask);
		buf = (struct pipe_buffer *)slot;
		page = (__u64)BPF_CORE_READ(buf, page);
		partial = bpf_map_lookup_elem(&slot_notes, &slot);
		if (partial && partial->page == page && BPF_CORE_READ(buf, offset) > partial->offset)
			part = BPF_CORE_READ(buf, offset) - partial->offset;
	}
	/* The buffers it sent whole, before the tail: newest first. */
	for (__u32 k = 1; k <= HT_SNAP_BUFS; k++) {
		if (sum + part >= ret)
			break;
		slot = pipe_slot(bufs, tail - k, mask);
		buf = (struct pipe_buffer *)slot;
		note = bpf_map_lookup_elem(&slot_notes, &slot);
		if (!note || note->page != (__u64)BPF_CORE_READ(buf, page))
			return NULL;
		sum += note->len;
		n = k;
	}
	if (sum + part != ret)
		return NULL;
	for (__u32 i = 0; i < HT_SNAP_BUFS; i++) {
		if (i >= n)
			break;
		slot = pipe_slot(bufs, tail - n + i, mask);
		note = bpf_map_lookup_elem(&slot_notes, &slot);
		if (!note)
			return NULL;
		put_buffer(snap, i, note->page, note->offset, note->len);
		bpf_map_delete_elem(&slot_notes, &slot);
	}
	if (part && partial && n < HT_SNAP_BUFS) {
		put_buffer(snap, n, page, partial->offset, part);
		partial->offset += part;
		partial->len -= part;
		n++;
	}
	s->bufs = (__u64)snap->raw;
	s->first = 0;
	s->count = n;
	s->mask = HT_SNAP_BUFS - 1;
	s->skip = 0;
	return s;
}

/*
 * Where the `ret` bytes that thread `pid_tgid`'s splice from pipe `fd_pipe` into a socket sent
 * are, at its return: the buffers its entry kept, or those rebuilt from notes; NULL if neither.
 */
static __always_inline const struct ht_pipe_span *sent_buffers(__u64 pid_tgid, __s32 fd_pipe, __u32 ret,
								 struct ht_pipe_span *s)
{
	struct pipe_inode_info *pipe;

	if (!s)
		return NULL;
	if (kept_buffers(pid_tgid, s))
		return s;
	if (!note_spliced_buffers || !known_layout())
		return NULL;
	pipe = pipe_of_fd(fd_pipe);
	return pipe ? rebuild_sent(pipe, ret, s) : NULL;
}

/*
 * Run by user space (BPF_PROG_TEST_RUN, in its own process), never attached: it answers what
 * user space asks to find the direct map (src/attach/layout.rs). args[0] 0: the page of the
 * first buffer of user space's pipe args[1], into `probe_page`; 1: the first of the args[5]
 * (at most HT_PROBE_TRIES) addresses args[1] + i * args[2] whose 16 bytes are args[3] and
 * args[4], into `probe_page`; 2: the address of the calling task's task_struct (slab memory, so
 * in the direct map), into `probe_page`. Returns 0, or 1 when there is no answer.
 */
SEC("raw_tp")
int N(probe_layout)(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct ht_layout *l = bpf_map_lookup_elem(&layout, &zero);
	struct pipe_inode_info *pipe;
	struct pipe_buffer *buf;
	struct ht_pipe_span s;
	__u64 bytes[2];

	if (!l)
		return 1;
	if (ctx->args[0] == 2) {
		l->probe_page = bpf_get_current_task();
		return 0;
	}
	if (ctx->args[0] == 1) {
		for (__u32 i = 0; i < HT_PROBE_TRIES; i++) {
			__u64 at = ctx->args[1] + i * ctx->args[2];

			if (i >= ctx->args[5])
				break;
			if (bpf_probe_read_kernel(bytes, sizeof(bytes), (void *)at))
				continue;
			if (bytes[0] == ctx->args[3] && bytes[1] == ctx->args[4]) {
				l->probe_page = at;
				return 0;
			}
		}
		return 1;
	}
	pipe = pipe_of_fd(ctx->args[1]);
	if (!pipe || !pipe_waiting_span(pipe, &s))
		return 1;
	buf = (struct pipe_buffer *)pipe_slot(s.bufs, s.first, s.mask);
	l->probe_page = (__u64)BPF_CORE_READ(buf, page);
	l->page_struct_size = bpf_core_type_size(struct page);
	return l->probe_page ? 0 : 1;
}
