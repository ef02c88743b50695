//! OCI image-layout archives (`docker save`/`buildah push oci-archive:` output: `index.json`,
//! `blobs/sha256/...`, layers as plain, gzip or zstd tar with whiteouts) unpacked into a root
//! filesystem for the image store. The host's GNU tar does the unpacking (it detects the
//! compression); whiteouts are applied here, per the OCI image spec's layer rules.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::images::ImageConfig;

fn tar(args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let out = Command::new("tar")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "tar {:?} failed: {}",
            args,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> Result<PathBuf, String> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("bad digest {digest:?}"))?;
    if hex.contains('/') || alg.contains('/') {
        return Err(format!("bad digest {digest:?}"));
    }
    Ok(layout.join("blobs").join(alg).join(hex))
}

/// The image manifest for `reference` in an index: the one annotated with the reference (or
/// its tag), else the only (first linux/amd64) one; nested indexes are followed.
fn find_manifest(layout: &Path, index: &Value, reference: &str) -> Result<Value, String> {
    let manifests = index["manifests"]
        .as_array()
        .ok_or("index.json has no manifests")?;
    let tag = reference.rsplit(':').next().unwrap_or("");
    let named = manifests.iter().find(|m| {
        let name = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .or(m["annotations"]["io.containerd.image.name"].as_str())
            .unwrap_or("");
        !name.is_empty() && (name == reference || name == tag)
    });
    let platform_ok = |m: &&Value| {
        let p = &m["platform"];
        p.is_null() || (p["os"] == "linux" && p["architecture"] == "amd64")
    };
    let chosen = named
        .or_else(|| manifests.iter().find(platform_ok))
        .ok_or("no manifest for linux/amd64 in the index")?;
    let doc = read_json(&blob(layout, chosen["digest"].as_str().unwrap_or(""))?)?;
    let media = doc["mediaType"]
        .as_str()
        .or(chosen["mediaType"].as_str())
        .unwrap_or("");
    if media.contains("index") || media.contains("manifest.list") || doc["manifests"].is_array() {
        return find_manifest(layout, &doc, reference);
    }
    Ok(doc)
}

/// Apply one layer onto `rootfs`: whiteouts first (they hide lower-layer files), then the
/// layer's own files.
fn apply_layer(layer: &Path, rootfs: &Path) -> Result<(), String> {
    let listing = tar(&["-tf".as_ref(), layer.as_os_str()])?;
    for name in String::from_utf8_lossy(&listing).lines() {
        let name = name.trim_start_matches("./");
        let path = Path::new(name);
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let parent = rootfs.join(path.parent().unwrap_or(Path::new("")));
        if !parent.starts_with(rootfs) || name.split('/').any(|c| c == "..") {
            return Err(format!("layer entry {name:?} escapes the root"));
        }
        if file == ".wh..wh..opq" {
            if let Ok(entries) = fs::read_dir(&parent) {
                for e in entries.flatten() {
                    let _ = remove_any(&e.path());
                }
            }
        } else if let Some(hidden) = file.strip_prefix(".wh.") {
            let _ = remove_any(&parent.join(hidden));
        }
    }
    tar(&[
        "-xpf".as_ref(),
        layer.as_os_str(),
        "-C".as_ref(),
        rootfs.as_os_str(),
        "--numeric-owner".as_ref(),
        "--same-owner".as_ref(),
        "--exclude=.wh.*".as_ref(),
        "--exclude=*/.wh.*".as_ref(),
    ])?;
    Ok(())
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    }
}

/// Unpack `archive` (an OCI image-layout tar, or a layout directory) into `dir/rootfs`;
/// returns the root and the image config.
pub fn unpack(
    archive: &Path,
    reference: &str,
    dir: &Path,
) -> Result<(PathBuf, ImageConfig), String> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let layout = if archive.is_dir() {
        archive.to_path_buf()
    } else {
        let layout = dir.join("layout");
        fs::create_dir_all(&layout).map_err(|e| format!("{}: {e}", layout.display()))?;
        tar(&[
            "-xf".as_ref(),
            archive.as_os_str(),
            "-C".as_ref(),
            layout.as_os_str(),
        ])?;
        layout
    };
    let index = read_json(&layout.join("index.json"))?;
    let manifest = find_manifest(&layout, &index, reference)?;
    let config = read_json(&blob(
        &layout,
        manifest["config"]["digest"].as_str().unwrap_or(""),
    )?)?;
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(&rootfs).map_err(|e| format!("{}: {e}", rootfs.display()))?;
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let digest = layer["digest"].as_str().unwrap_or("");
        apply_layer(&blob(&layout, digest)?, &rootfs)?;
    }
    if !archive.is_dir() {
        let _ = fs::remove_dir_all(&layout);
    }
    Ok((rootfs, ImageConfig::from_oci_json(&config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::digest::sha256_hex;

    fn put_blob(layout: &Path, bytes: &[u8]) -> String {
        let hex = sha256_hex(bytes);
        fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    }

    fn layer(layout: &Path, name: &str, files: &[(&str, &str)], gzip: bool) -> (String, u64) {
        let src = layout.join(format!("src-{name}"));
        for (path, content) in files {
            let p = src.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, content).unwrap();
        }
        let out = layout.join(format!("{name}.tar"));
        let flag = if gzip { "-czf" } else { "-cf" };
        let st = Command::new("tar")
            .arg(flag)
            .arg(&out)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        let bytes = fs::read(&out).unwrap();
        fs::remove_file(&out).unwrap();
        fs::remove_dir_all(&src).unwrap();
        (put_blob(layout, &bytes), bytes.len() as u64)
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts() {
        let base = std::env::temp_dir().join(format!("oci-layout-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let layout = base.join("layout");
        let (l1, s1) = layer(
            &layout,
            "l1",
            &[("etc/a", "1"), ("etc/b", "1"), ("opt/x/old", "1")],
            true,
        );
        let (l2, s2) = layer(
            &layout,
            "l2",
            &[
                ("etc/.wh.b", ""),
                ("etc/a", "2"),
                ("opt/x/.wh..wh..opq", ""),
                ("opt/x/new", "2"),
            ],
            false,
        );
        let config = put_blob(
            &layout,
            br#"{"architecture":"amd64","os":"linux","config":{"User":"65532","Cmd":["/app"]}}"#,
        );
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l1, "size": s1},
                       {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l2, "size": s2}]});
        let m = put_blob(&layout, manifest.to_string().as_bytes());
        fs::write(
            layout.join("index.json"),
            serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": 1,
             "annotations": {"org.opencontainers.image.ref.name": "1.0"}}]})
            .to_string(),
        )
        .unwrap();
        fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let archive = base.join("image.tar");
        assert!(
            Command::new("tar")
                .arg("-cf")
                .arg(&archive)
                .arg("-C")
                .arg(&layout)
                .arg(".")
                .status()
                .unwrap()
                .success()
        );

        let (rootfs, config) =
            unpack(&archive, "example.com/x:1.0", &base.join("unpacked")).unwrap();
        assert_eq!(fs::read_to_string(rootfs.join("etc/a")).unwrap(), "2");
        assert!(!rootfs.join("etc/b").exists());
        assert!(!rootfs.join("opt/x/old").exists());
        assert_eq!(fs::read_to_string(rootfs.join("opt/x/new")).unwrap(), "2");
        assert!(!rootfs.join("etc/.wh.b").exists());
        assert_eq!(config.user.as_deref(), Some("65532"));
        assert_eq!(config.cmd, ["/app"]);
        let _ = fs::remove_dir_all(&base);
    }
}
