//! A client for a running sandbox's control endpoint (`/sandbox/faults`), used by
//! `kube-sandbox faults`: it reads the server, CA and token from the sandbox's kubeconfig.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Where and how to reach a sandbox, from its kubeconfig (first cluster and user).
struct Target {
    scheme: String,
    authority: String,
    host: String,
    ca_pem: Option<Vec<u8>>,
    token: String,
}

fn target(kubeconfig: &Path) -> Result<Target, String> {
    let text = std::fs::read_to_string(kubeconfig)
        .map_err(|e| format!("reading {}: {e}", kubeconfig.display()))?;
    let doc: Value =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    let cluster = &doc["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .ok_or("the kubeconfig names no server")?;
    let (scheme, authority) = server
        .split_once("://")
        .ok_or_else(|| format!("server {server:?} is not a URL"))?;
    let authority = authority.trim_end_matches('/').to_string();
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h)
        .to_string();
    let ca_pem = match cluster["certificate-authority-data"].as_str() {
        Some(data) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| format!("certificate-authority-data: {e}"))?,
        ),
        None => None,
    };
    let token = doc["users"][0]["user"]["token"]
        .as_str()
        .unwrap_or("")
        .to_string();
    Ok(Target {
        scheme: scheme.to_string(),
        authority,
        host,
        ca_pem,
        token,
    })
}

async fn send<S>(io: S, request: http::Request<Full<Bytes>>) -> Result<(u16, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// GET the faults (`yaml: None`) or PUT new ones; returns the faults now in force (JSON).
pub async fn faults(kubeconfig: &Path, yaml: Option<String>) -> Result<String, String> {
    let t = target(kubeconfig)?;
    let method = if yaml.is_some() { "PUT" } else { "GET" };
    let request = http::Request::builder()
        .method(method)
        .uri("/sandbox/faults")
        .header(http::header::HOST, &t.authority)
        .header(http::header::AUTHORIZATION, format!("Bearer {}", t.token))
        .header(http::header::CONTENT_TYPE, "application/yaml")
        .body(Full::new(Bytes::from(yaml.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(&t.authority)
        .await
        .map_err(|e| format!("connecting to {}: {e}", t.authority))?;
    let (status, body) = if t.scheme == "https" {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(t.ca_pem.as_deref().unwrap_or_default()) {
            let cert = cert.map_err(|e| format!("certificate-authority-data: {e}"))?;
            roots.add(cert).map_err(|e| e.to_string())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(t.host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {}: {e}", t.authority))?;
        send(tls, request).await?
    } else {
        send(tcp, request).await?
    };
    if !(200..300).contains(&status) {
        return Err(format!("{status}: {}", body.trim()));
    }
    Ok(body)
}
