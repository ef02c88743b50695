//! The last safety net: a process that exits without shutting its nodes down (a sandbox kept
//! in a `static`, `std::process::exit` in a test binary) would leave its containers running,
//! reparented to init. Every live node's directory is registered here, and an `atexit`
//! handler sweeps what is left (runc containers, mounts, the directory). A killed process
//! still leaves them; the next node started on the same directory clears them.

use std::path::PathBuf;
use std::sync::{Mutex, Once};

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

extern "C" fn sweep_live_nodes() {
    // At exit other threads may still hold the lock: never wait for it.
    let Ok(live) = LIVE.try_lock() else {
        return;
    };
    for state_dir in live.iter() {
        super::sweep(
            &super::runc::Runc::new(state_dir.join("runc"), state_dir.join("runc-logs")),
            state_dir,
        );
    }
}

/// Register a node's state directory (until [`forget`]).
pub fn register(state_dir: PathBuf) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` that only touches statics.
        unsafe { libc::atexit(sweep_live_nodes) };
    });
    super::lock(&LIVE).push(state_dir);
}

/// The node shut down (or was dropped): nothing of it is left to sweep.
pub fn forget(state_dir: &std::path::Path) {
    super::lock(&LIVE).retain(|d| d != state_dir);
}
