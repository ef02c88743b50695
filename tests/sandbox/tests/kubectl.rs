//! Must-show 1 and 2 of issue 2: the real kubectl binaries against the sandbox with its runc
//! node. The permission outcomes of `kubectl debug` are the kernel's ptrace access rule, not a
//! simulation. Needs root and runc: skipped (printed reason) without, failing under CI=true.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use kube_sandbox::{Sandbox, SandboxOptions, skip_without_node};

async fn kubectl(sb: &Sandbox, bin: &Path, args: &[&str]) -> Output {
    let mut cmd = sb.kubectl_at(bin);
    cmd.args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("running kubectl"))
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

fn write_pod(sb: &Sandbox, name: &str) -> PathBuf {
    let path = sb.dir().join(format!("{name}.yaml"));
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: app\n    image: sandbox.local/distroless-app:nonroot\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The uid line of a host process (`Uid: real effective saved fs`).
fn uids_of(pid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(String::from)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// create -f, get (Running), logs, [exec -- sh fails], delete stops the process.
async fn basic_verbs(sb: &Sandbox, bin: &Path, name: &str, check_exec: bool) {
    let file = write_pod(sb, name);
    let out = kubectl(sb, bin, &["create", "-f", file.to_str().unwrap()]).await;
    assert!(
        out.status.success(),
        "create: {}\n{:#?}",
        text(&out),
        sb.requests()
            .iter()
            .map(|r| format!("{} {}?{} {}", r.method, r.path, r.query, r.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pod/{name} created\n")
    );

    wait_for(
        "the pod to be Running",
        Duration::from_secs(60),
        async || {
            let out = kubectl(sb, bin, &["get", "pods", name]).await;
            text(&out)
                .lines()
                .nth(1)
                .is_some_and(|l| l.contains(" 1/1 ") && l.contains(" Running "))
        },
    )
    .await;
    let out = kubectl(sb, bin, &["get", "pods"]).await;
    assert!(out.stderr.is_empty(), "get pods warned: {}", text(&out));

    let node = sb.node().expect("a node");
    let pid = node
        .container_pid("default", name, "app")
        .expect("the app's pid");
    let uids = uids_of(pid).unwrap();
    assert_eq!(uids.split_whitespace().nth(1), Some("65532"), "{uids}");

    wait_for("log lines", Duration::from_secs(10), async || {
        let out = kubectl(sb, bin, &["logs", name]).await;
        String::from_utf8_lossy(&out.stdout).contains("sandbox-app: serving on :8080")
    })
    .await;

    if check_exec {
        let out = kubectl(sb, bin, &["exec", name, "--", "sh"]).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("exec: \"sh\": executable file not found in $PATH"),
            "{stderr}"
        );
    }

    let out = kubectl(sb, bin, &["delete", "pod", name]).await;
    assert!(out.status.success(), "delete: {}", text(&out));
    assert!(
        !alive(pid),
        "the app's process {pid} survived kubectl delete"
    );
    let out = kubectl(sb, bin, &["get", "pod", name]).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_the_basic_verbs_against_a_distroless_pod() {
    if skip_without_node() {
        return;
    }
    let Some(newest) = support::kubectl(33) else {
        return;
    };
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    basic_verbs(&sb, &newest, "app", true).await;
    // docs/sandbox.md promises 1.27 on these verbs: missing, it fails under CI=true.
    if let Some(old) = support::kubectl(27) {
        // kubectl 1.27 speaks SPDY for exec, which the sandbox does not serve.
        basic_verbs(&sb, &old, "app-127", false).await;
    }
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_debug_reads_the_targets_root_only_when_the_kernel_allows_it() {
    if skip_without_node() {
        return;
    }
    let Some(bin) = support::kubectl(33) else {
        return;
    };
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let file = write_pod(&sb, "app");
    let out = kubectl(&sb, &bin, &["create", "-f", file.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out));
    wait_for("app Running", Duration::from_secs(60), async || {
        let out = kubectl(
            &sb,
            &bin,
            &["get", "pod", "app", "-o", "jsonpath={.status.phase}"],
        )
        .await;
        String::from_utf8_lossy(&out.stdout) == "Running"
    })
    .await;
    let debug = |profile: &'static str, custom: Option<PathBuf>| {
        let sb = &sb;
        let bin = bin.clone();
        async move {
            let mut args = vec![
                "debug".to_string(),
                "pod/app".into(),
                "--image=sandbox.local/busybox:latest".into(),
                "--target=app".into(),
                format!("--profile={profile}"),
                "-i".into(),
            ];
            if let Some(c) = custom {
                args.push(format!("--custom={}", c.display()));
            }
            args.extend(["--".into(), "ls".into(), "/proc/1/root/etc".into()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut out = text(&kubectl(sb, &bin, &args).await);
            // `-i` attaches once the container runs; output written before that is not
            // replayed (as on a real cluster), so a fast `ls` may show only in the log.
            if !out.contains("passwd") && !out.contains("Permission denied") {
                let name = out
                    .split("Defaulting debug container name to ")
                    .nth(1)
                    .and_then(|rest| rest.split('.').next())
                    .map(String::from);
                if let Some(name) = name {
                    let logs = kubectl(sb, &bin, &["logs", "app", "-c", &name]).await;
                    out.push_str(&text(&logs));
                }
            }
            out
        }
    };
    // general adds SYS_PTRACE to a root debug container: the kernel lets it in.
    let general = debug("general", None).await;
    assert!(
        general.contains("passwd") && general.contains("os-release"),
        "{general}"
    );
    // baseline: root without SYS_PTRACE cannot reach the root of a process of uid 65532.
    let baseline = debug("baseline", None).await;
    assert!(baseline.contains("Permission denied"), "{baseline}");
    // the same uid and gid as the target: the ptrace access check passes without capabilities.
    let custom = sb.dir().join("custom.json");
    std::fs::write(
        &custom,
        r#"{"securityContext":{"runAsUser":65532,"runAsGroup":65532}}"#,
    )
    .unwrap();
    let same_user = debug("baseline", Some(custom)).await;
    assert!(same_user.contains("passwd"), "{same_user}");
    assert!(!same_user.contains("Permission denied"), "{same_user}");
    sb.shutdown().await;
}

/// `kubectl run -i` attaches (pods/attach over WebSocket) to the container's main process,
/// feeds it stdin and ends with its exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_run_attaches_with_stdin_and_returns_the_exit_code() {
    if skip_without_node() {
        return;
    }
    let Some(bin) = support::kubectl(33) else {
        return;
    };
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let mut cmd = sb.kubectl_at(&bin);
    cmd.args([
        "run",
        "reader",
        "--image=sandbox.local/busybox:latest",
        "--restart=Never",
        "-i",
        "--command",
        "--",
        "sh",
        "-c",
        "read x; echo got-$x; exit 7",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("got-abc"),
        "{}",
        text(&out)
    );
    let log = sb.requests();
    assert!(
        log.iter()
            .any(|r| r.path.ends_with("/pods/reader/attach") && r.status == 101),
        "attach was upgraded"
    );
    sb.shutdown().await;
}
