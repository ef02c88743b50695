//! The connection to the cluster, built the way kubectl builds it.
//!
//! `--kubeconfig PATH`, else `$KUBECONFIG` (several files merged, first wins, as kubectl does),
//! else `~/.kube/config`, else the in-cluster service account; `--context` picks the context
//! (a fan-out takes several: a [`Connection`] each), `--as` impersonates, `-n` overrides the
//! context's namespace. `--request-timeout` bounds each single request, not watches or exec
//! streams (a long shell must not be cut off). Every client carries the one retry policy
//! (`retry.rs`): idempotent requests ride out a struggling API server.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::base::error::Error;
use crate::kube::retry::{AttemptTimedOut, RetryLayer, RetryNotice, RetryPolicy};

/// How to reach the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeOptions {
    pub namespace: Option<String>,
    /// `--context`, each once, in the order given; empty: the kubeconfig's current context.
    /// Several only for a fan-out (`Options::from_cli` refuses them elsewhere).
    pub contexts: Vec<String>,
    pub kubeconfig: Option<PathBuf>,
    pub as_user: Option<String>,
    pub request_timeout: Option<Duration>,
    /// `--api-retries` and `--api-retry-within`.
    pub retry: RetryPolicy,
}

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
    /// The kubeconfig context that named this cluster (`--context`, else the current one);
    /// `None` in-cluster. What the plugin remembers of a pod is kept per context.
    pub context: Option<String>,
    /// The policy the client's requests are retried under, for the callers that retry a
    /// non-idempotent request themselves after checking it did not land (session/inject.rs).
    pub retry: RetryPolicy,
    /// The flags this client was built from, so that another process can build it again
    /// (session/handoff.rs).
    pub origin: Origin,
}

/// What, besides the context, a client of this run was built from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// `--kubeconfig`; otherwise `$KUBECONFIG`, which a child process inherits.
    pub kubeconfig: Option<PathBuf>,
    /// `--as`.
    pub as_user: Option<String>,
}

/// One cluster of a run, and the kubeconfig context that named it.
#[derive(Clone)]
pub struct Connection {
    /// `--context`, else the kubeconfig's current context; `None` in-cluster (no kubeconfig).
    pub context: Option<String>,
    pub cluster: Cluster,
}

/// The kubeconfig kubectl would read (`--kubeconfig`, else `$KUBECONFIG`'s files merged, else
/// ~/.kube/config), None when there is none, and where it came from, in words.
pub fn read_kubeconfig(
    options: &KubeOptions,
) -> Result<(Option<Kubeconfig>, Option<String>), Error> {
    Ok(match &options.kubeconfig {
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
    })
}

impl Cluster {
    /// The one cluster of a command that works in one (`Options::from_cli` refuses several
    /// contexts for those).
    pub async fn connect(
        options: &KubeOptions,
        notice: Option<RetryNotice>,
    ) -> Result<Cluster, Error> {
        let connections = Cluster::connect_each(options, notice).await?;
        connections
            .into_iter()
            .next()
            .map(|connection| connection.cluster)
            .ok_or(Error::NoKubeconfig)
    }

    /// A client per context named (one for the current context when none is): never empty.
    /// Every name is checked against the kubeconfig before any client exists, so a typo in
    /// the last of three contexts is reported before the first cluster hears anything.
    /// `notice` hears of each retry (the printer says "API server busy, retrying (2/5)").
    pub async fn connect_each(
        options: &KubeOptions,
        notice: Option<RetryNotice>,
    ) -> Result<Vec<Connection>, Error> {
        let (kubeconfig, path) = read_kubeconfig(options)?;
        let Some(kubeconfig) = kubeconfig else {
            if let Some(context) = options.contexts.first() {
                return Err(Error::UnknownContext {
                    context: context.clone(),
                    path,
                    known: Vec::new(),
                });
            }
            let config = Config::incluster().map_err(|_| Error::NoKubeconfig)?;
            let cluster = Cluster::with(config, "serviceaccount".to_string(), options, &notice)?;
            return Ok(vec![Connection {
                context: None,
                cluster,
            }]);
        };
        let known: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
        if let Some(unknown) = options.contexts.iter().find(|c| !known.contains(c)) {
            return Err(Error::UnknownContext {
                context: unknown.clone(),
                path,
                known,
            });
        }
        let named: Vec<Option<&str>> = if options.contexts.is_empty() {
            vec![None]
        } else {
            options.contexts.iter().map(|c| Some(c.as_str())).collect()
        };
        let mut connections = Vec::with_capacity(named.len());
        for context in named {
            let kube_options = KubeConfigOptions {
                context: context.map(str::to_string),
                ..KubeConfigOptions::default()
            };
            let user = user_of(&kubeconfig, context);
            let config = Config::from_custom_kubeconfig(kubeconfig.clone(), &kube_options)
                .await
                .map_err(|e| Error::Kubeconfig {
                    path: path.clone(),
                    source: Box::new(e),
                })?;
            let context = context
                .map(str::to_string)
                .or_else(|| kubeconfig.current_context.clone());
            let mut cluster = Cluster::with(config, user, options, &notice)?;
            cluster.context = context.clone();
            connections.push(Connection { context, cluster });
        }
        Ok(connections)
    }

    /// The client for `config`, with the flags that apply to every cluster of the run.
    fn with(
        mut config: Config,
        user: String,
        options: &KubeOptions,
        notice: &Option<RetryNotice>,
    ) -> Result<Cluster, Error> {
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
        // One policy: ours (kube's would retry a PATCH on 503 too, up to 15 times).
        config.default_retry = false;
        let layer = RetryLayer {
            policy: options.retry,
            attempt_timeout: options.request_timeout,
            notice: notice.clone(),
        };
        let client = ClientBuilder::try_from(config)
            .map_err(|source| Error::Client { source })?
            .with_layer(&layer)
            .build();
        Ok(Cluster {
            client,
            namespace,
            kubeconfig_user: options.as_user.clone().unwrap_or(user),
            request_timeout: options.request_timeout,
            context: None,
            retry: options.retry,
            origin: Origin {
                kubeconfig: options.kubeconfig.clone(),
                as_user: options.as_user.clone(),
            },
        })
    }

    /// Runs one request, reading its answer included, under `--request-timeout`: each attempt
    /// is bounded by the retry layer, the whole by that many attempts plus the retry budget.
    pub async fn bounded<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        let Some(each) = self.request_timeout else {
            return request.await;
        };
        let limit = each.saturating_mul(self.retry.retries + 1) + self.retry.within;
        tokio::time::timeout(limit, request)
            .await
            .unwrap_or_else(|_| Err(kube::Error::Service(Box::new(AttemptTimedOut(each)))))
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
        let cluster = Cluster::connect(&options, None).await.expect("connect");
        assert_eq!(
            (cluster.namespace.as_str(), cluster.kubeconfig_user.as_str()),
            ("team", "alice")
        );

        let options = KubeOptions {
            kubeconfig: Some(path.clone()),
            contexts: vec!["prod".into()],
            as_user: Some("bob".into()),
            namespace: Some("web".into()),
            ..KubeOptions::default()
        };
        let cluster = Cluster::connect(&options, None).await.expect("connect");
        assert_eq!(
            (cluster.namespace.as_str(), cluster.kubeconfig_user.as_str()),
            ("web", "bob")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_client_per_context_each_with_its_own_namespace_and_user() {
        let dir = std::env::temp_dir().join(format!("dd-contexts-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("config");
        std::fs::write(&path, TWO_CONTEXTS).expect("write kubeconfig");
        let with = |contexts: &[&str]| KubeOptions {
            kubeconfig: Some(path.clone()),
            contexts: contexts.iter().map(|c| c.to_string()).collect(),
            ..KubeOptions::default()
        };
        let seen = |connections: Vec<Connection>| -> Vec<(Option<String>, String, String)> {
            connections
                .into_iter()
                .map(|c| (c.context, c.cluster.namespace, c.cluster.kubeconfig_user))
                .collect()
        };
        let connections = Cluster::connect_each(&with(&["prod", "dev"]), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            seen(connections),
            [
                (Some("prod".into()), "default".into(), "oncall".into()),
                (Some("dev".into()), "team".into(), "alice".into())
            ]
        );
        // None named: the current context, by its name (results always carry one).
        let connections = Cluster::connect_each(&with(&[]), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            seen(connections),
            [(Some("dev".into()), "team".into(), "alice".into())]
        );
        // A typo anywhere in the list is found before any client exists.
        let error = Cluster::connect_each(&with(&["dev", "prdo"]), None)
            .await
            .err();
        let text = error.as_ref().map(ToString::to_string).unwrap_or_default();
        assert_eq!(
            text,
            format!(
                "`--context prdo`: the kubeconfig {} has no context \"prdo\" (its contexts: dev, prod); nothing was sent to any cluster",
                path.display()
            )
        );
        assert_eq!(
            error.map(|e| e.exit_status()),
            Some(crate::base::exit::ExitStatus::Usage)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
