//! A fake API server for mock-client tests: a `tower::service_fn` behind a real `kube::Client`.
//!
//! Routes answer by method and path; every request is logged with its query, body and how
//! many requests were in flight when it arrived, so tests can assert the round trips a user
//! would wait for (which requests, in which order, which ran in parallel). Anything without a
//! route gets a 404 Status, as a server without that resource would answer. Compiled for tests
//! only.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower::BoxError;

/// The body of an answer: whole, or a stream that may break.
type Answered = BoxBody<Bytes, BoxError>;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Option<Value>,
    /// Requests in flight when this one arrived (itself included).
    pub in_flight: usize,
}

impl Seen {
    /// `GET /api/v1/...?watch=true` as one string, for readable assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    pub fn is_watch(&self) -> bool {
        self.query.split('&').any(|p| p == "watch=true")
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k == name).then(|| v.replace("%3D", "=").replace("%2F", "/"))
        })
    }
}

/// Computes a reply from the request.
pub type Answer = dyn Fn(&Seen) -> (StatusCode, Value) + Send + Sync;

#[derive(Clone)]
pub enum Reply {
    Json(StatusCode, Value),
    /// A watch: these events, newline-delimited, then the stream ends.
    Watch(Vec<Value>),
    /// A watch that breaks: these events, then the connection is reset mid-stream.
    BrokenWatch(Vec<Value>),
    /// An answer computed from the request (e.g. an access review per permission).
    With(Arc<Answer>),
}

struct Route {
    method: Method,
    path: String,
    watch: Option<bool>,
    replies: VecDeque<Reply>,
}

#[derive(Clone, Default)]
pub struct FakeApiServer {
    routes: Arc<Mutex<Vec<Route>>>,
    log: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<AtomicUsize>,
    latency: Duration,
}

impl FakeApiServer {
    /// Every reply waits this long, so requests made in parallel overlap in the log.
    pub fn with_latency(latency: Duration) -> Self {
        FakeApiServer {
            latency,
            ..FakeApiServer::default()
        }
    }

    /// Answers `method path` (a watch when `watch` is Some(true), not one when Some(false)) with
    /// `reply`; several replies for one route are used in turn, the last one repeatedly.
    pub fn route(&self, method: Method, path: &str, watch: Option<bool>, reply: Reply) -> &Self {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        match routes
            .iter_mut()
            .find(|r| r.method == method && r.path == path && r.watch == watch)
        {
            Some(route) => route.replies.push_back(reply),
            None => routes.push(Route {
                method,
                path: path.to_string(),
                watch,
                replies: VecDeque::from([reply]),
            }),
        }
        self
    }

    pub fn log(&self) -> Vec<Seen> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn client(&self) -> Client {
        let server = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.answer(request).await) }
        });
        Client::new(service, "default")
    }

    /// A cluster of this server: namespace `default`, user `u`, no request timeout, the
    /// default retry policy. Tests change what they need (`Cluster { .., ..fake.cluster() }`).
    pub fn cluster(&self) -> crate::kube::cluster::Cluster {
        crate::kube::cluster::Cluster {
            client: self.client(),
            namespace: "default".into(),
            kubeconfig_user: "u".into(),
            request_timeout: None,
            context: None,
            retry: Default::default(),
            origin: Default::default(),
        }
    }

    /// A client whose requests go through `layer` first (the retry policy's tests).
    pub fn client_with(&self, layer: &crate::kube::retry::RetryLayer) -> Client {
        let server = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.answer(request).await) }
        });
        Client::new(tower::Layer::layer(layer, service), "default")
    }

    async fn answer(&self, request: Request<Body>) -> Response<Answered> {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let (parts, body) = request.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let seen = Seen {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: serde_json::from_slice(&bytes).ok(),
            in_flight,
        };
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(seen.clone());
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let reply = {
            let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            routes
                .iter_mut()
                .find(|r| {
                    r.method == seen.method
                        && r.path == seen.path
                        && r.watch.is_none_or(|w| w == seen.is_watch())
                })
                .and_then(|r| {
                    if r.replies.len() > 1 {
                        r.replies.pop_front()
                    } else {
                        r.replies.front().cloned()
                    }
                })
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(Reply::BrokenWatch(events)) = &reply {
            let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = events
                .iter()
                .map(|e| Ok(Frame::data(Bytes::from(format!("{e}\n")))))
                .collect();
            frames.push(Err(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))));
            return Response::new(StreamBody::new(futures::stream::iter(frames)).boxed());
        }
        let (status, body) = match reply {
            Some(Reply::Json(status, value)) => (status, value.to_string().into_bytes()),
            Some(Reply::With(answer)) => {
                let (status, value) = answer(&seen);
                (status, value.to_string().into_bytes())
            }
            Some(Reply::Watch(events) | Reply::BrokenWatch(events)) => {
                let mut text = String::new();
                for event in events {
                    text.push_str(&event.to_string());
                    text.push('\n');
                }
                (StatusCode::OK, text.into_bytes())
            }
            None => (StatusCode::NOT_FOUND, not_found().to_string().into_bytes()),
        };
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)).map_err(BoxError::from).boxed())
            .unwrap_or_else(|_| Response::new(Empty::new().map_err(BoxError::from).boxed()))
    }
}

/// What an apiserver answers for a path it does not serve.
pub fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
           "message": "the server could not find the requested resource", "code": 404})
}

pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code})
}
