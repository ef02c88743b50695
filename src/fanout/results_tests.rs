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
        context: Some("kind-a".into()),
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
        events: Vec::new(),
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
    assert_eq!(exit_status(&pods, &[], None), ExitStatus::Success);
    let summary = Summary::of(&pods, &[]);
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
    assert_eq!(exit_status(std::slice::from_ref(&ok), &[], None).code(), 0);
    assert_eq!(
        exit_status(&[ok.clone(), failed.clone()], &[], None).code(),
        4
    );
    assert_eq!(exit_status(&[timed_out], &[], None).code(), 4);
    assert_eq!(
        exit_status(&[failed.clone(), not_debugged("c")], &[], None).code(),
        5
    );
    assert_eq!(
        exit_status(&[failed, not_debugged("c")], &[], Some(libc::SIGINT)).code(),
        130
    );
    assert_eq!(exit_status(&[], &[], None).code(), 0);
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
    assert_eq!(Summary::of(&[p], &[]).steps_skipped, 1);
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
        vec![reached("kind-a", 3)],
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
        "context",
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
        "events",
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
               "steps": 1, "stepsOk": 0, "stepsFailed": 0, "stepsAllowedToFail": 1, "stepsSkipped": 0,
               "contexts": 1, "contextsFailed": 0})
    );
    assert_eq!(
        json["contexts"],
        json!([{"context": "kind-a", "namespace": "ns", "status": "ok", "error": null, "pods": 3}])
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
    assert_eq!(v["context"], "kind-a");
    assert_eq!(v["debugContainer"], "dbg-abcde");
    assert_eq!(v["step"], "x");
    assert_eq!(v["exitCode"], 0);

    let v: Value = serde_json::from_str(&pod_line(&p)).unwrap_or_default();
    assert_eq!(v["kind"], "PodResult");
    assert_eq!(v["context"], "kind-a");
    assert_eq!(v["status"], "ok");
    assert!(v.get("steps").is_none());

    let result = RunResult::new(
        "rb",
        jiff::Timestamp::UNIX_EPOCH,
        1,
        Some(libc::SIGINT),
        vec![p],
        vec![reached("kind-a", 1)],
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
fn the_text_block_shows_each_step_and_its_output() {
    let mut three = step("three", StepStatus::Failed, Some(3), true);
    three.set_output(b"a\nb\n", b"oops\n", None);
    let web = pod(
        "web-1",
        vec![step("ok", StepStatus::Ok, Some(0), false), three],
    );
    assert_eq!(
        text_block(&web, false),
        "== ns/web-1 (container app, debug container dbg-abcde)\n\
         -- ok: ok, 0ms\n\
         -- three: exit 3 (allowed to fail), 0ms\n   a\n   b\n   stderr| oops\n"
    );
    // With several contexts the header says which cluster.
    assert!(
        text_block(&web, true)
            .starts_with("== [kind-a] ns/web-1 (container app, debug container dbg-abcde)\n")
    );
    let text = text_block(&not_debugged("c"), false);
    assert!(text.contains("could not be debugged: pod web-1 is Pending"));
    let text = context_block(&unreached("kind-b"));
    assert_eq!(
        text,
        "== [kind-b]\n   could not be debugged: could not list pods: connection refused\n"
    );
}

fn unreached(context: &str) -> ContextResult {
    ContextResult {
        context: Some(context.into()),
        namespace: Some("ns".into()),
        status: ContextStatus::Error,
        error: Some("could not list pods: connection refused".into()),
        pods: 0,
    }
}

fn reached(context: &str, pods: usize) -> ContextResult {
    ContextResult {
        context: Some(context.into()),
        namespace: Some("ns".into()),
        status: ContextStatus::Ok,
        error: None,
        pods,
    }
}

#[test]
fn the_same_pod_name_in_two_contexts_is_two_pods_and_a_failed_context_exits_5() {
    let in_b = PodResult {
        context: Some("kind-b".into()),
        ..pod("web", vec![])
    };
    let in_a = pod("web", vec![]);
    let contexts = vec![reached("kind-a", 1), reached("kind-b", 1)];
    let result = RunResult::new(
        "rb",
        jiff::Timestamp::UNIX_EPOCH,
        1,
        None,
        vec![in_b.clone(), in_a.clone()],
        contexts,
    );
    let json = serde_json::to_value(&result).unwrap_or_default();
    let order: Vec<(&str, &str)> = json["pods"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| Some((p["context"].as_str()?, p["pod"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(order, [("kind-a", "web"), ("kind-b", "web")]);
    assert_eq!(json["exitCode"], 0);
    assert_eq!(
        (
            json["summary"]["contexts"].as_u64(),
            json["summary"]["contextsFailed"].as_u64()
        ),
        (Some(2), Some(0))
    );

    // A context whose pods could not be chosen: the others' results stand, the run exits 5.
    let result = RunResult::new(
        "rb",
        jiff::Timestamp::UNIX_EPOCH,
        1,
        None,
        vec![in_a],
        vec![reached("kind-a", 1), unreached("kind-b")],
    );
    assert_eq!(result.exit_code, 5);
    assert_eq!(result.summary.contexts_failed, 1);
    let json = serde_json::to_value(&result).unwrap_or_default();
    assert_eq!(
        json["contexts"][1],
        json!({"context": "kind-b", "namespace": "ns", "status": "error",
               "error": "could not list pods: connection refused", "pods": 0})
    );
    let v: Value = serde_json::from_str(&context_line(&unreached("kind-b"))).unwrap_or_default();
    assert_eq!(
        (
            v["kind"].as_str(),
            v["context"].as_str(),
            v["status"].as_str()
        ),
        (Some("ContextResult"), Some("kind-b"), Some("error"))
    );
    let v: Value = serde_json::from_str(&summary_line(&result)).unwrap_or_default();
    assert_eq!(v["contexts"][1]["status"], "error");
}

#[test]
fn pod_status_names_are_the_json_ones() {
    for status in [
        PodStatus::Ok,
        PodStatus::Failed,
        PodStatus::Error,
        PodStatus::Interrupted,
    ] {
        assert_eq!(
            serde_json::to_value(status).ok(),
            Some(json!(status.name()))
        );
    }
}
