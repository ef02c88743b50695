//! The registry client against a small OCI distribution endpoint on 127.0.0.1 (plain HTTP,
//! as for any registry on this machine): the manifest, then the config blob, anonymously or,
//! when the registry asks, with the user's credentials after the anonymous attempt is denied.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::*;

const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/sandbox-app"],"Cmd":["require-port"],"User":"65532"},"rootfs":{"type":"layers","diff_ids":[]}}"#;

fn sha256(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn manifest() -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
        sha256(CONFIG),
        CONFIG.len()
    )
}

/// Serves `distroless/app:v1`; with `basic`, only to that `user:password`. Returns its
/// host:port and the log of (method path, authorized) it saw.
async fn registry(basic: Option<&'static str>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let log = log.clone();
                async move { Ok::<_, Infallible>(answer(&request, basic, &log)) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (host, seen)
}

fn answer(
    request: &Request<Incoming>,
    basic: Option<&str>,
    log: &Mutex<Vec<String>>,
) -> Response<Full<Bytes>> {
    let authorized = match basic {
        None => true,
        Some(pair) => request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v == format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }),
    };
    let path = request.uri().path().to_string();
    log.lock()
        .unwrap()
        .push(format!("{} {path} {authorized}", request.method()));
    let reply = |status: StatusCode, media: &str, body: String| {
        let digest = sha256(&body);
        let body = if request.method() == http::Method::HEAD {
            String::new()
        } else {
            body
        };
        Response::builder()
            .status(status)
            .header("Content-Type", media)
            .header("Docker-Content-Digest", digest)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if !authorized {
        let mut denied = reply(
            StatusCode::UNAUTHORIZED,
            "application/json",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.into(),
        );
        denied.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"test\""),
        );
        return denied;
    }
    match path.as_str() {
        "/v2/" => reply(StatusCode::OK, "application/json", "{}".into()),
        "/v2/distroless/app/manifests/v1" => reply(
            StatusCode::OK,
            "application/vnd.oci.image.manifest.v1+json",
            manifest(),
        ),
        p if p == format!("/v2/distroless/app/blobs/{}", sha256(CONFIG)) => reply(
            StatusCode::OK,
            "application/vnd.oci.image.config.v1+json",
            CONFIG.into(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not found"}]}"#.into(),
        ),
    }
}

fn start() -> ImageStart {
    ImageStart {
        entrypoint: vec!["/sandbox-app".into()],
        cmd: vec!["require-port".into()],
    }
}

#[tokio::test]
async fn an_image_config_is_read_anonymously_over_plain_http_on_this_machine() {
    let (host, seen) = registry(None).await;
    let read = image_start(&format!("{host}/distroless/app:v1"), vec![], async {
        panic!("no credentials are needed")
    })
    .await;
    assert_eq!(read, Ok(start()));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|s| s.starts_with("GET /v2/distroless/app/blobs/sha256:")),
        "the config blob, and no layer: {seen:?}"
    );
}

#[tokio::test]
async fn a_denied_anonymous_read_is_retried_with_the_credentials() {
    let (host, seen) = registry(Some("ci:s3cret")).await;
    let config = format!(
        r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
        base64::engine::general_purpose::STANDARD.encode("ci:s3cret")
    );
    let access = credentials_in(&config, &host, "~/.docker/config.json").unwrap();
    let read = image_start(&format!("{host}/distroless/app:v1"), vec![access], async {
        vec![]
    })
    .await;
    assert_eq!(read, Ok(start()));
    assert!(
        seen.lock().unwrap().iter().any(|s| s.ends_with(" true")),
        "an authorized request"
    );

    // Wrong credentials everywhere: denied, naming what was tried.
    let wrong = credentials_in(
        r#"{"auths":{"HOST":{"username":"ci","password":"nope"}}}"#,
        "HOST",
        "imagePullSecret regcred",
    )
    .unwrap();
    let denied = image_start(&format!("{host}/distroless/app:v1"), vec![], async {
        vec![wrong]
    })
    .await
    .unwrap_err();
    assert!(
        denied.contains("tried: anonymous, imagePullSecret regcred"),
        "{denied}"
    );
}
