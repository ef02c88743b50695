//! The output of a non-interactive session or runbook step, over our own exec connection
//! (`exec_stream.rs`) rather than kube's `AttachedProcess`.
//!
//! kube-rs moves each output stream through a 1 KiB pipe between its task and ours: 128 MiB
//! of output took as long as `kubectl exec` (docs/benchmarks.md). Here the message loop hands
//! stdout and stderr over in 256 KiB chunks to one blocking thread each, which writes them
//! where they go (our stdout and stderr, or the `-o json` capture) and shows them to the
//! session's recording. What stays as it was: the exit code from the status frame, stderr
//! apart from stdout, our stdin forwarded (then its end) when asked, and a signal (or a
//! runbook step's time limit) cutting the connection with the output so far kept. A
//! connection that breaks ends with what came, then the same error as before: no status.

use std::io::{BufRead, Write};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::base::tap::SharedTap;
use crate::base::terminal;
use crate::kube::exec::{Captured, Ending, ExecError, Remote, exit_code_of};
use crate::kube::exec_stream::{self, Received, stdin_frame};

/// How long a cut-off exec's output may take to reach its writers.
const GRACE: Duration = Duration::from_secs(2);

/// A command without a terminal: output streamed (or captured), stdin forwarded if `stdin`.
pub async fn streamed(
    remote: &Remote<'_>,
    command: Vec<String>,
    stdin: bool,
    capture: Option<&mut Captured>,
    interrupts: &mut Interrupts,
) -> Result<Ending, ExecError> {
    streamed_until(remote, command, stdin, capture, interrupts.recv()).await
}

/// [`streamed`], ended early by whatever `interrupted` resolves to (a signal number): a
/// fan-out ends a step at its time limit this way, with the output so far kept.
pub async fn streamed_until(
    remote: &Remote<'_>,
    command: Vec<String>,
    stdin: bool,
    capture: Option<&mut Captured>,
    interrupted: impl std::future::Future<Output = i32>,
) -> Result<Ending, ExecError> {
    let (output, ending) = exec_stream::output(remote, command, stdin)
        .await
        .map_err(ExecError::Open)?;
    drive(remote, output, ending, None, stdin, capture, interrupted).await
}

/// The line that lets a gated command run (the agent's `--handshake`); closing its stdin
/// instead, as dropping a [`Gated`] does, runs nothing.
pub const GO: &[u8] = b"go\n";

/// An exec opened before anyone knew whether it should run: its command waits for [`GO`]
/// on stdin. Dropping it aborts it.
pub struct Gated {
    output: exec_stream::Output,
    ending: exec_stream::Ending,
}

/// Opens `command` (an agent verb with `--handshake`) with stdin, for [`Gated::run`] later.
pub async fn open_gated(remote: &Remote<'_>, command: Vec<String>) -> Result<Gated, kube::Error> {
    let (output, ending) = exec_stream::output(remote, command, true).await?;
    Ok(Gated { output, ending })
}

impl Gated {
    /// Says go, then runs as [`streamed_until`] does; without `stdin` the command's stdin
    /// ends right after the line.
    pub async fn run(
        self,
        remote: &Remote<'_>,
        stdin: bool,
        capture: Option<&mut Captured>,
        interrupted: impl std::future::Future<Output = i32>,
    ) -> Result<Ending, ExecError> {
        drive(
            remote,
            self.output,
            self.ending,
            Some(GO),
            stdin,
            capture,
            interrupted,
        )
        .await
    }
}

/// Runs an opened exec to its end: `first` (if any) on its stdin, then ours if `forward`.
async fn drive(
    remote: &Remote<'_>,
    output: exec_stream::Output,
    ending: exec_stream::Ending,
    first: Option<&'static [u8]>,
    forward: bool,
    capture: Option<&mut Captured>,
    interrupted: impl std::future::Future<Output = i32>,
) -> Result<Ending, ExecError> {
    // Stdin first: a gated command's go is on its way before the writers' threads start.
    let in_task = output.stdin.map(|frames| {
        tokio::spawn(async move {
            if let Some(first) = first
                && frames.send(stdin_frame(first)).await.is_err()
            {
                return;
            }
            if !forward {
                return;
            }
            let mut chunks = terminal::spawn_stdin_reader();
            while let Some(chunk) = chunks.recv().await {
                if frames.send(stdin_frame(&chunk)).await.is_err() {
                    return;
                }
            }
            // EOF on our stdin: dropping `frames` ends the remote's (a v5 close frame).
        })
    });
    let capturing = capture.is_some();
    let out_task = writer(output.stdout, capturing, Stream::Stdout, remote.tap.clone());
    let err_task = writer(output.stderr, capturing, Stream::Stderr, remote.tap.clone());
    let exec_stream::Ending {
        status,
        output: connection,
    } = ending;
    let ended = tokio::select! {
        status = status => exit_code_of(status.ok().as_ref()).map(Ending::Exited).map_err(|m| stream_error(remote, m)),
        signal = interrupted => Ok(Ending::Interrupted(signal)),
    };
    if let Some(task) = in_task {
        task.abort();
    }
    let (out, err) = if matches!(ended, Ok(Ending::Interrupted(_))) {
        // Cut: the remote side is torn down next; the writers get what already came.
        connection.abort();
        (
            tokio::time::timeout(GRACE, out_task).await.ok(),
            tokio::time::timeout(GRACE, err_task).await.ok(),
        )
    } else {
        // Everything the remote wrote before its status is handed over, then the queues end.
        let _ = connection.await;
        (Some(out_task.await), Some(err_task.await))
    };
    if let Some(captured) = capture {
        captured.stdout = out.and_then(Result::ok).flatten().unwrap_or_default();
        captured.stderr = err.and_then(Result::ok).flatten().unwrap_or_default();
    }
    ended.map_err(ExecError::Session)
}

fn stream_error(remote: &Remote<'_>, message: String) -> Error {
    Error::Stream {
        pod: remote.pod.to_string(),
        container: remote.container.to_string(),
        source: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A blocking thread that writes `received` to our stdout or stderr as each chunk comes (or
/// keeps it, when `capturing`), showing each to the tap; what it kept, at the end.
fn writer(
    mut received: Received,
    capturing: bool,
    stream: Stream,
    tap: Option<SharedTap>,
) -> JoinHandle<Option<Vec<u8>>> {
    tokio::task::spawn_blocking(move || {
        let mut kept = capturing.then(Vec::new);
        // A broken connection ends the stream; the caller reports it (no status).
        while let Ok(piece) = received.fill_buf() {
            if piece.is_empty() {
                break;
            }
            match (tap.as_deref(), stream) {
                (Some(tap), Stream::Stdout) => tap.stdout(piece),
                (Some(tap), Stream::Stderr) => tap.stderr(piece),
                (None, _) => {}
            }
            match (kept.as_mut(), stream) {
                (Some(kept), _) => kept.extend_from_slice(piece),
                // A reader that went away (`| head`) does not end the command: as before,
                // the rest is read and dropped.
                (None, Stream::Stdout) => write_through(&mut std::io::stdout(), piece),
                (None, Stream::Stderr) => write_through(&mut std::io::stderr(), piece),
            }
            let n = piece.len();
            received.consume(n);
        }
        kept
    })
}

fn write_through(out: &mut impl Write, bytes: &[u8]) {
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}
