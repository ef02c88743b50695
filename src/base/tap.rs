//! What a session shows and is sent, offered to whoever keeps a copy (the local recording):
//! the exec streams call it as bytes pass, and never wait on it.

use std::sync::Arc;

pub trait Tap: Send + Sync {
    /// Bytes of the remote stdout (with a terminal: everything the terminal showed).
    fn stdout(&self, bytes: &[u8]);
    fn stderr(&self, bytes: &[u8]);
    /// Bytes typed and sent to the remote.
    fn input(&self, bytes: &[u8]);
    /// The local terminal now has this size (columns, rows).
    fn resize(&self, cols: u16, rows: u16);
}

pub type SharedTap = Arc<dyn Tap>;
