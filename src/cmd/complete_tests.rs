use super::*;

fn line(words: &[&str]) -> Line {
    read_line(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
}

fn fixed(words: &[&str]) -> Vec<String> {
    match line(words).question {
        Question::Fixed(values) => values,
        other => panic!("{words:?}: {other:?}"),
    }
}

fn target(text: &str) -> Option<TargetRef> {
    text.parse().ok()
}

#[test]
fn the_first_word_is_a_subcommand_or_a_pod() {
    let Question::Targets {
        subcommands,
        suffix,
    } = line(&[""]).question
    else {
        panic!("{:?}", line(&[""]));
    };
    for name in [
        "ls",
        "cleanup",
        "cp",
        "snapshot",
        "run",
        "images",
        "info",
        "completion",
    ] {
        assert!(
            subcommands.contains(&name.to_string()),
            "{name}: {subcommands:?}"
        );
    }
    assert!(!subcommands.iter().any(|s| s == VERB || s == "help"));
    assert_eq!(suffix, "");
    // `--dry-run` takes no separate value: the next word is still the target.
    assert!(matches!(
        line(&["--dry-run", ""]).question,
        Question::Targets { .. }
    ));
    assert_eq!(
        fixed(&["--dry-run="]),
        ["client", "server"],
        "{:?}",
        line(&["--dry-run="])
    );
    // After the target comes `--` and the remote command: nothing of ours.
    assert_eq!(line(&["pod/web", ""]).question, Question::Nothing);
    assert_eq!(line(&["pod/web", "--", "l"]).question, Question::Nothing);
}

#[test]
fn container_names_come_from_the_target_typed_before_or_after() {
    assert_eq!(
        line(&["pod/web", "-c", ""]).question,
        Question::Containers(target("pod/web"))
    );
    assert_eq!(
        line(&["-c", ""]).question,
        Question::Containers(None),
        "no target yet"
    );
    assert_eq!(
        line(&["cp", "deploy/api:/etc", "--container", ""]).question,
        Question::Containers(target("deploy/api"))
    );
    assert_eq!(
        line(&["info", "web", "-c", ""]).question,
        Question::Containers(target("web"))
    );
}

#[test]
fn the_cluster_is_the_one_the_line_names() {
    let l = line(&[
        "--context",
        "eu,us",
        "-nprod",
        "--kubeconfig=/k/config",
        "pod/web",
        "-c",
        "",
    ]);
    assert_eq!(l.kube.contexts, vec!["eu".to_string()]);
    assert_eq!(l.kube.namespace.as_deref(), Some("prod"));
    assert_eq!(l.kube.kubeconfig, Some(PathBuf::from("/k/config")));
    let l = line(&["ls", "--namespace", "kube-system", "--context=a", "-A", "-"]);
    assert_eq!(l.kube.namespace.as_deref(), Some("kube-system"));
    assert_eq!(l.kube.contexts, vec!["a".to_string()]);
}

#[test]
fn flag_values_toolkit_profile_output_context_namespace_builtin() {
    let toolkits = fixed(&["pod/web", "--toolkit", ""]);
    for name in ["base", "net", "full", "jvm", "python", "go", "node", "auto"] {
        assert!(toolkits.contains(&name.to_string()), "{name}: {toolkits:?}");
    }
    let profiles = fixed(&["--profile", ""]);
    assert_eq!(
        profiles,
        [
            "auto",
            "restricted",
            "baseline",
            "ptrace",
            "netadmin",
            "sysadmin"
        ]
    );
    let formats = fixed(&["run", "--builtin", "go", "-o", ""]);
    assert!(formats.contains(&"jsonl".to_string()), "{formats:?}");
    assert_eq!(line(&["--context", ""]).question, Question::Contexts);
    assert_eq!(
        line(&["run", "x.yaml", "-n", ""]).question,
        Question::Namespaces
    );
    assert_eq!(
        fixed(&["run", "--builtin", ""]),
        crate::fanout::runbook::builtin_names()
    );
    let l = line(&["--toolkit=py"]);
    assert_eq!((l.lead.as_str(), l.word.as_str()), ("--toolkit=", "py"));
    assert_eq!(
        reply(&l, Some((fixed(&["--toolkit", ""]), NO_FILE_COMP))),
        "--toolkit=python\n:4\n"
    );
    assert_eq!(
        fixed(&["completion", ""]),
        ["bash", "elvish", "fish", "powershell", "zsh"]
    );
}

#[test]
fn flags_are_those_of_the_command_typed() {
    let root = fixed(&["--t"]);
    assert!(root.contains(&"--toolkit".to_string()), "{root:?}");
    assert!(root.contains(&"--context".to_string()), "{root:?}");
    let cp = fixed(&["cp", "-"]);
    assert!(cp.contains(&"-c".to_string()) && cp.contains(&"--namespace".to_string()));
    assert!(!cp.contains(&"--builtin".to_string()), "{cp:?}");
    assert!(fixed(&["run", "--"]).contains(&"--builtin".to_string()));
}

#[test]
fn cp_offers_pods_with_a_colon_and_local_paths_to_the_shell() {
    assert_eq!(
        line(&["cp", ""]).question,
        Question::Targets {
            subcommands: vec![],
            suffix: ":"
        }
    );
    assert_eq!(
        line(&["cp", "pod/web:/etc/app", "./"]).question,
        Question::Files
    );
    assert_eq!(line(&["cp", "pod/web:/et"]).question, Question::Nothing);
    assert_eq!(line(&["cp", "a", "b", ""]).question, Question::Nothing);
    // A runbook file first, unless --builtin; then targets.
    assert_eq!(line(&["run", ""]).question, Question::Files);
    assert!(matches!(
        line(&["run", "rb.yaml", ""]).question,
        Question::Targets { .. }
    ));
    assert!(matches!(
        line(&["run", "--builtin", "go", ""]).question,
        Question::Targets { .. }
    ));
    assert_eq!(line(&["--kubeconfig", ""]).question, Question::Files);
}

#[test]
fn the_reply_keeps_candidates_extending_the_word_then_the_directive() {
    let l = line(&["cp", "pod/w"]);
    let found = vec!["pod/web:".to_string(), "pod/db:".to_string()];
    assert_eq!(
        reply(&l, Some((found, NO_FILE_COMP | NO_SPACE))),
        "pod/web:\n:6\n"
    );
    // A failure prints no candidate, only the directive: nothing reaches the shell as text.
    assert_eq!(reply(&l, None), ":4\n");
}

#[tokio::test]
async fn contexts_come_from_the_kubeconfig_typed() {
    let path = std::env::temp_dir().join(format!("dd-complete-{}.yaml", std::process::id()));
    let _ = std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n  - name: eu\n    context: {cluster: a, user: b}\n  - name: us\n    context: {cluster: a, user: b}\ncurrent-context: eu\n",
    );
    let kubeconfig = path.display().to_string();
    let l = line(&["--kubeconfig", &kubeconfig, "--context", ""]);
    let found = candidates(&l).await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        found,
        Some((vec!["eu".to_string(), "us".to_string()], NO_FILE_COMP))
    );
}
