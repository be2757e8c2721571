// SPDX-License-Identifier: GPL-2.0
/*
 * Which sockets are followed: the kinds we follow, an fd to its socket, the entry a followed
 * socket keeps, and the events of accept and connect.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
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
	struct file *file = file_of_fd(fd);
	struct socket *sock;
	struct inode *inode;
	struct sock *sk;

	if (!file)
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
 * already open). `ret` goes into the event: the new fd for an accept, the connect's result; a
 * found socket's bytes already received and sent are `received_before` and `sent_before`.
 */
static __always_inline struct ht_sock_info *track_socket(void *ctx, __u64 pid_tgid, __s32 fd,
							 const struct ht_sock_ref *ref, __u8 kind, __u8 syscall,
							 __s64 ret, __u64 received_before, __u64 sent_before)
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
	/* Its opening event names this thread. */
	si.named_tid = (__u32)pid_tgid;
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
	c->received_before = received_before;
	c->sent_before = sent_before;
	__builtin_memset(c->pad, 0, sizeof(c->pad));
	/* The callers' TCP positions mean nothing for a Unix socket: replaced here. */
	if (c->family == AF_UNIX) {
		unix_addresses(u, sk, ref->ino, key);
		if (kind == HT_EV_FOUND) {
			c->received_before = 0;
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
		track_socket(ctx, pid_tgid, ret, &ref, HT_EV_ACCEPT, HT_SYS_ACCEPT, ret, 0, 0);
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
		track_socket(ctx, pid_tgid, fd, &ref, HT_EV_CONNECT, HT_SYS_CONNECT, ret, 0, 0);
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
