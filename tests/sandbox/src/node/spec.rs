//! OCI runtime configs (`config.json` for `runc create`, `process.json` for `runc exec`) as
//! containerd's CRI plugin writes them: its default capabilities, mounts, masked and
//! read-only paths, namespaces shared with the pod sandbox.
//!
//! Everything here is pure: a [`ContainerPlan`] in, JSON out. [`super::plan`] turns a Pod's
//! container into a plan.

use std::path::PathBuf;

use serde_json::{Value, json};

/// containerd's default capability set (`oci.defaultUnixCaps` / CRI default).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (numbers 0..=40), for `privileged` and `add: [ALL]`.
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// containerd's default masked paths (unless privileged).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// containerd's default read-only paths (unless privileged).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The user a process runs as. `additional_gids` starts with the primary gid, as containerd
/// writes it (and as `status.containerStatuses[].user.linux.supplementalGroups` reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// A process to run: the container's main process, or an exec in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub identity: Identity,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    pub terminal: bool,
    /// (width, height) of the pty before the process starts.
    pub console_size: Option<(u16, u16)>,
}

/// Create a namespace, join one by path (`/proc/<pid>/ns/<type>`), or stay in the host's
/// (`hostNetwork`, `hostPID`, `hostIPC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    New,
    Join(PathBuf),
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespaces {
    pub pid: Namespace,
    pub network: Namespace,
    pub ipc: Namespace,
    pub uts: Namespace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    pub process: ProcessPlan,
    /// The container's root (its overlay mount).
    pub root: PathBuf,
    pub readonly_root: bool,
    /// Set only for the sandbox, which owns the UTS namespace.
    pub hostname: Option<String>,
    pub namespaces: Namespaces,
    pub binds: Vec<Bind>,
    pub privileged: bool,
    pub cgroups_path: String,
    /// The `linux.seccomp` object, if the process is filtered.
    pub seccomp: Option<Value>,
}

/// `process` object of the OCI runtime spec.
pub fn oci_process(p: &ProcessPlan) -> Value {
    let caps = &p.capabilities;
    let mut process = json!({
        "terminal": p.terminal,
        "user": {
            "uid": p.identity.uid,
            "gid": p.identity.gid,
            "additionalGids": p.identity.additional_gids,
        },
        "args": p.args,
        "env": p.env,
        "cwd": p.cwd,
        // No inheritable and no ambient set: the kernel clears permitted/effective at execve
        // for a non-root uid, exactly as on a containerd node.
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
        },
        "noNewPrivileges": p.no_new_privileges,
        "oomScoreAdj": 1000,
    });
    if let Some((width, height)) = p.console_size {
        process["consoleSize"] = json!({"width": width, "height": height});
    }
    process
}

fn namespace(kind: &str, ns: &Namespace) -> Option<Value> {
    match ns {
        Namespace::New => Some(json!({"type": kind})),
        Namespace::Join(path) => Some(json!({"type": kind, "path": path})),
        Namespace::Host => None,
    }
}

/// The whole `config.json`.
pub fn oci_config(plan: &ContainerPlan) -> Value {
    let sys_options = if plan.privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_options}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": if plan.privileged {
            json!(["nosuid", "noexec", "nodev", "relatime"])
        } else {
            json!(["nosuid", "noexec", "nodev", "relatime", "ro"])
        }}),
    ];
    for b in &plan.binds {
        let mut options = vec!["rbind", "rprivate"];
        options.push(if b.readonly { "ro" } else { "rw" });
        mounts.push(json!({"destination": b.destination, "type": "bind",
                           "source": b.source, "options": options}));
    }
    let ns = &plan.namespaces;
    let namespaces: Vec<Value> = [
        namespace("pid", &ns.pid),
        namespace("network", &ns.network),
        namespace("ipc", &ns.ipc),
        namespace("uts", &ns.uts),
        Some(json!({"type": "mount"})),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": plan.cgroups_path,
        "resources": {"devices": [{"allow": plan.privileged, "access": "rwm"}]},
    });
    if let Some(seccomp) = &plan.seccomp {
        linux["seccomp"] = seccomp.clone();
    }
    if !plan.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    let mut config = json!({
        "ociVersion": "1.0.2-dev",
        "process": oci_process(&plan.process),
        "root": {"path": plan.root, "readonly": plan.readonly_root},
        "mounts": mounts,
        "linux": linux,
    });
    if let Some(h) = &plan.hostname {
        config["hostname"] = json!(h);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ContainerPlan {
        ContainerPlan {
            process: ProcessPlan {
                args: vec!["/app".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                identity: Identity {
                    uid: 65532,
                    gid: 65532,
                    additional_gids: vec![65532],
                },
                capabilities: DEFAULT_CAPS.iter().map(|c| c.to_string()).collect(),
                no_new_privileges: false,
                terminal: false,
                console_size: None,
            },
            root: "/r".into(),
            readonly_root: true,
            hostname: None,
            namespaces: Namespaces {
                pid: Namespace::New,
                network: Namespace::Join("/proc/7/ns/net".into()),
                ipc: Namespace::Join("/proc/7/ns/ipc".into()),
                uts: Namespace::Join("/proc/7/ns/uts".into()),
            },
            binds: vec![],
            privileged: false,
            cgroups_path: "/x".into(),
            seccomp: None,
        }
    }

    #[test]
    fn default_container_has_containerd_defaults_and_no_ambient_caps() {
        let c = oci_config(&plan());
        assert_eq!(
            c["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(c["process"]["capabilities"].get("ambient").is_none());
        assert!(c["process"]["capabilities"].get("inheritable").is_none());
        assert_eq!(c["linux"]["maskedPaths"].as_array().unwrap().len(), 11);
        assert_eq!(c["linux"]["namespaces"][1]["path"], "/proc/7/ns/net");
        assert!(c["linux"]["namespaces"][0].get("path").is_none());
        assert_eq!(c["root"]["readonly"], true);
        assert!(c.get("hostname").is_none());
    }

    #[test]
    fn privileged_has_no_masked_paths_and_rw_sys() {
        let mut p = plan();
        p.privileged = true;
        let c = oci_config(&p);
        assert!(c["linux"].get("maskedPaths").is_none());
        let sys = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys");
        assert!(
            !sys.unwrap()["options"]
                .as_array()
                .unwrap()
                .contains(&json!("ro"))
        );
    }
}
