// SPDX-License-Identifier: GPL-2.0
/*
 * Attach method raw-tracepoint: one program on the raw sys_exit tracepoint.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
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
	if (is_mmsg(nr))
		return on_mmsg_done(ctx, ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM2_SYSCALL(regs),
				    nr == NR_sendmmsg ? HT_DIR_OUT : HT_DIR_IN);
	/* Every read and write on the machine ends here: leave early for other processes. */
	syscall = io_syscall(nr);
	if (syscall == HT_SYS_NONE) {
		if (nr == NR_connect && tgid_tracked(pid_tgid >> 32))
			return on_connect_done(ctx, pid_tgid, PT_REGS_PARM1_SYSCALL(regs), ret);
		/* Bytes put into a pipe (tee: its second), which a splice may send on a socket. */
		if ((nr == NR_vmsplice || nr == NR_tee) && ret > 0 && tgid_tracked(pid_tgid >> 32))
			N(ht_note_pipe_write)(nr == NR_tee ? PT_REGS_PARM2_SYSCALL(regs) : PT_REGS_PARM1_SYSCALL(regs),
					      ret);
		return 0;
	}
	if (ret <= 0 || !tgid_tracked(pid_tgid >> 32))
		return 0;
	/* A BTF pointer: its fields load directly, with no helper call. */
	CALL_FROM_REGS(&c, syscall, regs);
	si = entry_from_regs(ctx, pid_tgid, ret, &c, &in, 0);
	if (si)
		emit_data(ctx, pid_tgid, &in, ret, syscall_vectored(syscall), si);
	else if (syscall_direction(syscall) == HT_DIR_OUT)
		N(ht_note_pipe_write)(c.fd, ret); /* into a pipe it may splice into a socket */
	return 0;
}
