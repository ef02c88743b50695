//! Learning how container processes end.
//!
//! `runc create` and `runc exec --detach` exit once the container process runs; the process is
//! then reparented to the nearest child subreaper, which this process becomes (as
//! containerd-shim does). One reaper thread waits for the pids the node registers and hands
//! each exit status to whoever registered it.
//!
//! Unlike containerd-shim, which is a process of its own, the node lives inside a library
//! whose embedding process also runs other children (the API server's, tests running
//! `kubectl`). A `waitpid(-1)` loop would steal their exit statuses (`Command::output()` would
//! fail with ECHILD), so the thread waits only for registered pids: one pidfd each, polled,
//! then `waitpid(pid)`. A process that ends before it is registered stays a zombie until then,
//! so no status is lost.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, OnceLock};

use tokio::sync::oneshot;

use super::sys::{self, WaitStatus};
use crate::runtime::ProcessExit;

struct Waiter {
    pidfd: Option<OwnedFd>,
    senders: Vec<oneshot::Sender<ProcessExit>>,
}

pub struct Reaper {
    waiting: Mutex<HashMap<i32, Waiter>>,
    wake: UnixStream,
}

impl Reaper {
    /// The process-wide reaper (subreaper status is per process), started on first use.
    pub fn global() -> io::Result<&'static Reaper> {
        static REAPER: OnceLock<Result<&'static Reaper, String>> = OnceLock::new();
        REAPER
            .get_or_init(|| {
                sys::set_child_subreaper().map_err(|e| format!("PR_SET_CHILD_SUBREAPER: {e}"))?;
                let (wake, wake_rx) = UnixStream::pair().map_err(|e| e.to_string())?;
                wake.set_nonblocking(true).map_err(|e| e.to_string())?;
                let reaper: &'static Reaper = Box::leak(Box::new(Reaper {
                    waiting: Mutex::new(HashMap::new()),
                    wake,
                }));
                std::thread::Builder::new()
                    .name("sandbox-reaper".into())
                    .spawn(move || reaper.run(wake_rx))
                    .map_err(|e| e.to_string())?;
                Ok(reaper)
            })
            .clone()
            .map_err(io::Error::other)
    }

    /// Resolves with the exit of `pid`, which must be (or become, on reparenting) our child.
    pub fn watch(&self, pid: i32) -> oneshot::Receiver<ProcessExit> {
        let (tx, rx) = oneshot::channel();
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = waiting.get_mut(&pid) {
            w.senders.push(tx);
            return rx;
        }
        // A pidfd of a zombie is readable at once, so an early exit is still seen.
        let pidfd = sys::pidfd_open(pid).ok();
        waiting.insert(
            pid,
            Waiter {
                pidfd,
                senders: vec![tx],
            },
        );
        drop(waiting);
        let _ = (&self.wake).write(&[1]);
        rx
    }

    fn run(&self, mut wake_rx: UnixStream) {
        loop {
            let (pids, fds): (Vec<i32>, Vec<i32>) = {
                let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                waiting
                    .iter()
                    .map(|(pid, w)| (*pid, w.pidfd.as_ref().map_or(-1, |f| f.as_raw_fd())))
                    .unzip()
            };
            let mut all = vec![wake_rx.as_raw_fd()];
            all.extend(fds.iter().copied().filter(|fd| *fd >= 0));
            // Without a pidfd (pidfd_open failed) fall back to checking every 100 ms.
            let timeout = if fds.iter().any(|fd| *fd < 0) {
                100
            } else {
                5_000
            };
            let Ok(ready) = sys::poll_readable(&all, timeout) else {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            };
            if ready[0] {
                let mut buf = [0u8; 64];
                let _ = wake_rx.read(&mut buf);
            }
            for pid in pids {
                let status = match sys::try_wait(pid) {
                    Ok(None) => continue,
                    Ok(Some(WaitStatus::Exited(code))) => ProcessExit::Code(code),
                    Ok(Some(WaitStatus::Signaled(sig))) => ProcessExit::Signal(sig),
                    // Not our child (should not happen with the subreaper set): report it
                    // ended, since we can never learn more.
                    Err(_) => ProcessExit::Code(255),
                };
                let waiter = self
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&pid);
                for tx in waiter.map(|w| w.senders).unwrap_or_default() {
                    let _ = tx.send(status.clone());
                }
            }
        }
    }
}
