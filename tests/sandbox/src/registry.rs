//! A read-only OCI distribution endpoint for the node's registered images, so that a client
//! can read an image's config (Entrypoint, Cmd, Env, WorkingDir, User) as it would from a
//! real registry, while the node keeps "pulling" from local directories.
//!
//! Plain HTTP on its own 127.0.0.1 port: clients treat `localhost`/`127.0.0.1` registries as
//! insecure (plain HTTP) as Docker and containerd do. It serves the images registered under
//! its own host, `127.0.0.1:PORT/NAME:TAG`: `GET /v2/`, `GET|HEAD /v2/NAME/manifests/REF`
//! (tag or digest; an OCI image manifest), `GET|HEAD /v2/NAME/blobs/DIGEST` (the config,
//! and the one layer: an empty tar, so that the manifest is a complete image). Anonymous
//! unless credentials are required (HTTP Basic, as a `registry:2` with htpasswd asks for
//! them); no pushes, no tag listing. Errors are the distribution spec's JSON bodies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::node::{ImageConfig, Node, sha256_hex};

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// The one layer of every served image: an empty tar archive (two zero blocks).
const EMPTY_LAYER: [u8; 1024] = [0; 1024];

/// The running endpoint; `stop` closes its port (connections are refused from then on).
pub struct Registry {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What the sandbox's handle shares with the running endpoint.
#[derive(Default)]
pub struct RegistryState {
    /// `METHOD PATH` per request answered, for tests to assert on.
    pub log: Mutex<Vec<String>>,
    /// Basic credentials every request must carry; anonymous when `None`.
    pub credentials: Mutex<Option<(String, String)>>,
}

/// Whether a request with `authorization` (the header's value) may read the registry.
pub fn authorized(credentials: Option<&(String, String)>, authorization: Option<&str>) -> bool {
    use base64::Engine;
    let Some((user, password)) = credentials else {
        return true;
    };
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .is_some_and(|given| given.trim() == expected)
}

impl Registry {
    pub async fn start(
        node: Option<Arc<Node>>,
        shared: Arc<RegistryState>,
    ) -> std::io::Result<Registry> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let host = addr.to_string();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    _ = stopped.changed() => break,
                    a = listener.accept() => a,
                };
                while connections.try_join_next().is_some() {}
                let Ok((stream, _)) = accepted else { continue };
                let (node, host, shared) = (node.clone(), host.clone(), shared.clone());
                connections.spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let line = format!("{} {}", req.method(), req.uri().path());
                        lock(&shared.log).push(line);
                        let authorization = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok());
                        let resp = if authorized(lock(&shared.credentials).as_ref(), authorization)
                        {
                            serve(node.as_deref(), &host, req.method(), req.uri().path())
                        } else {
                            unauthorized()
                        };
                        async move { Ok::<_, Infallible>(resp) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            connections.abort_all();
        });
        Ok(Registry { addr, stop, task })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// An image as the endpoint serves it: its manifest and blobs, with their digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The OCI image config and manifest of an image with `config`: what `docker push` of
/// that image would have stored (one empty layer).
pub fn served_image(config: &ImageConfig) -> Served {
    let layer_digest = digest_of(&EMPTY_LAYER);
    let mut doc = config.to_oci_json();
    doc["rootfs"]["diff_ids"] = json!([layer_digest]);
    let config = serde_json::to_vec(&doc).expect("JSON serializes");
    let config_digest = digest_of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": EMPTY_LAYER.len()}],
    }))
    .expect("JSON serializes");
    Served {
        manifest_digest: digest_of(&manifest),
        manifest,
        config,
        config_digest,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// 401 with the Basic challenge, as a `registry:2` with htpasswd answers.
fn unauthorized() -> Response<Full<Bytes>> {
    let mut resp = error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
        json!(null),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        "Basic realm=\"kube-sandbox registry\""
            .parse()
            .expect("static header"),
    );
    resp
}

/// One of the distribution spec's error bodies.
fn error(status: StatusCode, code: &str, message: &str, detail: Value) -> Response<Full<Bytes>> {
    let body = json!({"errors": [{"code": code, "message": message, "detail": detail}]});
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json; charset=utf-8"
            .parse()
            .expect("static header"),
    );
    resp
}

fn content(
    method: &Method,
    media_type: &str,
    digest: &str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let len = body.len();
    let body = if method == Method::HEAD {
        Vec::new()
    } else {
        body
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        media_type.parse().expect("media type"),
    );
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert("docker-content-digest", digest.parse().expect("digest"));
    resp
}

/// The answer to `method path` for the images of `node` registered under `host`.
pub fn serve(
    node: Option<&Node>,
    host: &str,
    method: &Method,
    path: &str,
) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "The operation is unsupported.",
            json!(null),
        );
    }
    if path == "/v2/" || path == "/v2" {
        let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")));
        resp.headers_mut().insert(
            "docker-distribution-api-version",
            "registry/2.0".parse().expect("static header"),
        );
        return resp;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not found", json!(null));
    };
    let (name, kind, reference) = match rest.rsplit_once("/manifests/") {
        Some((name, reference)) => (name, "manifests", reference),
        None => match rest.rsplit_once("/blobs/") {
            Some((name, digest)) => (name, "blobs", digest),
            None => return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not found", json!(null)),
        },
    };
    // The images of repository NAME, by tag.
    let prefix = format!("{host}/{name}:");
    let images: Vec<(String, Served)> = match node {
        Some(node) => {
            let store = node.images();
            store
                .references()
                .into_iter()
                .filter_map(|r| {
                    let tag = r.strip_prefix(&prefix)?.to_string();
                    store.get(&r).map(|i| (tag, served_image(&i.config)))
                })
                .collect()
        }
        None => Vec::new(),
    };
    if images.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
            json!({ "name": name }),
        );
    }
    if kind == "manifests" {
        let found = images
            .iter()
            .find(|(tag, s)| tag == reference || s.manifest_digest == reference);
        return match found {
            Some((_, s)) => content(
                method,
                MANIFEST_TYPE,
                &s.manifest_digest,
                s.manifest.clone(),
            ),
            None => {
                let detail = if reference.starts_with("sha256:") {
                    json!({ "Digest": reference })
                } else {
                    json!({ "Tag": reference })
                };
                error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                    detail,
                )
            }
        };
    }
    if reference == digest_of(&EMPTY_LAYER) {
        return content(method, LAYER_TYPE, reference, EMPTY_LAYER.to_vec());
    }
    match images.iter().find(|(_, s)| s.config_digest == reference) {
        Some((_, s)) => content(method, CONFIG_TYPE, &s.config_digest, s.config.clone()),
        None => error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            json!(reference),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_the_config_by_its_digest_and_size() {
        let config = ImageConfig {
            user: Some("65532".into()),
            entrypoint: vec!["/app".into()],
            cmd: vec!["serve".into()],
            env: vec!["PATH=/bin".into()],
            working_dir: Some("/srv".into()),
        };
        let served = served_image(&config);
        let manifest: Value = serde_json::from_slice(&served.manifest).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_TYPE);
        assert_eq!(manifest["config"]["digest"], served.config_digest);
        assert_eq!(manifest["config"]["size"], served.config.len());
        assert_eq!(served.config_digest, digest_of(&served.config));
        assert_eq!(served.manifest_digest, digest_of(&served.manifest));
        let doc: Value = serde_json::from_slice(&served.config).unwrap();
        assert_eq!(ImageConfig::from_oci_json(&doc), config);
        assert_eq!(
            doc["rootfs"]["diff_ids"][0],
            manifest["layers"][0]["digest"]
        );
        // Deterministic: the same config is the same digest.
        assert_eq!(served_image(&config), served);
    }

    #[test]
    fn unknown_names_and_writes_get_the_spec_errors() {
        let resp = serve(
            None,
            "127.0.0.1:5000",
            &Method::GET,
            "/v2/team/app/manifests/v1",
        );
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = serve(
            None,
            "127.0.0.1:5000",
            &Method::PUT,
            "/v2/team/app/manifests/v1",
        );
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        let resp = serve(None, "127.0.0.1:5000", &Method::GET, "/v2/");
        assert_eq!(resp.status(), StatusCode::OK);
    }

    #[test]
    fn basic_credentials_are_checked_only_when_required() {
        let creds = ("puller".to_string(), "s3cret".to_string());
        // base64("puller:s3cret")
        let good = "Basic cHVsbGVyOnMzY3JldA==";
        assert!(authorized(None, None));
        assert!(authorized(Some(&creds), Some(good)));
        assert!(!authorized(Some(&creds), None));
        assert!(!authorized(Some(&creds), Some("Basic cHVsbGVyOndyb25n")));
        assert!(!authorized(
            Some(&creds),
            Some("Bearer cHVsbGVyOnMzY3JldA==")
        ));
    }
}
