//! The few system calls std does not wrap, each in one small function with its `SAFETY` note.
//!
//! Everything else in the agent is safe Rust over these.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `flock(2)` on an open file.
pub fn flock(fd: BorrowedFd<'_>, operation: libc::c_int) -> io::Result<()> {
    // SAFETY: flock takes a file descriptor and an integer; `fd` is open for the borrow.
    check(unsafe { libc::flock(fd.as_raw_fd(), operation) }).map(drop)
}

/// Clears `FD_CLOEXEC`, so the descriptor (and the lock on it) survives `execve`.
pub fn set_inheritable(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) on a descriptor that is open for the borrow; no pointers.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) }).map(drop)
}

/// `kill(2)`.
pub fn kill(pid: i32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers. Callers decide which pid is safe to signal.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// `access(path, W_OK)` against the real uid, which is what a shell's `[ -w ]` checks.
pub fn is_writable(path: &CStr) -> bool {
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK) == 0 }
}

/// Reaps every exited child without blocking. Matters when `hold` happens to be PID 1 of
/// its namespace (no process-namespace sharing), where orphans are re-parented to it.
pub fn reap_children() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG writes only into `status`, a valid local.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

/// Signals blocked for this thread and received synchronously with [`SignalSet::wait`],
/// instead of asynchronous handlers. Blocked signals are also never discarded when the
/// process is PID 1 of its namespace (the kernel drops default-action signals to init).
pub struct SignalSet {
    set: libc::sigset_t,
}

impl SignalSet {
    /// Blocks `signals` and returns the set to wait on.
    pub fn block(signals: &[libc::c_int]) -> io::Result<SignalSet> {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, exclusively borrowed sigset_t for each call.
        unsafe {
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
        }
        // SAFETY: `set` is initialised; a null old-set pointer is allowed.
        let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
        Ok(SignalSet { set })
    }

    /// Waits up to `timeout` for one of the blocked signals; returns it, or `None`.
    pub fn wait(&self, timeout: Duration) -> Option<libc::c_int> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `self.set` is initialised, `ts` is a valid timespec and a null siginfo
        // pointer is allowed.
        let ret = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
        (ret > 0).then_some(ret)
    }
}
