//! The real agent finding its target among real processes, without Kubernetes: each test
//! makes a fresh PID namespace (`unshare --pid --fork --mount-proc`) shaped like a pod, puts
//! fake containers in cgroups named as runtimes name them (a 64-hex ID, cgroupfs layout on
//! the cgroup v1 `pids` hierarchy, systemd `cri-containerd-<id>.scope` layout on cgroup v2
//! when mounted), gives each its own root (chroot, so none is "ours"), and runs the agent
//! inside with `nsenter`.
//!
//! Needs root, unshare, nsenter, chroot, bash, a static busybox and a writable cgroup
//! hierarchy: skipped with the reason otherwise, a failure under CI=true. Every cgroup made
//! here is removed when its test ends.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::wait_for;
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_distroless-debug-agent");

const APP: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const SIDECAR: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const GONE: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

/// Why this machine cannot run these tests, if it cannot.
fn unsupported() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_string));
    if euid.as_deref() != Some("0") {
        return Some("not root (PID namespaces and cgroups need it)".into());
    }
    for tool in ["unshare", "nsenter", "chroot", "bash"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    if busybox().is_none() {
        return Some("no statically linked busybox (package busybox-static)".into());
    }
    if hierarchies().is_empty() {
        return Some("no writable cgroup hierarchy (v1 pids or v2)".into());
    }
    None
}

/// Skips (printing why) when the machine cannot run these tests; under CI=true that fails.
fn skip() -> bool {
    let Some(why) = unsupported() else {
        return false;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipping: {why}");
    true
}

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| {
            Command::new("file")
                .arg("-L")
                .arg(path)
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("statically linked"))
                || Command::new("ldd")
                    .arg(path)
                    .output()
                    .is_ok_and(|o| !o.status.success())
        })
}

/// Where fake containers can live, from /proc/self/mounts: the v1 `pids` hierarchy and
/// the v2 one, those that exist.
fn hierarchies() -> Vec<(Version, PathBuf)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(dir), Some(fstype), Some(options)) =
            (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        let version = match *fstype {
            "cgroup" if options.split(',').any(|o| o == "pids") => Version::V1,
            "cgroup2" => Version::V2,
            _ => continue,
        };
        if !found.iter().any(|(v, _)| *v == version) {
            found.push((version, PathBuf::from(dir)));
        }
    }
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A PID namespace shaped like a pod, its fake containers and their cgroups.
struct Pod {
    dir: PathBuf,
    name: String,
    unshare: Child,
    /// PID 1 of the namespace, as the host numbers it.
    init: u32,
    /// Processes started into the namespace (nsenter's side), reaped at the end.
    started: Vec<Child>,
    /// Cgroup directories made here, parents before children.
    cgroups: Vec<PathBuf>,
}

impl Pod {
    fn scratch(name: &str) -> (String, PathBuf) {
        let name = format!("dda-target-{name}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        (name, dir)
    }

    /// `shareProcessNamespace: true`: PID 1 is the pause process.
    fn shared(name: &str) -> Pod {
        let (name, dir) = Pod::scratch(name);
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "bash", "-c"])
            .arg("exec -a /pause sleep 600")
            .stdin(Stdio::null())
            // unshare complains on stderr when its namespace is killed at the end.
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Pod::with_init(name, dir, unshare, "/pause")
    }

    /// The target's own PID namespace: PID 1 is the container's main process, in the
    /// cgroup of container `id` when given, else in no container's cgroup.
    fn own(name: &str, id: Option<&str>) -> Pod {
        let (name, dir) = Pod::scratch(name);
        let root = container_root(&dir, "pid1");
        let mut cgroups = Vec::new();
        let join = match id {
            Some(id) => {
                let procs = make_cgroup(&name, Layout::Cgroupfs, id, &mut cgroups);
                format!("echo $$ > {}; ", procs.display())
            }
            None => String::new(),
        };
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
            .arg(format!(
                "{join}exec chroot {} /bin/busybox sleep 600",
                root.display()
            ))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut pod = Pod::with_init(name, dir, unshare, "/bin/busybox");
        pod.cgroups = cgroups;
        pod
    }

    fn with_init(name: String, dir: PathBuf, unshare: Child, argv0: &str) -> Pod {
        let parent = unshare.id();
        let mut init = None;
        wait_for(Duration::from_secs(5), || {
            init = children_of(parent).into_iter().find(|&pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with(argv0.as_bytes()))
            });
            init.is_some()
        });
        let init = init.unwrap_or_else(|| panic!("PID 1 ({argv0}) of the namespace started"));
        Pod {
            dir,
            name,
            unshare,
            init,
            started: Vec::new(),
            cgroups: Vec::new(),
        }
    }

    /// Starts a fake container: a process in the cgroup of container `id` (laid out as
    /// `layout`), chrooted into a root of its own holding `marker`, with one child. Returns
    /// its pid inside the namespace.
    fn start_container(&mut self, id: &str, layout: Layout, marker: &str) -> i32 {
        let root = container_root(&self.dir, id);
        std::fs::write(root.join(marker), id).unwrap();
        let procs = make_cgroup(&self.name, layout, id, &mut self.cgroups);
        let script = format!(
            "echo $$ > {procs}; exec chroot {root} /bin/busybox sh -c \
             '/bin/busybox sleep 600 & echo $$ > /main.pid; exec /bin/busybox sleep 600'",
            procs = procs.display(),
            root = root.display()
        );
        self.enter(&script);
        let pid_file = root.join("main.pid");
        assert!(
            wait_for(Duration::from_secs(5), || std::fs::read_to_string(
                &pid_file
            )
            .is_ok_and(|s| s.ends_with('\n'))),
            "container {id} started"
        );
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// One more process in container `id`'s cgroup, as `kubectl exec` would add: its
    /// parent is outside the namespace, and it starts after the container's main process.
    fn exec_into(&mut self, id: &str, layout: Layout) {
        let procs = cgroup_dir(&self.name, layout, id).join("cgroup.procs");
        let root = self.dir.join(id);
        let script = format!(
            "echo $$ > {}; exec chroot {} /bin/busybox sleep 600",
            procs.display(),
            root.display()
        );
        self.enter(&script);
        // Let it reach its cgroup before the agent looks.
        assert!(wait_for(Duration::from_secs(5), || {
            std::fs::read_to_string(&procs).is_ok_and(|s| s.lines().count() >= 3)
        }));
    }

    fn enter(&mut self, script: &str) {
        let child = Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "--pid", "--mount", "--"])
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.started.push(child);
    }

    /// The agent, run inside the namespace with this pod's state directory.
    fn agent(&self, args: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .args([
                "-t",
                &self.init.to_string(),
                "--pid",
                "--mount",
                "--",
                AGENT,
            ])
            .args(args)
            .env("DISTROLESS_DEBUG_STATE_DIR", self.state())
            .env_remove("DISTROLESS_DEBUG_TARGET_ID")
            .env_remove("DISTROLESS_DEBUG_TARGET_PID")
            .stdin(Stdio::null());
        command
    }

    fn output(&self, args: &[&str]) -> Output {
        self.agent(args).output().unwrap()
    }

    /// `target -o json` with `args`: exit code and the JSON on stdout.
    fn target_json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut full = vec!["target", "-o", "json"];
        full.extend_from_slice(args);
        json_of(self.output(&full))
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn target_link(&self) -> Option<PathBuf> {
        std::fs::read_link(self.state().join("target")).ok()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        // PID 1's death takes the whole namespace with it.
        let _ = Command::new("kill")
            .args(["-KILL", &self.init.to_string()])
            .status();
        let _ = self.unshare.wait();
        for child in &mut self.started {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in self.cgroups.iter().rev() {
            // The kernel empties a cgroup a moment after its last process is reaped.
            wait_for(Duration::from_secs(5), || {
                std::fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
        let leftover: Vec<_> = self.cgroups.iter().filter(|d| d.exists()).collect();
        let _ = std::fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            assert!(leftover.is_empty(), "cgroups left behind: {leftover:?}");
        }
    }
}

/// How a runtime names a container's cgroup.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// containerd's cgroupfs driver on the v1 `pids` hierarchy:
    /// `/kubepods/besteffort/pod<uid>/<id>`.
    Cgroupfs,
    /// containerd's systemd driver, on the v2 hierarchy when there is one:
    /// `/kubepods.slice/.../cri-containerd-<id>.scope`.
    Systemd,
}

fn cgroup_dir(base: &str, layout: Layout, id: &str) -> PathBuf {
    let all = hierarchies();
    let pick = |want: Version| {
        all.iter()
            .find(|(v, _)| *v == want)
            .or_else(|| all.first())
            .map(|(_, dir)| dir.join(base))
            .expect("a cgroup hierarchy")
    };
    match layout {
        Layout::Cgroupfs => pick(Version::V1)
            .join("kubepods/besteffort/pod0e6f1c2a-1111-2222-3333-444455556666")
            .join(id),
        Layout::Systemd => pick(Version::V2)
            .join("kubepods.slice/kubepods-besteffort.slice")
            .join("kubepods-besteffort-pod0e6f1c2a_1111_2222_3333_444455556666.slice")
            .join(format!("cri-containerd-{id}.scope")),
    }
}

/// Makes the cgroup (recording each new directory for removal) and returns its
/// `cgroup.procs`.
fn make_cgroup(base: &str, layout: Layout, id: &str, made: &mut Vec<PathBuf>) -> PathBuf {
    let dir = cgroup_dir(base, layout, id);
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| !d.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    for d in missing {
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        made.push(d);
    }
    dir.join("cgroup.procs")
}

/// A root directory with busybox and /dev/null (busybox sh wants it for `&`) in it, for
/// one fake container.
fn container_root(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::copy(busybox().unwrap(), root.join("bin/busybox")).unwrap();
    let made = Command::new("mknod")
        .args(["-m", "666"])
        .arg(root.join("dev/null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success(), "mknod {}/dev/null", root.display());
    root
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s[s.rfind(')').unwrap_or(0) + 1..]
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

fn json_of(out: Output) -> (Option<i32>, Value) {
    let text = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), value)
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A pod sharing its PID namespace: the sidecar started first (lower pid, what a guess
/// would have taken), then the app, then a process exec'd into the app.
fn two_containers(name: &str) -> (Pod, i32, i32) {
    let mut pod = Pod::shared(name);
    let sidecar = pod.start_container(SIDECAR, Layout::Systemd, "sidecar-only");
    let app = pod.start_container(APP, Layout::Cgroupfs, "app-only");
    pod.exec_into(APP, Layout::Cgroupfs);
    assert!(sidecar < app, "the sidecar has the lower pid");
    (pod, sidecar, app)
}

#[test]
fn the_id_picks_its_containers_first_process_in_a_shared_namespace() {
    if skip() {
        return;
    }
    let (pod, sidecar, app) = two_containers("shared");

    let (code, target) = pod.target_json(&["--target-id", &format!("containerd://{APP}")]);
    assert_eq!(code, Some(0), "{target}");
    assert_eq!(target["pid"], app, "{target}");
    assert_eq!(target["container_id"], APP);
    assert_eq!(target["method"], "cgroup");
    assert_eq!(target["root"], format!("/proc/{app}/root"));
    assert_eq!(
        pod.target_link(),
        Some(PathBuf::from(format!("/proc/{app}/root"))),
        "the state directory's link follows the target"
    );

    let (code, target) = pod.target_json(&["--target-id", &format!("docker://{SIDECAR}")]);
    assert_eq!(code, Some(0), "{target}");
    assert_eq!(target["pid"], sidecar);
    assert_eq!(target["container_id"], SIDECAR);
    assert_eq!(
        pod.target_link(),
        Some(PathBuf::from(format!("/proc/{sidecar}/root")))
    );

    // The environment names the ID once; a flag overrides it.
    let out = pod
        .agent(&["target", "-o", "json"])
        .env("DISTROLESS_DEBUG_TARGET_ID", format!("cri-o://{APP}"))
        .output()
        .unwrap();
    assert_eq!(json_of(out).1["pid"], app);
    let out = pod
        .agent(&["target", "-o", "json", "--target-id", SIDECAR])
        .env("DISTROLESS_DEBUG_TARGET_ID", APP)
        .output()
        .unwrap();
    assert_eq!(json_of(out).1["pid"], sidecar);
}

#[test]
fn every_verb_works_on_the_identified_target() {
    if skip() {
        return;
    }
    let (pod, _sidecar, app) = two_containers("verbs");

    let out = pod.output(&[
        "run",
        "--target-id",
        APP,
        "--",
        "sh",
        "-c",
        "echo $TARGET_PID $TARGET_ROOT",
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), format!("{app} /proc/{app}/root\n"));

    // tar, untar and stat work in the target's root by default: only the app has app-only.
    let out = pod.output(&["stat", "--target-id", APP, "/app-only", "/sidecar-only"]);
    let lines: Vec<Value> = stdout_of(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "file", "{lines:?}");
    assert_eq!(lines[1]["errno"], 2, "{lines:?}");
    let out = pod.output(&["tar", "--target-id", APP, "/app-only"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        out.stdout.windows(APP.len()).any(|w| w == APP.as_bytes()),
        "the archive holds the app's file"
    );
    let mut untar = pod
        .agent(&["untar", "--target-id", SIDECAR, "/"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut untar.stdin.take().unwrap(), &out.stdout).unwrap();
    let untarred = untar.wait_with_output().unwrap();
    assert!(untarred.status.success(), "{}", stderr_of(&untarred));
    assert_eq!(
        std::fs::read_to_string(pod.dir.join(SIDECAR).join("app-only")).unwrap(),
        APP,
        "untar wrote into the sidecar's root"
    );

    let (code, info) = json_of(pod.output(&["info", "--target-id", APP, "-o", "json"]));
    assert_eq!(code, Some(0));
    assert_eq!(info["pid"], app);
    assert_eq!(info["container_id"], APP);
    assert_eq!(info["method"], "cgroup");
    assert_eq!(info["root"], format!("/proc/{app}/root"));

    let out = pod
        .agent(&["shell", "--target-id", APP])
        .env("SHELL", "/bin/sh")
        .output()
        .unwrap();
    let banner = stderr_of(&out);
    assert!(
        banner.starts_with(&format!("target: pid {app} ("))
            && banner.contains(&format!("container {APP} (found by its cgroup)"))
            && banner.contains(&format!("filesystem is at /proc/{app}/root")),
        "{banner}"
    );
}

#[test]
fn an_id_that_matches_nothing_is_refused_with_the_candidates() {
    if skip() {
        return;
    }
    let (pod, sidecar, app) = two_containers("nomatch");
    pod.target_json(&["--target-id", APP]);
    assert!(pod.target_link().is_some());

    let (code, refusal) = pod.target_json(&["--target-id", GONE]);
    assert_eq!(code, Some(3), "{refusal}");
    let error = refusal["error"].as_str().unwrap();
    assert!(
        error.starts_with("target not identified") && error.contains(GONE),
        "{error}"
    );
    let candidates: Vec<(i64, &str)> = refusal["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["pid"].as_i64().unwrap(),
                c["container_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        candidates,
        vec![(sidecar as i64, SIDECAR), (app as i64, APP)],
        "the first process of each container, not pause, not the exec'd one"
    );
    assert!(refusal["candidates"][0]["uid"].is_u64());
    assert!(
        pod.target_link().is_none(),
        "/target shows no earlier target"
    );

    // The verbs refuse too, with the table on stderr, and run nothing.
    let marker = pod.dir.join("ran");
    let out = pod.output(&[
        "run",
        "--target-id",
        GONE,
        "--",
        "touch",
        marker.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!marker.exists(), "the command did not run");
    let table = stderr_of(&out);
    for needle in [
        GONE,
        APP,
        SIDECAR,
        &format!("--target-pid {sidecar}"),
        "PID",
    ] {
        assert!(table.contains(needle), "{needle} in {table}");
    }
    for verb in [
        &["shell"][..],
        &["info"],
        &["stat", "/"],
        &["tar", "/app-only"],
    ] {
        let mut args = verb.to_vec();
        args.extend(["--target-id", GONE]);
        let out = pod.output(&args);
        assert_eq!(out.status.code(), Some(3), "{verb:?}: {}", stderr_of(&out));
    }

    // Without any ID, in a shared namespace: no guess either.
    let (code, refusal) = pod.target_json(&[]);
    assert_eq!(code, Some(3));
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("no container ID was given")
    );
    assert_eq!(refusal["candidates"].as_array().unwrap().len(), 2);
    let out = pod.output(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn target_pid_picks_a_process_as_given() {
    if skip() {
        return;
    }
    let (pod, sidecar, _app) = two_containers("pid");
    let (code, target) = pod.target_json(&["--target-pid", &sidecar.to_string()]);
    assert_eq!(code, Some(0));
    assert_eq!(target["pid"], sidecar);
    assert_eq!(target["method"], "flag");
    assert_eq!(target["container_id"], SIDECAR, "the ID its cgroup shows");

    // The older env spelling, and a pid flag over an ID in the env.
    let out = pod
        .agent(&["run", "--", "sh", "-c", "echo $TARGET_PID"])
        .env("DISTROLESS_DEBUG_TARGET_PID", sidecar.to_string())
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), format!("{sidecar}\n"));
    let out = pod
        .agent(&[
            "run",
            "--target-pid",
            &sidecar.to_string(),
            "--",
            "sh",
            "-c",
            "echo $TARGET_PID",
        ])
        .env("DISTROLESS_DEBUG_TARGET_ID", APP)
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), format!("{sidecar}\n"));

    let (code, refusal) = pod.target_json(&["--target-pid", "4000000"]);
    assert_eq!(code, Some(3));
    assert!(refusal["error"].as_str().unwrap().contains("4000000"));
}

#[test]
fn in_the_targets_own_namespace_the_id_confirms_pid_1() {
    if skip() {
        return;
    }
    let pod = Pod::own("own", Some(APP));
    let (code, target) = pod.target_json(&["--target-id", APP]);
    assert_eq!(code, Some(0), "{target}");
    assert_eq!(target["pid"], 1);
    assert_eq!(target["method"], "cgroup");

    let (_, target) = pod.target_json(&[]);
    assert_eq!(target["pid"], 1);
    assert_eq!(target["method"], "pid1");
    assert_eq!(target["container_id"], APP);

    let (code, refusal) = pod.target_json(&["--target-id", SIDECAR]);
    assert_eq!(code, Some(3), "{refusal}");
    let error = refusal["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "PID 1 belongs to container {APP}, not to container {SIDECAR}"
        )),
        "{error}"
    );
    assert_eq!(refusal["candidates"][0]["pid"], 1);
}

#[test]
fn pid_1_stays_the_target_when_its_cgroup_shows_no_id() {
    if skip() {
        return;
    }
    let pod = Pod::own("noid", None);
    let (code, target) = pod.target_json(&["--target-id", APP]);
    assert_eq!(code, Some(0), "{target}");
    assert_eq!(target["pid"], 1);
    assert_eq!(target["method"], "pid1");
    assert_eq!(target["container_id"], Value::Null);
}

#[test]
fn hold_points_the_link_at_the_target_when_it_starts() {
    if skip() {
        return;
    }
    let (pod, _sidecar, app) = two_containers("hold");
    let out = pod.output(&["hold", "--target-id", APP, "--ttl", "1s", "--idle", "0"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&format!(
            "target: pid {app}, container {APP}, found by cgroup"
        )),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        pod.target_link(),
        Some(PathBuf::from(format!("/proc/{app}/root")))
    );

    // A target it cannot identify is logged with the candidates; hold still runs.
    let out = pod.output(&["hold", "--ttl", "1s", "--idle", "0"]);
    assert!(out.status.success());
    let log = stderr_of(&out);
    assert!(
        log.contains("target not identified") && log.contains("--target-pid"),
        "{log}"
    );
    assert!(log.contains("exiting: ttl"), "{log}");
}
