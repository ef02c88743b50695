//! Hints when a tool in the remote command needs a capability the session's profile does
//! not give (tcpdump without CAP_NET_RAW, a tracer attaching without CAP_SYS_PTRACE).

use crate::session::profile::Profile;

/// Tools that need a capability: which one, and the profile that has it.
struct Need {
    tool: &'static str,
    why: &'static str,
    profile: Profile,
}

/// When `argv` exited `code` (not 0) under `profile`: the hint for the first tool in it that
/// needs more than the profile gives. Added capabilities only count for root (`profile.rs`):
/// a non-root process keeps none, since containerd sets no ambient capabilities. `timeout`
/// ending a tool (124) means it ran until the limit, so it had what it needed.
pub fn capability_hint(argv: &[String], profile: Profile, code: i32) -> Option<String> {
    if code == 0 || (code == 124 && argv.first().is_some_and(|a| a.ends_with("timeout"))) {
        return None;
    }
    let words = command_words(argv);
    let has = |flag: &str| {
        words
            .iter()
            .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
    };
    let attaches = has("-p")
        || has("--pid")
        || words.iter().any(|w| {
            w == "attach"
                || w.strip_prefix("-p")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    let needs = words.iter().find_map(|word| {
        let name = word.rsplit('/').next().unwrap_or_default();
        match name {
            "tcpdump" | "tshark" | "dumpcap" => Some(Need {
                tool: "tcpdump",
                why: "captures packets with CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode)",
                profile: Profile::Netadmin,
            }),
            "strace" | "ltrace" | "gdb" | "py-spy" | "dlv" if attaches => Some(Need {
                tool: match name {
                    "strace" => "strace",
                    "ltrace" => "ltrace",
                    "gdb" => "gdb",
                    "py-spy" => "py-spy",
                    _ => "dlv",
                },
                why: "attaches with ptrace(2): the same uid is not enough where the node's kernel.yama.ptrace_scope is 1 or more (most distributions), which needs CAP_SYS_PTRACE",
                profile: Profile::Ptrace,
            }),
            _ => None,
        }
    })?;
    let enough = match needs.profile {
        Profile::Netadmin => matches!(profile, Profile::Netadmin | Profile::Sysadmin),
        _ => matches!(profile, Profile::Ptrace | Profile::Sysadmin),
    };
    (!enough).then(|| {
        format!(
            "{} {}; the {profile} profile does not give it. Try `--profile {}` (it runs as root with only that added; the namespace must allow privileged, see docs/toolkits.md)",
            needs.tool, needs.why, needs.profile
        )
    })
}

/// The words of a command line, and of the script of `sh -c SCRIPT` / `bash -c SCRIPT`.
fn command_words(argv: &[String]) -> Vec<String> {
    let mut words: Vec<String> = argv.to_vec();
    if let [shell, flag, script, ..] = argv
        && matches!(shell.rsplit('/').next(), Some("sh" | "bash" | "ash"))
        && flag == "-c"
    {
        words.extend(
            script
                .split(|c: char| c.is_whitespace() || matches!(c, ';' | '|' | '&' | '(' | ')'))
                .filter(|w| !w.is_empty())
                .map(String::from),
        );
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn tcpdump_without_net_raw_suggests_netadmin() {
        let hint = capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Auto, 1);
        assert!(
            hint.as_deref()
                .is_some_and(|h| h.contains("--profile netadmin") && h.contains("CAP_NET_RAW")),
            "{hint:?}"
        );
        assert!(capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Ptrace, 1).is_some());
        assert_eq!(
            capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Netadmin, 1),
            None
        );
        assert_eq!(
            capability_hint(&argv(&["tcpdump", "-i", "lo"]), Profile::Sysadmin, 1),
            None
        );
    }

    #[test]
    fn attaching_a_tracer_suggests_ptrace_and_tracing_a_child_does_not() {
        for words in [
            &["strace", "-p", "1"][..],
            &["timeout", "3", "strace", "-f", "-p1"][..],
            &["gdb", "-p", "1", "-batch"][..],
            &["py-spy", "dump", "--pid", "1"][..],
            &["sh", "-c", "timeout 3 ltrace -p 1; echo done"][..],
        ] {
            let hint = capability_hint(&argv(words), Profile::Auto, 1);
            assert!(
                hint.as_deref()
                    .is_some_and(|h| h.contains("--profile ptrace")),
                "{words:?}: {hint:?}"
            );
        }
        assert_eq!(
            capability_hint(&argv(&["strace", "ls"]), Profile::Auto, 1),
            None
        );
        assert_eq!(
            capability_hint(&argv(&["strace", "-p", "1"]), Profile::Ptrace, 1),
            None
        );
        assert_eq!(
            capability_hint(&argv(&["ls", "-p"]), Profile::Auto, 1),
            None
        );
        // It worked until `timeout` ended it; and success needs no hint.
        let traced = argv(&["timeout", "3", "strace", "-p", "1"]);
        assert_eq!(capability_hint(&traced, Profile::Auto, 124), None);
        assert_eq!(capability_hint(&traced, Profile::Auto, 0), None);
    }
}
