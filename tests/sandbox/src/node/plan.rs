//! From a Pod's container to what runc runs: user and groups, capabilities, command line,
//! environment, working directory — the kubelet's and containerd CRI's rules, as pure
//! functions over the Pod, the container and the image.

use std::collections::HashMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, SecurityContext};

use super::images::{Image, ImageConfig, group_entries, passwd_entries};
use super::spec::{ALL_CAPS, DEFAULT_CAPS, Identity};
use crate::runtime::{ConfigData, ConfigKind};

/// `name_namespace(uid)`, the kubelet's `format.Pod`.
pub fn pod_label(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// The image `User` split into uid (or user name) and optional gid (or group name).
fn parse_image_user(user: Option<&str>) -> (&str, Option<&str>) {
    let user = user.unwrap_or("").trim();
    match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    }
}

/// The identity the container's process runs as: container securityContext over pod
/// securityContext over the image's `User` (names resolved in the image's /etc/passwd and
/// /etc/group, as containerd does); `runAsNonRoot` enforced with the kubelet's messages.
/// The error is a `CreateContainerConfigError` message.
pub fn identity_for(pod: &Pod, c: &Container, image: &Image) -> Result<Identity, String> {
    let spec = pod.spec.as_ref();
    let psc = spec.and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let run_as_user = csc
        .and_then(|s| s.run_as_user)
        .or(psc.and_then(|s| s.run_as_user));
    let run_as_group = csc
        .and_then(|s| s.run_as_group)
        .or(psc.and_then(|s| s.run_as_group));
    let run_as_non_root = csc
        .and_then(|s| s.run_as_non_root)
        .or(psc.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    let rootfs: &Path = &image.rootfs;
    let passwd = passwd_entries(rootfs);
    let groups = group_entries(rootfs);

    let (image_user, image_group) = parse_image_user(image.config.user.as_deref());
    let image_uid: Option<u32> = if image_user.is_empty() {
        Some(0)
    } else {
        image_user.parse().ok()
    };

    if run_as_non_root {
        let who = format!("(pod: {:?}, container: {})", pod_label(pod), c.name);
        match (run_as_user, image_uid) {
            (Some(0), _) => {
                return Err(format!(
                    "container's runAsUser breaks non-root policy {who}"
                ));
            }
            (Some(_), _) => {}
            (None, Some(0)) => {
                return Err(format!(
                    "container has runAsNonRoot and image will run as root {who}"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "container has runAsNonRoot and image has non-numeric user ({image_user}), cannot verify user is non-root {who}"
                ));
            }
            (None, Some(_)) => {}
        }
    }

    let (uid, mut gid) = match run_as_user {
        Some(u) => {
            let u = u as u32;
            (u, passwd.iter().find(|p| p.uid == u).map_or(0, |p| p.gid))
        }
        None => {
            let entry = match image_uid {
                Some(u) => passwd.iter().find(|p| p.uid == u),
                None => passwd.iter().find(|p| p.name == image_user),
            };
            let uid = match (image_uid, entry) {
                (Some(u), _) => u,
                (None, Some(e)) => e.uid,
                (None, None) => {
                    return Err(format!(
                        "failed to create containerd container: no users found for user {image_user:?} in the image's /etc/passwd"
                    ));
                }
            };
            let gid = match image_group {
                Some(g) => match g.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => groups.iter().find(|(name, _, _)| name == g).map(|(_, n, _)| *n).ok_or_else(
                        || format!("failed to create containerd container: no groups found for group {g:?} in the image's /etc/group"),
                    )?,
                },
                None => entry.map_or(0, |e| e.gid),
            };
            (uid, gid)
        }
    };
    if let Some(g) = run_as_group {
        gid = g as u32;
    }

    let mut additional = vec![gid];
    if let Some(name) = passwd.iter().find(|p| p.uid == uid).map(|p| p.name.clone()) {
        for (_, g, members) in &groups {
            if members.contains(&name) {
                additional.push(*g);
            }
        }
    }
    for g in psc
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
    {
        additional.push(g as u32);
    }
    if let Some(g) = psc.and_then(|s| s.fs_group) {
        additional.push(g as u32);
    }
    let mut seen = Vec::new();
    additional.retain(|g| {
        let new = !seen.contains(g);
        seen.push(*g);
        new
    });
    Ok(Identity {
        uid,
        gid,
        additional_gids: additional,
    })
}

pub fn privileged(c: &Container) -> bool {
    c.security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false)
}

/// The seccomp filter: container `seccompProfile` over the pod's; `RuntimeDefault` is
/// containerd's default profile (see [`super::seccomp`]), `Unconfined` or none is no filter
/// (the kubelet's default), privileged containers are never filtered. The error is a
/// `CreateContainerError` message.
pub fn seccomp_for(
    pod: &Pod,
    c: &Container,
    caps: &[String],
) -> Result<Option<serde_json::Value>, String> {
    if privileged(c) {
        return Ok(None);
    }
    let profile = c
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.clone())
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.seccomp_profile.clone())
        });
    match profile.as_ref().map(|p| p.type_.as_str()) {
        Some("RuntimeDefault") => Ok(Some(super::seccomp::runtime_default(caps))),
        Some("Localhost") => Err(format!(
            "failed to generate seccomp spec opts: cannot load seccomp profile {:?}: Localhost profiles are not supported by the sandbox node",
            profile
                .and_then(|p| p.localhost_profile)
                .unwrap_or_default()
        )),
        _ => Ok(None),
    }
}

/// containerd CRI's capability rules: the default set (all when privileged), then `add: [ALL]`,
/// `drop: [ALL]`, then individual adds, then individual drops.
pub fn capabilities_for(sc: Option<&SecurityContext>) -> Vec<String> {
    if sc.and_then(|s| s.privileged).unwrap_or(false) {
        return ALL_CAPS.iter().map(|c| c.to_string()).collect();
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    let Some(spec) = sc.and_then(|s| s.capabilities.as_ref()) else {
        return caps;
    };
    let norm = |c: &String| format!("CAP_{}", c.to_uppercase().trim_start_matches("CAP_"));
    let add = spec.add.clone().unwrap_or_default();
    let drop = spec.drop.clone().unwrap_or_default();
    if add.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        caps = ALL_CAPS.iter().map(|c| c.to_string()).collect();
    }
    if drop.iter().any(|c| c.eq_ignore_ascii_case("ALL")) {
        caps.clear();
    }
    for c in add.iter().filter(|c| !c.eq_ignore_ascii_case("ALL")) {
        let c = norm(c);
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    for c in drop.iter().filter(|c| !c.eq_ignore_ascii_case("ALL")) {
        let c = norm(c);
        caps.retain(|have| *have != c);
    }
    caps
}

/// `allowPrivilegeEscalation: false` sets no_new_privs; unset means allowed.
pub fn no_new_privileges(c: &Container) -> bool {
    c.security_context
        .as_ref()
        .and_then(|s| s.allow_privilege_escalation)
        == Some(false)
        && !privileged(c)
}

pub fn readonly_root(c: &Container) -> bool {
    c.security_context
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem)
        .unwrap_or(false)
}

/// Expand `$(VAR)` references as the kubelet does (`$$` escapes; unknown stay as written).
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after_dollar) = after.strip_prefix('$') {
            out.push('$');
            rest = after_dollar;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) if vars.contains_key(&inner[..end]) => {
                    out.push_str(&vars[&inner[..end]]);
                    rest = &inner[end + 1..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The process environment: image `Env`, then `HOSTNAME`, the `kubernetes` service's
/// variables, then the container's `envFrom` and `env` (plain values with `$(VAR)`
/// expansion, the common `fieldRef`s, and ConfigMap/Secret keys read through `lookup`).
/// Other service links are not made. The error is the kubelet's CreateContainerConfigError
/// message for a missing ConfigMap, Secret or key (pkg/kubelet/kubelet_pods.go
/// makeEnvironmentVariables); `optional: true` references are skipped instead.
pub fn environment(
    pod: &Pod,
    c: &Container,
    image: &ImageConfig,
    pod_ip: &str,
    lookup: &dyn Fn(ConfigKind, &str) -> Option<ConfigData>,
) -> Result<Vec<String>, String> {
    let mut order: Vec<String> = Vec::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    let set =
        |order: &mut Vec<String>, vars: &mut HashMap<String, String>, k: String, v: String| {
            if !vars.contains_key(&k) {
                order.push(k.clone());
            }
            vars.insert(k, v);
        };
    for kv in &image.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        set(&mut order, &mut vars, k.into(), v.into());
    }
    if !vars.contains_key("PATH") {
        set(
            &mut order,
            &mut vars,
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    set(&mut order, &mut vars, "HOSTNAME".into(), hostname);
    // The kubelet always adds the `kubernetes` service's variables (the ClusterIP of a
    // typical cluster; the sandbox has no service network behind it).
    for (k, v) in [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
    ] {
        set(&mut order, &mut vars, k.into(), v.into());
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut container_vars: HashMap<String, String> = HashMap::new();
    for from in c.env_from.iter().flatten() {
        let (kind, name, optional) = if let Some(cm) = &from.config_map_ref {
            (ConfigKind::ConfigMap, cm.name.as_str(), cm.optional)
        } else if let Some(secret) = &from.secret_ref {
            (ConfigKind::Secret, secret.name.as_str(), secret.optional)
        } else {
            continue;
        };
        let Some(data) = lookup(kind, name) else {
            if optional == Some(true) {
                continue;
            }
            return Err(not_found(kind, name));
        };
        let prefix = from.prefix.as_deref().unwrap_or("");
        for (k, v) in data {
            let key = format!("{prefix}{k}");
            container_vars.insert(key.clone(), v.clone());
            set(&mut order, &mut vars, key, v);
        }
    }
    for e in c.env.iter().flatten() {
        let source = e.value_from.as_ref();
        let value = if let Some(v) = &e.value {
            expand(v, &container_vars)
        } else if let Some(field) = source.and_then(|f| f.field_ref.as_ref()) {
            let spec = pod.spec.as_ref();
            match field.field_path.as_str() {
                "metadata.name" => pod.metadata.name.clone().unwrap_or_default(),
                "metadata.namespace" => pod.metadata.namespace.clone().unwrap_or_default(),
                "metadata.uid" => pod.metadata.uid.clone().unwrap_or_default(),
                "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
                "spec.serviceAccountName" => spec
                    .and_then(|s| s.service_account_name.clone())
                    .unwrap_or_default(),
                "status.podIP" | "status.hostIP" => pod_ip.to_string(),
                _ => continue,
            }
        } else if let Some((kind, name, key, optional)) = key_ref(e) {
            let Some(data) = lookup(kind, name) else {
                if optional {
                    continue;
                }
                return Err(not_found(kind, name));
            };
            match data.get(key) {
                Some(v) => v.clone(),
                None if optional => continue,
                None => {
                    let kind = match kind {
                        ConfigKind::ConfigMap => "ConfigMap",
                        ConfigKind::Secret => "Secret",
                    };
                    return Err(format!(
                        "couldn't find key {key} in {kind} {namespace}/{name}"
                    ));
                }
            }
        } else {
            // resourceFieldRef is not supported by the sandbox node.
            continue;
        };
        container_vars.insert(e.name.clone(), value.clone());
        set(&mut order, &mut vars, e.name.clone(), value);
    }
    Ok(order
        .into_iter()
        .map(|k| format!("{k}={}", vars[&k]))
        .collect())
}

/// An env var's `configMapKeyRef` or `secretKeyRef`: kind, object name, key, optional.
fn key_ref(e: &EnvVar) -> Option<(ConfigKind, &str, &str, bool)> {
    let from = e.value_from.as_ref()?;
    if let Some(r) = &from.config_map_key_ref {
        return Some((
            ConfigKind::ConfigMap,
            &r.name,
            &r.key,
            r.optional == Some(true),
        ));
    }
    let r = from.secret_key_ref.as_ref()?;
    Some((
        ConfigKind::Secret,
        &r.name,
        &r.key,
        r.optional == Some(true),
    ))
}

/// The apiserver's NotFound text the kubelet passes on: `configmap "x" not found`.
fn not_found(kind: ConfigKind, name: &str) -> String {
    let resource = match kind {
        ConfigKind::ConfigMap => "configmap",
        ConfigKind::Secret => "secret",
    };
    format!("{resource} {name:?} not found")
}

/// The command line: Kubernetes' `command`/`args` over the image's `Entrypoint`/`Cmd`.
pub fn command_line(
    c: &Container,
    image: &ImageConfig,
    env: &[String],
) -> Result<Vec<String>, String> {
    let vars: HashMap<String, String> = env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let command = c.command.clone().unwrap_or_default();
    let args = c.args.clone().unwrap_or_default();
    let expand_all = |v: Vec<String>| v.into_iter().map(|s| expand(&s, &vars)).collect::<Vec<_>>();
    let line = match (command.is_empty(), args.is_empty()) {
        (false, false) => [expand_all(command), expand_all(args)].concat(),
        (false, true) => expand_all(command),
        (true, false) => [image.entrypoint.clone(), expand_all(args)].concat(),
        (true, true) => [image.entrypoint.clone(), image.cmd.clone()].concat(),
    };
    if line.is_empty() {
        return Err("failed to generate spec: no command specified".into());
    }
    Ok(line)
}

pub fn working_dir(c: &Container, image: &ImageConfig) -> String {
    c.working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| image.working_dir.clone())
        .unwrap_or_else(|| "/".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, PodSecurityContext, PodSpec};
    use std::path::PathBuf;

    fn image(user: Option<&str>, dir: PathBuf) -> Image {
        Image {
            reference: "sandbox.local/x:1".into(),
            rootfs: dir,
            config: ImageConfig {
                user: user.map(String::from),
                entrypoint: vec!["/app".into()],
                cmd: vec!["--serve".into()],
                ..Default::default()
            },
            digest: "sha256:0".into(),
            size: 0,
        }
    }

    fn rootfs() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plan-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0::/:/x\nnonroot:x:65532:65532::/:/x\napp:x:1000:1001::/:/x\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/group"),
            "root:x:0:\nextra:x:2000:app\napp:x:1001:\n",
        )
        .unwrap();
        dir
    }

    fn pod(psc: PodSecurityContext) -> Pod {
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                security_context: Some(psc),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn identity_follows_container_then_pod_then_image() {
        let root = rootfs();
        let c = Container::default();
        let id = identity_for(
            &pod(Default::default()),
            &c,
            &image(Some("65532:65532"), root.clone()),
        )
        .unwrap();
        assert_eq!(
            (id.uid, id.gid, id.additional_gids.clone()),
            (65532, 65532, vec![65532])
        );

        let id = identity_for(
            &pod(Default::default()),
            &c,
            &image(Some("app"), root.clone()),
        )
        .unwrap();
        assert_eq!(
            (id.uid, id.gid, id.additional_gids),
            (1000, 1001, vec![1001, 2000])
        );

        let psc = PodSecurityContext {
            run_as_user: Some(1000),
            supplemental_groups: Some(vec![3000]),
            fs_group: Some(4000),
            ..Default::default()
        };
        let id = identity_for(
            &pod(psc.clone()),
            &c,
            &image(Some("65532:65532"), root.clone()),
        )
        .unwrap();
        assert_eq!(
            (id.uid, id.gid, id.additional_gids),
            (1000, 1001, vec![1001, 2000, 3000, 4000])
        );

        let c = Container {
            security_context: Some(SecurityContext {
                run_as_user: Some(0),
                run_as_group: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = identity_for(&pod(psc), &c, &image(None, root.clone())).unwrap();
        assert_eq!((id.uid, id.gid), (0, 5));
    }

    #[test]
    fn run_as_non_root_refuses_root_with_kubelet_message() {
        let root = rootfs();
        let psc = PodSecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        };
        let c = Container {
            name: "app".into(),
            ..Default::default()
        };
        let err = identity_for(&pod(psc.clone()), &c, &image(Some("0"), root.clone())).unwrap_err();
        assert_eq!(
            err,
            "container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: app)"
        );
        let err =
            identity_for(&pod(psc.clone()), &c, &image(Some("nonroot"), root.clone())).unwrap_err();
        assert!(err.contains("non-numeric user (nonroot)"), "{err}");
        assert!(identity_for(&pod(psc), &c, &image(Some("65532"), root)).is_ok());
    }

    #[test]
    fn capabilities_follow_containerd() {
        assert_eq!(capabilities_for(None).len(), 14);
        let sc = |add: &[&str], drop: &[&str]| SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(add.iter().map(|s| s.to_string()).collect()),
                drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            }),
            ..Default::default()
        };
        assert!(capabilities_for(Some(&sc(&[], &["ALL"]))).is_empty());
        assert_eq!(
            capabilities_for(Some(&sc(&["SYS_PTRACE"], &["ALL"]))),
            ["CAP_SYS_PTRACE"]
        );
        let all_but_chown = capabilities_for(Some(&sc(&["ALL"], &["CHOWN"])));
        assert_eq!(all_but_chown.len(), 40);
        assert!(!all_but_chown.contains(&"CAP_CHOWN".to_string()));
        let with_ptrace = capabilities_for(Some(&sc(&["SYS_PTRACE"], &["KILL"])));
        assert_eq!(with_ptrace.len(), 14);
        assert!(with_ptrace.contains(&"CAP_SYS_PTRACE".to_string()));
    }

    #[test]
    fn command_and_args_override_like_kubernetes() {
        let img = ImageConfig {
            entrypoint: vec!["/ep".into()],
            cmd: vec!["c".into()],
            ..Default::default()
        };
        let c = |cmd: &[&str], args: &[&str]| Container {
            command: Some(cmd.iter().map(|s| s.to_string()).collect()),
            args: Some(args.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let env = vec!["X=1".to_string()];
        assert_eq!(
            command_line(&c(&[], &[]), &img, &env).unwrap(),
            ["/ep", "c"]
        );
        assert_eq!(
            command_line(&c(&[], &["a"]), &img, &env).unwrap(),
            ["/ep", "a"]
        );
        assert_eq!(command_line(&c(&["sh"], &[]), &img, &env).unwrap(), ["sh"]);
        assert_eq!(
            command_line(&c(&["sh"], &["$(X)", "$$(X)", "$(Y)"]), &img, &env).unwrap(),
            ["sh", "1", "$(X)", "$(Y)"]
        );
        assert!(command_line(&c(&[], &[]), &ImageConfig::default(), &env).is_err());
    }
}
