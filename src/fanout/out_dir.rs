//! `--out-dir DIR`: each step's complete output and collected files on disk, and the run's
//! document as `DIR/summary.json`.
//!
//! One cluster: `DIR/<namespace>/<pod>/<step>.{out,err}` and collected files under
//! `DIR/<namespace>/<pod>/<step>/`. Several (`--context a,b`): the same under
//! `DIR/<context>/`, so the same namespace/name in two clusters are two directories. Every
//! component comes from a name we do not control, so none can become `..` or a path.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::fanout::results::{PodAddress, RunResult};

#[derive(Debug, Clone)]
pub struct OutDir {
    pub root: PathBuf,
    /// The run has several contexts: a directory level per context.
    by_context: bool,
}

/// A name from the API server as one path component: pod and namespace names are DNS names,
/// but a server's answer is not trusted to turn into `..` or a path.
fn component(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.as_str() {
        "" | "." | ".." => format!("_{safe}"),
        _ => safe,
    }
}

/// A context name as one path component. Context names are free text (EKS names them
/// `arn:aws:eks:REGION:ACCOUNT:cluster/NAME`), and two of them must never share a directory,
/// so the mapping is one-to-one: letters, digits, `-`, `_` and `.` stay, every other byte is
/// `%XX`, and a name of only dots is escaped entirely.
fn context_component(name: &str) -> String {
    let escape_all = name.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if !escape_all && (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "%".to_string() } else { out }
}

impl OutDir {
    /// `by_context`: the run has more than one context.
    pub fn create(root: &Path, by_context: bool) -> std::io::Result<OutDir> {
        std::fs::create_dir_all(root)?;
        Ok(OutDir {
            root: root.to_path_buf(),
            by_context,
        })
    }

    /// `[<context>/]<namespace>/<pod>`, relative to the root.
    pub fn pod_dir(&self, at: PodAddress<'_>) -> PathBuf {
        let mut dir = PathBuf::new();
        if self.by_context {
            dir.push(context_component(at.context.unwrap_or_default()));
        }
        dir.push(component(at.namespace));
        dir.push(component(at.pod));
        dir
    }

    /// Writes a step's stdout (none for `collect:`, whose stdout is the archive) and stderr;
    /// their paths relative to the root.
    pub fn write_step(
        &self,
        at: PodAddress<'_>,
        step: &str,
        stdout: Option<&[u8]>,
        stderr: &[u8],
    ) -> std::io::Result<(Option<String>, String)> {
        let dir = self.pod_dir(at);
        std::fs::create_dir_all(self.root.join(&dir))?;
        let out = match stdout {
            Some(bytes) => {
                let out = dir.join(format!("{}.out", component(step)));
                std::fs::write(self.root.join(&out), bytes)?;
                Some(out.display().to_string())
            }
            None => None,
        };
        let err = dir.join(format!("{}.err", component(step)));
        std::fs::write(self.root.join(&err), stderr)?;
        Ok((out, err.display().to_string()))
    }

    /// The directory a `collect:` step writes into (created), relative and absolute.
    pub fn collect_dir(
        &self,
        at: PodAddress<'_>,
        step: &str,
    ) -> std::io::Result<(PathBuf, PathBuf)> {
        let relative = self.pod_dir(at).join(component(step));
        let absolute = self.root.join(&relative);
        std::fs::create_dir_all(&absolute)?;
        Ok((relative, absolute))
    }

    pub fn write_summary(&self, result: &RunResult) -> std::io::Result<PathBuf> {
        let path = self.root.join("summary.json");
        let mut file = std::fs::File::create(&path)?;
        let text = serde_json::to_string_pretty(result).map_err(std::io::Error::other)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        Ok(path)
    }
}

/// At most this many collected paths are listed per step (all of them are written).
const COLLECTED_LISTED: usize = 1000;

/// What a `collect` step wrote at `path`, relative to the out dir `root`, for its result: at
/// most [`COLLECTED_LISTED`] paths, then how many more.
pub fn collected(root: &Path, path: &Path) -> Vec<String> {
    let mut found = listed(root, path);
    if found.len() > COLLECTED_LISTED {
        let more = found.len() - COLLECTED_LISTED;
        found.truncate(COLLECTED_LISTED);
        found.push(format!("... and {more} more"));
    }
    found
}

/// Files and symlinks at or under `path`, relative to `root`, sorted; nothing is followed.
fn listed(root: &Path, path: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&next) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&next) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(relative) = next.strip_prefix(root) {
            found.push(relative.display().to_string());
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn at<'a>(context: Option<&'a str>, namespace: &'a str, pod: &'a str) -> PodAddress<'a> {
        PodAddress {
            context,
            namespace,
            pod,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dd-out-dir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn out_dir_paths_cannot_escape() {
        let out = OutDir {
            root: PathBuf::from("/x"),
            by_context: false,
        };
        assert_eq!(
            out.pod_dir(at(Some("prod"), "ns", "web-1")),
            Path::new("ns/web-1")
        );
        assert_eq!(out.pod_dir(at(None, "..", "a/b")), Path::new("_../a_b"));
        assert_eq!(component(""), "_");
    }

    #[test]
    fn several_contexts_get_a_directory_each_that_no_two_names_share() {
        let out = OutDir {
            root: PathBuf::from("/x"),
            by_context: true,
        };
        assert_eq!(
            out.pod_dir(at(Some("prod-eu"), "ns", "web-1")),
            Path::new("prod-eu/ns/web-1")
        );
        assert_eq!(
            out.pod_dir(at(
                Some("arn:aws:eks:eu-west-1:123:cluster/prod"),
                "ns",
                "web-1"
            )),
            Path::new("arn%3Aaws%3Aeks%3Aeu-west-1%3A123%3Acluster%2Fprod/ns/web-1")
        );
        // Names a lossy mapping would merge stay apart; none becomes a path of its own.
        let names = ["a/b", "a_b", "a%2Fb", "a:b", "..", ".", "", "%"];
        let mapped: Vec<String> = names.iter().map(|n| context_component(n)).collect();
        for (i, m) in mapped.iter().enumerate() {
            assert!(
                !m.contains('/') && m != "." && m != ".." && !m.is_empty(),
                "{m}"
            );
            assert_eq!(
                mapped.iter().filter(|other| *other == m).count(),
                1,
                "{:?} shares {m}",
                names[i]
            );
        }
    }

    #[test]
    fn out_dir_holds_step_files_and_the_summary() {
        let dir = scratch("files");
        let out = OutDir::create(&dir, false).unwrap_or_else(|e| panic!("{e}"));
        let (o, e) = out
            .write_step(
                at(Some("c"), "ns", "web-1"),
                "sockets",
                Some(b"LISTEN 0.0.0.0:80\n"),
                b"",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (o.as_deref(), e.as_str()),
            (Some("ns/web-1/sockets.out"), "ns/web-1/sockets.err")
        );
        assert_eq!(
            std::fs::read(dir.join("ns/web-1/sockets.out")).unwrap_or_default(),
            b"LISTEN 0.0.0.0:80\n"
        );
        let (relative, absolute) = out
            .collect_dir(at(Some("c"), "ns", "web-1"), "config")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(relative, Path::new("ns/web-1/config"));
        assert!(absolute.is_dir());
        let result = RunResult::new("rb", jiff::Timestamp::UNIX_EPOCH, 1, None, vec![], vec![]);
        let path = out.write_summary(&result).unwrap_or_else(|e| panic!("{e}"));
        let v: Value =
            serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default();
        assert_eq!(v["kind"], "RunbookResult");
        let _ = std::fs::remove_dir_all(&dir);

        let dir = scratch("contexts");
        let out = OutDir::create(&dir, true).unwrap_or_else(|e| panic!("{e}"));
        for context in ["a", "b"] {
            let (o, _) = out
                .write_step(
                    at(Some(context), "ns", "web-1"),
                    "x",
                    Some(context.as_bytes()),
                    b"",
                )
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(o, Some(format!("{context}/ns/web-1/x.out")));
        }
        assert_eq!(
            std::fs::read(dir.join("a/ns/web-1/x.out")).unwrap_or_default(),
            b"a"
        );
        assert_eq!(
            std::fs::read(dir.join("b/ns/web-1/x.out")).unwrap_or_default(),
            b"b"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn collected_paths_are_listed_relative_to_the_out_dir() {
        let root = std::env::temp_dir().join(format!("dd-listed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("ns/web/config/app");
        let _ = std::fs::create_dir_all(dir.join("sub"));
        let _ = std::fs::write(dir.join("a.yaml"), "a");
        let _ = std::fs::write(dir.join("sub/b"), "b");
        let _ = std::os::unix::fs::symlink("/etc/passwd", dir.join("link"));
        assert_eq!(
            listed(&root, &root.join("ns/web/config/app")),
            [
                "ns/web/config/app/a.yaml",
                "ns/web/config/app/link",
                "ns/web/config/app/sub/b"
            ]
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
