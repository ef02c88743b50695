//! The remotecommand channel protocol (`v5`/`v4.channel.k8s.io`) over WebSocket, server side.
//!
//! This is what `pods/exec` and `pods/attach` speak once the HTTP connection is upgraded. Each
//! binary frame starts with one channel byte: stdin 0, stdout 1, stderr 2, error/status 3,
//! resize 4 and, in v5 only, close 255 (`[255, n]` half-closes the client's stream `n`, so
//! `[255, 0]` is stdin EOF). When the process ends the server writes its outcome on channel 3
//! (a JSON `metav1.Status` from v4 on, plain text before), sends a close frame and waits for
//! the client to close.
//!
//! It mirrors two upstream servers, because a real cluster answers through whichever one the
//! client's protocol selects:
//! - `v5.channel.k8s.io` is served by the apiserver's stream translator
//!   (staging/src/k8s.io/apiserver/pkg/util/proxy/{streamtranslator,websocket}.go), which talks
//!   SPDY to the kubelet and re-encodes the kubelet's outcome;
//! - `v4.channel.k8s.io` and older are proxied to the kubelet's own WebSocket server
//!   (staging/src/k8s.io/kubelet/pkg/cri/streaming/remotecommand/{exec,attach,websocket}.go) and
//!   the error messages are the container runtime's (containerd's CRI streaming `Exec`).
//!
//! That is why the status message of a non-zero exit differs between v4 and v5: see
//! [`exit_status`]. SPDY and the `base64.channel.k8s.io` variants are not served.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::runtime::{BoxRead, BoxWrite, Process, ProcessExit};

pub use resize::ResizeDecoder;
pub use status::exit_status;

mod resize;
mod status;

/// Channel numbers (k8s.io/apimachinery/pkg/util/remotecommand/constants.go).
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5 only: `[CLOSE, n]` means the client closed its stream `n`.
pub const CLOSE: u8 = 255;

/// After the process has exited, output still in the pipes is forwarded until both pipes reach
/// EOF. A pipe held open by a process the command left in the background would keep the session
/// open forever; stop waiting once no output arrived for this long.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

/// How long the server waits for the client to answer its close frame. Upstream waits up to
/// 15 minutes (`finishTimeout`) for slow readers; a test double needs less.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The most output one frame carries: one read of the pipe, as the kubelet's streaming server
/// copies a container's output into websocket frames (`io.Copy`'s 32 KiB buffer), so clients
/// see the frames a cluster sends them.
const FRAME_MAX: usize = 32 * 1024;

/// A remotecommand protocol version, as negotiated through `Sec-WebSocket-Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `v5.channel.k8s.io`: v4 plus the close channel (255).
    V5,
    /// `v4.channel.k8s.io`: JSON `metav1.Status` on the error channel, with exit codes.
    V4,
    /// `v3.channel.k8s.io`: plain-text errors, resize channel.
    V3,
    /// `v2.channel.k8s.io`: plain-text errors.
    V2,
    /// `channel.k8s.io` (or no subprotocol at all): plain-text errors.
    V1,
}

impl Protocol {
    /// The `Sec-WebSocket-Protocol` value.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V5 => "v5.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V3 => "v3.channel.k8s.io",
            Protocol::V2 => "v2.channel.k8s.io",
            Protocol::V1 => "channel.k8s.io",
        }
    }

    /// The protocol with this `Sec-WebSocket-Protocol` value, if we serve it.
    pub fn from_name(name: &str) -> Option<Protocol> {
        [
            Protocol::V5,
            Protocol::V4,
            Protocol::V3,
            Protocol::V2,
            Protocol::V1,
        ]
        .into_iter()
        .find(|p| p.name() == name.trim())
    }

    /// v4 and later report the outcome as a JSON Status (with the exit code).
    fn json_status(self) -> bool {
        matches!(self, Protocol::V5 | Protocol::V4)
    }
}

/// Choose the protocol for the client's `Sec-WebSocket-Protocol` values.
///
/// Each element may itself be a comma-separated header value. The apiserver hands a request
/// that offers `v5.channel.k8s.io` anywhere in its list to the stream translator (v5 wins
/// regardless of order); otherwise the kubelet's `wsstream` handshake takes the first offered
/// protocol it supports, in the client's order. No protocol at all is the legacy binary
/// `channel.k8s.io` (the kubelet's `""` entry). `None`: nothing offered is supported, which
/// the server answers with 400.
pub fn negotiate(requested: &[&str]) -> Option<Protocol> {
    let offered: Vec<&str> = requested
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if offered.is_empty() {
        return Some(Protocol::V1);
    }
    if offered.contains(&Protocol::V5.name()) {
        return Some(Protocol::V5);
    }
    offered.iter().find_map(|name| Protocol::from_name(name))
}

/// What the API server needs to answer an upgrade request with `101 Switching Protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// Value of the `Sec-WebSocket-Accept` response header.
    pub accept: String,
    /// The protocol chosen; `serve*` takes it.
    pub protocol: Protocol,
    /// Value of the `Sec-WebSocket-Protocol` response header; `None` when the client offered
    /// none (the header must then be absent).
    pub protocol_header: Option<&'static str>,
}

/// Compute the upgrade response for the request's `Sec-WebSocket-Key` and its
/// `Sec-WebSocket-Protocol` values. `None` when no offered protocol is supported.
pub fn upgrade_response(sec_websocket_key: &str, requested: &[&str]) -> Option<Upgrade> {
    let protocol = negotiate(requested)?;
    let offered_any = requested.iter().any(|v| !v.trim().is_empty());
    Some(Upgrade {
        accept: tokio_tungstenite::tungstenite::handshake::derive_accept_key(
            sec_websocket_key.trim().as_bytes(),
        ),
        protocol,
        protocol_header: offered_any.then(|| protocol.name()),
    })
}

/// Which request a session serves; it decides the wording of the outcome on channel 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// `pods/exec` with this command.
    Exec { command: &'a [String] },
    /// `pods/attach`: the kubelet reports Success whenever the attached process ends.
    Attach,
}

/// Serve an exec session whose command is unknown to the caller. Prefer [`serve_exec`], which
/// puts the command into the v4 non-zero-exit message as the runtime does.
pub async fn serve<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    process: Process,
    drop_after: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    serve_exec(ws, protocol, process, &[], drop_after).await
}

/// Serve a `pods/exec` session for `command` until the process ends and the client has been
/// told how (or the client goes away). `drop_after` is a fault: after that long the connection
/// is dropped without a close frame, mid-stream.
pub async fn serve_exec<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    process: Process,
    command: &[String],
    drop_after: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    run(
        ws,
        protocol,
        process,
        Operation::Exec { command },
        drop_after,
    )
    .await
}

/// Serve a `pods/attach` session (see [`serve_exec`]).
pub async fn serve_attach<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    process: Process,
    drop_after: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    run(ws, protocol, process, Operation::Attach, drop_after).await
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut buf = Vec::with_capacity(data.len() + 1);
    buf.push(channel);
    buf.extend_from_slice(data);
    Message::Binary(Bytes::from(buf))
}

/// Copy one output pipe into the frame queue until EOF or until the session is gone, one
/// frame per read, each read in place behind its channel byte.
fn spawn_reader(channel: u8, mut pipe: BoxRead, tx: mpsc::Sender<Bytes>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; FRAME_MAX + 1];
        buf[0] = channel;
        loop {
            match pipe.read(&mut buf[1..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Bytes::copy_from_slice(&buf[..=n])).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Write stdin data in its own task, so that a process that does not read its input never
/// stalls the forwarding of its output. Dropping the sender closes the process's stdin.
fn spawn_stdin(mut pipe: BoxWrite) -> mpsc::UnboundedSender<Bytes> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let mut broken = false;
        while let Some(data) = rx.recv().await {
            if !broken && (pipe.write_all(&data).await.is_err() || pipe.flush().await.is_err()) {
                broken = true;
            }
        }
        let _ = pipe.shutdown().await;
    });
    tx
}

enum End {
    /// The process ended and its output is forwarded: report and close.
    Finished(ProcessExit),
    /// The client closed or the connection broke: nothing left to tell it.
    ClientGone,
    /// `drop_after` fired: drop the connection without a close frame.
    Dropped,
}

async fn run<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    process: Process,
    op: Operation<'_>,
    drop_after: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Process {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = process;
    let deadline = drop_after.map(|d| Instant::now() + d);
    let (mut sink, mut source) = ws.split();

    // Upstream sends an empty frame on the lowest writable channel to tell the client the
    // streams are set up (createWebSocketStreams).
    let hello = if stdout.is_some() {
        STDOUT
    } else if stderr.is_some() {
        STDERR
    } else {
        ERROR
    };
    if sink.send(frame(hello, &[])).await.is_err() {
        return;
    }

    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(16);
    if let Some(pipe) = stdout {
        spawn_reader(STDOUT, pipe, out_tx.clone());
    }
    if let Some(pipe) = stderr {
        spawn_reader(STDERR, pipe, out_tx.clone());
    }
    drop(out_tx);
    let mut stdin_tx = stdin.map(spawn_stdin);
    let mut resize_tx = resize;
    let mut resize_decoder = ResizeDecoder::default();

    let mut exit = exit;
    let mut exited: Option<ProcessExit> = None;
    let mut outputs_done = false;

    let end = loop {
        if outputs_done && let Some(exit) = exited.take() {
            break End::Finished(exit);
        }
        tokio::select! {
            _ = sleep_until(deadline) => break End::Dropped,
            result = &mut exit, if exited.is_none() => {
                exited = Some(result.unwrap_or_else(|_| {
                    ProcessExit::StartFailed("the process was lost without an exit status".into())
                }));
            }
            out = out_rx.recv(), if !outputs_done => match out {
                // A client that stops reading blocks this send; the fault still fires. The
                // connection is flushed once no more output is queued, as a buffered writer
                // does, rather than once per frame.
                Some(framed) => tokio::select! {
                    sent = async {
                        sink.feed(Message::Binary(framed)).await?;
                        if out_rx.is_empty() {
                            sink.flush().await?;
                        }
                        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
                    } => if sent.is_err() {
                        break End::ClientGone;
                    },
                    _ = sleep_until(deadline) => break End::Dropped,
                },
                None => outputs_done = true,
            },
            incoming = source.next() => match incoming {
                Some(Ok(Message::Binary(data))) => {
                    let Some((&channel, payload)) = data.split_first() else { continue };
                    match channel {
                        STDIN => {
                            if let Some(tx) = &stdin_tx && !payload.is_empty() {
                                let _ = tx.send(Bytes::copy_from_slice(payload));
                            }
                        }
                        RESIZE => {
                            for size in resize_decoder.push(payload) {
                                if let Some(tx) = &resize_tx {
                                    let _ = tx.send(size);
                                }
                            }
                        }
                        CLOSE if protocol == Protocol::V5 => match payload.first() {
                            Some(&STDIN) => stdin_tx = None,
                            Some(&RESIZE) => resize_tx = None,
                            _ => {}
                        },
                        _ => {}
                    }
                }
                // Text frames belong to the base64 protocols we do not serve; pings are
                // answered by tungstenite itself.
                Some(Ok(Message::Close(_))) => {
                    let _ = sink.close().await;
                    break End::ClientGone;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break End::ClientGone,
            },
            _ = tokio::time::sleep(DRAIN_IDLE), if exited.is_some() => outputs_done = true,
        }
    };

    // Whatever happens next, the process sees EOF on stdin now, as when upstream closes the
    // streams in `finish`.
    drop(stdin_tx);
    drop(resize_tx);
    drop(out_rx);

    match end {
        End::Dropped | End::ClientGone => {}
        End::Finished(exit) => {
            if let Some(status) = exit_status(protocol, op, &exit)
                && sink.send(frame(ERROR, &status)).await.is_err()
            {
                return;
            }
            let close = Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }));
            if sink.send(close).await.is_err() {
                return;
            }
            // Wait for the client's close (or its end of the connection), discarding anything
            // it still sends, as upstream's `finish` does.
            let wait = async {
                while let Some(Ok(message)) = source.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = wait => {}
                _ = tokio::time::sleep(CLOSE_WAIT) => {}
                _ = sleep_until(deadline) => {}
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
