/* SPDX-License-Identifier: GPL-2.0 */
/* Types and constants shared by bpf/http_trace.bpf.c and the Rust side (through the skeleton). */
#ifndef __HTTP_TRACE_H
#define __HTTP_TRACE_H

#define TASK_COMM_LEN 16

enum ht_limits {
	/* Bytes one event carries; a bigger receive is split over several events. */
	HT_CHUNK_BYTES = 16384,
	/*
	 * Upper bound of --capture-bytes, the bytes kept per syscall. It bounds the copy loops, and
	 * verification time grows with it: 1 MiB and 16 iovecs took 8x longer to load than this.
	 */
	HT_MAX_CAPTURE_BYTES = 262144,
	HT_MAX_CHUNKS = HT_MAX_CAPTURE_BYTES / HT_CHUNK_BYTES,
	/* The most one step of a walk copies (see walk_step). */
	HT_PIECE_BYTES = HT_CHUNK_BYTES / 2,
	/* Vectored calls up to this size go out as one event (half a chunk: see emit_gathered). */
	HT_GATHER_BYTES = HT_CHUNK_BYTES / 2,
	/* iovecs of one vectored call that are copied: IOV_MAX, all the kernel accepts. */
	HT_MAX_IOV = 1024,
	/* Vectored calls of up to this many iovecs, and HT_GATHER_BYTES, take the fast path. */
	HT_GATHER_IOV = 8,
	/* Slots of the tracked-process prefilter (a power of two). */
	HT_TGID_SLOTS = 16384,
	/* Bytes of a Unix socket address after its family (sizeof(sun_path)). */
	HT_UNIX_PATH_BYTES = 108,
	/*
	 * Bytes of a new cgroup's path kept (a Kubernetes container's is about 160: the pod's
	 * slices, then the runtime's scope with the container's 64-digit id).
	 */
	HT_CGROUP_PATH_BYTES = 256,
};

enum ht_event_kind {
	/* A tracked process accepted a connection (struct ht_conn_event). */
	HT_EV_ACCEPT = 1,
	/* Bytes moved on a tracked connection; `data` follows the header. */
	HT_EV_DATA = 2,
	/* A tracked process closed a tracked connection. */
	HT_EV_CLOSE = 3,
	/*
	 * A tracked process used a TCP socket not seen being opened (struct ht_conn_event, whose
	 * `received_before` and `sent_before` say where in each stream it joined; 0: fresh).
	 */
	HT_EV_FOUND = 4,
	/* A tracked process connected a socket, or started to (struct ht_conn_event). */
	HT_EV_CONNECT = 5,
	/* The last thread of tracked process `tgid` exited (struct ht_process_event). */
	HT_EV_EXIT = 6,
	/* Tracked process `tgid` forked `child_tgid`, now tracked too (struct ht_process_event). */
	HT_EV_FORK = 7,
	/*
	 * Process `tgid` started a program that --name or --container watches for, and is now
	 * tracked (struct ht_process_event).
	 */
	HT_EV_EXEC = 8,
	/*
	 * With --container: a cgroup was made (struct ht_cgroup_event). A restarted container has a
	 * new one, which user space watches once its path names the container.
	 */
	HT_EV_CGROUP = 9,
};

enum ht_syscall {
	HT_SYS_NONE = 0,
	HT_SYS_ACCEPT = 1,
	HT_SYS_READ = 2,
	HT_SYS_READV = 3,
	HT_SYS_RECVFROM = 4,
	HT_SYS_RECVMSG = 5,
	HT_SYS_CLOSE = 6,
	HT_SYS_WRITE = 7,
	HT_SYS_WRITEV = 8,
	HT_SYS_SENDTO = 9,
	HT_SYS_SENDMSG = 10,
	HT_SYS_SENDFILE = 11,
	HT_SYS_CONNECT = 12,
	/* splice(2) out of (IN) or into (OUT) a socket: bytes never in user memory, like sendfile's. */
	HT_SYS_SPLICE_IN = 13,
	HT_SYS_SPLICE_OUT = 14,
	/*
	 * The plaintext of a TLS library's read (IN) or write (OUT) on the connection: its bytes,
	 * alongside the records the socket calls inside it moved.
	 */
	HT_SYS_TLS_READ = 15,
	HT_SYS_TLS_WRITE = 16,
};

enum ht_direction {
	/* Received by the traced process. */
	HT_DIR_IN = 0,
	/* Sent by the traced process. */
	HT_DIR_OUT = 1,
};

enum ht_flags {
	/* The last event of one syscall: bytes past offset + len were not kept. */
	HT_FLAG_LAST = 1,
	/* The bytes were never in user memory (sendfile, splice): only their number, `ret`, is known. */
	HT_FLAG_NO_DATA = 2,
	/*
	 * HT_EV_FOUND of a socket that counts no bytes (Unix): whether the process had used it
	 * before is not known, so each direction starts at its next message.
	 */
	HT_FLAG_POSITION_UNKNOWN = 4,
	/*
	 * With HT_FLAG_NO_DATA: `ret` bytes moved on the TCP connection outside the calls followed
	 * (io_uring, splice where it is not seen, a process not traced that shares the socket), found from the socket's own sequence numbers at its next event or its
	 * end: a hole of known size in that direction.
	 */
	HT_FLAG_UNSEEN = 8,
};

/* Drops counted in BPF, read by user space at exit (the `drops` global). */
enum ht_drop {
	/* A new connection could not be tracked: the sockets map was full. */
	HT_DROP_SOCKETS_FULL = 0,
	/* A syscall could not be followed: the in-flight map was full. */
	HT_DROP_INFLIGHT_FULL = 1,
	/* bpf_probe_read_user failed (user page not present). */
	HT_DROP_READ_FAILED = 2,
	/* The event could not be sent (buffer full); with perf, user space also sees it as lost. */
	HT_DROP_OUTPUT_FAILED = 3,
	/* A child process could not be followed: the tracked processes map was full. */
	HT_DROP_PROCESSES_FULL = 4,
	/*
	 * socket-tracepoint: a Unix socket moved bytes outside the syscalls followed (io_uring):
	 * not captured. (A TCP socket's are measured: HT_FLAG_UNSEEN.)
	 */
	HT_DROP_OTHER_IO = 5,
	/*
	 * Legacy build (kernels before 5.17): a sequence number handed out without its
	 * connection's lock, which stayed taken: that connection's events may be out of order.
	 */
	HT_DROP_SEQ_UNLOCKED = 6,
	/*
	 * Not a drop: a connection on none of the ports --port names, left out in the kernel (none
	 * of its bytes copied) rather than parsed and hidden in user space.
	 */
	HT_DROP_PORT_LEFT_OUT = 7,
	/*
	 * A TLS library read or write whose socket is not known: no socket call inside it, and
	 * none earlier on its SSL object. Its plaintext is not shown.
	 */
	HT_DROP_TLS_NO_SOCKET = 8,
	/* A TLS library call could not be followed: its note in the map of calls in flight failed. */
	HT_DROP_TLS_CALLS_FULL = 9,
	HT_DROP_MAX = 10,
};

/* Every event starts with this header; HT_EV_DATA events carry `len` bytes after it. */
struct ht_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
	__u64 conn_id;   /* unique per traced connection */
	__u64 seq;       /* per connection, from 0: user space restores order across CPUs */
	__s64 ret;       /* the syscall's return value */
	__u32 tgid;      /* process */
	__u32 tid;       /* thread */
	__s32 fd;
	__u32 offset;    /* where `data` starts within the syscall's bytes */
	__u32 len;       /* bytes of data after the header */
	__u8 kind;       /* enum ht_event_kind */
	__u8 syscall;    /* enum ht_syscall */
	__u8 direction;  /* enum ht_direction */
	__u8 flags;      /* enum ht_flags */
	/*
	 * The process's name (its main thread's command name: what ps and --name show) and the
	 * calling thread's. Zeros in HT_EV_DATA events, but for the first of each thread on a
	 * socket (see name_new_caller): user space names the others.
	 */
	__u8 comm[TASK_COMM_LEN];
	__u8 thread[TASK_COMM_LEN];
};

/* HT_EV_ACCEPT, HT_EV_CONNECT, HT_EV_FOUND: the connection's addresses. */
struct ht_conn_event {
	struct ht_event hdr;
	__u16 family;    /* AF_INET, AF_INET6 or AF_UNIX (then the event is a struct ht_unix_conn_event) */
	__u16 lport;     /* host byte order */
	__u16 rport;     /* host byte order */
	__u8 pad[2];
	__u8 laddr[16];  /* network byte order; IPv4 in the first 4 bytes */
	__u8 raddr[16];
	/* HT_EV_FOUND: bytes the process had received and sent on it before it was found. */
	__u64 received_before;
	__u64 sent_before;
};

/*
 * The opening of a Unix connection: the TCP fields stay zero, and its addresses follow. A path
 * ends in a NUL; an abstract name starts with one; an unbound socket has none (length 0).
 */
struct ht_unix_conn_event {
	struct ht_conn_event conn;
	__u64 ino;       /* the socket's inode number, as /proc/net/unix lists it */
	__u64 sk;        /* its struct sock: the key user space removes when the socket is gone */
	__u32 peer_pid;  /* the process that connected, or listened, at the other end; 0: unknown */
	__u8 local_len;
	__u8 peer_len;
	__u8 pad[2];
	__u8 local_path[HT_UNIX_PATH_BYTES];
	__u8 peer_path[HT_UNIX_PATH_BYTES];
};

/* HT_EV_EXIT, HT_EV_FORK, HT_EV_EXEC: a tracked process came or went; no connection (conn_id 0). */
struct ht_process_event {
	struct ht_event hdr;
	__u32 child_tgid; /* HT_EV_FORK: the new process */
	/* HT_EV_FORK: the child's, HT_EV_EXEC: the process's PID in its own PID namespace; 0: the host's */
	__u32 ns_pid;
	__u64 cgroup;     /* HT_EV_EXEC: the watched cgroup it is in; 0: found by its command name */
};

/* HT_EV_CGROUP: a new cgroup; no connection, no process (the task that made it is not ours). */
struct ht_cgroup_event {
	struct ht_event hdr;
	__u64 cgroup;     /* its id: its directory's inode number, as BPF compares cgroups */
	__u32 path_len;   /* bytes of `path` before its NUL */
	__u32 hierarchy;  /* its hierarchy's id: one per cgroup v1 controller set, one for v2 */
	__u8 path[HT_CGROUP_PATH_BYTES]; /* within its hierarchy: /system.slice/docker-ID.scope */
};

struct ht_data_event {
	struct ht_event hdr;
	__u8 data[HT_CHUNK_BYTES];
};

/*
 * Where the kernel maps memory (the `layout` map's one entry): what it takes to read a page
 * that a pipe's buffer names (see bpf/pipes.bpf.h). User space finds it at start.
 */
struct ht_layout {
	__u64 direct_map;       /* page_offset_base: physical address 0 in the direct map; 0: unknown */
	__u64 vmemmap;          /* vmemmap_base: the struct page of page frame 0 */
	__u64 probe_page;       /* probe_layout's answers to user space */
	__u64 page_struct_size;
};

#endif /* __HTTP_TRACE_H */
