//! The traced processes, in one place: those named, their descendants found in /proc at start,
//! the children BPF reports forked, the programs started later that --name and --container
//! watch for, and the processes it reports exited; a liveness check for exits it could not
//! report; each process's identity (its container and PID there); and BPF's set of tracked
//! processes kept in step with all of these. What /proc says comes from `proc_scan`.

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::bpf::types::ht_sock_info;
use crate::bpf::{HttpTraceSkel, TGID_SLOTS};
use crate::container::{container_of, Identity};
use crate::decode::CgroupMade;
use crate::proc_scan;
use crate::tracker::UnixSocket;

/// What `Processes::update` took in: the processes followed since, still alive as far as BPF
/// said, each with its parent when it is a child forked; and those that ended.
pub struct Settled {
    pub new: Vec<(u32, Option<u32>)>,
    pub ended: Vec<u32>,
}

pub struct Processes {
    /// The processes named on the command line.
    named: Vec<u32>,
    follow_children: bool,
    /// A set: a fork-per-request server forks and exits thousands of times a second.
    alive: FxHashSet<u32>,
    /// What BPF reported since the last `update`: children with their parents, programs
    /// started.
    forked: Vec<(u32, u32)>,
    started: Vec<u32>,
    /// --name or --container: new processes are watched for, and tracing goes on with none.
    watching: bool,
    /// Processes started later and followed (--name, --container).
    started_count: u64,
    exited: Vec<u32>,
    /// For the summary: children followed after the start, processes that ended.
    followed: u64,
    ended: u64,
    /// The traced processes found in containers: looked up once, when first seen.
    identities: FxHashMap<u32, Identity>,
    /// --container: the container of each watched cgroup (inode number).
    cgroup_containers: FxHashMap<u64, Identity>,
    /// New cgroups of those containers (restarted), not yet watched in BPF; and those they
    /// replace (removed with the container's stop), to forget there: a container that
    /// restarts all day must not fill BPF's set.
    new_cgroups: Vec<(u64, u32)>,
    old_cgroups: Vec<u64>,
    /// Each watched container's own cgroup in each hierarchy, since its last restart.
    current: FxHashMap<(String, u32), u64>,
    /// For the summary: the watched containers' own cgroups made after the start, by container
    /// and hierarchy (see `restarts`).
    starts: FxHashMap<(String, u32), u64>,
}

impl Processes {
    /// The processes `named`, and their descendants unless `follow_children` is false.
    pub fn new(named: &[u32], follow_children: bool, watching: bool) -> Self {
        let mut alive: FxHashSet<u32> = named.iter().copied().collect();
        if follow_children {
            alive.extend(proc_scan::descendants(named));
        }
        Self {
            named: named.to_vec(),
            follow_children,
            alive,
            forked: Vec::new(),
            started: Vec::new(),
            watching,
            started_count: 0,
            exited: Vec::new(),
            followed: 0,
            ended: 0,
            identities: FxHashMap::default(),
            cgroup_containers: FxHashMap::default(),
            new_cgroups: Vec::new(),
            old_cgroups: Vec::new(),
            current: FxHashMap::default(),
            starts: FxHashMap::default(),
        }
    }

    /// The containers of the cgroups --container watches (inode number: container).
    pub fn with_cgroup_containers(
        mut self,
        cgroups: impl IntoIterator<Item = (u64, Identity)>,
    ) -> Self {
        self.cgroup_containers = cgroups.into_iter().collect();
        self
    }

    /// BPF reported cgroup `made`: when its path is in a watched container (which has restarted,
    /// or made a cgroup of its own inside), it is to be watched too (`watch_new_cgroups`); that
    /// container's id.
    pub fn cgroup_made(&mut self, made: &CgroupMade<'_>) -> Option<String> {
        let path = std::str::from_utf8(made.path).ok()?;
        let (id, pod) = container_of([path])?;
        let known = self
            .cgroup_containers
            .values()
            .any(|c| c.container_id == id);
        if !known || self.cgroup_containers.contains_key(&made.cgroup) {
            return None;
        }
        // The container's own cgroup, not one made inside it: it started again.
        let own = path
            .rsplit('/')
            .next()
            .and_then(|last| container_of([last]))
            .is_some_and(|(last, _)| last == id);
        if own {
            let key = (id.clone(), made.hierarchy);
            *self.starts.entry(key.clone()).or_default() += 1;
            self.old_cgroups
                .extend(self.current.insert(key, made.cgroup));
        }
        let who = Identity {
            container_id: id.clone(),
            pod_uid: pod,
            ns_pid: 0,
        };
        self.cgroup_containers.insert(made.cgroup, who);
        self.new_cgroups.push((made.cgroup, made.hierarchy));
        Some(id)
    }

    /// Watch in BPF the cgroups `cgroup_made` found (and forget those they replace), then adopt
    /// what already runs in their containers (a program that started before the cgroup was
    /// watched): those processes.
    pub fn watch_new_cgroups(&mut self, skel: &HttpTraceSkel<'_>) -> Result<Vec<u32>> {
        for old in std::mem::take(&mut self.old_cgroups) {
            // A failure only means it is gone already.
            let _ = skel.maps.watched_cgroups.delete(&old.to_ne_bytes());
        }
        let cgroups = std::mem::take(&mut self.new_cgroups);
        let mut ids = Vec::new();
        for (cgroup, hierarchy) in cgroups {
            watch_cgroup(skel, cgroup, hierarchy)
                .context("watching a restarted container's cgroup")?;
            let id = &self.cgroup_containers[&cgroup].container_id;
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        let mut adopted = Vec::new();
        for id in ids {
            for pid in proc_scan::in_container(&id).0 {
                if !self.alive.contains(&pid) {
                    self.adopt(skel, pid)?;
                    self.started_count += 1;
                    adopted.push(pid);
                }
            }
        }
        Ok(adopted)
    }

    /// Restarts of the watched containers: each makes the container's cgroup again in every
    /// hierarchy (one with cgroup v2, one per controller set with v1), counted once.
    pub fn restarts(&self) -> u64 {
        let mut most: FxHashMap<&str, u64> = FxHashMap::default();
        for ((id, _), &n) in &self.starts {
            let m = most.entry(id).or_default();
            *m = (*m).max(n);
        }
        most.values().sum()
    }

    /// Which container process `pid` is in, from /proc, kept: None when it is on the host.
    pub fn identify(&mut self, pid: u32) -> Option<Identity> {
        let who = proc_scan::identity(pid);
        self.identified(pid, who)
    }

    /// BPF reported that a watched-for program started as process `pid`, in the cgroup of inode
    /// `cgroup` (already in BPF's set); its identity, when it is in a container.
    pub fn exec_seen(&mut self, pid: u32, ns_pid: u32, cgroup: u64) -> Option<Identity> {
        self.started.push(pid);
        let container = self.cgroup_containers.get(&cgroup).cloned();
        self.identify_new(pid, ns_pid, container)
    }

    /// BPF reported that traced process `parent` forked `child` (already in BPF's set); the
    /// child's identity, when it is in a container.
    pub fn forked(&mut self, parent: u32, child: u32, ns_pid: u32) -> Option<Identity> {
        self.forked.push((child, parent));
        let container = self.identities.get(&parent).cloned();
        self.identify_new(child, ns_pid, container)
    }

    /// A new process's identity: from /proc, or when it is already gone (quick to exit), from
    /// what BPF said of it (`ns_pid`) and where it was found (`container`: its parent's, or the
    /// watched cgroup's).
    fn identify_new(
        &mut self,
        pid: u32,
        ns_pid: u32,
        container: Option<Identity>,
    ) -> Option<Identity> {
        let mut who = proc_scan::identity(pid);
        if let (true, Some(c)) = (who.container_id.is_empty(), container) {
            who.container_id = c.container_id;
            who.pod_uid = c.pod_uid;
        }
        if ns_pid != 0 {
            who.ns_pid = ns_pid;
        }
        self.identified(pid, who)
    }

    fn identified(&mut self, pid: u32, who: Identity) -> Option<Identity> {
        if who.is_empty() {
            return None;
        }
        self.identities.insert(pid, who.clone());
        Some(who)
    }

    pub fn alive(&self) -> impl Iterator<Item = u32> + '_ {
        self.alive.iter().copied()
    }

    pub fn named(&self) -> &[u32] {
        &self.named
    }

    /// The traced processes that were not named (descendants).
    pub fn children(&self) -> usize {
        self.alive.len().saturating_sub(self.named.len())
    }

    /// Children followed since tracing started (a fork-per-request server has thousands).
    pub fn followed(&self) -> u64 {
        self.followed
    }

    /// Traced processes that ended.
    pub fn ended(&self) -> u64 {
        self.ended
    }

    /// Whether tracing has nothing left to wait for: no process, and none watched for.
    pub fn is_empty(&self) -> bool {
        self.alive.is_empty() && !self.watching
    }

    /// Processes started later and followed (--name, --container).
    pub fn started(&self) -> u64 {
        self.started_count
    }

    /// Put every process in BPF's set (before the programs attach).
    pub fn track_all(&self, skel: &HttpTraceSkel<'_>) -> Result<()> {
        self.alive.iter().try_for_each(|&pid| track(skel, pid))
    }

    /// Once attached: children forked between the scan at start and the attach are looked for
    /// again (BPF follows the ones forked after it).
    pub fn rescan(&mut self, skel: &HttpTraceSkel<'_>) -> Result<()> {
        if !self.follow_children {
            return Ok(());
        }
        for pid in proc_scan::descendants(&self.named) {
            if !self.alive.contains(&pid) {
                track(skel, pid)?;
                self.alive.insert(pid);
            }
        }
        Ok(())
    }

    /// A process found by a scan after the programs attached (--name, --container: it started
    /// between the scan at start and the attach, when no exec could be seen): traced as named.
    pub fn adopt(&mut self, skel: &HttpTraceSkel<'_>, pid: u32) -> Result<()> {
        if self.alive.contains(&pid) {
            return Ok(());
        }
        track(skel, pid)?;
        self.alive.insert(pid);
        self.named.push(pid);
        Ok(())
    }

    /// BPF reported that traced process `tgid` exited.
    pub fn exited(&mut self, tgid: u32) {
        self.exited.push(tgid);
    }

    /// Take in what BPF reported: say which processes were followed or ended, and forget the
    /// ended ones in BPF; those new and those ended.
    pub fn update(&mut self, skel: &HttpTraceSkel<'_>) -> Settled {
        let settled = self.settle();
        for &pid in &settled.ended {
            forget(skel, pid);
        }
        settled
    }

    /// The bookkeeping of `update`.
    fn settle(&mut self) -> Settled {
        let mut new = Vec::new();
        for (pid, parent) in std::mem::take(&mut self.forked) {
            // The rescan at start may have found it already.
            if self.alive.insert(pid) {
                log::info!("following new child process {pid}");
                self.followed += 1;
                new.push((pid, Some(parent)));
            }
        }
        for pid in std::mem::take(&mut self.started) {
            if self.alive.insert(pid) {
                log::info!("following process {pid}, started");
                self.started_count += 1;
                new.push((pid, None));
            }
        }
        let ended = std::mem::take(&mut self.exited);
        for pid in &ended {
            if self.alive.remove(pid) {
                log::info!("process {pid} exited");
                self.ended += 1;
            }
            // Its forks came before its exit: no later event asks for its container.
            self.identities.remove(pid);
        }
        let ended_set: FxHashSet<u32> = ended.iter().copied().collect();
        new.retain(|(pid, _)| !ended_set.contains(pid));
        Settled { new, ended }
    }

    /// Exits that BPF could not report: the processes found gone, already forgotten in BPF.
    pub fn check_liveness(&mut self, skel: &HttpTraceSkel<'_>) -> Vec<u32> {
        let mut gone = Vec::new();
        self.alive.retain(|&pid| {
            let up = proc_scan::process_alive(pid);
            if !up {
                log::info!("process {pid} exited");
                self.ended += 1;
                forget(skel, pid);
                self.identities.remove(&pid);
                gone.push(pid);
            }
            up
        });
        gone
    }
}

/// Drop BPF's entry of Unix connection `u`, whose socket is gone (BPF sees TCP sockets end, not
/// Unix ones): unless the entry already belongs to a new socket at the same address.
pub fn forget_socket(skel: &HttpTraceSkel<'_>, u: &UnixSocket) {
    let key = u.sk.to_ne_bytes();
    let Ok(Some(raw)) = skel.maps.sockets.lookup(&key, MapFlags::ANY) else {
        return;
    };
    let mut info = ht_sock_info::default();
    if plain::copy_from_bytes(&mut info, &raw).is_ok() && info.conn_id == u.conn_id {
        // A failure only means the entry is already gone.
        let _ = skel.maps.sockets.delete(&key);
    }
}

/// Watch cgroup `id` of hierarchy `hierarchy` for programs started (BPF's watched_cgroups: each
/// hierarchy numbers its cgroups on its own, so the value says which one the id is of).
pub fn watch_cgroup(skel: &HttpTraceSkel<'_>, id: u64, hierarchy: u32) -> Result<()> {
    let value = u8::try_from(hierarchy + 1).context("a cgroup hierarchy id past 254")?;
    skel.maps
        .watched_cgroups
        .update(&id.to_ne_bytes(), &[value], MapFlags::ANY)?;
    Ok(())
}

/// Trace process `pid` in BPF.
fn track(skel: &HttpTraceSkel<'_>, pid: u32) -> Result<()> {
    let slot = pid % TGID_SLOTS;
    skel.maps
        .tgid_slots
        .update(&slot.to_ne_bytes(), &[1u8], MapFlags::ANY)
        .and_then(|()| {
            skel.maps
                .tracked_tgids
                .update(&pid.to_ne_bytes(), &[1u8], MapFlags::ANY)
        })
        .with_context(|| format!("adding process {pid} to the tracked set"))
}

/// Forget process `pid` in BPF (it exited; its PID may be reused): stop tracing it. Its sockets
/// are keyed by socket, not by process: another process may still hold them, and those its exit
/// released end with their TCP state, in BPF. So this costs one map operation, whatever the
/// number of connections, for fork-per-request servers' thousands of exits a second.
fn forget(skel: &HttpTraceSkel<'_>, pid: u32) {
    // A failure only means the entry is already gone (BPF removes it at the exit it reports).
    let _ = skel.maps.tracked_tgids.delete(&pid.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past any pid_max: /proc knows nothing of it, as of a process quick to exit.
    const GONE: u32 = 4_000_000_001;

    #[test]
    fn a_container_is_remembered_while_its_process_lives() {
        let c = Identity {
            container_id: "ab".repeat(32),
            pod_uid: String::new(),
            ns_pid: 0,
        };
        let mut p = Processes::new(&[], false, true).with_cgroup_containers([(7, c.clone())]);
        let who = p
            .exec_seen(GONE, 1, 7)
            .expect("in the watched cgroup's container");
        assert_eq!((&who.container_id, who.ns_pid), (&c.container_id, 1));
        // Its child is in its container, with a PID of its own there.
        let child = p
            .forked(GONE, GONE + 1, 2)
            .expect("in its parent's container");
        assert_eq!((&child.container_id, child.ns_pid), (&c.container_id, 2));
        p.exited(GONE);
        let settled = p.settle();
        assert_eq!(
            (settled.new, settled.ended),
            (vec![(GONE + 1, Some(GONE))], vec![GONE])
        );
        assert_eq!((p.started(), p.followed(), p.ended()), (1, 1, 1));
        assert_eq!(p.alive().collect::<Vec<_>>(), [GONE + 1]);
        assert_eq!(p.identities.keys().collect::<Vec<_>>(), [&(GONE + 1)]);
        // The child's own child is in the container still; the ended process is forgotten.
        assert!(p.forked(GONE + 1, GONE + 2, 0).is_some());
        assert_eq!(p.forked(GONE, GONE + 3, 0), None);
    }

    /// A watched container's new cgroups are taken, each once; a restart is counted once
    /// however many hierarchies make it (cgroup v1), and not for a cgroup made inside the
    /// container; other containers' cgroups are not taken.
    #[test]
    fn a_restarted_container_is_watched_again() {
        let id = "ab".repeat(32);
        let c = Identity {
            container_id: id.clone(),
            pod_uid: String::new(),
            ns_pid: 0,
        };
        let mut p = Processes::new(&[], false, true).with_cgroup_containers([(7, c)]);
        let own = format!("/docker/{id}");
        for (cgroup, hierarchy, path, taken) in [
            (8, 1, own.clone(), true),
            (9, 2, own.clone(), true),
            (8, 1, own.clone(), false),
            (10, 1, format!("{own}/init.scope"), true),
            (11, 1, format!("/docker/{}", "cd".repeat(32)), false),
            (12, 1, "/user.slice".to_string(), false),
        ] {
            let e = CgroupMade {
                cgroup,
                hierarchy,
                path: path.as_bytes(),
            };
            assert_eq!(p.cgroup_made(&e).is_some(), taken, "{path}");
        }
        assert_eq!(p.new_cgroups, [(8, 1), (9, 2), (10, 1)]);
        assert!(p.old_cgroups.is_empty());
        assert_eq!(p.restarts(), 1);
        let again = CgroupMade {
            cgroup: 13,
            hierarchy: 2,
            path: own.as_bytes(),
        };
        assert!(p.cgroup_made(&again).is_some());
        assert_eq!(p.restarts(), 2);
        // It replaces the one of the restart before in that hierarchy: forgotten in BPF.
        assert_eq!(p.old_cgroups, [9]);
    }
}
