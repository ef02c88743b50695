//! `stop`: ends this debug container, the agent side of DESIGN.md step 8 (teardown).
//!
//! Sessions first (they may hold a terminal the plugin is waiting on), then `hold`. Every
//! pid is verified with [`procs::is_ours`] right before it is signalled, and PID 1 is never
//! signalled, so teardown cannot touch the target even when a pid was reused.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::exit::Status;
use crate::procs;
use crate::state::StateDir;
use crate::sys;

const SESSION_GRACE: Duration = Duration::from_secs(2);
const HOLD_ACK_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

pub fn main() -> Status {
    // Run from a shell session, `stop` ends that shell; its hangup must not end `stop`.
    let _ = sys::SignalSet::block(&[libc::SIGHUP]);
    let state = StateDir::from_env();
    let me = std::process::id() as i32;
    let hold = find_hold(&state, me);

    let sessions = session_processes(&state, me, hold);
    terminate(&sessions);

    let Some(hold) = hold else {
        let _ = std::fs::remove_file(state.hold_pid_path());
        return Status::Success;
    };
    if let Err(e) = state.write_stop_request(me as u32) {
        eprintln!("distroless-debug-agent stop: {e}");
    }
    if let Err(e) = sys::kill(hold, libc::SIGTERM) {
        eprintln!("distroless-debug-agent stop: cannot signal hold (pid {hold}): {e}");
        return Status::Failure;
    }
    // `hold` acknowledges by removing hold.pid, then waits for us to exit before it does.
    let deadline = Instant::now() + HOLD_ACK_TIMEOUT;
    while Instant::now() < deadline {
        if state.read_hold_pid() != Some(hold) || procs::is_gone(hold) {
            return Status::Success;
        }
        std::thread::sleep(POLL);
    }
    eprintln!(
        "distroless-debug-agent stop: hold (pid {hold}) did not acknowledge within {}s",
        HOLD_ACK_TIMEOUT.as_secs()
    );
    Status::Failure
}

/// The `hold` process of this container: hold.pid if it names a live `hold` of ours, else
/// a search (hold.pid may have been removed by hand).
fn find_hold(state: &StateDir, me: i32) -> Option<i32> {
    let is_hold = |pid: i32| {
        pid != me
            && !procs::is_gone(pid)
            && procs::is_ours(pid)
            && procs::cmdline(pid).is_some_and(|argv| argv.get(1).is_some_and(|v| v == "hold"))
    };
    if let Some(pid) = state.read_hold_pid().filter(|&pid| is_hold(pid)) {
        return Some(pid);
    }
    let own_exe = std::fs::read_link("/proc/self/exe").ok()?;
    procs::all_pids().into_iter().find(|&pid| {
        is_hold(pid) && std::fs::read_link(format!("/proc/{pid}/exe")).ok() == Some(own_exe.clone())
    })
}

/// Live registered sessions and all their descendants, minus PID 1, `stop` itself and
/// `hold`, and minus anything that is not ours.
fn session_processes(state: &StateDir, me: i32, hold: Option<i32>) -> Vec<i32> {
    let roots: BTreeSet<i32> = state
        .live_sessions(false)
        .unwrap_or_default()
        .into_iter()
        .collect();
    if roots.is_empty() {
        return Vec::new();
    }
    let parents: Vec<(i32, i32)> = procs::all_pids()
        .into_iter()
        .filter_map(|pid| procs::stat(pid).map(|s| (pid, s.ppid)))
        .collect();
    let mut chosen: BTreeSet<i32> = roots.clone();
    loop {
        let before = chosen.len();
        for &(pid, ppid) in &parents {
            if chosen.contains(&ppid) {
                chosen.insert(pid);
            }
        }
        if chosen.len() == before {
            break;
        }
    }
    chosen
        .into_iter()
        .filter(|&pid| pid != 1 && pid != me && Some(pid) != hold && procs::is_ours(pid))
        .collect()
}

/// SIGTERM, up to [`SESSION_GRACE`] to go, then SIGKILL for what is left (verified again).
fn terminate(pids: &[i32]) {
    for &pid in pids {
        let _ = sys::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + SESSION_GRACE;
    while pids.iter().any(|&pid| !procs::is_gone(pid)) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    for &pid in pids {
        if pid != 1 && !procs::is_gone(pid) && procs::is_ours(pid) {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }
}
