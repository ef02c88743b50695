//! The incident trail on the pod: a core/v1 Event when a debug container of ours is added or
//! reused, and one when the session on it ends, written as kubectl's own tools write them
//! (client-go's `record` package: name `<pod>.<hex nanoseconds>`, `involvedObject` with the
//! pod's uid and the container's `fieldPath`, `source.component`, `reportingComponent`), so
//! `kubectl describe pod` and `kubectl get events --field-selector involvedObject.name=POD`
//! show who debugged the pod, why, with what, and how it ended.
//!
//! An Event is a courtesy, never a condition: a user who may not create events gets one note,
//! and the session goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Api;
use kube::api::PostParams;

use crate::base::duration::Human;
use crate::base::error::status_code;
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::options::DebugOptions;
use crate::session::plan::Plan;

/// `source.component` and `reportingComponent` of our Events.
pub const COMPONENT: &str = "kubectl-distroless-debug";
pub const ADDED: &str = "DebugContainerAdded";
pub const REUSED: &str = "DebugContainerReused";
pub const STOPPED: &str = "DebugSessionEnded";
pub const RAN: &str = "DebugRunbookRan";

/// What a session's Events say about it.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: Option<String>,
    pub target: String,
    pub debug_container: String,
    pub image: String,
    pub profile: String,
    pub user: String,
    pub reason: Option<String>,
}

/// What the Events of this session say about it.
pub fn trail_of(
    options: &DebugOptions,
    plan: &Plan,
    namespace: &str,
    debug_container: &str,
) -> Trail {
    Trail {
        namespace: namespace.to_string(),
        pod: plan.target.pod_name().to_string(),
        pod_uid: plan.target.pod.metadata.uid.clone(),
        target: plan.target.container.clone(),
        debug_container: debug_container.to_string(),
        image: plan.image.clone(),
        profile: options.profile.name().to_string(),
        user: plan.user.clone(),
        reason: options.reason.clone(),
    }
}

/// How the session on the container ended, for the last Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Interrupted(i32),
    /// It failed before an exit code was known (a lost connection, say).
    Failed,
}

/// The first Event of a session: the container added, or reused.
pub fn started(trail: &Trail, reused: bool) -> (&'static str, String) {
    let verb = if reused { "reused" } else { "added" };
    (
        if reused { REUSED } else { ADDED },
        format!(
            "{} {verb} debug container {} (image {}, profile {}) targeting container {}{}",
            who(trail),
            trail.debug_container,
            trail.image,
            trail.profile,
            trail.target,
            why(trail)
        ),
    )
}

/// The last Event of a session: its exit code and how long it took.
pub fn ended(trail: &Trail, end: End, took: Duration) -> (&'static str, String) {
    let how = match end {
        End::Exited(code) => format!("exit code {code}"),
        End::Interrupted(signal) => format!("interrupted by signal {signal}"),
        End::Failed => "failed before an exit code was known".to_string(),
    };
    (
        STOPPED,
        format!(
            "session of {} in debug container {} ended: {how}, after {}{}",
            who(trail),
            trail.debug_container,
            Human(Duration::from_secs(took.as_secs())),
            why(trail)
        ),
    )
}

/// A fan-out's one Event per pod: the runbook, its outcome and how long the pod took.
/// `ran`: the runbook's name, the pod's status and how many steps it has.
pub fn ran(
    trail: &Trail,
    (runbook, status, steps): (&str, &str, usize),
    took: Duration,
) -> (&'static str, String) {
    (
        RAN,
        format!(
            "{} ran runbook {runbook} ({steps} step{}) in debug container {} (image {}, profile {}) targeting container {}: {status}, after {}{}",
            who(trail),
            if steps == 1 { "" } else { "s" },
            trail.debug_container,
            trail.image,
            trail.profile,
            trail.target,
            Human(Duration::from_secs(took.as_secs())),
            why(trail)
        ),
    )
}

fn who(trail: &Trail) -> &str {
    if trail.user.is_empty() {
        "an unknown user"
    } else {
        &trail.user
    }
}

fn why(trail: &Trail) -> String {
    trail
        .reason
        .as_deref()
        .map(|r| format!("; reason: {r}"))
        .unwrap_or_default()
}

/// The Event object for `reason` and `message` on the trail's pod; `nanos` makes its name.
pub fn event_for(trail: &Trail, reason: &str, message: String, nanos: i128) -> Event {
    let now = jiff::Timestamp::now();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", trail.pod, nanos.max(0))),
            namespace: Some(trail.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(trail.pod.clone()),
            namespace: Some(trail.namespace.clone()),
            uid: trail.pod_uid.clone(),
            field_path: Some(format!(
                "spec.ephemeralContainers{{{}}}",
                trail.debug_container
            )),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message),
        type_: Some("Normal".into()),
        action: Some("Debug".into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(format!("{COMPONENT}-{}", trail.user)),
        ..Event::default()
    }
}

/// Writes the trail's Events; after one refusal it writes no more (one note per session).
pub struct Recorder<'a> {
    cluster: &'a Cluster,
    printer: &'a Printer,
    pub trail: Trail,
    refused: AtomicBool,
}

impl<'a> Recorder<'a> {
    pub fn new(cluster: &'a Cluster, printer: &'a Printer, trail: Trail) -> Self {
        Recorder {
            cluster,
            printer,
            trail,
            refused: AtomicBool::new(false),
        }
    }

    /// Creates the Event; its name, or `None` (after one note) when it could not be written.
    pub async fn write(&self, what: (&'static str, String)) -> Option<String> {
        self.post(self.event(what)?).await
    }

    pub fn cluster(&self) -> &'a Cluster {
        self.cluster
    }

    /// The Event for `(reason, message)`, named now; `None` after a refusal.
    pub fn event(&self, (reason, message): (&'static str, String)) -> Option<Event> {
        if self.refused.load(Ordering::Relaxed) {
            return None;
        }
        let nanos = jiff::Timestamp::now().as_nanosecond();
        Some(event_for(&self.trail, reason, message, nanos))
    }

    /// Creates `event` (made by [`Self::event`]); its name, or `None` (after one note).
    pub async fn post(&self, event: Event) -> Option<String> {
        if self.refused.load(Ordering::Relaxed) {
            return None;
        }
        match create(self.cluster, &event).await {
            Ok(name) => Some(name),
            Err(e) => {
                self.refused.store(true, Ordering::Relaxed);
                self.printer.note(&format!(
                    "no Event written on pod {} ({}); the session goes on, recorded locally only",
                    self.trail.pod,
                    why_not_written(&e, &self.trail.namespace)
                ));
                None
            }
        }
    }
}

/// Why an Event was not written, in words: the session's note and the hand-off's say the same.
pub fn why_not_written(e: &kube::Error, namespace: &str) -> String {
    match status_code(e) {
        Some(403) => format!("no permission to create events in namespace {namespace}"),
        Some(code) => format!("HTTP {code}"),
        None => e.to_string(),
    }
}

/// Creates `event` in its namespace under the cluster's bounds; its name. An Event of that
/// name already there counts as written: it is this one, from an earlier attempt whose
/// answer was not awaited (session/handoff.rs writes again what a session left unanswered).
pub async fn create(cluster: &Cluster, event: &Event) -> Result<String, kube::Error> {
    let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), namespace);
    let name = event.metadata.name.clone().unwrap_or_default();
    match cluster
        .bounded(events.create(&PostParams::default(), event))
        .await
    {
        Ok(created) => Ok(created.metadata.name.unwrap_or(name)),
        Err(e) if status_code(&e) == Some(409) => Ok(name),
        Err(e) => Err(e),
    }
}

/// A trail for unit tests: alice on shop/web-1, with a reason.
#[cfg(test)]
pub(crate) fn sample_trail() -> Trail {
    Trail {
        namespace: "shop".into(),
        pod: "web-1".into(),
        pod_uid: Some("u-1".into()),
        target: "app".into(),
        debug_container: "dbg-abcde".into(),
        image: "ghcr.io/x/base:1".into(),
        profile: "auto".into(),
        user: "alice".into(),
        reason: Some("INC-42".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::sample_trail as trail;
    use super::*;

    #[test]
    fn the_start_event_names_user_reason_container_image_and_profile() {
        let (reason, message) = started(&trail(), false);
        assert_eq!(reason, ADDED);
        assert_eq!(
            message,
            "alice added debug container dbg-abcde (image ghcr.io/x/base:1, profile auto) targeting container app; reason: INC-42"
        );
        assert_eq!(started(&trail(), true).0, REUSED);
    }

    #[test]
    fn the_end_event_carries_exit_code_and_duration() {
        let (reason, message) = ended(&trail(), End::Exited(3), Duration::from_millis(61_400));
        assert_eq!(reason, STOPPED);
        assert!(message.contains("exit code 3"), "{message}");
        assert!(message.contains("after 1m1s"), "{message}");
        assert!(message.ends_with("reason: INC-42"), "{message}");
        let no_reason = Trail {
            reason: None,
            user: String::new(),
            ..trail()
        };
        let (_, message) = ended(&no_reason, End::Interrupted(2), Duration::ZERO);
        assert!(
            message.starts_with("session of an unknown user"),
            "{message}"
        );
        assert!(!message.contains("reason"), "{message}");
    }

    #[test]
    fn a_runbook_event_names_the_runbook_and_its_outcome() {
        let (reason, message) = ran(&trail(), ("jvm", "failed", 3), Duration::from_secs(12));
        assert_eq!(reason, RAN);
        assert_eq!(
            message,
            "alice ran runbook jvm (3 steps) in debug container dbg-abcde (image ghcr.io/x/base:1, profile auto) targeting container app: failed, after 12s; reason: INC-42"
        );
    }

    #[tokio::test]
    async fn an_event_already_there_counts_as_written_other_refusals_do_not() {
        use crate::kube::fake_apiserver::{FakeApiServer, Reply, status};
        use http::{Method, StatusCode};
        let fake = FakeApiServer::default();
        let path = "/api/v1/namespaces/shop/events";
        fake.route(
            Method::POST,
            path,
            None,
            Reply::Json(
                StatusCode::CONFLICT,
                status(409, "AlreadyExists", "events \"web-1.1f\" already exists"),
            ),
        );
        fake.route(
            Method::POST,
            path,
            None,
            Reply::Json(StatusCode::FORBIDDEN, status(403, "Forbidden", "no")),
        );
        let cluster = fake.cluster();
        let event = event_for(&trail(), STOPPED, "m".into(), 0x1f);
        assert_eq!(
            create(&cluster, &event).await.expect("already there"),
            "web-1.1f"
        );
        let refused = create(&cluster, &event).await.expect_err("refused");
        assert_eq!(status_code(&refused), Some(403));
        assert_eq!(fake.log().len(), 2);
    }

    #[test]
    fn the_event_points_at_the_pod_and_the_debug_container() {
        let event = event_for(&trail(), ADDED, "m".into(), 0x1f);
        assert_eq!(event.metadata.name.as_deref(), Some("web-1.1f"));
        let object = &event.involved_object;
        assert_eq!(object.kind.as_deref(), Some("Pod"));
        assert_eq!(object.uid.as_deref(), Some("u-1"));
        assert_eq!(
            object.field_path.as_deref(),
            Some("spec.ephemeralContainers{dbg-abcde}")
        );
        assert_eq!(event.reporting_component.as_deref(), Some(COMPONENT));
        assert_eq!(event.type_.as_deref(), Some("Normal"));
    }
}
