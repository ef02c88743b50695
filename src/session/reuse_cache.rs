//! Which debug container a session on a pod used last, so that the next session can open its
//! exec at once, beside its reads (handshake.rs), instead of after them.
//!
//! One small JSON file in the user's cache directory
//! (`$XDG_CACHE_HOME/kubectl-distroless-debug/reuse.json`, else
//! `~/.cache/kubectl-distroless-debug/reuse.json`), keyed by context, namespace, pod and the
//! `-c` asked for. Beside it, under `seen/`, one file per key for the pod a session saw its
//! container end in (presume.rs): a few KiB each, read only for the key at hand, so the
//! small file every session reads stays small. It is a hint, never a fact: the reads of the
//! pod decide whether the container is used. So every failure is a miss: a file that is
//! missing, unreadable or not ours is read as empty, and one that cannot be written is left
//! as it was. Writes go to a temporary file renamed over the old one, so a reader never sees
//! half a file; the files are the user's alone (0600).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use crate::session::profile::PsaLevel;
use crate::session::wait::{Progress, progress_of};

const DIR: &str = "kubectl-distroless-debug";
const FILE: &str = "reuse.json";
const SEEN: &str = "seen";
/// The most pods remembered; the least recently used go first.
const MOST: usize = 200;

/// What a session was asked for: the same words find the same entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// The kubeconfig context; empty in-cluster.
    pub context: String,
    pub namespace: String,
    pub pod: String,
    /// `-c` as given; empty for the pod's default container.
    pub container: String,
}

/// The debug container a session on [`Key`] used, and what it was for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub debug_container: String,
    /// The target container's name and, when the pod said it, its ID then: a different ID
    /// now means the target restarted.
    pub target: String,
    pub target_id: Option<String>,
    pub image: String,
    /// The pod a session on the key last saw its container end in, for the next session to
    /// send its PATCH beside its reads (presume.rs); kept in a file of its own (`seen/`).
    #[serde(skip)]
    pub ended: Option<Ended>,
}

/// The pod as a session saw it last, once its debug container had ended, with what the reads
/// beside it said: enough to plan the next container without reading first (presume.rs).
/// The pod is stripped of what a plan does not need and a cache file should not hold: the
/// containers' environment, annotations other than the default container's, managed fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ended {
    pub pod: Pod,
    pub user: String,
    /// The namespace's enforced Pod Security level then, as its label says it.
    pub enforced: Option<String>,
}

/// The annotation that names a pod's default container, the only one a plan reads.
pub const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

impl Entry {
    /// Whether the pod kept for the entry shows the entry's debug container ended: the last
    /// session saw its end, and none has used another container since.
    pub fn seen_ended(&self) -> bool {
        self.ended.as_ref().is_some_and(|ended| {
            matches!(
                progress_of(&ended.pod, &self.debug_container),
                Progress::Exited { .. }
            )
        })
    }
}

impl Ended {
    /// What the cache keeps of the pod a session saw its container end in, with the reads
    /// of that session.
    pub fn of(pod: &Pod, user: &str, enforced: Option<PsaLevel>) -> Ended {
        let mut pod = pod.clone();
        let meta = &mut pod.metadata;
        meta.managed_fields = None;
        meta.annotations = meta.annotations.take().map(|mut all| {
            all.retain(|name, _| name == DEFAULT_CONTAINER);
            all
        });
        if let Some(spec) = pod.spec.as_mut() {
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                c.env = None;
                c.env_from = None;
            }
            // Ours keep their markers: a plan tells our containers by them.
            for c in spec.ephemeral_containers.iter_mut().flatten() {
                c.env = c.env.take().map(|mut env| {
                    env.retain(|v| v.name.starts_with("DISTROLESS_DEBUG_"));
                    env
                });
                c.env_from = None;
            }
        }
        Ended {
            pod,
            user: user.to_string(),
            enforced: enforced.map(|level| level.to_string()),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    /// Least recently used first.
    entries: Vec<Remembered>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    key: Key,
    entry: Entry,
}

/// The cache file, or none when no cache directory can be named.
#[derive(Debug, Clone)]
pub struct ReuseCache {
    path: Option<PathBuf>,
}

impl ReuseCache {
    /// The user's cache (see the module's doc).
    #[cfg(not(test))]
    pub fn from_env() -> ReuseCache {
        let var = |name| std::env::var_os(name).map(PathBuf::from);
        ReuseCache {
            path: cache_dir(var("XDG_CACHE_HOME"), var("HOME")).map(|d| d.join(DIR).join(FILE)),
        }
    }

    /// None in unit tests: the mock-client sessions (debug_tests.rs) expect exactly their
    /// requests, and must not write into the user's cache.
    #[cfg(test)]
    pub fn from_env() -> ReuseCache {
        ReuseCache { path: None }
    }

    #[cfg(test)]
    pub fn at(path: PathBuf) -> ReuseCache {
        ReuseCache { path: Some(path) }
    }

    pub fn lookup(&self, key: &Key) -> Option<Entry> {
        let mut entry = self
            .read()
            .entries
            .into_iter()
            .find(|r| &r.key == key)
            .map(|r| r.entry)?;
        entry.ended = self
            .seen_path(key)
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        Some(entry)
    }

    /// Remembers `entry` for `key`, most recently used; best effort. Its `ended`, when set,
    /// replaces the pod kept for the key; unset, it leaves the one kept.
    pub fn remember(&self, key: &Key, entry: Entry) {
        let mut file = self.read();
        file.entries.retain(|r| &r.key != key);
        if let (Some(ended), Some(path)) = (&entry.ended, self.seen_path(key)) {
            let _ = write_atomically(&path, &serde_json::to_vec(ended).unwrap_or_default());
        }
        file.entries.push(Remembered {
            key: key.clone(),
            entry,
        });
        let extra = file.entries.len().saturating_sub(MOST);
        for gone in file.entries.drain(..extra) {
            if let Some(path) = self.seen_path(&gone.key) {
                let _ = std::fs::remove_file(path);
            }
        }
        self.write(&file);
    }

    /// The file of the pod kept for `key`: named by a hash of the key, since a context's
    /// name may hold any character.
    fn seen_path(&self, key: &Key) -> Option<PathBuf> {
        let dir = self.path.as_deref()?.parent()?;
        let words = serde_json::to_vec(key).ok()?;
        Some(dir.join(SEEN).join(format!("{:016x}.json", fnv1a(&words))))
    }

    fn read(&self) -> File {
        self.path
            .as_deref()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write(&self, file: &File) {
        let Some(path) = self.path.as_deref() else {
            return;
        };
        let _ = write_atomically(path, &serde_json::to_vec(file).unwrap_or_default());
    }
}

/// `$XDG_CACHE_HOME` when absolute (the XDG spec ignores a relative one), else `~/.cache`.
fn cache_dir(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    xdg.filter(|d| d.is_absolute())
        .or_else(|| home.filter(|h| h.is_absolute()).map(|h| h.join(".cache")))
}

/// FNV-1a, 64 bits: a file name that stays the same from one build to the next (std's
/// hasher promises no such thing).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or(FILE);
    let temporary = dir.join(format!(".{name}.{}", std::process::id()));
    // The user's own: it names their pods and debug containers.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| std::io::Write::write_all(&mut file, bytes))?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pod: &str) -> Key {
        Key {
            context: "prod".into(),
            namespace: "shop".into(),
            pod: pod.into(),
            container: String::new(),
        }
    }

    fn entry(name: &str) -> Entry {
        Entry {
            debug_container: name.into(),
            target: "app".into(),
            target_id: Some("containerd://abc".into()),
            image: "base".into(),
            ended: None,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("reuse-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join(DIR).join(FILE)
    }

    #[test]
    fn an_entry_is_found_by_its_whole_key_and_replaced_by_the_next() {
        let path = scratch("key");
        let cache = ReuseCache::at(path.clone());
        assert_eq!(cache.lookup(&key("web")), None, "no file: a miss");
        cache.remember(&key("web"), entry("dbg-aaaaa"));
        cache.remember(&key("api"), entry("dbg-bbbbb"));
        assert_eq!(cache.lookup(&key("web")), Some(entry("dbg-aaaaa")));
        let other_context = Key {
            context: "staging".into(),
            ..key("web")
        };
        assert_eq!(cache.lookup(&other_context), None);
        let other_container = Key {
            container: "sidecar".into(),
            ..key("web")
        };
        assert_eq!(cache.lookup(&other_container), None);
        cache.remember(&key("web"), entry("dbg-ccccc"));
        assert_eq!(cache.lookup(&key("web")), Some(entry("dbg-ccccc")));
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn a_corrupt_file_is_a_miss_and_is_replaced_whole() {
        let path = scratch("corrupt");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"entries\": [ {\"key\": ").unwrap();
        let cache = ReuseCache::at(path.clone());
        assert_eq!(cache.lookup(&key("web")), None);
        cache.remember(&key("web"), entry("dbg-aaaaa"));
        assert_eq!(cache.lookup(&key("web")), Some(entry("dbg-aaaaa")));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE], "no temporary file left behind");
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let path = scratch("bound");
        let cache = ReuseCache::at(path.clone());
        for i in 0..=MOST {
            cache.remember(&key(&format!("pod-{i}")), entry("dbg-aaaaa"));
        }
        assert_eq!(cache.lookup(&key("pod-0")), None);
        assert!(cache.lookup(&key("pod-1")).is_some());
        assert!(cache.lookup(&key(&format!("pod-{MOST}"))).is_some());
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    fn ended(pod: &str) -> Ended {
        let mut seen = Pod::default();
        seen.metadata.name = Some(pod.into());
        Ended {
            pod: seen,
            user: "me".into(),
            enforced: Some("restricted".into()),
        }
    }

    #[test]
    fn the_pod_seen_is_kept_apart_for_its_key_alone_and_goes_with_its_entry() {
        use std::os::unix::fs::PermissionsExt;

        let path = scratch("seen");
        let cache = ReuseCache::at(path.clone());
        cache.remember(
            &key("web"),
            Entry {
                ended: Some(ended("web")),
                ..entry("dbg-aaaaa")
            },
        );
        cache.remember(&key("api"), entry("dbg-bbbbb"));
        assert_eq!(cache.lookup(&key("web")).unwrap().ended, Some(ended("web")));
        assert_eq!(cache.lookup(&key("api")).unwrap().ended, None);
        let small = std::fs::read_to_string(&path).unwrap();
        assert!(
            !small.contains("restricted"),
            "not in the small file: {small}"
        );
        // An entry remembered without it keeps the pod seen.
        cache.remember(&key("web"), entry("dbg-ccccc"));
        let found = cache.lookup(&key("web")).unwrap();
        assert_eq!(found.debug_container, "dbg-ccccc");
        assert_eq!(found.ended, Some(ended("web")));
        let seen_dir = path.parent().unwrap().join(SEEN);
        for file in std::fs::read_dir(&seen_dir).unwrap() {
            let mode = file.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Evicted, its pod goes too.
        for i in 0..MOST {
            cache.remember(&key(&format!("pod-{i}")), entry("dbg-aaaaa"));
        }
        assert_eq!(cache.lookup(&key("web")), None);
        assert_eq!(std::fs::read_dir(&seen_dir).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn the_directory_follows_xdg_then_home() {
        assert_eq!(
            cache_dir(Some("/x/cache".into()), Some("/home/u".into())),
            Some(PathBuf::from("/x/cache"))
        );
        assert_eq!(
            cache_dir(Some("relative".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.cache"))
        );
        assert_eq!(cache_dir(None, None), None);
    }
}
