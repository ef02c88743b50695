//! Pods the tests of the plugin and of the sandbox share, as manifests for `kubectl apply`
//! or a POST: the crashing app and its crash-looping pod.

pub use crate::node::{CRASHING_APP, DISTROLESS_NONROOT, DISTROLESS_ROOT};

/// A pod that crash-loops like a real misconfigured workload: container `app` runs `image`
/// (by default [`CRASHING_APP`]) with no `command`/`args`, so its entrypoint comes from the
/// image config (`/sandbox-app require-port`), which exits 1 with
/// `sandbox-app: PORT is not set`; `restartPolicy: Always` makes the node restart it with
/// back-off, the status going CrashLoopBackOff. Labels `app: NAME`.
pub fn crash_looping_pod(name: &str, image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {image}
"#
    )
}
