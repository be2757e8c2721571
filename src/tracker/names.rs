//! Who made each call: the process's name and the thread's. BPF reads them only for the events
//! that open a connection and for the first data event of each thread on a socket (reading them
//! per call cost 6% of its time); the other events are named from those.

use rustc_hash::FxHashMap;

use crate::decode::{Chunk, ChunkKind, Comm, ConnMeta};

/// Thread names remembered, at most: past it they are forgotten all at once and learned again
/// from the events that carry them (each thread's next on a new socket). Threads come and go
/// without an event of their own.
const THREADS_REMEMBERED: usize = 1 << 16;

#[derive(Default)]
pub(super) struct Names {
    /// By process, forgotten at its exit.
    processes: FxHashMap<u32, Comm>,
    /// By thread, for the threads whose name is not their process's (a worker's): a lookup
    /// that finds none names the thread as its process.
    threads: FxHashMap<u32, Comm>,
}

impl Names {
    /// Learn the names an event carries: an opening's and a data event's are those of the
    /// task that made the call. (A close may be seen on another task's time: it names nothing.)
    pub(super) fn learn<B>(&mut self, chunk: &Chunk<B>) {
        let m = &chunk.meta;
        if matches!(chunk.kind, ChunkKind::Close) || m.comm.is_empty() {
            return;
        }
        self.processes.insert(m.tgid, m.comm);
        // A thread named as its process is shown without a name of its own: not kept.
        if !m.thread.is_empty() && m.thread != m.comm {
            if self.threads.len() >= THREADS_REMEMBERED {
                self.threads.clear();
            }
            self.threads.insert(m.tid, m.thread);
        }
    }

    /// The names of a call whose event carries none (most data events): its process's as the
    /// connection's last caller had it when it is the same process, else as the process's
    /// events last named it (an fd passed or inherited, or the opening lost), else, unknown,
    /// the connection's; its thread's as its events last named it, else the last caller's when
    /// it is the same thread.
    pub(super) fn name(&self, meta: ConnMeta, last: &ConnMeta) -> ConnMeta {
        if !meta.comm.is_empty() {
            return meta;
        }
        let comm = if meta.tgid == last.tgid && !last.comm.is_empty() {
            last.comm
        } else {
            self.processes.get(&meta.tgid).copied().unwrap_or(last.comm)
        };
        // The same thread as the last caller, the common case, needs no lookup.
        let thread = if meta.tid == last.tid && !last.thread.is_empty() {
            last.thread
        } else {
            self.threads.get(&meta.tid).copied().unwrap_or_default()
        };
        ConnMeta {
            comm,
            thread,
            ..meta
        }
    }

    pub(super) fn process_exited(&mut self, tgid: u32) {
        self.processes.remove(&tgid);
    }

    #[cfg(test)]
    pub(super) fn knows_process(&self, tgid: u32) -> bool {
        self.processes.contains_key(&tgid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Chunk, ChunkKind};

    fn meta(tgid: u32, tid: u32, comm: &str, thread: &str) -> ConnMeta {
        ConnMeta {
            tgid,
            tid,
            fd: 3,
            comm: Comm::new(comm),
            thread: Comm::new(thread),
        }
    }

    fn chunk(meta: ConnMeta, kind: ChunkKind<&'static [u8]>) -> Chunk<&'static [u8]> {
        Chunk {
            conn_id: 1,
            seq: 0,
            ts_ns: 0,
            meta,
            kind,
        }
    }

    /// A worker thread named by its first event on a socket names its later ones; another
    /// process sharing the socket is named by its own events; a close names nothing.
    #[test]
    fn unnamed_calls_are_named_from_the_named_ones() {
        let mut n = Names::default();
        let opener = meta(10, 10, "puma", "puma");
        n.learn(&chunk(
            meta(10, 11, "puma", "puma srv tp 001"),
            ChunkKind::Close,
        ));
        assert_eq!(
            n.name(meta(10, 11, "", ""), &opener).thread,
            Comm::default()
        );
        let worker = meta(10, 11, "puma", "puma srv tp 001");
        let data = ChunkKind::Data(crate::decode::Data {
            direction: crate::decode::Direction::In,
            offset: 0,
            ret: 0,
            last: true,
            no_data: false,
            unseen: false,
            spliced: false,
            tls: false,
            bytes: &b""[..],
        });
        n.learn(&chunk(worker, data.clone()));
        assert_eq!(n.name(meta(10, 11, "", ""), &opener), worker);
        // The same thread as the last caller, its name not learned: the last caller's.
        assert_eq!(n.name(meta(10, 10, "", ""), &opener), opener);
        // Another process on the socket, named by its own opening earlier.
        n.learn(&chunk(meta(20, 20, "worker", "worker"), data));
        assert_eq!(
            n.name(meta(20, 20, "", ""), &opener).comm,
            Comm::new("worker")
        );
        n.process_exited(20);
        // Forgotten: unknown, it takes the connection's.
        assert_eq!(
            n.name(meta(20, 21, "", ""), &opener).comm,
            Comm::new("puma")
        );
        // An event that carries names keeps them.
        assert_eq!(n.name(worker, &opener), worker);
    }
}
