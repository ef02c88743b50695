//! The exec connection under `cp`, `snapshot`, a runbook's `collect`, and the output of
//! non-interactive sessions and runbook steps (`exec_output.rs`): opened by us, so the bytes
//! move in large pieces with few copies and few wake-ups.
//!
//! kube-rs's `AttachedProcess` moves every stream through a 1 KiB-by-default pipe between its
//! task and ours, and reads stdin through a `ReaderStream` of 4 KiB, which kube-client 5 does
//! not let us change: each 4 KiB of an upload went out as its own websocket frame, TLS record
//! and `writev` (65,536 of each for 256 MiB; kubectl sends 32 KiB), and each frame of a
//! download was copied into that pipe and out again. Rather than fork kube, the exec is
//! opened here with kube's own request builder and `Client::connect` (the same URL,
//! credentials and protocol negotiation as `Api::exec`) and the remotecommand protocol is
//! spoken the way kube-rs's message loop speaks it: stdin on channel 0, stdout on 1, stderr
//! on 2, the status on 3; at stdin's end `[255, 0]` on `v5.channel.k8s.io`, a close of the
//! websocket on v4; a ping every minute. What differs is only where the bytes go:
//! - an upload's stdin is gathered into 64 KiB frames on the producing thread, well within
//!   what the apiserver and kubelet read in one frame (their websocket reader allows 32 MiB);
//! - a download's stdout frames (32 KiB from a kubelet) are gathered into 256 KiB chunks and
//!   handed to the consuming thread whole (when full, after [`QUIET`] without more, at the
//!   end), so that thread wakes once per chunk and writes each from where it lies; a frame
//!   that comes after [`QUIET`] without output is handed over at once, so a session's first
//!   line (or a prompt) waits for nothing.
//!
//! - a session's stderr, when it is not kept, is gathered and handed over the same way.
//!
//! Each is bounded (16 frames, 8 chunks in flight), so a copy of any size runs in constant
//! memory, and a slow side holds the other back. The remote's stderr (and stdout, when it is
//! not the transfer) is kept, bounded, for the messages.

use std::io::{self, BufRead, Read, Write};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Resource;
use kube::api::AttachParams;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::kube::exec::Remote;

/// The most stdin bytes in one frame.
const FRAME: usize = 64 * 1024;
/// Stdin frames on their way to the connection (1 MiB).
const FRAMES_IN_FLIGHT: usize = 16;
/// A download's unit of hand-over to the consuming thread.
const CHUNK: usize = 256 * 1024;
/// Chunks on their way to the consuming thread (2 MiB).
const CHUNKS_IN_FLIGHT: usize = 8;
/// A chunk not yet full is handed over once no stdout has come for this long (a remote that
/// pauses, the last bytes before the end).
const QUIET: Duration = Duration::from_millis(2);
/// What is kept of stdout and of stderr, for messages.
const OUTPUT_LIMIT: usize = 64 * 1024;
const PING: Duration = Duration::from_secs(60);

/// Channels of the remotecommand protocol (k8s.io/apimachinery/pkg/util/remotecommand).
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// How a running exec ends.
pub struct Ending {
    /// The exit status, when the remote reports one.
    pub status: oneshot::Receiver<Status>,
    /// The remote's stderr, then its stdout when that was not the transfer (each bounded),
    /// once the connection is done with. Aborting it cuts the connection.
    pub output: JoinHandle<String>,
}

/// Runs `command` with its stdout for a blocking reader.
pub async fn download(
    remote: &Remote<'_>,
    command: Vec<String>,
) -> Result<(Received, Ending), kube::Error> {
    let (stdout, received) = download_parts();
    let ending = open(remote, command, None, Some(stdout), None).await?;
    Ok((received, ending))
}

/// A pipe from the message loop to a blocking reader, in chunks: a download's stdout, or a
/// session's stdout and stderr.
pub(crate) fn download_parts() -> (Chunks, Received) {
    let (queue, queued) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (spent, reusable) = std::sync::mpsc::channel();
    let chunks = Chunks {
        queue,
        reusable,
        filling: None,
        len: 0,
    };
    let received = Received {
        queued,
        spent,
        current: Chunk::default(),
    };
    (chunks, received)
}

/// What [`output`] hands over: the remote's stdout and stderr for blocking readers, and its
/// stdin (whole frames, from [`stdin_frame`]) when it was asked for; dropping that sender ends
/// the remote's stdin.
pub struct Output {
    pub stdout: Received,
    pub stderr: Received,
    pub stdin: Option<mpsc::Sender<Vec<u8>>>,
}

/// Runs `command` with both its output streams for blocking readers, and its stdin fed by
/// the caller when `stdin`.
pub async fn output(
    remote: &Remote<'_>,
    command: Vec<String>,
    stdin: bool,
) -> Result<(Output, Ending), kube::Error> {
    let (out_chunks, stdout) = download_parts();
    let (err_chunks, stderr) = download_parts();
    let (frames, queued) = if stdin {
        let (frames, queued) = mpsc::channel(FRAMES_IN_FLIGHT);
        (Some(frames), Some(queued))
    } else {
        (None, None)
    };
    let ending = open(remote, command, queued, Some(out_chunks), Some(err_chunks)).await?;
    let output = Output {
        stdout,
        stderr,
        stdin: frames,
    };
    Ok((output, ending))
}

/// `bytes` as one stdin frame (channel 0) for [`Output::stdin`].
pub fn stdin_frame(bytes: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(bytes.len() + 1);
    frame.push(STDIN);
    frame.extend_from_slice(bytes);
    frame
}

/// Runs `command` with its stdin from a blocking writer.
pub async fn upload(
    remote: &Remote<'_>,
    command: Vec<String>,
) -> Result<(Frames, Ending), kube::Error> {
    let (frames, queued) = mpsc::channel(FRAMES_IN_FLIGHT);
    let ending = open(remote, command, Some(queued), None, None).await?;
    let stdin = Frames {
        queue: frames,
        frame: new_frame(),
    };
    Ok((stdin, ending))
}

async fn open(
    remote: &Remote<'_>,
    command: Vec<String>,
    stdin: Option<mpsc::Receiver<Vec<u8>>>,
    stdout: Option<Chunks>,
    stderr: Option<Chunks>,
) -> Result<Ending, kube::Error> {
    let params = AttachParams::default()
        .container(remote.container)
        .stdin(stdin.is_some())
        .stdout(true)
        .stderr(true);
    let mut request = kube::core::Request::new(Pod::url_path(&(), remote.pods.namespace()))
        .exec(remote.pod, command, &params)
        .map_err(kube::Error::BuildRequest)?;
    // What `Api::exec` marks its request with (kube's tracing names the span after it).
    request.extensions_mut().insert("exec");
    let client = kube::Client::from(remote.pods.clone());
    let connection = client.connect(request).await?;
    let close_supported = connection.supports_stream_close();
    let (status_tx, status) = oneshot::channel();
    let output = tokio::spawn(message_loop(
        connection.into_stream(),
        close_supported,
        stdin,
        stdout,
        stderr,
        status_tx,
    ));
    Ok(Ending { status, output })
}

fn new_frame() -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME + 1);
    frame.push(STDIN);
    frame
}

/// Stdin as a blocking `Write`: bytes gathered into frames of up to [`FRAME`].
pub struct Frames {
    queue: mpsc::Sender<Vec<u8>>,
    frame: Vec<u8>,
}

impl Frames {
    /// Sends what is gathered; stdin's end follows when this is dropped.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()
    }

    fn send(&mut self) -> io::Result<()> {
        let frame = std::mem::replace(&mut self.frame, new_frame());
        self.queue.blocking_send(frame).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the exec ended: its stdin takes no more",
            )
        })
    }
}

impl Write for Frames {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = FRAME + 1 - self.frame.len();
        let n = buf.len().min(room);
        self.frame.extend_from_slice(&buf[..n]);
        if self.frame.len() == FRAME + 1 {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.frame.len() > 1 {
            self.send()?;
        }
        Ok(())
    }
}

/// Received stdout: `bytes[at..len]` are still to be read.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    len: usize,
    at: usize,
}

/// The message loop's side of a download: stdout gathered into the chunk being filled.
pub(crate) struct Chunks {
    queue: mpsc::Sender<io::Result<Chunk>>,
    /// Buffers the reader is done with.
    reusable: std::sync::mpsc::Receiver<Vec<u8>>,
    filling: Option<Vec<u8>>,
    len: usize,
}

/// The reader is gone.
struct Gone;

impl Chunks {
    async fn push(&mut self, mut bytes: &[u8]) -> Result<(), Gone> {
        while !bytes.is_empty() {
            let reusable = &self.reusable;
            let filling = self
                .filling
                .get_or_insert_with(|| reusable.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]));
            let n = bytes.len().min(CHUNK - self.len);
            filling[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
            if self.len == CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    fn pending(&self) -> bool {
        self.len > 0
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        let Some(bytes) = self.filling.take().filter(|_| self.len > 0) else {
            return Ok(());
        };
        let chunk = Chunk {
            bytes,
            len: std::mem::take(&mut self.len),
            at: 0,
        };
        self.queue.send(Ok(chunk)).await.map_err(|_| Gone)
    }

    /// The connection broke: the reader gets what came, then this error.
    async fn broken(mut self, why: String) {
        if self.flush().await.is_ok() {
            let _ = self
                .queue
                .send(Err(io::Error::new(io::ErrorKind::ConnectionAborted, why)))
                .await;
        }
    }
}

/// A download's stdout for the consuming thread, read where it lies ([`BufRead`]); the end of
/// the stream once the exec is done with.
pub struct Received {
    queued: mpsc::Receiver<io::Result<Chunk>>,
    spent: std::sync::mpsc::Sender<Vec<u8>>,
    current: Chunk,
}

impl BufRead for Received {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.at == self.current.len {
            let next = match self.queued.blocking_recv() {
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
        read_from_buffer(self, buf)
    }
}

/// Sends the queued stdin frames, passes stdout and stderr on (or keeps them), until the
/// status arrives or the connection ends; returns what was kept, stderr first. A reader that
/// is gone ends it, dropping the connection, as a dropped reader of kube's pipe does.
pub(crate) async fn message_loop(
    ws: impl futures::Stream<Item = Result<Message, tungstenite::Error>>
    + futures::Sink<Message>
    + Unpin,
    close_supported: bool,
    mut stdin: Option<mpsc::Receiver<Vec<u8>>>,
    mut stdout: Option<Chunks>,
    mut stderr: Option<Chunks>,
    status: oneshot::Sender<Status>,
) -> String {
    let (mut to_remote, mut from_remote) = ws.split();
    let (mut kept_out, mut kept_err) = (Vec::new(), Vec::new());
    let mut ping = tokio::time::interval(PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    let quiet = tokio::time::sleep(QUIET);
    tokio::pin!(quiet);
    let mut last_output: Option<Instant> = None;
    loop {
        let pending = stdout.as_ref().is_some_and(Chunks::pending)
            || stderr.as_ref().is_some_and(Chunks::pending);
        tokio::select! {
            frame = next_frame(&mut stdin), if stdin.is_some() => {
                let sent = match frame {
                    Some(frame) => to_remote.send(Message::Binary(Bytes::from(frame))).await,
                    None => {
                        stdin = None;
                        if close_supported {
                            to_remote
                                .send(Message::Binary(Bytes::from_static(&[CLOSE, STDIN])))
                                .await
                        } else {
                            // v4 cannot close one stream: close the sending side, as kube-rs
                            // does.
                            to_remote.close().await
                        }
                    }
                };
                if sent.is_err() {
                    break;
                }
            }
            message = from_remote.next() => match message {
                Some(Ok(Message::Binary(bin))) if bin.len() > 1 => match bin[0] {
                    STDOUT | STDERR => {
                        let (passed, kept) = if bin[0] == STDOUT {
                            (&mut stdout, &mut kept_out)
                        } else {
                            (&mut stderr, &mut kept_err)
                        };
                        match passed {
                            Some(chunks) => {
                                // Output after a quiet spell (a prompt, the first line, a
                                // line now and then) is handed over at once; a burst is
                                // gathered until it pauses or fills a chunk.
                                let now = Instant::now();
                                let after_quiet =
                                    last_output.is_none_or(|at| now.duration_since(at) >= QUIET);
                                last_output = Some(now);
                                let handed = match chunks.push(&bin[1..]).await {
                                    Ok(()) if after_quiet => chunks.flush().await,
                                    done => done,
                                };
                                if handed.is_err() {
                                    *passed = None;
                                    break;
                                }
                                quiet.as_mut().reset(now + QUIET);
                            }
                            None => keep(kept, &bin[1..]),
                        }
                    }
                    STATUS => {
                        if let Ok(parsed) = serde_json::from_slice::<Status>(&bin[1..]) {
                            let _ = status.send(parsed);
                        }
                        break;
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    for chunks in [stdout.take(), stderr.take()].into_iter().flatten() {
                        chunks.broken(e.to_string()).await;
                    }
                    break;
                }
                None => break,
            },
            () = &mut quiet, if pending => {
                if flush(&mut stdout).await.is_err() || flush(&mut stderr).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if to_remote.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    // What came before the end goes to the readers; dropping the queues then ends their
    // streams.
    let _ = flush(&mut stdout).await;
    let _ = flush(&mut stderr).await;
    kept_err.extend_from_slice(&kept_out);
    String::from_utf8_lossy(&kept_err).into_owned()
}

/// Hands over what `passed` gathered; a reader that is gone is forgotten.
async fn flush(passed: &mut Option<Chunks>) -> Result<(), Gone> {
    if let Some(chunks) = passed.as_mut()
        && chunks.flush().await.is_err()
    {
        *passed = None;
        return Err(Gone);
    }
    Ok(())
}

async fn next_frame(stdin: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match stdin {
        Some(queued) => queued.recv().await,
        None => std::future::pending().await,
    }
}

fn keep(kept: &mut Vec<u8>, bytes: &[u8]) {
    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// `Read::read` for a reader whose `BufRead` side is the real one: a copy out of its buffer.
pub fn read_from_buffer(reader: &mut impl BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let available = reader.fill_buf()?;
    let n = available.len().min(buf.len());
    buf[..n].copy_from_slice(&available[..n]);
    reader.consume(n);
    Ok(n)
}

#[cfg(test)]
#[path = "exec_stream_tests.rs"]
mod tests;
