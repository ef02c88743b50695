//! The connection to the cluster, built the way kubectl builds it.
//!
//! `--kubeconfig PATH`, else `$KUBECONFIG` (several files merged, first wins, as kubectl does),
//! else `~/.kube/config`, else the in-cluster service account; `--context` picks the context,
//! `--as` impersonates, `-n` overrides the context's namespace. `--request-timeout` bounds each
//! single request, not watches or exec streams (a long shell must not be cut off).

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::error::Error;
use crate::options::KubeOptions;

/// A client plus what the kubeconfig said about where and who we are.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The kubeconfig's user entry name (or `--as`): who we are when SelfSubjectReview is not
    /// available.
    pub kubeconfig_user: String,
    pub request_timeout: Option<Duration>,
}

impl Cluster {
    pub async fn connect(options: &KubeOptions) -> Result<Cluster, Error> {
        let (kubeconfig, path) = match &options.kubeconfig {
            Some(path) => (
                Some(Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig {
                    path: Some(path.display().to_string()),
                    source: Box::new(e),
                })?),
                Some(path.display().to_string()),
            ),
            None => {
                let from_env = Kubeconfig::from_env().map_err(|e| Error::Kubeconfig {
                    path: std::env::var("KUBECONFIG").ok(),
                    source: Box::new(e),
                })?;
                match from_env {
                    Some(k) => (Some(k), std::env::var("KUBECONFIG").ok()),
                    None => (Kubeconfig::read().ok(), Some("~/.kube/config".to_string())),
                }
            }
        };
        let kube_options = KubeConfigOptions {
            context: options.context.clone(),
            ..KubeConfigOptions::default()
        };
        let (mut config, user) = match kubeconfig {
            Some(kubeconfig) => {
                let user = user_of(&kubeconfig, options.context.as_deref());
                let config = Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                    .await
                    .map_err(|e| Error::Kubeconfig {
                        path,
                        source: Box::new(e),
                    })?;
                (config, user)
            }
            None => match Config::incluster() {
                Ok(config) => (config, "serviceaccount".to_string()),
                Err(_) => return Err(Error::NoKubeconfig),
            },
        };
        if let Some(as_user) = &options.as_user {
            config.auth_info.impersonate = Some(as_user.clone());
        }
        if let Some(timeout) = options.request_timeout {
            config.connect_timeout = Some(timeout);
        }
        let namespace = options
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|source| Error::Client { source })?;
        Ok(Cluster {
            client,
            namespace,
            kubeconfig_user: options.as_user.clone().unwrap_or(user),
            request_timeout: options.request_timeout,
        })
    }

    /// Runs one request under `--request-timeout`.
    pub async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        match self.request_timeout {
            None => request.await,
            Some(limit) => tokio::time::timeout(limit, request)
                .await
                .unwrap_or_else(|_| {
                    Err(kube::Error::Service(
                        format!(
                            "no answer within --request-timeout {}",
                            crate::duration::Human(limit)
                        )
                        .into(),
                    ))
                }),
        }
    }

    /// Who the API server says we are (SelfSubjectReview, GA in 1.28), else the kubeconfig user.
    pub async fn user_name(&self) -> String {
        let reviews: Api<SelfSubjectReview> = Api::all(self.client.clone());
        match self
            .bounded(reviews.create(&Default::default(), &SelfSubjectReview::default()))
            .await
        {
            Ok(review) => review
                .status
                .and_then(|s| s.user_info)
                .and_then(|u| u.username)
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| self.kubeconfig_user.clone()),
            Err(_) => self.kubeconfig_user.clone(),
        }
    }
}

/// The user entry name of the context in use.
fn user_of(kubeconfig: &Kubeconfig, context: Option<&str>) -> String {
    let context = context.or(kubeconfig.current_context.as_deref());
    kubeconfig
        .contexts
        .iter()
        .find(|c| Some(c.name.as_str()) == context)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.user.clone())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CONTEXTS: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: dev
  context: {cluster: c, user: alice, namespace: team}
- name: prod
  context: {cluster: c, user: oncall}
users:
- name: alice
  user: {token: a}
- name: oncall
  user: {token: b}
"#;

    #[test]
    fn the_user_is_the_one_of_the_context_in_use() {
        let kubeconfig = Kubeconfig::from_yaml(TWO_CONTEXTS).expect("valid kubeconfig");
        assert_eq!(user_of(&kubeconfig, None), "alice");
        assert_eq!(user_of(&kubeconfig, Some("prod")), "oncall");
        assert_eq!(user_of(&kubeconfig, Some("nope")), "unknown");
    }

    #[tokio::test]
    async fn context_namespace_and_impersonation_follow_the_flags() {
        let dir = std::env::temp_dir().join(format!("dd-kubeconfig-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("config");
        std::fs::write(&path, TWO_CONTEXTS).expect("write kubeconfig");
        let options = KubeOptions {
            kubeconfig: Some(path.clone()),
            ..KubeOptions::default()
        };
        let cluster = Cluster::connect(&options).await.expect("connect");
        assert_eq!(
            (cluster.namespace.as_str(), cluster.kubeconfig_user.as_str()),
            ("team", "alice")
        );

        let options = KubeOptions {
            kubeconfig: Some(path.clone()),
            context: Some("prod".into()),
            as_user: Some("bob".into()),
            namespace: Some("web".into()),
            ..KubeOptions::default()
        };
        let cluster = Cluster::connect(&options).await.expect("connect");
        assert_eq!(
            (cluster.namespace.as_str(), cluster.kubeconfig_user.as_str()),
            ("web", "bob")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
