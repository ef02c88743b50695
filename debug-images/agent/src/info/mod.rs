//! `info`: facts about the target process, for people (aligned text) and for the plugin
//! (`-o json`, which `--toolkit auto` reads for `runtime`).
//!
//! Everything comes from `/proc/<pid>`, readable without capabilities because the agent runs
//! as the target's uid/gid (the kernel's ptrace access mode check, `PTRACE_MODE_READ`).
//! A fact that cannot be read is `null` and its reason is added to `errors`; nothing here
//! aborts on one missing fact.

pub mod elf;
pub mod procfs;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::InfoFlags;
use crate::exit::Status;
use crate::procs;
use crate::session;
use crate::target::{self, Failure, Method, Resolved};
use procfs::{Listener, Mount};

/// Version of the JSON shape; bumped on any incompatible change.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Facts {
    pub schema: u32,
    pub pid: i32,
    /// The target's container ID as its cgroup shows it (null when it shows none).
    pub container_id: Option<String>,
    /// How the target was found: `cgroup`, `pid1` or `flag`.
    pub method: Method,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<Vec<u32>>,
    pub exe: Option<String>,
    pub cmdline: Option<Vec<String>>,
    /// `go`, `jvm`, `python`, `node` or `other`.
    pub runtime: &'static str,
    /// The Go toolchain version from the binary's build info (`go1.22.3`), when Go.
    pub go_version: Option<String>,
    pub listening: Option<Vec<Listener>>,
    pub mounts: Option<Vec<Mount>>,
    pub env_names: Option<Vec<String>>,
    /// Where the target's filesystem is visible from the debug container.
    pub root: String,
    pub root_readable: bool,
    pub errors: Vec<String>,
}

pub fn main(flags: InfoFlags) -> Status {
    let resolved = match target::identify(&flags.target) {
        Ok(resolved) => resolved,
        // As `target -o json`: the plugin reads the candidates from stdout.
        Err(Failure::NotIdentified(refusal)) if flags.json => {
            let mut out = io::stdout().lock();
            let _ = target::json_line(&mut out, &refusal).and_then(|()| out.flush());
            return Status::NotIdentified;
        }
        Err(failure) => return failure.report("info"),
    };
    if flags.end_container {
        session::register("info", true);
    }
    let pid = resolved.pid;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        eprintln!("distroless-debug-agent info: pid {pid} has exited");
        return Status::Failure;
    }
    let facts = gather(&resolved);
    let mut out = io::stdout().lock();
    let written = if flags.json {
        serde_json::to_writer_pretty(&mut out, &facts)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        out.write_all(render_text(&facts).as_bytes())
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Status::Success,
        // `info | head`: the reader has what it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Status::Failure,
        Err(e) => {
            eprintln!("distroless-debug-agent info: {e}");
            Status::Failure
        }
    }
}

pub fn gather(target: &Resolved) -> Facts {
    let pid = target.pid;
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let mut errors = Vec::new();
    let mut note = |what: &str, e: io::Error| errors.push(format!("{what}: {e}"));

    let status = std::fs::read_to_string(proc_dir.join("status"))
        .map(|text| procfs::parse_status(&text))
        .map_err(|e| note("status", e))
        .ok();
    let exe = std::fs::read_link(proc_dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| note("exe", e))
        .ok();
    let cmdline = std::fs::read(proc_dir.join("cmdline"))
        .map(|raw| procs::split_nul(&raw))
        .map_err(|e| note("cmdline", e))
        .ok();
    let env_names = std::fs::read(proc_dir.join("environ"))
        .map(|raw| procfs::env_names(&raw))
        .map_err(|e| note("environ", e))
        .ok();
    let mounts = std::fs::read_to_string(proc_dir.join("mountinfo"))
        .map(|text| procfs::parse_mountinfo(&text))
        .map_err(|e| note("mountinfo", e))
        .ok();

    let mut listening: Option<Vec<Listener>> = None;
    for (file, proto) in [
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("udp", "udp"),
        ("udp6", "udp"),
    ] {
        match std::fs::read_to_string(proc_dir.join("net").join(file)) {
            Ok(text) => listening
                .get_or_insert_with(Vec::new)
                .extend(procfs::parse_net(&text, proto)),
            // No IPv6 in the namespace is not an error worth reporting.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => note(&format!("net/{file}"), e),
        }
    }

    let go = match open_exe(&proc_dir, exe.as_deref()) {
        Ok(mut file) => match elf::go_build_info(&mut file) {
            Ok(go) => go,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => None,
            Err(e) => {
                note("exe build info", e);
                None
            }
        },
        Err(e) => {
            note("exe build info", e);
            None
        }
    };

    let root_readable = match std::fs::read_dir(&target.root) {
        Ok(_) => true,
        Err(e) => {
            errors.push(format!("root: {e}"));
            false
        }
    };
    let runtime = runtime_of(
        exe.as_deref(),
        cmdline.as_deref().unwrap_or_default(),
        go.is_some(),
    );
    Facts {
        schema: SCHEMA,
        pid,
        container_id: target.container_id.clone(),
        method: target.method,
        uid: status.as_ref().and_then(|s| s.uid),
        gid: status.as_ref().and_then(|s| s.gid),
        groups: status.map(|s| s.groups),
        exe,
        cmdline,
        runtime,
        go_version: go.and_then(|g| g.version),
        listening,
        mounts,
        env_names,
        root: target.root.clone(),
        root_readable,
        errors,
    }
}

/// The magic link first; else the same path inside the target's root.
fn open_exe(proc_dir: &Path, exe: Option<&str>) -> io::Result<File> {
    match File::open(proc_dir.join("exe")) {
        Ok(file) => Ok(file),
        Err(first) => match exe {
            Some(path) if path.starts_with('/') => {
                File::open(proc_dir.join("root").join(&path[1..])).map_err(|_| first)
            }
            _ => Err(first),
        },
    }
}

/// Runtime from the executable's name (interpreters and the JVM launcher), else Go build
/// info, else `other`.
pub fn runtime_of(exe: Option<&str>, cmdline: &[String], is_go: bool) -> &'static str {
    let names = exe.into_iter().chain(cmdline.first().map(String::as_str));
    for name in names {
        let base = name.rsplit('/').next().unwrap_or(name);
        // `python3.11` and `python3.11-dbg` as well as `python`.
        if base == "java" {
            return "jvm";
        }
        if base.starts_with("python") || base.starts_with("pypy") {
            return "python";
        }
        if base == "node" || base == "nodejs" {
            return "node";
        }
    }
    if is_go { "go" } else { "other" }
}

fn render_text(facts: &Facts) -> String {
    fn opt<T: ToString>(v: &Option<T>) -> String {
        v.as_ref()
            .map_or_else(|| "-".to_string(), ToString::to_string)
    }
    fn list<T, F: Fn(&T) -> String>(v: &Option<Vec<T>>, f: F) -> Vec<String> {
        match v {
            None => vec!["-".to_string()],
            Some(items) if items.is_empty() => vec!["(none)".to_string()],
            Some(items) => items.iter().map(f).collect(),
        }
    }
    let runtime = match &facts.go_version {
        Some(version) => format!("{} ({version})", facts.runtime),
        None => facts.runtime.to_string(),
    };
    let readable = if facts.root_readable {
        "readable"
    } else {
        "not readable"
    };
    let mut rows: Vec<(&str, Vec<String>)> = vec![
        ("pid", vec![facts.pid.to_string()]),
        (
            "container",
            vec![format!(
                "{} (found by: {})",
                facts.container_id.as_deref().unwrap_or("-"),
                facts.method.as_str()
            )],
        ),
        ("uid", vec![opt(&facts.uid)]),
        ("gid", vec![opt(&facts.gid)]),
        (
            "groups",
            vec![facts.groups.as_ref().map_or("-".into(), |g| {
                if g.is_empty() {
                    "(none)".to_string()
                } else {
                    g.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
                }
            })],
        ),
        ("exe", vec![opt(&facts.exe)]),
        (
            "cmdline",
            vec![facts.cmdline.as_ref().map_or("-".into(), |c| c.join(" "))],
        ),
        ("runtime", vec![runtime]),
        ("root", vec![format!("{} ({readable})", facts.root)]),
        (
            "listening",
            list(&facts.listening, |l| {
                if l.addr.contains(':') {
                    format!("{} [{}]:{}", l.proto, l.addr, l.port)
                } else {
                    format!("{} {}:{}", l.proto, l.addr, l.port)
                }
            }),
        ),
        (
            "mounts",
            list(&facts.mounts, |m| {
                format!("{} {} {} {}", m.path, m.fstype, m.source, m.options)
            }),
        ),
        (
            "env names",
            vec![facts.env_names.as_ref().map_or("-".into(), |n| n.join(" "))],
        ),
    ];
    if !facts.errors.is_empty() {
        rows.push(("errors", facts.errors.clone()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (key, values) in rows {
        for (i, value) in values.iter().enumerate() {
            let label = if i == 0 { key } else { "" };
            out.push_str(&format!("{label:<width$}{value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn runtime_from_names_then_build_info() {
        assert_eq!(
            runtime_of(
                Some("/usr/lib/jvm/java-17/bin/java"),
                &argv(&["java", "-jar", "a.jar"]),
                false
            ),
            "jvm"
        );
        assert_eq!(
            runtime_of(
                Some("/usr/bin/python3.11"),
                &argv(&["python3", "app.py"]),
                false
            ),
            "python"
        );
        assert_eq!(
            runtime_of(None, &argv(&["/nodejs/bin/node", "server.js"]), false),
            "node"
        );
        assert_eq!(
            runtime_of(Some("/app/server"), &argv(&["/app/server"]), true),
            "go"
        );
        assert_eq!(
            runtime_of(Some("/app/server"), &argv(&["/app/server"]), false),
            "other"
        );
        assert_eq!(runtime_of(None, &[], false), "other");
    }

    #[test]
    fn facts_of_this_process() {
        let pid = std::process::id() as i32;
        let facts = gather(&Resolved {
            pid,
            container_id: None,
            method: Method::Flag,
            root: format!("/proc/{pid}/root"),
        });
        assert_eq!(facts.uid, Some(crate::sys::effective_uid()));
        assert!(facts.exe.is_some());
        assert_eq!(facts.runtime, "other");
        assert!(
            facts
                .env_names
                .as_ref()
                .unwrap()
                .iter()
                .all(|n| !n.contains('='))
        );
        assert!(
            facts
                .mounts
                .as_ref()
                .is_some_and(|m| m.iter().any(|m| m.path == "/"))
        );
        assert!(facts.errors.is_empty(), "{:?}", facts.errors);
        let json = serde_json::to_value(&facts).unwrap();
        for key in [
            "pid",
            "container_id",
            "method",
            "uid",
            "gid",
            "groups",
            "exe",
            "cmdline",
            "runtime",
            "listening",
            "mounts",
            "env_names",
            "root_readable",
            "errors",
        ] {
            assert!(json.get(key).is_some(), "json has {key}");
        }
        let text = render_text(&facts);
        assert!(text.starts_with("pid "), "{text}");
    }
}
