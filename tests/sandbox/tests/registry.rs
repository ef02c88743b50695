//! The sandbox's read-only OCI distribution endpoint, read with curl as a registry client
//! reads it: `/v2/`, a manifest by tag and by digest (GET and HEAD, Docker-Content-Digest),
//! the config blob with the image's Entrypoint/Cmd/Env/WorkingDir/User, the spec's 404
//! bodies, and the "unreachable" fault. A pod naming the registry's image runs on the node.
//! Needs root and runc (the images live on the node).

mod pods;
mod support;

use std::process::Command;
use std::time::Duration;

use kube_sandbox::fixtures::crash_looping_pod;
use kube_sandbox::{Sandbox, SandboxOptions, skip_without_node};
use pods::*;
use serde_json::Value;

/// `curl -sS -i` of `url` with `method`: status code, headers (lowercase names), body.
fn curl(method: &str, url: &str) -> (u16, Vec<(String, String)>, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "-X", method, "--max-time", "5"])
        .args(if method == "HEAD" { vec!["-I"] } else { vec![] })
        .arg(url)
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn sha256(text: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let hex = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", hex.split_whitespace().next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_serves_the_image_config_and_refuses_what_it_does_not_know() {
    if skip_without_node() {
        return;
    }
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let host = sb.registry_host().to_string();
    assert!(host.starts_with("127.0.0.1:"), "{host}");
    let base = format!("http://{host}/v2");

    let (status, headers, _) = curl("GET", &format!("{base}/"));
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "docker-distribution-api-version"),
        "registry/2.0"
    );

    let app = sb.registry_crashing_app();
    assert_eq!(app, format!("{host}/distroless/crashing-app:v1"));
    let (status, headers, manifest) = curl(
        "GET",
        &format!("{base}/distroless/crashing-app/manifests/v1"),
    );
    assert_eq!(status, 200, "{manifest}");
    assert_eq!(
        header(&headers, "content-type"),
        "application/vnd.oci.image.manifest.v1+json"
    );
    let digest = header(&headers, "docker-content-digest").to_string();
    assert_eq!(digest, sha256(&manifest), "the digest is the manifest's");
    let doc: Value = serde_json::from_str(&manifest).unwrap();
    let config_digest = doc["config"]["digest"].as_str().unwrap().to_string();

    // HEAD and GET by digest say the same.
    let (status, headers, body) = curl(
        "HEAD",
        &format!("{base}/distroless/crashing-app/manifests/v1"),
    );
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(header(&headers, "docker-content-digest"), digest);
    let (status, _, by_digest) = curl(
        "GET",
        &format!("{base}/distroless/crashing-app/manifests/{digest}"),
    );
    assert_eq!((status, by_digest.as_str()), (200, manifest.as_str()));

    let (status, headers, config) = curl(
        "GET",
        &format!("{base}/distroless/crashing-app/blobs/{config_digest}"),
    );
    assert_eq!(status, 200);
    assert_eq!(sha256(&config), config_digest);
    assert_eq!(header(&headers, "docker-content-digest"), config_digest);
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["Entrypoint"][0], "/sandbox-app");
    assert_eq!(config["config"]["Cmd"][0], "require-port");
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["WorkingDir"], "/");
    assert!(
        config["config"]["Env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH=")
    );

    // A published image, and what is not there.
    let published = sb
        .publish_image("team/web:2", "sandbox.local/busybox:latest")
        .unwrap();
    assert_eq!(published, format!("{host}/team/web:2"));
    let (_, _, config) = curl("GET", &format!("{base}/team/web/manifests/2"));
    assert!(config.contains("\"config\""), "{config}");
    let (status, headers, body) = curl("GET", &format!("{base}/team/web/manifests/3"));
    assert_eq!(status, 404);
    assert!(header(&headers, "content-type").starts_with("application/json"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_UNKNOWN");
    let (status, _, body) = curl("GET", &format!("{base}/nobody/here/manifests/v1"));
    assert_eq!(status, 404);
    assert!(body.contains("NAME_UNKNOWN"), "{body}");
    let (status, _, body) = curl(
        "GET",
        &format!("{base}/team/web/blobs/sha256:{}", "0".repeat(64)),
    );
    assert_eq!(status, 404);
    assert!(body.contains("BLOB_UNKNOWN"), "{body}");
    let (status, _, _) = curl("PUT", &format!("{base}/team/web/manifests/2"));
    assert_eq!(status, 405);
    assert!(
        sb.registry_requests()
            .contains(&"GET /v2/distroless/crashing-app/manifests/v1".to_string())
    );

    // A private registry: 401 with the Basic challenge, unless the credentials come along.
    sb.require_registry_credentials(Some(("puller", "s3cret")));
    let manifest_url = format!("{base}/distroless/crashing-app/manifests/v1");
    let (status, headers, body) = curl("GET", &manifest_url);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        header(&headers, "www-authenticate"),
        r#"Basic realm="kube-sandbox registry""#
    );
    assert!(body.contains("UNAUTHORIZED"), "{body}");
    let with_credentials = manifest_url.replace("http://", "http://puller:s3cret@");
    let (status, _, _) = curl("GET", &with_credentials);
    assert_eq!(status, 200);
    let (status, _, _) = curl(
        "GET",
        &manifest_url.replace("http://", "http://puller:nope@"),
    );
    assert_eq!(status, 401);
    sb.require_registry_credentials(None);
    let (status, _, _) = curl("GET", &manifest_url);
    assert_eq!(status, 200);

    // A pod naming the registry's image runs it (the node pulls from its directories) and
    // crash-loops with the command of the image config.
    apply(
        &sb,
        "from-registry",
        &crash_looping_pod("from-registry", &app),
    )
    .await;
    wait_for("the app to crash", Duration::from_secs(60), async || {
        let pod = get_pod(&sb, "from-registry").await;
        let app = status_of(&pod["status"]["containerStatuses"], "app");
        (app["lastState"]["terminated"]["exitCode"] == 1).then_some(())
    })
    .await;

    // Unreachable: the port is closed.
    sb.stop_registry().await;
    let refused = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("{base}/"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Failed to connect"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    delete_and_wait(&sb, &["from-registry"], 1).await;
    sb.shutdown().await;
}
