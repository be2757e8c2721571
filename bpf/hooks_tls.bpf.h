// SPDX-License-Identifier: GPL-2.0
/*
 * The TLS library's calls (see tls.bpf.h): their plaintext, on the connection of their socket.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
/*
 * Event: SSL_read/SSL_write (`dir`) entered on `ssl`, plaintext at `buf` (`len_out`: _ex); or
 * SSL_do_handshake (`dir` HT_TLS_HANDSHAKE).
 */
static __always_inline int on_tls_enter(__u64 ssl, __u64 buf, __u64 len_out, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_tls_call call = { .ssl = ssl, .buf = buf, .len_out = len_out, .dir = dir };

	if (!tgid_tracked(pid_tgid >> 32))
		return 0;
	if (bpf_map_update_elem(&tls_calls, &pid_tgid, &call, BPF_ANY))
		count_drop(HT_DROP_TLS_CALLS_FULL);
	return 0;
}

/*
 * Event: the TLS call of this thread returned `ret` (an int: the register's upper half is not
 * its): its plaintext, on its socket's connection.
 */
static __always_inline int on_tls_return(void *ctx, int ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ht_inflight in = {};
	struct ht_tls_call call;
	struct ht_tls_call *c = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
	struct ht_data_event *e;
	struct ht_sock_info *si;
	__u64 n = 0, *known;
	__u32 zero = 0;

	if (!c)
		return 0;
	call = *c;
	bpf_map_delete_elem(&tls_calls, &pid_tgid);
	if (call.dir == HT_TLS_HANDSHAKE) {
		/* Its socket, for a first read served from what the handshake buffered. */
		if (call.sk)
			bpf_map_update_elem(&tls_sockets, &call.ssl, &call.sk, BPF_ANY);
		return 0;
	}
	if (ret <= 0)
		return 0;
	if (!call.len_out)
		n = ret;
	else if (bpf_probe_read_user(&n, sizeof(n), (void *)call.len_out))
		count_drop(HT_DROP_READ_FAILED);
	if (!n)
		return 0;
	if (call.sk) {
		bpf_map_update_elem(&tls_sockets, &call.ssl, &call.sk, BPF_ANY);
	} else {
		known = bpf_map_lookup_elem(&tls_sockets, &call.ssl);
		if (!known) {
			count_drop(HT_DROP_TLS_NO_SOCKET);
			return 0;
		}
		call.sk = *known;
	}
	si = bpf_map_lookup_elem(&sockets, &call.sk);
	if (!si || si->left_out)
		return 0;
	in.buf = call.buf;
	in.conn_id = si->conn_id;
	in.sk = call.sk;
	in.fd = si->fd;
	in.syscall = call.dir == HT_DIR_OUT ? HT_SYS_TLS_WRITE : HT_SYS_TLS_READ;
	/* Not emit_call_data: the socket's sequence numbers count the records, not these bytes. */
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (e)
		emit_bytes(ctx, pid_tgid, &in, n, false, si, e, NULL);
	return 0;
}

/*
 * ---- Every method: uprobes on the TLS library, attached by user space per library file ----
 * SSL_read(ssl, buf, num) and SSL_write(ssl, buf, num) return the length; SSL_read_ex(ssl, buf,
 * num, &readbytes) and SSL_write_ex(ssl, buf, num, &written) return 1 and write it.
 */
SEC("uprobe")
int KPROBE(N(uprobe_ssl_read), void *ssl, void *buf)
{
	return on_tls_enter((__u64)ssl, (__u64)buf, 0, HT_DIR_IN);
}

SEC("uprobe")
int KPROBE(N(uprobe_ssl_read_ex), void *ssl, void *buf, __u64 num, void *len_out)
{
	return on_tls_enter((__u64)ssl, (__u64)buf, (__u64)len_out, HT_DIR_IN);
}

SEC("uprobe")
int KPROBE(N(uprobe_ssl_write), void *ssl, void *buf)
{
	return on_tls_enter((__u64)ssl, (__u64)buf, 0, HT_DIR_OUT);
}

SEC("uprobe")
int KPROBE(N(uprobe_ssl_write_ex), void *ssl, void *buf, __u64 num, void *len_out)
{
	return on_tls_enter((__u64)ssl, (__u64)buf, (__u64)len_out, HT_DIR_OUT);
}

/*
 * SSL_do_handshake(ssl), which SSL_accept and SSL_connect call too: no plaintext, but the
 * socket its calls use. TLS 1.3 clients send their first request with the handshake's last
 * message, and the first SSL_read is then served from OpenSSL's buffer with no socket call.
 */
SEC("uprobe")
int KPROBE(N(uprobe_ssl_do_handshake), void *ssl)
{
	return on_tls_enter((__u64)ssl, 0, 0, HT_TLS_HANDSHAKE);
}

/* One return probe for them all: the call in flight says which it was. */
SEC("uretprobe")
int KRETPROBE(N(uretprobe_ssl_call), long ret)
{
	return on_tls_return(ctx, (int)ret);
}
