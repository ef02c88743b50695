//! Running `runc`: every invocation uses the node's own `--root`, logs JSON to a file of its
//! own (so a failure's message is runc's real text, and nothing runc says lands in a
//! container's stdio), and is a plain child waited for by `std` — the reaper never sees it.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

pub const RUNC: &str = "/usr/sbin/runc";

/// What `runc create` / `runc exec` hand to the container process as fds 0, 1 and 2
/// (with `--detach` runc passes its own stdio through).
#[derive(Default)]
pub struct RuncStdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

fn stdio(fd: Option<OwnedFd>) -> Stdio {
    fd.map(Stdio::from).unwrap_or_else(Stdio::null)
}

pub struct Runc {
    binary: PathBuf,
    root: PathBuf,
    logs: PathBuf,
    counter: AtomicU64,
}

impl Runc {
    pub fn new(root: PathBuf, logs: PathBuf) -> Runc {
        let binary = std::env::var_os("SANDBOX_RUNC")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(RUNC));
        Runc {
            binary,
            root,
            logs,
            counter: AtomicU64::new(0),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Run `runc ARGS`; on failure return runc's last error message.
    fn run(&self, args: &[&str], io: RuncStdio) -> Result<(), String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let log = self.logs.join(format!("runc-{n}.log"));
        let status = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json"])
            .args(args)
            .stdin(stdio(io.stdin))
            .stdout(stdio(io.stdout))
            .stderr(stdio(io.stderr))
            .status();
        let result = match status {
            Err(e) => Err(format!("cannot run {}: {e}", self.binary.display())),
            Ok(s) if s.success() => Ok(()),
            Ok(s) => {
                Err(last_error(&log).unwrap_or_else(|| format!("runc {} failed: {s}", args[0])))
            }
        };
        let _ = fs::remove_file(&log);
        result
    }

    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&str>,
        io: RuncStdio,
    ) -> Result<(), String> {
        let bundle = bundle.display().to_string();
        let pid_file = pid_file.display().to_string();
        let mut args = vec!["create", "--bundle", &bundle, "--pid-file", &pid_file];
        if let Some(sock) = console_socket {
            args.extend(["--console-socket", sock]);
        }
        args.push(id);
        self.run(&args, io)
    }

    pub fn start(&self, id: &str) -> Result<(), String> {
        self.run(&["start", id], RuncStdio::default())
    }

    pub fn exec(
        &self,
        id: &str,
        process_json: &Path,
        pid_file: &Path,
        console_socket: Option<&str>,
        io: RuncStdio,
    ) -> Result<(), String> {
        let process = process_json.display().to_string();
        let pid_file = pid_file.display().to_string();
        let mut args = vec![
            "exec",
            "--detach",
            "--process",
            &process,
            "--pid-file",
            &pid_file,
        ];
        if let Some(sock) = console_socket {
            args.extend(["--console-socket", sock]);
        }
        args.push(id);
        self.run(&args, io)
    }

    /// Signal the container's init, or with `all` every process in its cgroup (needed when it
    /// shares another container's PID namespace: its init dying does not end the others).
    pub fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), String> {
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, signal]);
        self.run(&args, RuncStdio::default())
    }

    /// Kill whatever is left and remove the container's runc state and cgroups.
    pub fn delete_force(&self, id: &str) -> Result<(), String> {
        self.run(&["delete", "--force", id], RuncStdio::default())
    }

    /// IDs of the containers in our runc root.
    pub fn list(&self) -> Vec<String> {
        let out = Command::new(&self.binary)
            .arg("--root")
            .arg(&self.root)
            .args(["list", "--quiet"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The last `"level":"error"` message of a runc JSON log.
fn last_error(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "error" || v["level"] == "fatal")
        .filter_map(|v| v["msg"].as_str().map(String::from))
        .next()
}

/// Whether runc is present and we may use it (root).
pub fn prerequisites() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the sandbox node needs root (runc, mounts, namespaces)".into());
    }
    let binary = std::env::var_os("SANDBOX_RUNC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(RUNC));
    if !binary.is_file() {
        return Err(format!(
            "{} is missing: install runc (apt-get install runc)",
            binary.display()
        ));
    }
    Ok(())
}
