//! `./install.sh --demo` on a fresh clone ends with a successful session into the sandbox.
//!
//! The clone is made from this checkout's HEAD, so the test sees what a new machine would:
//! only committed files. It builds with `--debug` into this test run's own target directory,
//! so it shares the suite's one build profile and its compiled dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipping: {why}");
}

/// target/ of this test run: the test binary is target/debug/deps/install-HASH.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in target/PROFILE/deps")
        .to_path_buf()
}

#[test]
fn install_demo_on_a_fresh_clone_ends_with_a_session() {
    // The effective uid, from the kernel's own view of this process.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return skip_or_fail("install.sh --demo runs containers with runc and needs root");
    }
    if Command::new("runc").arg("--version").output().is_err() {
        return skip_or_fail("runc is not installed (tests/run.sh installs it)");
    }
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        return skip_or_fail("kubectl is not on PATH");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch =
        std::env::temp_dir().join(format!("distroless-debug-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let clone = scratch.join("clone");
    let out = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(repo)
        .arg(&clone)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let prefix = scratch.join("prefix");
    let out = Command::new(clone.join("install.sh"))
        .args(["--demo", "--debug", "--prefix"])
        .arg(&prefix)
        .current_dir(&clone)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .expect("run install.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let installed = prefix.join("bin/kubectl-distroless_debug").is_file();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        out.status.success(),
        "install.sh --demo failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(installed, "the plugin was not installed into PREFIX/bin");
    // The session ran as the target's user and saw the target's files through /target.
    assert!(
        stdout.contains("current -> /etc/app/v2"),
        "stdout:\n{stdout}"
    );
    assert!(stdout.contains("uid=65532"), "stdout:\n{stdout}");
    assert!(stderr.contains("demo done"), "stderr:\n{stderr}");
}
