//! `kubectl distroless-debug info TARGET`: the agent's facts about the target process (pid,
//! uid/gid, executable, command line, runtime, listening sockets, mounts, environment variable
//! names), read in a debug container of ours.
//!
//! The container comes from the session's own steps (`debug::running_debug_container`): one of
//! ours already running on the target is reused, else one is added and stopped afterwards.
//! The agent does the reading (docs/agent.md, `info`); this module runs it, adds where it ran
//! and which toolkit fits the runtime, and prints it. The same read serves `--toolkit auto`.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{Map, Value};

use crate::base::error::Error;
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::kube::exec::Remote;
use crate::output::printer::OutputFormat;
use crate::output::printer::Printer;
use crate::session::obtain::{Obtained, running_debug_container};
use crate::session::options::DebugOptions;
use crate::toolkit::runtime::toolkit_for_runtime;

use crate::session::facts::{Read, read_facts_last};

pub async fn run(
    options: &DebugOptions,
    format: Option<OutputFormat>,
    cluster: &Cluster,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    let (plan, obtained) =
        running_debug_container(options, cluster, &mut interrupts, printer).await?;
    let mut session = match obtained {
        Obtained::Ready { session, .. } => session,
        Obtained::Interrupted(signal) => return Ok(ExitStatus::Interrupted(signal)),
    };
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let remote = Remote {
        pods: &pods,
        pod: &session.pod,
        container: &session.container,
        tap: None,
    };
    // Its one exec is its last: the container ends with it (docs/agent.md).
    let (read, exited) =
        read_facts_last(&remote, &session.target, session.has_agent, &mut interrupts).await;
    let interrupted = matches!(read, Ok(Read::Interrupted(_)));
    session.last_exec_exited(exited);
    session.teardown(printer, interrupted).await;
    let mut facts = match read? {
        Read::Facts(facts) => facts,
        Read::Interrupted(signal) => return Ok(ExitStatus::Interrupted(signal)),
    };
    let toolkit = toolkit_for_runtime(facts.get("runtime").and_then(Value::as_str));
    // Where the facts come from first, then the agent's own fields (schema 1).
    let mut shown = Map::new();
    shown.insert("namespace".into(), cluster.namespace.clone().into());
    shown.insert("pod".into(), plan.target.pod_name().into());
    shown.insert("container".into(), plan.target.container.clone().into());
    shown.insert("debugContainer".into(), session.container.clone().into());
    shown.insert("toolkit".into(), toolkit.name().into());
    shown.append(&mut facts);
    let shown = Value::Object(shown);
    match format {
        Some(format) => printer.data(format, &shown)?,
        None => printer.stdout(&text(&shown))?,
    }
    Ok(ExitStatus::Success)
}

/// Aligned `key  value` lines; a fact the agent could not read shows as `-`.
pub fn text(facts: &Value) -> String {
    let field = |key: &str| match &facts[key] {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let list = |key: &str, each: &dyn Fn(&Value) -> String| match facts[key].as_array() {
        Some(items) if items.is_empty() => "(none)".to_string(),
        Some(items) => items.iter().map(each).collect::<Vec<_>>().join(", "),
        None => "-".to_string(),
    };
    let plain = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    let runtime = match facts["go_version"].as_str() {
        Some(version) => format!("{} ({version})", field("runtime")),
        None => field("runtime"),
    };
    let rows = [
        (
            "pod",
            format!(
                "{}/{} (container {}, read from {})",
                field("namespace"),
                field("pod"),
                field("container"),
                field("debugContainer")
            ),
        ),
        ("pid", field("pid")),
        (
            "found by",
            format!(
                "{} (container ID {})",
                field("method"),
                field("container_id")
            ),
        ),
        (
            "uid/gid",
            format!(
                "{}/{} (groups {})",
                field("uid"),
                field("gid"),
                list("groups", &plain)
            ),
        ),
        ("exe", field("exe")),
        ("cmdline", list("cmdline", &plain).replace(", ", " ")),
        ("runtime", runtime),
        ("toolkit", format!("{} (--toolkit {0})", field("toolkit"))),
        (
            "listening",
            list("listening", &|s| {
                format!(
                    "{} {}:{}",
                    s["proto"].as_str().unwrap_or("?"),
                    s["addr"].as_str().unwrap_or("?"),
                    s["port"]
                )
            }),
        ),
        (
            "mounts",
            list("mounts", &|m| {
                format!(
                    "{} ({})",
                    m["path"].as_str().unwrap_or("?"),
                    m["fstype"].as_str().unwrap_or("?")
                )
            }),
        ),
        ("env names", list("env_names", &plain)),
        ("errors", list("errors", &plain)),
    ];
    rows.iter()
        .map(|(key, value)| format!("{key:<10} {value}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_every_fact_and_a_dash_for_what_was_unreadable() {
        let facts = serde_json::json!({
            "namespace": "default", "pod": "web", "container": "app",
            "debugContainer": "dbg-abcde", "toolkit": "go",
            "schema": 1, "pid": 12, "container_id": "3f2a", "method": "cgroup", "uid": 65532, "gid": 65532, "groups": [65532],
            "exe": "/app/server", "cmdline": ["/app/server", "--port", "8080"],
            "runtime": "go", "go_version": "go1.22.3",
            "listening": [{"proto": "tcp", "addr": "0.0.0.0", "port": 8080}],
            "mounts": null, "env_names": ["PATH", "HOME"], "errors": []
        });
        let shown = text(&facts);
        for line in [
            "pod        default/web (container app, read from dbg-abcde)",
            "pid        12",
            "found by   cgroup (container ID 3f2a)",
            "uid/gid    65532/65532 (groups 65532)",
            "cmdline    /app/server --port 8080",
            "runtime    go (go1.22.3)",
            "toolkit    go (--toolkit go)",
            "listening  tcp 0.0.0.0:8080",
            "mounts     -",
            "env names  PATH, HOME",
            "errors     (none)",
        ] {
            assert!(shown.lines().any(|l| l == line), "{line:?} in\n{shown}");
        }
    }
}
