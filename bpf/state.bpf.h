// SPDX-License-Identifier: GPL-2.0
/*
 * What every part shares: the settings user space fixes at load, the maps, the drop counters,
 * and the per-connection sequence numbers.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
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

/* --container: report each cgroup made, so that a restarted container's new one is watched. */
GLOBAL(const volatile __u8 watch_new_cgroups, 0);

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
struct ht_process_event _ht_process_event = {};
struct ht_cgroup_event _ht_cgroup_event = {};
struct ht_layout _ht_layout = {};
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
	__u8 pad[3];
	/* The thread whose name the connection's events last carried (see name_new_caller). */
	__u32 named_tid;
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

/*
 * --container: the cgroups (kernfs ids: their directories' inode numbers) watched for programs;
 * the value is the id of the hierarchy the cgroup is in, + 1 (see cgroup_watched).
 */
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

/*
 * An event being built: too big for the 512-byte BPF stack. The walk copies up to HT_PIECE_BYTES
 * at an offset into `data` that the verifier knows only by its mask: the room after it keeps
 * every copy inside.
 */
struct ht_data_scratch {
	struct ht_data_event e;
	__u8 room[HT_PIECE_BYTES];
};

SHARED struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_data_scratch);
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
