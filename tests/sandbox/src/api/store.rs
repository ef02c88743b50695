//! The object store: every object as JSON, one global resourceVersion counter, and the change
//! feed that watches read.
//!
//! Like etcd behind a real apiserver, every write gets the next resourceVersion and is
//! recorded in a bounded history, so a watch can resume from a recent resourceVersion and a
//! too-old one gets 410 Expired.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::kinds::Kind;
use super::meta;
use super::status::ApiError;

/// How many changes are kept for watches resuming from an older resourceVersion.
const HISTORY: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: &'static Kind,
    pub change: ChangeType,
    pub object: Value,
}

type Key = (&'static str, &'static str, String, String);

fn key(kind: &'static Kind, namespace: &str, name: &str) -> Key {
    (
        kind.group,
        kind.resource,
        namespace.to_string(),
        name.to_string(),
    )
}

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Change>>,
    /// Every change with rv > floor is still in `history`.
    floor: u64,
}

pub struct Store {
    inner: Mutex<Inner>,
    feed: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// What a watch starts from: the changes to replay, then the live feed.
pub struct Subscription {
    pub replay: Vec<Arc<Change>>,
    pub live: broadcast::Receiver<Arc<Change>>,
    /// The store's resourceVersion when the subscription was made.
    pub rv: u64,
}

impl Store {
    pub fn new() -> Store {
        let (feed, _) = broadcast::channel(4096);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                floor: 1,
            }),
            feed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    fn record(&self, inner: &mut Inner, kind: &'static Kind, change: ChangeType, object: Value) {
        let change = Arc::new(Change {
            rv: inner.rv,
            kind,
            change,
            object,
        });
        inner.history.push_back(change.clone());
        while inner.history.len() > HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.floor = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.feed.send(change);
    }

    /// Store a new object, filling the metadata the server owns.
    pub fn create(&self, kind: &'static Kind, mut object: Value) -> Result<Value, ApiError> {
        let namespace = meta::namespace_of(&object).to_string();
        let mut name = meta::name_of(&object).to_string();
        let mut inner = self.lock();
        if name.is_empty() {
            let prefix = object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    kind.group,
                    kind.kind,
                    "",
                    &[(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required".into(),
                    )],
                ));
            }
            loop {
                name = format!("{prefix}{}", meta::random_suffix(5));
                if !inner.objects.contains_key(&key(kind, &namespace, &name)) {
                    break;
                }
            }
        }
        if kind.namespaced
            && !inner
                .objects
                .contains_key(&key(&super::kinds::NAMESPACES, "", &namespace))
        {
            return Err(ApiError::not_found("", "namespaces", &namespace));
        }
        let k = key(kind, &namespace, &name);
        if inner.objects.contains_key(&k) {
            return Err(ApiError::already_exists(kind.group, kind.resource, &name));
        }
        inner.rv += 1;
        let rv = inner.rv;
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        let md = &mut object["metadata"];
        md["name"] = json!(name);
        if kind.namespaced {
            md["namespace"] = json!(namespace);
        }
        md["uid"] = json!(meta::new_uid());
        md["resourceVersion"] = json!(rv.to_string());
        md["creationTimestamp"] = json!(meta::now_rfc3339());
        if kind.has_generation {
            md["generation"] = json!(1);
        }
        if let Some(m) = md.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("managedFields");
        }
        inner.objects.insert(k, object.clone());
        self.record(&mut inner, kind, ChangeType::Added, object.clone());
        Ok(object)
    }

    pub fn get(&self, kind: &'static Kind, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&key(kind, namespace, name))
            .cloned()
    }

    /// Objects of a kind (in one namespace, or all), with the store's resourceVersion.
    pub fn list(&self, kind: &'static Kind, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((g, r, ns, _), _)| {
                *g == kind.group && *r == kind.resource && namespace.is_none_or(|n| n == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Change an object in place. `change` may refuse with an error. A write that changes
    /// nothing keeps the resourceVersion, as the real apiserver does.
    pub fn update(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let k = key(kind, namespace, name);
        let Some(current) = inner.objects.get(&k) else {
            return Err(ApiError::not_found(kind.group, kind.resource, name));
        };
        let mut next = current.clone();
        change(&mut next)?;
        // Identity and server-owned fields cannot be changed by writers.
        if !next["metadata"].is_object() {
            next["metadata"] = json!({});
        }
        if let Some(md) = next["metadata"].as_object_mut() {
            for field in [
                "uid",
                "creationTimestamp",
                "name",
                "namespace",
                "resourceVersion",
            ] {
                match current["metadata"].get(field) {
                    Some(v) => md.insert(field.into(), v.clone()),
                    None => md.remove(field),
                };
            }
        }
        if kind.has_generation {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
            let bumped = next.get("spec") != current.get("spec");
            next["metadata"]["generation"] = json!(generation + i64::from(bumped));
        }
        if next == *current {
            return Ok(next);
        }
        inner.rv += 1;
        next["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        inner.objects.insert(k, next.clone());
        self.record(&mut inner, kind, ChangeType::Modified, next.clone());
        Ok(next)
    }

    /// Remove an object now (the final step of a delete).
    pub fn remove(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let Some(mut object) = inner.objects.remove(&key(kind, namespace, name)) else {
            return Err(ApiError::not_found(kind.group, kind.resource, name));
        };
        inner.rv += 1;
        object["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
        self.record(&mut inner, kind, ChangeType::Deleted, object.clone());
        Ok(object)
    }

    /// Start watching after `from` (a resourceVersion); `None` replays nothing.
    pub fn subscribe(&self, from: Option<u64>) -> Result<Subscription, ApiError> {
        let inner = self.lock();
        let live = self.feed.subscribe();
        let replay = match from {
            None => Vec::new(),
            Some(rv) if rv < inner.floor => {
                return Err(ApiError::expired(format!(
                    "too old resource version: {rv} ({})",
                    inner.floor + 1
                )));
            }
            Some(rv) => inner
                .history
                .iter()
                .filter(|c| c.rv > rv)
                .cloned()
                .collect(),
        };
        Ok(Subscription {
            replay,
            live,
            rv: inner.rv,
        })
    }

    /// A snapshot of matching objects plus a subscription starting right after it, taken
    /// atomically (for watches that begin with the current state).
    pub fn snapshot_and_subscribe(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
    ) -> (Vec<Value>, Subscription) {
        let inner = self.lock();
        let live = self.feed.subscribe();
        let items = inner
            .objects
            .iter()
            .filter(|((g, r, ns, _), _)| {
                *g == kind.group && *r == kind.resource && namespace.is_none_or(|n| n == ns)
            })
            .map(|(_, v)| v.clone())
            .collect();
        (
            items,
            Subscription {
                replay: Vec::new(),
                live,
                rv: inner.rv,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::{CONFIGMAPS, NAMESPACES};

    #[test]
    fn a_watch_from_a_compacted_resource_version_gets_410() {
        let store = Store::new();
        store
            .create(&NAMESPACES, json!({"metadata": {"name": "default"}}))
            .unwrap();
        let early = store.current_rv();
        assert!(store.subscribe(Some(early)).is_ok());
        for i in 0..HISTORY + 10 {
            store
                .create(
                    &CONFIGMAPS,
                    json!({"metadata": {"name": format!("c{i}"), "namespace": "default"}}),
                )
                .unwrap();
        }
        let e = store.subscribe(Some(early)).err().expect("too old");
        assert_eq!((e.code, e.body["reason"].as_str()), (410, Some("Expired")));
        let recent = store.current_rv() - 5;
        assert_eq!(store.subscribe(Some(recent)).unwrap().replay.len(), 5);
    }

    #[test]
    fn a_write_that_changes_nothing_keeps_the_resource_version() {
        let store = Store::new();
        store
            .create(&NAMESPACES, json!({"metadata": {"name": "default"}}))
            .unwrap();
        let before = store.current_rv();
        store
            .update(&NAMESPACES, "", "default", |_| Ok(()))
            .unwrap();
        assert_eq!(store.current_rv(), before);
    }
}
