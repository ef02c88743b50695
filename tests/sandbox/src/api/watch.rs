//! Watch streams: newline-delimited JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)
//! with the apiserver's resourceVersion semantics.
//!
//! - no resourceVersion, or `0`: the current objects as ADDED, then changes;
//! - a resourceVersion: changes after it, or one ERROR 410 Expired if it is too old;
//! - `sendInitialEvents=true` (with `resourceVersionMatch=NotOlderThan`): the current objects,
//!   then a BOOKMARK annotated `k8s.io/initial-events-end`, as the WatchList feature does;
//! - `allowWatchBookmarks`: periodic BOOKMARKs carrying the current resourceVersion;
//! - `timeoutSeconds`: the stream ends cleanly after that long.

use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use http::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::ApiState;
use super::kinds::Kind;
use super::respond::{self, Body, ChunkSender};
use super::routes::Query;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Change;
use super::tables;

/// How often BOOKMARK events are sent when the client allows them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// The default lifetime of a watch (the apiserver picks 30-60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// What one watch selects and how it encodes events.
struct Filter {
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: Option<String>,
    /// Events carry PartialObjectMetadata only.
    metadata_only: bool,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        (self.namespace.is_none()
            || self.namespace.as_deref() == object["metadata"]["namespace"].as_str())
            && self
                .name
                .as_deref()
                .is_none_or(|n| object["metadata"]["name"].as_str() == Some(n))
            && self.labels.matches(object)
            && self.fields.matches(object)
    }

    fn change_matches(&self, c: &Change) -> bool {
        c.kind.group == self.kind.group
            && c.kind.resource == self.kind.resource
            && self.matches(&c.object)
    }

    fn encode(&self, type_: &str, object: &Value, first: &mut bool) -> Vec<u8> {
        let object = match &self.table {
            Some(include) => {
                let t = tables::table(
                    self.kind,
                    std::slice::from_ref(object),
                    object["metadata"]["resourceVersion"]
                        .as_str()
                        .map(String::from),
                    include,
                    *first,
                );
                *first = false;
                t
            }
            None if self.metadata_only => tables::partial(object),
            None => object.clone(),
        };
        let mut line =
            serde_json::to_vec(&json!({ "type": type_, "object": object })).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

fn bookmark(kind: &Kind, rv: u64, initial_end: bool) -> Vec<u8> {
    let mut md = json!({ "resourceVersion": rv.to_string(), "creationTimestamp": null });
    if initial_end {
        md["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    let mut line = serde_json::to_vec(&json!({
        "type": "BOOKMARK",
        "object": { "kind": kind.kind, "apiVersion": kind.api_version(), "metadata": md },
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

fn error_event(e: &ApiError) -> Vec<u8> {
    let mut line =
        serde_json::to_vec(&json!({ "type": "ERROR", "object": e.body })).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Answer a watch request.
pub fn serve(
    state: &Arc<ApiState>,
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
    query: &Query,
    accept: &str,
) -> Result<Response<Body>, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""), kind.resource)?;
    let table = tables::wants_table(accept)
        .then(|| query.get("includeObject").unwrap_or("Metadata").to_string());
    let filter = Filter {
        kind,
        namespace,
        name,
        labels,
        fields,
        table,
        metadata_only: tables::wants_metadata(accept),
    };
    let send_initial = query.flag("sendInitialEvents");
    if send_initial && query.get("resourceVersionMatch") != Some("NotOlderThan") {
        return Err(ApiError::invalid(
            "",
            "",
            "",
            &[(
                "FieldValueInvalid",
                "resourceVersionMatch",
                "Invalid value: \"\": sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
            )],
        )
        .with_message("ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into()));
    }
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query
        .int("timeoutSeconds")
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let drop_after = state.faults.drop_watch_after();
    let rv = query.get("resourceVersion").unwrap_or("");

    let mut initial: Vec<Vec<u8>> = Vec::new();
    let mut first = true;
    let subscription = if rv.is_empty() || rv == "0" || send_initial {
        let (items, sub) = state
            .store
            .snapshot_and_subscribe(kind, filter.namespace.as_deref());
        for item in items.iter().filter(|o| filter.matches(o)) {
            initial.push(filter.encode("ADDED", item, &mut first));
        }
        if send_initial {
            initial.push(bookmark(kind, sub.rv, true));
        }
        Some(sub)
    } else {
        let from: u64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
        match state.store.subscribe(Some(from)) {
            Ok(sub) => {
                for c in sub.replay.iter().filter(|c| filter.change_matches(c)) {
                    initial.push(filter.encode(c.change.as_str(), &c.object, &mut first));
                }
                Some(sub)
            }
            Err(e) => {
                initial.push(error_event(&e));
                None
            }
        }
    };

    let (mut tx, resp) = respond::streaming("application/json");
    tokio::spawn(async move {
        for line in initial {
            if tx.send(respond::frame(line)).await.is_err() {
                return;
            }
        }
        let Some(mut sub) = subscription else {
            return;
        };
        let end = Instant::now() + drop_after.map_or(timeout, |d| d.min(timeout));
        let mut last_rv = sub.rv;
        let mut tick = tokio::time::interval_at(Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => return,
                _ = tick.tick() => {
                    // Without bookmarks the tick only notices a client that went away.
                    if tx.is_closed()
                        || (bookmarks
                            && send(&mut tx, bookmark(filter.kind, last_rv, false)).await.is_err())
                    {
                        return;
                    }
                }
                change = sub.live.recv() => match change {
                    Ok(c) => {
                        last_rv = c.rv;
                        if filter.change_matches(&c) {
                            let line = filter.encode(c.change.as_str(), &c.object, &mut first);
                            if send(&mut tx, line).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let e = ApiError::expired("too old resource version: watch fell behind");
                        let _ = send(&mut tx, error_event(&e)).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
    Ok(resp)
}

async fn send(tx: &mut ChunkSender, line: Vec<u8>) -> Result<(), ()> {
    tx.send(respond::frame(line)).await.map_err(|_| ())
}
