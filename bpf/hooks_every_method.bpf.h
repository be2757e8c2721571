// SPDX-License-Identifier: GPL-2.0
/*
 * The programs every attach method loads: process lifetime and the end of TCP connections.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
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

SEC("raw_tp/cgroup_mkdir")
int N(raw_tp_cgroup_mkdir)(struct bpf_raw_tracepoint_args *ctx)
{
	return on_cgroup_made(ctx, (struct cgroup *)ctx->args[0], (const char *)ctx->args[1]);
}

/* ---- Every method: the end of TCP connections, whichever process had them ---- */

SEC("raw_tp/inet_sock_set_state")
int N(raw_tp_sock_state)(struct bpf_raw_tracepoint_args *ctx)
{
	return on_sock_state(ctx, ctx->args[0], ctx->args[2]);
}
