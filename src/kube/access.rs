//! Which permissions we lack, asked of the API server, for the 403 hint.
//!
//! A 403 says only that one request was refused; a SelfSubjectAccessReview per permission a
//! session needs names all that are missing at once, so the admin fixes it in one go. This runs
//! only after a 403, never on the happy path.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use crate::base::error::{Permission, SESSION_PERMISSIONS};
use crate::kube::cluster::Cluster;

/// Whether we may do `permission` in `namespace`; None when the API server cannot say.
pub async fn allowed(cluster: &Cluster, namespace: &str, permission: Permission) -> Option<bool> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(cluster.client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(permission.verb.to_string()),
                resource: Some(permission.resource.to_string()),
                subresource: permission.subresource.map(String::from),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = cluster
        .bounded(reviews.create(&PostParams::default(), &review))
        .await
        .ok()?;
    answer.status.map(|s| s.allowed)
}

/// The permissions of a session (and `failed`, the one that was refused) that the API server
/// says we do not have in `namespace`. If the reviews themselves fail, `failed` alone.
pub async fn missing_permissions(
    cluster: &Cluster,
    namespace: &str,
    failed: Permission,
) -> Vec<Permission> {
    let mut wanted: Vec<Permission> = SESSION_PERMISSIONS.to_vec();
    if !wanted.contains(&failed) {
        wanted.insert(0, failed);
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(cluster.client.clone());
    let checks = wanted.iter().map(|p| {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.to_string()),
                    verb: Some(p.verb.to_string()),
                    resource: Some(p.resource.to_string()),
                    subresource: p.subresource.map(String::from),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let reviews = reviews.clone();
        async move {
            cluster
                .bounded(reviews.create(&PostParams::default(), &review))
                .await
        }
    });
    let answers = futures::future::join_all(checks).await;
    let mut missing = Vec::new();
    for (permission, answer) in wanted.iter().zip(answers) {
        match answer {
            Ok(review) if review.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => missing.push(*permission),
            // Cannot even ask: report what we know was refused.
            Err(_) => return vec![failed],
        }
    }
    if missing.is_empty() {
        vec![failed]
    } else {
        missing
    }
}
