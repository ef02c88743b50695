//! The incident trail against the sandbox: the Events a session writes on the pod (read back
//! with the real kubectl), its local recording and sidecar as `history` lists them, a user
//! who may not create events, `--no-record`, and the files' modes.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kube_sandbox::{ErrorBurst, Faults, SandboxOptions, Slow};
use serde_json::Value;
use support::{NONROOT_APP, TestCluster};

const LIMIT: Duration = Duration::from_secs(90);

/// dave may debug pods but not create events.
const NO_EVENTS: &str = r#"
users:
  - name: dave
    token: dave-token
    rules:
      - verbs: [get, list, watch]
        resources: [pods, namespaces]
      - verbs: [patch]
        resources: [pods/ephemeralcontainers]
      - verbs: [create, get]
        resources: [pods/exec]
"#;

async fn shop(options: SandboxOptions) -> Option<TestCluster> {
    let c = support::cluster_with(options).await?;
    c.namespace("shop", None).await;
    c.running_app("shop", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    Some(c)
}

fn sessions_dir(c: &TestCluster) -> PathBuf {
    c.state_home().join("kubectl-distroless-debug/sessions")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

/// `kubectl get events --field-selector involvedObject.name=POD -o json`, with the real
/// kubectl when there is one on PATH.
async fn events_of(c: &TestCluster, pod: &str) -> Vec<Value> {
    let selector = format!("involvedObject.name={pod}");
    let mut kubectl = tokio::process::Command::new("kubectl");
    kubectl
        .args(["get", "events", "-n", "shop", "--field-selector", &selector])
        .args(["-o", "json"])
        .env("KUBECONFIG", c.sb.kubeconfig_path())
        .kill_on_drop(true);
    let run = support::run_command(kubectl, LIMIT).await;
    assert_eq!(run.code, Some(0), "kubectl get events: {run:?}");
    let list: Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["reportingComponent"] == "kubectl-distroless-debug")
        .collect()
}

/// How long the hand-off of a session's last Events (src/session/handoff.rs) is given to
/// write them after the process has ended.
const HANDED_OFF: Duration = Duration::from_secs(30);

/// The pod's Events once there are `n` of ours (or, after [`HANDED_OFF`], those there are):
/// the last of a session is written after its process has ended.
async fn events_once(c: &TestCluster, pod: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + HANDED_OFF;
    loop {
        let events = events_of(c, pod).await;
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The newest session of `history -o json`, once `done` says its sidecar is complete (or,
/// after [`HANDED_OFF`], as it is): the hand-off completes it after the process has ended.
async fn newest_session_once(c: &TestCluster, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + HANDED_OFF;
    loop {
        let history = c.run(&["history", "-o", "json"], LIMIT).await;
        assert_eq!(history.code, Some(0), "{history:?}");
        let listed: Value = serde_json::from_str(&history.stdout).unwrap_or_default();
        let newest = listed["items"][0].clone();
        if done(&newest) || Instant::now() > deadline {
            return newest;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn names_in(session: &Value) -> Vec<String> {
    session["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_command_leaves_events_on_the_pod_and_a_recording_that_history_lists() {
    let Some(c) = shop(SandboxOptions::default()).await else {
        return;
    };
    let run = c
        .run(
            &[
                "-n",
                "shop",
                "pod/web",
                "--reason",
                "INC-42",
                "--",
                "sh",
                "-c",
                "echo out-line; echo err-line >&2; printf '\\033[1;31mred\\033[0m plain\\n'; exit 3",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(3), "{run:?}");

    // 1. The start and end Events, with the user, the reason and the exit code.
    let events = events_once(&c, "web", 2).await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        ["DebugContainerAdded", "DebugSessionEnded"],
        "{events:#?}"
    );
    let user = "kubernetes-admin";
    for event in &events {
        let message = event["message"].as_str().unwrap_or("");
        assert!(message.contains(user), "{message}");
        assert!(message.contains("reason: INC-42"), "{message}");
        assert_eq!(event["involvedObject"]["kind"], "Pod");
        assert!(
            event["involvedObject"]["fieldPath"]
                .as_str()
                .unwrap_or("")
                .starts_with("spec.ephemeralContainers{dbg-"),
            "{event}"
        );
    }
    let started = events[0]["message"].as_str().unwrap_or("");
    assert!(started.contains("profile auto"), "{started}");
    assert!(started.contains("targeting container app"), "{started}");
    let ended = events[1]["message"].as_str().unwrap_or("");
    assert!(ended.contains("exit code 3"), "{ended}");

    // `history -o json`: the session, its exit code, its Events and its recording.
    let session = &newest_session_once(&c, |s| names_in(s).len() == 2).await;
    let history = c.run(&["history", "-o", "json"], LIMIT).await;
    let listed: Value = serde_json::from_str(&history.stdout).unwrap_or_default();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed:#}"
    );
    assert_eq!(session["exitCode"], 3);
    assert_eq!(session["reason"], "INC-42");
    assert_eq!(session["pod"], "web");
    assert_eq!(session["target"], "app");
    assert_eq!(session["user"], user);
    assert_eq!(session["context"], "sandbox");
    assert!(session["end"].is_string(), "{session}");
    let written: Vec<&str> = events
        .iter()
        .filter_map(|e| e["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names_in(session), written);

    let cast = PathBuf::from(session["recording"].as_str().unwrap_or_default());
    let text = std::fs::read_to_string(&cast).unwrap_or_default();
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap_or("")).unwrap_or_default();
    assert_eq!(header["version"], 2, "{text}");
    assert!(
        header["width"].is_u64() && header["height"].is_u64(),
        "{header}"
    );
    let events: Vec<Value> = lines
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .filter_map(|e| e[2].as_str())
        .collect();
    assert!(output.starts_with("out-line\n"), "{output:?}");
    assert!(
        !output.contains("err-line"),
        "stderr is its own stream: {output:?}"
    );
    assert_eq!(
        events.last().map(|e| e[2].clone()),
        Some("exit code 3".into())
    );
    let stderr = std::fs::read_to_string(session["stderrRecording"].as_str().unwrap_or("-"))
        .unwrap_or_default();
    assert!(
        stderr.contains("[") && stderr.contains("err-line"),
        "{stderr}"
    );
    assert_eq!(session["bytes"]["stderr"], "err-line\n".len());

    // 4. `history show ID --plain`: the output without escape sequences.
    let id = session["id"].as_str().unwrap_or_default();
    let shown = c.run(&["history", "show", id, "--plain"], LIMIT).await;
    assert_eq!(shown.code, Some(0), "{shown:?}");
    assert_eq!(shown.stdout, "out-line\nred plain\n");
    assert!(!shown.stdout.contains('\u{1b}'));
    let raw = c.run(&["history", "show", id], LIMIT).await;
    assert!(raw.stdout.contains("\u{1b}[1;31mred"), "{raw:?}");
    let filtered = c
        .run(&["history", "--pod", "other", "-o", "json"], LIMIT)
        .await;
    assert!(filtered.stdout.contains("\"items\": []"), "{filtered:?}");
}

/// Event POSTs answered `ms` late (reading them is not slowed).
fn slow_event_posts(ms: u64) -> Slow {
    Slow {
        ms,
        path_contains: "/events".into(),
        method: Some("POST".into()),
    }
}

/// The Events on the pod are answered 5 s late: the session ends without waiting for them,
/// and its hand-off writes both, in order, and names them in the sidecar.
#[tokio::test]
async fn a_session_ends_before_its_last_events_are_answered_and_they_land_after() {
    let Some(c) = shop(SandboxOptions::default()).await else {
        return;
    };
    c.sb.set_faults(Faults {
        slow: Some(slow_event_posts(5_000)),
        ..Faults::default()
    });
    let run = c
        .run(&["-n", "shop", "pod/web", "--", "echo", "hi"], LIMIT)
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "hi\n");
    assert!(!run.stderr.contains("no Event"), "{}", run.stderr);

    // Ended, with no Event in yet: none had its answer.
    assert!(events_of(&c, "web").await.is_empty());
    let ended = newest_session_once(&c, |_| true).await;
    assert_eq!(ended["exitCode"], 0, "{ended}");
    assert!(names_in(&ended).is_empty(), "{ended}");

    // Then both, in order, each once, and the sidecar names them.
    let events = events_once(&c, "web", 2).await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(
        reasons,
        ["DebugContainerAdded", "DebugSessionEnded"],
        "{events:#?}"
    );
    let written: Vec<String> = events
        .iter()
        .filter_map(|e| e["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    let session = newest_session_once(&c, |s| names_in(s).len() == 2).await;
    assert_eq!(names_in(&session), written, "{session}");
    assert!(session["notes"].is_null(), "{session}");
}

/// The hand-off cannot write the Events (HTTP 500): the session, long ended, is not told;
/// its sidecar says which Event is missing and why, for `history -o json`.
#[tokio::test]
async fn events_the_hand_off_cannot_write_are_a_note_in_the_sidecar() {
    let Some(c) = shop(SandboxOptions::default()).await else {
        return;
    };
    c.sb.set_faults(Faults {
        slow: Some(slow_event_posts(2_000)),
        error_burst: Some(ErrorBurst {
            code: 500,
            count: 10,
            path_contains: Some("/events".into()),
        }),
        ..Faults::default()
    });
    let run = c.run(&["-n", "shop", "pod/web", "--", "true"], LIMIT).await;
    assert_eq!(run.code, Some(0), "{run:?}");

    let session = newest_session_once(&c, |s| s["notes"].is_array()).await;
    assert_eq!(
        session["notes"],
        serde_json::json!([
            "the DebugContainerAdded Event was not written on pod web after the session ended (HTTP 500)"
        ]),
        "{session}"
    );
    assert!(names_in(&session).is_empty(), "{session}");
    // The table says it too, under it, on stderr.
    let table = c.run(&["history"], LIMIT).await;
    assert_eq!(table.code, Some(0), "{table:?}");
    let id = session["id"].as_str().unwrap_or_default();
    assert!(
        table.stderr.contains(&format!(
            "{id}: the DebugContainerAdded Event was not written on pod web"
        )),
        "{table:?}"
    );
    c.sb.set_faults(Faults::default());
    assert!(events_of(&c, "web").await.is_empty());
}

#[tokio::test]
async fn without_permission_for_events_a_session_succeeds_with_one_note() {
    let Some(c) = shop(SandboxOptions {
        rbac: Some(NO_EVENTS.into()),
        ..SandboxOptions::default()
    })
    .await
    else {
        return;
    };
    let dave = c.sb.dir().join("dave.kubeconfig");
    c.sb.write_kubeconfig_for("dave-token", "dave", &dave)
        .expect("dave's kubeconfig");
    let as_dave = |args: &[&str]| {
        let mut command = c.plugin_with_kubeconfig(&dave, args);
        command.env("XDG_STATE_HOME", c.state_home());
        command
    };

    // --no-record leaves no file.
    let run = support::run_command(
        as_dave(&["-n", "shop", "pod/web", "--no-record", "--", "true"]),
        LIMIT,
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let notes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("no Event written"))
        .collect();
    assert_eq!(notes.len(), 1, "one note: {}", run.stderr);
    assert!(
        notes[0].contains("no permission to create events in namespace shop"),
        "{}",
        notes[0]
    );
    assert!(
        std::fs::read_dir(sessions_dir(&c)).map_or(0, Iterator::count) == 0,
        "--no-record wrote nothing"
    );
    assert!(events_of(&c, "web").await.is_empty());

    // Recorded: a 0700 directory, 0600 files.
    let run = support::run_command(
        as_dave(&["-n", "shop", "pod/web", "--", "echo", "hi"]),
        LIMIT,
    )
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let dir = sessions_dir(&c);
    assert_eq!(mode(&dir), 0o700);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(files.len(), 3, "cast, stderr cast, sidecar: {files:?}");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_runbook_writes_one_event_per_pod_and_names_it_in_the_results() {
    let Some(c) = shop(SandboxOptions::default()).await else {
        return;
    };
    c.running_app("shop", "api", NONROOT_APP, Some((65532, 65532)))
        .await;
    let runbook = c.sb.dir().join("check.yaml");
    std::fs::write(
        &runbook,
        "name: check\nsteps:\n  - name: hello\n    run: echo hello\n",
    )
    .expect("the runbook");
    let runbook = runbook.display().to_string();
    let run = c
        .run(
            &[
                "run", &runbook, "pod/web", "pod/api", "-n", "shop", "--reason", "INC-7", "-o",
                "json",
            ],
            LIMIT,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    let pods = doc["pods"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 2, "{doc:#}");
    for pod in &pods {
        let name = pod["pod"].as_str().unwrap_or_default();
        let events = events_of(&c, name).await;
        assert_eq!(events.len(), 1, "one Event per pod: {events:#?}");
        assert_eq!(events[0]["reason"], "DebugRunbookRan");
        let message = events[0]["message"].as_str().unwrap_or("");
        assert!(message.contains("ran runbook check (1 step)"), "{message}");
        assert!(message.contains(": ok, after"), "{message}");
        assert!(message.contains("reason: INC-7"), "{message}");
        assert_eq!(
            pod["events"],
            serde_json::json!([events[0]["metadata"]["name"]])
        );
    }
    assert!(
        !sessions_dir(&c).exists(),
        "a fan-out keeps its outputs in --out-dir, not in recordings"
    );
}

/// `--parallel 1` bounds the pods being debugged, not their Events: with Event POSTs answered
/// 1.5 s late, the second pod's debug container is added while the first pod's Event is still
/// on its way. Twice `--parallel` pods are in hand, so the third waits for that answer. Every
/// Event is named in the results.
#[tokio::test]
async fn a_runbook_starts_the_next_pod_while_the_last_ones_event_is_written() {
    let Some(c) = shop(SandboxOptions::default()).await else {
        return;
    };
    for pod in ["api", "db"] {
        c.running_app("shop", pod, NONROOT_APP, Some((65532, 65532)))
            .await;
    }
    let runbook = c.sb.dir().join("one.yaml");
    std::fs::write(
        &runbook,
        "name: one\nsteps:\n  - name: hi\n    run: echo hi\n",
    )
    .expect("the runbook");
    let runbook = runbook.display().to_string();
    c.sb.set_faults(Faults {
        slow: Some(slow_event_posts(1_500)),
        ..Faults::default()
    });
    c.sb.clear_requests();
    let run = c
        .run(
            &[
                "run",
                &runbook,
                "pod/web",
                "pod/api",
                "pod/db",
                "-n",
                "shop",
                "--parallel",
                "1",
                "-o",
                "json",
            ],
            LIMIT,
        )
        .await;
    c.sb.set_faults(Faults::default());
    assert_eq!(run.code, Some(0), "{run:?}");

    let requests = c.sb.requests();
    let posts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/events"))
        .collect();
    assert_eq!(posts.len(), 3, "an Event per pod");
    // The log is in the order answers were ready: the first is the first pod's.
    let answered = posts[0].received + posts[0].duration;
    let mut patches: Vec<Instant> = requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/ephemeralcontainers"))
        .map(|r| r.received)
        .collect();
    patches.sort();
    assert_eq!(patches.len(), 3, "a debug container per pod");
    assert!(
        patches[1] < answered,
        "the second pod's container was added {:?} after the first Event's answer",
        patches[1].duration_since(answered)
    );
    assert!(
        patches[2] > answered,
        "the third pod started {:?} before the first Event's answer: more than twice \
         --parallel pods in hand",
        answered.duration_since(patches[2])
    );
    let doc: Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    for pod in doc["pods"].as_array().cloned().unwrap_or_default() {
        let name = pod["pod"].as_str().unwrap_or_default();
        let events = events_of(&c, name).await;
        assert_eq!(events.len(), 1, "{name}: {events:#?}");
        assert_eq!(
            pod["events"],
            serde_json::json!([events[0]["metadata"]["name"]])
        );
    }
}
