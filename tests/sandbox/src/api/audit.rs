//! The request log: one record per request, readable and clearable through the library.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One served request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (empty if none).
    pub query: String,
    /// The request's `Content-Type` (empty if none).
    pub content_type: String,
    /// The request's `Accept` (empty if none).
    pub accept: String,
    /// 0 when the answer was dropped (the `drop_response` fault).
    pub status: u16,
    /// When the request arrived: with `duration`, which requests overlapped.
    pub received: Instant,
    /// Time until the response head was ready, injected latency included. For watches and
    /// streams this is not the stream's lifetime.
    pub duration: Duration,
    /// The authenticated user (empty for anonymous requests).
    pub user: String,
}

#[derive(Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
}

impl RequestLog {
    pub fn push(&self, record: RequestRecord) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
