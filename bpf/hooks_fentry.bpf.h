// SPDX-License-Identifier: GPL-2.0
/*
 * Attach method fentry: the thin wrappers of its fentry and fexit programs.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
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

SEC("fentry/__x64_sys_preadv2")
int PROG(N(fentry_preadv2), const struct pt_regs *regs)
{
	return on_io_regs(ctx, HT_SYS_READV, regs);
}

SEC("fexit/__x64_sys_preadv2")
int PROG(N(fexit_preadv2), const struct pt_regs *regs, long ret)
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

SEC("fentry/__x64_sys_pwritev2")
int PROG(N(fentry_pwritev2), const struct pt_regs *regs)
{
	return on_io_regs(ctx, HT_SYS_WRITEV, regs);
}

SEC("fexit/__x64_sys_pwritev2")
int PROG(N(fexit_pwritev2), const struct pt_regs *regs, long ret)
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

SEC("fentry/__x64_sys_splice")
int PROG(N(fentry_splice), const struct pt_regs *regs)
{
	return on_splice_enter(PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM3_SYSCALL(regs));
}

SEC("fexit/__x64_sys_splice")
int PROG(N(fexit_splice), const struct pt_regs *regs, long ret)
{
	return on_splice_done(ctx, ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM3_SYSCALL(regs));
}

/*
 * No fexit on sendmmsg/recvmmsg: 5.10's BTF gives __x64_sys_sendmmsg's argument as a forward
 * declaration, which fexit refuses, and __sys_recvmmsg has one argument too many for its
 * trampolines. This method loads their syscalls:sys_exit_* tracepoints instead (user space's
 * Method::owns_section).
 */

SEC("fentry/__x64_sys_close")
int PROG(N(fentry_close), const struct pt_regs *regs)
{
	return on_close_enter(ctx, PT_REGS_PARM1_SYSCALL(regs));
}
