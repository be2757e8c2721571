//! Which container a process runs in, from the paths of its cgroups (/proc/PID/cgroup), and its
//! PID in its own PID namespace, from its NSpid list (/proc/PID/status). Pure functions of what
//! the caller read through the procfs crate (once per process).
//!
//! The container id is the 64-hex-digit id that every runtime puts in its cgroup's path:
//! - cgroupfs driver: `/docker/<id>` (docker), `/kubepods/burstable/pod<uid>/<id>` (Kubernetes
//!   with containerd or cri-o), `/libpod_parent/libpod-<id>` (podman), `/<namespace>/<id>`
//!   (containerd alone);
//! - systemd driver: `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`,
//!   `libpod-<id>.scope` (podman, whose v2 layout may add a `/container` leaf), under
//!   `kubepods-<qos>-pod<uid>.slice` for a pod (the uid's dashes written as underscores).
//!
//! It is in every controller's line on cgroup v1, in the one `0::` line on v2. The conmon
//! monitors of cri-o and podman (`crio-conmon-<id>.scope`, `libpod-conmon-<id>.scope`) are not
//! containers.

/// What a container runtime says of a process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// The full container id (64 hex digits); empty for a process on the host.
    pub container_id: String,
    /// The Kubernetes pod's UID, when the cgroup path names one.
    pub pod_uid: String,
    /// The process's PID in its own PID namespace, when that is not the host's (0: none).
    pub ns_pid: u32,
}

impl Identity {
    /// Whether there is anything to show: a process on the host has nothing.
    pub fn is_empty(&self) -> bool {
        self.container_id.is_empty() && self.ns_pid == 0
    }

    /// The id as `docker ps` shows it: its first 12 digits.
    pub fn short_id(&self) -> &str {
        &self.container_id[..self.container_id.len().min(12)]
    }

    /// The identity of a process, from its cgroups' paths and its NSpid list.
    pub fn of<'a>(cgroup_paths: impl IntoIterator<Item = &'a str>, nspid: &[i32]) -> Identity {
        let (container_id, pod_uid) = container_of(cgroup_paths).unwrap_or_default();
        Identity {
            container_id,
            pod_uid,
            ns_pid: ns_pid(nspid).unwrap_or(0),
        }
    }
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container id in one path segment: the segment itself, or a runtime's scope around it.
fn id_in_segment(seg: &str) -> Option<&str> {
    if is_id(seg) {
        return Some(seg);
    }
    let inner = seg.strip_suffix(".scope").unwrap_or(seg);
    if inner.contains("conmon-") {
        return None;
    }
    let id = &inner[inner.rfind('-')? + 1..];
    is_id(id).then_some(id)
}

/// A Kubernetes pod's UID in one path segment: `pod<uid>` or `kubepods-<qos>-pod<uid>.slice`.
fn pod_in_segment(seg: &str) -> Option<String> {
    let seg = seg.strip_suffix(".slice").unwrap_or(seg);
    let at = seg.rfind("pod")?;
    if at > 0 && !seg[..at].ends_with('-') {
        return None;
    }
    let uid = seg[at + 3..].replace('_', "-");
    let uuid = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    uuid.then_some(uid)
}

/// The container id and pod UID (empty when none) that a process's cgroup paths name (one per
/// cgroup v1 hierarchy, one for v2).
pub fn container_of<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<(String, String)> {
    paths.into_iter().find_map(|path| {
        let segments: Vec<&str> = path.split('/').collect();
        // The innermost container: the last segment that names one.
        let at = segments.iter().rposition(|s| id_in_segment(s).is_some())?;
        let id = id_in_segment(segments[at])?.to_ascii_lowercase();
        let pod = segments[..at]
            .iter()
            .rev()
            .find_map(|s| pod_in_segment(s))
            .unwrap_or_default();
        Some((id, pod))
    })
}

/// The PID in the innermost PID namespace, from the NSpid list, when the process is in a
/// namespace of its own (more than one PID listed).
pub fn ns_pid(nspid: &[i32]) -> Option<u32> {
    match nspid {
        [_, .., last] => u32::try_from(*last).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "c23cf607e7236f0e3dd01b8b6e42cbc5d2a8e3b5a1a0c9b65d8f6a1d2b3c4e5f";
    const UID: &str = "0f6c1c5e-4b1d-4d3e-9a0a-1b2c3d4e5f60";

    /// The paths of a /proc/PID/cgroup text (hierarchy-ID:controllers:path; the path may hold
    /// colons), as procfs gives them.
    fn paths(cgroup: &str) -> Vec<&str> {
        cgroup
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .collect()
    }

    fn found(cgroup: &str) -> (String, String) {
        container_of(paths(cgroup)).unwrap_or_else(|| panic!("no container in {cgroup}"))
    }

    #[test]
    fn docker_on_cgroup_v1_and_v2_with_each_driver() {
        // cgroupfs driver, v1: every controller names it.
        let v1 = format!(
            "12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/system.slice/containerd.service\n"
        );
        assert_eq!(found(&v1), (ID.into(), String::new()));
        // systemd driver, v2.
        assert_eq!(
            found(&format!("0::/system.slice/docker-{ID}.scope\n")),
            (ID.into(), String::new())
        );
        // systemd driver, v1.
        assert_eq!(
            found(&format!(
                "10:cpu,cpuacct:/system.slice/docker-{ID}.scope\n1:name=systemd:/system.slice/docker-{ID}.scope\n"
            ))
            .0,
            ID
        );
        // cgroupfs driver, v2: /docker/ID.
        assert_eq!(found(&format!("0::/docker/{ID}\n")).0, ID);
    }

    #[test]
    fn kubernetes_layouts_give_the_pod() {
        let under = UID.replace('-', "_");
        // containerd (CRI), systemd driver, v2.
        let cri = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{under}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(found(&cri), (ID.into(), UID.into()));
        // cri-o, systemd driver, guaranteed QoS (no QoS slice).
        let crio = format!("0::/kubepods.slice/kubepods-pod{under}.slice/crio-{ID}.scope\n");
        assert_eq!(found(&crio), (ID.into(), UID.into()));
        // cgroupfs driver, v1 (containerd or docker-shim).
        let v1 = format!("4:memory:/kubepods/besteffort/pod{UID}/{ID}\n");
        assert_eq!(found(&v1), (ID.into(), UID.into()));
        // cri-o's conmon is not the container.
        let conmon =
            format!("0::/kubepods.slice/kubepods-pod{under}.slice/crio-conmon-{ID}.scope\n");
        assert_eq!(container_of(paths(&conmon)), None);
    }

    #[test]
    fn podman_and_containerd_alone() {
        // podman, rootful, systemd driver, v2, with its container leaf.
        assert_eq!(
            found(&format!("0::/machine.slice/libpod-{ID}.scope/container\n")),
            (ID.into(), String::new())
        );
        assert_eq!(
            container_of(paths(&format!(
                "0::/machine.slice/libpod-conmon-{ID}.scope\n"
            ))),
            None
        );
        // podman, cgroupfs driver, v1.
        assert_eq!(found(&format!("3:cpu:/libpod_parent/libpod-{ID}\n")).0, ID);
        // containerd without Kubernetes (ctr, nerdctl): /<namespace>/<id>.
        assert_eq!(found(&format!("0::/default/{ID}\n")).0, ID);
        // Upper-case hex is not written by any runtime, but is read the same.
        assert_eq!(found(&format!("0::/docker/{}\n", ID.to_uppercase())).0, ID);
    }

    #[test]
    fn host_processes_have_none() {
        for text in [
            "0::/\n",
            "0::/init.scope\n",
            "0::/system.slice/nginx.service\n",
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "9:name=systemd:/\n4:memory:/process_api/0ef32f3dbf0780ae76e2c2c7a4967606\n0::/\n",
            "",
        ] {
            assert_eq!(container_of(paths(text)), None, "{text}");
        }
    }

    #[test]
    fn ns_pid_of_a_namespaced_process() {
        assert_eq!(ns_pid(&[4321, 7]), Some(7));
        assert_eq!(ns_pid(&[4321]), None);
        // Nested: the innermost.
        assert_eq!(ns_pid(&[900, 40, 1]), Some(1));
        assert_eq!(ns_pid(&[]), None);
        let docker = format!("0::/docker/{ID}\n");
        let who = Identity::of(paths(&docker), &[4321, 7]);
        assert_eq!(
            (who.short_id(), who.ns_pid, who.is_empty()),
            ("c23cf607e723", 7, false)
        );
        assert!(Identity::of(paths("0::/\n"), &[1]).is_empty());
    }
}
