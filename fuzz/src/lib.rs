//! The entry functions of the fuzz targets (`fuzz_targets/*.rs` call them under libFuzzer)
//! and, on stable, the replay of every committed corpus file through them (`cargo test
//! --manifest-path fuzz/Cargo.toml --lib`, run by `tests/run.sh`). Each function asserts what
//! must hold for any input, so that a violation is a crash the fuzzer reports. The plugin's
//! and the agent's parsers are reached through their libraries' `fuzzing` modules, which
//! check what only the crate itself can see; what is checked from outside (the filesystem
//! after an extraction, the bytes a frame decoder passes on) is checked here.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use distroless_debug_agent::fuzzing as agent;
use flag_duration::{Human, parse};
use kubectl_distroless_debug::fuzzing as plugin;
use tar_format::{Reader, name_components};

/// The duration grammar of `--timeout`, `--ttl` and friends (plugin and agent): never panics,
/// and whatever it accepts prints back (`Human`) to text that parses to the same duration.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse(text) {
        let shown = Human(d).to_string();
        assert_eq!(parse(&shown), Ok(d), "{text:?} -> {d:?} -> {shown:?}");
    }
}

/// The tar reader both ends of a copy use (the plugin on `cp` downloads and `snapshot`, the
/// agent on `untar`): never panics, never reads past the input, and the names it lets an
/// extractor walk are relative, without `..`, empty components or NUL bytes.
pub fn tar_reader(data: &[u8]) {
    let mut reader = Reader::new(data);
    // Bounded: a fuzzer's input is small, but each entry costs at least one 512-byte block.
    for _ in 0..1024 {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) | Err(_) => return,
        };
        if let Ok(parts) = name_components(&entry.name) {
            for part in parts {
                assert!(!part.is_empty() && part != b"." && part != b"..");
                assert!(!part.contains(&b'/') && !part.contains(&0));
            }
        }
        let mut sink = Vec::new();
        match reader.data().take(entry.size).read_to_end(&mut sink) {
            Ok(n) => assert!(n as u64 <= entry.size && sink.len() <= data.len()),
            Err(_) => return,
        }
    }
}

/// A runbook file (`run --runbook FILE`): loaded or refused with located problems.
pub fn runbook(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        plugin::runbook(text);
    }
}

/// A `when:` expression of a runbook step: what parses shows as itself.
pub fn when(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        plugin::when(text);
    }
}

/// A TARGET argument (`pod/NAME`, `deploy/NAME`, ...): what parses shows as itself.
pub fn target_ref(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        plugin::target_ref(text);
    }
}

/// The config file (`~/.config/kubectl-distroless-debug/config.yaml`).
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        plugin::config(text);
    }
}

/// A directory under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dd-fuzz-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // An archive may make directories without write or search permission.
        make_removable(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make_removable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_removable(&entry.path());
            }
        }
    }
}

/// What a tree holds, symlinks not followed: per path, its kind, size, mode, link count,
/// content (files) or target (symlinks). A directory's size and link count are left out: they
/// change when the destination is made inside it, which is no write outside.
type Tree = BTreeMap<PathBuf, (u32, u64, u32, u64, Vec<u8>)>;

fn tree(dir: &Path, skip: &Path) -> Tree {
    let mut out = Tree::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path == skip {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let dir = meta.is_dir();
            let body = if meta.file_type().is_symlink() {
                std::fs::read_link(&path)
                    .map(|t| t.into_os_string().into_encoded_bytes())
                    .unwrap_or_default()
            } else if meta.is_file() {
                std::fs::read(&path).unwrap_or_default()
            } else {
                pending.push(path.clone());
                Vec::new()
            };
            let (len, links) = if dir {
                (0, 0)
            } else {
                (meta.len(), meta.nlink())
            };
            out.insert(
                path,
                (meta.mode() & 0o170000, len, meta.mode(), links, body),
            );
        }
    }
    out
}

/// The places an archive may try to reach: `outside/victim`, beside the destination, and
/// links to it from inside the destination's directory `inner` (relative, and absolute).
fn plant(scratch: &Path, inner: &Path) {
    let outside = scratch.join("outside");
    std::fs::create_dir_all(&outside).expect("outside/");
    std::fs::write(outside.join("victim"), b"victim").expect("outside/victim");
    std::fs::create_dir_all(inner).expect("the destination");
    let up = inner
        .strip_prefix(scratch)
        .map(|rel| rel.components().map(|_| "..").collect::<Vec<_>>().join("/"))
        .unwrap_or_default();
    symlink(format!("{up}/outside"), inner.join("out")).expect("a relative link out");
    symlink(&outside, inner.join("abs")).expect("an absolute link out");
    symlink(outside.join("victim"), inner.join("victim")).expect("a link to a file out");
}

/// Runs `write` (an extraction below `inside`) and asserts that nothing outside `inside`
/// changed, in `scratch` or beside it: no file written, replaced, linked to or made there,
/// no link followed out.
fn nothing_written_outside(
    scratch: &Path,
    inside: &Path,
    write: impl FnOnce() -> Result<(), String>,
) {
    let before = tree(scratch, inside);
    let outcome = write();
    let after = tree(scratch, inside);
    assert!(
        before == after,
        "an extraction below {} changed what is outside it ({outcome:?}):\nbefore {before:?}\nafter {after:?}",
        inside.display()
    );
}

/// The plugin's extractor (`cp POD:/PREFIX DEST`, `snapshot`), the first byte choosing the
/// copied path and the rest the archive: nothing is written outside the destination.
pub fn plugin_extract(data: &[u8]) {
    let Some((choice, archive)) = data.split_first() else {
        return;
    };
    let (prefix, name): (&[u8], &str) = match choice % 4 {
        0 => (b"app", "dest"),
        1 => (b"app/data", "dest"),
        2 => (b"", "dest"),
        _ => (b"app", "new"),
    };
    let scratch = Scratch::new("extract");
    let top = scratch.0.join("top");
    // `dest` exists (what is copied lands in dest/NAME, with links out planted there);
    // `new` does not (what is copied becomes it).
    plant(&scratch.0, &top.join("dest").join("data"));
    plant(&scratch.0, &top.join("dest"));
    let inside = top.join(name);
    nothing_written_outside(&scratch.0, &inside, || {
        plugin::extract_into(archive, prefix, &top, name)
    });
}

/// The agent's `untar --root ROOT /dest`: nothing is written outside ROOT/dest, through a
/// link or otherwise.
pub fn agent_untar(data: &[u8]) {
    let scratch = Scratch::new("untar");
    let root = scratch.0.join("root");
    let dest = root.join("dest");
    plant(&scratch.0, &dest);
    plant(&scratch.0, &dest.join("sub"));
    nothing_written_outside(&scratch.0, &dest, || agent::untar(&root, b"/dest", data));
}

/// The tree `agent_resolve` resolves in: made once per process, never written to.
fn resolve_tree() -> &'static (PathBuf, PathBuf) {
    static TREE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TREE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("dd-fuzz-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("a/b")).expect("root/a/b");
        std::fs::create_dir_all(root.join("etc/app")).expect("root/etc/app");
        std::fs::create_dir_all(&outside).expect("outside/");
        std::fs::write(outside.join("secret"), b"secret").expect("outside/secret");
        std::fs::write(root.join("a/b/file"), b"file").expect("root/a/b/file");
        let links: [(&str, PathBuf); 8] = [
            ("abs", PathBuf::from("/a/b")),
            ("up", PathBuf::from("../../../..")),
            ("loop", PathBuf::from("loop")),
            ("out", outside.clone()),
            ("a/rel", PathBuf::from("../etc/app")),
            ("a/b/back", PathBuf::from("../../up/secret")),
            ("etc/app/current", PathBuf::from("/etc/app/../../a")),
            ("proc", PathBuf::from("/proc/self/root")),
        ];
        for (name, target) in links {
            symlink(target, root.join(name)).expect("a link in the resolve tree");
        }
        let root = root.canonicalize().expect("the root's real path");
        (root, outside)
    })
}

/// The agent's path resolution inside a root (openat2 `RESOLVE_IN_ROOT` and the userspace
/// walk): whatever the path, what is opened is the root or below it, and both resolvers,
/// when both succeed, open the same thing.
pub fn agent_resolve(data: &[u8]) {
    let Some((flags, path)) = data.split_first() else {
        return;
    };
    let (root, _) = resolve_tree();
    let follow = flags & 1 == 1;
    let kernel = agent::resolve(root, path, follow, true);
    let userspace = agent::resolve(root, path, follow, false);
    for (how, outcome) in [("kernel", &kernel), ("userspace", &userspace)] {
        if let Ok(real) = outcome {
            assert!(
                real.starts_with(root),
                "{path:?} (follow {follow}) resolved by the {how} resolver to {} outside the root",
                real.display()
            );
        }
    }
    if let (Ok(k), Ok(u)) = (&kernel, &userspace) {
        assert_eq!(
            k, u,
            "{path:?} (follow {follow}): the two resolvers disagree"
        );
    }
}

/// The bytes of a fuzz input as exec messages: a byte choosing the kind, then for a binary
/// frame a length byte and that many bytes (its channel byte first).
pub fn exec_messages(mut data: &[u8]) -> Vec<plugin::Incoming> {
    let mut out = Vec::new();
    while let Some((&kind, rest)) = data.split_first() {
        data = rest;
        out.push(match kind % 8 {
            0 => plugin::Incoming::Other,
            1 => plugin::Incoming::Broken,
            _ => {
                let (&len, rest) = data.split_first().unwrap_or((&0, &[]));
                let len = (len as usize).min(rest.len());
                let frame = rest[..len].to_vec();
                data = &rest[len..];
                plugin::Incoming::Binary(frame)
            }
        });
    }
    out
}

/// The exec channel decoder of `cp` and `snapshot` downloads: stdout reaches the reader
/// exactly (every channel-1 byte before the status or the break, in order), stderr is kept
/// within its bound, a break reaches the reader as an error, and a status is only reported
/// when one came.
pub fn exec_frames(data: &[u8]) {
    const KEPT: usize = 64 * 1024;
    let messages = exec_messages(data);
    let (mut stdout, mut stderr, mut status, mut broken) = (Vec::new(), Vec::new(), false, false);
    for message in &messages {
        match message {
            plugin::Incoming::Binary(frame) if frame.len() > 1 => match frame[0] {
                1 => stdout.extend_from_slice(&frame[1..]),
                2 => {
                    let room = KEPT.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&frame[1..][..(frame.len() - 1).min(room)]);
                }
                3 => {
                    status = true;
                    break;
                }
                _ => {}
            },
            plugin::Incoming::Broken => {
                broken = true;
                break;
            }
            _ => {}
        }
    }
    let decoded = plugin::exec_frames(messages);
    assert!(
        decoded.stdout == stdout,
        "stdout differs: {decoded:?} for {data:?}"
    );
    assert_eq!(decoded.kept, String::from_utf8_lossy(&stderr), "{data:?}");
    assert_eq!(decoded.stdout_broken, broken, "{data:?}");
    assert!(status || decoded.exit.is_none(), "{decoded:?} for {data:?}");
}

#[cfg(test)]
mod replay {
    use std::path::Path;

    /// Feeds every file of `corpus/NAME/` to `entry`; a panic names the file.
    fn replay(name: &str, entry: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|f| f.ok().map(|f| f.path()))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} holds no seed", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "{} fails", file.display());
        }
    }

    #[test]
    fn duration_corpus() {
        replay("duration", super::duration);
    }

    #[test]
    fn tar_reader_corpus() {
        replay("tar_reader", super::tar_reader);
    }

    #[test]
    fn runbook_corpus() {
        replay("runbook", super::runbook);
    }

    #[test]
    fn when_corpus() {
        replay("when", super::when);
    }

    #[test]
    fn target_ref_corpus() {
        replay("target_ref", super::target_ref);
    }

    #[test]
    fn config_corpus() {
        replay("config", super::config);
    }

    #[test]
    fn plugin_extract_corpus() {
        replay("plugin_extract", super::plugin_extract);
    }

    #[test]
    fn agent_untar_corpus() {
        replay("agent_untar", super::agent_untar);
    }

    #[test]
    fn agent_resolve_corpus() {
        replay("agent_resolve", super::agent_resolve);
    }

    #[test]
    fn exec_frames_corpus() {
        replay("exec_frames", super::exec_frames);
    }
}
