//! What the sandbox's test files share: the versioned kubectl binaries they drive, and what
//! a sandbox leaves on the host (runc state, mounts, processes).
#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the Cloud SDK keeps its versioned kubectl binaries (`kubectl.1.27` … `kubectl.1.33`).
const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

/// kubectl 1.`minor`: `kubectl.1.<minor>` in the Cloud SDK's directory, else on PATH (where
/// tests/run.sh installs it). None, after printing why, when there is none; under `CI=true`
/// that is a failure, so a test's kubectl half never goes unchecked in CI.
pub fn kubectl(minor: u32) -> Option<PathBuf> {
    let name = format!("kubectl.1.{minor}");
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = std::iter::once(PathBuf::from(KUBECTL_DIR))
        .chain(on_path)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file());
    if found.is_none() {
        let why =
            format!("{name} is neither in {KUBECTL_DIR} nor on PATH: ./tests/run.sh installs it");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        eprintln!("skipped: {why}");
    }
    found
}

/// Every container (id, pid) that `runc --root ROOT` knows, stopped ones with pid 0. A failing
/// `runc list` is a failure here, never read as "no containers".
pub fn runc_containers(root: &Path) -> Vec<(String, i64)> {
    let out = Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(["list", "--format", "json"])
        .output()
        .expect("runc runs");
    assert!(
        out.status.success(),
        "runc --root {} list failed: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // An empty root lists as `null`.
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "runc list printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    list.as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c["pid"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The lines of our mount table that name `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("/proc/self/mountinfo")
        .lines()
        .filter(|l| l.contains(&*dir.to_string_lossy()))
        .map(String::from)
        .collect()
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// What a running sandbox has on the host: its directory, its runc root, its containers' pids.
pub struct Footprint {
    pub dir: PathBuf,
    pub runc_root: PathBuf,
    pub pids: Vec<i64>,
}

impl Footprint {
    /// Nothing of the sandbox is left: no container process, no process naming its directory,
    /// no mount under it, no runc state, no directory.
    pub fn assert_gone(&self) {
        for pid in &self.pids {
            assert!(!alive(*pid), "container process {pid} left");
        }
        let named = processes_naming(&self.dir);
        assert!(named.is_empty(), "processes of the sandbox left: {named:?}");
        assert_eq!(mounts_under(&self.dir), Vec::<String>::new(), "mounts left");
        // (`runc list` creates a missing root; a root that is gone holds no state.)
        if self.runc_root.exists() {
            assert_eq!(runc_containers(&self.runc_root), [], "runc state left");
        }
        assert!(
            !self.dir.exists(),
            "the sandbox's directory is left: {}",
            self.dir.display()
        );
    }
}

/// Live processes whose command line names `dir` (runc and the container supervisors do).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .filter(|pid| alive(*pid))
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(&needle)
                .then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}
