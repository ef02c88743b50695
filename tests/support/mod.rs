//! What the plugin's integration tests share: a sandbox cluster with our `base` debug image
//! registered, pods and namespaces made with kube-rs, the real plugin binary run against it,
//! and waits with deadlines (every wait here ends; a hanging test is a failing test).
//!
//! The sandbox is a test double of the control plane (see docs/sandbox.md); the containers,
//! their uids, capabilities and PID namespaces are real (runc).

#![allow(dead_code)] // each test file uses a different part of this

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_kubectl-distroless_debug");
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const NONROOT_APP: &str = "sandbox.local/distroless-app:nonroot";
pub const ROOT_APP: &str = "sandbox.local/distroless-app:root";

/// RBAC of a user `carol` (token `carol-token`) who may attach to pods but not exec into them.
pub const ATTACH_ONLY: &str = r#"
users:
  - name: carol
    token: carol-token
    rules:
      - verbs: [get, list, watch]
        resources: [pods]
      - verbs: [patch]
        resources: [pods/ephemeralcontainers]
      - verbs: [create, get]
        resources: [pods/attach]
"#;

pub fn base_image_ref() -> String {
    format!("ghcr.io/kubectl-distroless-debug/base:{VERSION}")
}

/// The cargo target directory this test binary was built in.
fn target_dir() -> PathBuf {
    let bin = Path::new(BIN);
    bin.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir)
}

/// Our `base` image as a directory, built once per test process by debug-images/build-local.sh.
/// The agent is built in its own target directory: the outer `cargo test` holds the lock on
/// ours.
pub fn base_image_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let images = target_dir().join("test-images");
        // Test processes build images named after their pid (`base-PID`, `go-app-PID`);
        // those of processes that have ended are left over from earlier runs, and would pile
        // up run after run.
        for entry in std::fs::read_dir(&images).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let ended = name
                .rsplit_once('-')
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if ended {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let out = images.join(format!("base-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = std::process::Command::new("bash")
            .arg(root.join("debug-images/build-local.sh"))
            .arg("base")
            .arg(&out)
            .env("CARGO_TARGET_DIR", target_dir().join("test-agent"))
            .current_dir(root)
            .status();
        match status {
            Ok(s) if s.success() => out,
            other => panic!("debug-images/build-local.sh base failed: {other:?}"),
        }
    })
    .clone()
}

/// None (after printing why) when this machine cannot run the sandbox node; under CI=true
/// that is a failure instead (kube_sandbox::skip_without_node panics).
pub async fn cluster() -> Option<TestCluster> {
    cluster_with(SandboxOptions::default()).await
}

pub async fn cluster_with(options: SandboxOptions) -> Option<TestCluster> {
    if options.node && kube_sandbox::skip_without_node() {
        return None;
    }
    let node = options.node;
    let sb = Sandbox::start(options).await.expect("the sandbox starts");
    if node {
        let dir = base_image_dir();
        sb.register_image_dir(&base_image_ref(), &dir)
            .expect("register the base image");
    }
    let client = client_for(sb.kubeconfig_path()).await;
    Some(TestCluster { sb, client })
}

pub async fn client_for(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("the sandbox's kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a client config");
    Client::try_from(config).expect("a client")
}

/// A container securityContext running as uid:gid with nothing more (restricted-compliant
/// for a non-root uid).
fn least_privilege((uid, gid): (i64, i64)) -> Value {
    json!({ "runAsUser": uid, "runAsGroup": gid, "runAsNonRoot": uid != 0,
            "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] },
            "seccompProfile": { "type": "RuntimeDefault" } })
}

pub struct TestCluster {
    pub sb: Sandbox,
    pub client: Client,
}

/// One run of the plugin: how it ended, what it printed, how long it took.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    fn from(output: Output, took: Duration) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took,
        }
    }
}

impl TestCluster {
    /// Spawns the plugin with `args`, a session whose command prints `started` first, and
    /// returns once it has: the command is running in the debug container. Its stdout and
    /// stderr are piped (stderr for the caller to read).
    pub async fn started_session(&self, args: &[&str]) -> tokio::process::Child {
        let mut plugin = self.plugin(args);
        plugin
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = plugin.spawn().expect("a session starts");
        assert_eq!(
            first_line(&mut child, Duration::from_secs(90))
                .await
                .as_deref(),
            Some("started")
        );
        child
    }

    /// The plugin, pointed at this cluster, stdin closed, no colour.
    pub fn plugin(&self, args: &[&str]) -> tokio::process::Command {
        self.plugin_with_kubeconfig(self.sb.kubeconfig_path(), args)
    }

    pub fn plugin_with_kubeconfig(
        &self,
        kubeconfig: &Path,
        args: &[&str],
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("NO_COLOR", "1")
            .env_remove("DISTROLESS_DEBUG_REGISTRY")
            // No config file of the machine's user (a mirror, `toolkit: auto`) leaks in.
            .env(
                "XDG_CONFIG_HOME",
                "/nonexistent/kubectl-distroless-debug-tests",
            )
            // Recordings go to this cluster's directory, not the machine user's.
            .env("XDG_STATE_HOME", self.state_home())
            // So does the cache of which container a pod's last session used.
            .env("XDG_CACHE_HOME", self.cache_home())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// The `$XDG_STATE_HOME` of the plugin's runs: recordings land under it.
    pub fn state_home(&self) -> PathBuf {
        self.sb.dir().join("state")
    }

    /// The `$XDG_CACHE_HOME` of the plugin's runs (session/reuse_cache.rs).
    pub fn cache_home(&self) -> PathBuf {
        self.sb.dir().join("cache")
    }

    /// Runs the plugin to the end, within `limit`.
    pub async fn run(&self, args: &[&str], limit: Duration) -> Run {
        run_command(self.plugin(args), limit).await
    }

    pub async fn namespace(&self, name: &str, enforce: Option<&str>) {
        let labels = enforce.map(|level| json!({ "pod-security.kubernetes.io/enforce": level }));
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": labels.unwrap_or(json!({})) }
        }))
        .expect("a namespace");
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &ns)
            .await
            .expect("create the namespace");
    }

    pub fn pods(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// A pod of one container `app` running `image`, as uid:gid when given.
    pub async fn app_pod(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        user: Option<(i64, i64)>,
    ) {
        let security = user.map(least_privilege);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "app": name } },
            "spec": { "containers": [{ "name": "app", "image": image, "securityContext": security }] }
        }))
        .expect("a pod");
        self.pods(namespace)
            .create(&PostParams::default(), &pod)
            .await
            .expect("create the pod");
    }

    /// Creates `pod` (a Pod manifest as JSON) in `namespace` and waits until it runs.
    pub async fn create_running(&self, namespace: &str, pod: Value) {
        let pod: Pod = serde_json::from_value(pod).expect("a pod");
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.pods(namespace)
            .create(&PostParams::default(), &pod)
            .await
            .expect("create the pod");
        self.wait_for(
            &format!("pod {name} Running"),
            Duration::from_secs(30),
            async || self.pod_json(namespace, &name).await["status"]["phase"] == "Running",
        )
        .await;
    }

    pub async fn running_app(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        user: Option<(i64, i64)>,
    ) {
        self.app_pod(namespace, name, image, user).await;
        self.wait_for(
            &format!("pod {name} Running"),
            Duration::from_secs(30),
            async || self.pod_json(namespace, name).await["status"]["phase"] == "Running",
        )
        .await;
    }

    /// A pod whose container `app` runs the sandbox's crashing app (it exits 1 with
    /// `sandbox-app: PORT is not set`) with its command in the spec, as uid:gid when given,
    /// restarted until it is in CrashLoopBackOff after a crash.
    pub async fn crash_looping(&self, namespace: &str, name: &str, user: Option<(i64, i64)>) {
        let security = user.map(least_privilege);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "app": name } },
            "spec": {
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "app",
                    "image": kube_sandbox::fixtures::CRASHING_APP,
                    "command": ["/sandbox-app", "require-port"],
                    "securityContext": security
                }]
            }
        }))
        .expect("a pod");
        self.pods(namespace)
            .create(&PostParams::default(), &pod)
            .await
            .expect("create the pod");
        self.wait_for(
            &format!("pod {name} crashing"),
            Duration::from_secs(60),
            async || {
                let pod = self.pod_json(namespace, name).await;
                let status = &pod["status"]["containerStatuses"][0];
                status["lastState"]["terminated"]["exitCode"] == 1
                    && status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            },
        )
        .await;
    }

    /// The names of our `--copy` pods in `namespace` (by their label).
    pub async fn copies(&self, namespace: &str) -> Vec<String> {
        let params = kube::api::ListParams::default().labels("distroless-debug.io/copy=true");
        self.pods(namespace)
            .list(&params)
            .await
            .expect("list the copies")
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    }

    /// No copy of ours left in `namespace` (a deleted one is gone once its containers are).
    pub async fn wait_no_copies(&self, namespace: &str) {
        self.wait_for(
            &format!("no copy left in {namespace}"),
            Duration::from_secs(30),
            async || self.copies(namespace).await.is_empty(),
        )
        .await;
    }

    pub async fn pod_json(&self, namespace: &str, name: &str) -> Value {
        match self.pods(namespace).get(name).await {
            Ok(pod) => serde_json::to_value(pod).unwrap_or_default(),
            Err(_) => Value::Null,
        }
    }

    /// (name, state) of every ephemeral container in the pod, state one of
    /// running/terminated/waiting/none.
    /// The name of the first running debug container of `pod`, once there is one.
    pub async fn running_debug_container(&self, namespace: &str, pod: &str) -> String {
        let mut container = String::new();
        self.wait_for(
            "a running debug container",
            Duration::from_secs(60),
            async || {
                if let Some((name, _)) = self
                    .debug_containers(namespace, pod)
                    .await
                    .into_iter()
                    .find(|(_, state)| state == "running")
                {
                    container = name;
                    return true;
                }
                false
            },
        )
        .await;
        container
    }

    pub async fn debug_containers(&self, namespace: &str, pod: &str) -> Vec<(String, String)> {
        let json = self.pod_json(namespace, pod).await;
        let statuses = json["status"]["ephemeralContainerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        json["spec"]["ephemeralContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default().to_string();
                let state = statuses
                    .iter()
                    .find(|s| s["name"] == name.as_str())
                    .and_then(|s| s["state"].as_object())
                    .and_then(|s| s.keys().next().cloned())
                    .unwrap_or_else(|| "none".into());
                (name, state)
            })
            .collect()
    }

    /// The target container's start time and restart count: unchanged means its process was
    /// never restarted or replaced (teardown never signals it).
    pub async fn target_fingerprint(&self, namespace: &str, pod: &str) -> (String, i64) {
        let json = self.pod_json(namespace, pod).await;
        let status = &json["status"]["containerStatuses"][0];
        (
            status["state"]["running"]["startedAt"]
                .as_str()
                .unwrap_or("not running")
                .to_string(),
            status["restartCount"].as_i64().unwrap_or(-1),
        )
    }

    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl AsyncFnMut() -> bool,
    ) {
        wait_for(what, limit, &mut check).await;
    }

    /// Every debug container of the pod Terminated, within `limit`.
    pub async fn wait_all_terminated(&self, namespace: &str, pod: &str, limit: Duration) {
        self.wait_for(
            &format!("every debug container of {pod} Terminated"),
            limit,
            async || {
                let containers = self.debug_containers(namespace, pod).await;
                !containers.is_empty() && containers.iter().all(|(_, state)| state == "terminated")
            },
        )
        .await;
    }
}

/// SIGKILL, from the host, to the main process of container `id` (`/sandbox-app`): what an
/// OOM kill or a crash does to a target.
pub fn kill_on_host(id: &str) {
    let bare = id.rsplit("://").next().unwrap_or(id);
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if cgroup.contains(bare) && comm.trim() == "sandbox-app" {
            // SAFETY: kill(2) with a pid read from /proc; a process gone meanwhile is ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed += 1;
        }
    }
    assert_eq!(killed, 1, "the target process of {id} on the host");
}

/// The content type of the guarded PATCH a session sends beside its reads on a pod seen
/// before (src/session/presume.rs).
pub const JSON_PATCH: &str = "application/json-patch+json";

/// The PATCHes of the requests, as (content type, status).
pub fn patches(requests: &[kube_sandbox::RequestRecord]) -> Vec<(String, u16)> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.content_type.clone(), r.status))
        .collect()
}

/// A kubeconfig with one context per `(name, cluster)`, the first the current one, each
/// context with its own cluster entry and token user, namespace `default`. `None` stands for a
/// cluster that does not answer: nothing listens on its port. CAs go in files next to `path`.
pub fn write_kubeconfig(path: &Path, contexts: &[(&str, Option<&TestCluster>)]) {
    let (mut clusters, mut users, mut named) = (String::new(), String::new(), String::new());
    for (name, cluster) in contexts {
        let (server, tls, token) = match cluster {
            Some(c) => {
                let ca = path.with_extension(format!("{name}.ca.pem"));
                std::fs::write(&ca, c.sb.ca_pem()).expect("write the CA");
                (
                    c.sb.server_url().to_string(),
                    format!("certificate-authority: {}", ca.display()),
                    c.sb.token().to_string(),
                )
            }
            None => (
                "https://127.0.0.1:1".to_string(),
                "insecure-skip-tls-verify: true".to_string(),
                "unused".to_string(),
            ),
        };
        clusters.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {server}\n    {tls}\n"
        ));
        users.push_str(&format!("- name: {name}\n  user:\n    token: {token}\n"));
        named.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: default\n"
        ));
    }
    let current = contexts.first().map(|(name, _)| *name).unwrap_or_default();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{named}current-context: {current}\n"
    );
    std::fs::write(path, text).expect("write the kubeconfig");
}

pub async fn wait_for(what: &str, limit: Duration, check: &mut impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// The Events created (POST answered 201) in the sandbox's log, once there are `n`: a
/// session's last ones are written by its hand-off after the process has ended
/// (src/session/handoff.rs). A second attempt at the same Event is answered 409, so each
/// counts once.
pub async fn events_created(c: &TestCluster, n: usize) -> usize {
    let created = || {
        c.sb.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/events") && r.status == 201)
            .count()
    };
    wait_for(
        &format!("{n} Events created"),
        Duration::from_secs(30),
        &mut async || created() >= n,
    )
    .await;
    created()
}

pub async fn run_command(mut command: tokio::process::Command, limit: Duration) -> Run {
    let started = Instant::now();
    let output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("the plugin did not end within {limit:?}"))
        .expect("the plugin runs");
    Run::from(output, started.elapsed())
}

/// An HTTP proxy in front of a plain-http sandbox that answers 404 for every path ending in
/// `hidden`, as an API server (or an API gateway) without that subresource does, and forwards
/// everything else. Returns the proxy's URL; it serves until the test ends.
pub async fn proxy_hiding(upstream: &str, hidden: &'static str) -> String {
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    proxied(upstream.clone(), hidden, request)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(client), service)
                    .await;
            });
        }
    });
    url
}

type ProxyReply = hyper::Response<http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>>;

async fn proxied(
    upstream: String,
    hidden: &'static str,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<ProxyReply, std::io::Error> {
    use http_body_util::BodyExt;
    if request.uri().path().ends_with(hidden) {
        let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404,
            "message": "the server could not find the requested resource"});
        let full = http_body_util::Full::new(bytes::Bytes::from(body.to_string()))
            .map_err(|never: std::convert::Infallible| match never {});
        return hyper::Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(http_body_util::combinators::BoxBody::new(full))
            .map_err(std::io::Error::other);
    }
    let stream = tokio::net::TcpStream::connect(&upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    Ok(response.map(http_body_util::combinators::BoxBody::new))
}

/// The newest versioned kubectl of this machine (`kubectl.1.NN` beside the one on PATH) of
/// at least 1.`min`, with its minor version.
pub fn newest_versioned_kubectl(min: u32) -> Option<(u32, PathBuf)> {
    let out = std::process::Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .ok()?;
    let resolved = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dir = resolved.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let minor: u32 = name.strip_prefix("kubectl.1.")?.parse().ok()?;
            (minor >= min).then(|| (minor, dir.join(name)))
        })
        .max()
}

/// The first three fields of /proc/loadavg, for a benchmark to say how busy the machine was.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The second word of each exec's command in the log: the agent's verb (`run`, `stop`...),
/// `-c` for a shell script.
pub fn exec_verbs(requests: &[kube_sandbox::RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/exec"))
        .map(|r| {
            r.query
                .split('&')
                .filter_map(|p| p.strip_prefix("command="))
                .nth(1)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// How many execs in the log stop a debug container: the agent's `stop`, or the teardown's
/// stop-if-unused script (`-c`: the only shell script the plugin execs into a container
/// with our agent).
pub fn stop_execs(requests: &[kube_sandbox::RequestRecord]) -> usize {
    exec_verbs(requests)
        .iter()
        .filter(|verb| *verb == "stop" || *verb == "-c")
        .count()
}

/// `METHOD path` of the requests after the last exec, Events left out: what a teardown after
/// the work sent. Empty when the agent ended the container and the plugin only watched.
pub fn after_the_last_exec(requests: &[kube_sandbox::RequestRecord]) -> Vec<String> {
    let last = requests.iter().rposition(|r| r.path.ends_with("/exec"));
    requests[last.map_or(0, |at| at + 1)..]
        .iter()
        .filter(|r| !r.path.ends_with("/events"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// The log of a command whose last exec ended its container by itself: no `stop` exec, and
/// after that exec not even a pod read (teardown only watched, or left a reused container
/// to its agent). `what` names the command in the failure.
pub fn assert_no_stop_after_the_work(requests: &[kube_sandbox::RequestRecord], what: &str) {
    assert_eq!(stop_execs(requests), 0, "{what}: {requests:#?}");
    assert_eq!(
        after_the_last_exec(requests),
        Vec::<String>::new(),
        "{what}: not even a pod read"
    );
}

/// The agent verbs in the log's execs that ran with `--end-container` right after them
/// (`cp`'s `tar` is the command of an agent `run`, so it is not the second word).
pub fn verbs_ending_the_container(requests: &[kube_sandbox::RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/exec"))
        .filter_map(|r| {
            let words: Vec<&str> = r
                .query
                .split('&')
                .filter_map(|p| p.strip_prefix("command="))
                .collect();
            words
                .windows(2)
                .find(|w| w[1] == "--end-container")
                .map(|w| w[0].to_string())
        })
        .collect()
}

/// Sends `signal` to `child`, which must still be running (not reaped).
pub fn send(child: &tokio::process::Child, signal: i32) {
    let pid = child.id().expect("a running child") as i32;
    // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill {pid} {signal}");
}

/// The first line `child` writes to its (piped) stdout, within `limit`; the rest of its
/// stdout is dropped.
pub async fn first_line(child: &mut tokio::process::Child, limit: Duration) -> Option<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    tokio::time::timeout(limit, lines.next_line())
        .await
        .expect("a first line in time")
        .ok()
        .flatten()
}

/// `child`'s exit code (None: killed by a signal), once it ends within `limit`.
pub async fn exit_code(child: &mut tokio::process::Child, limit: Duration) -> Option<i32> {
    tokio::time::timeout(limit, child.wait())
        .await
        .expect("the plugin ends in time")
        .expect("its status")
        .code()
}
