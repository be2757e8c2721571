//! What to trace: the processes --pid, --name and --container name, and the cgroups BPF watches
//! for programs started in the containers.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::summary::counted;
use crate::cli::Args;
use crate::container::Identity;
use crate::proc_scan;

/// What to trace: the processes named by --pid, --name and --container, and what BPF watches
/// for as programs start.
pub(super) struct Targets {
    pub(super) pids: Vec<u32>,
    /// The cgroups of the containers (directory inode numbers, with their hierarchy's id).
    pub(super) cgroups: Vec<(u64, u32)>,
    /// Each of those cgroups' container.
    pub(super) cgroup_containers: HashMap<u64, Identity>,
    pub(super) container_ids: Vec<String>,
    /// For the banner.
    pub(super) said: String,
}

impl Targets {
    pub(super) fn find(args: &Args) -> Result<Targets> {
        let mut pids = args.pids.clone();
        let mut cgroups = Vec::new();
        let mut cgroup_containers = HashMap::new();
        let mut container_ids = Vec::new();
        let mut said = Vec::new();
        for arg in &args.containers {
            let id = container_id(arg)?;
            let (found, ids) = proc_scan::in_container(&id);
            match ids.len() {
                0 => bail!(
                    "no running container has the id {id}{}",
                    if id == *arg {
                        String::new()
                    } else {
                        format!(" ({arg})")
                    }
                ),
                1 => {}
                _ => bail!("{arg} names {} containers: give more of the id", ids.len()),
            }
            for &pid in &found {
                let who = proc_scan::identity(pid);
                for (ino, hierarchy) in proc_scan::cgroup_inodes(pid) {
                    if !cgroups.contains(&(ino, hierarchy)) {
                        cgroups.push((ino, hierarchy));
                        cgroup_containers.insert(
                            ino,
                            Identity {
                                ns_pid: 0,
                                ..who.clone()
                            },
                        );
                    }
                }
            }
            said.push(format!(
                "container {} ({}, and those started in it)",
                &ids[0][..12],
                counted(found.len() as u64, "process", "processes")
            ));
            pids.extend(found);
            container_ids.push(ids[0].clone());
        }
        if !args.names.is_empty() {
            let found = proc_scan::named(&args.names);
            said.push(format!(
                "programs named {} ({} running, and those started later)",
                args.names.join(", "),
                found.len()
            ));
            pids.extend(found);
        }
        pids.sort_unstable();
        pids.dedup();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(
                "; watching {}: tracing goes on when none is left",
                said.join("; ")
            )
        };
        Ok(Targets {
            pids,
            cgroups,
            cgroup_containers,
            container_ids,
            said,
        })
    }

    pub(super) fn watching(&self) -> bool {
        !self.said.is_empty()
    }
}

/// The full or partial id of the container `arg` names: its id (12 hex digits or more), or its
/// name, resolved by the docker, podman or crictl command.
pub(super) fn container_id(arg: &str) -> Result<String> {
    let lower = arg.to_ascii_lowercase();
    if lower.len() >= 12 && lower.len() <= 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(lower);
    }
    let tries: [(&str, &[&str]); 3] = [
        (
            "docker",
            &["inspect", "--type", "container", "--format", "{{.Id}}"],
        ),
        ("podman", &["container", "inspect", "--format", "{{.Id}}"]),
        ("crictl", &["ps", "--quiet", "--name"]),
    ];
    let mut said = Vec::new();
    for (cmd, args) in tries {
        match std::process::Command::new(cmd).args(args).arg(arg).output() {
            Err(_) => said.push(format!("no {cmd}")),
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let ids: Vec<&str> = text.split_whitespace().collect();
                match (out.status.success(), ids.as_slice()) {
                    (true, [id]) if id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                        return Ok(id.to_ascii_lowercase())
                    }
                    _ => said.push(format!("{cmd} does not know it")),
                }
            }
        }
    }
    bail!(
        "--container {arg}: not a container id (12 hex digits or more, as docker ps shows) nor a name that docker, podman or crictl resolves ({})",
        said.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id as docker ps shows it, or whole, is taken as it is, lower-cased; no runtime is
    /// asked.
    #[test]
    fn a_container_id_is_taken_as_it_is() {
        assert_eq!(container_id("0123456789AB").unwrap(), "0123456789ab");
        let whole = "f".repeat(64);
        assert_eq!(container_id(&whole).unwrap(), whole);
    }
}
