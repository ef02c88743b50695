//! Pod Security admission: the `baseline` and `restricted` Pod Security Standards, as
//! k8s.io/pod-security-admission enforces them from the namespace label
//! `pod-security.kubernetes.io/enforce`.
//!
//! Each check mirrors one file of staging/src/k8s.io/pod-security-admission/policy (named in
//! its comment), with the same forbidden reason and detail wording. The checks run in
//! upstream's order (registry.go `populate`): baseline checks sorted by check ID, then
//! restricted checks sorted by check ID; at level restricted the baseline checks a restricted
//! check overrides (`OverrideCheckIDs`) are left out. Every container is visited, init
//! containers first, then containers, then ephemeral containers (visitor.go), so one
//! non-compliant ephemeral container keeps failing every later update of the pod, as on a
//! real cluster.
//!
//! The policy version is "latest" as of Kubernetes 1.33 (the API level the sandbox serves);
//! the version label only changes the wording `restricted:<version>`. The user-namespace
//! relaxation (`RelaxPolicyForUserNamespacePods`) is off, as it is by default.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use checks::{BASELINE, CheckDef, RESTRICTED};

mod baseline;
mod checks;
mod restricted;

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

/// Every failed check for `pod` at `level`, in upstream order.
pub fn violations(level: Level, pod: &Pod) -> Vec<Violation> {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let meta = &pod.metadata;
    let checks: Vec<&CheckDef> = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => BASELINE.iter().collect(),
        Level::Restricted => {
            let overridden = |id: &str| RESTRICTED.iter().any(|r| r.overrides.contains(&id));
            BASELINE
                .iter()
                .filter(|b| !overridden(b.id))
                .chain(RESTRICTED)
                .collect()
        }
    };
    checks
        .iter()
        .filter_map(|def| (def.check)(meta, spec))
        .collect()
}

#[cfg(test)]
mod tests;
