use std::sync::Mutex;

use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::*;
use crate::kube::fake_apiserver::{FakeApiServer, Reply, status};

const POD: &str = "/api/v1/namespaces/default/pods/web";

fn pod() -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "resourceVersion": "7"}})
}

fn failing(code: u16) -> Reply {
    let status_code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Reply::Json(status_code, status(code, "InternalError", "injected"))
}

/// A client through the retry layer, and every event the layer told.
fn client(
    fake: &FakeApiServer,
    policy: RetryPolicy,
) -> (kube::Client, Arc<Mutex<Vec<RetryEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let layer = RetryLayer {
        policy,
        attempt_timeout: None,
        notice: Some(Arc::new(move |e: &RetryEvent| {
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.clone())
        })),
    };
    (fake.client_with(&layer), events)
}

fn retries(events: &Mutex<Vec<RetryEvent>>) -> Vec<u32> {
    events
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|e| match e {
            RetryEvent::Retrying { retry, .. } => Some(retry.retry),
            RetryEvent::GaveUp { .. } => None,
        })
        .collect()
}

#[test]
fn the_backoff_doubles_is_capped_jittered_and_never_shorter_than_retry_after() {
    let ms = |d: Duration| d.as_millis();
    assert_eq!(ms(RetryPolicy::delay(1, None, 0.0)), 100);
    assert_eq!(ms(RetryPolicy::delay(1, None, 0.999_999)), 199);
    assert_eq!(ms(RetryPolicy::delay(2, None, 0.0)), 200);
    assert_eq!(ms(RetryPolicy::delay(3, None, 0.0)), 400);
    // Capped: the 6th and the 40th wait at most MAX_DELAY.
    assert_eq!(ms(RetryPolicy::delay(6, None, 0.999_999)), 1999);
    assert_eq!(ms(RetryPolicy::delay(40, None, 0.0)), 1000);
    assert_eq!(
        RetryPolicy::delay(1, Some(Duration::from_secs(3)), 0.5),
        Duration::from_secs(3)
    );
}

#[test]
fn only_requests_safe_to_repeat_are_idempotent() {
    let cases = [
        (Method::GET, POD, None, true),
        (
            Method::GET,
            "/api/v1/pods",
            Some("watch=true&resourceVersion=5"),
            true,
        ),
        (
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            None,
            true,
        ),
        (
            Method::POST,
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            None,
            true,
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/d/pods/web/ephemeralcontainers",
            Some("dryRun=All"),
            true,
        ),
        (
            Method::PATCH,
            "/api/v1/namespaces/d/pods/web/ephemeralcontainers",
            None,
            false,
        ),
        (Method::POST, "/api/v1/namespaces/d/pods", None, false),
        (Method::DELETE, POD, None, false),
    ];
    for (method, path, query, expected) in cases {
        assert_eq!(
            is_idempotent(&method, path, query),
            expected,
            "{method} {path}?{query:?}"
        );
    }
    for code in [429, 500, 502, 503, 504] {
        assert!(is_retryable_status(
            StatusCode::from_u16(code).unwrap_or_default()
        ));
    }
    for code in [400, 401, 403, 404, 409, 410, 422, 501] {
        assert!(
            !is_retryable_status(StatusCode::from_u16(code).unwrap_or_default()),
            "{code}"
        );
    }
}

#[tokio::test]
async fn a_get_rides_out_a_burst_of_500s_and_says_so() {
    let fake = FakeApiServer::default();
    for _ in 0..3 {
        fake.route(Method::GET, POD, None, failing(500));
    }
    fake.route(Method::GET, POD, None, Reply::Json(StatusCode::OK, pod()));
    let (client, events) = client(&fake, RetryPolicy::default());
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let got = pods.get("web").await;
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(fake.log().len(), 4);
    assert_eq!(retries(&events), [1, 2, 3]);
}

#[tokio::test]
async fn past_the_count_the_last_error_is_returned() {
    let fake = FakeApiServer::default();
    fake.route(Method::GET, POD, None, failing(503));
    let policy = RetryPolicy {
        retries: 2,
        within: Duration::from_secs(60),
    };
    let (client, events) = client(&fake, policy);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let got = pods.get("web").await;
    assert!(
        matches!(&got, Err(kube::Error::Api(s)) if s.code == 503),
        "{got:?}"
    );
    assert_eq!(fake.log().len(), 3, "the first attempt and two retries");
    let events = events.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        matches!(events.last(), Some(RetryEvent::GaveUp { retries: 2, cause, .. }) if cause == "HTTP 503"),
        "{events:?}"
    );
}

#[tokio::test]
async fn no_retry_starts_past_the_time_bound() {
    let fake = FakeApiServer::default();
    fake.route(Method::GET, POD, None, failing(500));
    let policy = RetryPolicy {
        retries: 100,
        within: Duration::from_millis(1500),
    };
    let (client, _) = client(&fake, policy);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let started = Instant::now();
    assert!(pods.get("web").await.is_err());
    assert!(
        started.elapsed() <= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Waits of 100..200, 200..400, 400..800, 800..1600 ms: three or four fit in 1.5 s.
    let attempts = fake.log().len();
    assert!((3..=5).contains(&attempts), "{attempts}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    // The fake sends no Retry-After header: a service of its own answers 429 with one.
    let service = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, std::convert::Infallible>(
            Response::builder()
                .status(429)
                .header(http::header::RETRY_AFTER, "2")
                .body(Body::from(
                    status(429, "TooManyRequests", "slow down")
                        .to_string()
                        .into_bytes(),
                ))
                .unwrap_or_else(|_| Response::new(Body::empty())),
        )
    });
    let layer = RetryLayer {
        policy: RetryPolicy {
            retries: 1,
            within: Duration::from_secs(10),
        },
        attempt_timeout: None,
        notice: None,
    };
    let client = kube::Client::new(layer.layer(service), "default");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let started = Instant::now();
    assert!(pods.get("web").await.is_err());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_patch_that_adds_a_container_goes_once_but_a_dry_run_is_retried() {
    let path = "/api/v1/namespaces/default/pods/web/ephemeralcontainers";
    let fake = FakeApiServer::default();
    fake.route(Method::PATCH, path, None, failing(500));
    let policy = RetryPolicy {
        retries: 2,
        within: Duration::from_secs(10),
    };
    let (client, events) = client(&fake, policy);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let body = json!({"spec": {"ephemeralContainers": [{"name": "dbg-x"}]}});
    let once = pods
        .patch_ephemeral_containers("web", &PatchParams::default(), &Patch::Strategic(&body))
        .await;
    assert!(once.is_err());
    assert_eq!(fake.log().len(), 1);
    assert!(retries(&events).is_empty());

    let dry_run = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let _ = pods
        .patch_ephemeral_containers("web", &dry_run, &Patch::Strategic(&body))
        .await;
    assert_eq!(
        fake.log().len(),
        1 + 3,
        "a dry run: the first attempt and two retries"
    );
}

#[tokio::test]
async fn a_connection_reset_before_the_answer_is_retried_and_other_errors_are_not() {
    let calls = Arc::new(Mutex::new(0u32));
    let counted = calls.clone();
    let service = tower::service_fn(move |_: Request<Body>| {
        let counted = counted.clone();
        async move {
            let n = {
                let mut n = counted.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                *n
            };
            match n {
                1 => Err::<Response<Body>, BoxError>(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                ))),
                2 => Err::<Response<Body>, BoxError>(Box::new(AttemptTimedOut(
                    Duration::from_secs(1),
                ))),
                3 => Ok(Response::new(Body::from(pod().to_string().into_bytes()))),
                4 => Err::<Response<Body>, BoxError>(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                ))),
                _ => Err("certificate not trusted".into()),
            }
        }
    });
    let layer = RetryLayer {
        policy: RetryPolicy::default(),
        attempt_timeout: None,
        notice: None,
    };
    let client = kube::Client::new(layer.layer(service), "default");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    assert!(pods.get("web").await.is_ok());
    assert_eq!(*calls.lock().unwrap_or_else(|p| p.into_inner()), 3);
    assert!(pods.get("web").await.is_err());
    assert_eq!(
        *calls.lock().unwrap_or_else(|p| p.into_inner()),
        4,
        "a refused connection (nothing listens there) is not retried"
    );
    assert!(pods.get("web").await.is_err());
    assert_eq!(
        *calls.lock().unwrap_or_else(|p| p.into_inner()),
        5,
        "an error that is not about the connection is not retried"
    );
}
