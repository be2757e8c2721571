// SPDX-License-Identifier: GPL-2.0
/*
 * TLS: the plaintext of OpenSSL's SSL_read, SSL_read_ex, SSL_write and SSL_write_ex, through
 * uprobes that user space attaches to each libssl the traced processes map (hooks_tls.bpf.h).
 * No struct offsets: the socket a call's records went through is the one the socket calls the
 * same thread made inside it name (tls_in_call, from the data path of every attach method), and
 * the SSL object keeps it for the calls served from OpenSSL's own buffer, which make none.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */

/* ht_tls_call.dir of a handshake, which moves no plaintext. */
#define HT_TLS_HANDSHAKE 2

/* A TLS library read, write or handshake in flight on a thread. */
struct ht_tls_call {
	__u64 ssl;     /* the SSL object */
	__u64 buf;     /* its plaintext */
	__u64 len_out; /* _ex calls: where the library writes the length; 0 otherwise */
	__u64 sk;      /* the socket a call inside it used; 0 while none did */
	__u8 dir;      /* HT_DIR_IN: a read; HT_DIR_OUT, HT_TLS_HANDSHAKE */
	__u8 pad[7];
};

/* LRU: a thread killed inside a call never returns from it, and its entry must not stay. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct ht_tls_call);
} tls_calls SEC(".maps");

/* The socket of each SSL object seen with one: for the calls that make no socket call. */
SHARED struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);   /* the SSL object */
	__type(value, __u64); /* struct sock */
} tls_sockets SEC(".maps");

/*
 * Called by the data path for each call on followed socket `sk`: when the thread is inside a
 * TLS call, that call's records go through `sk`.
 */
static __always_inline void tls_in_call(__u64 pid_tgid, __u64 sk)
{
	struct ht_tls_call *call = bpf_map_lookup_elem(&tls_calls, &pid_tgid);

	if (call)
		call->sk = sk;
}
