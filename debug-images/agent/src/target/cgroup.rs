//! Which container a process belongs to, read from its `/proc/<pid>/cgroup`.
//!
//! Container runtimes put every container in a cgroup named after its ID, and the pod status
//! reports the same ID (`status.containerStatuses[].containerID`). The name takes one of a
//! few shapes, always one whole path component:
//!
//! ```text
//! containerd, cgroupfs driver   /kubepods/burstable/pod<uid>/<id>
//! containerd, systemd driver    /kubepods.slice/.../cri-containerd-<id>.scope
//! CRI-O, systemd / cgroupfs     /kubepods.slice/.../crio-<id>.scope, /kubepods/.../crio-<id>
//! cri-dockerd (Docker)          /kubepods.slice/.../docker-<id>.scope, /kubepods/.../<id>
//! Podman                        /machine.slice/libpod-<id>.scope
//! ```
//!
//! CRI-O runs each container's monitor in `crio-conmon-<id>.scope` beside it: that is not
//! the container. cgroup v1 lists one line per hierarchy (`4:memory:/kubepods/...`), v2 one
//! line `0::/path`; inside a cgroup namespace the path is relative to the namespace's root
//! and may climb out of it (`0::/../pod<uid>/<id>`). Matching is by whole components only,
//! so an ID never matches inside another one (see the kernel's cgroup-v2.rst, "Namespace").

use std::fmt;

/// Prefixes runtimes put before the ID in a cgroup name: `<prefix>-<id>` or
/// `<prefix>-<id>.scope`. `crio-conmon-<id>` is deliberately not among them.
const PREFIXES: [&str; 4] = ["cri-containerd", "crio", "docker", "libpod"];

/// A container ID as the pod status reports it, without its `<runtime>://` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerId(String);

impl ContainerId {
    /// `containerd://3f2a…`, `cri-o://3f2a…`, `docker://3f2a…` or the bare `3f2a…`.
    pub fn parse(text: &str) -> Result<ContainerId, String> {
        let text = text.trim();
        let id = match text.split_once("://") {
            Some((scheme, id))
                if !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                id
            }
            Some(_) => return Err(format!("{text:?} is not a container ID")),
            None => text,
        };
        if id.is_empty() {
            return Err(format!("{text:?} names no container ID after its prefix"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(format!(
                "{text:?} is not a container ID (letters, digits, '-', '_' and '.' only)"
            ));
        }
        Ok(ContainerId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The cgroup paths of a `/proc/<pid>/cgroup` text, one per hierarchy line
/// (`hierarchy-ID:controllers:path`); v2's `0::` line first.
fn paths(text: &str) -> Vec<&str> {
    let mut v2 = Vec::new();
    let mut v1 = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(hierarchy), Some(_), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if hierarchy == "0" {
            v2.push(path);
        } else {
            v1.push(path);
        }
    }
    v2.extend(v1);
    v2
}

/// The ID inside one cgroup name: the whole name, or `<prefix>-<id>[.scope]`.
fn id_in_name(name: &str) -> Option<&str> {
    let bare = name.strip_suffix(".scope").unwrap_or(name);
    PREFIXES
        .iter()
        .find_map(|prefix| bare.strip_prefix(prefix)?.strip_prefix('-'))
}

/// The cgroup text names container `id` on some line, as a whole path component.
pub fn names_container(text: &str, id: &ContainerId) -> bool {
    paths(text).iter().any(|path| {
        path.split('/')
            .any(|name| name == id.as_str() || id_in_name(name) == Some(id.as_str()))
    })
}

/// The container ID a cgroup text shows, when it shows one: the deepest component that is a
/// runtime's 64-hex-digit ID (bare or `<prefix>-<id>[.scope]`), of the v2 line first, else of
/// the first v1 line that has one. Nested runtimes (a node in a container) put the outer ID
/// higher up; the deepest one is the process's own container.
pub fn container_id_in(text: &str) -> Option<ContainerId> {
    paths(text).iter().find_map(|path| {
        path.split('/')
            .rev()
            .find_map(|name| {
                let id = id_in_name(name).unwrap_or(name);
                is_runtime_id(id).then_some(id)
            })
            .map(|id| ContainerId(id.to_string()))
    })
}

/// containerd, CRI-O and Docker name containers with 64 lowercase hex digits.
fn is_runtime_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a0c1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";
    const OTHER: &str = "9999000011112222333344445555666677778888999900001111222233334444";
    const POD: &str = "pod7c1b2d3e-aaaa-bbbb-cccc-0123456789ab";
    const POD_SYSTEMD: &str = "kubepods-burstable-pod7c1b2d3e_aaaa_bbbb_cccc_0123456789ab.slice";

    fn id(text: &str) -> ContainerId {
        ContainerId::parse(text).unwrap()
    }

    /// `/proc/<pid>/cgroup` of a process in container ID, as each layout writes it.
    fn layouts() -> Vec<(&'static str, String)> {
        vec![
            (
                "containerd cgroupfs v1",
                format!(
                    "12:pids:/kubepods/burstable/{POD}/{ID}\n\
                     11:memory:/kubepods/burstable/{POD}/{ID}\n\
                     10:cpu,cpuacct:/kubepods/burstable/{POD}/{ID}\n\
                     1:name=systemd:/kubepods/burstable/{POD}/{ID}\n\
                     0::/\n"
                ),
            ),
            (
                "containerd cgroupfs v2",
                format!("0::/kubepods/burstable/{POD}/{ID}\n"),
            ),
            (
                "containerd systemd v2",
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/{POD_SYSTEMD}/cri-containerd-{ID}.scope\n"
                ),
            ),
            (
                "containerd systemd v1",
                format!(
                    "7:memory:/kubepods.slice/kubepods-burstable.slice/{POD_SYSTEMD}/cri-containerd-{ID}.scope\n\
                     3:rdma:/\n\
                     1:name=systemd:/kubepods.slice/kubepods-burstable.slice/{POD_SYSTEMD}/cri-containerd-{ID}.scope\n"
                ),
            ),
            (
                "CRI-O systemd v2",
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/{POD_SYSTEMD}/crio-{ID}.scope\n"
                ),
            ),
            (
                "CRI-O systemd v2, crun's container subgroup",
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/{POD_SYSTEMD}/crio-{ID}.scope/container\n"
                ),
            ),
            (
                "CRI-O cgroupfs v1",
                format!("4:memory:/kubepods/burstable/{POD}/crio-{ID}\n"),
            ),
            (
                "cri-dockerd systemd v2",
                format!(
                    "0::/kubepods.slice/kubepods-besteffort.slice/{POD_SYSTEMD}/docker-{ID}.scope\n"
                ),
            ),
            (
                "cri-dockerd cgroupfs v1",
                format!("9:devices:/kubepods/besteffort/{POD}/{ID}\n"),
            ),
            (
                "v2 relative to a cgroup namespace, cgroupfs",
                format!("0::/../{POD}/{ID}\n"),
            ),
            (
                "v2 relative to a cgroup namespace, sibling",
                format!("0::/../{ID}\n"),
            ),
            (
                "v2 relative to a cgroup namespace, systemd",
                format!("0::/../cri-containerd-{ID}.scope\n"),
            ),
            (
                "node in a container (kind): the outer ID higher up",
                format!("0::/docker/{OTHER}/kubepods/besteffort/{POD}/{ID}\n"),
            ),
        ]
    }

    #[test]
    fn every_layout_names_its_container() {
        for (layout, text) in layouts() {
            assert!(names_container(&text, &id(ID)), "{layout}: {text}");
            assert_eq!(container_id_in(&text), Some(id(ID)), "{layout}: {text}");
            assert!(
                !names_container(&text, &id(&OTHER[..60])),
                "{layout}: a different ID does not match"
            );
        }
    }

    #[test]
    fn runtime_prefixes_of_the_pod_status_are_stripped() {
        for text in [
            format!("containerd://{ID}"),
            format!("cri-o://{ID}"),
            format!("docker://{ID}"),
            ID.to_string(),
            format!("  containerd://{ID}\n"),
        ] {
            assert_eq!(ContainerId::parse(&text), Ok(id(ID)), "{text}");
        }
        assert!(ContainerId::parse("containerd://").is_err());
        assert!(ContainerId::parse("").is_err());
        assert!(ContainerId::parse("a/b").is_err());
        assert!(ContainerId::parse("://abc").is_err());
        assert!(ContainerId::parse("con tainerd://abc").is_err());
    }

    #[test]
    fn crio_conmon_is_not_the_container() {
        let conmon = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/{POD_SYSTEMD}/crio-conmon-{ID}.scope\n"
        );
        assert!(!names_container(&conmon, &id(ID)));
        assert_eq!(container_id_in(&conmon), None);
        let conmon_v1 = format!("4:memory:/kubepods/burstable/{POD}/crio-conmon-{ID}\n");
        assert!(!names_container(&conmon_v1, &id(ID)));
        assert_eq!(container_id_in(&conmon_v1), None);
    }

    #[test]
    fn an_id_never_matches_part_of_another() {
        let text = format!("0::/kubepods/burstable/{POD}/{ID}\n");
        // A prefix, a suffix and a middle of the real ID, and the ID with something around it.
        for partial in [&ID[..12], &ID[52..], &ID[10..40]] {
            assert!(!names_container(&text, &id(partial)), "{partial}");
        }
        let longer = format!("0::/kubepods/burstable/{POD}/{ID}0\n");
        assert!(!names_container(&longer, &id(ID)));
        let glued = format!("0::/kubepods/burstable/{POD}/x{ID}.scope\n");
        assert!(!names_container(&glued, &id(ID)));
    }

    #[test]
    fn v1_any_line_naming_the_id_is_enough() {
        // A controller the runtime left at the root, and one that names the container.
        let text = format!("5:rdma:/\n4:pids:/kubepods/besteffort/{POD}/{ID}\n3:cpuset:/\n");
        assert!(names_container(&text, &id(ID)));
        assert_eq!(container_id_in(&text), Some(id(ID)));
    }

    #[test]
    fn no_id_when_the_runtime_hides_the_path() {
        // A private cgroup namespace seen from inside, a sandboxed runtime, a plain host.
        for text in [
            "0::/\n",
            "12:pids:/\n11:memory:/\n0::/\n",
            "0::/init.scope\n",
            "4:memory:/process_api/f9f393fe0bf6ff24461626ef1acbf24f\n",
            "",
            "garbage without colons\n",
        ] {
            assert_eq!(container_id_in(text), None, "{text:?}");
            assert!(!names_container(text, &id(ID)), "{text:?}");
        }
    }

    #[test]
    fn the_v2_line_wins_over_v1_lines() {
        let text = format!("4:memory:/docker/{OTHER}\n0::/../{ID}\n");
        assert_eq!(container_id_in(&text), Some(id(ID)));
        assert!(
            names_container(&text, &id(OTHER)),
            "still named on a v1 line"
        );
    }

    #[test]
    fn opaque_ids_match_as_whole_components() {
        // IDs that are not 64 hex digits (other runtimes) still match exactly.
        let text = "0::/kubepods/besteffort/podabc/sandbox-7/ctr-42\n";
        assert!(names_container(text, &id("ctr-42")));
        assert!(!names_container(text, &id("ctr-4")));
        assert_eq!(container_id_in(text), None);
    }
}
