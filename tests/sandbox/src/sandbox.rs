//! The library handle: start a sandbox (API server, and optionally the runc node), hand out
//! its kubeconfig and a real `kubectl` command, register images, read the request log, set
//! faults, and tear everything down on `shutdown` or drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

use crate::api::audit::{RequestLog, RequestRecord};
use crate::api::auth::Access;
use crate::api::faults::{FaultState, Faults};
use crate::api::server::Server;
use crate::api::sink::StoreSink;
use crate::api::store::Store;
use crate::api::{ApiState, kubeconfig, meta, objects, tls};
use crate::node::{CRASHING_APP, ImageConfig, Node, register_builtin_images};
use crate::registry::{Registry, RegistryState};
use crate::runtime::{
    BoxRead, Process, Runtime, RuntimeError, SharedRuntime, StatusSink, StreamOptions,
};

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Where the kubeconfig, certificates and node state go; a fresh temporary directory
    /// (removed at shutdown) when `None`.
    pub dir: Option<PathBuf>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// HTTPS with a generated CA (the default); plain http when false.
    pub tls: bool,
    /// RBAC rules (YAML text); everything allowed for one admin token when `None`.
    pub rbac: Option<String>,
    pub faults: Faults,
    /// Run pods with runc (needs root). Without a node pods stay Pending: for API-only tests.
    pub node: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            dir: None,
            port: 0,
            tls: true,
            rbac: None,
            faults: Faults::default(),
            node: true,
        }
    }
}

impl SandboxOptions {
    /// API only: no node, pods stay Pending.
    pub fn api_only() -> SandboxOptions {
        SandboxOptions {
            node: false,
            ..SandboxOptions::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("RBAC rules: {0}")]
    Rbac(String),
    #[error("starting the node: {0}")]
    Node(String),
}

/// Where the registry endpoint serves the crashing app (`HOST/` before it).
pub const REGISTRY_CRASHING_APP: &str = "distroless/crashing-app:v1";

/// A running sandbox cluster.
pub struct Sandbox {
    dir: PathBuf,
    remove_dir: bool,
    kubeconfig: PathBuf,
    server_url: String,
    token: String,
    ca_pem: String,
    state: Arc<ApiState>,
    server: Option<Server>,
    node: Option<NodeHandle>,
    /// The read-only OCI distribution endpoint (`None` once stopped).
    registry: std::sync::Mutex<Option<Registry>>,
    registry_host: String,
    registry_state: Arc<RegistryState>,
    /// The sandbox's own runtime: the server and the node run on it, so they keep working
    /// whatever the caller's runtime does (a current-thread test runtime blocked in `Drop`
    /// included).
    runtime: Option<tokio::runtime::Runtime>,
}

/// The node as the sandbox holds it.
struct NodeHandle {
    node: Arc<Node>,
    runtime: SharedRuntime,
}

/// Whether this machine can run the node (root and runc). `Err` says what is missing.
pub fn node_prerequisites() -> Result<(), String> {
    crate::node::prerequisites()?;
    if !Path::new("/bin/busybox").is_file() {
        return Err("/bin/busybox is missing: install busybox-static (./tests/run.sh does)".into());
    }
    Ok(())
}

/// For tests that need the node: `true` means skip (the reason is printed). Under `CI=true`
/// a missing prerequisite is a failure instead.
pub fn skip_without_node() -> bool {
    match node_prerequisites() {
        Ok(()) => false,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("sandbox node prerequisites missing under CI: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason}");
            true
        }
    }
}

impl Sandbox {
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kube-sandbox")
            .enable_all()
            .build()
            .map_err(|source| SandboxError::Dir {
                path: PathBuf::from("(runtime)"),
                source,
            })?;
        let started = runtime.spawn(Sandbox::start_on_own_runtime(opts)).await;
        match started {
            Ok(Ok(mut sb)) => {
                sb.runtime = Some(runtime);
                Ok(sb)
            }
            Ok(Err(e)) => {
                runtime.shutdown_background();
                Err(e)
            }
            Err(join) => {
                runtime.shutdown_background();
                Err(SandboxError::Node(format!(
                    "starting the sandbox panicked: {join}"
                )))
            }
        }
    }

    async fn start_on_own_runtime(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let (dir, remove_dir) = match &opts.dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!("kube-sandbox-{}", meta::random_hex(6))),
                true,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(|source| SandboxError::Dir {
            path: dir.clone(),
            source,
        })?;
        let started = Sandbox::start_in(dir.clone(), remove_dir, opts).await;
        if started.is_err() && remove_dir {
            let _ = std::fs::remove_dir_all(&dir);
        }
        started
    }

    async fn start_in(
        dir: PathBuf,
        remove_dir: bool,
        opts: SandboxOptions,
    ) -> Result<Sandbox, SandboxError> {
        let access = match &opts.rbac {
            Some(yaml) => Access::from_rules_yaml(yaml).map_err(SandboxError::Rbac)?,
            None => Access::allow_all(),
        };
        let serving = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(|source| SandboxError::Bind {
                port: opts.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            port: opts.port,
            source,
        })?;

        let store = Arc::new(Store::new());
        let faults = Arc::new(FaultState::new(opts.faults.clone()));
        let sink: Arc<dyn StatusSink> = Arc::new(StoreSink {
            store: store.clone(),
        });
        let node = if opts.node {
            Some(start_node(&dir, sink, &faults).await?)
        } else {
            None
        };
        let runtime = node
            .as_ref()
            .map(|n| n.runtime.clone())
            .unwrap_or_else(|| Arc::new(NoNode));
        let state = Arc::new(ApiState {
            store,
            runtime,
            access,
            faults,
            log: RequestLog::default(),
            server_address: addr.to_string(),
        });
        objects::bootstrap(&state);
        let scheme = if opts.tls { "https" } else { "http" };
        let server_url = format!("{scheme}://{addr}");
        let token = state.access.admin_token().to_string();
        let ca_pem = serving
            .as_ref()
            .map(|s| s.ca_pem.clone())
            .unwrap_or_default();
        let server = Server::spawn(listener, serving.map(|s| s.config), state.clone()).map_err(
            |source| SandboxError::Bind {
                port: opts.port,
                source,
            },
        )?;
        let registry_state = Arc::new(RegistryState::default());
        let registry = Registry::start(
            node.as_ref().map(|n| n.node.clone()),
            registry_state.clone(),
        )
        .await
        .map_err(|source| SandboxError::Bind { port: 0, source })?;
        let registry_host = registry.addr.to_string();
        if let Some(n) = &node {
            let images = n.node.images();
            if let Some(app) = images.get(CRASHING_APP) {
                images.register_dir(
                    &format!("{registry_host}/{REGISTRY_CRASHING_APP}"),
                    app.rootfs.clone(),
                    app.config.clone(),
                );
            }
        }
        let kubeconfig = dir.join("kubeconfig");
        let text = kubeconfig::render(
            &server_url,
            opts.tls.then_some(ca_pem.as_str()),
            &token,
            &state.access.admin_user(),
        );
        std::fs::write(&kubeconfig, text).map_err(|source| SandboxError::Dir {
            path: kubeconfig.clone(),
            source,
        })?;
        Ok(Sandbox {
            dir,
            remove_dir,
            kubeconfig,
            server_url,
            token,
            ca_pem,
            state,
            server: Some(server),
            node,
            registry: std::sync::Mutex::new(Some(registry)),
            registry_host,
            registry_state,
            runtime: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/kubeconfig`: cluster `sandbox` (CA inline), the admin token, namespace `default`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Write a kubeconfig for another token (an RBAC user) to `path`.
    pub fn write_kubeconfig_for(
        &self,
        token: &str,
        user: &str,
        path: &Path,
    ) -> std::io::Result<()> {
        let ca = (!self.ca_pem.is_empty()).then_some(self.ca_pem.as_str());
        std::fs::write(path, kubeconfig::render(&self.server_url, ca, token, user))
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate (PEM); empty for a plain-http sandbox.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The real kubectl (`KUBECTL` env, else `kubectl` on PATH) with `KUBECONFIG` set.
    pub fn kubectl(&self) -> Command {
        let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        self.kubectl_at(Path::new(&bin))
    }

    /// A specific kubectl binary with `KUBECONFIG` set.
    pub fn kubectl_at(&self, binary: &Path) -> Command {
        let mut cmd = Command::new(binary);
        cmd.env("KUBECONFIG", &self.kubeconfig);
        // kubectl caches discovery and OpenAPI per host:port; ports are reused across
        // sandboxes, so each sandbox gets its own cache.
        cmd.env("KUBECACHEDIR", self.dir.join("kube-cache"));
        cmd.env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    /// Register an image from a root filesystem directory and its config (a sandbox without
    /// a node ignores images).
    pub fn register_image(&self, reference: &str, rootfs: PathBuf, config: ImageConfig) {
        if let Some(n) = &self.node {
            n.node.images().register_dir(reference, rootfs, config);
        }
    }

    /// Register `DIR/rootfs` + `DIR/config.json` (an OCI image config) under `reference`.
    pub fn register_image_dir(&self, reference: &str, dir: &Path) -> Result<(), RuntimeError> {
        match &self.node {
            Some(n) => n.node.images().register_image_dir(reference, dir),
            None => Ok(()),
        }
    }

    /// `127.0.0.1:PORT`, the host of the sandbox's registry endpoint (plain HTTP): an image
    /// registered as `HOST/NAME:TAG` is served there as `NAME:TAG` (docs/sandbox.md).
    pub fn registry_host(&self) -> &str {
        &self.registry_host
    }

    /// Registers the image `from` (e.g. [`crate::fixtures::CRASHING_APP`]) again as
    /// `HOST/NAME_TAG` on the registry's host, so that a pod can name it and the registry
    /// serves its manifest and config; returns that reference. `None` without a node or an
    /// image `from`.
    pub fn publish_image(&self, name_tag: &str, from: &str) -> Option<String> {
        let images = self.node.as_ref()?.node.images();
        let image = images.get(from)?;
        let reference = format!("{}/{name_tag}", self.registry_host);
        images.register_dir(&reference, image.rootfs.clone(), image.config.clone());
        Some(reference)
    }

    /// The crashing app as the registry serves it: `HOST/distroless/crashing-app:v1`
    /// (its command only in the image config).
    pub fn registry_crashing_app(&self) -> String {
        format!("{}/{REGISTRY_CRASHING_APP}", self.registry_host)
    }

    /// `METHOD PATH` of every request the registry endpoint has answered.
    pub fn registry_requests(&self) -> Vec<String> {
        self.registry_state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// From now on the registry answers only requests with these HTTP Basic credentials
    /// (401 with `WWW-Authenticate: Basic realm="kube-sandbox registry"` otherwise), as a
    /// private registry does; `None` makes it anonymous again.
    pub fn require_registry_credentials(&self, credentials: Option<(&str, &str)>) {
        *self
            .registry_state
            .credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            credentials.map(|(u, p)| (u.to_string(), p.to_string()));
    }

    /// The fault "registry unreachable": closes the endpoint's port for good; connections
    /// are refused from then on (the images stay registered on the node).
    pub async fn stop_registry(&self) {
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(registry), Some(rt)) = (registry, &self.runtime) {
            let _ = rt.spawn(registry.stop()).await;
        }
    }

    /// The node, when the sandbox runs one (tests read container pids and the runc root).
    pub fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref().map(|n| &n.node)
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.log.records()
    }

    pub fn clear_requests(&self) {
        self.state.log.clear()
    }

    pub fn faults(&self) -> Faults {
        self.state.faults.get()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.faults.set(faults)
    }

    /// Stop the server and the node, and remove everything the sandbox made.
    pub async fn shutdown(mut self) {
        let teardown = self.teardown();
        // The runtime stays in `self` while this awaits: if the caller drops this future,
        // `Drop` still finds it and finishes the job.
        if let Some(rt) = &self.runtime {
            let _ = rt.spawn(teardown).await;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        self.remove_dir();
    }

    /// Stopping the server and the node, to run on the sandbox's runtime.
    fn teardown(&mut self) -> impl Future<Output = ()> + Send + 'static {
        let server = self.server.take();
        let node = self.node.take();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        async move {
            if let Some(server) = server {
                server.stop().await;
            }
            if let Some(registry) = registry {
                registry.stop().await;
            }
            if let Some(node) = node {
                node.runtime.shutdown().await;
            }
        }
    }

    fn remove_dir(&self) {
        if self.remove_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Sandbox {
    /// A sandbox dropped without `shutdown` still stops everything: the teardown runs to
    /// completion on the sandbox's own runtime, from a plain thread (the caller may be inside
    /// an async context where blocking on a runtime is not allowed).
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            let teardown = self.teardown();
            let joined = std::thread::spawn(move || {
                rt.block_on(teardown);
                rt.shutdown_background();
            })
            .join();
            let _ = joined;
        }
        self.remove_dir();
    }
}

async fn start_node(
    dir: &Path,
    sink: Arc<dyn StatusSink>,
    faults: &FaultState,
) -> Result<NodeHandle, SandboxError> {
    let node = Node::new(dir.join("node"), sink, faults.node.clone())
        .map_err(|e| SandboxError::Node(e.to_string()))?;
    let images = dir.join("images");
    // Building the images copies files and may build the static app: off the async workers.
    let store_node = node.clone();
    tokio::task::spawn_blocking(move || register_builtin_images(store_node.images(), &images))
        .await
        .map_err(|e| SandboxError::Node(e.to_string()))?
        .map_err(|e| SandboxError::Node(format!("built-in images: {e}")))?;
    let runtime: SharedRuntime = node.clone();
    Ok(NodeHandle { node, runtime })
}

/// The runtime of a sandbox without a node: pods are accepted and stay Pending.
struct NoNode;

const NO_NODE: &str = "the sandbox runs without a node: no container is running";

impl Runtime for NoNode {
    fn run_pod(&self, _pod: Pod) {}

    fn run_ephemeral(&self, _pod: Pod, _name: String) {}

    fn delete_pod(&self, _ns: String, _name: String, _grace: Duration) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }

    fn exec(
        &self,
        _ns: String,
        _pod: String,
        _container: String,
        _command: Vec<String>,
        _streams: StreamOptions,
    ) -> BoxFuture<'static, Result<Process, RuntimeError>> {
        async { Err(RuntimeError::NotFound(NO_NODE.into())) }.boxed()
    }

    fn attach(
        &self,
        _ns: String,
        _pod: String,
        _container: String,
        _streams: StreamOptions,
    ) -> BoxFuture<'static, Result<Process, RuntimeError>> {
        async { Err(RuntimeError::NotFound(NO_NODE.into())) }.boxed()
    }

    fn logs(
        &self,
        _ns: String,
        _pod: String,
        _container: String,
        _follow: bool,
        _tail: Option<i64>,
    ) -> BoxFuture<'static, Result<BoxRead, RuntimeError>> {
        async { Err(RuntimeError::NotFound(NO_NODE.into())) }.boxed()
    }

    fn previous_logs(
        &self,
        _ns: String,
        _pod: String,
        _container: String,
        _tail: Option<i64>,
    ) -> BoxFuture<'static, Result<BoxRead, RuntimeError>> {
        async { Err(RuntimeError::NotFound(NO_NODE.into())) }.boxed()
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        async {}.boxed()
    }
}
