//! One retry policy for every request to the API server, as a tower layer around the client.
//!
//! A struggling API server answers 429 (throttled, usually with `Retry-After`), 500, 502, 503
//! or 504, or drops the connection before answering. A request that is safe to repeat (GET:
//! reads, lists and the start of a watch; the access and identity reviews, which write
//! nothing; any `dryRun` request) is sent again after a capped exponential backoff with
//! jitter, at least as long as the server's `Retry-After`, at most [`RetryPolicy::retries`]
//! times and never past [`RetryPolicy::within`] from the first attempt. When the budget is
//! spent the last answer (or error) is what the caller sees. A request that may change
//! something (the PATCH that adds a container, a DELETE) goes once: its caller decides, after
//! looking, whether sending it again is safe (session/inject.rs). An exec or attach upgrade is
//! retried only on an error status, which the server sends before any command starts.
//!
//! kube's own retry (`Config::default_retry`, any method on 429/503/504 for up to 15 times)
//! is switched off where this layer is installed, so that one policy applies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
// tokio's clock, so that tests can run the backoff on paused time.
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};

/// How often and for how long an idempotent request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: none).
    pub retries: u32,
    /// No retry starts later than this after the first attempt.
    pub within: Duration,
}

/// The first backoff; each next one doubles, up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_millis(200);
pub const MAX_DELAY: Duration = Duration::from_secs(2);

impl Default for RetryPolicy {
    /// Five retries within 10 s: a burst of a few seconds is ridden out, while a session
    /// against a server that stays down ends with its error in about ten seconds.
    fn default() -> Self {
        RetryPolicy {
            retries: 5,
            within: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): `FIRST_DELAY · 2^(retry-1)` capped at
    /// `MAX_DELAY`, its upper half drawn at random (`jitter` in [0, 1)) so that many clients
    /// throttled together do not come back together; never shorter than `Retry-After`.
    pub fn delay(retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        let full = FIRST_DELAY.saturating_mul(1 << exponent).min(MAX_DELAY);
        let jittered = full / 2 + full.mul_f64(jitter.clamp(0.0, 1.0) / 2.0);
        jittered.max(retry_after.unwrap_or_default())
    }

    /// A fresh budget, started now.
    pub fn start(&self) -> Attempts {
        Attempts {
            policy: *self,
            started: Instant::now(),
            retried: 0,
        }
    }
}

/// The budget of one request: how many retries are left and until when.
#[derive(Debug)]
pub struct Attempts {
    policy: RetryPolicy,
    started: Instant,
    retried: u32,
}

impl Attempts {
    /// The wait before the next retry, or `None` when the count or the time is spent (a wait
    /// that would end past `within` is not started: the caller gets the error now, not later).
    pub fn next(&mut self, retry_after: Option<Duration>) -> Option<Retry> {
        if self.retried >= self.policy.retries {
            return None;
        }
        let delay = RetryPolicy::delay(self.retried + 1, retry_after, jitter());
        if self.started.elapsed() + delay > self.policy.within {
            return None;
        }
        self.retried += 1;
        Some(Retry {
            retry: self.retried,
            of: self.policy.retries,
            delay,
        })
    }

    pub fn retried(&self) -> u32 {
        self.retried
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// One retry about to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// 1-based.
    pub retry: u32,
    pub of: u32,
    pub delay: Duration,
}

/// What the policy tells the user about (through the printer, which lives above this layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryEvent {
    /// `what` ("GET /api/v1/namespaces/default/pods/web") got `cause` ("HTTP 500"); it is
    /// sent again after `retry.delay`.
    Retrying {
        what: String,
        cause: String,
        retry: Retry,
    },
    /// The budget is spent; the caller gets the last answer.
    GaveUp {
        what: String,
        cause: String,
        retries: u32,
        elapsed: Duration,
    },
}

/// Where [`RetryEvent`]s go.
pub type RetryNotice = Arc<dyn Fn(&RetryEvent) + Send + Sync>;

/// A random number in [0, 1) for the jitter; 0.5 if the system has no randomness to give.
fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

/// Whether a request may be sent twice with no effect beyond the first: reads (GET, HEAD),
/// the reviews that only ask the server a question, and anything sent with `dryRun`.
pub fn is_idempotent(method: &Method, path: &str, query: Option<&str>) -> bool {
    const REVIEWS: [&str; 4] = [
        "/selfsubjectaccessreviews",
        "/selfsubjectreviews",
        "/selfsubjectrulesreviews",
        "/subjectaccessreviews",
    ];
    let dry_run = query.is_some_and(|q| q.split('&').any(|p| p.starts_with("dryRun=")));
    *method == Method::GET
        || *method == Method::HEAD
        || (*method == Method::POST && REVIEWS.iter().any(|r| path.ends_with(r)))
        || dry_run
}

/// The statuses that say "not now" rather than "no": throttled, or the server (or a proxy in
/// front of it) failing.
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// A failure before any answer that a second attempt may not meet: the connection reset or
/// closed before the response, or no answer in time. A refused connection is not one: nothing
/// listens there (a wrong address, a server down), and saying so at once serves better.
pub fn is_transient(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<AttemptTimedOut>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | TimedOut | UnexpectedEof
            ) {
                return true;
            }
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_timeout())
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the API server).
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get(http::header::RETRY_AFTER)?;
    value
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// One attempt got no answer within `--request-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("no answer within --request-timeout {}", crate::base::duration::Human(*.0))]
pub struct AttemptTimedOut(pub Duration);

/// Installs [`RetryService`] around a client's service stack.
#[derive(Clone)]
pub struct RetryLayer {
    pub policy: RetryPolicy,
    /// `--request-timeout`: bounds each attempt up to the response headers (a watch's or a
    /// log's body may then stream for as long as it likes).
    pub attempt_timeout: Option<Duration>,
    pub notice: Option<RetryNotice>,
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;

    fn layer(&self, inner: S) -> RetryService<S> {
        RetryService {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            layer: self.clone(),
        }
    }
}

/// The retrying service. The inner stack is shared behind a lock held only while a request
/// is handed to it, never while its answer is awaited.
pub struct RetryService<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    layer: RetryLayer,
}

impl<S> Clone for RetryService<S> {
    fn clone(&self) -> Self {
        RetryService {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S, B> Service<Request<Body>> for RetryService<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The inner service is made ready for each attempt in `send`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let layer = self.layer.clone();
        Box::pin(async move { layer.run(&inner, request).await })
    }
}

impl RetryLayer {
    async fn run<S, B>(
        &self,
        inner: &tokio::sync::Mutex<S>,
        request: Request<Body>,
    ) -> Result<Response<B>, BoxError>
    where
        S: Service<Request<Body>, Response = Response<B>>,
        S::Error: Into<BoxError>,
    {
        let upgrade = request.headers().contains_key(http::header::UPGRADE);
        let idempotent = is_idempotent(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        let what = format!("{} {}", request.method(), request.uri().path());
        // Only a body held in memory can be sent twice (kube's requests all are).
        let copy = |r: &Request<Body>| -> Option<Request<Body>> {
            let mut again = Request::new(r.body().try_clone()?);
            *again.method_mut() = r.method().clone();
            *again.uri_mut() = r.uri().clone();
            *again.version_mut() = r.version();
            *again.headers_mut() = r.headers().clone();
            *again.extensions_mut() = r.extensions().clone();
            Some(again)
        };
        if !idempotent || self.policy.retries == 0 {
            return self.send(inner, request).await;
        }
        let mut attempts = self.policy.start();
        let mut request = request;
        loop {
            let again = copy(&request);
            let result = self.send(inner, request).await;
            let (cause, wait) = match &result {
                Ok(response) if is_retryable_status(response.status()) => (
                    format!("HTTP {}", response.status().as_u16()),
                    retry_after(response),
                ),
                // A failed upgrade may have reached the server and started the command.
                Err(error) if !upgrade && is_transient(error.as_ref()) => (error.to_string(), None),
                _ => return result,
            };
            let Some(next) = again else { return result };
            match attempts.next(wait) {
                Some(retry) => {
                    self.tell(RetryEvent::Retrying {
                        what: what.clone(),
                        cause,
                        retry,
                    });
                    tokio::time::sleep(retry.delay).await;
                    request = next;
                }
                None => {
                    if attempts.retried() > 0 {
                        self.tell(RetryEvent::GaveUp {
                            what,
                            cause,
                            retries: attempts.retried(),
                            elapsed: attempts.elapsed(),
                        });
                    }
                    return result;
                }
            }
        }
    }

    /// One attempt, bounded by `--request-timeout` up to the response headers.
    async fn send<S, B>(
        &self,
        inner: &tokio::sync::Mutex<S>,
        request: Request<Body>,
    ) -> Result<Response<B>, BoxError>
    where
        S: Service<Request<Body>, Response = Response<B>>,
        S::Error: Into<BoxError>,
    {
        let answer = {
            let mut service = inner.lock().await;
            let ready = service.ready().await.map_err(Into::into)?;
            ready.call(request)
        };
        match self.attempt_timeout {
            None => answer.await.map_err(Into::into),
            Some(limit) => match tokio::time::timeout(limit, answer).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(AttemptTimedOut(limit))),
            },
        }
    }

    fn tell(&self, event: RetryEvent) {
        if let Some(notice) = &self.notice {
            notice(&event);
        }
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
