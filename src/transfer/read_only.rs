//! Why a path in the target cannot be written, from the pod spec alone: the volume mount
//! that holds it (mounted `readOnly`, or from a read-only source) or the container's
//! `readOnlyRootFilesystem`, and the mount paths it could write to instead. `cp` says so
//! when an upload meets `Read-only file system`, before or after the agent tried.

use k8s_openapi::api::core::v1::Pod;

use crate::base::error::Error;
use crate::session::plan::Plan;
use crate::session::target::container_spec;

/// Why `dir` is read-only in the target, and where it could write instead.
pub fn read_only(plan: &Plan, dir: &str) -> Error {
    let (why, writable) = read_only_reason(&plan.target.pod, &plan.target.container, dir);
    Error::ReadOnlyTarget {
        pod: plan.target.pod_name().to_string(),
        container: plan.target.container.clone(),
        path: dir.to_string(),
        why,
        writable,
    }
}

/// The reason a path is on a read-only filesystem in `container`, from the pod spec (the
/// volume mount holding it, or `readOnlyRootFilesystem`), and the writable mount paths.
pub fn read_only_reason(pod: &Pod, container: &str, path: &str) -> (String, Vec<String>) {
    let spec = container_spec(pod, container);
    let mounts = spec
        .and_then(|c| c.volume_mounts.clone())
        .unwrap_or_default();
    let under = |mount: &str| {
        let mount = mount.trim_end_matches('/');
        path == mount || path.starts_with(&format!("{mount}/")) || mount.is_empty()
    };
    let holding = mounts
        .iter()
        .filter(|m| under(&m.mount_path))
        .max_by_key(|m| m.mount_path.len());
    let writable: Vec<String> = mounts
        .iter()
        .filter(|m| m.read_only != Some(true))
        .map(|m| m.mount_path.clone())
        .collect();
    let why = match holding {
        Some(m) if m.read_only == Some(true) => {
            format!("volume {} is mounted readOnly at {}", m.name, m.mount_path)
        }
        Some(m) => format!(
            "volume {} at {} is read-only (its source is)",
            m.name, m.mount_path
        ),
        None if spec
            .and_then(|c| c.security_context.as_ref())
            .and_then(|s| s.read_only_root_filesystem)
            == Some(true) =>
        {
            "readOnlyRootFilesystem".to_string()
        }
        None => "its root filesystem is mounted read-only".to_string(),
    };
    (why, writable)
}
