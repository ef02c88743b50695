use super::*;

fn ok(text: &str) -> Runbook {
    parse(text, "rb.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// The problems of an invalid runbook as (line, column, message).
fn problems(text: &str) -> Vec<(u64, u64, String)> {
    match parse(text, "rb.yaml") {
        Ok(runbook) => panic!("accepted: {runbook:?}"),
        Err(e) => e
            .problems
            .into_iter()
            .map(|p| (p.line, p.column, p.message))
            .collect(),
    }
}

fn one_problem(text: &str) -> (u64, u64, String) {
    let mut found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

const ISSUE_EXAMPLE: &str = r#"name: api-latency
toolkit: full            # or image:, profile:
timeout: 2m              # per pod
steps:
  - name: sockets
    run: ss -tanp
  - name: open-files
    run: ["sh", "-c", "ls /proc/1/fd | wc -l"]        # argv or shell string
    timeout: 20s
    allow_failure: true
  - name: config
    collect: /etc/app/current/config.yaml             # file or dir from the target view
  - name: dump
    run: jcmd 1 Thread.print
    when: runtime == "jvm"                            # optional, on agent info
"#;

#[test]
fn reads_the_example_of_the_issue() {
    let rb = ok(ISSUE_EXAMPLE);
    assert_eq!(rb.name, "api-latency");
    assert_eq!(rb.image, Some(ImageSetting::Toolkit(Toolkit::Full)));
    assert_eq!(rb.timeout, Some(Duration::from_secs(120)));
    assert_eq!(rb.steps.len(), 4);
    assert_eq!(
        rb.steps[0].action,
        Action::Run(vec!["sh".into(), "-c".into(), "ss -tanp".into()])
    );
    assert_eq!(
        rb.steps[1].action,
        Action::Run(vec![
            "sh".into(),
            "-c".into(),
            "ls /proc/1/fd | wc -l".into()
        ])
    );
    assert_eq!(rb.steps[1].timeout, Some(Duration::from_secs(20)));
    assert!(rb.steps[1].allow_failure);
    assert!(!rb.steps[0].allow_failure);
    assert_eq!(
        rb.steps[2].action,
        Action::Collect("/etc/app/current/config.yaml".into())
    );
    assert_eq!(
        rb.steps[3]
            .when
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("runtime == \"jvm\"")
    );
    assert_eq!(rb.collects().map(|s| s.name.as_str()), Some("config"));
}

#[test]
fn the_smallest_runbook_leaves_image_profile_and_timeout_to_the_flags() {
    let rb = ok("name: x\nsteps:\n  - name: a\n    run: [true]\n");
    assert_eq!(rb.image, None);
    assert_eq!(rb.profile, None);
    assert_eq!(rb.timeout, None);
    assert_eq!(rb.steps[0].action, Action::Run(vec!["true".into()]));
    assert!(rb.needs_agent().is_none());
}

#[test]
fn toolkit_auto_is_read_as_the_auto_setting() {
    let rb = ok("name: x\ntoolkit: auto\nsteps:\n  - name: a\n    run: id\n");
    assert_eq!(rb.image, Some(ImageSetting::Auto));
}

#[test]
fn image_and_profile_are_read() {
    let rb =
        ok("name: x\nimage: busybox:1.36\nprofile: ptrace\nsteps:\n  - name: a\n    run: id\n");
    assert_eq!(rb.image, Some(ImageSetting::Image("busybox:1.36".into())));
    assert_eq!(rb.profile, Some(Profile::Ptrace));
}

#[test]
fn an_unknown_key_is_named_with_its_line_and_column() {
    let (line, column, message) =
        one_problem("name: x\nsteps:\n  - name: a\n    run: ls\n    retries: 3\n");
    assert_eq!((line, column), (5, 5));
    assert!(message.contains("unknown field `retries`"), "{message}");
    assert!(
        message.contains("allow_failure"),
        "lists the known keys: {message}"
    );

    let (line, column, message) = one_problem("name: x\nsetps: []\n");
    assert_eq!((line, column), (2, 1));
    assert!(message.contains("unknown field `setps`"), "{message}");
}

#[test]
fn a_bad_duration_points_at_the_value() {
    let (line, column, message) =
        one_problem("name: x\nsteps:\n  - name: a\n    run: ls\n    timeout: 10\n");
    assert_eq!((line, column), (5, 14));
    assert!(message.contains("needs a unit"), "{message}");

    let (line, column, message) =
        one_problem("name: x\ntimeout: 2 minutes\nsteps:\n  - name: a\n    run: ls\n");
    assert_eq!((line, column), (2, 10));
    assert!(message.starts_with("`timeout`:"), "{message}");

    let (_, _, message) = one_problem("name: x\ntimeout: 0\nsteps:\n  - name: a\n    run: ls\n");
    assert!(message.contains("more than 0"), "{message}");
}

#[test]
fn empty_steps_are_refused_where_they_are() {
    let (line, column, message) = one_problem("name: x\nsteps: []\n");
    assert_eq!((line, column), (2, 8));
    assert!(message.contains("at least one step"), "{message}");
}

#[test]
fn a_step_with_both_run_and_collect_is_refused() {
    let (line, column, message) = one_problem(
        "name: x\nsteps:\n  - name: both\n    run: cat /target/etc/hosts\n    collect: /etc/hosts\n",
    );
    assert_eq!((line, column), (5, 14));
    assert!(message.contains("both `run` and `collect`"), "{message}");
}

#[test]
fn a_step_with_neither_is_refused_at_the_step() {
    let (line, column, message) = one_problem("name: x\nsteps:\n  - name: idle\n    timeout: 1s\n");
    assert_eq!((line, column), (3, 5));
    assert!(message.contains("needs `run`"), "{message}");
}

#[test]
fn missing_fields_and_wrong_types_are_located() {
    let (line, column, message) = one_problem("steps:\n  - name: a\n    run: ls\n");
    assert_eq!((line, column), (1, 1));
    assert!(message.contains("missing field `name`"), "{message}");

    let (line, _, message) = one_problem("name: x\nsteps:\n  - run: ls\n");
    assert_eq!(line, 3);
    assert!(message.contains("missing field `name`"), "{message}");

    let (line, column, message) = one_problem("name: x\nsteps:\n  - name: a\n    run: {cmd: ls}\n");
    assert_eq!((line, column), (4, 10));
    assert!(
        message.contains("a string") || message.contains("list"),
        "{message}"
    );

    let (line, column, message) =
        one_problem("name: x\nsteps:\n  - name: a\n    run: ls\n    allow_failure: maybe\n");
    assert_eq!((line, column), (5, 20));
    assert!(message.contains("boolean"), "{message}");

    let (line, _, message) = one_problem("name: x\nsteps: ls\n");
    assert_eq!(line, 2);
    assert!(message.contains("sequence"), "{message}");
}

#[test]
fn not_a_mapping_or_empty_is_an_error_at_the_start() {
    let (line, column, _) = one_problem("");
    assert_eq!((line, column), (1, 1));
    let (line, column, _) = one_problem("- name: a\n");
    assert_eq!((line, column), (1, 1));
}

#[test]
fn yaml_syntax_errors_are_located() {
    let (line, _, message) = one_problem("name: x\nsteps:\n  - name: a\n    run: \"ls\n");
    assert!(line >= 4, "{line} {message}");
}

#[test]
fn choices_are_checked_and_listed() {
    let (line, column, message) =
        one_problem("name: x\ntoolkit: java\nsteps:\n  - name: a\n    run: ls\n");
    assert_eq!((line, column), (2, 10));
    assert!(
        message.contains("base, net, full, jvm, python, go, node"),
        "{message}"
    );

    let (_, _, message) = one_problem("name: x\nprofile: root\nsteps:\n  - name: a\n    run: ls\n");
    assert!(
        message.contains("auto, restricted, baseline, ptrace, netadmin, sysadmin"),
        "{message}"
    );

    let (line, _, message) =
        one_problem("name: x\ntoolkit: net\nimage: busybox\nsteps:\n  - name: a\n    run: ls\n");
    assert_eq!(line, 3);
    assert!(message.contains("exclude each other"), "{message}");
}

#[test]
fn step_names_are_unique_and_usable_as_file_names() {
    let (line, column, message) =
        one_problem("name: x\nsteps:\n  - name: a\n    run: ls\n  - name: a\n    run: id\n");
    assert_eq!((line, column), (5, 11));
    assert!(message.contains("unique"), "{message}");

    for bad in ["../etc", "a/b", ".hidden", "", "with space"] {
        let text = format!("name: x\nsteps:\n  - name: {bad:?}\n    run: ls\n");
        let (_, _, message) = one_problem(&text);
        assert!(message.contains("step name"), "{bad}: {message}");
    }
}

#[test]
fn empty_commands_and_relative_collect_paths_are_refused() {
    let (_, _, message) = one_problem("name: x\nsteps:\n  - name: a\n    run: \"  \"\n");
    assert!(message.contains("empty command"), "{message}");
    let (_, _, message) = one_problem("name: x\nsteps:\n  - name: a\n    run: []\n");
    assert!(message.contains("empty list"), "{message}");
    let (_, _, message) = one_problem("name: x\nsteps:\n  - name: a\n    collect: etc/hosts\n");
    assert!(message.contains("absolute path"), "{message}");
    let (_, _, message) = one_problem("name: x\nsteps:\n  - name: a\n    collect: /etc/../root\n");
    assert!(message.contains("`..`"), "{message}");
    let rb = ok("name: x\nsteps:\n  - name: a\n    collect: /etc/app/\n");
    assert_eq!(rb.steps[0].action, Action::Collect("/etc/app".into()));
}

#[test]
fn a_bad_condition_is_an_error_at_its_value() {
    let (line, column, message) =
        one_problem("name: x\nsteps:\n  - name: a\n    run: ls\n    when: runtime == \"java\"\n");
    assert_eq!((line, column), (5, 11));
    assert!(message.starts_with("`when`:"), "{message}");
    assert!(message.contains("\"jvm\""), "{message}");
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let found = problems(
        "name: x\ntimeout: soon\nsteps:\n  - name: a\n    run: ls\n    collect: /x\n  - name: b\n    run: ls\n    timeout: 5\n",
    );
    let lines: Vec<u64> = found.iter().map(|p| p.0).collect();
    assert_eq!(lines, vec![2, 6, 9], "{found:?}");
}

#[test]
fn the_message_shows_file_line_column_and_the_line_itself() {
    let error = parse(
        "name: x\nsteps:\n  - name: a\n    run: ls\n    bogus: 1\n",
        "rb.yaml",
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(error.contains("nothing was sent to the cluster"), "{error}");
    assert!(
        error.contains("rb.yaml:5:5: unknown field `bogus`"),
        "{error}"
    );
    assert!(error.contains("5 |     bogus: 1\n      |     ^"), "{error}");
}

/// What `text` says of a profile and a Pod Security level, backquotes dropped: the profiles it
/// names ("the ptrace profile", "profile `ptrace`") and the levels ("Pod Security level
/// privileged", "Pod Security `privileged`").
fn profile_claims(text: &str) -> (Vec<Profile>, Vec<String>) {
    let text = text.replace('`', "");
    let profiles = Profile::ALL
        .into_iter()
        .filter(|p| {
            text.contains(&format!("{p} profile")) || text.contains(&format!("profile {p}"))
        })
        .collect();
    let levels = text
        .split("Pod Security ")
        .skip(1)
        .filter_map(|after| {
            let after = after.strip_prefix("level ").unwrap_or(after);
            after
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .map(str::to_string)
        })
        .collect();
    (profiles, levels)
}

#[test]
fn every_builtin_is_valid_and_documented() {
    use crate::session::identity::Identity;
    use crate::session::profile::{PsaLevel, level_needed, security_context_for};

    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks.md"),
    )
    .unwrap_or_default();
    for (name, text) in BUILTINS {
        let rb = match builtin(name) {
            Some(Ok(rb)) => rb,
            other => panic!("builtin {name}: {other:?}"),
        };
        assert_eq!(rb.name, name);
        assert!(
            rb.collects().is_none(),
            "builtin {name} must run without --out-dir"
        );
        // Each names one of our toolkits, which carry the agent its `when` steps need.
        let toolkit = match rb.image {
            Some(ImageSetting::Toolkit(toolkit)) => toolkit,
            other => panic!("builtin {name} names a toolkit, not {other:?}"),
        };
        // The level the profile module computes for the profile on a non-root target (the
        // distroless `nonroot` user): what the namespace must allow.
        let profile = rb.profile.unwrap_or(Profile::Auto);
        let level = level_needed(
            &security_context_for(profile, &Identity::known(65532, 65532)),
            None,
        );

        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| `--builtin {name}` |")))
            .unwrap_or_else(|| panic!("docs/runbooks.md has no row for --builtin {name}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(
            cells.get(2).copied(),
            Some(toolkit.name()),
            "docs/runbooks.md: the toolkit of {name}"
        );
        let header = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim())
            .collect::<Vec<_>>()
            .join(" ");
        for (place, said) in [
            ("its row in docs/runbooks.md", row),
            ("its header comment", header.as_str()),
        ] {
            let (profiles, levels) = profile_claims(said);
            assert!(
                profiles.iter().all(|p| *p == profile),
                "builtin {name}: {place} names the profiles {profiles:?}, the runbook uses {profile}"
            );
            assert!(
                profile == Profile::Auto || profiles.contains(&profile),
                "builtin {name}: {place} must name its profile {profile}"
            );
            assert!(
                levels.iter().all(|l| *l == level.to_string()),
                "builtin {name}: {place} says Pod Security {levels:?}, the {profile} profile needs {level}"
            );
            assert!(
                level == PsaLevel::Restricted || !levels.is_empty(),
                "builtin {name}: {place} must say the {profile} profile needs Pod Security {level}"
            );
        }
    }
    assert!(builtin("nope").is_none());
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    for text in [
        "\0",
        "name: [",
        "name: x\nsteps: *a\n",
        "&a [*a]",
        "name: x\nsteps:\n  - !!binary aGVsbG8=\n",
        "name: \"\\uD800\"\nsteps: []\n",
        &"[".repeat(10_000),
        "name: x\nsteps:\n  - name: a\n    run: ls\n    when: \"\u{202e}runtime\"\n",
    ] {
        assert!(parse(text, "rb.yaml").is_err(), "{text:?}");
    }
}
