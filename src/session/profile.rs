//! Security profiles: small named transforms of the debug container's securityContext, and the
//! Pod Security Standards level each result needs.
//!
//! A rejected ephemeral container is still a problem: an ephemeral container that admission
//! refuses is not added, but one that is admitted and then cannot start stays in the pod spec
//! forever. So we evaluate the exact securityContext we are about to send against the
//! namespace's `pod-security.kubernetes.io/enforce` level (the checks of
//! https://kubernetes.io/docs/concepts/security/pod-security-standards/ that a container's
//! fields can fail) and refuse before any PATCH, naming the profile that would fit.

use std::fmt;

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
};

use crate::base::error::Failure;
use crate::session::identity::Identity;

/// The uid/gid the `restricted` profile falls back to when the target runs as root or we do not
/// know its uid: `nonroot` in distroless images, and the user our images are built for.
pub const NONROOT_ID: i64 = 65532;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The target's uid/gid, no capabilities, no privilege escalation, RuntimeDefault seccomp.
    #[default]
    Auto,
    /// Like auto, but always non-root (65532 when the target is root or unknown).
    Restricted,
    /// The target's uid/gid with the runtime's default capabilities.
    Baseline,
    /// Root with CAP_SYS_PTRACE only: strace, gdb, reading any process.
    Ptrace,
    /// Root with NET_ADMIN and NET_RAW: tcpdump, iptables, ss -K.
    Netadmin,
    /// Root and privileged: everything, including mounts.
    Sysadmin,
}

impl Profile {
    pub const ALL: [Profile; 6] = [
        Profile::Auto,
        Profile::Restricted,
        Profile::Baseline,
        Profile::Ptrace,
        Profile::Netadmin,
        Profile::Sysadmin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Auto => "auto",
            Profile::Restricted => "restricted",
            Profile::Baseline => "baseline",
            Profile::Ptrace => "ptrace",
            Profile::Netadmin => "netadmin",
            Profile::Sysadmin => "sysadmin",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `--profile` and a runbook's `profile:` take these names. Written out rather than derived so
/// that the variants' doc comments stay documentation and do not become help text.
impl clap::ValueEnum for Profile {
    fn value_variants<'a>() -> &'a [Self] {
        &Profile::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

/// Pod Security Standards levels, least to most permissive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PsaLevel {
    Restricted,
    Baseline,
    Privileged,
}

impl PsaLevel {
    /// The value of a `pod-security.kubernetes.io/enforce` label; None for one we don't know,
    /// which the apiserver would refuse to honour anyway.
    pub fn from_label(value: &str) -> Option<Self> {
        match value {
            "restricted" => Some(PsaLevel::Restricted),
            "baseline" => Some(PsaLevel::Baseline),
            "privileged" => Some(PsaLevel::Privileged),
            _ => None,
        }
    }
}

impl fmt::Display for PsaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PsaLevel::Restricted => "restricted",
            PsaLevel::Baseline => "baseline",
            PsaLevel::Privileged => "privileged",
        })
    }
}

fn capabilities(drop: &[&str], add: &[&str]) -> Option<Capabilities> {
    let list =
        |names: &[&str]| (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect());
    Some(Capabilities {
        add: list(add),
        drop: list(drop),
    })
}

fn runtime_default() -> Option<SeccompProfile> {
    Some(SeccompProfile {
        type_: "RuntimeDefault".into(),
        localhost_profile: None,
    })
}

/// The debug container's securityContext under `profile` for a target of `identity`.
pub fn security_context_for(profile: Profile, identity: &Identity) -> SecurityContext {
    let least_privilege = SecurityContext {
        run_as_user: identity.uid(),
        run_as_group: identity.gid(),
        // runAsNonRoot only when we know; an unknown uid inherits the pod's setting.
        run_as_non_root: identity.uid().filter(|uid| *uid != 0).map(|_| true),
        allow_privilege_escalation: Some(false),
        capabilities: capabilities(&["ALL"], &[]),
        seccomp_profile: runtime_default(),
        ..SecurityContext::default()
    };
    // A non-root process holds no capabilities whatever its container allows, so dropping
    // ALL costs nothing; a root target holds its container's set, and reading its root needs
    // that set too (see `Identity::capabilities`): mirror it, and so ask for no more than the
    // target already has.
    let auto = match identity.uid() {
        Some(0) => SecurityContext {
            capabilities: identity.capabilities.clone(),
            ..least_privilege.clone()
        },
        _ => least_privilege.clone(),
    };
    let root = |caps: Option<Capabilities>| SecurityContext {
        run_as_user: Some(0),
        run_as_group: Some(0),
        // Explicitly false: a pod-level runAsNonRoot=true would otherwise stop the container.
        run_as_non_root: Some(false),
        capabilities: caps,
        seccomp_profile: runtime_default(),
        ..SecurityContext::default()
    };
    match profile {
        Profile::Auto => auto,
        Profile::Restricted => {
            let non_root = identity.uid().filter(|uid| *uid != 0);
            SecurityContext {
                run_as_user: Some(non_root.unwrap_or(NONROOT_ID)),
                run_as_group: Some(match non_root {
                    Some(_) => identity.gid().unwrap_or(NONROOT_ID),
                    None => NONROOT_ID,
                }),
                run_as_non_root: Some(true),
                ..least_privilege
            }
        }
        Profile::Baseline => SecurityContext {
            run_as_user: identity.uid(),
            run_as_group: identity.gid(),
            allow_privilege_escalation: Some(false),
            seccomp_profile: runtime_default(),
            ..SecurityContext::default()
        },
        Profile::Ptrace => SecurityContext {
            allow_privilege_escalation: Some(false),
            ..root(capabilities(&["ALL"], &["SYS_PTRACE"]))
        },
        Profile::Netadmin => root(capabilities(&[], &["NET_ADMIN", "NET_RAW"])),
        Profile::Sysadmin => SecurityContext {
            privileged: Some(true),
            ..root(None)
        },
    }
}

/// Capabilities the baseline level allows to be added (the Pod Security Standards list).
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The checks of `level` that a container with `sc` in a pod with `pod_sc` fails, in the
/// field-path words the apiserver's own PodSecurity messages use.
pub fn violations(
    level: PsaLevel,
    sc: &SecurityContext,
    pod_sc: Option<&PodSecurityContext>,
) -> Vec<String> {
    let mut found = Vec::new();
    if level == PsaLevel::Privileged {
        return found;
    }
    let strip = |c: &str| c.trim_start_matches("CAP_").to_ascii_uppercase();
    let added: Vec<String> = sc
        .capabilities
        .as_ref()
        .and_then(|c| c.add.clone())
        .unwrap_or_default()
        .iter()
        .map(|c| strip(c))
        .collect();
    let seccomp = sc
        .seccomp_profile
        .as_ref()
        .or_else(|| pod_sc.and_then(|p| p.seccomp_profile.as_ref()))
        .map(|s| s.type_.as_str());

    // Baseline.
    if sc.privileged == Some(true) {
        found.push("privileged=true".to_string());
    }
    let beyond_baseline: Vec<&String> = added
        .iter()
        .filter(|c| !BASELINE_CAPABILITIES.contains(&c.as_str()))
        .collect();
    if !beyond_baseline.is_empty() {
        let names: Vec<&str> = beyond_baseline.iter().map(|s| s.as_str()).collect();
        found.push(format!("capabilities.add=[{}]", names.join(", ")));
    }
    if seccomp == Some("Unconfined") {
        found.push("seccompProfile.type=Unconfined".to_string());
    }
    if sc.proc_mount.as_deref().is_some_and(|m| m != "Default") {
        found.push("procMount other than Default".to_string());
    }
    if level == PsaLevel::Baseline {
        return found;
    }

    // Restricted.
    if sc.allow_privilege_escalation != Some(false) {
        found.push("allowPrivilegeEscalation != false".to_string());
    }
    let drops_all = sc
        .capabilities
        .as_ref()
        .and_then(|c| c.drop.as_ref())
        .is_some_and(|d| d.iter().any(|c| strip(c) == "ALL"));
    if !drops_all {
        found.push("capabilities.drop does not include ALL".to_string());
    }
    if added.iter().any(|c| c != "NET_BIND_SERVICE") && beyond_baseline.is_empty() {
        found.push("capabilities.add other than NET_BIND_SERVICE".to_string());
    }
    let non_root = match sc.run_as_non_root {
        Some(value) => value,
        None => pod_sc.and_then(|p| p.run_as_non_root) == Some(true),
    };
    if !non_root {
        found.push("runAsNonRoot != true".to_string());
    }
    let uid = sc
        .run_as_user
        .or_else(|| pod_sc.and_then(|p| p.run_as_user));
    if uid == Some(0) {
        found.push("runAsUser=0".to_string());
    }
    if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
        found.push("seccompProfile.type is not RuntimeDefault or Localhost".to_string());
    }
    found
}

/// The least permissive level under which `sc` is admitted.
pub fn level_needed(sc: &SecurityContext, pod_sc: Option<&PodSecurityContext>) -> PsaLevel {
    [PsaLevel::Restricted, PsaLevel::Baseline]
        .into_iter()
        .find(|level| violations(*level, sc, pod_sc).is_empty())
        .unwrap_or(PsaLevel::Privileged)
}

/// The first profile, least privilege first, that `enforce` admits for this target.
pub fn profile_that_fits(
    enforce: PsaLevel,
    identity: &Identity,
    pod_sc: Option<&PodSecurityContext>,
) -> Option<Profile> {
    Profile::ALL
        .into_iter()
        .find(|p| violations(enforce, &security_context_for(*p, identity), pod_sc).is_empty())
}

/// The Pod Security level of the namespace would reject the container a profile gives, so
/// nothing was sent; names the profile that fits, when one does.
#[derive(Debug, thiserror::Error)]
#[error(
    "refused before sending anything: the {profile} profile needs Pod Security level {needed}, and namespace {namespace} enforces {enforced} (it would reject {})",
    .violations.join(", ")
)]
pub struct PodSecurityRefusal {
    pub namespace: String,
    pub pod: String,
    pub profile: Profile,
    pub needed: PsaLevel,
    pub enforced: PsaLevel,
    pub violations: Vec<String>,
    pub fits: Option<Profile>,
}

impl Failure for PodSecurityRefusal {
    fn hint(&self) -> Option<String> {
        Some(match self.fits {
            Some(fits) => format!(
                "`--profile {fits}` fits this namespace; or ask for a namespace whose pod-security.kubernetes.io/enforce label allows more"
            ),
            None => {
                "no profile fits; the namespace's pod-security.kubernetes.io/enforce label decides"
                    .to_string()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::error::Error;

    const DISTROLESS: Identity = Identity {
        uid: Some((
            65532,
            crate::session::identity::Source::ContainerSecurityContext,
        )),
        gid: Some((
            65532,
            crate::session::identity::Source::ContainerSecurityContext,
        )),
        capabilities: None,
    };

    fn root() -> Identity {
        Identity::known(0, 0)
    }

    #[test]
    fn auto_runs_as_the_target_with_nothing_extra() {
        let sc = security_context_for(Profile::Auto, &DISTROLESS);
        assert_eq!(sc.run_as_user, Some(65532));
        assert_eq!(sc.run_as_group, Some(65532));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
        assert_eq!(
            sc.seccomp_profile.map(|s| s.type_),
            Some("RuntimeDefault".to_string())
        );
    }

    #[test]
    fn auto_passes_restricted_whenever_the_target_is_non_root() {
        let sc = security_context_for(Profile::Auto, &DISTROLESS);
        assert_eq!(
            violations(PsaLevel::Restricted, &sc, None),
            Vec::<String>::new()
        );
        assert_eq!(level_needed(&sc, None), PsaLevel::Restricted);
    }

    #[test]
    fn auto_for_a_root_target_keeps_the_targets_capabilities() {
        // Regression: with every capability dropped, a root debug container could not read
        // /target of a root target (EPERM from cap_ptrace_access_check).
        let sc = security_context_for(Profile::Auto, &root());
        assert_eq!(
            sc.capabilities, None,
            "the runtime's defaults, as the target has"
        );
        let dropped = Identity {
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: Some(vec!["NET_BIND_SERVICE".into()]),
            }),
            ..root()
        };
        let sc = security_context_for(Profile::Auto, &dropped);
        assert_eq!(sc.capabilities, dropped.capabilities);
        let sc = security_context_for(Profile::Auto, &DISTROLESS);
        assert_eq!(
            sc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
    }

    #[test]
    fn auto_for_a_root_target_needs_baseline() {
        let sc = security_context_for(Profile::Auto, &root());
        assert_eq!(sc.run_as_non_root, None);
        assert_eq!(level_needed(&sc, None), PsaLevel::Baseline);
        let v = violations(PsaLevel::Restricted, &sc, None);
        assert!(
            v.contains(&"runAsNonRoot != true".to_string())
                && v.contains(&"runAsUser=0".to_string()),
            "{v:?}"
        );
    }

    #[test]
    fn an_unknown_identity_inherits_the_pods_run_as_non_root() {
        let sc = security_context_for(Profile::Auto, &Identity::default());
        assert_eq!(
            (sc.run_as_user, sc.run_as_group, sc.run_as_non_root),
            (None, None, None)
        );
        let pod_sc = PodSecurityContext {
            run_as_non_root: Some(true),
            ..PodSecurityContext::default()
        };
        assert_eq!(level_needed(&sc, Some(&pod_sc)), PsaLevel::Restricted);
    }

    #[test]
    fn restricted_is_never_root() {
        let sc = security_context_for(Profile::Restricted, &root());
        assert_eq!(
            (sc.run_as_user, sc.run_as_group, sc.run_as_non_root),
            (Some(NONROOT_ID), Some(NONROOT_ID), Some(true))
        );
        assert_eq!(level_needed(&sc, None), PsaLevel::Restricted);
        let sc = security_context_for(Profile::Restricted, &DISTROLESS);
        assert_eq!(sc.run_as_user, Some(65532));
    }

    #[test]
    fn each_profile_says_the_level_it_needs() {
        let cases = [
            (Profile::Auto, PsaLevel::Restricted),
            (Profile::Restricted, PsaLevel::Restricted),
            (Profile::Baseline, PsaLevel::Baseline),
            (Profile::Ptrace, PsaLevel::Privileged),
            (Profile::Netadmin, PsaLevel::Privileged),
            (Profile::Sysadmin, PsaLevel::Privileged),
        ];
        for (profile, level) in cases {
            assert_eq!(
                level_needed(&security_context_for(profile, &DISTROLESS), None),
                level,
                "{profile}"
            );
        }
    }

    #[test]
    fn sysadmin_in_a_restricted_namespace_names_the_fields_and_a_profile_that_fits() {
        let sc = security_context_for(Profile::Sysadmin, &DISTROLESS);
        let v = violations(PsaLevel::Restricted, &sc, None);
        assert!(v.contains(&"privileged=true".to_string()), "{v:?}");
        assert_eq!(
            profile_that_fits(PsaLevel::Restricted, &DISTROLESS, None),
            Some(Profile::Auto)
        );
        assert_eq!(
            profile_that_fits(PsaLevel::Restricted, &root(), None),
            Some(Profile::Restricted)
        );
        assert_eq!(
            profile_that_fits(PsaLevel::Baseline, &root(), None),
            Some(Profile::Auto)
        );
    }

    #[test]
    fn ptrace_is_not_baseline() {
        let sc = security_context_for(Profile::Ptrace, &DISTROLESS);
        assert_eq!(
            violations(PsaLevel::Baseline, &sc, None),
            vec!["capabilities.add=[SYS_PTRACE]".to_string()]
        );
    }

    #[test]
    fn unknown_label_values_are_not_levels() {
        assert_eq!(
            PsaLevel::from_label("restricted"),
            Some(PsaLevel::Restricted)
        );
        assert_eq!(PsaLevel::from_label("Restricted"), None);
    }

    #[test]
    fn pod_security_refusal_names_fields_and_the_profile_that_fits() {
        let e = Error::from(PodSecurityRefusal {
            namespace: "prod".into(),
            pod: "web".into(),
            profile: Profile::Sysadmin,
            needed: PsaLevel::Privileged,
            enforced: PsaLevel::Restricted,
            violations: vec!["privileged=true".into()],
            fits: Some(Profile::Auto),
        });
        assert!(e.to_string().starts_with("refused before sending anything: the sysadmin profile needs Pod Security level privileged, and namespace prod enforces restricted"), "{e}");
        assert!(
            e.hint()
                .unwrap_or_default()
                .starts_with("`--profile auto` fits")
        );
    }
}
