use serde_json::{Value, json};

use super::*;

fn step(name: &str, status: StepStatus, exit_code: Option<i32>, allow_failure: bool) -> StepResult {
    let mut s = StepResult::without_output(name, status, allow_failure, String::new());
    s.reason = None;
    s.exit_code = exit_code;
    s
}

fn pod(name: &str, steps: Vec<StepResult>) -> PodResult {
    PodResult {
        namespace: "ns".into(),
        pod: name.into(),
        container: Some("app".into()),
        debug_container: Some("dbg-abcde".into()),
        image: "img".into(),
        reused: false,
        status: PodResult::status_from_steps(&steps),
        error: None,
        runtime: None,
        teardown: Some("stopped".into()),
        duration_ms: 10,
        steps,
    }
}

fn not_debugged(name: &str) -> PodResult {
    PodResult {
        status: PodStatus::Error,
        error: Some("pod web-1 is Pending, not Running".into()),
        debug_container: None,
        teardown: None,
        ..pod(name, vec![])
    }
}

#[test]
fn an_allowed_failure_keeps_the_run_green() {
    let pods = vec![pod(
        "a",
        vec![
            step("ok", StepStatus::Ok, Some(0), false),
            step("three", StepStatus::Failed, Some(3), true),
        ],
    )];
    assert_eq!(pods[0].status, PodStatus::Ok);
    assert_eq!(exit_status(&pods, None), ExitStatus::Success);
    let summary = Summary::of(&pods);
    assert_eq!(
        (
            summary.steps_ok,
            summary.steps_allowed_to_fail,
            summary.steps_failed
        ),
        (1, 1, 0)
    );
}

#[test]
fn exit_codes_rank_interrupted_then_not_debugged_then_failed_steps() {
    let failed = pod("a", vec![step("x", StepStatus::Failed, Some(3), false)]);
    let timed_out = pod("t", vec![step("x", StepStatus::TimedOut, None, false)]);
    let ok = pod("b", vec![step("x", StepStatus::Ok, Some(0), false)]);
    assert_eq!(failed.status, PodStatus::Failed);
    assert_eq!(timed_out.status, PodStatus::Failed);
    assert_eq!(exit_status(std::slice::from_ref(&ok), None).code(), 0);
    assert_eq!(exit_status(&[ok.clone(), failed.clone()], None).code(), 4);
    assert_eq!(exit_status(&[timed_out], None).code(), 4);
    assert_eq!(
        exit_status(&[failed.clone(), not_debugged("c")], None).code(),
        5
    );
    assert_eq!(
        exit_status(&[failed, not_debugged("c")], Some(libc::SIGINT)).code(),
        130
    );
    assert_eq!(exit_status(&[], None).code(), 0);
}

#[test]
fn skipped_steps_do_not_fail_a_pod() {
    let p = pod(
        "a",
        vec![
            step("ok", StepStatus::Ok, Some(0), false),
            step("jvm", StepStatus::Skipped, None, false),
        ],
    );
    assert_eq!(p.status, PodStatus::Ok);
    assert_eq!(Summary::of(&[p]).steps_skipped, 1);
}

#[test]
fn the_document_has_every_field_always() {
    let mut three = step("three", StepStatus::Failed, Some(3), true);
    three.set_output(
        b"out\n",
        b"err\n",
        Some(("ns/a/three.out", "ns/a/three.err")),
    );
    three.files = vec!["ns/a/three.out".into(), "ns/a/three.err".into()];
    let result = RunResult::new(
        "rb",
        jiff::Timestamp::UNIX_EPOCH,
        1234,
        None,
        vec![pod("b", vec![]), pod("a", vec![three]), not_debugged("c")],
    );
    let json = serde_json::to_value(&result).unwrap_or_default();
    assert_eq!(json["apiVersion"], "distroless-debug/v1");
    assert_eq!(json["kind"], "RunbookResult");
    assert_eq!(json["exitCode"], 5);
    assert_eq!(json["startedAt"], "1970-01-01T00:00:00Z");
    // Sorted by namespace and pod, whatever order they finished in.
    let names: Vec<&str> = json["pods"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["pod"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["a", "b", "c"]);
    // serde_json::Value keeps keys sorted; the printed document keeps the struct's order.
    let mut pod_keys: Vec<&str> = json["pods"][0]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    pod_keys.sort_unstable();
    let mut expected = [
        "namespace",
        "pod",
        "container",
        "debugContainer",
        "image",
        "reused",
        "status",
        "error",
        "runtime",
        "teardown",
        "durationMs",
        "steps",
    ];
    expected.sort_unstable();
    assert_eq!(pod_keys, expected);
    let s = &json["pods"][0]["steps"][0];
    assert_eq!(
        s,
        &json!({
            "step": "three", "status": "failed", "exitCode": 3, "allowFailure": true,
            "durationMs": 0, "reason": null, "stdout": "out\n", "stderr": "err\n",
            "stdoutBytes": 4, "stderrBytes": 4, "stdoutTruncated": false, "stderrTruncated": false,
            "files": ["ns/a/three.out", "ns/a/three.err"], "collectedFrom": null, "collected": []
        })
    );
    assert_eq!(json["pods"][2]["status"], "error");
    assert_eq!(json["pods"][2]["debugContainer"], Value::Null);
    assert_eq!(
        json["summary"],
        json!({"pods": 3, "podsOk": 2, "podsFailed": 0, "podsNotDebugged": 1, "podsInterrupted": 0,
               "steps": 1, "stepsOk": 0, "stepsFailed": 0, "stepsAllowedToFail": 1, "stepsSkipped": 0})
    );
}

#[test]
fn jsonl_lines_are_one_object_each_with_their_kind() {
    let p = pod("a", vec![step("x", StepStatus::Ok, Some(0), false)]);
    let line = step_line(&p, &p.steps[0]);
    assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
    let v: Value = serde_json::from_str(&line).unwrap_or_default();
    assert_eq!(v["kind"], "StepResult");
    assert_eq!(v["pod"], "a");
    assert_eq!(v["debugContainer"], "dbg-abcde");
    assert_eq!(v["step"], "x");
    assert_eq!(v["exitCode"], 0);

    let v: Value = serde_json::from_str(&pod_line(&p)).unwrap_or_default();
    assert_eq!(v["kind"], "PodResult");
    assert_eq!(v["status"], "ok");
    assert!(v.get("steps").is_none());

    let result = RunResult::new(
        "rb",
        jiff::Timestamp::UNIX_EPOCH,
        1,
        Some(libc::SIGINT),
        vec![p],
    );
    let v: Value = serde_json::from_str(&summary_line(&result)).unwrap_or_default();
    assert_eq!(v["kind"], "RunSummary");
    assert_eq!(v["exitCode"], 130);
    assert_eq!(v["interrupted"], true);
}

#[test]
fn long_output_is_cut_with_a_note_and_the_full_text_stays_in_the_file() {
    let big = vec![b'x'; OUTPUT_LIMIT + 10];
    let mut s = step("big", StepStatus::Ok, Some(0), false);
    s.set_output(&big, b"", Some(("ns/a/big.out", "ns/a/big.err")));
    assert!(s.stdout_truncated);
    assert!(!s.stderr_truncated);
    assert_eq!(s.stdout_bytes, (OUTPUT_LIMIT + 10) as u64);
    assert!(s.stdout.starts_with(&"x".repeat(OUTPUT_LIMIT)));
    assert!(s.stdout.ends_with(&format!(
        "[truncated: 10 more bytes ({} in all); the full output is in ns/a/big.out under --out-dir]",
        OUTPUT_LIMIT + 10
    )));

    let (text, cut) = excerpt(&big, OUTPUT_LIMIT, None);
    assert!(cut && text.contains("--out-dir DIR keeps the full output"));
}

#[test]
fn a_cut_never_splits_a_character() {
    let text = "é".repeat(10); // two bytes each
    let (shown, cut) = excerpt(text.as_bytes(), 5, None);
    assert!(cut);
    assert!(shown.starts_with("éé\n[truncated"), "{shown}");
}

#[test]
fn out_dir_paths_cannot_escape() {
    assert_eq!(OutDir::pod_dir("ns", "web-1"), Path::new("ns/web-1"));
    assert_eq!(OutDir::pod_dir("..", "a/b"), Path::new("_../a_b"));
    assert_eq!(component(""), "_");
}

#[test]
fn out_dir_holds_step_files_and_the_summary() {
    let dir = std::env::temp_dir().join(format!("dd-results-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = OutDir::create(&dir).unwrap_or_else(|e| panic!("{e}"));
    let (o, e) = out
        .write_step("ns", "web-1", "sockets", Some(b"LISTEN 0.0.0.0:80\n"), b"")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (o.as_deref(), e.as_str()),
        (Some("ns/web-1/sockets.out"), "ns/web-1/sockets.err")
    );
    assert_eq!(
        std::fs::read(dir.join("ns/web-1/sockets.out")).unwrap_or_default(),
        b"LISTEN 0.0.0.0:80\n"
    );
    let (relative, absolute) = out
        .collect_dir("ns", "web-1", "config")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(relative, Path::new("ns/web-1/config"));
    assert!(absolute.is_dir());
    let result = RunResult::new("rb", jiff::Timestamp::UNIX_EPOCH, 1, None, vec![]);
    let path = out.write_summary(&result).unwrap_or_else(|e| panic!("{e}"));
    let v: Value =
        serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default();
    assert_eq!(v["kind"], "RunbookResult");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_text_block_shows_each_step_and_its_output() {
    let mut three = step("three", StepStatus::Failed, Some(3), true);
    three.set_output(b"a\nb\n", b"oops\n", None);
    let text = text_block(&pod(
        "web-1",
        vec![step("ok", StepStatus::Ok, Some(0), false), three],
    ));
    assert_eq!(
        text,
        "== ns/web-1 (container app, debug container dbg-abcde)\n\
         -- ok: ok, 0ms\n\
         -- three: exit 3 (allowed to fail), 0ms\n   a\n   b\n   stderr| oops\n"
    );
    let text = text_block(&not_debugged("c"));
    assert!(text.contains("could not be debugged: pod web-1 is Pending"));
}
