//! Byte streams between the agent in the debug container and a local reader or writer, with
//! a progress meter: the plumbing under `cp` and `snapshot`.
//!
//! The exec (our own connection, see `exec_stream.rs`) is bridged to a blocking thread, where
//! the extractor, the packer or the snapshot writer do plain file work: a download's chunks
//! are read where they lie ([`BufRead`]), an upload is written into stdin frames. What is
//! buffered is bounded, so a copy of any size runs in constant memory. The remote's stderr is
//! kept (bounded) for the messages: the agent names what it skipped or why it failed there.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::base::interrupt::Interrupts;
use crate::base::task::AbortOnDrop;
use crate::kube::exec::{ExecError, Remote, exit_code_of};
use crate::kube::exec_stream::{self, Ending, read_from_buffer};

const GRACE: Duration = Duration::from_secs(10);

/// How the remote side ended, once the local side is done.
#[derive(Debug)]
pub struct RemoteEnd {
    /// The exit code, or why there is none (a broken connection).
    pub code: Result<i32, String>,
    pub stderr: String,
}

/// How a transfer ended.
pub enum Transferred<T> {
    Done {
        local: T,
        remote: RemoteEnd,
    },
    /// A signal arrived; the exec was aborted.
    Interrupted(i32),
}

/// Counts bytes as they pass, for the meter.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

struct Counted<S> {
    inner: S,
    counter: Counter,
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.counter.add(n);
    }
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_from_buffer(self, buf)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counter.add(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Runs `command` in the debug container and feeds its stdout to `consume` on a blocking
/// thread. What `consume` leaves unread is drained (up to 1 MiB), so the exec can finish.
pub async fn from_remote<T: Send + 'static>(
    remote: &Remote<'_>,
    command: Vec<String>,
    counter: &Counter,
    interrupts: &mut Interrupts,
    consume: impl FnOnce(&mut dyn BufRead) -> T + Send + 'static,
) -> Result<Transferred<T>, ExecError> {
    let (stdout, ending) = exec_stream::download(remote, command)
        .await
        .map_err(ExecError::Open)?;
    let mut reader = Counted {
        inner: stdout,
        counter: counter.clone(),
    };
    let local = tokio::task::spawn_blocking(move || {
        let result = consume(&mut reader);
        // After the end-of-archive marker only padding is left; a stream that goes on (a
        // consumer that gave up, a hostile sender) is cut off by dropping it instead.
        let _ = io::copy(&mut (&mut reader).take(1 << 20), &mut io::sink());
        result
    });
    finish(remote, ending, local, interrupts).await
}

/// Runs `command` in the debug container with `produce` writing its stdin on a blocking
/// thread; the remote sees EOF when `produce` returns.
pub async fn to_remote<T: Send + 'static>(
    remote: &Remote<'_>,
    command: Vec<String>,
    counter: &Counter,
    interrupts: &mut Interrupts,
    produce: impl FnOnce(&mut dyn Write) -> T + Send + 'static,
) -> Result<Transferred<T>, ExecError> {
    let (stdin, ending) = exec_stream::upload(remote, command)
        .await
        .map_err(ExecError::Open)?;
    let mut writer = Counted {
        inner: stdin,
        counter: counter.clone(),
    };
    let local = tokio::task::spawn_blocking(move || {
        let result = produce(&mut writer);
        // EOF for the remote: the last frame, then the end of stdin (a v5 close frame).
        let _ = writer.inner.finish();
        result
    });
    finish(remote, ending, local, interrupts).await
}

async fn finish<T>(
    remote: &Remote<'_>,
    ending: Ending,
    local: tokio::task::JoinHandle<T>,
    interrupts: &mut Interrupts,
) -> Result<Transferred<T>, ExecError> {
    let connection = ending.output.abort_handle();
    // A transfer whose future is dropped before its end (a runbook step past its time limit)
    // stops streaming into a copy nobody waits for, as dropping kube-rs's `AttachedProcess` did.
    let _cut_off = AbortOnDrop(connection.clone());
    let local = tokio::select! {
        local = local => local,
        signal = interrupts.recv() => {
            connection.abort();
            return Ok(Transferred::Interrupted(signal));
        }
    };
    let local = match local {
        Ok(local) => local,
        Err(e) => {
            connection.abort();
            return Err(ExecError::Session(stream_error(
                remote,
                format!("the local side of the copy failed: {e}"),
            )));
        }
    };
    // The local side is done (or gave up): the remote ends now, or is cut off.
    let status = tokio::time::timeout(GRACE, ending.status)
        .await
        .ok()
        .and_then(Result::ok);
    if status.is_none() {
        connection.abort();
    }
    let stderr = tokio::time::timeout(GRACE, ending.output)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok(Transferred::Done {
        local,
        remote: RemoteEnd {
            code: exit_code_of(status.as_ref()),
            stderr,
        },
    })
}

fn stream_error(remote: &Remote<'_>, message: impl Into<String>) -> crate::base::error::Error {
    crate::base::error::Error::Stream {
        pod: remote.pod.to_string(),
        container: remote.container.to_string(),
        source: message.into().into(),
    }
}

/// Bytes and rate on stderr while a transfer runs, on one rewritten line; only when stderr
/// is a terminal (the caller decides), and erased at the end.
pub struct Meter {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Meter {
    pub fn start(shown: bool, verb: &'static str, counter: &Counter) -> Meter {
        if !shown {
            return Meter { task: None };
        }
        let counter = counter.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let line = format!(
                    "{verb} {} ({}/s)",
                    Bytes(counter.get()),
                    Bytes(rate(counter.get(), started.elapsed()))
                );
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r\x1b[K{line}");
                let _ = err.flush();
            }
        });
        Meter { task: Some(task) }
    }

    pub fn stop(mut self) {
        self.erase();
    }

    fn erase(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.erase();
    }
}

/// Bytes per second over `elapsed`.
pub fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0;
    }
    (bytes as f64 / secs) as u64
}

/// A byte count the way people read it: `512 B`, `1.5 KiB`, `256.0 MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit < UNITS.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(1023).to_string(), "1023 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(256 << 20).to_string(), "256.0 MiB");
        assert_eq!(Bytes(3 << 40).to_string(), "3.0 TiB");
    }

    #[test]
    fn rate_is_bytes_per_second_and_zero_for_no_time() {
        assert_eq!(rate(10 << 20, Duration::from_secs(2)), 5 << 20);
        assert_eq!(rate(123, Duration::ZERO), 0);
    }
}
