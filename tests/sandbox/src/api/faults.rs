//! Faults on demand: added latency, error bursts, answers dropped after the request took
//! effect, dropped watch and exec streams, and the node's slow or failing image pulls. Settable at start (YAML file) and while running.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::status::ApiError;
use crate::runtime::NodeFaults;

/// A burst of error answers for the next `count` matching requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBurst {
    /// 429, 500 or 503.
    pub code: u16,
    /// How many requests get the error.
    pub count: u32,
    /// Only requests whose path contains this are affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
}

/// The next `count` matching requests are served (a write takes effect) and then the
/// connection is closed without an answer: the client cannot tell whether its request landed,
/// as after a timeout or a reset between the API server and a client far away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropResponse {
    pub count: u32,
    /// Only requests whose path contains this are affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// Only requests of this method (`PATCH`, `GET`...) are affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Requests to one kind of path answered later than the rest (an overloaded part of the API
/// server, say its events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slow {
    /// Added, on top of `latency_ms`, before each matching request is served.
    pub ms: u64,
    /// Only requests whose path contains this are affected.
    pub path_contains: String,
    /// Only requests of this method (`POST`, `GET`...) are affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Every fault the sandbox can inject. YAML, e.g.:
///
/// ```yaml
/// latency_ms: 50
/// slow: { ms: 3000, path_contains: /events, method: POST }
/// error_burst: { code: 429, count: 3, path_contains: /pods }
/// drop_response: { count: 1, path_contains: /ephemeralcontainers, method: PATCH }
/// drop_watch_after_ms: 2000
/// drop_exec_after_ms: 500
/// pull_delay_ms: 3000
/// fail_pulls: [sandbox.local/missing:1]
/// hide_container_user: true
/// opaque_cgroups: true
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every request before it is served.
    pub latency_ms: u64,
    pub slow: Option<Slow>,
    pub error_burst: Option<ErrorBurst>,
    pub drop_response: Option<DropResponse>,
    /// Watch streams end (connection closed, no ERROR event) after this long.
    pub drop_watch_after_ms: Option<u64>,
    /// Exec and attach streams are cut (no close frame) after this long.
    pub drop_exec_after_ms: Option<u64>,
    /// Each image pull takes at least this long.
    pub pull_delay_ms: u64,
    /// Image references whose pull fails.
    pub fail_pulls: Vec<String>,
    /// The node does not report `status.containerStatuses[].user` (kubelets before 1.33, or
    /// with the SupplementalGroupsPolicy gate off): the uid of a container whose spec does
    /// not set one is then unknown to clients.
    pub hide_container_user: bool,
    /// Containers started from now on get cgroups without their ID
    /// (`/kubepods/sandboxed/<random>`), as under gVisor or Kata: `/proc/<pid>/cgroup` does
    /// not tell which container a process belongs to.
    pub opaque_cgroups: bool,
}

impl Faults {
    pub fn from_yaml(text: &str) -> Result<Faults, String> {
        if text.trim().is_empty() {
            return Ok(Faults::default());
        }
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    pub fn node_faults(&self) -> NodeFaults {
        NodeFaults {
            pull_delay: Duration::from_millis(self.pull_delay_ms),
            fail_pulls: self.fail_pulls.clone(),
            hide_container_user: self.hide_container_user,
            opaque_cgroups: self.opaque_cgroups,
        }
    }
}

/// The live fault settings the server consults on every request.
pub struct FaultState {
    faults: Mutex<Faults>,
    /// Shared with the node, which reads it at every pull.
    pub node: Arc<RwLock<NodeFaults>>,
}

impl FaultState {
    pub fn new(faults: Faults) -> FaultState {
        let node = Arc::new(RwLock::new(faults.node_faults()));
        FaultState {
            faults: Mutex::new(faults),
            node,
        }
    }

    pub fn get(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, faults: Faults) {
        *self.node.write().unwrap_or_else(|e| e.into_inner()) = faults.node_faults();
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// What is added before serving `method path`: the latency, and the slow path's.
    pub fn latency_for(&self, method: &str, path: &str) -> Duration {
        let faults = self.get();
        let slow = faults
            .slow
            .filter(|s| path.contains(&s.path_contains))
            .filter(|s| {
                s.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
            })
            .map_or(0, |s| s.ms);
        Duration::from_millis(faults.latency_ms + slow)
    }

    pub fn drop_watch_after(&self) -> Option<Duration> {
        self.get().drop_watch_after_ms.map(Duration::from_millis)
    }

    pub fn drop_exec_after(&self) -> Option<Duration> {
        self.get().drop_exec_after_ms.map(Duration::from_millis)
    }

    /// Whether the answer to this request (already served) is to be dropped; consumes one.
    pub fn take_drop(&self, method: &str, path: &str) -> bool {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let Some(drop) = faults.drop_response.as_mut() else {
            return false;
        };
        if drop.count == 0
            || drop
                .path_contains
                .as_deref()
                .is_some_and(|p| !path.contains(p))
            || drop
                .method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
            return false;
        }
        drop.count -= 1;
        if drop.count == 0 {
            faults.drop_response = None;
        }
        true
    }

    /// If an error burst covers this request, consume one and return the error to answer.
    pub fn take_error(&self, path: &str) -> Option<ApiError> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let burst = faults.error_burst.as_mut()?;
        if burst.count == 0
            || burst
                .path_contains
                .as_deref()
                .is_some_and(|p| !path.contains(p))
        {
            return None;
        }
        burst.count -= 1;
        let code = burst.code;
        if burst.count == 0 {
            faults.error_burst = None;
        }
        Some(match code {
            429 => ApiError::too_many_requests(1),
            503 => {
                let mut e = ApiError::service_unavailable(
                    "the server is currently unable to handle the request",
                );
                e.retry_after = Some(1);
                e
            }
            _ => ApiError::internal("injected fault: the server had an internal error"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_path_adds_to_the_latency_of_its_requests_only() {
        let state = FaultState::new(
            Faults::from_yaml(
                "latency_ms: 5\nslow: { ms: 300, path_contains: /events, method: POST }",
            )
            .expect("valid"),
        );
        assert_eq!(
            state.latency_for("POST", "/api/v1/namespaces/a/events"),
            Duration::from_millis(305)
        );
        assert_eq!(
            state.latency_for("GET", "/api/v1/namespaces/a/events"),
            Duration::from_millis(5)
        );
        assert_eq!(
            state.latency_for("POST", "/api/v1/namespaces/a/pods"),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn burst_counts_down_and_matches_paths() {
        let state = FaultState::new(Faults {
            error_burst: Some(ErrorBurst {
                code: 429,
                count: 2,
                path_contains: Some("/pods".into()),
            }),
            ..Faults::default()
        });
        assert!(state.take_error("/api/v1/namespaces").is_none());
        let e = state.take_error("/api/v1/namespaces/default/pods").unwrap();
        assert_eq!((e.code, e.retry_after), (429, Some(1)));
        assert!(
            state
                .take_error("/api/v1/namespaces/default/pods")
                .is_some()
        );
        assert!(
            state
                .take_error("/api/v1/namespaces/default/pods")
                .is_none()
        );
    }

    #[test]
    fn dropped_answers_count_down_and_match_method_and_path() {
        let state = FaultState::new(
            Faults::from_yaml(
                "drop_response: { count: 1, path_contains: /ephemeralcontainers, method: PATCH }",
            )
            .unwrap(),
        );
        let path = "/api/v1/namespaces/default/pods/web/ephemeralcontainers";
        assert!(!state.take_drop("GET", path));
        assert!(!state.take_drop("PATCH", "/api/v1/namespaces/default/pods/web"));
        assert!(state.take_drop("PATCH", path));
        assert!(!state.take_drop("PATCH", path), "one only");
        assert_eq!(state.get().drop_response, None);
    }

    #[test]
    fn yaml_file_parses() {
        let f = Faults::from_yaml(
            "latency_ms: 50\nerror_burst: { code: 503, count: 1 }\nfail_pulls: [a/b:1]\n",
        )
        .unwrap();
        assert_eq!(f.latency_ms, 50);
        assert_eq!(f.error_burst.as_ref().unwrap().code, 503);
        assert_eq!(f.node_faults().fail_pulls, vec!["a/b:1"]);
    }
}
