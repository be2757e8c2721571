// SPDX-License-Identifier: GPL-2.0
/*
 * Attach method kprobe: the thin wrappers of its kprobes and kretprobes.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
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

/* preadv2/pwritev2 at offset -1 (the file's position) work on a socket as readv/writev do. */
SEC("ksyscall/preadv2")
int KSYSCALL(N(kprobe_preadv2), unsigned long fd, const struct iovec *vec, unsigned long vlen)
{
	return on_io_call(ctx, HT_SYS_READV, fd, (__u64)vec, vlen, 0);
}

SEC("kretsyscall/preadv2")
int KRETPROBE(N(kretprobe_preadv2), long ret)
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

SEC("ksyscall/pwritev2")
int KSYSCALL(N(kprobe_pwritev2), unsigned long fd, const struct iovec *vec, unsigned long vlen)
{
	return on_io_call(ctx, HT_SYS_WRITEV, fd, (__u64)vec, vlen, 0);
}

SEC("kretsyscall/pwritev2")
int KRETPROBE(N(kretprobe_pwritev2), long ret)
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

SEC("ksyscall/splice")
int KSYSCALL(N(kprobe_splice), int fd_in, void *off_in, int fd_out)
{
	return on_splice_enter(fd_in, fd_out);
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
