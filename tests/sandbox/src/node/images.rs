//! The node's image store: local root filesystems registered under image references.
//!
//! There is no registry: an image is a directory tree used as the read-only lower layer of
//! each container's overlay, plus the few image-config fields a runtime applies (`User`,
//! `Entrypoint`, `Cmd`, `Env`, `WorkingDir`). Image IDs are SHA-256 digests of a listing of
//! the tree and the config, so a changed image gets a new ID, as with a real registry.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::digest::Sha256;
use crate::runtime::RuntimeError;

/// The image-config fields the node applies (OCI image spec `config` object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
}

impl ImageConfig {
    /// Parse an OCI image config document (`{"config":{"User":..,"Entrypoint":[..],..}}`).
    pub fn from_oci_json(doc: &serde_json::Value) -> ImageConfig {
        let c = &doc["config"];
        let strings = |key: &str| -> Vec<String> {
            c[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |key: &str| c[key].as_str().filter(|s| !s.is_empty()).map(String::from);
        ImageConfig {
            user: text("User"),
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            env: strings("Env"),
            working_dir: text("WorkingDir"),
        }
    }

    pub fn to_oci_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": self.user.clone().unwrap_or_default(),
                "Entrypoint": self.entrypoint,
                "Cmd": self.cmd,
                "Env": self.env,
                "WorkingDir": self.working_dir.clone().unwrap_or_default(),
            },
            "rootfs": {"type": "layers", "diff_ids": []},
        })
    }
}

/// A registered image.
#[derive(Debug)]
pub struct Image {
    /// Normalised reference (`docker.io/library/busybox:latest`, `sandbox.local/x:tag`).
    pub reference: String,
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Total bytes of regular files in the root filesystem.
    pub size: u64,
}

impl Image {
    /// `imageID` as a kubelet reports it: repository (no tag) `@sha256:...`.
    pub fn image_id(&self) -> String {
        format!("{}@{}", repository_of(&self.reference), self.digest)
    }
}

/// Images known to the node, by normalised reference.
#[derive(Default)]
pub struct ImageStore {
    images: RwLock<HashMap<String, Arc<Image>>>,
}

impl ImageStore {
    /// Register `rootfs` with `config` under `reference` (replacing an earlier registration).
    pub fn register_dir(&self, reference: &str, rootfs: PathBuf, config: ImageConfig) {
        let (digest, size) = digest_tree(&rootfs, &config);
        let reference = normalize_reference(reference);
        let image = Image {
            reference: reference.clone(),
            rootfs,
            config,
            digest,
            size,
        };
        self.images
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reference, Arc::new(image));
    }

    /// A local image directory: `DIR/rootfs/` plus `DIR/config.json`, an OCI image config.
    pub fn register_image_dir(&self, reference: &str, dir: &Path) -> Result<(), RuntimeError> {
        let rootfs = dir.join("rootfs");
        if !rootfs.is_dir() {
            return Err(RuntimeError::BadRequest(format!(
                "image directory {} has no rootfs/ directory",
                dir.display()
            )));
        }
        let config_path = dir.join("config.json");
        let config = match std::fs::read(&config_path) {
            Ok(bytes) => {
                let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                    RuntimeError::BadRequest(format!("{}: {e}", config_path.display()))
                })?;
                ImageConfig::from_oci_json(&doc)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => ImageConfig::default(),
            Err(e) => {
                return Err(RuntimeError::Internal(format!(
                    "{}: {e}",
                    config_path.display()
                )));
            }
        };
        self.register_dir(reference, rootfs, config);
        Ok(())
    }

    /// An OCI image-layout archive (`index.json`, `blobs/sha256/...`; layers plain, gzip or
    /// zstd tar with whiteouts), or a layout directory, unpacked into `unpack_dir` (replaced)
    /// and registered under `reference`. The manifest annotated with the reference or its tag
    /// is used, else the linux/amd64 one.
    pub fn register_oci_archive(
        &self,
        reference: &str,
        archive: &Path,
        unpack_dir: &Path,
    ) -> Result<(), RuntimeError> {
        let (rootfs, config) = super::oci_layout::unpack(archive, reference, unpack_dir)
            .map_err(|e| RuntimeError::BadRequest(format!("image {reference}: {e}")))?;
        self.register_dir(reference, rootfs, config);
        Ok(())
    }

    /// The image registered under `reference` (normalised first), if any.
    pub fn get(&self, reference: &str) -> Option<Arc<Image>> {
        self.images
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&normalize_reference(reference))
            .cloned()
    }

    /// Every registered reference, normalised.
    pub fn references(&self) -> Vec<String> {
        let mut refs: Vec<String> = self
            .images
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        refs.sort();
        refs
    }
}

/// Normalise an image reference as containerd does: `busybox` → `docker.io/library/busybox:latest`,
/// a missing tag becomes `:latest` unless a digest is given.
pub fn normalize_reference(reference: &str) -> String {
    let reference = reference.trim();
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && digest.is_none() {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

/// The repository part of a normalised reference (no tag, no digest).
fn repository_of(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// Digest of a listing of the tree (path, type, mode, owner, size, link target) and the
/// config; and the total size of its regular files.
fn digest_tree(rootfs: &Path, config: &ImageConfig) -> (String, u64) {
    let mut entries = Vec::new();
    collect(rootfs, rootfs, &mut entries);
    entries.sort();
    let mut hash = Sha256::default();
    let mut size = 0;
    for (line, bytes) in &entries {
        hash.update(line.as_bytes());
        hash.update(b"\n");
        size += bytes;
    }
    hash.update(config.to_oci_json().to_string().as_bytes());
    (format!("sha256:{}", hash.finish_hex()), size)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let link = std::fs::read_link(&path)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        let bytes = if meta.is_file() { meta.len() } else { 0 };
        out.push((
            format!(
                "{rel} {:o} {}:{} {} {} {link}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.len(),
                meta.mtime()
            ),
            bytes,
        ));
        if meta.is_dir() {
            collect(root, &path, out);
        }
    }
}

/// A user as found in an image's `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Entries of `rootfs/etc/passwd` (empty when there is none, as in scratch images).
pub fn passwd_entries(rootfs: &Path) -> Vec<PasswdEntry> {
    let text = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// `(name, gid, members)` of `rootfs/etc/group`.
pub fn group_entries(rootfs: &Path) -> Vec<(String, u32, Vec<String>)> {
    let text = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?, members))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_containerd() {
        assert_eq!(
            normalize_reference("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize_reference("foo/bar:1"), "docker.io/foo/bar:1");
        assert_eq!(
            normalize_reference("sandbox.local/busybox"),
            "sandbox.local/busybox:latest"
        );
        assert_eq!(
            normalize_reference("localhost:5000/x:v"),
            "localhost:5000/x:v"
        );
        assert_eq!(
            normalize_reference("sandbox.local/x@sha256:abc"),
            "sandbox.local/x@sha256:abc"
        );
        assert_eq!(repository_of("localhost:5000/x:v"), "localhost:5000/x");
        assert_eq!(repository_of("localhost:5000/x"), "localhost:5000/x");
    }

    #[test]
    fn oci_config_fields() {
        let doc = serde_json::json!({"config": {"User": "65532:65532", "Entrypoint": ["/app"],
            "Cmd": ["-v"], "Env": ["PATH=/bin"], "WorkingDir": "/w"}});
        let c = ImageConfig::from_oci_json(&doc);
        assert_eq!(c.user.as_deref(), Some("65532:65532"));
        assert_eq!(c.entrypoint, ["/app"]);
        assert_eq!(c.cmd, ["-v"]);
        assert_eq!(c.env, ["PATH=/bin"]);
        assert_eq!(c.working_dir.as_deref(), Some("/w"));
        assert_eq!(ImageConfig::from_oci_json(&c.to_oci_json()), c);
    }
}
