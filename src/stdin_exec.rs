//! An exec whose stdin we send ourselves, in 64 KiB websocket frames: the channel under `cp`
//! uploads.
//!
//! kube-rs's `AttachedProcess` reads what is written to its stdin through a `ReaderStream` of
//! 4 KiB (its default capacity, which kube-client 5 does not let us change), so every 4 KiB
//! goes out as its own websocket frame, TLS record and `writev`, with a wake-up of kube's
//! task for each: 65,536 of them for 256 MiB. kubectl sends 32 KiB frames. Rather than fork
//! kube, the exec is opened here with kube's own request builder and `Client::connect` (the
//! same URL, credentials and protocol negotiation as `Api::exec`) and the remotecommand
//! protocol is spoken the way kube-rs's message loop speaks it: stdin on channel 0, stdout
//! and stderr (kept, bounded) on 1 and 2, the status on 3; at stdin's end `[255, 0]` on
//! `v5.channel.k8s.io`, a close of the websocket on v4; a ping every minute.
//!
//! 64 KiB is well within what the apiserver and kubelet read in one frame (their websocket
//! reader allows 32 MiB), and cuts the per-frame work 16-fold.

use std::io::{self, Write};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Resource;
use kube::api::AttachParams;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::exec::Remote;

/// The most stdin bytes in one frame.
const FRAME: usize = 64 * 1024;
/// Frames on their way to the connection: 1 MiB, as kube-rs's stdin pipe was for uploads.
const FRAMES_IN_FLIGHT: usize = 16;
/// What is kept of stdout and of stderr, for messages.
const OUTPUT_LIMIT: usize = 64 * 1024;
const PING: Duration = Duration::from_secs(60);

/// Channels of the remotecommand protocol (k8s.io/apimachinery/pkg/util/remotecommand).
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
const CLOSE: u8 = 255;

/// A running exec with stdin, stdout and stderr.
pub struct StdinExec {
    /// Stdin, for a blocking thread; dropping it (after [`Frames::finish`]) is the EOF.
    pub stdin: Frames,
    /// The exit status, when the remote reports one.
    pub status: oneshot::Receiver<Status>,
    /// The remote's stderr, then its stdout (each bounded), once the exec has ended.
    pub output: JoinHandle<String>,
}

impl StdinExec {
    /// Opens the exec; an error here is kube's (refused, not found, no upgrade).
    pub async fn open(remote: &Remote<'_>, command: Vec<String>) -> Result<StdinExec, kube::Error> {
        let params = AttachParams::default()
            .container(remote.container)
            .stdin(true)
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
        let (frames, queued) = mpsc::channel(FRAMES_IN_FLIGHT);
        let (status_tx, status) = oneshot::channel();
        let output = tokio::spawn(message_loop(
            connection.into_stream(),
            close_supported,
            queued,
            status_tx,
        ));
        Ok(StdinExec {
            stdin: Frames {
                queue: frames,
                frame: new_frame(),
            },
            status,
            output,
        })
    }
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
    /// Sends what is gathered; the EOF follows when this is dropped.
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

/// Sends the queued stdin frames and reads what the remote says, until its status arrives or
/// the connection ends; returns its stderr, then its stdout.
async fn message_loop(
    ws: impl futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
    + futures::Sink<Message>
    + Unpin,
    close_supported: bool,
    mut queued: mpsc::Receiver<Vec<u8>>,
    status: oneshot::Sender<Status>,
) -> String {
    let (mut to_remote, mut from_remote) = ws.split();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut stdin_open = true;
    let mut ping = tokio::time::interval(PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    loop {
        tokio::select! {
            frame = queued.recv(), if stdin_open => {
                let sent = match frame {
                    Some(frame) => to_remote.send(Message::Binary(Bytes::from(frame))).await,
                    None => {
                        stdin_open = false;
                        if close_supported {
                            to_remote.send(Message::Binary(Bytes::from_static(&[CLOSE, STDIN]))).await
                        } else {
                            // v4 has no way to close one stream: close the connection's
                            // sending side, as kube-rs does.
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
                    STDOUT => keep(&mut stdout, &bin[1..]),
                    STDERR => keep(&mut stderr, &bin[1..]),
                    STATUS => {
                        if let Ok(parsed) = serde_json::from_slice::<Status>(&bin[1..]) {
                            let _ = status.send(parsed);
                        }
                        break;
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            _ = ping.tick() => {
                if to_remote.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    stderr.extend_from_slice(&stdout);
    String::from_utf8_lossy(&stderr).into_owned()
}

fn keep(kept: &mut Vec<u8>, bytes: &[u8]) {
    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_goes_in_full_frames_on_channel_zero_and_the_rest_at_finish() {
        let (queue, mut queued) = mpsc::channel(64);
        let data: Vec<u8> = (0..(2 * FRAME + 10)).map(|i| (i % 251) as u8).collect();
        let sending = std::thread::spawn(move || {
            let mut frames = Frames {
                queue,
                frame: new_frame(),
            };
            frames.write_all(&data[..100]).unwrap();
            frames.write_all(&data[100..]).unwrap();
            frames.finish().unwrap();
            data
        });
        let data = sending.join().unwrap();
        let mut sizes = Vec::new();
        let mut joined = Vec::new();
        while let Ok(frame) = queued.try_recv() {
            assert_eq!(frame[0], STDIN);
            sizes.push(frame.len() - 1);
            joined.extend_from_slice(&frame[1..]);
        }
        assert_eq!(sizes, vec![FRAME, FRAME, 10]);
        assert!(joined == data);
    }

    #[test]
    fn writing_after_the_exec_ended_is_a_broken_pipe() {
        let (queue, queued) = mpsc::channel(1);
        drop(queued);
        let mut frames = Frames {
            queue,
            frame: new_frame(),
        };
        let err = frames.write_all(&vec![0u8; FRAME + 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
