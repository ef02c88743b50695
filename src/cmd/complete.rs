//! Shell completion: the scripts of `completion SHELL`, and the answers for `kubectl
//! distroless-debug <TAB>`.
//!
//! kubectl (1.26 and later, kubernetes/kubernetes#105867) completes a plugin's arguments by
//! running `kubectl_complete-<plugin>` with the words typed after the plugin's name, the last
//! one being the word under the cursor (empty after a space). Ours runs this binary with the
//! hidden verb `__complete`, and the answer is cobra's: one candidate per line, then a line
//! `:N`, N being a ShellCompDirective (spf13/cobra completions.go). The line is read the way
//! clap would read it (flags from the same `Command`), and `--context`, `-n` and
//! `--kubeconfig` already typed choose the cluster asked. A completion must never hold up the
//! shell nor print an error into it: the whole answer has [`LIMIT`], and on any failure there
//! are no candidates, only the directive line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, PodSpec};
use kube::Api;
use kube::api::ListParams;

use crate::base::error::Error;
use crate::base::exit::ExitStatus;
use crate::cmd::cli::Cli;
use crate::kube::cluster::{Cluster, KubeOptions, read_kubeconfig};
use crate::output::printer::Printer;
use crate::session::target::{TargetKind, TargetRef};

/// The hidden first argument that asks for completions.
pub const VERB: &str = "__complete";

/// How long one completion may take, connection and requests included.
const LIMIT: Duration = Duration::from_secs(2);

// ShellCompDirective bits: no space after the candidate; no file names when there is none.
const NO_SPACE: u8 = 2;
const NO_FILE_COMP: u8 = 4;
/// Let the shell complete file names.
const FILES: u8 = 0;

/// `completion SHELL`: clap_complete's script for the binary itself.
pub fn script(shell: clap_complete::Shell, printer: &Printer) -> Result<ExitStatus, Error> {
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "kubectl-distroless_debug",
        &mut script,
    );
    printer.stdout(&String::from_utf8_lossy(&script))?;
    Ok(ExitStatus::Success)
}

/// What the word under the cursor can be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Question {
    /// Fixed candidates: flag names, subcommands, the values of a flag.
    Fixed(Vec<String>),
    /// Pods (and, after `deploy/` and the like, workloads) of the namespace; with the
    /// subcommands too when `subcommands`; `suffix` after each (`:` for `cp`).
    Targets {
        subcommands: Vec<String>,
        suffix: &'static str,
    },
    /// The containers of the target typed, init sidecars included.
    Containers(Option<TargetRef>),
    Contexts,
    Namespaces,
    /// Local paths: the shell's own file completion.
    Files,
    Nothing,
}

/// A command line being typed, read as far as completion needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    kube: KubeOptions,
    question: Question,
    /// Put before each candidate, and taken off the word before matching (`--toolkit=`).
    lead: String,
    /// The word under the cursor, without `lead`.
    word: String,
}

/// Reads `words` (the last one under the cursor) with clap's view of the flags.
fn read_line(words: &[String]) -> Line {
    let mut root = Cli::command();
    root.build();
    let (typed, word) = match words.split_last() {
        Some((last, typed)) => (typed, last.clone()),
        None => (&[][..], String::new()),
    };
    let mut kube = KubeOptions::default();
    let mut subcommand: Option<&clap::Command> = None;
    let mut positionals: Vec<&str> = Vec::new();
    let mut pending: Option<&clap::Arg> = None;
    let mut builtin = false;
    let mut remote_command = false;
    for w in typed {
        let command = subcommand.unwrap_or(&root);
        if let Some(arg) = pending.take() {
            note(arg, w, &mut kube, &mut builtin);
            continue;
        }
        if remote_command {
            continue;
        }
        if w == "--" {
            remote_command = true;
        } else if let Some(flag) = w.strip_prefix("--") {
            let (name, value) = flag.split_once('=').unzip();
            let name = name.unwrap_or(flag);
            if let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(name)) {
                match value {
                    Some(value) => note(arg, value, &mut kube, &mut builtin),
                    // `--dry-run` takes its value only as `--dry-run=server`.
                    None if arg.get_action().takes_values() && !arg.is_require_equals_set() => {
                        pending = Some(arg)
                    }
                    None => {}
                }
            }
        } else if let Some(shorts) = w.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (i, c) in shorts.char_indices() {
                let Some(arg) = command.get_arguments().find(|a| a.get_short() == Some(c)) else {
                    break;
                };
                if arg.get_action().takes_values() {
                    let rest = &shorts[i + c.len_utf8()..];
                    match rest.strip_prefix('=').unwrap_or(rest) {
                        "" => pending = Some(arg),
                        value => note(arg, value, &mut kube, &mut builtin),
                    }
                    break;
                }
            }
        } else if subcommand.is_none()
            && positionals.is_empty()
            && root.find_subcommand(w).is_some()
        {
            subcommand = root.find_subcommand(w);
        } else {
            positionals.push(w);
        }
    }
    let command = subcommand.unwrap_or(&root);
    let mut lead = String::new();
    let mut word = word;
    let value_of = match pending {
        Some(arg) => Some(arg),
        None if remote_command => None,
        None => {
            let flag = word.strip_prefix("--").and_then(|f| f.split_once('='));
            let arg = flag
                .and_then(|(name, _)| command.get_arguments().find(|a| a.get_long() == Some(name)));
            if let (Some(_), Some((name, value))) = (arg, flag) {
                lead = format!("--{name}=");
                word = value.to_string();
            }
            arg
        }
    };
    let target = || {
        positionals
            .iter()
            .map(|p| p.split_once(':').map_or(*p, |(t, _)| t))
            .find_map(|p| p.parse::<TargetRef>().ok())
    };
    let question = if let Some(arg) = value_of {
        match arg.get_id().as_str() {
            "container" => Question::Containers(target()),
            "context" => Question::Contexts,
            "namespace" => Question::Namespaces,
            "builtin" => Question::Fixed(
                crate::fanout::runbook::builtin_names()
                    .into_iter()
                    .map(String::from)
                    .collect(),
            ),
            _ => fixed_values(arg).unwrap_or(if takes_path(arg) {
                Question::Files
            } else {
                Question::Nothing
            }),
        }
    } else if remote_command {
        Question::Nothing
    } else if word.starts_with('-') {
        Question::Fixed(flags_of(command))
    } else {
        positional_question(
            command,
            subcommand.is_some(),
            &positionals,
            builtin,
            &word,
            &root,
        )
    };
    Line {
        kube,
        question,
        lead,
        word,
    }
}

/// Keeps what chooses the cluster: `--context` (the first of several), `-n`, `--kubeconfig`.
fn note(arg: &clap::Arg, value: &str, kube: &mut KubeOptions, builtin: &mut bool) {
    match arg.get_id().as_str() {
        "context" if kube.contexts.is_empty() => {
            kube.contexts = value.split(',').take(1).map(String::from).collect();
        }
        "namespace" => kube.namespace = Some(value.to_string()),
        "kubeconfig" => kube.kubeconfig = Some(PathBuf::from(value)),
        "builtin" => *builtin = true,
        _ => {}
    }
}

fn fixed_values(arg: &clap::Arg) -> Option<Question> {
    let values: Vec<String> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    (!values.is_empty()).then_some(Question::Fixed(values))
}

fn takes_path(arg: &clap::Arg) -> bool {
    arg.get_value_names().is_some_and(|names| {
        names
            .iter()
            .any(|n| matches!(n.as_str(), "PATH" | "FILE" | "DIR" | "RUNBOOK"))
    })
}

fn flags_of(command: &clap::Command) -> Vec<String> {
    let mut flags = Vec::new();
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        flags.extend(arg.get_long().map(|l| format!("--{l}")));
        flags.extend(arg.get_short().map(|s| format!("-{s}")));
    }
    flags
}

/// The question at a positional place of `command`.
fn positional_question(
    command: &clap::Command,
    is_subcommand: bool,
    positionals: &[&str],
    builtin: bool,
    word: &str,
    root: &clap::Command,
) -> Question {
    let pods = |suffix| Question::Targets {
        subcommands: Vec::new(),
        suffix,
    };
    if !is_subcommand {
        return match positionals {
            [] => Question::Targets {
                subcommands: root
                    .get_subcommands()
                    .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                    .map(|s| s.get_name().to_string())
                    .collect(),
                suffix: "",
            },
            _ => Question::Nothing,
        };
    }
    match (command.get_name(), positionals.len()) {
        // A local path, or pod:/path (nothing to offer after the colon: the pod's files).
        ("cp", 0 | 1) if word.contains(':') => Question::Nothing,
        ("cp", 0 | 1) if word.starts_with(['.', '/', '~']) => Question::Files,
        ("cp", 0 | 1) => pods(":"),
        ("snapshot" | "info", 0) => pods(""),
        ("run", 0) if !builtin => Question::Files,
        ("run", _) => pods(""),
        _ => command
            .get_arguments()
            .filter(|a| a.is_positional())
            .nth(positionals.len())
            .and_then(fixed_values)
            .unwrap_or(Question::Nothing),
    }
}

/// The hidden verb: prints the candidates for `words` and the directive, always exits 0.
pub fn answer(words: &[OsString]) -> ExitCode {
    let words: Vec<String> = words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let line = read_line(&words);
    let found = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime
            .block_on(async { tokio::time::timeout(LIMIT, candidates(&line)).await })
            .unwrap_or_default(),
        Err(_) => None,
    };
    let _ = Printer::plain().stdout(&reply(&line, found));
    ExitCode::SUCCESS
}

/// cobra's answer: the candidates that extend the word, each after `lead`, then `:DIRECTIVE`;
/// only the directive (no file names) when `found` is None.
fn reply(line: &Line, found: Option<(Vec<String>, u8)>) -> String {
    let (candidates, directive) = found.unwrap_or((Vec::new(), NO_FILE_COMP));
    let mut out = String::new();
    for candidate in candidates.iter().filter(|c| c.starts_with(&line.word)) {
        out.push_str(&line.lead);
        out.push_str(candidate);
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    out
}

/// The candidates and the directive; None when something failed on the way.
async fn candidates(line: &Line) -> Option<(Vec<String>, u8)> {
    let cluster = || async {
        let mut options = line.kube.clone();
        options.request_timeout = Some(LIMIT);
        // One attempt: a completion that waits out a busy API server is worse than none.
        options.retry.retries = 0;
        Cluster::connect(&options, None).await.ok()
    };
    Some(match &line.question {
        Question::Fixed(values) => (values.clone(), NO_FILE_COMP),
        Question::Files => (Vec::new(), FILES),
        Question::Nothing => (Vec::new(), NO_FILE_COMP),
        Question::Contexts => {
            let (kubeconfig, _) = read_kubeconfig(&line.kube).ok()?;
            let names = kubeconfig?.contexts.into_iter().map(|c| c.name).collect();
            (names, NO_FILE_COMP)
        }
        Question::Namespaces => {
            let cluster = cluster().await?;
            let api: Api<Namespace> = Api::all(cluster.client);
            (names(api).await?, NO_FILE_COMP)
        }
        Question::Containers(target) => {
            let cluster = cluster().await?;
            (containers(&cluster, target.as_ref()?).await?, NO_FILE_COMP)
        }
        Question::Targets {
            subcommands,
            suffix,
        } => {
            let cluster = cluster().await?;
            let mut found = subcommands.clone();
            for name in targets(&cluster, &line.word).await? {
                found.push(format!("{name}{suffix}"));
            }
            let directive = if suffix.is_empty() {
                NO_FILE_COMP
            } else {
                NO_FILE_COMP | NO_SPACE
            };
            (found, directive)
        }
    })
}

async fn names<K>(api: Api<K>) -> Option<Vec<String>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = api.list(&ListParams::default()).await.ok()?;
    Some(
        list.items
            .iter()
            .filter_map(|o| o.meta().name.clone())
            .collect(),
    )
}

/// Pod names, or with a kind's prefix typed (`deploy/`), that kind's names with the prefix as
/// typed.
async fn targets(cluster: &Cluster, word: &str) -> Option<Vec<String>> {
    let Some((prefix, _)) = word.split_once('/') else {
        return names(pods(cluster)).await;
    };
    let kind = format!("{prefix}/x").parse::<TargetRef>().ok()?.kind;
    let (client, ns) = (cluster.client.clone(), cluster.namespace.as_str());
    let found = match kind {
        TargetKind::Pod => names(pods(cluster)).await,
        TargetKind::Deployment => names(Api::<Deployment>::namespaced(client, ns)).await,
        TargetKind::StatefulSet => names(Api::<StatefulSet>::namespaced(client, ns)).await,
        TargetKind::DaemonSet => names(Api::<DaemonSet>::namespaced(client, ns)).await,
        TargetKind::ReplicaSet => names(Api::<ReplicaSet>::namespaced(client, ns)).await,
        TargetKind::Job => names(Api::<Job>::namespaced(client, ns)).await,
    }?;
    Some(found.into_iter().map(|n| format!("{prefix}/{n}")).collect())
}

async fn get<K>(cluster: &Cluster, name: &str) -> Option<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    Api::<K>::namespaced(cluster.client.clone(), &cluster.namespace)
        .get(name)
        .await
        .ok()
}

fn pods(cluster: &Cluster) -> Api<Pod> {
    Api::namespaced(cluster.client.clone(), &cluster.namespace)
}

/// The containers a session may target: the pod's (or the workload's pod template's) regular
/// containers and its native sidecars (init containers with `restartPolicy: Always`).
async fn containers(cluster: &Cluster, target: &TargetRef) -> Option<Vec<String>> {
    let name = target.name.as_str();
    let spec: Option<PodSpec> = match target.kind {
        TargetKind::Pod => get::<Pod>(cluster, name).await?.spec,
        TargetKind::Deployment => get::<Deployment>(cluster, name).await?.spec?.template.spec,
        TargetKind::StatefulSet => get::<StatefulSet>(cluster, name).await?.spec?.template.spec,
        TargetKind::DaemonSet => get::<DaemonSet>(cluster, name).await?.spec?.template.spec,
        TargetKind::ReplicaSet => get::<ReplicaSet>(cluster, name).await?.spec?.template?.spec,
        TargetKind::Job => get::<Job>(cluster, name).await?.spec?.template.spec,
    };
    let spec = spec?;
    let sidecars = spec
        .init_containers
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    Some(
        spec.containers
            .into_iter()
            .chain(sidecars)
            .map(|c| c.name)
            .collect(),
    )
}

#[cfg(test)]
#[path = "complete_tests.rs"]
mod tests;
