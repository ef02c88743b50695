//! The images every sandbox has, built at start from `busybox-static` and the workspace's
//! static `sandbox-app` (other tests and checks use these exact references).

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::path::Path;

use super::images::{ImageConfig, ImageStore};
use crate::runtime::RuntimeError;
use crate::static_bin::static_binary;

pub const DISTROLESS_NONROOT: &str = "sandbox.local/distroless-app:nonroot";
pub const DISTROLESS_ROOT: &str = "sandbox.local/distroless-app:root";
pub const BUSYBOX: &str = "sandbox.local/busybox:latest";
/// The crashing app: the distroless-app image whose config runs `/sandbox-app require-port`
/// (Entrypoint + Cmd), which exits 1 with `sandbox-app: PORT is not set` unless PORT is set.
pub const CRASHING_APP: &str = "sandbox.local/crashing-app:v1";

/// Where the static busybox of the `busybox-static` package lives.
const HOST_BUSYBOX: &str = "/bin/busybox";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build the built-in images into `dir` and register them: `sandbox.local/distroless-app:nonroot`,
/// `sandbox.local/distroless-app:root`, `sandbox.local/crashing-app:v1` and
/// `sandbox.local/busybox:latest`.
pub fn register_builtin_images(store: &ImageStore, dir: &Path) -> Result<(), RuntimeError> {
    let internal = |what: &str, e: io::Error| RuntimeError::Internal(format!("{what}: {e}"));
    let app = static_binary("sandbox-app", "sandbox-app")
        .map_err(|e| internal("static sandbox-app", e))?;

    let distroless = dir.join("distroless-app/rootfs");
    build_distroless_rootfs(&distroless, &app).map_err(|e| internal("distroless-app image", e))?;
    let app_config = |user: &str| ImageConfig {
        user: Some(user.into()),
        entrypoint: vec!["/sandbox-app".into()],
        cmd: vec![],
        env: vec![
            PATH_ENV.into(),
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt".into(),
        ],
        working_dir: Some("/".into()),
    };
    store.register_dir(
        DISTROLESS_NONROOT,
        distroless.clone(),
        app_config("65532:65532"),
    );
    store.register_dir(DISTROLESS_ROOT, distroless.clone(), app_config("0"));
    store.register_dir(CRASHING_APP, distroless, crashing_app_config());

    let busybox = dir.join("busybox/rootfs");
    build_busybox_rootfs(&busybox).map_err(|e| internal("busybox image", e))?;
    store.register_dir(
        BUSYBOX,
        busybox,
        ImageConfig {
            user: None,
            entrypoint: vec![],
            cmd: vec!["sh".into()],
            env: vec![PATH_ENV.into()],
            working_dir: None,
        },
    );
    Ok(())
}

/// The crashing app's image config: the command lives in the image (Entrypoint + Cmd), not in
/// the pod spec, so resolving it needs the image config.
pub fn crashing_app_config() -> ImageConfig {
    ImageConfig {
        user: Some("65532:65532".into()),
        entrypoint: vec!["/sandbox-app".into()],
        cmd: vec!["require-port".into()],
        env: vec![PATH_ENV.into()],
        working_dir: Some("/".into()),
    }
}

fn fresh_dir(path: &Path) -> io::Result<()> {
    if path.exists() {
        fs::remove_dir_all(path)?;
    }
    fs::create_dir_all(path)
}

fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn write(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// One static server binary and nothing else to run, like gcr.io/distroless/static.
fn build_distroless_rootfs(root: &Path, app: &Path) -> io::Result<()> {
    fresh_dir(root)?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    fs::copy(app, root.join("sandbox-app"))?;
    fs::set_permissions(root.join("sandbox-app"), fs::Permissions::from_mode(0o755))?;
    for d in [
        "etc/app/v2",
        "etc/ssl/certs",
        "home/nonroot",
        "root",
        "var/run",
        "proc",
        "sys",
        "dev",
    ] {
        mkdir(&root.join(d), 0o755)?;
    }
    mkdir(&root.join("root"), 0o700)?;
    mkdir(&root.join("tmp"), 0o1777)?;
    chown(root.join("home/nonroot"), Some(65532), Some(65532))?;
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
        0o644,
    )?;
    write(
        &root.join("etc/group"),
        "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
        0o644,
    )?;
    write(
        &root.join("etc/app/v2/config.yaml"),
        "# sandbox-app configuration (version 2)\nlisten: \":8080\"\nlog_interval: 1s\ngreeting: ok\n",
        0o644,
    )?;
    symlink("/etc/app/v2", root.join("etc/app/current"))?;
    write(&root.join("etc/ssl/certs/ca-certificates.crt"), "", 0o644)?;
    write(
        &root.join("etc/os-release"),
        "PRETTY_NAME=\"Distroless (sandbox)\"\nID=distroless\n",
        0o644,
    )?;
    Ok(())
}

/// busybox-static with its applets as symlinks, like the busybox image.
fn build_busybox_rootfs(root: &Path) -> io::Result<()> {
    fresh_dir(root)?;
    fs::set_permissions(root, fs::Permissions::from_mode(0o755))?;
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "home", "var/run", "proc", "sys", "dev",
    ] {
        mkdir(&root.join(d), 0o755)?;
    }
    mkdir(&root.join("root"), 0o700)?;
    mkdir(&root.join("tmp"), 0o1777)?;
    if !Path::new(HOST_BUSYBOX).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{HOST_BUSYBOX} is missing: install the busybox-static package (apt-get install busybox-static)"
            ),
        ));
    }
    fs::copy(HOST_BUSYBOX, root.join("bin/busybox"))?;
    fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
    let list = std::process::Command::new(HOST_BUSYBOX)
        .arg("--list-full")
        .output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = root.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent)?;
        }
        if !link.exists() {
            symlink("/bin/busybox", &link)?;
        }
    }
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        0o644,
    )?;
    write(
        &root.join("etc/group"),
        "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n",
        0o644,
    )?;
    Ok(())
}
