//! Starting the app: fork, then in the child only async-signal-safe calls (the entrypoint
//! has threads) on memory prepared before the fork, then execve. std's `Command` cannot do
//! it: its `spawn` waits for the execve, and a child that stops itself before execve (for a
//! tracer) would hold the entrypoint up before it could say which pid to trace.

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::session::find_program;

/// The search path when the container's environment has none (the kubelet's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything the child needs, allocated before the fork.
pub struct ExecPlan {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// argv\[0] as given, for messages.
    pub name: String,
}

/// Why the app could not run, with the exit code a shell gives it.
#[derive(Debug, PartialEq, Eq)]
pub struct NotRun {
    pub message: String,
    pub code: i32,
}

impl ExecPlan {
    /// `argv` with `env` (the container's, overrides applied) searched in env's PATH.
    pub fn new(argv: &[OsString], env: &[(OsString, OsString)]) -> Result<ExecPlan, NotRun> {
        let name = argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| DEFAULT_PATH.into());
        let program = argv
            .first()
            .and_then(|a| find_program(a, &path))
            .ok_or_else(|| NotRun {
                message: format!("not found: {name}"),
                code: 127,
            })?;
        let c = |s: &OsStr| {
            CString::new(s.as_bytes()).map_err(|_| NotRun {
                message: format!("{s:?} holds a NUL byte"),
                code: 125,
            })
        };
        let envp = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                c(&kv)
            })
            .collect::<Result<_, _>>()?;
        Ok(ExecPlan {
            program: c(program.as_os_str())?,
            argv: argv.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
            envp,
            name,
        })
    }
}

/// The child as started: its pid and the read end of the pipe on which it reports a failed
/// execve (EOF once execve succeeded: the write end is close-on-exec).
pub struct Child {
    pub pid: i32,
    exec_status: std::fs::File,
    name: String,
}

impl Child {
    /// Blocks until the child has called execve: `Ok` when it succeeded, else why not.
    pub fn wait_exec(mut self) -> Result<(), NotRun> {
        let mut errno = [0u8; 4];
        match self.exec_status.read(&mut errno) {
            Ok(4) => {
                let err = io::Error::from_raw_os_error(i32::from_ne_bytes(errno));
                let name = &self.name;
                Err(if err.kind() == io::ErrorKind::NotFound {
                    NotRun {
                        message: format!("not found: {name}"),
                        code: 127,
                    }
                } else {
                    NotRun {
                        message: format!("cannot execute {name}: {}", code_text(&err)),
                        code: 126,
                    }
                })
            }
            _ => Ok(()),
        }
    }
}

/// `Permission denied (os error 13)` → `Permission denied`.
fn code_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Forks and execs `plan` with `stdio` as its descriptors 0, 1, 2, in a session (and
/// process group) of its own, every signal at its default and unblocked; with
/// `stop_first`, the child stops itself (SIGSTOP) just before execve.
pub fn spawn(plan: &ExecPlan, stdio: &[OwnedFd; 3], stop_first: bool) -> io::Result<Child> {
    let mut pipe = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the valid array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.envp.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let fds = [
        stdio[0].as_raw_fd(),
        stdio[1].as_raw_fd(),
        stdio[2].as_raw_fd(),
    ];
    let report = write_end.as_raw_fd();

    // SAFETY: fork in a threaded process: the child below calls only async-signal-safe
    // functions (setsid, dup2, signal, sigprocmask, raise, execve, write, _exit) on memory
    // allocated before the fork, and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; every pointer is into `plan`, `argv`, `envp` or `fds`, alive
        // in the child's copy of the memory.
        unsafe {
            libc::setsid();
            for (target, &fd) in fds.iter().enumerate() {
                libc::dup2(fd, target as libc::c_int);
            }
            // Rust ignores SIGPIPE at start and the entrypoint blocks its stop signals; an
            // ignored or blocked signal would stay so across execve.
            for signal in 1..32 {
                libc::signal(signal, libc::SIG_DFL);
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if stop_first {
                libc::raise(libc::SIGSTOP);
            }
            libc::execve(plan.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            let errno = *libc::__errno_location();
            libc::write(report, (&errno as *const i32).cast(), 4);
            libc::_exit(127);
        }
    }
    drop(write_end);
    Ok(Child {
        pid,
        exec_status: std::fs::File::from(read_end),
        name: plan.name.clone(),
    })
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed(i32),
    /// Stopped (only reported when asked for with `untraced`).
    Stopped,
}

/// `waitpid(2)` for `pid`, retried on EINTR; with `untraced`, a stop is reported too.
pub fn wait(pid: i32, untraced: bool) -> io::Result<Ended> {
    let flags = if untraced { libc::WUNTRACED } else { 0 };
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only into `status`, a valid local.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if libc::WIFEXITED(status) {
            return Ok(Ended::Exited(libc::WEXITSTATUS(status)));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Ended::Killed(libc::WTERMSIG(status)));
        }
        if libc::WIFSTOPPED(status) {
            return Ok(Ended::Stopped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn a_missing_program_is_127_and_names_it() {
        let plan = ExecPlan::new(
            &["no-such-app-xyz".into()],
            &env(&[("PATH", "/nonexistent")]),
        );
        assert_eq!(
            plan.err(),
            Some(NotRun {
                message: "not found: no-such-app-xyz".into(),
                code: 127
            })
        );
    }

    #[test]
    fn programs_are_searched_in_the_apps_own_path() {
        let plan = ExecPlan::new(&["sh".into(), "-c".into()], &env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(plan.program.as_bytes(), b"/bin/sh");
        assert_eq!(plan.envp[0].as_bytes(), b"PATH=/bin");
    }
}
