//! One pod's watch, opened once and kept for as long as a session needs it.
//!
//! A fresh session opens it beside the PATCH, from the resourceVersion of the GET it read the
//! pod with, so it sees the PATCH land and then the container start without a round trip of
//! its own (session/add.rs); the session then keeps it through the work, and after a normal
//! end reads on from where the wait left off to see the container Terminated (teardown.rs).
//!
//! A watch that ends (the server's timeout), or breaks (the connection dropped mid-stream),
//! is started again from the last resourceVersion it saw; a break is retried under the
//! connection's retry policy, whose budget starts afresh with every event. A 410 Expired, as
//! an event or as the answer to the watch itself, means that version is too old: the pod is
//! read once and the watch goes on from the version read.

use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};

use crate::kube::retry::RetryPolicy;

/// The server ends a watch after this long (a real apiserver's default is 30–60 min).
const WATCH_SECONDS: u32 = 290;
/// A pause before opening again a watch the server ended, not to hammer one that ends them
/// at once.
const REOPEN_PAUSE: Duration = Duration::from_millis(500);

type Events = BoxStream<'static, Result<WatchEvent<Pod>, kube::Error>>;

/// What the watch saw next.
#[derive(Debug)]
pub enum Seen {
    Pod(Box<Pod>),
    /// The pod was deleted.
    Gone,
}

pub struct PodWatch {
    pods: Api<Pod>,
    pod: String,
    version: String,
    retry: RetryPolicy,
    events: Option<Events>,
}

impl PodWatch {
    /// A watch of `pod` from `version`; no request is made yet.
    pub fn new(pods: &Api<Pod>, pod: &str, version: &str, retry: RetryPolicy) -> PodWatch {
        PodWatch {
            pods: pods.clone(),
            pod: pod.to_string(),
            version: version.to_string(),
            retry,
            events: None,
        }
    }

    /// Sends the watch request now (beside another request). A failure is not an error yet:
    /// [`PodWatch::next`] tries again and reports it.
    pub async fn open(&mut self) {
        if self.events.is_none()
            && let Ok(events) = self.start().await
        {
            self.events = Some(events);
        }
    }

    /// The watch request, holding nothing of `self` (a watch may open on a task of its own).
    fn start(&self) -> impl Future<Output = Result<Events, kube::Error>> + Send + 'static {
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", self.pod))
            .timeout(WATCH_SECONDS);
        let (pods, version) = (self.pods.clone(), self.version.clone());
        async move { Ok(pods.watch(&params, &version).await?.boxed()) }
    }

    /// The pod as the next event shows it.
    pub async fn next(&mut self) -> Result<Seen, kube::Error> {
        let mut breaks = self.retry.start();
        loop {
            let events = match &mut self.events {
                Some(events) => events,
                None => match self.start().await {
                    Ok(events) => self.events.insert(events),
                    Err(kube::Error::Api(status)) if status.code == 410 => {
                        return self.read_again().await;
                    }
                    Err(source) => return Err(source),
                },
            };
            let pause = match events.try_next().await {
                Ok(Some(WatchEvent::Added(pod) | WatchEvent::Modified(pod))) => {
                    if let Some(version) = &pod.metadata.resource_version {
                        self.version = version.clone();
                    }
                    return Ok(Seen::Pod(Box::new(pod)));
                }
                Ok(Some(WatchEvent::Deleted(_))) => return Ok(Seen::Gone),
                Ok(Some(WatchEvent::Bookmark(mark))) => {
                    self.version = mark.metadata.resource_version;
                    continue;
                }
                Ok(Some(WatchEvent::Error(status))) => {
                    self.events = None;
                    if status.code == 410 {
                        return self.read_again().await;
                    }
                    return Err(kube::Error::Api(status));
                }
                // Ended by the server (its timeout): carry on from where it stopped.
                Ok(None) => REOPEN_PAUSE,
                // Broken: the same, not forever if it keeps breaking.
                Err(source) => match breaks.next(None) {
                    Some(next) => next.delay,
                    None => {
                        self.events = None;
                        return Err(source);
                    }
                },
            };
            self.events = None;
            tokio::time::sleep(pause).await;
        }
    }

    /// After a 410 Expired: the pod as it is now, and the watch goes on from there.
    async fn read_again(&mut self) -> Result<Seen, kube::Error> {
        let pod = self.pods.get(&self.pod).await?;
        self.version = pod.metadata.resource_version.clone().unwrap_or_default();
        Ok(Seen::Pod(Box::new(pod)))
    }
}
