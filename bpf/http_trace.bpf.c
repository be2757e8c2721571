// SPDX-License-Identifier: GPL-2.0
/*
 * http-trace: follow the TCP sockets that tracked processes accept, connect or use, and copy the
 * bytes they receive and send into a BPF ring buffer, or a perf event array where the kernel has
 * no ring buffer.
 *
 * The logic lives in one static function per event (accept returned, connect entered and
 * returned, receive or send entered and returned, close entered or returned, socket I/O done,
 * TCP state reached CLOSE, process exited, forked); a receive or send call travels between them
 * as one struct ht_call. Below them, thin SEC() wrappers adapt each attach method's context:
 * socket tracepoints, raw syscall tracepoints, kprobes (the product card's design), fentry/fexit,
 * and the syscalls:* tracepoints. User space picks a method by turning autoload off for the other
 * methods' programs.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "http_trace.h"

/*
 * The raw-tracepoint and socket-tracepoint methods tell syscalls apart by their x86-64 numbers
 * and the fentry method hooks __x64_sys_* entry points: other architectures need their own.
 */
#ifndef __TARGET_ARCH_x86
#error "http-trace's BPF programs support x86-64 only (syscall numbers, __x64_sys_* functions)"
#endif

/*
 * The object holds two builds of this file, linked into one by build.rs: the modern build, for
 * kernels with bpf_loop() (5.17+, which implies the atomics that return a value, 5.12, and
 * callbacks, 5.13), and the legacy build (HT_LEGACY, compiled with -mcpu=v2) for older kernels
 * down to 5.10: their verifier refuses those instruction forms even in code that never runs, so
 * no load-time branch can hide them from it. The legacy build's programs end in _legacy and it
 * declares the maps and globals extern, so both builds share one set. User space loads one
 * build's programs, chosen by probing the kernel for bpf_loop().
 */
#ifdef HT_LEGACY
#define N(name) name##_legacy
#define SHARED extern
#define GLOBAL(decl, init) extern decl
#else
#define N(name) name
#define SHARED
#define GLOBAL(decl, init) decl = init
char LICENSE[] SEC("license") = "GPL";
#endif
/*
 * Field `field` of kernel object `ptr`, of type `type`, on the paths every followed call takes.
 * Where the kernel has bpf_rdonly_cast() (6.2+), each read is a load the verifier lets fault
 * safely, not a call of bpf_probe_read_kernel(); the legacy build's kernels lack it. The test is
 * a constant at load: the verifier drops the path not taken.
 */
#ifdef HT_LEGACY
#define KREAD(type, ptr, field) BPF_CORE_READ((type *)(ptr), field)
#else
#define KREAD(type, ptr, field)                                                                              \
	(bpf_ksym_exists(bpf_rdonly_cast) ? bpf_core_cast((void *)(ptr), type)->field                     \
					  : BPF_CORE_READ((type *)(ptr), field))
#endif
/* The libbpf program macros paste their name unexpanded: these expand N() first. */
#define PROG(name, ...) BPF_PROG(name, ##__VA_ARGS__)
#define KPROBE(name, ...) BPF_KPROBE(name, ##__VA_ARGS__)
#define KRETPROBE(name, ...) BPF_KRETPROBE(name, ##__VA_ARGS__)
#define KSYSCALL(name, ...) BPF_KSYSCALL(name, ##__VA_ARGS__)

/* From uapi headers, which vmlinux.h does not carry. */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EAGAIN 11
#define EINPROGRESS 115
#define MSG_PEEK 2
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11
/* No direction: emit_unseen called where no call moved bytes. */
#define HT_DIR_NONE 2

/* Bytes kept per syscall (--capture-bytes); the rest is counted, not copied. */
GLOBAL(const volatile __u32 capture_bytes, HT_CHUNK_BYTES);
/* Send events through the BPF ring buffer (5.8+) rather than the perf event array. */
GLOBAL(const volatile __u8 use_ringbuf, 0);
/*
 * Ring buffer only: wake user space each time the bytes waiting pass another multiple of this,
 * not per event; user space also drains the ring on its own poll timer, so a quiet connection's
 * last event waits at most that.
 */
GLOBAL(const volatile __u64 wakeup_bytes, 1);

/* Follow the processes that tracked processes fork (--no-children turns it off). */
GLOBAL(const volatile __u8 follow_children, 1);

/* --name and --container: look at every program started for the ones to trace. */
GLOBAL(const volatile __u8 watch_execs, 0);

/*
 * --port: a connection with none of the ports in watched_ports at either end is left out here,
 * its bytes never copied (the user-space filter would hide all its exchanges).
 */
GLOBAL(const volatile __u8 filter_ports, 0);

#ifndef HT_LEGACY
/* Instances only so that the skeleton generates these types for user space. */
struct ht_event _ht_event = {};
struct ht_conn_event _ht_conn_event = {};
struct ht_unix_conn_event _ht_unix_conn_event = {};
enum ht_limits _ht_limits = 0;
enum ht_event_kind _ht_event_kind = 0;
enum ht_syscall _ht_syscall = 0;
enum ht_direction _ht_direction = 0;
enum ht_flags _ht_flags = 0;
enum ht_drop _ht_drop = 0;
#endif

/* Read by user space at exit. */
GLOBAL(__u64 drops[HT_DROP_MAX], {});
GLOBAL(__u64 next_conn_id, 0);

/*
 * A followed connection, keyed by its struct sock: every fd and every process that uses the
 * socket (dup, fork, SCM_RIGHTS) reaches the same entry, and a reused fd number names another
 * socket, so it can never join two connections. A freed sock's memory is reused for new ones:
 * each entry keeps its socket's inode number, which get_next_ino() gives every socket anew (2^32
 * sockets before a number comes back), and an entry whose number is not that of the socket now
 * at its address is a stale one, ended then and never joined to the new socket. (The socket
 * cookie would do too, but tracing programs may read it only from 5.12.)
 */
struct ht_sock_info {
	__u64 conn_id;
	__u64 seq;  /* next event sequence number of this connection */
	__u64 ino;  /* its socket's inode number */
	__u32 tgid; /* the process that used it last: named by an end seen on no task's time */
	__s32 fd;   /* the fd it used */
	/*
	 * TCP: the socket's copied_seq and write_seq after the last bytes followed. A difference
	 * at the next event is bytes that moved outside the calls followed.
	 */
	__u32 in_seq;
	__u32 out_seq;
	/* closed: the sequence number past the last data byte received (see on_sock_state) */
	__u32 in_end;
	__u8 tcp;
	/*
	 * TCP reached CLOSE while the process still holds the socket and has bytes to read: the
	 * entry stays until they are read, checked by inode number as a Unix one's is.
	 */
	__u8 closed;
	/*
	 * Left a state that had sent our FIN for CLOSE: a close() racing that change on another CPU
	 * can read CLOSE already, whose write_seq says nothing of a FIN (a reset gets there too).
	 */
	__u8 fin_out;
	/*
	 * Followed from SYN_SENT (a non-blocking connect): copied_seq is 0 until the SYN-ACK sets
	 * it, so in_seq is set then (on_sock_state, at ESTABLISHED).
	 */
	__u8 syn_sent;
	/*
	 * On no port --port names (filter_ports): nothing of it is sent. The entry stays, so that
	 * its calls find it rather than follow it anew, and goes as a followed one's does.
	 */
	__u8 left_out;
};

/* The socket behind an fd: its sock, file and inode (whose number is read only when needed). */
struct ht_sock_ref {
	struct sock *sk;
	struct file *file;
	struct inode *inode;
	__u64 ino;
};

/* A syscall in flight on a tracked socket, from entry to return, per thread. */
struct ht_inflight {
	__u64 buf;     /* user buffer, or the iovec array when vectored */
	__u64 conn_id; /* 0 for connect: the socket is not tracked yet */
	__u64 sk;      /* the socket's struct sock */
	__s32 fd;
	__u32 iovcnt;
	__u8 syscall;  /* enum ht_syscall, which says the direction */
	__u8 pad[7];
};

/*
 * A receive or send call as its entry had it, or as the saved user registers still hold it: which
 * syscall, and its arguments.
 */
struct ht_call {
	__u64 buf;    /* the buffer; readv, writev: the iovec array; recvmsg, sendmsg: the msghdr */
	__u64 count;  /* readv, writev: the iovec count */
	__u32 flags;  /* recvfrom, recvmsg: MSG_* flags */
	__s32 fd;
	__u8 syscall; /* enum ht_syscall */
	__u8 pad[7];
};

/* Processes to trace (tgid), filled by user space from --pid. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} tracked_tgids SEC(".maps");

SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct ht_sock_info);
} sockets SEC(".maps");

SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct ht_inflight);
} inflight SEC(".maps");

/* --name: the command names (TASK_COMM_LEN bytes, NUL-padded) whose programs are traced. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} watched_names SEC(".maps");

/* --container: the cgroups (kernfs ids: their directories' inode numbers) watched for programs. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} watched_cgroups SEC(".maps");

/*
 * A first, cheap filter in front of tracked_tgids, which every syscall on the machine would
 * otherwise look up: slot tgid % HT_TGID_SLOTS is set for each tracked process (and never
 * cleared: another may share it). An array lookup is inlined, with no helper call.
 */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HT_TGID_SLOTS);
	__type(key, __u32);
	__type(value, __u8);
} tgid_slots SEC(".maps");

/* --port: 1 at each port (host byte order) a connection must have at one end to be followed. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} watched_ports SEC(".maps");

/* A connection's opening being built: a Unix one's is too big for the BPF stack. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_unix_conn_event);
} conn_scratch SEC(".maps");

/* An event being built: too big for the 512-byte BPF stack. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_data_event);
} scratch SEC(".maps");

/* Events, on kernels without the ring buffer. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* Events, where the kernel has it; user space sizes it and skips creating it elsewhere. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 1024);
} ring SEC(".maps");

/* A counter for user space; the atomic add returns nothing, which every kernel takes. */
static __always_inline void count_drop(enum ht_drop what)
{
	if (what < HT_DROP_MAX)
		__sync_fetch_and_add(&drops[what], 1);
}

/*
 * The legacy build's counter locks (below). Defined by the modern build, which does not use it:
 * the legacy build may define no map of its own, or clang places its extern maps in its .maps
 * section and the linker takes them for conflicting definitions.
 */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} counter_locks SEC(".maps");

#ifdef HT_LEGACY
/*
 * Sequence numbers and connection ids without an atomic that returns a value (5.12+), and
 * without bpf_spin_lock, which tracing programs may not use: an insert with BPF_NOEXIST into a
 * hash map is atomic (under the bucket's lock), so it is a try-lock. Its holder runs with
 * preemption off, so a wait lasts a few map operations; a counter bumped without the lock after
 * HT_LOCK_TRIES is counted (HT_DROP_SEQ_UNLOCKED): its events' order may be wrong.
 */

#define HT_LOCK_TRIES 256

/*
 * Global functions, which the verifier checks once per program rather than at every call and
 * path: inlined, the retry loop took 5.10's verifier past its 1M-instruction limit. They take
 * scalars only, as 5.10 requires.
 */
__noinline int ht_lock(__u64 key)
{
	__u8 one = 1;

	for (int i = 0; i < HT_LOCK_TRIES; i++) {
		if (bpf_map_update_elem(&counter_locks, &key, &one, BPF_NOEXIST) == 0)
			return 1;
	}
	count_drop(HT_DROP_SEQ_UNLOCKED);
	return 0;
}

__noinline int ht_unlock(__u64 key)
{
	bpf_map_delete_elem(&counter_locks, &key);
	return 0;
}

/* `*counter`, then incremented, under the lock `key`. */
static __always_inline __u64 locked_fetch_inc(__u64 *counter, __u64 key)
{
	volatile __u64 *c = counter;
	int locked = ht_lock(key);
	__u64 v = *c;

	*c = v + 1;
	if (locked)
		ht_unlock(key);
	return v;
}

/* A connection's sequence locks on its id (never 0); connection ids lock on 0. */
#define next_seq(si) locked_fetch_inc(&(si)->seq, (si)->conn_id)
#define new_conn_id() (locked_fetch_inc(&next_conn_id, 0) + 1)
#else
#define next_seq(si) __sync_fetch_and_add(&(si)->seq, 1)
#define new_conn_id() (__sync_fetch_and_add(&next_conn_id, 1) + 1)
#endif

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

/* Send one event; a failure (buffer full) is counted here and, with perf, by user space too. */
static __always_inline void send_event(void *ctx, void *data, __u64 size)
{
	long err;

	if (use_ringbuf) {
		/*
		 * Wake user space when this event takes the backlog past a multiple of wakeup_bytes,
		 * not whenever the backlog is over it: until user space runs, every event would
		 * wake it again, and a wakeup costs the traced process more than the copy.
		 */
		__u64 waiting = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA);
		bool wake = (waiting + size) / wakeup_bytes != waiting / wakeup_bytes;

		err = bpf_ringbuf_output(&ring, data, size,
					 wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	} else {
		err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, data, size);
	}
	if (err)
		count_drop(HT_DROP_OUTPUT_FAILED);
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
	 * Data events name no command: reading it was 6% of the programs' time per request (100 ns
	 * of 1,595). User space takes it from the connection's opening (tracker::name_call).
	 */
	if (kind == HT_EV_DATA)
		__builtin_memset(h->comm, 0, sizeof(h->comm));
	else
		bpf_get_current_comm(h->comm, sizeof(h->comm));
}


/* A process event (exit, fork): it belongs to no connection. */
static __always_inline void emit_process(void *ctx, __u32 tgid, __u8 kind, __s64 ret, __u32 ns_pid)
{
	struct ht_event h;

	fill_header(&h, (__u64)tgid << 32 | tgid, kind, HT_SYS_NONE, -1, ret, 0);
	h.offset = ns_pid;
	send_event(ctx, &h, sizeof(h));
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
 * The bytes of a receive or send, walked one chunk at a time: a chunk never spans two iovecs,
 * and each iovec is split at multiples of HT_CHUNK_BYTES from its start. The walk's position
 * lives in a map, whose contents the verifier does not track: where a bounded loop stands in for
 * bpf_loop(), every step is verified again, and the states that one step's branches leave then
 * match, so each step costs the same instead of multiplying the next one's paths.
 */
struct ht_walk {
	__u64 iov;    /* user iovec array; 0: one buffer, at `base` */
	__u64 base;   /* next byte of the current buffer or iovec */
	__u32 left;   /* bytes of it still to send (within `keep`) */
	__u32 off;    /* where `base` is in the syscall's bytes */
	__u32 keep;
	__u32 j;      /* next iovec */
	__u32 iovcnt;
	__u32 pad;
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

/*
 * One chunk, reading the next iovec first when the current one is done; 1 (stop) when all `keep`
 * bytes are sent, or the iovecs ran out (more than HT_MAX_IOV, or unreadable: the caller closes
 * the series). Each step sends a whole chunk or finishes an iovec, so HT_MAX_PIECES steps always
 * suffice.
 */
static long emit_piece(__u64 k, void *data)
{
	struct ht_pieces *p = data;
	struct ht_walk *w = p->w;
	__u64 n;

	if (w->off >= w->keep)
		return 1;
	if (!w->left) {
		struct iovec v;

		if (!w->iov || w->j >= w->iovcnt || w->j >= HT_MAX_IOV)
			return 1;
		if (bpf_probe_read_user(&v, sizeof(v), (const struct iovec *)w->iov + w->j)) {
			count_drop(HT_DROP_READ_FAILED);
			return 1;
		}
		w->j++;
		w->base = (__u64)v.iov_base;
		w->left = v.iov_len < w->keep - w->off ? v.iov_len : w->keep - w->off;
		if (!w->left)
			return 0;
	}
	n = w->left < HT_CHUNK_BYTES ? w->left : HT_CHUNK_BYTES;
	emit_chunk(p->ctx, p->e, p->si, w->base, n, w->off, w->off + n >= w->keep);
	w->base += n;
	w->off += n;
	w->left -= n;
	return 0;
}

/* Chunks of `keep` bytes take one step each, and each iovec at most one more. */
#define HT_MAX_PIECES (HT_MAX_CHUNKS + HT_MAX_IOV + 1)

/*
 * Send the `keep` bytes at user address `buf` (at the iovecs `iov`, when given) as chunks;
 * returns how many were sent. With bpf_loop() a step is verified once; the legacy build's
 * bounded loop takes its bound from capture_bytes (read-only, so the verifier knows it and walks
 * no more steps than a call can need: 13 for a vectored call with the default 64 KiB).
 */
static __always_inline __u32 emit_pieces(void *ctx, struct ht_data_event *e, struct ht_sock_info *si,
					 const struct iovec *iov, __u32 iovcnt, __u64 buf, __u32 keep)
{
	__u32 zero = 0;
	struct ht_walk *w = bpf_map_lookup_elem(&walks, &zero);
	struct ht_pieces p = { .ctx = ctx, .e = e, .si = si, .w = w };

	if (!w)
		return 0;
	w->iov = (__u64)iov;
	w->base = buf;
	w->left = iov ? 0 : keep;
	w->off = 0;
	w->keep = keep;
	w->j = 0;
	w->iovcnt = iovcnt;
#ifdef HT_LEGACY
	__u32 steps = (capture_bytes + HT_CHUNK_BYTES - 1) / HT_CHUNK_BYTES + (iov ? HT_MAX_IOV : 0) + 1;

	for (int k = 0; k < HT_MAX_PIECES && k < steps; k++) {
		if (emit_piece(k, &p))
			break;
	}
#else
	bpf_loop(HT_MAX_PIECES, emit_piece, &p, 0);
#endif
	return w->off;
}

/*
 * The `keep` (at most HT_GATHER_BYTES) bytes of a vectored call as one event rather than one per
 * iovec: a response's head and body written together are one event. False, with nothing sent,
 * when an iovec cannot be read or there are more than HT_MAX_IOV: the caller then sends them
 * one by one, which shows the holes.
 */
static __always_inline bool emit_gathered(void *ctx, struct ht_data_event *e, struct ht_sock_info *si,
					  const struct iovec *iov, __u32 iovcnt, __u64 keep)
{
	/* The iovecs, read at once (each user read costs), go after the room the bytes take. */
	struct iovec *iovs = (struct iovec *)(e->data + HT_GATHER_BYTES);
	/* 64-bit: a 32-bit value is widened in a copy, which the verifier bounds, not it. */
	__u64 count = iovcnt, off = 0;

	barrier_var(count);
	if (count > HT_MAX_IOV)
		count = HT_MAX_IOV;
	if (bpf_probe_read_user(iovs, count * sizeof(*iovs), iov))
		return false;
	for (int j = 0; j < HT_MAX_IOV; j++) {
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
 * (io_uring, sendmmsg/recvmmsg, a splice out of the socket where it is not seen): the socket's
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

/* Bytes TCP connection `si` moved unseen before this event (measure_unseen), as holes. */
static __always_inline void emit_unseen(void *ctx, __u64 pid_tgid, struct ht_data_event *e, struct ht_sock_info *si,
					__u64 sk, __s32 fd, __u8 dir, long ret)
{
	struct ht_unseen u;

	if (!si->tcp)
		return;
	measure_unseen(si, sk, dir, ret, &u);
	si->in_seq = u.in_now;
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
 * is then an iovec array. sendfile's bytes are not in user memory: one empty event says how
 * many there were.
 */
static __always_inline void emit_bytes(void *ctx, __u64 pid_tgid, const struct ht_inflight *in, long ret,
				       bool vectored, struct ht_sock_info *si, struct ht_data_event *e)
{
	const struct iovec *iov = (const struct iovec *)in->buf;
	__u32 keep, off = 0;

	fill_header(&e->hdr, pid_tgid, HT_EV_DATA, in->syscall, in->fd, ret, si->conn_id);
	e->hdr.direction = syscall_direction(in->syscall);
	if (syscall_no_data(in->syscall)) {
		e->hdr.seq = next_seq(si);
		e->hdr.flags = HT_FLAG_LAST | HT_FLAG_NO_DATA;
		send_event(ctx, e, sizeof(e->hdr));
		return;
	}
	keep = ret < capture_bytes ? ret : capture_bytes;

	if (!vectored) {
		if (keep <= HT_CHUNK_BYTES)
			emit_chunk(ctx, e, si, in->buf, keep, 0, true);
		else
			emit_pieces(ctx, e, si, NULL, 0, in->buf, keep);
		return;
	}
	if (keep <= HT_GATHER_BYTES && emit_gathered(ctx, e, si, iov, in->iovcnt, keep))
		return;
	off = emit_pieces(ctx, e, si, iov, in->iovcnt, 0, keep);
	if (off < keep) /* more iovecs than HT_MAX_IOV: close the series, user space counts the rest */
		emit_chunk(ctx, e, si, 0, 0, off, true);
}

/*
 * A call on connection `si` moved `ret` bytes (`in` says which call, on which socket): the bytes
 * that moved unseen before it, then its own. A connection kept past CLOSE for its last bytes
 * ends once they are read.
 */
static __always_inline void emit_data(void *ctx, __u64 pid_tgid, const struct ht_inflight *in, long ret,
				      bool vectored, struct ht_sock_info *si)
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
	emit_bytes(ctx, pid_tgid, in, ret, vectored, si, e);
	end_if_done(ctx, sk, si);
}

/*
 * Whether `sk` is of a kind we follow: TCP over IPv4 or IPv6, and Unix stream sockets. Unix
 * datagram and seqpacket sockets, pipes and files are left out here, at the cost of a few reads.
 */
static __always_inline bool followed_kind(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return false;
	return family == AF_UNIX ||
	       ((family == AF_INET || family == AF_INET6) && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP);
}

/*
 * The socket behind `fd` of the current task, into `ref`, if it is one. Asked of the fd table at
 * every call: whether an fd is a socket we follow is never cached by its number, which a close
 * and an open can give to another file. Whether it is of a kind we follow is asked only of a
 * socket not followed yet (followable): a followed one is found by its sock first.
 */
static __always_inline bool sock_of_fd(__s32 fd, struct ht_sock_ref *ref)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = KREAD(struct task_struct, task, files);
	struct fdtable *fdt = KREAD(struct files_struct, files, fdt);
	struct file **fds = KREAD(struct fdtable, fdt, fd);
	struct file *file = NULL;
	struct socket *sock;
	struct inode *inode;
	struct sock *sk;

	if (fd < 0 || fd >= KREAD(struct fdtable, fdt, max_fds))
		return false;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return false;
	inode = KREAD(struct file, file, f_inode);
	if ((KREAD(struct inode, inode, i_mode) & S_IFMT) != S_IFSOCK)
		return false;
	sock = KREAD(struct file, file, private_data);
	sk = KREAD(struct socket, sock, sk);
	if (!sk)
		return false;
	ref->sk = sk;
	ref->file = file;
	ref->inode = inode;
	ref->ino = 0;
	return true;
}

/* Whether the socket `ref` is of a kind we follow; its inode number into `ref` if so. */
static __always_inline bool followable(struct ht_sock_ref *ref)
{
	/* Copied out first: BPF_CORE_READ would relocate the access to our own struct too. */
	struct inode *inode = ref->inode;

	if (!followed_kind(ref->sk))
		return false;
	ref->ino = BPF_CORE_READ(inode, i_ino);
	return true;
}

/*
 * The entry of the socket `ref`, if it is followed. An entry left at its address by an earlier
 * socket (its end not seen) is ended first, never taken for this one's.
 */
static __always_inline struct ht_sock_info *followed_socket(void *ctx, struct ht_sock_ref *ref, __s32 fd)
{
	__u64 sk = (__u64)ref->sk;
	struct ht_sock_info *si = bpf_map_lookup_elem(&sockets, &sk);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct inode *inode = ref->inode;

	if (!si)
		return NULL;
	/*
	 * A TCP entry cannot be stale (TCP passes CLOSE, which ends it, before a sock is freed),
	 * unless it was kept past CLOSE for the bytes left to read.
	 */
	if ((!si->tcp || si->closed) && si->ino != KREAD(struct inode, inode, i_ino)) {
		end_connection(ctx, HT_SYS_NONE, sk, si, true);
		return NULL;
	}
	/* Shared sockets: an end seen on no task's time names whoever used it last. */
	if (si->tgid != tgid || si->fd != fd) {
		si->tgid = tgid;
		si->fd = fd;
	}
	return si;
}

/* 6.13 replaced struct file's f_count (1: one reference) with f_ref, which counts from 0. */
struct file___f_count {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

/* Whether `file` has no reference but the fd's: closing that fd releases it. */
static __always_inline bool file_last_ref(struct file *file)
{
	if (bpf_core_field_exists(struct file___f_count, f_count))
		return BPF_CORE_READ((struct file___f_count *)file, f_count.counter) == 1;
	return BPF_CORE_READ(file, f_ref.refcnt.counter) == 0;
}

/* Bytes of the stream the process has already read: 0 for a connection that is fresh. */
static __always_inline __u64 tcp_bytes_consumed(struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 unread = BPF_CORE_READ(tp, rcv_nxt) - BPF_CORE_READ(tp, copied_seq);

	return BPF_CORE_READ(tp, bytes_received) - unread;
}

/* Bytes of the stream the process has already written: acknowledged, plus still queued. */
static __always_inline __u64 tcp_bytes_written(struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u32 unacked = BPF_CORE_READ(tp, write_seq) - BPF_CORE_READ(tp, snd_una);

	return BPF_CORE_READ(tp, bytes_acked) + unacked;
}

/*
 * Unix socket `sk`'s address into `dst`: its length, 0 when it has none (unbound). The copy is
 * of a fixed size, whatever the address's: a variable one needs a bound the verifier tracks, and
 * 6.1's lost it when the compiler spilled the length before its check (5.10 and 6.18 kept it).
 * The bytes past the length are not the address's: user space reads only the length.
 */
static __always_inline __u8 unix_path(struct sock *sk, __u8 *dst)
{
	struct unix_address *addr = BPF_CORE_READ((struct unix_sock *)sk, addr);
	int len;

	if (!addr)
		return 0;
	len = BPF_CORE_READ(addr, len) - (int)sizeof(__kernel_sa_family_t);
	if (len <= 0 || len > HT_UNIX_PATH_BYTES)
		return 0;
	if (bpf_probe_read_kernel(dst, HT_UNIX_PATH_BYTES,
				  (void *)addr + bpf_core_field_offset(struct unix_address, name) +
					  sizeof(__kernel_sa_family_t)))
		return 0;
	return len;
}

/*
 * The Unix part of a connection's opening: its own address and its peer's (a client's is
 * usually unbound; an accepted socket has its listener's), and the peer's process, which the
 * kernel keeps for SO_PEERCRED (level 0: the PID as the host sees it).
 */
static __always_inline void unix_addresses(struct ht_unix_conn_event *u, struct sock *sk, __u64 ino, __u64 key)
{
	struct sock *peer = BPF_CORE_READ((struct unix_sock *)sk, peer);

	u->conn.lport = 0;
	u->conn.rport = 0;
	__builtin_memset(u->conn.laddr, 0, sizeof(u->conn.laddr));
	__builtin_memset(u->conn.raddr, 0, sizeof(u->conn.raddr));
	u->ino = ino;
	u->sk = key;
	u->peer_pid = BPF_CORE_READ(sk, sk_peer_pid, numbers[0].nr);
	u->local_len = unix_path(sk, u->local_path);
	u->peer_len = peer ? unix_path(peer, u->peer_path) : 0;
	__builtin_memset(u->pad, 0, sizeof(u->pad));
}

/* --port: whether TCP socket `sk` has a port watched at either end. */
static __always_inline bool port_watched(struct sock *sk)
{
	__u32 local = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u32 peer = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u8 *l = bpf_map_lookup_elem(&watched_ports, &local);
	__u8 *p = bpf_map_lookup_elem(&watched_ports, &peer);

	return (l && *l) || (p && *p);
}

/*
 * Start following the socket `ref` at `fd`; `kind` says how it was found (accepted, connected,
 * already open). `ret` goes into the event: the new fd for an accept, the connect's result, or
 * the bytes already read for a found socket, whose bytes already sent are `sent_before`.
 */
static __always_inline struct ht_sock_info *track_socket(void *ctx, __u64 pid_tgid, __s32 fd,
							 const struct ht_sock_ref *ref, __u8 kind, __u8 syscall,
							 __s64 ret, __u64 sent_before)
{
	struct ht_sock_info si = {}, *tracked;
	struct ht_unix_conn_event *u;
	struct ht_conn_event *c;
	struct sock *sk = ref->sk;
	__u64 key = (__u64)sk;
	__u32 zero = 0;
	__u8 state;

	/* A connection at this address whose end was not seen: it ended, as its sock was freed. */
	tracked = bpf_map_lookup_elem(&sockets, &key);
	if (tracked)
		end_connection(ctx, HT_SYS_NONE, key, tracked, true);
	si.conn_id = new_conn_id();
	si.ino = ref->ino;
	si.tgid = pid_tgid >> 32;
	si.fd = fd;
	si.tcp = BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX;
	/*
	 * A TCP socket already CLOSE (read after a reset) passes that state no more before it is
	 * freed: its entry could outlive it, and TCP entries are trusted without a generation check.
	 */
	state = si.tcp ? BPF_CORE_READ(sk, __sk_common.skc_state) : 0;
	if (state == TCP_CLOSE)
		return NULL;
	if (si.tcp) {
		si.syn_sent = state == TCP_SYN_SENT;
		si.in_seq = data_seq_in(sk);
		si.out_seq = data_seq_out(sk, &si);
	}
	si.left_out = filter_ports && !(si.tcp && port_watched(sk));
	if (bpf_map_update_elem(&sockets, &key, &si, BPF_ANY)) {
		count_drop(HT_DROP_SOCKETS_FULL);
		return NULL;
	}
	tracked = bpf_map_lookup_elem(&sockets, &key);
	if (!tracked)
		return NULL;
	if (si.left_out) {
		count_drop(HT_DROP_PORT_LEFT_OUT);
		return tracked;
	}
	/* The handshake ended between the state's read and the insert, unseen by on_sock_state. */
	if (tracked->syn_sent && BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_SYN_SENT)
		sync_syn_sent(tracked, sk);
	u = bpf_map_lookup_elem(&conn_scratch, &zero);
	if (!u)
		return tracked;
	c = &u->conn;
	fill_header(&c->hdr, pid_tgid, kind, syscall, fd, ret, tracked->conn_id);
	c->hdr.seq = next_seq(tracked);
	c->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	c->sent_before = sent_before;
	__builtin_memset(c->pad, 0, sizeof(c->pad));
	/* The callers' TCP positions mean nothing for a Unix socket: replaced here. */
	if (c->family == AF_UNIX) {
		unix_addresses(u, sk, ref->ino, key);
		if (kind == HT_EV_FOUND) {
			c->hdr.ret = 0;
			c->sent_before = 0;
			c->hdr.flags = HT_FLAG_POSITION_UNKNOWN;
		}
		send_event(ctx, u, sizeof(*u));
		return tracked;
	}
	c->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	c->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (c->family == AF_INET) {
		__builtin_memset(c->laddr, 0, sizeof(c->laddr));
		__builtin_memset(c->raddr, 0, sizeof(c->raddr));
		BPF_CORE_READ_INTO(&c->laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&c->raddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&c->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&c->raddr, sk, __sk_common.skc_v6_daddr);
	}
	send_event(ctx, c, sizeof(*c));
	return tracked;
}

/* Event: accept(2)/accept4(2) returned `ret`, the new socket's fd. */
static __always_inline int on_accept_return(void *ctx, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_sock_ref ref;

	if (ret < 0 || !tgid_tracked(pid_tgid >> 32))
		return 0;
	if (sock_of_fd(ret, &ref) && followable(&ref))
		track_socket(ctx, pid_tgid, ret, &ref, HT_EV_ACCEPT, HT_SYS_ACCEPT, ret, 0);
	return 0;
}

static __always_inline void stash(__u64 pid_tgid, __s32 fd, __u64 buf, __u32 iovcnt, __u8 syscall,
				  __u64 conn_id, __u64 sk)
{
	struct ht_inflight in = {};

	in.buf = buf;
	in.conn_id = conn_id;
	in.sk = sk;
	in.fd = fd;
	in.iovcnt = iovcnt;
	in.syscall = syscall;
	if (bpf_map_update_elem(&inflight, &pid_tgid, &in, BPF_ANY))
		count_drop(HT_DROP_INFLIGHT_FULL);
}

/* Event: connect(2) entered; whether the socket is TCP is known once it returns. */
static __always_inline int on_connect_enter(void *ctx, __s32 fd)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (tgid_tracked(pid_tgid >> 32))
		stash(pid_tgid, fd, 0, 0, HT_SYS_CONNECT, 0, 0);
	return 0;
}

/* Event: connect(2) on `fd` returned; a non-blocking one that is under way counts as connected. */
static __always_inline int on_connect_done(void *ctx, __u64 pid_tgid, __s32 fd, long ret)
{
	struct ht_sock_ref ref;

	if (ret != 0 && ret != -EINPROGRESS)
		return 0;
	/* A connect called again once a non-blocking one is done (ab does) is the same connection. */
	if (sock_of_fd(fd, &ref) && !followed_socket(ctx, &ref, fd) && followable(&ref))
		track_socket(ctx, pid_tgid, fd, &ref, HT_EV_CONNECT, HT_SYS_CONNECT, ret, 0);
	return 0;
}

/* Event: connect(2) returned, its fd stashed on entry. */
static __always_inline int on_connect_return(void *ctx, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_inflight *in;
	__s32 fd;

	in = bpf_map_lookup_elem(&inflight, &pid_tgid);
	if (!in)
		return 0;
	fd = in->fd;
	bpf_map_delete_elem(&inflight, &pid_tgid);
	return on_connect_done(ctx, pid_tgid, fd, ret);
}

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
		si = track_socket(ctx, pid_tgid, c->fd, &ref, HT_EV_FOUND, c->syscall, tcp_bytes_consumed(ref.sk),
				  tcp_bytes_written(ref.sk));
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
		si = track_socket(ctx, pid_tgid, c->fd, &ref, HT_EV_FOUND, c->syscall,
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

#ifdef HT_LEGACY
/* x86-64 without KASAN: a 16 KiB kernel stack, the saved user registers at its top. */
#define HT_THREAD_SIZE 16384
#endif

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

		return (struct pt_regs *)((__u64)BPF_CORE_READ(task, stack) + HT_THREAD_SIZE) - 1;
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
#define NR_sendmmsg 307

/* Which of our receive and send syscalls `nr` is, or HT_SYS_NONE. */
static __always_inline __u8 io_syscall(long nr)
{
	switch (nr) {
	case NR_read:
		return HT_SYS_READ;
	case NR_readv:
		return HT_SYS_READV;
	case NR_recvfrom:
		return HT_SYS_RECVFROM;
	case NR_recvmsg:
		return HT_SYS_RECVMSG;
	case NR_write:
		return HT_SYS_WRITE;
	case NR_writev:
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
 * Event: splice(2) from `fd_in` to `fd_out` moved `ret` bytes. Each end that is a followed socket
 * gets an event of that many bytes, which never were in user memory: counted, as sendfile's, so
 * that a body keeps its true size and the parser stays in step.
 */
static __always_inline int on_splice_done(void *ctx, long ret, __u64 fd_in, __u64 fd_out)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_call c = {};
	struct ht_sock_info *si;
	struct ht_inflight in;

	if (ret <= 0 || !tgid_tracked(pid_tgid >> 32))
		return 0;
	call_from_args(&c, HT_SYS_SPLICE_IN, fd_in, 0, fd_out, 0);
	si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, 0);
	if (si)
		emit_data(ctx, pid_tgid, &in, ret, false, si);
	call_from_args(&c, HT_SYS_SPLICE_OUT, fd_in, 0, fd_out, 0);
	si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, 0);
	if (si)
		emit_data(ctx, pid_tgid, &in, ret, false, si);
	return 0;
}

/* splice(2) returned: its ends from the saved user registers (probe reads). */
static __always_inline int on_splice_return(void *ctx, long ret)
{
	struct pt_regs *regs;

	if (ret <= 0 || !tgid_tracked(bpf_get_current_pid_tgid() >> 32))
		return 0;
	regs = current_user_regs();
	return on_splice_done(ctx, ret, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM3_CORE_SYSCALL(regs));
}

/* Messages of one sendmmsg/recvmmsg whose sizes are read; bytes of later ones are counted only. */
#define HT_MMSG_READ 8

/*
 * Event: sendmmsg(2) (`dir` HT_DIR_OUT) or recvmmsg(2) on `fd` returned `ret` messages, whose
 * sizes the kernel wrote into `msgvec`. No method copies their bytes. On a TCP socket they are
 * measured from its sequence numbers (emit_unseen); on a followed Unix socket, which has none,
 * they become a hole of their total size here, in the connection's own stream.
 */
static __always_inline int on_mmsg_done(void *ctx, long ret, __s32 fd, __u64 msgvec, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_data_event *e;
	struct ht_sock_info *si;
	struct ht_sock_ref ref;
	__u32 zero = 0, len;
	__s64 total = 0;

	if (ret <= 0 || !tgid_tracked(pid_tgid >> 32) || !sock_of_fd(fd, &ref))
		return 0;
	si = followed_socket(ctx, &ref, fd);
	if (!si || si->tcp)
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
		total += len;
	}
	if (ret > HT_MMSG_READ)
		count_drop(HT_DROP_OTHER_IO);
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (e && total > 0)
		emit_hole(ctx, pid_tgid, e, si, fd, dir, total);
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

/* Event: a task exited. When it was the last thread of a tracked process, say so. */
static __always_inline int on_task_exit(void *ctx, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (!tgid_tracked(tgid) || BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	bpf_map_delete_elem(&tracked_tgids, &tgid);
	emit_process(ctx, tgid, HT_EV_EXIT, 0, 0);
	return 0;
}

/*
 * A new task's PID in the innermost PID namespace it is in (a container's), 0 in the host's:
 * user space reads it from /proc too late when the child is quick to exit.
 */
static __always_inline __u32 ns_pid_of(struct task_struct *t)
{
	struct pid *p = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(p, level);
	int nr = 0;

	/* MAX_PID_NS_LEVEL is 32; the bound is for the verifier. */
	if (level == 0 || level >= 32)
		return 0;
	bpf_core_read(&nr, sizeof(nr), &p->numbers[level].nr);
	return (__u32)nr;
}

/* Track process `tgid` from now on; false (counted) when the set is full. */
static __always_inline bool track_tgid(__u32 tgid)
{
	__u32 slot = tgid % HT_TGID_SLOTS;
	__u8 one = 1;

	if (bpf_map_update_elem(&tracked_tgids, &tgid, &one, BPF_ANY)) {
		count_drop(HT_DROP_PROCESSES_FULL);
		return false;
	}
	bpf_map_update_elem(&tgid_slots, &slot, &one, BPF_ANY);
	return true;
}

/* Event: a task forked. A new process of a tracked one is tracked too (threads already are). */
static __always_inline int on_fork(void *ctx, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);

	if (!follow_children || ctgid == ptgid || !tgid_tracked(ptgid) || !track_tgid(ctgid))
		return 0;
	emit_process(ctx, ptgid, HT_EV_FORK, ctgid, ns_pid_of(child));
	return 0;
}

/*
 * The watched cgroup the current task is in, 0 if none: its cgroup v2 one, or one of its
 * cgroup v1 controllers' (a container's cgroups on a v1 or hybrid host).
 */
static __always_inline __u64 watched_cgroup(struct task_struct *t)
{
	struct css_set *cs = BPF_CORE_READ(t, cgroups);
	unsigned int n = bpf_core_field_size(cs->subsys) / sizeof(cs->subsys[0]);
	__u64 id = bpf_get_current_cgroup_id();

	if (bpf_map_lookup_elem(&watched_cgroups, &id))
		return id;
	/* CGROUP_SUBSYS_COUNT is 14 in the kernels of today; the bound is for the verifier. */
	for (unsigned int i = 0; i < 16; i++) {
		struct cgroup_subsys_state *css = NULL;

		if (i >= n)
			break;
		bpf_core_read(&css, sizeof(css), &cs->subsys[i]);
		if (!css)
			continue;
		id = BPF_CORE_READ(css, cgroup, kn, id);
		if (bpf_map_lookup_elem(&watched_cgroups, &id))
			return id;
	}
	return 0;
}

/*
 * Event: a program started (execve). With --name or --container, one that is watched for (by
 * its new command name, or by its cgroup) is tracked from here: before it can serve anything.
 */
static __always_inline int on_exec(void *ctx, struct task_struct *task)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	char comm[TASK_COMM_LEN] = {};
	__u64 cgroup = 0;

	if (!watch_execs || tgid_tracked(tgid))
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (!bpf_map_lookup_elem(&watched_names, comm)) {
		cgroup = watched_cgroup(task);
		if (!cgroup)
			return 0;
	}
	if (!track_tgid(tgid))
		return 0;
	emit_process(ctx, tgid, HT_EV_EXEC, (__s64)cgroup, ns_pid_of(task));
	return 0;
}

/* ---- Every method: process lifetime, through raw tracepoints ---- */

SEC("raw_tp/sched_process_exec")
int N(raw_tp_exec)(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exec(ctx, (struct task_struct *)ctx->args[0]);
}

SEC("raw_tp/sched_process_exit")
int N(raw_tp_exit)(struct bpf_raw_tracepoint_args *ctx)
{
	return on_task_exit(ctx, (struct task_struct *)ctx->args[0]);
}

SEC("raw_tp/sched_process_fork")
int N(raw_tp_fork)(struct bpf_raw_tracepoint_args *ctx)
{
	return on_fork(ctx, (struct task_struct *)ctx->args[0], (struct task_struct *)ctx->args[1]);
}

/* ---- Every method: the end of TCP connections, whichever process had them ---- */

SEC("raw_tp/inet_sock_set_state")
int N(raw_tp_sock_state)(struct bpf_raw_tracepoint_args *ctx)
{
	return on_sock_state(ctx, ctx->args[0], ctx->args[2]);
}

/* ---- Attach method: kprobes ---- */

SEC("kretprobe/__sys_accept4")
int KRETPROBE(N(kretprobe_accept4), int ret)
{
	return on_accept_return(ctx, ret);
}

SEC("kprobe/__sys_connect")
int KPROBE(N(kprobe_connect), int fd)
{
	return on_connect_enter(ctx, fd);
}

SEC("kretprobe/__sys_connect")
int KRETPROBE(N(kretprobe_connect), int ret)
{
	return on_connect_return(ctx, ret);
}

SEC("kprobe/ksys_read")
int KPROBE(N(kprobe_read), unsigned int fd, char *buf)
{
	return on_io_call(ctx, HT_SYS_READ, fd, (__u64)buf, 0, 0);
}

SEC("kretprobe/ksys_read")
int KRETPROBE(N(kretprobe_read), long ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("ksyscall/readv")
int KSYSCALL(N(kprobe_readv), unsigned long fd, const struct iovec *vec, unsigned long vlen)
{
	return on_io_call(ctx, HT_SYS_READV, fd, (__u64)vec, vlen, 0);
}

SEC("kretsyscall/readv")
int KRETPROBE(N(kretprobe_readv), long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("kprobe/__sys_recvfrom")
int KPROBE(N(kprobe_recvfrom), int fd, void *buf, size_t size, unsigned int flags)
{
	return on_io_call(ctx, HT_SYS_RECVFROM, fd, (__u64)buf, size, flags);
}

SEC("kretprobe/__sys_recvfrom")
int KRETPROBE(N(kretprobe_recvfrom), int ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("kprobe/__sys_recvmsg")
int KPROBE(N(kprobe_recvmsg), int fd, struct user_msghdr *msg, unsigned int flags)
{
	return on_io_call(ctx, HT_SYS_RECVMSG, fd, (__u64)msg, flags, 0);
}

SEC("kretprobe/__sys_recvmsg")
int KRETPROBE(N(kretprobe_recvmsg), long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("kprobe/ksys_write")
int KPROBE(N(kprobe_write), unsigned int fd, const char *buf)
{
	return on_io_call(ctx, HT_SYS_WRITE, fd, (__u64)buf, 0, 0);
}

SEC("kretprobe/ksys_write")
int KRETPROBE(N(kretprobe_write), long ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("ksyscall/writev")
int KSYSCALL(N(kprobe_writev), unsigned long fd, const struct iovec *vec, unsigned long vlen)
{
	return on_io_call(ctx, HT_SYS_WRITEV, fd, (__u64)vec, vlen, 0);
}

SEC("kretsyscall/writev")
int KRETPROBE(N(kretprobe_writev), long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("kprobe/__sys_sendto")
int KPROBE(N(kprobe_sendto), int fd, void *buf)
{
	return on_io_call(ctx, HT_SYS_SENDTO, fd, (__u64)buf, 0, 0);
}

SEC("kretprobe/__sys_sendto")
int KRETPROBE(N(kretprobe_sendto), int ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("kprobe/__sys_sendmsg")
int KPROBE(N(kprobe_sendmsg), int fd, struct user_msghdr *msg)
{
	return on_io_call(ctx, HT_SYS_SENDMSG, fd, (__u64)msg, 0, 0);
}

SEC("kretprobe/__sys_sendmsg")
int KRETPROBE(N(kretprobe_sendmsg), long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("ksyscall/sendfile64")
int KSYSCALL(N(kprobe_sendfile), int out_fd)
{
	return on_io_call(ctx, HT_SYS_SENDFILE, out_fd, 0, 0, 0);
}

SEC("kretsyscall/sendfile64")
int KRETPROBE(N(kretprobe_sendfile), long ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("kretsyscall/splice")
int KRETPROBE(N(kretprobe_splice), long ret)
{
	return on_splice_return(ctx, ret);
}

SEC("kretsyscall/sendmmsg")
int KRETPROBE(N(kretprobe_sendmmsg), long ret)
{
	return on_mmsg_return(ctx, ret, HT_DIR_OUT);
}

SEC("kretsyscall/recvmmsg")
int KRETPROBE(N(kretprobe_recvmmsg), long ret)
{
	return on_mmsg_return(ctx, ret, HT_DIR_IN);
}

SEC("ksyscall/close")
int KSYSCALL(N(kprobe_close), unsigned int fd)
{
	return on_close_enter(ctx, fd);
}

/*
 * ---- Attach method: fentry/fexit ----
 * BPF trampolines: no per-call trap and, unlike kretprobes, no limit on calls in flight. Syscalls
 * without an internal function that is safe from inlining hook the x86-64 syscall entry points,
 * whose only argument is the saved user registers.
 */

SEC("fexit/__sys_accept4")
int PROG(N(fexit_accept4), int fd, struct sockaddr *addr, int *addrlen, int flags, int ret)
{
	return on_accept_return(ctx, ret);
}

SEC("fentry/__sys_connect")
int PROG(N(fentry_connect), int fd)
{
	return on_connect_enter(ctx, fd);
}

SEC("fexit/__sys_connect")
int PROG(N(fexit_connect), int fd, struct sockaddr *addr, int addrlen, int ret)
{
	return on_connect_return(ctx, ret);
}

SEC("fentry/ksys_read")
int PROG(N(fentry_read), unsigned int fd, char *buf)
{
	return on_io_call(ctx, HT_SYS_READ, fd, (__u64)buf, 0, 0);
}

SEC("fexit/ksys_read")
int PROG(N(fexit_read), unsigned int fd, char *buf, size_t count, long ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("fentry/__x64_sys_readv")
int PROG(N(fentry_readv), const struct pt_regs *regs)
{
	return on_io_regs(ctx, HT_SYS_READV, regs);
}

SEC("fexit/__x64_sys_readv")
int PROG(N(fexit_readv), const struct pt_regs *regs, long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("fentry/__sys_recvfrom")
int PROG(N(fentry_recvfrom), int fd, void *buf, size_t size, unsigned int flags)
{
	return on_io_call(ctx, HT_SYS_RECVFROM, fd, (__u64)buf, size, flags);
}

SEC("fexit/__sys_recvfrom")
int PROG(N(fexit_recvfrom), int fd, void *buf, size_t size, unsigned int flags, struct sockaddr *addr,
	     int *addrlen, int ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("fentry/__sys_recvmsg")
int PROG(N(fentry_recvmsg), int fd, struct user_msghdr *msg, unsigned int flags)
{
	return on_io_call(ctx, HT_SYS_RECVMSG, fd, (__u64)msg, flags, 0);
}

SEC("fexit/__sys_recvmsg")
int PROG(N(fexit_recvmsg), int fd, struct user_msghdr *msg, unsigned int flags, bool forbid_cmsg_compat,
	     long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("fentry/ksys_write")
int PROG(N(fentry_write), unsigned int fd, const char *buf)
{
	return on_io_call(ctx, HT_SYS_WRITE, fd, (__u64)buf, 0, 0);
}

SEC("fexit/ksys_write")
int PROG(N(fexit_write), unsigned int fd, const char *buf, size_t count, long ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("fentry/__x64_sys_writev")
int PROG(N(fentry_writev), const struct pt_regs *regs)
{
	return on_io_regs(ctx, HT_SYS_WRITEV, regs);
}

SEC("fexit/__x64_sys_writev")
int PROG(N(fexit_writev), const struct pt_regs *regs, long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("fentry/__sys_sendto")
int PROG(N(fentry_sendto), int fd, void *buf)
{
	return on_io_call(ctx, HT_SYS_SENDTO, fd, (__u64)buf, 0, 0);
}

SEC("fexit/__sys_sendto")
int PROG(N(fexit_sendto), int fd, void *buf, size_t len, unsigned int flags, struct sockaddr *addr,
	     int addr_len, int ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("fentry/__sys_sendmsg")
int PROG(N(fentry_sendmsg), int fd, struct user_msghdr *msg)
{
	return on_io_call(ctx, HT_SYS_SENDMSG, fd, (__u64)msg, 0, 0);
}

SEC("fexit/__sys_sendmsg")
int PROG(N(fexit_sendmsg), int fd, struct user_msghdr *msg, unsigned int flags, bool forbid_cmsg_compat,
	     long ret)
{
	return on_io_return(ctx, ret, true);
}

SEC("fentry/__x64_sys_sendfile64")
int PROG(N(fentry_sendfile), const struct pt_regs *regs)
{
	return on_io_regs(ctx, HT_SYS_SENDFILE, regs);
}

SEC("fexit/__x64_sys_sendfile64")
int PROG(N(fexit_sendfile), const struct pt_regs *regs, long ret)
{
	return on_io_return(ctx, ret, false);
}

SEC("fexit/__x64_sys_splice")
int PROG(N(fexit_splice), const struct pt_regs *regs, long ret)
{
	return on_splice_done(ctx, ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM3_SYSCALL(regs));
}

/*
 * No fexit on sendmmsg/recvmmsg: 5.10's BTF gives __x64_sys_sendmmsg's argument as a forward
 * declaration, which fexit refuses, and __sys_recvmmsg has one argument too many for its
 * trampolines. With fentry, their bytes on a Unix socket are not counted (on TCP they are).
 */

SEC("fentry/__x64_sys_close")
int PROG(N(fentry_close), const struct pt_regs *regs)
{
	return on_close_enter(ctx, PT_REGS_PARM1_SYSCALL(regs));
}

/*
 * ---- Attach method: raw syscall tracepoints ----
 * One program on the raw sys_exit tracepoint sees every syscall return and picks ours by
 * number. Unlike the syscalls:* tracepoints below, the kernel runs them without first copying
 * each call's arguments into a perf record: tracing nothing but an idle process, those cost a
 * loaded nginx half its throughput, these next to nothing. Like them, and unlike return probes,
 * sys_exit also fires for a call that was already blocked when tracing started.
 */

/*
 * Everything happens on the way out: the user registers still hold the call's arguments, so no
 * entry program (nor a map of calls in flight) is needed, and the syscalls of every process on
 * the machine pay for one program, not two.
 */
SEC("tp_btf/sys_exit")
int PROG(N(tp_btf_sys_exit), struct pt_regs *regs, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	long nr = SYSCALL_NR(regs);
	struct ht_sock_info *si;
	struct ht_inflight in;
	struct ht_call c = {};
	__u8 syscall;

	if (nr == NR_accept || nr == NR_accept4)
		return on_accept_return(ctx, ret);
	if (nr == NR_splice)
		return on_splice_done(ctx, ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM3_SYSCALL(regs));
	if (nr == NR_sendmmsg || nr == NR_recvmmsg)
		return on_mmsg_done(ctx, ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs),
				    nr == NR_sendmmsg ? HT_DIR_OUT : HT_DIR_IN);
	/* Every read and write on the machine ends here: leave early for other processes. */
	syscall = io_syscall(nr);
	if (syscall == HT_SYS_NONE) {
		if (nr == NR_connect && tgid_tracked(pid_tgid >> 32))
			return on_connect_done(ctx, pid_tgid, PT_REGS_PARM1_SYSCALL(regs), ret);
		return 0;
	}
	if (ret <= 0 || !tgid_tracked(pid_tgid >> 32))
		return 0;
	/* A BTF pointer: its fields load directly, with no helper call. */
	CALL_FROM_REGS(&c, syscall, regs);
	si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, 0);
	if (si)
		emit_data(ctx, pid_tgid, &in, ret, syscall_vectored(syscall), si);
	return 0;
}

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
	/* splice(2) into a socket sends through sock_sendmsg (6.5+): its bytes, never in user memory. */
	if (SYSCALL_NR(regs) == NR_splice)
		syscall = dir == HT_DIR_OUT ? HT_SYS_SPLICE_OUT : HT_SYS_SPLICE_IN;
	if (syscall == HT_SYS_NONE || syscall_direction(syscall) != dir) {
		/*
		 * Not a call followed (io_uring, sendmmsg): a TCP socket's bytes are measured at its
		 * next event (emit_unseen); a followed Unix socket's are a hole here; a Unix socket
		 * not followed yet is counted.
		 */
		__u32 zero = 0;
		struct ht_data_event *e;

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
		emit_data(ctx, pid_tgid, &in, ret, syscall_vectored(syscall), si);
		return 0;
	}
	si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, (__u64)sk);
	if (si)
		emit_data(ctx, pid_tgid, &in, ret, syscall_vectored(syscall), si);
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
	if (!si || !si->tcp)
		return 0;
	n = data_seq_in(sk) - si->in_seq;
	if (n <= 0)
		return 0;
	in.conn_id = si->conn_id;
	in.sk = (__u64)sk;
	in.fd = PT_REGS_PARM1_SYSCALL(regs);
	in.syscall = HT_SYS_SPLICE_IN;
	emit_data(ctx, pid_tgid, &in, n, false, si);
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

/* ---- Attach method: syscall tracepoints ---- */

SEC("tracepoint/syscalls/sys_exit_accept4")
int N(tp_exit_accept4)(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_return(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int N(tp_exit_accept)(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_return(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int N(tp_enter_connect)(struct trace_event_raw_sys_enter *ctx)
{
	return on_connect_enter(ctx, ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int N(tp_exit_connect)(struct trace_event_raw_sys_exit *ctx)
{
	return on_connect_return(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_read")
int N(tp_enter_read)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_READ, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_read")
int N(tp_exit_read)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_READ);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int N(tp_enter_readv)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_READV, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int N(tp_exit_readv)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_READV);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int N(tp_enter_recvfrom)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_RECVFROM, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int N(tp_exit_recvfrom)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_RECVFROM);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int N(tp_enter_recvmsg)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_RECVMSG, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int N(tp_exit_recvmsg)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_RECVMSG);
}

SEC("tracepoint/syscalls/sys_enter_write")
int N(tp_enter_write)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_WRITE, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_write")
int N(tp_exit_write)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_WRITE);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int N(tp_enter_writev)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_WRITEV, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int N(tp_exit_writev)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_WRITEV);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int N(tp_enter_sendto)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_SENDTO, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int N(tp_exit_sendto)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_SENDTO);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int N(tp_enter_sendmsg)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_SENDMSG, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int N(tp_exit_sendmsg)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_SENDMSG);
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int N(tp_enter_sendfile)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_SENDFILE, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int N(tp_exit_sendfile)(struct trace_event_raw_sys_exit *ctx)
{
	return on_io_exit(ctx, ctx->ret, HT_SYS_SENDFILE);
}

SEC("tracepoint/syscalls/sys_exit_splice")
int N(tp_exit_splice)(struct trace_event_raw_sys_exit *ctx)
{
	return on_splice_return(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int N(tp_exit_sendmmsg)(struct trace_event_raw_sys_exit *ctx)
{
	return on_mmsg_return(ctx, ctx->ret, HT_DIR_OUT);
}

SEC("tracepoint/syscalls/sys_exit_recvmmsg")
int N(tp_exit_recvmmsg)(struct trace_event_raw_sys_exit *ctx)
{
	return on_mmsg_return(ctx, ctx->ret, HT_DIR_IN);
}

SEC("tracepoint/syscalls/sys_enter_close")
int N(tp_enter_close)(struct trace_event_raw_sys_enter *ctx)
{
	return on_close_enter(ctx, ctx->args[0]);
}
