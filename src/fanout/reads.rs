//! The reads every pod's plan needs that do not depend on the pod, made once per run: who we
//! are in each cluster (SelfSubjectReview) and the Pod Security level each namespace enforces
//! (a GET of the namespace). A session makes both beside its GET of the pod; fifty pods of one
//! namespace would make them fifty times for one answer. Here the first pod to need one makes
//! it and the others wait for that answer beside their own GET of the pod, so no pod waits a
//! round trip longer than a session does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::plan::{Surroundings, enforced_level};
use crate::session::profile::PsaLevel;

/// One answer per key, read by whoever asks first.
type Cells<K, T> = Mutex<HashMap<K, Arc<OnceCell<T>>>>;

/// A cluster by its context's name (unique within a run).
type Context = Option<String>;

#[derive(Default)]
pub struct SharedReads {
    users: Cells<Context, String>,
    levels: Cells<(Context, String), Option<PsaLevel>>,
}

/// The cell for `key`, made on first use.
fn cell<K: std::hash::Hash + Eq, T>(cells: &Cells<K, T>, key: K) -> Arc<OnceCell<T>> {
    // A panic elsewhere while holding the lock leaves the map as good as it was.
    let mut cells = cells.lock().unwrap_or_else(|e| e.into_inner());
    cells.entry(key).or_default().clone()
}

impl SharedReads {
    /// The surroundings of a pod in `cluster.namespace`, in the cluster `context` names.
    pub async fn surroundings(
        &self,
        context: Option<&str>,
        cluster: &Cluster,
        printer: &Printer,
    ) -> Surroundings {
        let context = context.map(str::to_string);
        let user = cell(&self.users, context.clone());
        let level = cell(&self.levels, (context, cluster.namespace.clone()));
        let (user, enforced) = tokio::join!(
            user.get_or_init(|| cluster.user_name()),
            level.get_or_init(|| enforced_level(cluster, printer)),
        );
        Surroundings {
            user: user.clone(),
            enforced: *enforced,
        }
    }
}
