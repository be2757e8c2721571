// SPDX-License-Identifier: GPL-2.0
/*
 * http-trace: follow the TCP sockets that tracked processes accept, connect or use, and copy the
 * bytes they receive and send into a BPF ring buffer, or a perf event array where the kernel has
 * no ring buffer.
 *
 * The logic lives in one static function per event (accept returned, connect entered and
 * returned, receive or send entered and returned, close entered or returned, socket I/O done,
 * TCP state reached CLOSE, process exited, forked); a receive or send call travels between them
 * as one struct ht_call. Below them, thin SEC() wrappers adapt each attach method's context:
 * socket tracepoints, raw syscall tracepoints, kprobes (the product card's design), fentry/fexit,
 * and the syscalls:* tracepoints. User space picks a method by turning autoload off for the other
 * methods' programs.
 *
 * This file holds the build's switches and constants, and includes the rest in order: state
 * (settings, maps, counters), pipes (the pages of pipe buffers, for splice), tls (TLS library
 * calls in flight), data (calls and the copy of their bytes), sockets (which are followed,
 * accept, connect), io (receive and send calls), ends (close, TCP CLOSE), processes, then the
 * thin wrappers: hooks_every_method, hooks_tls (the TLS library's uprobes) and one
 * hooks_METHOD file per attach method.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "http_trace.h"

/*
 * The raw-tracepoint and socket-tracepoint methods tell syscalls apart by their x86-64 numbers
 * and the fentry method hooks __x64_sys_* entry points: other architectures need their own.
 */
#ifndef __TARGET_ARCH_x86
#error "http-trace's BPF programs support x86-64 only (syscall numbers, __x64_sys_* functions)"
#endif

/*
 * The object holds two builds of this file, linked into one by build.rs: the modern build, for
 * kernels with bpf_loop() (5.17+, which implies the atomics that return a value, 5.12, and
 * callbacks, 5.13), and the legacy build (HT_LEGACY, compiled with -mcpu=v2) for older kernels
 * down to 5.10: their verifier refuses those instruction forms even in code that never runs, so
 * no load-time branch can hide them from it. The legacy build's programs end in _legacy and it
 * declares the maps and globals extern, so both builds share one set. User space loads one
 * build's programs, chosen by probing the kernel for bpf_loop().
 */
#ifdef HT_LEGACY
#define N(name) name##_legacy
#define SHARED extern
#define GLOBAL(decl, init) extern decl
#else
#define N(name) name
#define SHARED
#define GLOBAL(decl, init) decl = init
char LICENSE[] SEC("license") = "GPL";
#endif
/*
 * Field `field` of kernel object `ptr`, of type `type`, on the paths every followed call takes.
 * Where the kernel has bpf_rdonly_cast() (6.2+), each read is a load the verifier lets fault
 * safely, not a call of bpf_probe_read_kernel(); the legacy build's kernels lack it. The test is
 * a constant at load: the verifier drops the path not taken.
 */
#ifdef HT_LEGACY
#define KREAD(type, ptr, field) BPF_CORE_READ((type *)(ptr), field)
#else
#define KREAD(type, ptr, field)                                                                              \
	(bpf_ksym_exists(bpf_rdonly_cast) ? bpf_core_cast((void *)(ptr), type)->field                     \
					  : BPF_CORE_READ((type *)(ptr), field))
#endif
/* The libbpf program macros paste their name unexpanded: these expand N() first. */
#define PROG(name, ...) BPF_PROG(name, ##__VA_ARGS__)
#define KPROBE(name, ...) BPF_KPROBE(name, ##__VA_ARGS__)
#define KRETPROBE(name, ...) BPF_KRETPROBE(name, ##__VA_ARGS__)
#define KSYSCALL(name, ...) BPF_KSYSCALL(name, ##__VA_ARGS__)

/* From uapi headers, which vmlinux.h does not carry. */
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EAGAIN 11
#define EINPROGRESS 115
#define MSG_PEEK 2
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11
/* No direction: emit_unseen called where no call moved bytes. */
#define HT_DIR_NONE 2

#include "state.bpf.h"
#include "pipes.bpf.h"
#include "tls.bpf.h"
#include "data.bpf.h"
#include "sockets.bpf.h"
#include "io.bpf.h"
#include "ends.bpf.h"
#include "processes.bpf.h"
#include "hooks_every_method.bpf.h"
#include "hooks_tls.bpf.h"
#include "hooks_kprobe.bpf.h"
#include "hooks_fentry.bpf.h"
#include "hooks_raw_tracepoint.bpf.h"
#include "hooks_socket_tracepoint.bpf.h"
#include "hooks_tracepoint.bpf.h"
