//! The real binary's command line: help, usage errors (exit 2, before any request), and the
//! exact PATCH that `--dry-run=client` prints.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{BIN, NONROOT_APP};

fn plugin(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        // No cluster: a usage error must be found before any connection is attempted.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .output()
        .expect("the plugin runs")
}

#[test]
fn help_reads_as_the_kubectl_plugin_and_documents_exit_codes() {
    let out = plugin(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Usage: kubectl distroless-debug [OPTIONS] [TARGET] [-- <COMMAND>...]"),
        "{help}"
    );
    for line in [
        "Exit codes:",
        "130",
        "usage error",
        "remote command's own exit code",
    ] {
        assert!(help.contains(line), "{line} in {help}");
    }
}

#[test]
fn usage_errors_exit_2_and_speak_in_flags() {
    let cases: [(&[&str], &str); 7] = [
        (&["pod/Web"], "not a valid name"),
        (
            &["cp", "pod/web:/x", ".", "--context", "a,b"],
            "`cp` works in one cluster; several contexts are for `run` and `-l SELECTOR -- COMMAND`",
        ),
        (
            &["--context", "a", "ls", "--context", "b"],
            "`ls` works in one cluster",
        ),
        (&["cronjob/x"], "is not a kind we can debug"),
        (&["pod/web", "--timeout", "10"], "`--timeout`"),
        (&["pod/web", "-t"], "`-t` needs a terminal on stdin"),
        (
            &["pod/web", "--image", "x", "--toolkit", "net"],
            "--toolkit",
        ),
    ];
    for (args, expected) in cases {
        let out = plugin(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("kubeconfig"),
            "no connection was attempted: {stderr}"
        );
    }
}

#[test]
fn a_missing_kubeconfig_is_a_failure_with_a_hint() {
    let out = plugin(&["pod/web", "--", "true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not load the kubeconfig"), "{stderr}");
}

#[tokio::test]
async fn client_dry_run_prints_the_exact_patch_and_sends_no_write() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("locked", Some("restricted")).await;
    c.running_app("locked", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    c.sb.clear_requests();
    let run = c
        .run(
            &[
                "-n",
                "locked",
                "pod/web",
                "--dry-run=client",
                "-o",
                "json",
                "--reason",
                "INC-9",
            ],
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let body: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is the PATCH body");
    let container = &body["spec"]["ephemeralContainers"][0];
    assert!(
        container["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("dbg-") && n.len() == 9),
        "{body}"
    );
    assert_eq!(container["targetContainerName"], "app");
    assert_eq!(container["securityContext"]["runAsUser"], 65532);
    let env = container["env"].as_array().cloned().unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e["name"] == "DISTROLESS_DEBUG_REASON" && e["value"] == "INC-9"),
        "{body}"
    );
    assert!(
        c.sb.requests()
            .iter()
            .all(|r| r.method == "GET" || r.method == "POST"),
        "no PATCH"
    );

    let yaml = c
        .run(
            &["-n", "locked", "pod/web", "--dry-run"],
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(yaml.code, Some(0), "{yaml:?}");
    assert!(
        yaml.stdout.starts_with("spec:\n  ephemeralContainers:\n"),
        "{}",
        yaml.stdout
    );

    let server = c
        .run(
            &["-n", "locked", "pod/web", "--dry-run=server"],
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(server.code, Some(0), "{server:?}");
    assert!(server.stderr.contains("admission accepted"), "{server:?}");
    assert!(
        c.debug_containers("locked", "web").await.is_empty(),
        "nothing was added"
    );
}
