//! A container's output: kept in memory and in a log file per container instance, served to
//! `pods/log` (tail, follow), and fanned out live to `pods/attach` clients.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, watch};

use crate::runtime::BoxRead;

/// Everything written so far, and which stream each piece came from (for a replay).
#[derive(Default)]
struct Logged {
    bytes: Vec<u8>,
    pieces: Vec<(Stream, usize, usize)>,
}

/// A piece of output and the stream it came from.
pub type Chunk = (Stream, Bytes);

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

pub struct LogBuffer {
    data: Mutex<Logged>,
    file: Mutex<Option<File>>,
    /// (bytes so far, finished)
    progress: watch::Sender<(usize, bool)>,
    live: broadcast::Sender<Chunk>,
}

impl LogBuffer {
    pub fn new(path: &Path) -> Arc<LogBuffer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok();
        Arc::new(LogBuffer {
            data: Mutex::new(Logged::default()),
            file: Mutex::new(file),
            progress: watch::channel((0, false)).0,
            live: broadcast::channel(1024).0,
        })
    }

    fn append(&self, stream: Stream, chunk: &[u8]) {
        let len = {
            let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
            let start = data.bytes.len();
            data.bytes.extend_from_slice(chunk);
            data.pieces.push((stream, start, start + chunk.len()));
            // Sent under the lock, so `replay_and_subscribe` sees each chunk exactly once.
            let _ = self.live.send((stream, Bytes::copy_from_slice(chunk)));
            data.bytes.len()
        };
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = f.write_all(chunk);
        }
        self.progress.send_modify(|p| p.0 = len);
    }

    /// Everything so far (by stream), and live output from then on, with no gap.
    pub fn replay_and_subscribe(&self) -> (Vec<Chunk>, broadcast::Receiver<Chunk>) {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let replay = data
            .pieces
            .iter()
            .map(|(s, a, b)| (*s, Bytes::copy_from_slice(&data.bytes[*a..*b])))
            .collect();
        (replay, self.live.subscribe())
    }

    fn finish(&self) {
        self.progress.send_modify(|p| p.1 = true);
    }

    pub fn is_finished(&self) -> bool {
        self.progress.borrow().1
    }

    /// Copy `reader` (a process's stdout or stderr, or a pty) into the log until EOF.
    pub async fn pump(self: &Arc<Self>, mut reader: impl AsyncRead + Unpin, stream: Stream) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => self.append(stream, &buf[..n]),
            }
        }
    }

    /// Pump both streams (keeping arrival order across them), then mark the log finished.
    pub async fn pump_all(self: Arc<Self>, stdout: Option<BoxRead>, stderr: Option<BoxRead>) {
        let out = async {
            if let Some(r) = stdout {
                self.pump(r, Stream::Stdout).await
            }
        };
        let err = async {
            if let Some(r) = stderr {
                self.pump(r, Stream::Stderr).await
            }
        };
        tokio::join!(out, err);
        self.finish();
    }

    /// Wait (at most `limit`) until the process's output is fully read.
    pub async fn wait_finished(&self, limit: std::time::Duration) {
        let mut progress = self.progress.subscribe();
        let _ = tokio::time::timeout(limit, progress.wait_for(|p| p.1)).await;
    }

    /// The last `lines` lines, at most `max_bytes` (the end kept), as text.
    pub fn tail_text(&self, lines: usize, max_bytes: usize) -> String {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let start = tail_offset(&data.bytes, lines).max(data.bytes.len().saturating_sub(max_bytes));
        String::from_utf8_lossy(&data.bytes[start..]).into_owned()
    }

    /// The log as `pods/log` serves it: the last `tail_lines` lines (all without), then with
    /// `follow` whatever comes until the container ends.
    pub fn reader(self: &Arc<Self>, follow: bool, tail_lines: Option<i64>) -> BoxRead {
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        let me = self.clone();
        let mut progress = self.progress.subscribe();
        let mut pos = {
            let data = me.data.lock().unwrap_or_else(|e| e.into_inner());
            tail_lines.map_or(0, |n| tail_offset(&data.bytes, n.max(0) as usize))
        };
        tokio::spawn(async move {
            loop {
                let (chunk, finished) = {
                    let finished = progress.borrow_and_update().1;
                    let data = me.data.lock().unwrap_or_else(|e| e.into_inner());
                    (data.bytes[pos..].to_vec(), finished)
                };
                pos += chunk.len();
                if !chunk.is_empty() && tx.write_all(&chunk).await.is_err() {
                    return;
                }
                if !follow || finished {
                    break;
                }
                if progress.changed().await.is_err() {
                    break;
                }
            }
            let _ = tx.shutdown().await;
        });
        Box::pin(rx)
    }
}

/// Byte offset where the last `n` lines of `data` start.
fn tail_offset(data: &[u8], n: usize) -> usize {
    if n == 0 {
        return data.len();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::tail_offset;

    #[test]
    fn tail_counts_lines_from_the_end() {
        let d = b"a\nb\nc\n";
        assert_eq!(&d[tail_offset(d, 2)..], b"b\nc\n");
        assert_eq!(&d[tail_offset(d, 5)..], b"a\nb\nc\n");
        assert_eq!(&d[tail_offset(d, 0)..], b"");
        assert_eq!(&b"x\ny"[tail_offset(b"x\ny", 1)..], b"y");
    }
}
