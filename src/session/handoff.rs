//! The trail's Events that would keep the user waiting, handed to a process of their own.
//!
//! A session ends when its command does. What is left of its trail then is the last Event
//! (and, after a short command, the first one still on its way): a round trip to the API
//! server, which nobody at the terminal or in a script should wait for. So the session
//! starts this binary once more as `__trail`, in a process group of its own (Ctrl-C at the
//! terminal does not reach it), with nothing of the terminal but a pipe on stdin, and gives it
//! the Events and the flags to build the same client; then exits. The hand-off writes them
//! in order, an Event already there counting as written (the session's own unanswered attempt
//! may have landed), and completes the session's sidecar: the names written, or a note of
//! what could not be (`history -o json` shows both).
//!
//! Only the plugin's own `main` hands off ([`enable`]): a library caller (the unit tests) has
//! no `__trail` to start and writes the Events itself, as a session does when the hand-off
//! cannot be started.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use serde::{Deserialize, Serialize};

use crate::kube::cluster::{Cluster, KubeOptions, Origin};
use crate::kube::retry::RetryPolicy;
use crate::output::recording;
use crate::session::events;

/// argv\[1\] of the hand-off process, a verb no user types (as `__complete`).
pub const VERB: &str = "__trail";

/// The longest a hand-off lives, whatever the retry flags say: it must not linger for a
/// cluster that is gone.
const AT_MOST: Duration = Duration::from_secs(60);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Lets sessions of this process hand their trail off (the plugin's `main` only).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What the hand-off is given on stdin.
#[derive(Debug, Serialize, Deserialize)]
struct Handoff {
    context: Option<String>,
    origin: Origin,
    request_timeout: Option<Duration>,
    retry: RetryPolicy,
    /// In the order they are to be written.
    events: Vec<Event>,
    /// The session's sidecar, to complete with what was written.
    record: Option<PathBuf>,
}

/// Starts the hand-off of `events` (in order) and returns at once; `Err` (the events given
/// back) when there is no hand-off to start, and the caller writes them itself.
pub fn hand_off(
    cluster: &Cluster,
    events: Vec<Event>,
    record: Option<PathBuf>,
) -> Result<(), Vec<Event>> {
    if events.is_empty() {
        return Ok(());
    }
    if !enabled() {
        return Err(events);
    }
    let handoff = Handoff {
        context: cluster.context.clone(),
        origin: cluster.origin.clone(),
        request_timeout: cluster.request_timeout,
        retry: cluster.retry,
        events,
        record,
    };
    match start(&handoff) {
        Ok(()) => Ok(()),
        Err(_) => Err(handoff.events),
    }
}

fn start(handoff: &Handoff) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let payload = serde_json::to_vec(handoff).map_err(std::io::Error::other)?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg(VERB)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    // A few KiB: the pipe takes them whole, and the hand-off reads to the end.
    let written = child
        .stdin
        .take()
        .map_or(Ok(()), |mut stdin| stdin.write_all(&payload));
    if written.is_err() {
        let _ = child.kill();
    }
    written
}

/// The `__trail` process: reads its hand-off from stdin and writes it.
pub fn run() -> ExitCode {
    let mut payload = Vec::new();
    let handoff: Handoff = match std::io::stdin()
        .read_to_end(&mut payload)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice(&payload).map_err(|e| e.to_string()))
    {
        Ok(handoff) => handoff,
        Err(_) => return ExitCode::from(2),
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    let mut outcome = Outcome::default();
    runtime.block_on(async {
        // What was written before the limit stays in `outcome` (names are kept as they land).
        if tokio::time::timeout(AT_MOST, write(&handoff, &mut outcome))
            .await
            .is_err()
        {
            outcome.note = Some(format!("not written within {}s", AT_MOST.as_secs()));
        }
    });
    if let Some(path) = &handoff.record {
        complete(
            path,
            &handoff.events,
            &outcome.written,
            outcome.note.as_deref(),
        );
    }
    if outcome.note.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// What the hand-off wrote, and why it stopped short, if it did.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    written: Vec<String>,
    note: Option<String>,
}

/// Writes the hand-off's Events in order into `outcome`, each name as soon as its Event is
/// written, so that a caller that gives up on it still knows which landed.
async fn write(handoff: &Handoff, outcome: &mut Outcome) {
    let options = KubeOptions {
        namespace: None,
        contexts: handoff.context.iter().cloned().collect(),
        kubeconfig: handoff.origin.kubeconfig.clone(),
        as_user: handoff.origin.as_user.clone(),
        request_timeout: handoff.request_timeout,
        retry: handoff.retry,
    };
    let cluster = match Cluster::connect(&options, None).await {
        Ok(cluster) => cluster,
        Err(e) => {
            outcome.note = Some(format!("no client for the cluster ({e})"));
            return;
        }
    };
    write_events(&cluster, &handoff.events, outcome).await;
}

/// `events` written in order on `cluster`, each name into `outcome` as soon as its Event is;
/// the first that cannot be stops the rest, with a note why.
async fn write_events(cluster: &Cluster, events: &[Event], outcome: &mut Outcome) {
    for event in events {
        match events::create(cluster, event).await {
            Ok(name) => outcome.written.push(name),
            Err(e) => {
                let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
                outcome.note = Some(events::why_not_written(&e, namespace));
                break;
            }
        }
    }
}

/// The sidecar at `path` with the names `written` added, and `note`, why the next of
/// `events` was not written, if one was not.
pub fn complete(path: &std::path::Path, events: &[Event], written: &[String], note: Option<&str>) {
    let Some(dir) = path.parent() else {
        return;
    };
    let Ok(mut record) = recording::read_record(path) else {
        return;
    };
    record.events.extend(written.iter().cloned());
    if let Some(why) = note {
        let missed = events
            .get(written.len())
            .and_then(|e| e.reason.as_deref())
            .unwrap_or("Event");
        record.notes.push(format!(
            "the {missed} Event was not written on pod {} after the session ended ({why})",
            record.pod
        ));
    }
    let _ = recording::write_record(dir, &record);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::recording::SessionRecord;
    use crate::session::events::{event_for, sample_trail as trail};

    #[test]
    fn the_handoff_reads_back_what_the_session_gave_it() {
        let handoff = Handoff {
            context: Some("prod".into()),
            origin: Origin {
                kubeconfig: Some("/k/config".into()),
                as_user: Some("alice".into()),
            },
            request_timeout: Some(Duration::from_secs(7)),
            retry: RetryPolicy {
                retries: 3,
                within: Duration::from_secs(20),
            },
            events: vec![
                event_for(&trail(), events::REUSED, "m1".into(), 1),
                event_for(&trail(), events::STOPPED, "m2".into(), 2),
            ],
            record: Some("/s/x.json".into()),
        };
        let text = serde_json::to_vec(&handoff).expect("serialises");
        let back: Handoff = serde_json::from_slice(&text).expect("reads back");
        assert_eq!(back.context.as_deref(), Some("prod"));
        assert_eq!(back.origin, handoff.origin);
        assert_eq!(back.request_timeout, Some(Duration::from_secs(7)));
        assert_eq!(
            (back.retry.retries, back.retry.within),
            (3, Duration::from_secs(20))
        );
        let names: Vec<_> = back
            .events
            .iter()
            .map(|e| e.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["web-1.1", "web-1.2"], "the order, the names kept");
        assert_eq!(back.events[1].message.as_deref(), Some("m2"));
    }

    #[tokio::test]
    async fn without_enable_the_events_come_back_to_be_written_by_the_session() {
        // A library caller never starts a process: `enable` is the plugin's main's alone.
        let events = vec![event_for(&trail(), events::STOPPED, "m".into(), 3)];
        let fake = crate::kube::fake_apiserver::FakeApiServer::default();
        let cluster = fake.cluster();
        let back = hand_off(&cluster, events, None).expect_err("not enabled");
        assert_eq!(back.len(), 1);
        assert!(
            hand_off(&cluster, Vec::new(), None).is_ok(),
            "nothing to do"
        );
    }

    #[tokio::test]
    async fn names_written_before_the_limit_are_kept_when_it_cuts_the_rest_off() {
        use crate::kube::fake_apiserver::{FakeApiServer, Reply};
        use http::{Method, StatusCode};
        // Each Event is answered 1 s late; the limit falls halfway through the second's wait,
        // half a second from either answer, so that a loaded machine does not move it.
        let fake = FakeApiServer::with_latency(Duration::from_secs(1));
        fake.route(
            Method::POST,
            "/api/v1/namespaces/shop/events",
            None,
            Reply::With(std::sync::Arc::new(|seen| {
                (StatusCode::CREATED, seen.body.clone().unwrap_or_default())
            })),
        );
        let events = vec![
            event_for(&trail(), events::REUSED, "m1".into(), 1),
            event_for(&trail(), events::STOPPED, "m2".into(), 2),
        ];
        let mut outcome = Outcome::default();
        let cut = tokio::time::timeout(
            Duration::from_millis(1_500),
            write_events(&fake.cluster(), &events, &mut outcome),
        )
        .await;
        assert!(cut.is_err(), "the limit fell before the second answer");
        assert_eq!(
            outcome.written,
            ["web-1.1"],
            "the first, written, is not lost"
        );
        assert_eq!(fake.log().len(), 2, "the second was on its way");
    }

    #[test]
    fn the_sidecar_gets_the_names_written_and_a_note_for_the_first_not_written() {
        let dir = std::env::temp_dir().join(format!("handoff-test-{}", std::process::id()));
        let record = SessionRecord {
            id: "20261206T000000Z-abcde".into(),
            pod: "web-1".into(),
            events: vec!["web-1.0".into()],
            ..SessionRecord::default()
        };
        let path = recording::write_record(&dir, &record).expect("written");
        let events = vec![
            event_for(&trail(), events::REUSED, "m1".into(), 1),
            event_for(&trail(), events::STOPPED, "m2".into(), 2),
        ];

        complete(&path, &events, &["web-1.1".into()], Some("HTTP 500"));
        let after = recording::read_record(&path).expect("read back");
        assert_eq!(after.events, ["web-1.0", "web-1.1"]);
        assert_eq!(
            after.notes,
            [
                "the DebugSessionEnded Event was not written on pod web-1 after the session ended (HTTP 500)"
            ]
        );
        assert_eq!(after.id, record.id, "the rest of the sidecar kept");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
