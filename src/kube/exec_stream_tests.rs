use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc as fmpsc;

use super::*;

/// A websocket double: what the "server" sends comes out of `incoming`; what the loop sends
/// goes to `sent`.
struct FakeWs {
    incoming: fmpsc::UnboundedReceiver<Result<Message, tungstenite::Error>>,
    sent: fmpsc::UnboundedSender<Message>,
}

impl futures::Stream for FakeWs {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.incoming).poll_next(cx)
    }
}

impl futures::Sink<Message> for FakeWs {
    type Error = fmpsc::SendError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.sent).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut self.sent).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.sent).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.sent).poll_close(cx)
    }
}

fn fake() -> (
    FakeWs,
    fmpsc::UnboundedSender<Result<Message, tungstenite::Error>>,
    fmpsc::UnboundedReceiver<Message>,
) {
    let (server, incoming) = fmpsc::unbounded();
    let (sent, client) = fmpsc::unbounded();
    (FakeWs { incoming, sent }, server, client)
}

fn on(channel: u8, data: &[u8]) -> Result<Message, tungstenite::Error> {
    let mut frame = vec![channel];
    frame.extend_from_slice(data);
    Ok(Message::Binary(Bytes::from(frame)))
}

fn exit_status(code: i32) -> Result<Message, tungstenite::Error> {
    let status = if code == 0 {
        serde_json::json!({ "status": "Success" })
    } else {
        serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] }
        })
    };
    on(STATUS, status.to_string().as_bytes())
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Reads `received` to its end on a blocking thread: the bytes, the sizes of the pieces it
/// was handed, and the error that ended it, if one did.
fn read_all(mut received: Received) -> JoinHandle<(Vec<u8>, Vec<usize>, Option<io::Error>)> {
    tokio::task::spawn_blocking(move || {
        let (mut all, mut pieces) = (Vec::new(), Vec::new());
        loop {
            match received.fill_buf() {
                Ok([]) => return (all, pieces, None),
                Ok(piece) => {
                    all.extend_from_slice(piece);
                    pieces.push(piece.len());
                    let n = piece.len();
                    received.consume(n);
                }
                Err(e) => return (all, pieces, Some(e)),
            }
        }
    })
}

// Paused time: no frame of the burst comes after a quiet spell, however slow the machine.
#[tokio::test(start_paused = true)]
async fn stdout_frames_reach_the_reader_in_whole_chunks_and_stderr_and_the_status_are_kept() {
    let (ws, server, _client) = fake();
    let (chunks, received) = download_parts();
    let (status_tx, status) = oneshot::channel();
    let reading = read_all(received);
    let data = pattern(CHUNK * 3 + 1000);
    for frame in data.chunks(32 * 1024) {
        server.unbounded_send(on(STDOUT, frame)).unwrap();
    }
    server.unbounded_send(on(STDERR, b"a warning\n")).unwrap();
    server.unbounded_send(exit_status(0)).unwrap();
    let output = message_loop(ws, true, None, Some(chunks), None, status_tx).await;
    let (all, pieces, error) = reading.await.unwrap();
    assert!(all == data, "every byte, in order");
    // The first frame at once (output after quiet), then whole chunks, then the rest.
    let frame = 32 * 1024;
    assert_eq!(pieces, vec![frame, CHUNK, CHUNK, CHUNK - frame + 1000]);
    assert!(error.is_none());
    assert_eq!(output, "a warning\n");
    assert_eq!(status.await.unwrap().status.as_deref(), Some("Success"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_hands_over_what_came_and_a_broken_connection_ends_the_reader_with_an_error() {
    let (ws, server, _client) = fake();
    let (chunks, mut received) = download_parts();
    let (status_tx, status) = oneshot::channel();
    let (piece_tx, mut pieces) = mpsc::unbounded_channel();
    let reading = tokio::task::spawn_blocking(move || {
        loop {
            match received.fill_buf() {
                Ok([]) => return None,
                Ok(piece) => {
                    let _ = piece_tx.send(piece.to_vec());
                    let n = piece.len();
                    received.consume(n);
                }
                Err(e) => return Some(e.kind()),
            }
        }
    });
    let looping = tokio::spawn(message_loop(ws, true, None, Some(chunks), None, status_tx));
    server.unbounded_send(on(STDOUT, b"first")).unwrap();
    // Nothing more comes and the stream has not ended: only the pause hands it over.
    assert_eq!(pieces.recv().await.unwrap(), b"first");
    server.unbounded_send(on(STDOUT, b"second")).unwrap();
    server
        .unbounded_send(Err(tungstenite::Error::ConnectionClosed))
        .unwrap();
    looping.await.unwrap();
    assert_eq!(pieces.recv().await.unwrap(), b"second");
    assert_eq!(
        reading.await.unwrap(),
        Some(io::ErrorKind::ConnectionAborted)
    );
    assert!(status.await.is_err(), "no status");
}

#[tokio::test(start_paused = true)]
async fn output_after_a_quiet_spell_is_handed_over_at_once_and_a_burst_waits_for_its_pause() {
    let (ws, server, _client) = fake();
    let (chunks, mut received) = download_parts();
    let (status_tx, _status) = oneshot::channel();
    let looping = tokio::spawn(message_loop(ws, true, None, Some(chunks), None, status_tx));
    let mut next = async || {
        let chunk = received.queued.recv().await.unwrap().unwrap();
        chunk.bytes[..chunk.len].to_vec()
    };
    let start = Instant::now();
    server.unbounded_send(on(STDOUT, b"hi\n")).unwrap();
    assert_eq!(next().await, b"hi\n");
    assert_eq!(Instant::now(), start, "the first output waited for a pause");
    // Right after it, a burst: gathered, and handed over once it pauses.
    server.unbounded_send(on(STDOUT, b"a")).unwrap();
    server.unbounded_send(on(STDOUT, b"b")).unwrap();
    assert_eq!(next().await, b"ab");
    assert_eq!(Instant::now(), start + QUIET);
    // A quiet spell later, the next line goes at once again.
    tokio::time::sleep(QUIET).await;
    let later = Instant::now();
    server.unbounded_send(on(STDOUT, b"later\n")).unwrap();
    assert_eq!(next().await, b"later\n");
    assert_eq!(Instant::now(), later);
    drop(server);
    looping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_is_gone_ends_the_loop_with_what_stderr_said() {
    let (ws, server, _client) = fake();
    let (chunks, received) = download_parts();
    drop(received);
    let (status_tx, _status) = oneshot::channel();
    server.unbounded_send(on(STDERR, b"refused")).unwrap();
    server.unbounded_send(on(STDOUT, &pattern(CHUNK))).unwrap();
    // The server side stays open: only the reader being gone can end the loop.
    let output = tokio::time::timeout(
        Duration::from_secs(5),
        message_loop(ws, true, None, Some(chunks), None, status_tx),
    )
    .await
    .expect("the loop ends");
    assert_eq!(output, "refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_goes_in_full_frames_on_channel_zero_then_the_v5_close() {
    let (ws, server, mut client) = fake();
    let (queue, queued) = mpsc::channel(FRAMES_IN_FLIGHT);
    let (status_tx, status) = oneshot::channel();
    let looping = tokio::spawn(message_loop(ws, true, Some(queued), None, None, status_tx));
    let data = pattern(2 * FRAME + 10);
    let writing = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || {
            let mut frames = Frames {
                queue,
                frame: new_frame(),
            };
            frames.write_all(&data[..100]).unwrap();
            frames.write_all(&data[100..]).unwrap();
            frames.finish().unwrap();
        })
    };
    writing.await.unwrap();
    let (mut sizes, mut joined) = (Vec::new(), Vec::new());
    loop {
        let Some(Message::Binary(frame)) = client.next().await else {
            panic!("binary frames only");
        };
        if frame[0] == CLOSE {
            assert_eq!(&frame[..], &[CLOSE, STDIN], "the end of stdin");
            break;
        }
        assert_eq!(frame[0], STDIN);
        sizes.push(frame.len() - 1);
        joined.extend_from_slice(&frame[1..]);
    }
    assert_eq!(sizes, vec![FRAME, FRAME, 10]);
    assert!(joined == data);
    server.unbounded_send(on(STDOUT, b"said")).unwrap();
    server.unbounded_send(on(STDERR, b"done; ")).unwrap();
    server.unbounded_send(exit_status(3)).unwrap();
    assert_eq!(looping.await.unwrap(), "done; said", "stderr, then stdout");
    assert_eq!(
        status.await.unwrap().reason.as_deref(),
        Some("NonZeroExitCode")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_ends_stdin_by_closing_the_connection_and_a_write_after_the_end_is_a_broken_pipe() {
    let (ws, server, mut client) = fake();
    let (queue, queued) = mpsc::channel(FRAMES_IN_FLIGHT);
    let (status_tx, _status) = oneshot::channel();
    let looping = tokio::spawn(message_loop(ws, false, Some(queued), None, None, status_tx));
    tokio::task::spawn_blocking(move || {
        let frames = Frames {
            queue,
            frame: new_frame(),
        };
        frames.finish().unwrap();
    })
    .await
    .unwrap();
    assert!(client.next().await.is_none(), "the sending side closed");
    server.unbounded_send(exit_status(0)).unwrap();
    looping.await.unwrap();

    let (queue, queued) = mpsc::channel(1);
    drop(queued);
    let mut frames = Frames {
        queue,
        frame: new_frame(),
    };
    let err = tokio::task::spawn_blocking(move || frames.write_all(&pattern(FRAME + 1)))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_stdout_and_stderr_reach_their_own_readers_and_a_cut_ends_both() {
    let (ws, server, _client) = fake();
    let (out_chunks, out) = download_parts();
    let (err_chunks, err) = download_parts();
    let (status_tx, status) = oneshot::channel();
    let (reading_out, reading_err) = (read_all(out), read_all(err));
    let data = pattern(CHUNK + 10);
    server.unbounded_send(on(STDOUT, &data[..CHUNK])).unwrap();
    server.unbounded_send(on(STDERR, b"warning: ")).unwrap();
    server.unbounded_send(on(STDOUT, &data[CHUNK..])).unwrap();
    server.unbounded_send(on(STDERR, b"careful\n")).unwrap();
    server.unbounded_send(exit_status(4)).unwrap();
    let kept = message_loop(
        ws,
        true,
        None,
        Some(out_chunks),
        Some(err_chunks),
        status_tx,
    )
    .await;
    assert_eq!(kept, "", "nothing kept: all of it was passed on");
    let (all_out, _, error) = reading_out.await.unwrap();
    assert!(all_out == data && error.is_none());
    let (all_err, _, error) = reading_err.await.unwrap();
    assert_eq!(all_err, b"warning: careful\n");
    assert!(error.is_none());
    assert_eq!(
        status.await.unwrap().reason.as_deref(),
        Some("NonZeroExitCode")
    );

    let (ws, server, _client) = fake();
    let (out_chunks, out) = download_parts();
    let (err_chunks, err) = download_parts();
    let (status_tx, status) = oneshot::channel();
    let (reading_out, reading_err) = (read_all(out), read_all(err));
    server.unbounded_send(on(STDERR, b"half a line")).unwrap();
    server
        .unbounded_send(Err(tungstenite::Error::ConnectionClosed))
        .unwrap();
    message_loop(
        ws,
        true,
        None,
        Some(out_chunks),
        Some(err_chunks),
        status_tx,
    )
    .await;
    let (_, _, out_error) = reading_out.await.unwrap();
    let (all_err, _, err_error) = reading_err.await.unwrap();
    assert_eq!(all_err, b"half a line", "what came, then the error");
    assert_eq!(
        out_error.map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionAborted)
    );
    assert_eq!(
        err_error.map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionAborted)
    );
    assert!(status.await.is_err(), "no status");
}
