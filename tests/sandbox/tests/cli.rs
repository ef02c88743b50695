//! `kube-sandbox up` as a user runs it: the real binary prints the KUBECONFIG line, serves
//! kubectl, and removes what it made on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn up_prints_the_kubeconfig_serves_and_tears_down_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("kube-sandbox-cli-{}", std::process::id()));
    let faults = std::env::temp_dir().join(format!("kube-sandbox-cli-{}.yaml", std::process::id()));
    std::fs::write(&faults, "latency_ms: 20\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-sandbox"))
        .args(["up", "--no-node", "--dir"])
        .arg(&dir)
        .arg("--faults")
        .arg(&faults)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let kubeconfig = dir.join("kubeconfig");
    assert_eq!(
        line,
        format!("export KUBECONFIG={}\n", kubeconfig.display())
    );

    let kubectl = ["/usr/lib/google-cloud-sdk/bin/kubectl.1.33", "kubectl"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file() || p.components().count() == 1)
        .unwrap();
    let out = Command::new(&kubectl)
        .args(["get", "namespaces", "-o", "name"])
        .env("KUBECONFIG", &kubeconfig)
        .env("KUBECACHEDIR", dir.join("kube-cache"))
        .output();
    if let Ok(out) = out {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"));
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
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kube-sandbox did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // --dir was given: the directory stays, the sandbox's state in it is gone with the node.
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&faults);
}
