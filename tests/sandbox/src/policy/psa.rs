//! Pod Security admission: the `baseline` and `restricted` Pod Security Standards, as
//! k8s.io/pod-security-admission enforces them from the namespace label
//! `pod-security.kubernetes.io/enforce`.
//!
//! Each check below mirrors one file of staging/src/k8s.io/pod-security-admission/policy
//! (named in its comment), with the same forbidden reason and detail wording. The checks run in
//! upstream's order: the package registers them in `init()` functions, which Go runs in file
//! name order; `EvaluatePod` (registry.go) then runs the baseline checks, followed by the
//! "overlapping" baseline checks at level baseline or by the restricted checks at level
//! restricted. Every container is visited, init containers first, then containers, then
//! ephemeral containers (visitor.go), so one non-compliant ephemeral container keeps failing
//! every later update of the pod, as on a real cluster.
//!
//! The policy version is "latest" as of Kubernetes 1.33 (the API level the sandbox serves);
//! the version label only changes the wording `restricted:<version>`. The user-namespace
//! relaxation (`RelaxPolicyForUserNamespacePods`) is off, as it is by default.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSpec, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Status};

/// The namespace label that selects the enforced level.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The namespace label that pins the enforced policy version.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// The level enforced in a namespace with these labels: no label is `privileged` (the
    /// default of an unconfigured cluster); an invalid value is `restricted`, the fallback
    /// pod-security-admission uses for an unparseable enforce label.
    pub fn from_namespace_labels(labels: &BTreeMap<String, String>) -> Level {
        match labels.get(ENFORCE_LABEL) {
            None => Level::Privileged,
            Some(value) => Level::parse(value).unwrap_or(Level::Restricted),
        }
    }

    pub fn parse(value: &str) -> Option<Level> {
        match value {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// The enforced level and the version it is reported under (`restricted:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub level: Level,
    pub version: String,
}

impl Policy {
    pub fn from_namespace_labels(labels: &BTreeMap<String, String>) -> Policy {
        let level = Level::from_namespace_labels(labels);
        let version = match labels.get(ENFORCE_VERSION_LABEL).map(String::as_str) {
            Some(v) if v == "latest" || valid_version(v) => v.to_string(),
            _ => "latest".to_string(),
        };
        Policy { level, version }
    }
}

fn valid_version(v: &str) -> bool {
    v.strip_prefix("v1.")
        .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

/// One failed check: `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: String,
    pub detail: String,
}

/// Evaluate the whole pod (all containers, init and ephemeral containers) at `level`, latest
/// version. `Err` is the admission message, e.g. `violates PodSecurity "restricted:latest":
/// allowPrivilegeEscalation != false (container "dbg" must set ...), ...`.
pub fn evaluate(level: Level, pod: &Pod) -> Result<(), String> {
    evaluate_policy(
        &Policy {
            level,
            version: "latest".into(),
        },
        pod,
    )
}

/// [`evaluate`] with the version from the namespace's labels in the message.
pub fn evaluate_policy(policy: &Policy, pod: &Pod) -> Result<(), String> {
    let violations = violations(policy.level, pod);
    if violations.is_empty() {
        return Ok(());
    }
    Err(format!(
        "violates PodSecurity \"{}:{}\": {}",
        policy.level.as_str(),
        policy.version,
        forbidden_detail(&violations)
    ))
}

/// The 403 a PodSecurity rejection of pod `name` gets (also for `pods/ephemeralcontainers`):
/// `pods "app" is forbidden: <message>`.
pub fn forbidden_status(name: &str, message: &str) -> Status {
    super::field::forbidden_status("", "pods", name, message)
}

/// Whether an update of `old` to `new` is evaluated at all (`isSignificantPodUpdate`,
/// admission/admission.go): only a changed number of containers or init containers, a
/// changed image, an added ephemeral container or a changed per-container seccomp annotation
/// is. Other updates (labels, status, ...) of a pod that no longer complies are allowed, and
/// the subresources exec, attach, binding, eviction, log, portforward, proxy and status are
/// never evaluated; `ephemeralcontainers` is.
pub fn is_significant_pod_update(new: &Pod, old: &Pod) -> bool {
    let empty = PodSpec::default();
    let (ns, os) = (
        new.spec.as_ref().unwrap_or(&empty),
        old.spec.as_ref().unwrap_or(&empty),
    );
    let annotation = |pod: &Pod, name: &str| -> Option<String> {
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| {
                a.get(&format!(
                    "container.seccomp.security.alpha.kubernetes.io/{name}"
                ))
            })
            .cloned()
    };
    let changed = |name: &str, image: &Option<String>, old_image: &Option<String>| {
        image != old_image || annotation(new, name) != annotation(old, name)
    };
    let (new_init, old_init) = (
        ns.init_containers.as_deref().unwrap_or_default(),
        os.init_containers.as_deref().unwrap_or_default(),
    );
    if ns.containers.len() != os.containers.len() || new_init.len() != old_init.len() {
        return true;
    }
    let regular = ns
        .containers
        .iter()
        .zip(&os.containers)
        .chain(new_init.iter().zip(old_init))
        .any(|(n, o)| changed(&n.name, &n.image, &o.image));
    if regular {
        return true;
    }
    let old_ephemeral = os.ephemeral_containers.as_deref().unwrap_or_default();
    ns.ephemeral_containers.iter().flatten().any(|n| {
        match old_ephemeral.iter().find(|o| o.name == n.name) {
            None => true,
            Some(o) => changed(&n.name, &n.image, &o.image),
        }
    })
}

/// `AggregateCheckResult.ForbiddenDetail` (checks.go).
fn forbidden_detail(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.clone()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

type Check = fn(&ObjectMeta, &PodSpec) -> Option<Violation>;

/// Baseline checks that every non-privileged level runs, in file-name order.
const BASELINE: &[Check] = &[
    app_armor_profile,
    host_namespaces,
    host_ports,
    privileged,
    proc_mount,
    se_linux_options,
    sysctls,
    windows_host_process,
];

/// Baseline checks with `Overlap: true`: run at baseline only, since a restricted check
/// supersedes each of them.
const OVERLAPPING_BASELINE: &[Check] = &[
    capabilities_baseline,
    host_path_volumes,
    seccomp_profile_baseline,
];

const RESTRICTED: &[Check] = &[
    allow_privilege_escalation,
    capabilities_restricted,
    restricted_volumes,
    run_as_non_root,
    run_as_user,
    seccomp_profile_restricted,
];

/// Every failed check for `pod` at `level`, in upstream order.
pub fn violations(level: Level, pod: &Pod) -> Vec<Violation> {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let meta = &pod.metadata;
    let checks: Vec<Check> = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => BASELINE
            .iter()
            .chain(OVERLAPPING_BASELINE)
            .copied()
            .collect(),
        Level::Restricted => BASELINE.iter().chain(RESTRICTED).copied().collect(),
    };
    checks
        .iter()
        .filter_map(|check| check(meta, spec))
        .collect()
}

/// The parts of a container the checks look at; ephemeral containers are visited as
/// containers, as upstream casts `EphemeralContainerCommon` to `Container`.
struct Visited<'a> {
    name: &'a str,
    security_context: Option<&'a SecurityContext>,
    host_ports: Vec<i32>,
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
fn containers(spec: &PodSpec) -> Vec<Visited<'_>> {
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
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", items.join("\", \""))
}

/// helpers.go `pluralize`.
fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// `"container \"a\""` / `"containers \"a\", \"b\""`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn violation(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
    Some(Violation {
        reason: reason.into(),
        detail: detail.into(),
    })
}

fn pod_sc(spec: &PodSpec) -> Option<&k8s_openapi::api::core::v1::PodSecurityContext> {
    spec.security_context.as_ref()
}

// check_appArmorProfile.go: profile types other than RuntimeDefault and Localhost, and the
// deprecated beta annotations with values other than runtime/default and localhost/*.
fn app_armor_profile(meta: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let allowed = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    let mut setters: Vec<String> = Vec::new();
    let mut bad_values = BTreeSet::new();
    if let Some(profile) = pod_sc(spec).and_then(|sc| sc.app_armor_profile.as_ref())
        && !allowed(&profile.type_)
    {
        setters.push("pod".into());
        bad_values.insert(profile.type_.clone());
    }
    let mut bad_containers = Vec::new();
    for c in containers(spec) {
        if let Some(profile) = c
            .security_context
            .and_then(|sc| sc.app_armor_profile.as_ref())
            && !allowed(&profile.type_)
        {
            bad_containers.push(c.name);
            bad_values.insert(profile.type_.clone());
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    let mut bad_list: Vec<String> = bad_values.into_iter().collect();
    let mut annotations: Vec<String> = meta
        .annotations
        .iter()
        .flatten()
        .filter(|(k, v)| {
            k.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", super::field::go_quote(v)))
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).into());
        bad_list.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            bad_list.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&bad_list)
        ),
    )
}

// check_capabilities_baseline.go: adding capabilities beyond the runtime's default set.
fn capabilities_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    const ALLOWED: &[&str] = &[
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
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in containers(spec) {
        let added = c
            .security_context
            .and_then(|sc| sc.capabilities.as_ref())
            .and_then(|caps| caps.add.as_ref());
        let mut valid = true;
        for cap in added.into_iter().flatten() {
            if !ALLOWED.contains(&cap.as_str()) {
                valid = false;
                caps.insert(cap.as_str());
            }
        }
        if !valid {
            bad.push(c.name);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let caps: Vec<&str> = caps.into_iter().collect();
    violation(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
    )
}

// check_hostNamespaces.go
fn host_namespaces(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let used: Vec<&str> = [
        (spec.host_network, "hostNetwork=true"),
        (spec.host_pid, "hostPID=true"),
        (spec.host_ipc, "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(set, _)| *set == Some(true))
    .map(|(_, name)| name)
    .collect();
    if used.is_empty() {
        return None;
    }
    violation("host namespaces", used.join(", "))
}

// check_hostPathVolumes.go
fn host_path_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let host: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.as_str())
        .collect();
    if host.is_empty() {
        return None;
    }
    violation(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", host.len()),
            join_quote(&host)
        ),
    )
}

// check_hostPorts.go: the ports are a sorted set of strings, as upstream's sets.NewString.
fn host_ports(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = BTreeSet::new();
    for c in containers(spec) {
        if !c.host_ports.is_empty() {
            bad.push(c.name);
            ports.extend(c.host_ports.iter().map(i32::to_string));
        }
    }
    if bad.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    violation(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

// check_privileged.go
fn privileged(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .into_iter()
        .filter(|c| c.security_context.and_then(|sc| sc.privileged) == Some(true))
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

// check_procMount.go
fn proc_mount(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in containers(spec) {
        if let Some(pm) = c.security_context.and_then(|sc| sc.proc_mount.as_deref())
            && pm != "Default"
        {
            bad.push(c.name);
            types.insert(pm);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    violation(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&types)
        ),
    )
}

// check_seLinuxOptions.go. Upstream only mentions a set user or role when a type is also bad;
// kept as is.
fn se_linux_options(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad_types = BTreeSet::new();
    let (mut set_user, mut set_role) = (false, false);
    let mut valid = |opts: &k8s_openapi::api::core::v1::SELinuxOptions| {
        let mut ok = true;
        let t = opts.type_.as_deref().unwrap_or_default();
        if !["", "container_t", "container_init_t", "container_kvm_t"].contains(&t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if opts.user.as_deref().is_some_and(|u| !u.is_empty()) {
            ok = false;
            set_user = true;
        }
        if opts.role.as_deref().is_some_and(|r| !r.is_empty()) {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters: Vec<String> = Vec::new();
    if let Some(opts) = pod_sc(spec).and_then(|sc| sc.se_linux_options.as_ref())
        && !valid(opts)
    {
        setters.push("pod".into());
    }
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(opts) = c
            .security_context
            .and_then(|sc| sc.se_linux_options.as_ref())
            && !valid(opts)
        {
            bad.push(c.name);
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
        if set_user {
            data.push("user may not be set".to_string());
        }
        if set_role {
            data.push("role may not be set".to_string());
        }
    }
    violation(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// Shared part of both seccomp checks: who set a bad type explicitly, which types, and which
/// containers have no profile and are not covered by a valid pod-level one.
struct SeccompFindings<'a> {
    setters: Vec<String>,
    bad_values: BTreeSet<String>,
    implicitly_bad: Vec<&'a str>,
}

fn seccomp_findings(spec: &PodSpec) -> SeccompFindings<'_> {
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

fn seccomp_explicit(findings: &SeccompFindings<'_>) -> Option<Violation> {
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

// check_seccompProfile_baseline.go (1.19+ field check, and the 1.0 check of the deprecated
// annotations, which latest no longer runs).
fn seccomp_profile_baseline(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    seccomp_explicit(&seccomp_findings(spec))
}

// check_seccompProfile_restricted.go
fn seccomp_profile_restricted(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let findings = seccomp_findings(spec);
    if let Some(v) = seccomp_explicit(&findings) {
        return Some(v);
    }
    if findings.implicitly_bad.is_empty() {
        return None;
    }
    violation(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&findings.implicitly_bad)
        ),
    )
}

// check_sysctls.go, with the safe set as of policy version 1.32.
fn sysctls(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    const SAFE: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        // 1.27
        "net.ipv4.ip_local_reserved_ports",
        // 1.29
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        // 1.32
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    ];
    let bad: Vec<&str> = pod_sc(spec)
        .and_then(|sc| sc.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| s.name.as_str())
        .filter(|name| !SAFE.contains(name))
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation("forbidden sysctls", bad.join(", "))
}

// check_windowsHostProcess.go
fn windows_host_process(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .into_iter()
        .filter(|c| {
            c.security_context
                .and_then(|sc| sc.windows_options.as_ref())
                .and_then(|w| w.host_process)
                == Some(true)
        })
        .map(|c| c.name)
        .collect();
    let mut setters = Vec::new();
    if pod_sc(spec)
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process)
        == Some(true)
    {
        setters.push("pod".to_string());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}

// check_allowPrivilegeEscalation.go
fn allow_privilege_escalation(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .into_iter()
        .filter(|c| {
            c.security_context
                .and_then(|sc| sc.allow_privilege_escalation)
                != Some(false)
        })
        .map(|c| c.name)
        .collect();
    if bad.is_empty() {
        return None;
    }
    violation(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

// check_capabilities_restricted.go: drop ALL, add at most NET_BIND_SERVICE.
fn capabilities_restricted(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut missing_drop_all = Vec::new();
    let mut adding = Vec::new();
    let mut forbidden_caps = BTreeSet::new();
    for c in containers(spec) {
        let Some(caps) = c.security_context.and_then(|sc| sc.capabilities.as_ref()) else {
            missing_drop_all.push(c.name);
            continue;
        };
        if !caps.drop.iter().flatten().any(|d| d == "ALL") {
            missing_drop_all.push(c.name);
        }
        let mut added_forbidden = false;
        for cap in caps.add.iter().flatten() {
            if cap != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden_caps.insert(cap.as_str());
            }
        }
        if added_forbidden {
            adding.push(c.name);
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding.is_empty() {
        let caps: Vec<&str> = forbidden_caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    violation("unrestricted capabilities", details.join("; "))
}

// check_restrictedVolumes.go
fn restricted_volumes(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in spec.volumes.iter().flatten() {
        let allowed = v.config_map.is_some()
            || v.csi.is_some()
            || v.downward_api.is_some()
            || v.empty_dir.is_some()
            || v.ephemeral.is_some()
            || v.persistent_volume_claim.is_some()
            || v.projected.is_some()
            || v.secret.is_some();
        if allowed {
            continue;
        }
        bad.push(v.name.as_str());
        let kind = [
            (v.host_path.is_some(), "hostPath"),
            (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
            (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
            (v.git_repo.is_some(), "gitRepo"),
            (v.nfs.is_some(), "nfs"),
            (v.iscsi.is_some(), "iscsi"),
            (v.glusterfs.is_some(), "glusterfs"),
            (v.rbd.is_some(), "rbd"),
            (v.flex_volume.is_some(), "flexVolume"),
            (v.cinder.is_some(), "cinder"),
            (v.cephfs.is_some(), "cephfs"),
            (v.flocker.is_some(), "flocker"),
            (v.fc.is_some(), "fc"),
            (v.azure_file.is_some(), "azureFile"),
            (v.vsphere_volume.is_some(), "vsphereVolume"),
            (v.quobyte.is_some(), "quobyte"),
            (v.azure_disk.is_some(), "azureDisk"),
            (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
            (v.portworx_volume.is_some(), "portworxVolume"),
            (v.scale_io.is_some(), "scaleIO"),
            (v.storageos.is_some(), "storageos"),
        ]
        .into_iter()
        .find(|(set, _)| *set)
        .map_or("unknown", |(_, name)| name);
        types.insert(kind);
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    violation(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

// check_runAsNonRoot.go
fn run_as_non_root(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut setters: Vec<String> = Vec::new();
    let mut pod_non_root = false;
    match pod_sc(spec).and_then(|sc| sc.run_as_non_root) {
        Some(false) => setters.push("pod".into()),
        Some(true) => pod_non_root = true,
        None => {}
    }
    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    for c in containers(spec) {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(false) => explicitly_bad.push(c.name),
            Some(true) => {}
            None if !pod_non_root => implicitly_bad.push(c.name),
            None => {}
        }
    }
    if !explicitly_bad.is_empty() {
        setters.push(containers_phrase(&explicitly_bad));
    }
    if !setters.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return violation(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicitly_bad)
            ),
        );
    }
    None
}

// check_runAsUser.go
fn run_as_user(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let mut setters: Vec<String> = Vec::new();
    if pod_sc(spec).and_then(|sc| sc.run_as_user) == Some(0) {
        setters.push("pod".into());
    }
    let bad: Vec<&str> = containers(spec)
        .into_iter()
        .filter(|c| c.security_context.and_then(|sc| sc.run_as_user) == Some(0))
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    violation(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

#[cfg(test)]
#[path = "psa_tests.rs"]
mod tests;
