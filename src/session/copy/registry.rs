//! The image config of the held target, read from its registry over the OCI distribution
//! API (manifest, then config blob; no layer), for when the pod spec does not say how the
//! image starts.
//!
//! The protocol (token auth, media types, manifest lists) is `oci-client`'s. Access is tried
//! in the order a pull would: anonymous, then the user's docker credentials
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, `auths`), then the pod's
//! imagePullSecrets when we may read them. A registry on localhost or 127.0.0.1 is spoken to
//! over plain HTTP, as Docker does; every other over HTTPS. All of it within a few seconds:
//! past that the entrypoint is refused with `--entrypoint` as the way out.

use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::kube::cluster::Cluster;
use crate::session::copy::entrypoint::ImageStart;

/// How long the registry may take, all attempts together.
pub const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);

/// One way to access a registry, and where it comes from (for messages).
#[derive(Clone)]
pub struct Access {
    pub from: String,
    user: String,
    password: String,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Access({}, {})", self.from, self.user)
    }
}

/// A registry host as docker config keys name it, normalised: no scheme, no path, Docker
/// Hub's many names as one.
fn host_of(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// The credentials for `registry` in a docker config (`{"auths": {...}}`) or an old
/// `.dockercfg` (the `auths` map itself): `auth` (base64 of user:password), else `username`
/// and `password`.
pub fn credentials_in(config: &str, registry: &str, from: &str) -> Option<Access> {
    let value: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = value.get("auths").unwrap_or(&value).as_object()?;
    let wanted = host_of(registry);
    let entry = auths.iter().find(|(key, _)| host_of(key) == wanted)?.1;
    let (user, password) = match entry.get("auth").and_then(|a| a.as_str()) {
        Some(auth) if !auth.is_empty() => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, password) = text.split_once(':')?;
            (user.to_string(), password.to_string())
        }
        _ => (
            entry.get("username")?.as_str()?.to_string(),
            entry.get("password")?.as_str()?.to_string(),
        ),
    };
    Some(Access {
        from: from.to_string(),
        user,
        password,
    })
}

/// The user's docker config file's text, if there is one.
pub fn local_docker_config() -> Option<(String, String)> {
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => std::path::PathBuf::from(dir).join("config.json"),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json"),
    };
    let text = std::fs::read_to_string(&path).ok()?;
    Some((path.display().to_string(), text))
}

/// The docker configs of the pod's imagePullSecrets that we may read (a forbidden or missing
/// one is skipped: a pull secret is a way in, not a requirement).
pub async fn pull_secret_configs(cluster: &Cluster, pod: &Pod) -> Vec<(String, String)> {
    let names: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|r| Some(r.name.clone()).filter(|n| !n.is_empty()))
        .collect();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut configs = Vec::new();
    for name in names {
        let Ok(Some(secret)) = cluster.bounded(secrets.get_opt(&name)).await else {
            continue;
        };
        for key in [".dockerconfigjson", ".dockercfg"] {
            if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key))
                && let Ok(text) = String::from_utf8(bytes.0.clone())
            {
                configs.push((format!("imagePullSecret {name}"), text));
            }
        }
    }
    configs
}

/// Whether `registry` (host[:port]) is this machine: plain HTTP there, as Docker does.
pub fn is_local(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.split(':').next().unwrap_or_default(),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

fn client_for(reference: &Reference) -> Client {
    // reqwest is built without a crypto provider of its own: use ring, as kube does. An
    // error only says one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registries = [reference.registry(), reference.resolve_registry()];
    let protocol = if registries.iter().any(|r| is_local(r)) {
        ClientProtocol::HttpsExcept(registries.iter().map(|r| r.to_string()).collect())
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(Duration::from_secs(3)),
        read_timeout: Some(Duration::from_secs(3)),
        ..ClientConfig::default()
    })
}

/// Whether another credential could help after `error`: the registry answered and said no.
fn is_denied(error: &OciDistributionError) -> bool {
    match error {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
        // A registry's error envelope (UNAUTHORIZED, DENIED), in its own words.
        OciDistributionError::RegistryError { .. } => {
            let text = error.to_string().to_ascii_lowercase();
            text.contains("unauthorized") || text.contains("denied")
        }
        _ => false,
    }
}

/// ENTRYPOINT and CMD of `image`, trying anonymous access, then each of `accesses` in turn
/// (`more` supplies further ones, e.g. the pull secrets, only when needed). The error says
/// what happened, in a few words, for the refusal.
pub async fn image_start<F>(
    image: &str,
    accesses: Vec<Access>,
    more: F,
) -> Result<ImageStart, String>
where
    F: Future<Output = Vec<Access>>,
{
    let reference: Reference = image
        .parse()
        .map_err(|e| format!("{image:?} is not an image reference: {e}"))?;
    let attempt = async {
        let mut tried = vec!["anonymous".to_string()];
        let mut last = match fetch(&reference, &RegistryAuth::Anonymous).await {
            Ok(start) => return Ok(start),
            Err(e) if !is_denied(&e) => return Err(describe(&reference, &e)),
            Err(e) => e,
        };
        let mut pending = accesses;
        let mut more = Some(more);
        loop {
            if pending.is_empty()
                && let Some(more) = more.take()
            {
                pending = more.await;
            }
            if pending.is_empty() {
                break;
            }
            let access = pending.remove(0);
            tried.push(access.from.clone());
            let auth = RegistryAuth::Basic(access.user.clone(), access.password.clone());
            match fetch(&reference, &auth).await {
                Ok(start) => return Ok(start),
                Err(e) if !is_denied(&e) => return Err(describe(&reference, &e)),
                Err(e) => last = e,
            }
        }
        Err(format!(
            "{}; tried: {}",
            describe(&reference, &last),
            tried.join(", ")
        ))
    };
    match tokio::time::timeout(REGISTRY_TIMEOUT, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "registry {} did not answer within {}s",
            reference.registry(),
            REGISTRY_TIMEOUT.as_secs()
        )),
    }
}

async fn fetch(
    reference: &Reference,
    auth: &RegistryAuth,
) -> Result<ImageStart, OciDistributionError> {
    // A fresh client per access: the client keeps the token it got for a registry.
    let client = client_for(reference);
    let (_, _, config) = client.pull_manifest_and_config(reference, auth).await?;
    ImageStart::from_config_json(&config).map_err(|e| OciDistributionError::GenericError(Some(e)))
}

fn describe(reference: &Reference, error: &OciDistributionError) -> String {
    match error {
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => format!(
            "registry {} is unreachable: {}",
            reference.registry(),
            std::error::Error::source(e).map_or_else(|| e.to_string(), |s| s.to_string())
        ),
        other => format!("registry {}: {other}", reference.registry()),
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod served;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths_are_found_by_host() {
        let config = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpzM2NyZXQ="},
            "registry.example.com:5000":{"username":"ci","password":"pw"}}}"#;
        let hub = credentials_in(config, "docker.io", "~/.docker/config.json").unwrap();
        assert_eq!(
            (hub.user.as_str(), hub.password.as_str()),
            ("user", "s3cret")
        );
        let own = credentials_in(config, "registry.example.com:5000", "f").unwrap();
        assert_eq!((own.user.as_str(), own.password.as_str()), ("ci", "pw"));
        assert!(credentials_in(config, "ghcr.io", "f").is_none());
        // An old .dockercfg is the map itself.
        let old = r#"{"ghcr.io":{"auth":"YTpi"}}"#;
        assert_eq!(credentials_in(old, "ghcr.io", "f").unwrap().user, "a");
    }

    #[test]
    fn only_this_machine_is_plain_http() {
        assert!(is_local("localhost:5000"));
        assert!(is_local("127.0.0.1:41234"));
        assert!(is_local("[::1]:5000"));
        assert!(!is_local("registry.example.com"));
        assert!(!is_local("10.0.0.1:5000"));
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_said_within_the_time_limit() {
        // A port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let clock = std::time::Instant::now();
        let error = image_start(
            &format!("127.0.0.1:{port}/distroless/app:v1"),
            vec![],
            async { vec![] },
        )
        .await
        .unwrap_err();
        assert!(clock.elapsed() <= REGISTRY_TIMEOUT + Duration::from_secs(1));
        assert!(error.contains("unreachable"), "{error}");
    }
}
