//! Copies left behind (`--keep-copy`, a plugin killed with SIGKILL): found by our label for
//! `cleanup`, and deleted. Nothing else is touched: the label is only ever on our copies.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use crate::base::error::{Error, describe};
use crate::kube::cluster::Cluster;
use crate::output::printer::Printer;
use crate::session::copy::spec::{LABEL_COPY, copy_in};
use crate::session::spec::DebugContainer;

/// The pods of the namespace, or of all of them, and that scope in words (for errors).
pub fn pods_in_scope(cluster: &Cluster, all_namespaces: bool) -> (Api<Pod>, String) {
    if all_namespaces {
        (
            Api::all(cluster.client.clone()),
            "in any namespace".to_string(),
        )
    } else {
        (
            Api::namespaced(cluster.client.clone(), &cluster.namespace),
            format!("in namespace {}", cluster.namespace),
        )
    }
}

/// Every copy of ours in the namespace, or in all of them (one LIST by label).
pub async fn list_copies(
    cluster: &Cluster,
    all_namespaces: bool,
) -> Result<Vec<DebugContainer>, Error> {
    let (pods, scope) = pods_in_scope(cluster, all_namespaces);
    let list = cluster
        .bounded(pods.list(&ListParams::default().labels(&format!("{LABEL_COPY}=true"))))
        .await
        .map_err(|source| Error::List { scope, source })?;
    Ok(list.items.iter().filter_map(copy_in).collect())
}

/// Deletes `copies`; returns how many could not be deleted (each told).
pub async fn delete_copies(
    cluster: &Cluster,
    copies: &[DebugContainer],
    printer: &Printer,
) -> usize {
    let deletes = copies.iter().map(|c| async move {
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &c.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(5),
            ..DeleteParams::default()
        };
        (c, pods.delete(&c.pod, &params).await)
    });
    let mut failed = 0;
    for (c, outcome) in futures::future::join_all(deletes).await {
        match outcome {
            Ok(_) => printer.note(&format!("deleted copy {}/{}", c.namespace, c.pod)),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                failed += 1;
                printer.warn(&format!(
                    "could not delete copy {}/{}: {}",
                    c.namespace,
                    c.pod,
                    describe(&e)
                ));
            }
        }
    }
    failed
}
