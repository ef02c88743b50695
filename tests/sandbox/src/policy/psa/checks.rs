//! What the checks share: the check lists in upstream's evaluation order, the container
//! visitor, and the wording helpers of upstream's helpers.go.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Violation;
use super::baseline::{
    app_armor_profile, capabilities_baseline, host_namespaces, host_path_volumes, host_ports,
    privileged, proc_mount, se_linux_options, seccomp_profile_baseline, sysctls,
    windows_host_process,
};
use super::restricted::{
    allow_privilege_escalation, capabilities_restricted, restricted_volumes, run_as_non_root,
    run_as_user, seccomp_profile_restricted,
};

pub(super) type Check = fn(&ObjectMeta, &PodSpec) -> Option<Violation>;

/// A registered check: its upstream ID and, for a restricted check, the baseline checks it
/// replaces at level restricted (`OverrideCheckIDs`).
pub(super) struct CheckDef {
    pub id: &'static str,
    pub check: Check,
    pub overrides: &'static [&'static str],
}

const fn def(id: &'static str, check: Check) -> CheckDef {
    CheckDef {
        id,
        check,
        overrides: &[],
    }
}

/// The baseline checks, sorted by ID as Go sorts strings (byte order: `seLinuxOptions` before
/// `seccompProfile_baseline`).
pub(super) const BASELINE: &[CheckDef] = &[
    def("appArmorProfile", app_armor_profile),
    def("capabilities_baseline", capabilities_baseline),
    def("hostNamespaces", host_namespaces),
    def("hostPathVolumes", host_path_volumes),
    def("hostPorts", host_ports),
    def("privileged", privileged),
    def("procMount", proc_mount),
    def("seLinuxOptions", se_linux_options),
    def("seccompProfile_baseline", seccomp_profile_baseline),
    def("sysctls", sysctls),
    def("windowsHostProcess", windows_host_process),
];

/// The restricted checks, sorted by ID.
pub(super) const RESTRICTED: &[CheckDef] = &[
    def("allowPrivilegeEscalation", allow_privilege_escalation),
    CheckDef {
        id: "capabilities_restricted",
        check: capabilities_restricted,
        overrides: &["capabilities_baseline"],
    },
    CheckDef {
        id: "restrictedVolumes",
        check: restricted_volumes,
        overrides: &["hostPathVolumes"],
    },
    def("runAsNonRoot", run_as_non_root),
    def("runAsUser", run_as_user),
    CheckDef {
        id: "seccompProfile_restricted",
        check: seccomp_profile_restricted,
        overrides: &["seccompProfile_baseline"],
    },
];

/// The parts of a container the checks look at; ephemeral containers are visited as
/// containers, as upstream casts `EphemeralContainerCommon` to `Container`.
pub(super) struct Visited<'a> {
    pub name: &'a str,
    pub security_context: Option<&'a SecurityContext>,
    pub host_ports: Vec<i32>,
}

impl<'a> From<&'a Container> for Visited<'a> {
    fn from(c: &'a Container) -> Self {
        Visited {
            name: &c.name,
            security_context: c.security_context.as_ref(),
            host_ports: ports(c.ports.as_deref()),
        }
    }
}

impl<'a> From<&'a EphemeralContainer> for Visited<'a> {
    fn from(c: &'a EphemeralContainer) -> Self {
        Visited {
            name: &c.name,
            security_context: c.security_context.as_ref(),
            host_ports: ports(c.ports.as_deref()),
        }
    }
}

fn ports(ports: Option<&[k8s_openapi::api::core::v1::ContainerPort]>) -> Vec<i32> {
    ports
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.host_port.filter(|&h| h != 0))
        .collect()
}

/// visitContainers (visitor.go): init containers, containers, ephemeral containers.
pub(super) fn containers(spec: &PodSpec) -> Vec<Visited<'_>> {
    spec.init_containers
        .iter()
        .flatten()
        .map(Visited::from)
        .chain(spec.containers.iter().map(Visited::from))
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(Visited::from),
        )
        .collect()
}

/// helpers.go `joinQuote`.
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", items.join("\", \""))
}

/// helpers.go `pluralize`.
pub(super) fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// `"container \"a\""` / `"containers \"a\", \"b\""`.
pub(super) fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

pub(super) fn violation(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail: detail.into(),
    })
}

pub(super) fn pod_sc(spec: &PodSpec) -> Option<&k8s_openapi::api::core::v1::PodSecurityContext> {
    spec.security_context.as_ref()
}

fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// Shared part of both seccomp checks: who set a bad type explicitly, which types, and which
/// containers have no profile and are not covered by a valid pod-level one.
pub(super) struct SeccompFindings<'a> {
    pub setters: Vec<String>,
    pub bad_values: BTreeSet<String>,
    pub implicitly_bad: Vec<&'a str>,
}

pub(super) fn seccomp_findings(spec: &PodSpec) -> SeccompFindings<'_> {
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(profile) = pod_sc(spec).and_then(|sc| sc.seccomp_profile.as_ref()) {
        if valid_seccomp(&profile.type_) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            bad_values.insert(profile.type_.clone());
        }
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match c
            .security_context
            .and_then(|sc| sc.seccomp_profile.as_ref())
        {
            Some(profile) if !valid_seccomp(&profile.type_) => {
                explicitly_bad.push(c.name);
                bad_values.insert(profile.type_.clone());
            }
            Some(_) => {}
            None if !pod_set => implicitly_bad.push(c.name),
            None => {}
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(containers_phrase(&explicitly_bad));
    }
    SeccompFindings {
        setters,
        bad_values,
        implicitly_bad,
    }
}

pub(super) fn seccomp_explicit(findings: &SeccompFindings<'_>) -> Option<Violation> {
    if findings.setters.is_empty() {
        return None;
    }
    let values: Vec<&String> = findings.bad_values.iter().collect();
    let values: Vec<&str> = values.iter().map(|s| s.as_str()).collect();
    violation(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            findings.setters.join(" and "),
            join_quote(&values)
        ),
    )
}
