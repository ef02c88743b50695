//! The sandbox node against real runc and the real kernel, with a recording status sink in
//! place of the API server. Needs root and runc: skipped (or failing under CI=true) without.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{EphemeralContainer, Pod, PodStatus};
use kube_sandbox::node::{Node, register_builtin_images};
use kube_sandbox::runtime::{
    NodeFaults, Process, ProcessExit, Runtime, StatusSink, StreamOptions, TerminalSize,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Recorder {
    statuses: Mutex<HashMap<String, PodStatus>>,
    events: Mutex<Vec<Event>>,
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
struct Event {
    pod: String,
    type_: String,
    reason: String,
    message: String,
    field: Option<String>,
}

impl StatusSink for Recorder {
    fn update_status(&self, _ns: &str, name: &str, update: &mut dyn FnMut(&mut PodStatus)) {
        let mut all = self.statuses.lock().unwrap();
        update(all.entry(name.to_string()).or_default());
    }
    fn event(
        &self,
        _ns: &str,
        name: &str,
        type_: &str,
        reason: &str,
        message: &str,
        field: Option<&str>,
    ) {
        self.events.lock().unwrap().push(Event {
            pod: name.into(),
            type_: type_.into(),
            reason: reason.into(),
            message: message.into(),
            field: field.map(String::from),
        });
    }
}

impl Recorder {
    fn status(&self, pod: &str) -> PodStatus {
        self.statuses
            .lock()
            .unwrap()
            .get(pod)
            .cloned()
            .unwrap_or_default()
    }
    fn events(&self, pod: &str) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.pod == pod)
            .cloned()
            .collect()
    }
}

struct Fixture {
    node: Arc<Node>,
    sink: Arc<Recorder>,
    faults: Arc<RwLock<NodeFaults>>,
    dir: PathBuf,
}

/// Skip (or fail under CI=true) when the machine cannot run containers.
fn prerequisites_met() -> bool {
    match kube_sandbox::node::prerequisites() {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => panic!("{reason}"),
        Err(reason) => {
            eprintln!("skipping: {reason}");
            false
        }
    }
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("node-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = Arc::new(Recorder::default());
    let faults = Arc::new(RwLock::new(NodeFaults::default()));
    let node = Node::new(dir.join("state"), sink.clone(), faults.clone()).expect("node");
    register_builtin_images(node.images(), &dir.join("images")).expect("built-in images");
    Fixture {
        node,
        sink,
        faults,
        dir,
    }
}

impl Fixture {
    /// `exec` in a container of a pod in `default`, as `pods/exec` asks the node.
    async fn exec(
        &self,
        pod: &str,
        container: &str,
        argv: &[&str],
        streams: StreamOptions,
    ) -> Process {
        self.node
            .exec(
                "default".into(),
                pod.into(),
                container.into(),
                argv.iter().map(|a| a.to_string()).collect(),
                streams,
            )
            .await
            .unwrap()
    }

    async fn wait_for(&self, pod: &str, what: &str, ok: impl Fn(&PodStatus) -> bool) -> PodStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.sink.status(pod);
            if ok(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {pod}: {what}\nstatus: {status:#?}\nevents: {:#?}",
                    self.sink.events(pod)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_running(&self, pod: &str) -> PodStatus {
        self.wait_for(pod, "Running", |s| s.phase.as_deref() == Some("Running"))
            .await
    }

    async fn finish(self) {
        let state = self.node.state_dir().to_path_buf();
        let runc_root = self.node.runc_root().to_path_buf();
        let running = runc_containers(&runc_root);
        self.node.shutdown().await;
        assert_nothing_left(&state, &runc_root);
        for (id, pid) in running {
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            assert!(
                !cgroup.contains(&id),
                "process {pid} of container {id} is still running"
            );
        }
        drop(self.node);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (id, pid) of every running container in the runc root. A failing `runc list` fails the
/// test: read as "none", it would pass every "nothing left" check.
fn runc_containers(runc_root: &Path) -> Vec<(String, i64)> {
    support::runc_containers(runc_root)
        .into_iter()
        .filter(|(_, pid)| *pid > 0)
        .collect()
}

fn assert_nothing_left(state: &Path, runc_root: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&*state.to_string_lossy()))
        .collect();
    assert!(ours.is_empty(), "mounts left: {ours:?}");
    assert!(!state.exists(), "state dir left: {}", state.display());
    // (`runc list` creates its root directory: look only after checking the state dir.)
    let left = support::runc_containers(runc_root);
    assert!(left.is_empty(), "runc containers left: {left:?}");
    let _ = std::fs::remove_dir_all(state);
}

fn pod(name: &str, yaml_spec: serde_json::Value) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": yaml_spec,
    }))
    .unwrap()
}

fn app_pod(name: &str) -> Pod {
    pod(
        name,
        serde_json::json!({
            "containers": [{"name": "app", "image": "sandbox.local/distroless-app:nonroot"}],
            "terminationGracePeriodSeconds": 5,
        }),
    )
}

async fn read_all(r: Option<kube_sandbox::runtime::BoxRead>) -> String {
    let mut out = Vec::new();
    if let Some(mut r) = r {
        let _ = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut out)).await;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a terminal size on the process's resize channel.
fn resize(p: &Process, width: u16, height: u16) {
    p.resize
        .as_ref()
        .expect("a tty process has a resize channel")
        .send(TerminalSize { width, height })
        .expect("the resize is taken");
}

/// Resizes the terminal of a shell reading its stdin, then runs `script` in it: its output.
async fn resized_then(p: &mut Process, width: u16, height: u16, script: &[u8]) -> String {
    resize(p, width, height);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stdin = p.stdin.take().expect("stdin");
    stdin
        .write_all(script)
        .await
        .expect("the script is written");
    read_all(p.stdout.take()).await
}

fn uid_line(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distroless_app_runs_as_nonroot_and_has_no_shell() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("distroless");
    f.node.run_pod(app_pod("app"));
    let status = f.wait_running("app").await;
    let cs = &status.container_statuses.as_ref().unwrap()[0];
    assert!(cs.ready);
    assert!(
        cs.container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://")
    );
    assert!(
        cs.image_id
            .starts_with("sandbox.local/distroless-app@sha256:"),
        "{}",
        cs.image_id
    );
    let user = cs.user.as_ref().unwrap().linux.as_ref().unwrap();
    assert_eq!((user.uid, user.gid), (65532, 65532));
    assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.1"));

    let pid = f.node.container_pid("default", "app", "app").unwrap();
    assert!(
        uid_line(pid).starts_with("Uid:\t65532\t65532\t65532\t65532"),
        "{}",
        uid_line(pid)
    );

    // The log has the app's lines.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let log = read_all(Some(
        f.node
            .logs("default".into(), "app".into(), "app".into(), false, Some(1))
            .await
            .unwrap(),
    ))
    .await;
    assert!(log.contains("sandbox-app: serving on :8080"), "{log}");
    assert_eq!(log.lines().count(), 1, "{log}");

    // Following the log: new lines arrive, and the stream ends when the pod goes.
    let mut follow = f
        .node
        .logs("default".into(), "app".into(), "app".into(), true, Some(0))
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(3), follow.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("requests="));

    // No shell in a distroless image: runc's own words, as a real node reports them.
    let streams = StreamOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let p = f.exec("app", "app", &["sh"], streams).await;
    assert_eq!(
        p.exit.await.unwrap(),
        ProcessExit::StartFailed(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"sh\": executable file not found in $PATH: unknown".into()
        )
    );

    let events = f.sink.events("app");
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["Pulling", "Pulled", "Created", "Started"],
        "{events:#?}"
    );
    assert!(
        events[1]
            .message
            .starts_with("Successfully pulled image \"sandbox.local/distroless-app:nonroot\" in ")
    );

    let started = Instant::now();
    f.node
        .delete_pod("default".into(), "app".into(), Duration::from_secs(5))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the app exits on SIGTERM"
    );
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || uid_line(pid).is_empty(),
        "process left"
    );
    assert!(
        f.sink
            .events("app")
            .iter()
            .any(|e| e.reason == "Killing" && e.message == "Stopping container app")
    );
    let rest = tokio::time::timeout(Duration::from_secs(3), async {
        let mut v = Vec::new();
        follow.read_to_end(&mut v).await.map(|_| v)
    });
    assert!(rest.await.is_ok(), "a followed log ends with the container");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_and_without_tty_in_busybox() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("busybox");
    f.node.run_pod(pod("bb", serde_json::json!({
        "containers": [{"name": "bb", "image": "sandbox.local/busybox:latest", "command": ["sleep", "3600"]}],
    })));
    f.wait_running("bb").await;

    // Plain pipes: stdin to cat, its output back, exit code.
    let streams = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let mut p = f.exec("bb", "bb", &["cat"], streams).await;
    let mut stdin = p.stdin.take().unwrap();
    stdin.write_all(b"hello from stdin\n").await.unwrap();
    drop(stdin);
    assert_eq!(read_all(p.stdout.take()).await, "hello from stdin\n");
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(0));

    let streams = StreamOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let mut p = f
        .exec(
            "bb",
            "bb",
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            streams,
        )
        .await;
    assert_eq!(read_all(p.stdout.take()).await, "out\n");
    assert_eq!(read_all(p.stderr.take()).await, "err\n");
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(3));
    // Each exec's start is the node's own measure, as container starts are (the benchmarks'
    // physical limit counts it).
    let starts = f.node.exec_starts();
    assert_eq!(starts.len(), 2, "{starts:?}");
    for (ns, pod, container, took) in &starts {
        assert_eq!(
            (ns.as_str(), pod.as_str(), container.as_str()),
            ("default", "bb", "bb")
        );
        assert!(!took.is_zero());
    }

    // A real pty: size applied by TIOCSWINSZ is what stty sees.
    let streams = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let mut p = f.exec("bb", "bb", &["sh"], streams).await;
    assert!(p.stderr.is_none());
    let out = resized_then(&mut p, 123, 45, b"stty size; tty; exit 7\n").await;
    assert!(out.contains("45 123"), "{out:?}");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(7));

    // The size the client sends first is the pty's size before the process runs.
    let streams = StreamOptions {
        stdin: false,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let mut p = f.exec("bb", "bb", &["stty", "size"], streams).await;
    resize(&p, 91, 19);
    assert_eq!(read_all(p.stdout.take()).await.trim(), "19 91");
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(0));
    // A terminal exec starts after the answer, once the size arrives: not measured.
    assert_eq!(f.node.exec_starts().len(), 2);

    // A missing binary with a tty: the same runtime message.
    let mut p = f.exec("bb", "bb", &["nope"], streams).await;
    assert_eq!(read_all(p.stdout.take()).await, "");
    let exit = p.exit.await.unwrap();
    assert!(
        matches!(&exit, ProcessExit::StartFailed(m) if m.contains("exec: \"nope\": executable file not found in $PATH")),
        "{exit:?}"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_container_sees_target_and_kernel_enforces_ptrace_rules() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("ephemeral");
    let mut app = app_pod("app");
    f.node.run_pod(app.clone());
    f.wait_running("app").await;
    let app_pid = f.node.container_pid("default", "app", "app").unwrap();

    let add = |pod: &mut Pod, name: &str, sc: serde_json::Value| {
        let e: EphemeralContainer = serde_json::from_value(serde_json::json!({
            "name": name,
            "image": "sandbox.local/busybox:latest",
            "targetContainerName": "app",
            "command": ["sh", "-c", "ps -o pid,user,args; id; ls /proc/1/root/etc/app/v2/"],
            "securityContext": sc,
        }))
        .unwrap();
        pod.spec
            .as_mut()
            .unwrap()
            .ephemeral_containers
            .get_or_insert_with(Vec::new)
            .push(e);
    };
    let done = |name: &'static str| {
        move |s: &PodStatus| {
            s.ephemeral_container_statuses.iter().flatten().any(|c| {
                c.name == name && c.state.as_ref().is_some_and(|st| st.terminated.is_some())
            })
        }
    };
    // One after the other: busybox ps gives up when a process vanishes while it reads /proc.
    add(&mut app, "dbg-root", serde_json::json!({}));
    f.node.run_ephemeral(app.clone(), "dbg-root".into());
    let status = f
        .wait_for("app", "dbg-root terminated", done("dbg-root"))
        .await;
    add(
        &mut app,
        "dbg-same",
        serde_json::json!({"runAsUser": 65532, "runAsGroup": 65532}),
    );
    f.node.run_ephemeral(app.clone(), "dbg-same".into());
    f.wait_for("app", "dbg-same terminated", done("dbg-same"))
        .await;
    // When a debug container's main process ends, what was exec'd in it ends too (as
    // containerd kills a container's processes when its init exits in a shared PID
    // namespace) ...
    add(&mut app, "dbg-hold", serde_json::json!({}));
    let last = app
        .spec
        .as_mut()
        .unwrap()
        .ephemeral_containers
        .as_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    last.command = Some(vec!["sleep".into(), "1".into()]);
    f.node.run_ephemeral(app.clone(), "dbg-hold".into());
    f.wait_for("app", "dbg-hold running", |s| {
        s.ephemeral_container_statuses.iter().flatten().any(|c| {
            c.name == "dbg-hold" && c.state.as_ref().is_some_and(|st| st.running.is_some())
        })
    })
    .await;
    let quiet = StreamOptions {
        stdin: false,
        stdout: false,
        stderr: false,
        tty: false,
    };
    let shell = f.exec("app", "dbg-hold", &["sleep", "3600"], quiet).await;
    let held = f
        .wait_for("app", "dbg-hold terminated", done("dbg-hold"))
        .await;
    let id = held
        .ephemeral_container_statuses
        .unwrap()
        .into_iter()
        .find(|c| c.name == "dbg-hold")
        .unwrap()
        .container_id
        .unwrap();
    let id = id.trim_start_matches("containerd://").to_string();
    let exit = tokio::time::timeout(Duration::from_secs(5), shell.exit).await;
    assert!(matches!(exit, Ok(Ok(ProcessExit::Signal(9)))), "{exit:?}");
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(&id)))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.is_empty(),
        "processes of the ended debug container: {left:?}"
    );
    // ... and never touches the target (runc kills only the debug container's cgroup).
    assert_eq!(f.node.container_pid("default", "app", "app"), Some(app_pid));

    let root_log = read_all(Some(
        f.node
            .logs(
                "default".into(),
                "app".into(),
                "dbg-root".into(),
                false,
                None,
            )
            .await
            .unwrap(),
    ))
    .await;
    // The target is PID 1 of the namespace the debug container joined.
    assert!(
        root_log
            .lines()
            .any(|l| l.trim_start().starts_with("1 65532") && l.contains("/sandbox-app")),
        "{root_log}"
    );
    assert!(root_log.contains("uid=0(root)"), "{root_log}");
    assert!(root_log.contains("Permission denied"), "{root_log}");
    let term = status
        .ephemeral_container_statuses
        .unwrap()
        .into_iter()
        .find(|c| c.name == "dbg-root")
        .unwrap()
        .state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((term.exit_code, term.reason.as_deref()), (1, Some("Error")));

    let same_log = read_all(Some(
        f.node
            .logs(
                "default".into(),
                "app".into(),
                "dbg-same".into(),
                false,
                None,
            )
            .await
            .unwrap(),
    ))
    .await;
    assert!(same_log.contains("uid=65532"), "{same_log}");
    assert!(same_log.contains("config.yaml"), "{same_log}");
    assert!(!same_log.contains("Permission denied"), "{same_log}");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_image_backs_off_until_registered() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("pull");
    f.node.run_pod(pod(
        "missing",
        serde_json::json!({
            "containers": [{"name": "c", "image": "sandbox.local/nope:1"}],
        }),
    ));
    f.wait_for("missing", "ImagePullBackOff", |s| {
        s.container_statuses.iter().flatten().any(|c| {
            c.state
                .as_ref()
                .and_then(|st| st.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                == Some("ImagePullBackOff")
        })
    })
    .await;
    let events = f.sink.events("missing");
    let messages: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e.reason, e.message))
        .collect();
    assert!(messages.contains(&"Failed Failed to pull image \"sandbox.local/nope:1\": rpc error: code = NotFound desc = failed to pull and unpack image \"sandbox.local/nope:1\": failed to resolve reference \"sandbox.local/nope:1\": sandbox.local/nope:1: not found".to_string()), "{messages:#?}");
    assert!(messages.contains(&"Failed Error: ErrImagePull".to_string()));
    assert!(
        messages.contains(&"BackOff Back-off pulling image \"sandbox.local/nope:1\"".to_string())
    );
    assert!(messages.contains(&"Failed Error: ImagePullBackOff".to_string()));
    assert_eq!(f.sink.status("missing").phase.as_deref(), Some("Pending"));

    // A pull fault on a present image fails the same way; registering the missing one heals.
    f.faults
        .write()
        .unwrap()
        .fail_pulls
        .push("sandbox.local/distroless-app:nonroot".into());
    let busybox = f.node.images().get("sandbox.local/busybox:latest").unwrap();
    f.node.images().register_dir(
        "sandbox.local/nope:1",
        busybox.rootfs.clone(),
        kube_sandbox::node::ImageConfig {
            cmd: vec!["sleep".into(), "3600".into()],
            ..Default::default()
        },
    );
    f.wait_running("missing").await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_reaches_main_process_stdin_and_pty() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("attach");
    f.node.run_pod(pod(
        "att",
        serde_json::json!({
            "containers": [
                {"name": "pipe", "image": "sandbox.local/busybox:latest", "command": ["cat"],
                 "stdin": true, "stdinOnce": true},
                {"name": "term", "image": "sandbox.local/busybox:latest", "command": ["sh"],
                 "stdin": true, "tty": true},
                {"name": "plain", "image": "sandbox.local/busybox:latest", "command": ["sleep", "3600"]},
                {"name": "quick", "image": "sandbox.local/busybox:latest", "stdin": true, "stdinOnce": true,
                 "command": ["sh", "-c", "echo early; echo late >&2"]},
            ],
            "restartPolicy": "Never",
        }),
    ));
    f.wait_running("att").await;

    // Not configured with stdin: refused like the kubelet refuses it.
    let stdin_only = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };
    assert!(
        f.node
            .attach("default".into(), "att".into(), "plain".into(), stdin_only)
            .await
            .is_err()
    );

    // stdinOnce: the end of the first attach session closes cat's stdin, so cat exits.
    let mut p = f
        .node
        .attach("default".into(), "att".into(), "pipe".into(), stdin_only)
        .await
        .unwrap();
    let mut stdin = p.stdin.take().unwrap();
    stdin.write_all(b"through the pipe\n").await.unwrap();
    drop(stdin);
    assert_eq!(read_all(p.stdout.take()).await, "through the pipe\n");
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(0));
    let log = read_all(Some(
        f.node
            .logs("default".into(), "att".into(), "pipe".into(), false, None)
            .await
            .unwrap(),
    ))
    .await;
    assert_eq!(log, "through the pipe\n");

    // A short command in a stdin container, attached to only after it ended: the first
    // attach still gets its output and exit code.
    f.wait_for("att", "quick ended", |s| {
        s.container_statuses.iter().flatten().any(|c| {
            c.name == "quick" && c.state.as_ref().is_some_and(|st| st.terminated.is_some())
        })
    })
    .await;
    let mut p = f
        .node
        .attach("default".into(), "att".into(), "quick".into(), stdin_only)
        .await
        .unwrap();
    assert_eq!(read_all(p.stdout.take()).await, "early\n");
    assert_eq!(read_all(p.stderr.take()).await, "late\n");
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(0));
    assert!(
        f.node
            .attach("default".into(), "att".into(), "quick".into(), stdin_only)
            .await
            .is_err()
    );

    let tty = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
    };
    let mut p = f
        .node
        .attach("default".into(), "att".into(), "term".into(), tty)
        .await
        .unwrap();
    let out = resized_then(&mut p, 100, 30, b"stty size; exit 4\n").await;
    assert!(out.contains("30 100"), "{out:?}");
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(4));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_process_namespace_has_pause_as_pid_1() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("sharepid");
    f.node.run_pod(pod(
        "shared",
        serde_json::json!({
            "shareProcessNamespace": true,
            "containers": [
                {"name": "app", "image": "sandbox.local/distroless-app:nonroot"},
                {"name": "bb", "image": "sandbox.local/busybox:latest", "command": ["sleep", "3600"],
                 "securityContext": {"readOnlyRootFilesystem": true},
                 "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
            ],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        }),
    ));
    f.wait_running("shared").await;
    let streams = StreamOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let script = "ps -o pid,args; echo $KUBERNETES_SERVICE_HOST; ls /sys/fs/cgroup/memory >/dev/null && echo cgroupfs; touch /sys/fs/cgroup/x 2>&1; touch /x 2>&1; touch /scratch/ok && echo wrote; hostname; cat /etc/hosts | tail -1; wget -qO- http://127.0.0.1:8080/";
    let mut p = f.exec("shared", "bb", &["sh", "-c", script], streams).await;
    let out = read_all(p.stdout.take()).await;
    assert!(out.lines().any(|l| l.trim() == "1 /pause pause"), "{out}");
    assert!(out.contains("/sandbox-app"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("wrote"), "{out}");
    assert!(out.contains("\n10.96.0.1\n"), "{out}");
    assert!(out.contains("cgroupfs"), "{out}");
    assert!(out.contains("\nshared\n"), "{out}");
    assert!(out.contains("127.0.0.1\tshared"), "{out}");
    // Containers of a pod share its network namespace.
    assert!(out.contains("sandbox-app: ok"), "{out}");

    // hostNetwork: the node's network and UTS namespaces.
    f.node.run_pod(pod("hostnet", serde_json::json!({"hostNetwork": true,
        "containers": [{"name": "bb", "image": "sandbox.local/busybox:latest", "command": ["sleep", "3600"]}]})));
    f.wait_running("hostnet").await;
    let mut p = f.exec("hostnet", "bb", &["hostname"], streams).await;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(read_all(p.stdout.take()).await.trim(), host.trim());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_container_restarts_with_back_off() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("crash");
    f.node.run_pod(pod(
        "crash",
        serde_json::json!({
            "containers": [{"name": "c", "image": "sandbox.local/busybox:latest",
                            "command": ["sh", "-c", "echo starting; exit 2"]}],
        }),
    ));
    let status = f
        .wait_for("crash", "CrashLoopBackOff after a restart", |s| {
            s.container_statuses.iter().flatten().any(|c| {
                c.restart_count >= 1
                    && c.state
                        .as_ref()
                        .and_then(|st| st.waiting.as_ref())
                        .and_then(|w| w.reason.as_deref())
                        == Some("CrashLoopBackOff")
            })
        })
        .await;
    let c = &status.container_statuses.unwrap()[0];
    let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (2, Some("Error")));
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(f.sink.events("crash").iter().any(|e| e.reason == "BackOff"
        && e.message == "Back-off restarting failed container c in pod crash_default(uid-crash)"));
    let log = read_all(Some(
        f.node
            .logs("default".into(), "crash".into(), "c".into(), false, None)
            .await
            .unwrap(),
    ))
    .await;
    assert_eq!(log, "starting\n");

    // A command the image does not have: runc's refusal, as containerd reports it.
    f.node.run_pod(pod("nocmd", serde_json::json!({"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "sandbox.local/distroless-app:nonroot", "command": ["sh"]}]})));
    let s = f
        .wait_for("nocmd", "Failed", |s| s.phase.as_deref() == Some("Failed"))
        .await;
    let term = s.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (128, Some("StartError"))
    );
    assert_eq!(
        term.message.as_deref(),
        Some(
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"sh\": executable file not found in $PATH: unknown"
        )
    );

    // restartPolicy Never: the pod ends Failed, OnFailure with success: Succeeded.
    f.node.run_pod(pod(
        "once",
        serde_json::json!({"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "sandbox.local/busybox:latest",
            "command": ["sh", "-c", "echo bad thing >&2; exit 1"],
            "terminationMessagePolicy": "FallbackToLogsOnError"}]}),
    ));
    let s = f
        .wait_for("once", "Failed", |s| s.phase.as_deref() == Some("Failed"))
        .await;
    let term = s.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(term.message.as_deref(), Some("bad thing\n"));
    f.node.run_pod(pod(
        "done",
        serde_json::json!({"restartPolicy": "OnFailure",
        "containers": [{"name": "c", "image": "sandbox.local/busybox:latest",
            "command": ["sh", "-c", "echo finished > /dev/termination-log"]}]}),
    ));
    let s = f
        .wait_for("done", "Succeeded", |s| {
            s.phase.as_deref() == Some("Succeeded")
        })
        .await;
    let term = s.container_statuses.clone().unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(term.message.as_deref(), Some("finished\n"));
    let ready = s
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_config_errors_and_slow_pulls() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("init");
    f.faults.write().unwrap().pull_delay = Duration::from_millis(300);
    let started = Instant::now();
    f.node.run_pod(pod(
        "init",
        serde_json::json!({
            "initContainers": [{"name": "prep", "image": "sandbox.local/busybox:latest",
                "command": ["sh", "-c", "echo prepared > /work/flag"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "containers": [{"name": "main", "image": "sandbox.local/busybox:latest",
                "command": ["sh", "-c", "cat /work/flag; sleep 3600"],
                "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "volumes": [{"name": "work", "emptyDir": {}}],
        }),
    ));
    let status = f.wait_running("init").await;
    // Two pulls of an image with policy Always (":latest"), each slowed by the fault.
    assert!(started.elapsed() >= Duration::from_millis(600));
    let init = &status.init_container_statuses.as_ref().unwrap()[0];
    let done = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (done.exit_code, done.reason.as_deref()),
        (0, Some("Completed"))
    );
    let initialized = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap();
    assert_eq!(initialized.status, "True");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = read_all(Some(
        f.node
            .logs("default".into(), "init".into(), "main".into(), false, None)
            .await
            .unwrap(),
    ))
    .await;
    assert_eq!(log, "prepared\n");
    let pulled = f
        .sink
        .events("init")
        .into_iter()
        .find(|e| e.reason == "Pulled")
        .unwrap();
    // "Successfully pulled image "X" in 301.2ms (301.2ms including waiting). ..." (or "1.2s"
    // on a loaded machine).
    let took = pulled
        .message
        .split(" in ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap();
    let ms: f64 = match took.strip_suffix("ms") {
        Some(ms) => ms.parse().unwrap(),
        None => took.strip_suffix('s').unwrap().parse::<f64>().unwrap() * 1000.0,
    };
    assert!(ms >= 300.0, "{}", pulled.message);

    // runAsNonRoot against an image that runs as root: the kubelet's refusal.
    f.node.run_pod(pod(
        "nonroot",
        serde_json::json!({
            "securityContext": {"runAsNonRoot": true},
            "containers": [{"name": "app", "image": "sandbox.local/distroless-app:root", "imagePullPolicy": "IfNotPresent"}],
        }),
    ));
    let status = f
        .wait_for("nonroot", "CreateContainerConfigError", |s| {
            s.container_statuses.iter().flatten().any(|c| {
                c.state
                    .as_ref()
                    .and_then(|st| st.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CreateContainerConfigError")
            })
        })
        .await;
    let waiting = status.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(
        waiting.message.as_deref(),
        Some(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default(uid-nonroot)\", container: app)"
        )
    );
    assert!(f.sink.events("nonroot").iter().any(|e| {
        e.reason == "Failed"
            && e.message
                .starts_with("Error: container has runAsNonRoot and image will run as root")
    }));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_clears_what_a_dead_one_left() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("stale");
    f.node.run_pod(app_pod("left"));
    f.wait_running("left").await;
    let pid = f.node.container_pid("default", "left", "app").unwrap();
    let state = f.node.state_dir().to_path_buf();

    // As if the first node's process had been killed: a second node on the same directory.
    let again = Node::new(state.clone(), f.sink.clone(), f.faults.clone()).unwrap();
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_or(true, |s| s.contains("State:\tZ"))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone(pid), "the dead node's container still runs");
    assert!(runc_containers(again.runc_root()).is_empty());
    again.shutdown().await;

    // Somebody else's directory is refused, not wiped.
    let foreign = f.dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("precious"), "keep").unwrap();
    assert!(Node::new(foreign.clone(), f.sink.clone(), f.faults.clone()).is_err());
    assert!(foreign.join("precious").exists());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_recreated_under_the_same_name_replaces_the_old_one() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("recreate");
    f.node.run_pod(app_pod("same"));
    f.wait_running("same").await;
    let old_pid = f.node.container_pid("default", "same", "app").unwrap();
    // Delete under way (slow: busybox would ignore SIGTERM; the app does not) while the new
    // pod arrives.
    let deleting = f
        .node
        .delete_pod("default".into(), "same".into(), Duration::from_secs(5));
    let mut again = app_pod("same");
    again.metadata.uid = Some("uid-same-2".into());
    f.node.run_pod(again);
    deleting.await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_pid = loop {
        match f.node.container_pid("default", "same", "app") {
            Some(pid) if pid != old_pid => break pid,
            _ if Instant::now() > deadline => panic!("the new pod never ran"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(uid_line(new_pid).contains("65532"));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_default_seccomp_filters_like_containerd() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("seccomp");
    let sleeper = |name: &str, sc: serde_json::Value| {
        serde_json::json!({"name": name, "image": "sandbox.local/busybox:latest",
            "command": ["sleep", "3600"], "securityContext": sc})
    };
    f.node.run_pod(pod(
        "sec",
        serde_json::json!({"containers": [
            sleeper("filtered", serde_json::json!({"seccompProfile": {"type": "RuntimeDefault"}})),
            sleeper("open", serde_json::json!({})),
        ]}),
    ));
    f.wait_running("sec").await;
    let streams = StreamOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let script = "grep '^Seccomp:' /proc/self/status; unshare -U true 2>&1 && echo userns-ok";
    let run = |c: &'static str| {
        let node = f.node.clone();
        async move {
            let mut p = node
                .exec(
                    "default".into(),
                    "sec".into(),
                    c.into(),
                    vec!["sh".into(), "-c".into(), script.into()],
                    streams,
                )
                .await
                .unwrap();
            let out = read_all(p.stdout.take()).await;
            let _ = p.exit.await;
            out
        }
    };
    let filtered = run("filtered").await;
    assert!(filtered.contains("Seccomp:\t2"), "{filtered}");
    assert!(filtered.contains("Operation not permitted"), "{filtered}");
    let open = run("open").await;
    assert!(open.contains("Seccomp:\t0"), "{open}");
    assert!(open.contains("userns-ok"), "{open}");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_gate_readiness_and_restart_unhealthy_containers() {
    if !prerequisites_met() {
        return;
    }
    let f = fixture("probes");
    f.node.run_pod(pod(
        "probed",
        serde_json::json!({"containers": [
            {"name": "app", "image": "sandbox.local/distroless-app:nonroot",
             "ports": [{"name": "http", "containerPort": 8080}],
             "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
             "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}},
            {"name": "gate", "image": "sandbox.local/busybox:latest", "command": ["sleep", "3600"],
             "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}},
            {"name": "sick", "image": "sandbox.local/busybox:latest", "command": ["sleep", "3600"],
             "livenessProbe": {"exec": {"command": ["sh", "-c", "echo not well; exit 1"]},
                               "periodSeconds": 1, "failureThreshold": 2}},
        ]}),
    ));
    let ready = |name: &'static str| {
        move |s: &PodStatus| {
            s.container_statuses
                .iter()
                .flatten()
                .any(|c| c.name == name && c.ready)
        }
    };
    f.wait_running("probed").await;
    f.wait_for("probed", "app ready by its HTTP probe", ready("app"))
        .await;
    let s = f.sink.status("probed");
    let gate = s
        .container_statuses
        .unwrap()
        .into_iter()
        .find(|c| c.name == "gate")
        .unwrap();
    assert!(!gate.ready, "not ready before its probe passes");
    assert_eq!(
        s.conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .status,
        "False"
    );
    let streams = StreamOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let p = f
        .exec("probed", "gate", &["touch", "/tmp/ready"], streams)
        .await;
    assert_eq!(p.exit.await.unwrap(), ProcessExit::Code(0));
    f.wait_for("probed", "gate ready", ready("gate")).await;

    f.wait_for("probed", "sick restarted", |s| {
        s.container_statuses
            .iter()
            .flatten()
            .any(|c| c.name == "sick" && c.restart_count >= 1)
    })
    .await;
    let events = f.sink.events("probed");
    assert!(
        events
            .iter()
            .any(|e| e.reason == "Unhealthy" && e.message == "Liveness probe failed: not well"),
        "{events:#?}"
    );
    assert!(events.iter().any(|e| e.reason == "Killing"
        && e.message == "Container sick failed liveness probe, will be restarted"));
    // (The app's first probes may fail while it binds its port, as on a real node.)
    f.finish().await;
}

/// Run by `a_process_that_exits_without_shutdown_leaves_nothing` in a child process: start a
/// pod, then exit the process without shutting the node down. Ignored, so that a normal run
/// does not count it as a passing test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_process_that_exits_without_shutdown_leaves_nothing"]
async fn exit_without_shutdown_helper() {
    let dir = std::env::var("NODE_TEST_EXIT_HELPER_DIR").expect(
        "NODE_TEST_EXIT_HELPER_DIR: only a_process_that_exits_without_shutdown_leaves_nothing runs this",
    );
    let dir = PathBuf::from(dir);
    let sink = Arc::new(Recorder::default());
    let node = Node::new(dir.join("state"), sink.clone(), Default::default()).unwrap();
    register_builtin_images(node.images(), &dir.join("images")).unwrap();
    node.run_pod(app_pod("orphan"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.status("orphan").phase.as_deref() != Some("Running") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = node.container_pid("default", "orphan", "app").unwrap();
    println!("APP_PID={pid}");
    std::process::exit(0);
}

#[test]
fn a_process_that_exits_without_shutdown_leaves_nothing() {
    if !prerequisites_met() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("node-test-exit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "exit_without_shutdown_helper",
            "--ignored",
            "--nocapture",
        ])
        .env("NODE_TEST_EXIT_HELPER_DIR", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid: i32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("APP_PID="))
        .unwrap_or_else(|| {
            panic!(
                "helper did not start the app: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .parse()
        .unwrap();
    let state = dir.join("state");
    let alive = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| !s.contains("State:\tZ"));
    assert!(!alive, "the app of a process that exited is still running");
    assert_nothing_left(&state, &state.join("runc"));
    let _ = std::fs::remove_dir_all(&dir);
}
