//! Who the target container runs as, and how we know.
//!
//! The debug container must run as the target's uid AND gid to read `/proc/<pid>/root` without
//! CAP_SYS_PTRACE: the kernel's ptrace access check (`__ptrace_may_access` in
//! kernel/ptrace.c) wants both to match. So we look, in order: the container's
//! securityContext, the pod's securityContext, and what the kubelet reports in
//! `status.containerStatuses[].user.linux` (Kubernetes 1.33+, the image's USER resolved).
//! When none says, we do not guess 1000: the debug container starts as its image's user, and
//! once it runs the agent reads the target's ids (probe.rs), replacing the container with one
//! running as them when that is what it takes to read `/target`.

use std::fmt;

use k8s_openapi::api::core::v1::{Capabilities, Pod};

use crate::session::target::{container_spec, status_of};

/// Where a uid or gid came from, so messages can say why we chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ContainerSecurityContext,
    PodSecurityContext,
    /// `status.containerStatuses[].user.linux`, reported by the kubelet.
    ContainerStatus,
    /// Read by our agent from `/proc/<pid>/status` in a running debug container (probe.rs).
    Agent,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::ContainerSecurityContext => "the container's securityContext",
            Source::PodSecurityContext => "the pod's securityContext",
            Source::ContainerStatus => "the kubelet's containerStatuses[].user",
            Source::Agent => "the agent, from the target's /proc/<pid>/status",
        })
    }
}

/// The target's uid and gid, each with its source; None when nothing we can read says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Identity {
    pub uid: Option<(i64, Source)>,
    pub gid: Option<(i64, Source)>,
    /// The target container's `securityContext.capabilities` (None: the runtime's defaults).
    /// A root target holds capabilities, and the kernel lets another process read its
    /// `/proc/<pid>/root` only if that process's permitted set includes them
    /// (`cap_ptrace_access_check`, security/commoncap.c), so the `auto` profile mirrors them.
    pub capabilities: Option<Capabilities>,
}

impl Identity {
    #[cfg(test)]
    pub fn known(uid: i64, gid: i64) -> Self {
        Identity {
            uid: Some((uid, Source::ContainerSecurityContext)),
            gid: Some((gid, Source::ContainerSecurityContext)),
            capabilities: None,
        }
    }

    pub fn uid(&self) -> Option<i64> {
        self.uid.map(|(uid, _)| uid)
    }

    pub fn gid(&self) -> Option<i64> {
        self.gid.map(|(gid, _)| gid)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part =
            |v: Option<(i64, Source)>| v.map_or_else(|| "?".to_string(), |(n, _)| n.to_string());
        write!(f, "{}:{}", part(self.uid), part(self.gid))
    }
}

/// The identity of `container` in `pod`, from the pod object alone.
pub fn identity_of(pod: &Pod, container: &str) -> Identity {
    let spec = pod.spec.as_ref();
    let container_sc = container_spec(pod, container).and_then(|c| c.security_context.as_ref());
    let pod_sc = spec.and_then(|s| s.security_context.as_ref());
    let reported = status_of(pod, container)
        .and_then(|c| c.user.as_ref())
        .and_then(|u| u.linux.as_ref());

    let uid = container_sc
        .and_then(|sc| sc.run_as_user)
        .map(|u| (u, Source::ContainerSecurityContext))
        .or_else(|| {
            pod_sc
                .and_then(|sc| sc.run_as_user)
                .map(|u| (u, Source::PodSecurityContext))
        })
        .or_else(|| reported.map(|u| (u.uid, Source::ContainerStatus)));
    // The runtime's gid when runAsGroup is unset is the image's primary group, which the
    // kubelet reports; a runAsUser alone does not tell us the gid.
    let gid = container_sc
        .and_then(|sc| sc.run_as_group)
        .map(|g| (g, Source::ContainerSecurityContext))
        .or_else(|| {
            pod_sc
                .and_then(|sc| sc.run_as_group)
                .map(|g| (g, Source::PodSecurityContext))
        })
        .or_else(|| reported.map(|u| (u.gid, Source::ContainerStatus)));
    let capabilities = container_sc.and_then(|sc| sc.capabilities.clone());
    Identity {
        uid,
        gid,
        capabilities,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerUser, LinuxContainerUser, PodSecurityContext, SecurityContext,
    };

    use super::*;
    use crate::session::target::tests::running_pod;

    fn pod(
        container_sc: Option<(Option<i64>, Option<i64>)>,
        pod_sc: Option<(Option<i64>, Option<i64>)>,
        reported: Option<(i64, i64)>,
    ) -> Pod {
        let mut pod = running_pod("web", &["app"]);
        if let Some(spec) = pod.spec.as_mut() {
            if let Some((user, group)) = container_sc {
                spec.containers[0].security_context = Some(SecurityContext {
                    run_as_user: user,
                    run_as_group: group,
                    ..SecurityContext::default()
                });
            }
            if let Some((user, group)) = pod_sc {
                spec.security_context = Some(PodSecurityContext {
                    run_as_user: user,
                    run_as_group: group,
                    ..PodSecurityContext::default()
                });
            }
        }
        if let Some((uid, gid)) = reported
            && let Some(statuses) = pod
                .status
                .as_mut()
                .and_then(|s| s.container_statuses.as_mut())
        {
            statuses[0].user = Some(ContainerUser {
                linux: Some(LinuxContainerUser {
                    uid,
                    gid,
                    supplemental_groups: None,
                }),
            });
        }
        pod
    }

    #[test]
    fn container_beats_pod_beats_kubelet_report() {
        let cases = [
            // (container sc, pod sc, reported) => (uid, gid)
            (
                Some((Some(1), Some(2))),
                Some((Some(3), Some(4))),
                Some((5, 6)),
                "1:2",
            ),
            (
                Some((Some(1), None)),
                Some((Some(3), Some(4))),
                Some((5, 6)),
                "1:4",
            ),
            (None, Some((Some(3), Some(4))), Some((5, 6)), "3:4"),
            (None, Some((Some(3), None)), Some((5, 6)), "3:6"),
            (None, None, Some((65532, 65532)), "65532:65532"),
            (Some((Some(0), Some(0))), None, Some((5, 6)), "0:0"),
        ];
        for (c, p, r, expected) in cases {
            assert_eq!(
                identity_of(&pod(c, p, r), "app").to_string(),
                expected,
                "{c:?} {p:?} {r:?}"
            );
        }
    }

    #[test]
    fn never_guesses() {
        let id = identity_of(&pod(None, None, None), "app");
        assert_eq!(id, Identity::default());
        assert_eq!(id.to_string(), "?:?");
        let id = identity_of(&pod(Some((Some(10), None)), None, None), "app");
        assert_eq!((id.uid(), id.gid()), (Some(10), None));
    }

    #[test]
    fn says_where_each_value_came_from() {
        let id = identity_of(
            &pod(Some((Some(1), None)), Some((None, Some(4))), None),
            "app",
        );
        assert_eq!(id.uid, Some((1, Source::ContainerSecurityContext)));
        assert_eq!(id.gid, Some((4, Source::PodSecurityContext)));
    }

    #[test]
    fn another_containers_context_does_not_count() {
        let mut p = pod(None, None, None);
        if let Some(spec) = p.spec.as_mut() {
            spec.containers[0].security_context = Some(SecurityContext {
                run_as_user: Some(7),
                ..SecurityContext::default()
            });
        }
        assert_eq!(identity_of(&p, "sidecar"), Identity::default());
    }
}
