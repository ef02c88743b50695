//! `seccompProfile: RuntimeDefault`, approximated.
//!
//! containerd's default profile is an allow-list of ~400 syscalls with more allowed for some
//! capabilities. The sandbox states the same rules as a deny-list over what the allow-list
//! leaves out, with the same errno (EPERM) and the same capability conditions: simpler to read,
//! and it cannot break a program by forgetting a harmless syscall. What it blocks for a
//! process is what containerd's profile blocks, for the syscalls listed here.
//! Source: containerd `contrib/seccomp/seccomp_default.go`.

use serde_json::{Value, json};

/// Never allowed by the default profile.
const ALWAYS_DENIED: &[&str] = &[
    "add_key",
    "keyctl",
    "request_key",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "nfsservctl",
    "swapon",
    "swapoff",
    "sysfs",
    "_sysctl",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "pivot_root",
];

/// Allowed only with a capability.
const NEEDS_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
];

/// `clone` flags that make namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
/// NEWPID, NEWNET): refused without CAP_SYS_ADMIN.
const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The `linux.seccomp` object for a process with capabilities `caps`.
pub fn runtime_default(caps: &[String]) -> Value {
    let has = |cap: &str| caps.iter().any(|c| c == cap);
    let mut denied: Vec<&str> = ALWAYS_DENIED.to_vec();
    for (cap, calls) in NEEDS_CAPABILITY {
        // bpf and perf_event_open also come with CAP_BPF / CAP_PERFMON.
        let granted = has(cap);
        for call in *calls {
            let alt = match *call {
                "bpf" => has("CAP_BPF"),
                "perf_event_open" => has("CAP_PERFMON"),
                "syslog" => has("CAP_SYSLOG"),
                _ => false,
            };
            if !granted && !alt {
                denied.push(call);
            }
        }
    }
    let mut rules = vec![json!({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM})];
    if !has("CAP_SYS_ADMIN") {
        for flag in CLONE_NAMESPACE_FLAGS {
            rules.push(json!({
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
        // As containerd: clone3 cannot be filtered by flags, so it is ENOSYS and libc falls
        // back to clone.
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(v: &Value) -> Vec<String> {
        v["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn capabilities_lift_their_syscalls() {
        let plain = runtime_default(&[]);
        assert!(denied(&plain).contains(&"unshare".to_string()));
        assert!(denied(&plain).contains(&"keyctl".to_string()));
        assert!(!denied(&plain).contains(&"ptrace".to_string()));
        assert_eq!(plain["syscalls"].as_array().unwrap().len(), 9);

        let admin = runtime_default(&["CAP_SYS_ADMIN".into(), "CAP_SYS_PTRACE".into()]);
        assert!(!denied(&admin).contains(&"mount".to_string()));
        assert!(!denied(&admin).contains(&"kcmp".to_string()));
        assert!(denied(&admin).contains(&"keyctl".to_string()));
        assert_eq!(admin["syscalls"].as_array().unwrap().len(), 1);
    }
}
