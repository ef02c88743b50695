//! Where containers' cgroups go: the kubelet's cgroupfs driver on cgroups v1 gives each pod
//! `/kubepods/<qos>/pod<pod uid>` (`/kubepods/pod<pod uid>` for a Guaranteed pod) and
//! containerd puts each container, the sandbox's too, in `<pod cgroup>/<container id>`. A
//! process's `/proc/<pid>/cgroup` therefore names its container's ID, as on a real node (no
//! cgroup namespace: containerd asks for one only on cgroups v2).
//!
//! Under the `opaque_cgroups` fault containers go to `/kubepods/sandboxed/<random>` instead,
//! as a sandboxed runtime (gVisor, Kata) hides them from the pod.
//!
//! runc creates the directories (`mkdir -p`) and `runc delete` removes the container's own;
//! the node removes the pod's and the empty parents. Several sandboxes (in this process or
//! others) share `/kubepods`, so a parent is removed only under an exclusive lock that every
//! `runc create` holds shared: a parent is never removed between runc making it and runc
//! placing the container in it.

use std::fs::File;
use std::path::PathBuf;

use super::sys;
use crate::policy::qos::QosClass;

/// Every cgroup the node makes is under this one.
pub const ROOT: &str = "/kubepods";

/// The parents the node may leave empty, deepest first (each removed when empty).
const PARENTS: [&str; 4] = [
    "/kubepods/besteffort",
    "/kubepods/burstable",
    "/kubepods/sandboxed",
    "/kubepods",
];

/// The pod's cgroup, as the kubelet's cgroupfs driver names it.
pub fn pod_cgroup(qos: QosClass, pod_uid: &str) -> String {
    match qos {
        QosClass::Guaranteed => format!("{ROOT}/pod{pod_uid}"),
        QosClass::Burstable => format!("{ROOT}/burstable/pod{pod_uid}"),
        QosClass::BestEffort => format!("{ROOT}/besteffort/pod{pod_uid}"),
    }
}

/// A container's cgroup (`cgroupsPath` in its OCI config).
pub fn container_cgroup(pod_cgroup: &str, container_id: &str) -> String {
    format!("{pod_cgroup}/{container_id}")
}

/// A cgroup that names neither the pod nor the container (the `opaque_cgroups` fault).
pub fn opaque_cgroup() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{ROOT}/sandboxed/{hex}")
}

/// The lock every sandbox node on the machine takes around cgroup creation (shared) and
/// removal (exclusive); released when dropped. Without a lock file, no lock.
pub struct Lock(#[allow(dead_code)] Option<File>);

impl Lock {
    fn take(exclusive: bool) -> Lock {
        let dir = ["/run/lock", "/tmp"]
            .into_iter()
            .find(|d| std::path::Path::new(d).is_dir())
            .unwrap_or("/tmp");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(format!("{dir}/kube-sandbox-cgroups.lock"))
            .ok()
            .filter(|f| sys::flock(f, exclusive).is_ok());
        Lock(file)
    }

    /// Held while runc creates a container (and its parent cgroups).
    pub fn creating() -> Lock {
        Lock::take(false)
    }
}

/// The directory of `cgroup` in every mounted hierarchy.
fn in_hierarchies(cgroup: &str) -> Vec<PathBuf> {
    let relative = cgroup.trim_start_matches('/');
    sys::cgroup_mounts()
        .into_iter()
        .map(|m| m.join(relative))
        .collect()
}

/// Remove the cgroups of a pod that has no container left (whatever its QoS class was), then
/// the parents that are empty. Blocking.
pub fn remove_pod(pod_uid: &str) {
    let _lock = Lock::take(true);
    for qos in [
        QosClass::Guaranteed,
        QosClass::Burstable,
        QosClass::BestEffort,
    ] {
        for dir in in_hierarchies(&pod_cgroup(qos, pod_uid)) {
            // A cgroup with a process or a child is not removed (EBUSY): what runc left
            // of a container that would not die stays visible rather than half-gone.
            let _ = std::fs::remove_dir(dir);
        }
    }
    for parent in PARENTS {
        for dir in in_hierarchies(parent) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_kubelet_cgroupfs_driver() {
        let id = "a".repeat(64);
        assert_eq!(
            container_cgroup(&pod_cgroup(QosClass::BestEffort, "u-1"), &id),
            format!("/kubepods/besteffort/podu-1/{id}")
        );
        assert_eq!(
            pod_cgroup(QosClass::Burstable, "u-1"),
            "/kubepods/burstable/podu-1"
        );
        assert_eq!(pod_cgroup(QosClass::Guaranteed, "u-1"), "/kubepods/podu-1");
        let opaque = opaque_cgroup();
        assert!(opaque.starts_with("/kubepods/sandboxed/"), "{opaque}");
        assert_ne!(opaque, opaque_cgroup());
    }
}
