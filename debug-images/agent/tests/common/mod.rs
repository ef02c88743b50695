//! What the agent's integration tests share.

use std::thread::sleep;
use std::time::{Duration, Instant};

/// Polls `done` every 20 ms until it holds or `limit` has passed; its last answer.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        sleep(Duration::from_millis(20));
    }
    done()
}
