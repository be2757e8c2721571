// SPDX-License-Identifier: GPL-2.0
/*
 * Attach method tracepoint: the thin wrappers of the syscalls:* tracepoints.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
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

SEC("tracepoint/syscalls/sys_enter_preadv2")
int N(tp_enter_preadv2)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_READV, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_preadv2")
int N(tp_exit_preadv2)(struct trace_event_raw_sys_exit *ctx)
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

SEC("tracepoint/syscalls/sys_enter_pwritev2")
int N(tp_enter_pwritev2)(struct trace_event_raw_sys_enter *ctx)
{
	return on_io_call(ctx, HT_SYS_WRITEV, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_pwritev2")
int N(tp_exit_pwritev2)(struct trace_event_raw_sys_exit *ctx)
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

SEC("tracepoint/syscalls/sys_enter_splice")
int N(tp_enter_splice)(struct trace_event_raw_sys_enter *ctx)
{
	return on_splice_enter(ctx->args[0], ctx->args[2]);
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
