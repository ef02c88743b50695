//! `kube-sandbox up` as a user runs it: the real binary prints the KUBECONFIG line, serves
//! kubectl, and removes what it made on SIGTERM: no process, mount, runc state or directory
//! of it is left.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kube_sandbox::skip_without_node;
use support::{Footprint, alive, mounts_under, runc_containers};

/// The running `up`: stopped with SIGTERM, as a user would, if the test fails before it does.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
}

#[test]
fn up_prints_the_kubeconfig_serves_and_tears_down_on_sigterm() {
    // With the node when the machine has one (under CI=true it must): a pod then leaves
    // processes, mounts and runc state that SIGTERM has to remove.
    let node = !skip_without_node();
    let kubectl = support::kubectl(33);
    let scratch = std::env::temp_dir().join(format!("kube-sandbox-cli-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let faults = scratch.join("faults.yaml");
    std::fs::write(&faults, "latency_ms: 20\n").unwrap();
    // No --dir: `up` makes a temporary directory and must remove it at exit.
    let mut up = Up(Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .arg("up")
        .args((!node).then_some("--no-node"))
        .arg("--faults")
        .arg(&faults)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let mut line = String::new();
    BufReader::new(up.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let kubeconfig = PathBuf::from(
        line.strip_prefix("export KUBECONFIG=")
            .and_then(|l| l.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("not the KUBECONFIG line: {line:?}")),
    );
    assert!(kubeconfig.is_file(), "{}", kubeconfig.display());
    let dir = kubeconfig.parent().unwrap().to_path_buf();
    let mut footprint = Footprint {
        runc_root: dir.join("node/runc"),
        dir,
        pids: Vec::new(),
    };

    if let Some(kubectl) = &kubectl {
        let run = |args: &[&str]| {
            let out = Command::new(kubectl)
                .args(args)
                .env("KUBECONFIG", &kubeconfig)
                .env("KUBECACHEDIR", scratch.join("kube-cache"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert!(run(&["get", "namespaces", "-o", "name"]).contains("namespace/kube-system"));
        if node {
            run(&[
                "run",
                "held",
                "--image=sandbox.local/busybox:latest",
                "--restart=Never",
                "--command",
                "--",
                "sleep",
                "3600",
            ]);
            let deadline = Instant::now() + Duration::from_secs(60);
            while run(&["get", "pod", "held", "-o", "jsonpath={.status.phase}"]) != "Running" {
                assert!(Instant::now() < deadline, "pod held not Running within 60s");
                std::thread::sleep(Duration::from_millis(200));
            }
            footprint.pids = runc_containers(&footprint.runc_root)
                .into_iter()
                .map(|(_, pid)| pid)
                .filter(|pid| *pid > 0)
                .collect();
            assert!(!footprint.pids.is_empty(), "a running pod has processes");
            assert!(footprint.pids.iter().all(|pid| alive(*pid)));
            assert!(
                !mounts_under(&footprint.dir).is_empty(),
                "a running pod has mounts"
            );
        }
    }

    // Faults of the running sandbox, read and changed through its control endpoint.
    let faults_cmd = |file: Option<&std::path::Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kube-sandbox"));
        cmd.args(["faults", "--kubeconfig"]).arg(&kubeconfig);
        if let Some(f) = file {
            cmd.arg(f);
        }
        cmd.output().unwrap()
    };
    let shown = faults_cmd(None);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(String::from_utf8_lossy(&shown.stdout).contains("\"latency_ms\":20"));
    std::fs::write(&faults, "error_burst: { code: 503, count: 1 }\n").unwrap();
    let set = faults_cmd(Some(&faults));
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let now = String::from_utf8_lossy(&set.stdout);
    assert!(
        now.contains("\"latency_ms\":0") && now.contains("\"code\":503"),
        "{now}"
    );

    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(up.0.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = up.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kube-sandbox did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    footprint.assert_gone();
    let _ = std::fs::remove_dir_all(&scratch);
}
