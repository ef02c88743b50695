//! Processes of the shared PID namespace, as far as an unprivileged agent can see them.
//!
//! The one safety rule lives here: a process belongs to *this* debug container when its
//! root directory (`/proc/<pid>/root`) is the agent's own. The target's processes have the
//! target's root, so nothing that checks [`is_ours`] can signal them. When the root cannot
//! be read (the kernel's ptrace access check says no), the process is not ours.

use std::fs;
use std::os::unix::fs::MetadataExt;

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

/// What the agent needs from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: i32,
    /// `R`, `S`, `Z`...: the state letter.
    pub state: char,
    /// When the process started, in clock ticks after boot (field 22, `starttime`).
    pub start: u64,
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// `pid (comm) S ppid ...`; comm may contain spaces and parentheses, so split at the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        // Field 22 of the whole line is the 20th after the comm (state is field 3).
        start: fields.get(19).and_then(|f| f.parse().ok()).unwrap_or(0),
    })
}

/// Gone: no such process, or a zombie waiting for its parent.
pub fn is_gone(pid: i32) -> bool {
    !matches!(stat(pid), Some(s) if s.state != 'Z' && s.state != 'X')
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
pub fn is_pause(pid: i32) -> bool {
    cmdline(pid)
        .and_then(|argv| argv.into_iter().next())
        .is_some_and(|argv0| argv0 == "/pause" || argv0.rsplit('/').next() == Some("pause"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_comm() {
        let line = "42 (my (odd) name) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    31337 1234 56 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 7,
                state: 'S',
                start: 31337
            })
        );
        assert_eq!(
            parse_stat("1 (init) Z 0 1 1"),
            Some(Stat {
                ppid: 0,
                state: 'Z',
                start: 0
            })
        );
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
