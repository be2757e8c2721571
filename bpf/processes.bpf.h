// SPDX-License-Identifier: GPL-2.0
/*
 * Processes: which are tracked, and the events of their exit, fork and exec.
 *
 * Part of http_trace.bpf.c, which includes the files of bpf/ in order: each uses what those
 * before it define.
 */
/* Event: a task exited. When it was the last thread of a tracked process, say so. */
static __always_inline int on_task_exit(void *ctx, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (!tgid_tracked(tgid) || BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	bpf_map_delete_elem(&tracked_tgids, &tgid);
	emit_process(ctx, tgid, HT_EV_EXIT, 0, 0, 0);
	return 0;
}

/*
 * A new task's PID in the innermost PID namespace it is in (a container's), 0 in the host's:
 * user space reads it from /proc too late when the child is quick to exit.
 */
static __always_inline __u32 ns_pid_of(struct task_struct *t)
{
	struct pid *p = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(p, level);
	int nr = 0;

	/* MAX_PID_NS_LEVEL is 32; the bound is for the verifier. */
	if (level == 0 || level >= 32)
		return 0;
	bpf_core_read(&nr, sizeof(nr), &p->numbers[level].nr);
	return (__u32)nr;
}

/* Track process `tgid` from now on; false (counted) when the set is full. */
static __always_inline bool track_tgid(__u32 tgid)
{
	__u32 slot = tgid % HT_TGID_SLOTS;
	__u8 one = 1;

	if (bpf_map_update_elem(&tracked_tgids, &tgid, &one, BPF_ANY)) {
		count_drop(HT_DROP_PROCESSES_FULL);
		return false;
	}
	bpf_map_update_elem(&tgid_slots, &slot, &one, BPF_ANY);
	return true;
}

/* Event: a task forked. A new process of a tracked one is tracked too (threads already are). */
static __always_inline int on_fork(void *ctx, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);

	if (!follow_children || ctgid == ptgid || !tgid_tracked(ptgid) || !track_tgid(ctgid))
		return 0;
	emit_process(ctx, ptgid, HT_EV_FORK, ctgid, ns_pid_of(child), 0);
	return 0;
}

/*
 * Whether cgroup `id` of hierarchy `hierarchy` is watched: each hierarchy numbers its cgroups
 * on its own, so an id alone may be another hierarchy's cgroup (a host process's, seen so on
 * a v1 host). The map's value is the hierarchy's id + 1.
 */
static __always_inline bool cgroup_watched(__u64 id, int hierarchy)
{
	__u8 *h = bpf_map_lookup_elem(&watched_cgroups, &id);

	return h && *h == hierarchy + 1;
}

/*
 * The watched cgroup the current task is in, 0 if none: its cgroup v2 one (hierarchy 0), or
 * one of its cgroup v1 controllers' (a container's cgroups on a v1 or hybrid host).
 */
static __always_inline __u64 watched_cgroup(struct task_struct *t)
{
	struct css_set *cs = BPF_CORE_READ(t, cgroups);
	unsigned int n = bpf_core_field_size(cs->subsys) / sizeof(cs->subsys[0]);
	__u64 id = bpf_get_current_cgroup_id();

	if (cgroup_watched(id, 0))
		return id;
	/* CGROUP_SUBSYS_COUNT is 14 in the kernels of today; the bound is for the verifier. */
	for (unsigned int i = 0; i < 16; i++) {
		struct cgroup_subsys_state *css = NULL;

		if (i >= n)
			break;
		bpf_core_read(&css, sizeof(css), &cs->subsys[i]);
		if (!css)
			continue;
		id = BPF_CORE_READ(css, cgroup, kn, id);
		if (cgroup_watched(id, BPF_CORE_READ(css, cgroup, root, hierarchy_id)))
			return id;
	}
	return 0;
}

/*
 * Event: a program started (execve). With --name or --container, one that is watched for (by
 * its new command name, or by its cgroup) is tracked from here: before it can serve anything.
 */
static __always_inline int on_exec(void *ctx, struct task_struct *task)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	char comm[TASK_COMM_LEN] = {};
	__u64 cgroup = 0;

	if (!watch_execs || tgid_tracked(tgid))
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (!bpf_map_lookup_elem(&watched_names, comm)) {
		cgroup = watched_cgroup(task);
		if (!cgroup)
			return 0;
	}
	if (!track_tgid(tgid))
		return 0;
	emit_process(ctx, tgid, HT_EV_EXEC, 0, ns_pid_of(task), cgroup);
	return 0;
}

/*
 * Event: a cgroup was made. With --container, say so with its path: a container that restarts
 * (docker restart, stop and start, a restart policy) has a new cgroup, made before its first
 * program starts in it; once user space has added it to watched_cgroups, that program is traced
 * from its exec like the container's others. Cgroups are made seldom (a container, a service, a
 * login): every one is sent, and user space picks the container's by the id in the path.
 */
static __always_inline int on_cgroup_made(void *ctx, struct cgroup *cgrp, const char *path)
{
	struct ht_cgroup_event e;
	long n;

	if (!watch_new_cgroups)
		return 0;
	fill_header(&e.hdr, bpf_get_current_pid_tgid(), HT_EV_CGROUP, HT_SYS_NONE, -1, 0, 0);
	e.cgroup = BPF_CORE_READ(cgrp, kn, id);
	e.hierarchy = BPF_CORE_READ(cgrp, root, hierarchy_id);
	n = bpf_probe_read_kernel_str(e.path, sizeof(e.path), path);
	e.path_len = n > 0 ? (__u32)n - 1 : 0;
	/* Now, not at the next poll: the container's first program may start within milliseconds. */
	output(ctx, &e, sizeof(e), BPF_RB_FORCE_WAKEUP);
	return 0;
}
