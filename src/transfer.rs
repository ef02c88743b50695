//! Byte streams between the agent in the debug container and a local reader or writer, with
//! a progress meter: the plumbing under `cp` and `snapshot`.
//!
//! The exec's stdout (or stdin) is bridged to a blocking thread, where the extractor, the
//! packer or the snapshot writer do plain file work; what is buffered is bounded (the 1 MiB
//! pipes, and a download's chunks in flight), so a copy of any size runs in constant memory.
//! kube-rs's exec pipes default to 1 KiB, which caps a download at a few MiB/s; the larger
//! pipe is what lets the websocket frames flow.
//!
//! A download arrives in websocket frames of 32 KiB (what a kubelet sends). They are gathered
//! on the runtime into chunks of 256 KiB and handed to the blocking thread whole, so that
//! thread wakes once per chunk instead of once per frame, and the extractor writes each chunk
//! to disk from where it lies ([`BufRead`]) with no copy in between. The remote's stderr is
//! kept (bounded) for the messages: the agent names what it skipped or why it failed there.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kube::api::{AttachParams, AttachedProcess};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::exec::{ExecError, Remote, exit_code_of};
use crate::interrupt::Interrupts;
use crate::stdin_exec::StdinExec;

const PIPE: usize = 1 << 20;
/// A download's unit of hand-over to the blocking thread.
const CHUNK: usize = 256 * 1024;
/// Chunks on their way to the blocking thread (a disk slower than the network holds the
/// stream back once they are full).
const CHUNKS_IN_FLIGHT: usize = 8;
/// A chunk not yet full is handed over once the stream has been quiet this long (a remote
/// that pauses, the last bytes before the end).
const QUIET: Duration = Duration::from_millis(2);
/// The remote's stderr kept for messages; the rest is dropped (the agent is terse).
const STDERR_LIMIT: usize = 64 * 1024;
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
    let params = AttachParams::default()
        .container(remote.container)
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(PIPE);
    let mut attached = remote
        .pods
        .exec(remote.pod, command, &params)
        .await
        .map_err(ExecError::Open)?;
    let (Some(stdout), stderr, Some(status)) =
        (attached.stdout(), attached.stderr(), attached.take_status())
    else {
        return Err(ExecError::Session(stream_error(remote, "no stdout")));
    };
    let stderr = tokio::spawn(collect(stderr));
    let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (spent, reusable) = std::sync::mpsc::channel();
    tokio::spawn(gather(stdout, counter.clone(), chunks, reusable));
    let local = tokio::task::spawn_blocking(move || {
        let mut reader = Received {
            chunks: received,
            spent,
            current: Chunk::default(),
        };
        let result = consume(&mut reader);
        // After the end-of-archive marker only padding is left; a stream that goes on (a
        // consumer that gave up, a hostile sender) is cut off by dropping it instead.
        let _ = io::copy(&mut (&mut reader).take(1 << 20), &mut io::sink());
        result
    });
    finish(remote, attached, local, status, stderr, interrupts).await
}

/// Received bytes: `bytes[at..len]` are still to be read.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    len: usize,
    at: usize,
}

/// Reads the exec's stdout on the runtime into chunks for [`Received`]: a chunk goes when it
/// is full, when the stream is quiet for [`QUIET`], or at its end. Ends early when the
/// reader is gone, dropping the stream as a dropped reader of it would.
async fn gather(
    mut stdout: impl AsyncRead + Unpin,
    counter: Counter,
    chunks: mpsc::Sender<io::Result<Chunk>>,
    reusable: std::sync::mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut bytes = reusable.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let mut len = 0;
        let mut ended = false;
        while len < CHUNK {
            let started = len > 0;
            let read = stdout.read(&mut bytes[len..]);
            let quiet = async move {
                if !started {
                    std::future::pending().await
                } else {
                    tokio::time::sleep(QUIET).await
                }
            };
            tokio::select! {
                read = read => match read {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(n) => {
                        counter.add(n);
                        len += n;
                    }
                    Err(e) => {
                        let _ = chunks.send(Err(e)).await;
                        return;
                    }
                },
                () = quiet => break,
                () = chunks.closed() => return,
            }
        }
        if len > 0 && chunks.send(Ok(Chunk { bytes, len, at: 0 })).await.is_err() {
            return;
        }
        if ended {
            return;
        }
    }
}

/// The blocking thread's side of [`gather`]: chunks read where they lie; spent ones go back
/// to be filled again.
struct Received {
    chunks: mpsc::Receiver<io::Result<Chunk>>,
    spent: std::sync::mpsc::Sender<Vec<u8>>,
    current: Chunk,
}

impl BufRead for Received {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.at == self.current.len {
            let next = match self.chunks.blocking_recv() {
                Some(next) => next?,
                None => return Ok(&[]),
            };
            let done = std::mem::replace(&mut self.current, next);
            if !done.bytes.is_empty() {
                let _ = self.spent.send(done.bytes);
            }
        }
        Ok(&self.current.bytes[self.current.at..self.current.len])
    }

    fn consume(&mut self, n: usize) {
        self.current.at = (self.current.at + n).min(self.current.len);
    }
}

impl Read for Received {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
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
    let exec = StdinExec::open(remote, command)
        .await
        .map_err(ExecError::Open)?;
    let connection = exec.output.abort_handle();
    let status = async { exec.status.await.ok() };
    let mut writer = Counted {
        inner: exec.stdin,
        counter: counter.clone(),
    };
    let local = tokio::task::spawn_blocking(move || {
        let result = produce(&mut writer);
        // EOF for the remote: the last frame, then the end of stdin (a v5 close frame).
        let _ = writer.inner.finish();
        result
    });
    finish(remote, connection, local, status, exec.output, interrupts).await
}

/// What [`finish`] does with an exec's connection: cut it off, or wait until it closes.
trait ExecConnection {
    fn abort(&self);
    fn join(self) -> impl Future<Output = ()>;
}

impl ExecConnection for AttachedProcess {
    fn abort(&self) {
        AttachedProcess::abort(self);
    }

    async fn join(self) {
        let _ = AttachedProcess::join(self).await;
    }
}

/// An upload's [`StdinExec`]: its message loop ends with the exec, and its output is awaited
/// on its own.
impl ExecConnection for tokio::task::AbortHandle {
    fn abort(&self) {
        tokio::task::AbortHandle::abort(self);
    }

    async fn join(self) {}
}

async fn finish<T>(
    remote: &Remote<'_>,
    attached: impl ExecConnection,
    local: tokio::task::JoinHandle<T>,
    status: impl Future<Output = Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>>,
    stderr: tokio::task::JoinHandle<String>,
    interrupts: &mut Interrupts,
) -> Result<Transferred<T>, ExecError> {
    let local = tokio::select! {
        local = local => local,
        signal = interrupts.recv() => {
            attached.abort();
            return Ok(Transferred::Interrupted(signal));
        }
    };
    let local = match local {
        Ok(local) => local,
        Err(e) => {
            attached.abort();
            return Err(ExecError::Session(stream_error(
                remote,
                format!("the local side of the copy failed: {e}"),
            )));
        }
    };
    // The local side is done (or gave up): the remote ends now, or is cut off.
    let status = tokio::time::timeout(GRACE, status).await.ok().flatten();
    if status.is_none() {
        attached.abort();
    }
    let stderr = tokio::time::timeout(GRACE, stderr)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let _ = tokio::time::timeout(GRACE, attached.join()).await;
    Ok(Transferred::Done {
        local,
        remote: RemoteEnd {
            code: exit_code_of(status.as_ref()),
            stderr,
        },
    })
}

async fn collect(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = STDERR_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn stream_error(remote: &Remote<'_>, message: impl Into<String>) -> crate::error::Error {
    crate::error::Error::Stream {
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
