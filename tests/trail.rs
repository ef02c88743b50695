//! The incident trail against the sandbox: the Events a session writes on the pod (read back
//! with the real kubectl), its local recording and sidecar as `history` lists them, a user
//! who may not create events, `--no-record`, and the files' modes.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_sandbox::SandboxOptions;
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
    let events = events_of(&c, "web").await;
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
    let history = c.run(&["history", "-o", "json"], LIMIT).await;
    assert_eq!(history.code, Some(0), "{history:?}");
    let listed: Value = serde_json::from_str(&history.stdout).unwrap_or_default();
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{listed:#}");
    let session = &items[0];
    assert_eq!(session["exitCode"], 3);
    assert_eq!(session["reason"], "INC-42");
    assert_eq!(session["pod"], "web");
    assert_eq!(session["target"], "app");
    assert_eq!(session["user"], user);
    assert_eq!(session["context"], "sandbox");
    assert!(session["end"].is_string(), "{session}");
    let names: Vec<&str> = session["events"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let written: Vec<&str> = events
        .iter()
        .filter_map(|e| e["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, written);

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
