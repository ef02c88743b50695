//! `ls`: our debug containers in a namespace (or all), as a table or as data.
//!
//! Ours are recognised by the `DISTROLESS_DEBUG_VERSION` env var we put in each one (see
//! `spec.rs`); `kubectl debug`'s containers and other tools' are left out. Terminated ones are
//! listed too: Kubernetes keeps their entries, and users should see what is there. Copies of
//! ours (`--copy`) are listed beside them: their debug container, in the copy pod, by label.

use kube::api::ListParams;
use serde::Serialize;

use crate::base::error::Error;
use crate::base::exit::ExitStatus;
use crate::kube::cluster::Cluster;
use crate::output::printer::OutputFormat;
use crate::output::printer::Printer;
use crate::session::copy::leftover::pods_in_scope;
use crate::session::copy::spec::copy_in;
use crate::session::spec::{DebugContainer, debug_containers_in};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DebugContainerList {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<DebugContainer>,
}

/// Every debug container of ours in the namespace, or in all of them.
pub async fn list_debug_containers(
    cluster: &Cluster,
    all_namespaces: bool,
) -> Result<Vec<DebugContainer>, Error> {
    let (pods, scope) = pods_in_scope(cluster, all_namespaces);
    let list = cluster
        .bounded(pods.list(&ListParams::default()))
        .await
        .map_err(|source| Error::List { scope, source })?;
    Ok(list
        .items
        .iter()
        .flat_map(|pod| debug_containers_in(pod).into_iter().chain(copy_in(pod)))
        .collect())
}

pub async fn run(
    cluster: &Cluster,
    all_namespaces: bool,
    format: Option<OutputFormat>,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let items = list_debug_containers(cluster, all_namespaces).await?;
    if let Some(format) = format {
        printer.data(
            format,
            &DebugContainerList {
                api_version: "distroless-debug/v1",
                kind: "DebugContainerList",
                items,
            },
        )?;
        return Ok(ExitStatus::Success);
    }
    if items.is_empty() {
        printer.note(&if all_namespaces {
            "no debug containers of ours in any namespace".to_string()
        } else {
            format!(
                "no debug containers of ours in namespace {}",
                cluster.namespace
            )
        });
        return Ok(ExitStatus::Success);
    }
    printer.stdout(&table(&items, jiff::Timestamp::now(), all_namespaces))?;
    Ok(ExitStatus::Success)
}

/// Age like kubectl shows it: 45s, 12m, 3h, 2d.
pub fn age(started: Option<&str>, now: jiff::Timestamp) -> String {
    let Some(started) = started.and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return "-".to_string();
    };
    let secs = now.duration_since(started).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A kubectl-style table, columns padded to their widest cell.
pub fn table(items: &[DebugContainer], now: jiff::Timestamp, with_namespace: bool) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        [
            "NAMESPACE",
            "POD",
            "NAME",
            "TARGET",
            "IMAGE",
            "STATE",
            "AGE",
            "USER",
            "REASON",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in items {
        rows.push(vec![
            c.namespace.clone(),
            c.pod.clone(),
            c.name.clone(),
            c.target.clone(),
            c.image.clone(),
            c.state.name().to_string(),
            age(c.started.as_deref(), now),
            if c.user.is_empty() {
                "-".into()
            } else {
                c.user.clone()
            },
            if c.reason.is_empty() {
                "-".into()
            } else {
                c.reason.clone()
            },
        ]);
    }
    if !with_namespace {
        for row in &mut rows {
            row.remove(0);
        }
    }
    aligned(rows)
}

/// Rows of cells as kubectl prints a table: each column padded to its widest cell, three
/// spaces apart, no trailing blanks.
pub fn aligned(rows: Vec<Vec<String>>) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::spec::State;

    fn item(name: &str, state: State, started: Option<&str>) -> DebugContainer {
        DebugContainer {
            namespace: "prod".into(),
            pod: "web".into(),
            name: name.into(),
            target: "app".into(),
            image: "ghcr.io/kubectl-distroless-debug/base:0.1.0".into(),
            state,
            user: "alice".into(),
            reason: String::new(),
            started: started.map(String::from),
            profile: "auto".into(),
            has_agent: true,
            target_id: None,
        }
    }

    #[test]
    fn ages_read_like_kubectls() {
        let now: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap_or_default();
        assert_eq!(age(Some("2026-11-26T11:59:15Z"), now), "45s");
        assert_eq!(age(Some("2026-11-26T11:48:00Z"), now), "12m");
        assert_eq!(age(Some("2026-11-26T09:00:00Z"), now), "3h");
        assert_eq!(age(Some("2026-11-23T12:00:00Z"), now), "3d");
        assert_eq!(age(None, now), "-");
        assert_eq!(age(Some("yesterday"), now), "-");
    }

    #[test]
    fn the_table_has_every_column_and_a_namespace_only_with_all_namespaces() {
        let now: jiff::Timestamp = "2026-11-26T12:00:00Z".parse().unwrap_or_default();
        let items = [
            item("dbg-abcde", State::Running, Some("2026-11-26T11:50:00Z")),
            item("dbg-fghij", State::Terminated, None),
        ];
        let text = table(&items, now, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "POD", "NAME", "TARGET", "IMAGE", "STATE", "AGE", "USER", "REASON"
            ]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "web",
                "dbg-abcde",
                "app",
                "ghcr.io/kubectl-distroless-debug/base:0.1.0",
                "running",
                "10m",
                "alice",
                "-"
            ]
        );
        assert!(lines[2].contains("terminated"));
        assert!(table(&items, now, true).starts_with("NAMESPACE"));
    }
}
