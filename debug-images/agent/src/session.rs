//! `run` and `shell`: register a session, then become the command (execve).
//!
//! Becoming the command rather than spawning it means the exit code, the signals (the
//! plugin's Ctrl-C) and the terminal are the command's own, with no agent process in
//! between to forward them. The session lock rides along on an inherited descriptor.
//!
//! `--handshake` lets the plugin open the exec before it has read the pod (a reused
//! session's one round trip): no command runs until the first line of stdin says `go`;
//! `abort`, anything else or a closed stdin ends the verb (exit 1) with nothing run. The line
//! is read a byte at a time so that the rest of stdin stays the command's. While it waits,
//! the session is already registered (so `hold` does not end the container under it when
//! the session before it was the last one out) and the target already looked up (it only
//! reads /proc), so that `go` finds nothing left to do but the command.

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::{RunFlags, ShellFlags};
use crate::exit::Status;
use crate::procs;
use crate::state::StateDir;
use crate::sys;
use crate::target::{self, Method, Resolved};

/// Directories every debug shell and command should find tools in, in this order.
pub const STANDARD_PATH: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

pub fn run(flags: RunFlags) -> Status {
    let argv = flags.argv;
    register(&format!("run {}", shell_words(&argv)), flags.end_container);
    let target = match identified(&flags.target, "run") {
        Ok(target) => target,
        Err(status) => return status,
    };
    if flags.handshake && !handshake_says_go("run") {
        return Status::Failure;
    }
    let path = path_with_standard_dirs(std::env::var_os("PATH"));
    let Some(program) = find_program(&argv[0], &path) else {
        return exec_failed(&argv[0], io::Error::from(io::ErrorKind::NotFound));
    };
    let mut command = Command::new(&program);
    command.arg0(&argv[0]).args(&argv[1..]).env("PATH", path);
    set_target_env(&mut command, &target);
    exec_failed(&argv[0], command.exec())
}

/// The target of a registered session's verb; else its refusal reported, and the session
/// taken back: nothing will run, so this exit must not end the container before the plugin
/// asks `target` why.
fn identified(flags: &crate::cli::TargetFlags, verb: &str) -> Result<Resolved, Status> {
    target::identify(flags).map_err(|failure| {
        StateDir::from_env().withdraw_session();
        failure.report(verb)
    })
}

/// `TARGET_PID` and `TARGET_ROOT` for the session's commands.
fn set_target_env(command: &mut Command, target: &Resolved) {
    command
        .env("TARGET_PID", target.pid.to_string())
        .env("TARGET_ROOT", &target.root);
}

/// The file to execute for `name`, searched in `path` as a shell does: a name with a slash
/// is used as it is; otherwise the first executable file in PATH, else the first file at
/// all (its exec then fails with "Permission denied", 126), else none (127). Searching here
/// rather than in execvp keeps "not found" apart from unreadable PATH directories.
pub fn find_program(name: &OsStr, path: &OsStr) -> Option<PathBuf> {
    if name.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(name));
    }
    if name.is_empty() {
        return None;
    }
    let mut first_file = None;
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(name);
        if !candidate.is_file() {
            continue;
        }
        let executable = CString::new(candidate.as_os_str().as_bytes())
            .is_ok_and(|c| sys::access(&c, libc::X_OK));
        if executable {
            return Some(candidate);
        }
        first_file.get_or_insert(candidate);
    }
    first_file
}

pub fn shell(flags: ShellFlags) -> Status {
    register("shell", flags.end_container);
    let target = match identified(&flags.target, "shell") {
        Ok(target) => target,
        Err(status) => return status,
    };
    if flags.handshake && !handshake_says_go("shell") {
        return Status::Failure;
    }
    eprintln!("{}", target_line(&target));

    let shell = choose_shell(std::env::var_os("SHELL"));
    let mut command = Command::new(&shell);
    command
        .current_dir("/")
        .env("PATH", path_with_standard_dirs(std::env::var_os("PATH")))
        .env("PS1", "dbg:\\w\\$ ")
        .env("SHELL", &shell);
    set_target_env(&mut command, &target);
    if !home_is_usable(std::env::var_os("HOME").as_deref()) {
        command.env("HOME", "/tmp");
    }
    if Path::new(&shell).file_name() == Some(OsStr::new("bash")) {
        // bash would read ~/.bashrc and the target's distro defaults could override PS1.
        command.arg("--norc");
    }
    command.arg("-i");
    exec_failed(&shell, command.exec())
}

/// The longest handshake line we read before giving up on it.
const HANDSHAKE_LINE: usize = 16;

/// Waits for the plugin's word (see the module's doc); says why nothing ran when it is not
/// `go`.
fn handshake_says_go(verb: &str) -> bool {
    // Our own descriptor for fd 0, read unbuffered: std's Stdin would read ahead.
    let word = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| handshake_word(&mut std::fs::File::from(fd)));
    if word.as_deref() == Some("go") {
        return true;
    }
    eprintln!(
        "distroless-debug-agent: {verb}: the handshake said {}: nothing was run",
        word.map_or_else(
            || "nothing (stdin closed)".to_string(),
            |w| format!("{w:?}")
        )
    );
    false
}

/// The first line of `input`, read one byte at a time and no further; `None` at EOF or on
/// an error before the newline.
fn handshake_word(input: &mut impl Read) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() <= HANDSHAKE_LINE {
        match input.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) if byte[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// Registers the session; a failure is reported but does not stop the command, which the
/// user needs more than the idle bookkeeping. `end_container`: `hold` ends the container
/// when this session ends and no other is alive (hold.rs). `tar`, `untar` and `info` call
/// it too for `--end-container`, once their target is known: the session is the verb's own
/// process, and ends with it.
pub fn register(note: &str, end_container: bool) {
    let state = StateDir::from_env();
    let registered = state.register_session(note, end_container);
    // Wake `hold` (SIGCHLD is its "look again"), so it watches this session closely from
    // now on and sees its end at once, however short it is. Only a `hold` of ours.
    if let Some(hold) = state.read_hold_pid().filter(|&pid| procs::is_ours(pid)) {
        let _ = sys::kill(hold, libc::SIGCHLD);
    }
    if let Err(e) = registered {
        eprintln!(
            "distroless-debug-agent: warning: cannot register this session ({e}); \
             hold may end the container when its idle time passes"
        );
    }
}

/// Maps a failed execve to the shell's conventions: 127 not found, 126 not executable.
fn exec_failed(program: &OsStr, err: io::Error) -> Status {
    let name = program.to_string_lossy();
    let has_slash = program.as_bytes().contains(&b'/');
    if err.kind() == io::ErrorKind::NotFound {
        if has_slash {
            eprintln!("distroless-debug-agent: {name}: No such file or directory");
        } else {
            eprintln!("distroless-debug-agent: {name}: command not found");
        }
        Status::NotFound
    } else {
        eprintln!(
            "distroless-debug-agent: {name}: {}",
            strip_os_error_code(&err)
        );
        Status::NotExecutable
    }
}

/// `Permission denied (os error 13)` → `Permission denied`, as a shell prints it.
fn strip_os_error_code(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// `$SHELL` when it names an existing file, else bash when present, else `/bin/sh`.
pub fn choose_shell(shell_env: Option<OsString>) -> OsString {
    if let Some(shell) = shell_env.filter(|s| !s.is_empty() && Path::new(s).is_file()) {
        return shell;
    }
    for candidate in ["/bin/bash", "/usr/bin/bash"] {
        if Path::new(candidate).is_file() {
            return candidate.into();
        }
    }
    "/bin/sh".into()
}

/// The existing PATH with the standard directories appended where missing, so toolkit
/// directories an image put first keep winning.
pub fn path_with_standard_dirs(path: Option<OsString>) -> OsString {
    let existing = path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut dirs: Vec<&str> = existing.split(':').filter(|d| !d.is_empty()).collect();
    for dir in STANDARD_PATH {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.join(":").into()
}

fn home_is_usable(home: Option<&OsStr>) -> bool {
    let Some(home) = home.filter(|h| !h.is_empty()) else {
        return false;
    };
    CString::new(home.as_bytes()).is_ok_and(|c| sys::access(&c, libc::W_OK))
}

/// `target: pid 12 (/app/server) uid 65532, container 3f2a… (by cgroup) — its filesystem is
/// at /target`
fn target_line(target: &Resolved) -> String {
    let pid = target.pid;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .or_else(|_| {
            procs::cmdline(pid)
                .and_then(|a| a.into_iter().next())
                .ok_or(())
        })
        .unwrap_or_else(|_| "exe unreadable".to_string());
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| crate::info::procfs::parse_status(&s).uid)
        .map_or_else(|| "?".to_string(), |u| u.to_string());
    let container = target.container_id.as_deref().unwrap_or("unknown");
    let how = match target.method {
        Method::Cgroup => "found by its cgroup",
        Method::Pid1 => "PID 1",
        Method::Flag => "chosen with --target-pid",
    };
    format!(
        "target: pid {pid} ({exe}) uid {uid}, container {container} ({how}) — its filesystem is at {}",
        target.root
    )
}

/// The command for the session file, readable by people (`run ls -l /target`).
fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_keeps_image_dirs_first_and_adds_the_standard_ones() {
        let path = path_with_standard_dirs(Some("/opt/tools/bin:/usr/bin".into()));
        assert_eq!(
            path,
            "/opt/tools/bin:/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin"
        );
        assert_eq!(
            path_with_standard_dirs(None),
            STANDARD_PATH.join(":").as_str()
        );
    }

    #[test]
    fn shell_falls_back_when_shell_env_is_missing() {
        let chosen = choose_shell(Some("/no/such/shell".into()));
        assert!(chosen == "/bin/sh" || chosen.to_string_lossy().ends_with("bash"));
        assert_eq!(choose_shell(Some("/bin/sh".into())), "/bin/sh");
    }

    #[test]
    fn program_search_tells_not_found_from_not_executable() {
        let dir = std::env::temp_dir().join(format!("dda-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data-only");
        std::fs::write(&data, "x").unwrap();
        let path = OsString::from(format!("/nonexistent-dir:{}:/bin", dir.display()));
        assert_eq!(find_program(OsStr::new("data-only"), &path), Some(data));
        assert_eq!(find_program(OsStr::new("no-such-program-dda"), &path), None);
        assert_eq!(
            find_program(OsStr::new("sh"), &path),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            find_program(OsStr::new("./x"), &path),
            Some(PathBuf::from("./x"))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_handshake_reads_one_line_and_leaves_the_rest_to_the_command() {
        let mut input = io::Cursor::new(b"go\nthe command's stdin".to_vec());
        assert_eq!(handshake_word(&mut input).as_deref(), Some("go"));
        let mut rest = String::new();
        input.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "the command's stdin");
        assert_eq!(
            handshake_word(&mut io::Cursor::new(b"abort\n".to_vec())).as_deref(),
            Some("abort")
        );
        assert_eq!(handshake_word(&mut io::Cursor::new(b"go".to_vec())), None);
        assert_eq!(handshake_word(&mut io::Cursor::new(Vec::new())), None);
        let endless = io::repeat(b'g');
        assert_eq!(
            handshake_word(&mut endless.take(1 << 20)).map(|w| w.len()),
            Some(HANDSHAKE_LINE + 1),
            "a line with no end is not waited for"
        );
    }

    #[test]
    fn exec_errors_follow_shell_exit_codes() {
        let not_found = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            exec_failed(OsStr::new("nosuchcmd"), not_found),
            Status::NotFound
        );
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            exec_failed(OsStr::new("/etc/passwd"), denied),
            Status::NotExecutable
        );
    }
}
