use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::*;
use crate::runtime::{Process, ProcessExit, TerminalSize};

const T: Duration = Duration::from_secs(5);

/// The client end of a session, plus the far ends of the fake process's pipes.
struct Harness {
    client: WebSocketStream<DuplexStream>,
    /// What the test writes here is the process's stdout.
    stdout: Option<DuplexStream>,
    stderr: Option<DuplexStream>,
    /// What the process reads on stdin arrives here.
    stdin: DuplexStream,
    resize: mpsc::UnboundedReceiver<TerminalSize>,
    exit: Option<oneshot::Sender<ProcessExit>>,
    server: JoinHandle<()>,
}

#[derive(Clone, Copy)]
enum Streams {
    Both,
    None,
}

/// The far ends of a fake process's pipes, as the test drives them.
struct Ends {
    /// What the test writes here is the process's stdout.
    stdout: Option<DuplexStream>,
    stderr: Option<DuplexStream>,
    /// What the process reads on stdin arrives here.
    stdin: DuplexStream,
    resize: mpsc::UnboundedReceiver<TerminalSize>,
    exit: Option<oneshot::Sender<ProcessExit>>,
}

/// A process made of in-memory pipes, with or without output streams.
fn fake_process(streams: Streams) -> (Process, Ends) {
    let (stdout_w, stdout_r) = duplex(1 << 16);
    let (stderr_w, stderr_r) = duplex(1 << 16);
    let (stdin_w, stdin_r) = duplex(1 << 16);
    let (resize_tx, resize_rx) = mpsc::unbounded_channel();
    let (exit_tx, exit_rx) = oneshot::channel();
    let with_output = matches!(streams, Streams::Both);
    let process = Process {
        stdin: Some(Box::pin(stdin_w)),
        stdout: with_output.then(|| Box::pin(stdout_r) as crate::runtime::BoxRead),
        stderr: with_output.then(|| Box::pin(stderr_r) as crate::runtime::BoxRead),
        resize: Some(resize_tx),
        exit: exit_rx,
    };
    let ends = Ends {
        stdout: Some(stdout_w),
        stderr: Some(stderr_w),
        stdin: stdin_r,
        resize: resize_rx,
        exit: Some(exit_tx),
    };
    (process, ends)
}

async fn start(
    protocol: Protocol,
    command: Option<Vec<String>>,
    streams: Streams,
    drop_after: Option<Duration>,
) -> Harness {
    let (client_io, server_io) = duplex(1 << 20);
    let server_ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
    let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let (process, ends) = fake_process(streams);
    let server = tokio::spawn(async move {
        match command {
            Some(command) => serve_exec(server_ws, protocol, process, &command, drop_after).await,
            None => serve_attach(server_ws, protocol, process, drop_after).await,
        }
    });
    Harness {
        client,
        stdout: ends.stdout,
        stderr: ends.stderr,
        stdin: ends.stdin,
        resize: ends.resize,
        exit: ends.exit,
        server,
    }
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Everything the client receives until the connection ends.
#[derive(Debug, Default)]
struct Received {
    frames: Vec<(u8, Vec<u8>)>,
    closed_cleanly: bool,
}

impl Received {
    fn channel(&self, channel: u8) -> Vec<u8> {
        self.frames
            .iter()
            .filter(|(c, _)| *c == channel)
            .flat_map(|(_, d)| d.clone())
            .collect()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&self.channel(ERROR)).expect("status JSON")
    }
}

async fn receive_all(client: &mut WebSocketStream<DuplexStream>) -> Received {
    let mut received = Received::default();
    let read = async {
        while let Some(message) = client.next().await {
            match message {
                Ok(Message::Binary(data)) => {
                    received.frames.push((data[0], data[1..].to_vec()));
                }
                Ok(Message::Close(_)) => received.closed_cleanly = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    tokio::time::timeout(T, read)
        .await
        .expect("session ended in time");
    received
}

async fn finish(h: &mut Harness, exit: ProcessExit) -> Received {
    h.stdout.take();
    h.stderr.take();
    h.exit.take().unwrap().send(exit).unwrap();
    let received = receive_all(&mut h.client).await;
    tokio::time::timeout(T, &mut h.server)
        .await
        .unwrap()
        .unwrap();
    received
}

#[tokio::test]
async fn first_frame_is_an_empty_frame_on_the_lowest_writable_channel() {
    for (streams, channel) in [(Streams::Both, STDOUT), (Streams::None, ERROR)] {
        let mut h = start(Protocol::V5, Some(cmd(&["true"])), streams, None).await;
        let received = finish(&mut h, ProcessExit::Code(0)).await;
        assert_eq!(received.frames[0], (channel, vec![]));
    }
}

#[tokio::test]
async fn output_is_forwarded_per_channel_then_success_status_then_close() {
    let mut h = start(Protocol::V5, Some(cmd(&["sh"])), Streams::Both, None).await;
    h.stdout
        .as_mut()
        .unwrap()
        .write_all(b"hello ")
        .await
        .unwrap();
    h.stderr.as_mut().unwrap().write_all(b"oops").await.unwrap();
    h.stdout
        .as_mut()
        .unwrap()
        .write_all(b"world")
        .await
        .unwrap();
    let received = finish(&mut h, ProcessExit::Code(0)).await;
    assert_eq!(received.channel(STDOUT), b"hello world");
    assert_eq!(received.channel(STDERR), b"oops");
    assert_eq!(received.frames.last().unwrap().0, ERROR);
    assert_eq!(
        received.channel(ERROR),
        br#"{"metadata":{},"status":"Success"}"#
    );
    assert!(received.closed_cleanly);
}

// The exit status often arrives before the last output is read from the pipes; a client that
// stops reading at the status frame would lose the tail of the output.
#[tokio::test]
async fn output_written_before_exit_is_sent_before_the_status_even_when_exit_is_seen_first() {
    let mut h = start(
        Protocol::V4,
        Some(cmd(&["sh", "-c", "exit 7"])),
        Streams::Both,
        None,
    )
    .await;
    h.exit.take().unwrap().send(ProcessExit::Code(7)).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let big = vec![b'x'; 200_000];
    let mut stdout = h.stdout.take().unwrap();
    let writer = tokio::spawn(async move {
        stdout.write_all(&big).await.unwrap();
        stdout.write_all(b"tail").await.unwrap();
    });
    let received = receive_all(&mut h.client).await;
    writer.await.unwrap();
    let out = received.channel(STDOUT);
    assert_eq!(out.len(), 200_004);
    assert!(out.ends_with(b"tail"));
    let last_data = received.frames.last().unwrap();
    assert_eq!(last_data.0, ERROR);
    assert_eq!(received.status()["reason"], "NonZeroExitCode");
}

#[tokio::test]
async fn non_zero_exit_v4_carries_the_runtime_message_and_exit_code_cause() {
    let mut h = start(
        Protocol::V4,
        Some(cmd(&["sh", "-c", "exit 7"])),
        Streams::Both,
        None,
    )
    .await;
    let received = finish(&mut h, ProcessExit::Code(7)).await;
    assert_eq!(
        String::from_utf8(received.channel(ERROR)).unwrap(),
        r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#
    );
    assert!(received.closed_cleanly);
}

#[test]
fn exit_status_payloads_match_upstream() {
    let sh = cmd(&["sh", "-c", "exit 7"]);
    let exec = Operation::Exec { command: &sh };
    let start_failed = ProcessExit::StartFailed(
        "failed to exec in container: exec: \"sh\": executable file not found in $PATH".into(),
    );
    let cases: Vec<(Protocol, Operation<'_>, ProcessExit, Option<&str>)> = vec![
        (
            Protocol::V5,
            exec,
            ProcessExit::Code(0),
            Some(r#"{"metadata":{},"status":"Success"}"#),
        ),
        (
            Protocol::V4,
            exec,
            ProcessExit::Code(0),
            Some(r#"{"metadata":{},"status":"Success"}"#),
        ),
        (
            Protocol::V5,
            exec,
            ProcessExit::Code(7),
            Some(
                r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#,
            ),
        ),
        (
            Protocol::V4,
            exec,
            ProcessExit::Signal(9),
            Some(
                r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 137","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"137"}]}}"#,
            ),
        ),
        (
            Protocol::V4,
            exec,
            start_failed.clone(),
            Some(
                r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: failed to exec in container: exec: \"sh\": executable file not found in $PATH","reason":"InternalError","details":{"causes":[{"message":"error executing command in container: failed to exec in container: exec: \"sh\": executable file not found in $PATH"}]},"code":500}"#,
            ),
        ),
        (
            Protocol::V5,
            exec,
            start_failed.clone(),
            Some(
                r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: Internal error occurred: error executing command in container: failed to exec in container: exec: \"sh\": executable file not found in $PATH","reason":"InternalError","details":{"causes":[{"message":"Internal error occurred: error executing command in container: failed to exec in container: exec: \"sh\": executable file not found in $PATH"}]},"code":500}"#,
            ),
        ),
        (
            Protocol::V4,
            Operation::Attach,
            ProcessExit::Code(3),
            Some(r#"{"metadata":{},"status":"Success"}"#),
        ),
        (
            Protocol::V4,
            Operation::Attach,
            ProcessExit::StartFailed("boom".into()),
            Some(
                r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: error attaching to container: boom","reason":"InternalError","details":{"causes":[{"message":"error attaching to container: boom"}]},"code":500}"#,
            ),
        ),
        (Protocol::V1, exec, ProcessExit::Code(0), None),
        (
            Protocol::V1,
            exec,
            ProcessExit::Code(7),
            Some(
                "command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7",
            ),
        ),
        (
            Protocol::V3,
            exec,
            start_failed,
            Some(
                "Internal error occurred: error executing command in container: failed to exec in container: exec: \"sh\": executable file not found in $PATH",
            ),
        ),
    ];
    for (protocol, op, exit, want) in cases {
        let got = exit_status(protocol, op, &exit).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(got.as_deref(), want, "{protocol:?} {op:?} {exit:?}");
    }
}

#[tokio::test]
async fn start_failure_is_reported_as_internal_error() {
    let mut h = start(Protocol::V5, Some(cmd(&["sh"])), Streams::Both, None).await;
    let received = finish(&mut h, ProcessExit::StartFailed("no sh".into())).await;
    let status = received.status();
    assert_eq!(status["reason"], "InternalError");
    assert_eq!(status["code"], 500);
    assert!(received.closed_cleanly);
}

#[tokio::test]
async fn v1_success_sends_no_status_and_still_closes() {
    let mut h = start(Protocol::V1, Some(cmd(&["true"])), Streams::Both, None).await;
    let received = finish(&mut h, ProcessExit::Code(0)).await;
    assert!(received.channel(ERROR).is_empty());
    assert!(received.closed_cleanly);
}

#[tokio::test]
async fn stdin_is_forwarded_and_v5_close_of_channel_0_is_eof() {
    let mut h = start(Protocol::V5, Some(cmd(&["cat"])), Streams::Both, None).await;
    h.client.send(frame(STDIN, b"abc")).await.unwrap();
    h.client.send(frame(STDIN, b"def")).await.unwrap();
    h.client.send(frame(CLOSE, &[STDIN])).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(T, h.stdin.read_to_end(&mut got))
        .await
        .expect("stdin reached EOF")
        .unwrap();
    assert_eq!(got, b"abcdef");
    finish(&mut h, ProcessExit::Code(0)).await;
}

#[tokio::test]
async fn v4_has_no_close_channel() {
    let mut h = start(Protocol::V4, Some(cmd(&["cat"])), Streams::Both, None).await;
    h.client.send(frame(CLOSE, &[STDIN])).await.unwrap();
    h.client.send(frame(STDIN, b"still open")).await.unwrap();
    let mut got = vec![0u8; 10];
    tokio::time::timeout(T, h.stdin.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"still open");
    finish(&mut h, ProcessExit::Code(0)).await;
}

#[tokio::test]
async fn resize_frames_are_parsed_and_forwarded() {
    let mut h = start(Protocol::V5, Some(cmd(&["sh"])), Streams::Both, None).await;
    h.client
        .send(frame(RESIZE, br#"{"Width":80,"Height":24}"#))
        .await
        .unwrap();
    h.client
        .send(frame(RESIZE, br#"{"Width":120,"#))
        .await
        .unwrap();
    h.client
        .send(frame(RESIZE, br#""Height":40}"#))
        .await
        .unwrap();
    let mut sizes = Vec::new();
    for _ in 0..2 {
        sizes.push(
            tokio::time::timeout(T, h.resize.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(
        sizes,
        vec![
            TerminalSize {
                width: 80,
                height: 24
            },
            TerminalSize {
                width: 120,
                height: 40
            }
        ]
    );
    finish(&mut h, ProcessExit::Code(0)).await;
}

#[test]
fn resize_decoder_reads_a_json_stream_like_go() {
    let size = |width, height| TerminalSize { width, height };
    let mut d = ResizeDecoder::default();
    assert_eq!(
        d.push(br#"{"Width":1,"Height":2}{"width":3,"height":4} "#),
        vec![size(1, 2), size(3, 4)]
    );
    assert_eq!(d.push(br#"{"Width":5"#), vec![]);
    assert_eq!(d.push(br#","Height":6}"#), vec![size(5, 6)]);
    assert_eq!(d.push(br#"{"Height":7}"#), vec![size(0, 7)]);
    // A malformed object ends resize handling for the session, as upstream's decoder loop.
    assert_eq!(d.push(br#"{"Width":"wide"}"#), vec![]);
    assert_eq!(d.push(br#"{"Width":1,"Height":2}"#), vec![]);
    let mut d = ResizeDecoder::default();
    assert_eq!(d.push(b"not json"), vec![]);
    assert_eq!(d.push(br#"{"Width":1,"Height":2}"#), vec![]);
}

#[tokio::test]
async fn attach_reports_success_whatever_the_exit_code() {
    let mut h = start(Protocol::V5, None, Streams::Both, None).await;
    let received = finish(&mut h, ProcessExit::Code(42)).await;
    assert_eq!(received.status()["status"], "Success");
}

#[tokio::test]
async fn drop_after_cuts_the_connection_without_close_frame() {
    let mut h = start(
        Protocol::V5,
        Some(cmd(&["sleep", "100"])),
        Streams::Both,
        Some(Duration::from_millis(100)),
    )
    .await;
    h.stdout
        .as_mut()
        .unwrap()
        .write_all(b"before")
        .await
        .unwrap();
    let received = receive_all(&mut h.client).await;
    assert_eq!(received.channel(STDOUT), b"before");
    assert!(!received.closed_cleanly);
    assert!(received.channel(ERROR).is_empty());
    tokio::time::timeout(T, &mut h.server)
        .await
        .unwrap()
        .unwrap();
    // The process's stdin sees EOF once the session is gone.
    let mut rest = Vec::new();
    tokio::time::timeout(T, h.stdin.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn client_close_ends_the_session_and_closes_stdin() {
    let mut h = start(Protocol::V5, Some(cmd(&["sh"])), Streams::Both, None).await;
    h.client.close(None).await.unwrap();
    tokio::time::timeout(T, &mut h.server)
        .await
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(T, h.stdin.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn output_pipe_held_open_after_exit_does_not_hang_the_session() {
    let mut h = start(Protocol::V5, Some(cmd(&["sh"])), Streams::Both, None).await;
    h.stdout.as_mut().unwrap().write_all(b"x").await.unwrap();
    h.exit.take().unwrap().send(ProcessExit::Code(0)).unwrap();
    // stdout and stderr stay open (a background child holds them).
    let received = receive_all(&mut h.client).await;
    assert_eq!(received.channel(STDOUT), b"x");
    assert_eq!(received.status()["status"], "Success");
}

#[test]
fn negotiation_follows_apiserver_then_kubelet_rules() {
    let cases: &[(&[&str], Option<Protocol>)] = &[
        (
            &["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"],
            Some(Protocol::V5),
        ),
        // kube-rs and kubectl send one comma-separated header.
        (
            &["v4.channel.k8s.io, v5.channel.k8s.io"],
            Some(Protocol::V5),
        ),
        (&["v4.channel.k8s.io", "channel.k8s.io"], Some(Protocol::V4)),
        (&["channel.k8s.io", "v4.channel.k8s.io"], Some(Protocol::V1)),
        (
            &["base64.channel.k8s.io", "v4.channel.k8s.io"],
            Some(Protocol::V4),
        ),
        (&["v3.channel.k8s.io"], Some(Protocol::V3)),
        (&["v2.channel.k8s.io"], Some(Protocol::V2)),
        (&[], Some(Protocol::V1)),
        (&[""], Some(Protocol::V1)),
        (&["base64.channel.k8s.io"], None),
        (&["chat"], None),
    ];
    for (requested, want) in cases {
        assert_eq!(negotiate(requested), *want, "{requested:?}");
    }
}

#[test]
fn upgrade_response_has_rfc6455_accept_key_and_protocol() {
    // The example handshake of RFC 6455 section 1.3.
    let up = upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", &["v5.channel.k8s.io"]).unwrap();
    assert_eq!(up.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(up.protocol, Protocol::V5);
    assert_eq!(up.protocol_header, Some("v5.channel.k8s.io"));
    let up = upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", &[]).unwrap();
    assert_eq!(up.protocol_header, None);
    assert!(upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", &["chat"]).is_none());
}

/// kube-rs's own client (the one the plugin uses) against `serve_exec` over a real HTTP
/// upgrade on a loopback port: negotiation, v5 stream close, resize and the exit status as
/// kube-rs parses them.
mod kube_client {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use futures::SinkExt;
    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams, TerminalSize as KubeSize};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::super::{serve_exec, upgrade_response};
    use super::{Ends, Streams, T, fake_process};
    use crate::runtime::{Process, ProcessExit, TerminalSize};

    type Slot = Arc<Mutex<Option<Process>>>;

    /// Query values of `name`, form-decoded (`exit+7` → `exit 7`).
    fn query_values(query: &str, name: &str) -> Vec<String> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| {
                let v = v.replace('+', " ");
                let mut out = Vec::new();
                let bytes = v.as_bytes();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'%'
                        && i + 2 < bytes.len()
                        && let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16)
                    {
                        out.push(b);
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    async fn upgrade(
        mut req: Request<Incoming>,
        slot: Slot,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let header = |name: &str| -> Vec<String> {
            req.headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(String::from))
                .collect()
        };
        let key = header("sec-websocket-key").concat();
        let offered = header("sec-websocket-protocol");
        let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
        let up = upgrade_response(&key, &offered).expect("a supported protocol");
        let command = query_values(req.uri().query().unwrap_or(""), "command");
        let process = slot.lock().unwrap().take().expect("one session per test");
        let on_upgrade = hyper::upgrade::on(&mut req);
        let protocol = up.protocol;
        tokio::spawn(async move {
            let upgraded = on_upgrade.await.expect("upgraded");
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            serve_exec(ws, protocol, process, &command, None).await;
        });
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert("connection", "Upgrade".parse().unwrap());
        h.insert("upgrade", "websocket".parse().unwrap());
        h.insert("sec-websocket-accept", up.accept.parse().unwrap());
        if let Some(p) = up.protocol_header {
            h.insert("sec-websocket-protocol", p.parse().unwrap());
        }
        Ok(resp)
    }

    /// A kube client for an HTTP server that serves one exec session with `process`.
    async fn client_for(process: Process) -> kube::Client {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let slot: Slot = Arc::new(Mutex::new(Some(process)));
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let svc = service_fn(move |req| upgrade(req, slot.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades()
                .await;
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    #[tokio::test]
    async fn exit_code_and_output_reach_kube_rs() {
        let (process, mut ends): (Process, Ends) = fake_process(Streams::Both);
        let pods: Api<Pod> = Api::namespaced(client_for(process).await, "default");
        let params = AttachParams::default().stdin(false).stderr(true);
        let mut attached = pods
            .exec("app", ["sh", "-c", "exit 7"], &params)
            .await
            .unwrap();
        let mut stdout = attached.stdout().unwrap();
        let mut stderr = attached.stderr().unwrap();
        let status = attached.take_status().unwrap();

        ends.stdout
            .as_mut()
            .unwrap()
            .write_all(b"out")
            .await
            .unwrap();
        ends.stderr
            .as_mut()
            .unwrap()
            .write_all(b"err")
            .await
            .unwrap();
        ends.stdout.take();
        ends.stderr.take();
        ends.exit
            .take()
            .unwrap()
            .send(ProcessExit::Code(7))
            .unwrap();

        let mut out = String::new();
        let mut err = String::new();
        tokio::time::timeout(T, stdout.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(T, stderr.read_to_string(&mut err))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("out", "err"));
        let status = tokio::time::timeout(T, status).await.unwrap().unwrap();
        assert_eq!(status.status.as_deref(), Some("Failure"));
        assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
        assert_eq!(
            status.message.as_deref(),
            Some("command terminated with non-zero exit code: command terminated with exit code 7")
        );
        let cause = &status.details.unwrap().causes.unwrap()[0];
        assert_eq!(
            (cause.reason.as_deref(), cause.message.as_deref()),
            (Some("ExitCode"), Some("7"))
        );
        tokio::time::timeout(T, attached.join())
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn tty_resize_and_stdin_eof_from_kube_rs() {
        let (process, mut ends) = fake_process(Streams::Both);
        let pods: Api<Pod> = Api::namespaced(client_for(process).await, "default");
        let mut attached = pods
            .exec("app", ["sh"], &AttachParams::interactive_tty())
            .await
            .unwrap();
        let mut resize = attached.terminal_size().unwrap();
        resize
            .send(KubeSize {
                width: 100,
                height: 30,
            })
            .await
            .unwrap();
        let size = tokio::time::timeout(T, ends.resize.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            size,
            TerminalSize {
                width: 100,
                height: 30
            }
        );

        let mut stdin = attached.stdin().unwrap();
        stdin.write_all(b"ls\n").await.unwrap();
        // kube-rs's stdin is one half of a simplex pipe: dropping it is not EOF, shutting
        // it down is (and then kube-rs sends [255, 0]).
        stdin.shutdown().await.unwrap();
        let mut typed = Vec::new();
        tokio::time::timeout(T, ends.stdin.read_to_end(&mut typed))
            .await
            .expect("v5 close of stdin reaches the process as EOF")
            .unwrap();
        assert_eq!(typed, b"ls\n");

        let mut stdout = attached.stdout().unwrap();
        let status = attached.take_status().unwrap();
        ends.stdout
            .as_mut()
            .unwrap()
            .write_all(b"done")
            .await
            .unwrap();
        ends.stdout.take();
        ends.stderr.take();
        ends.exit
            .take()
            .unwrap()
            .send(ProcessExit::Code(0))
            .unwrap();
        let mut out = String::new();
        tokio::time::timeout(T, stdout.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, "done");
        let status = tokio::time::timeout(T, status).await.unwrap().unwrap();
        assert_eq!(status.status.as_deref(), Some("Success"));
    }
}

// A client that stops reading must not keep a dropped-stream fault from firing.
#[tokio::test]
async fn drop_after_fires_while_the_client_is_not_reading() {
    let (client_io, server_io) = duplex(64);
    let server_ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
    let _client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let (process, mut ends) = fake_process(Streams::Both);
    let server = tokio::spawn(async move {
        serve_exec(
            server_ws,
            Protocol::V5,
            process,
            &cmd(&["yes"]),
            Some(Duration::from_millis(200)),
        )
        .await
    });
    let mut stdout = ends.stdout.take().unwrap();
    tokio::spawn(async move {
        let chunk = vec![b'y'; 4096];
        while stdout.write_all(&chunk).await.is_ok() {}
    });
    tokio::time::timeout(T, server)
        .await
        .expect("the session ends at the fault, not when the client reads")
        .unwrap();
}
