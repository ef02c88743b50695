//! Processes of the shared PID namespace, as far as an unprivileged agent can see them.
//!
//! The one safety rule lives here: a process belongs to *this* debug container when its
//! root directory (`/proc/<pid>/root`) is the agent's own. The target's processes have the
//! target's root, so nothing that checks [`is_ours`] can signal them. When the root cannot
//! be read (the kernel's ptrace access check says no), the process is not ours.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Every pid visible in /proc, ascending.
pub fn all_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// The parent pid and state letter from `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> Option<(i32, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// `pid (comm) S ppid ...`; comm may contain spaces and parentheses, so split at the last `)`.
pub fn parse_stat(text: &str) -> Option<(i32, char)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Gone: no such process, or a zombie waiting for its parent.
pub fn is_gone(pid: i32) -> bool {
    !matches!(stat(pid), Some((_, state)) if state != 'Z' && state != 'X')
}

/// The process's root is the agent's own root (see the module note).
pub fn is_ours(pid: i32) -> bool {
    let (Ok(mine), Ok(theirs)) = (
        fs::metadata("/proc/self/root"),
        fs::metadata(format!("/proc/{pid}/root")),
    ) else {
        return false;
    };
    mine.dev() == theirs.dev() && mine.ino() == theirs.ino()
}

/// `/proc/<pid>/cmdline` split at NULs.
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(split_nul(&raw))
}

pub fn split_nul(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// The process is a pod sandbox's pause process (PID 1 when the pod shares its namespace).
fn is_pause(pid: i32) -> bool {
    cmdline(pid)
        .and_then(|argv| argv.into_iter().next())
        .is_some_and(|argv0| argv0 == "/pause" || argv0.rsplit('/').next() == Some("pause"))
}

/// The target process: `DISTROLESS_DEBUG_TARGET_PID` when set; else PID 1 (the target's
/// main process under `targetContainerName`); else, when PID 1 is the pause process of a
/// pod that shares its process namespace, the first process of another container.
pub fn target_pid() -> i32 {
    if let Some(pid) = std::env::var("DISTROLESS_DEBUG_TARGET_PID")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&pid: &i32| pid > 0)
    {
        return pid;
    }
    if !is_pause(1) {
        return 1;
    }
    all_pids()
        .into_iter()
        .find(|&pid| pid != 1 && !is_pause(pid) && !is_ours(pid) && !is_gone(pid))
        .unwrap_or(1)
}

/// Where the target's filesystem is visible: `/target` for PID 1 when the image has it.
pub fn root_view_of(pid: i32) -> PathBuf {
    if pid == 1 && fs::metadata("/target").is_ok_and(|m| m.is_dir()) {
        PathBuf::from("/target")
    } else {
        PathBuf::from(format!("/proc/{pid}/root"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_comm() {
        assert_eq!(parse_stat("42 (my (odd) name) S 7 42 42 0"), Some((7, 'S')));
        assert_eq!(parse_stat("1 (init) Z 0 1 1"), Some((0, 'Z')));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_ours_and_alive() {
        let me = std::process::id() as i32;
        assert!(is_ours(me));
        assert!(!is_gone(me));
        assert!(is_gone(i32::MAX));
        assert!(!is_ours(i32::MAX));
    }

    #[test]
    fn cmdline_splits_at_nul() {
        assert_eq!(
            split_nul(b"/app/server\0--port\08080\0"),
            vec!["/app/server", "--port", "8080"]
        );
    }
}
