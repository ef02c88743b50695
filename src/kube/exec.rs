//! Running the shell or a command in the debug container, over the exec subresource.
//!
//! Interactive: a tty, the local terminal raw (see `terminal.rs`), the initial size and every
//! SIGWINCH sent on the resize channel, keystrokes (Ctrl-C included) forwarded as bytes.
//! Non-interactive in attach mode: stdout and stderr copied as they arrive, stdin forwarded
//! when asked (a non-interactive exec has its own connection: `exec_output.rs`). The exit
//! code is taken from the status frame (`NonZeroExitCode`, cause `ExitCode`), as kubectl's
//! `CodeExitError` does. Streams are dropped before `join`, as kube-rs requires.

use futures::SinkExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::{AttachParams, AttachedProcess};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};

use crate::base::error::Error;
use crate::base::interrupt::Interrupts;
use crate::base::tap::SharedTap;
use crate::base::terminal::{self, RawMode};

/// Where to exec.
pub struct Remote<'a> {
    pub pods: &'a Api<Pod>,
    pub pod: &'a str,
    pub container: &'a str,
    /// Who keeps a copy of what passes (the session's recording), if anyone.
    pub tap: Option<SharedTap>,
}

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The remote process exited with this code.
    Exited(i32),
    /// A local signal ended it (the caller tears down).
    Interrupted(i32),
}

/// What a captured (`-o json`) run printed.
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The remote exit code from the exec status frame, or why there is none.
pub fn exit_code_of(status: Option<&Status>) -> Result<i32, String> {
    let Some(status) = status else {
        return Err("the connection ended without an exit status".to_string());
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        let code = status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.trim().parse::<i32>().ok());
        if let Some(code) = code {
            return Ok(code);
        }
    }
    Err(status
        .message
        .clone()
        .unwrap_or_else(|| "the remote command failed".to_string()))
}

async fn open(
    remote: &Remote<'_>,
    command: Vec<String>,
    params: &AttachParams,
) -> Result<AttachedProcess, kube::Error> {
    remote.pods.exec(remote.pod, command, params).await
}

fn stream_error(remote: &Remote<'_>, message: impl Into<String>) -> Error {
    Error::Stream {
        pod: remote.pod.to_string(),
        container: remote.container.to_string(),
        source: message.into().into(),
    }
}

/// Opens the exec; the caller maps a refusal (403: try attach) itself.
pub async fn interactive(
    remote: &Remote<'_>,
    command: Vec<String>,
    interrupts: &mut Interrupts,
) -> Result<Ending, ExecError> {
    let params = AttachParams::interactive_tty().container(remote.container);
    let attached = open(remote, command, &params)
        .await
        .map_err(ExecError::Open)?;
    in_raw_terminal(remote, attached, interrupts)
        .await
        .map_err(ExecError::Session)
}

/// [`interactive`] for an attach-mode container: attaches to its main process (the shell)
/// instead of exec'ing one. The exit code is read from the container afterwards by the caller,
/// since an attach's status frame may carry none.
pub async fn interactive_attach(
    remote: &Remote<'_>,
    interrupts: &mut Interrupts,
) -> Result<Ending, ExecError> {
    let params = AttachParams::interactive_tty().container(remote.container);
    let attached = remote
        .pods
        .attach(remote.pod, &params)
        .await
        .map_err(ExecError::Open)?;
    match in_raw_terminal(remote, attached, interrupts).await {
        // No exit code in the frame: the caller reads it from the terminated container.
        Err(Error::Stream { .. }) => Ok(Ending::Exited(-1)),
        other => other.map_err(ExecError::Session),
    }
}

/// Drives an opened tty stream with the local terminal raw, then ends it: a session cut off by
/// a signal is aborted, not joined, since its remote side is torn down next.
async fn in_raw_terminal(
    remote: &Remote<'_>,
    mut attached: AttachedProcess,
    interrupts: &mut Interrupts,
) -> Result<Ending, Error> {
    let raw = RawMode::enable().map_err(|source| Error::Terminal { source })?;
    let ending = drive_terminal(remote, &mut attached, interrupts).await;
    drop(raw);
    match &ending {
        Ok(Ending::Interrupted(_)) => attached.abort(),
        _ => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), attached.join()).await;
        }
    }
    ending
}

async fn drive_terminal(
    remote: &Remote<'_>,
    attached: &mut AttachedProcess,
    interrupts: &mut Interrupts,
) -> Result<Ending, Error> {
    let (Some(mut remote_in), Some(mut remote_out), Some(status)) =
        (attached.stdin(), attached.stdout(), attached.take_status())
    else {
        return Err(stream_error(remote, "the exec stream has no stdin/stdout"));
    };
    let mut resize = attached.terminal_size();
    if let (Some(tx), Some(size)) = (resize.as_mut(), terminal::size()) {
        let _ = tx.send(size).await;
    }
    let mut winch =
        signal(SignalKind::window_change()).map_err(|source| Error::Terminal { source })?;
    let mut keys = terminal::spawn_stdin_reader();
    let mut keys_open = true;
    let mut status = Box::pin(status);
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdout = std::io::stdout();
    let tap = remote.tap.as_deref();
    loop {
        tokio::select! {
            read = remote_out.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    write_through(&mut stdout, &buf[..n]);
                    if let Some(tap) = tap { tap.stdout(&buf[..n]); }
                }
            },
            key = keys.recv(), if keys_open => match key {
                Some(bytes) => {
                    let _ = remote_in.write_all(&bytes).await;
                    if let Some(tap) = tap { tap.input(&bytes); }
                }
                None => { keys_open = false; let _ = remote_in.shutdown().await; }
            },
            _ = winch.recv() => {
                let size = terminal::size();
                if let (Some(tap), Some(size)) = (tap, size.as_ref()) {
                    tap.resize(size.width, size.height);
                }
                if let (Some(tx), Some(size)) = (resize.as_mut(), size) {
                    let _ = tx.send(size).await;
                }
            },
            signal = interrupts.recv() => return Ok(Ending::Interrupted(signal)),
            status = &mut status => {
                // Output may still be in flight behind the status frame.
                drain(&mut remote_out, &mut stdout, tap).await;
                return exit_code_of(status.as_ref()).map(Ending::Exited).map_err(|m| stream_error(remote, m));
            }
        }
    }
    let status = tokio::time::timeout(std::time::Duration::from_secs(2), status)
        .await
        .ok()
        .flatten();
    exit_code_of(status.as_ref())
        .map(Ending::Exited)
        .map_err(|m| stream_error(remote, m))
}

fn write_through(out: &mut impl std::io::Write, bytes: &[u8]) {
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

async fn drain(
    reader: &mut (impl AsyncRead + Unpin),
    out: &mut impl std::io::Write,
    tap: Option<&dyn crate::base::tap::Tap>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(Ok(n)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), reader.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        write_through(out, &buf[..n]);
        if let Some(tap) = tap {
            tap.stdout(&buf[..n]);
        }
    }
}

/// Why an exec did not give an [`Ending`].
#[derive(Debug)]
pub enum ExecError {
    /// The exec request was refused or failed (before any byte was exchanged).
    Open(kube::Error),
    Session(Error),
}

/// The line an attach-mode command waits for before it starts (see `spec::attach_command`):
/// sent once our attach is connected, so no output is written before anyone reads it.
pub const ATTACH_GATE: &[u8] = b"\n";

/// [`streamed`] for an attach-mode container whose main process is the command behind the
/// gate: attaches, opens the gate, then forwards our stdin if `stdin` (else keeps the remote's
/// open: its closing, when our attach ends early, is what stops the command). As with
/// [`interactive_attach`], the caller reads the exit code from the ended container.
pub async fn streamed_attach(
    remote: &Remote<'_>,
    stdin: bool,
    capture: Option<&mut Captured>,
    interrupts: &mut Interrupts,
) -> Result<Ending, ExecError> {
    let params = AttachParams::default()
        .container(remote.container)
        .stdin(true)
        .stdout(true)
        .stderr(true);
    let attached = remote
        .pods
        .attach(remote.pod, &params)
        .await
        .map_err(ExecError::Open)?;
    match drive_streamed(remote, attached, stdin, capture, interrupts.recv()).await {
        // No exit code in the frame: the caller reads it from the terminated container.
        Err(ExecError::Session(Error::Stream { .. })) => Ok(Ending::Exited(-1)),
        other => other,
    }
}

/// Drives an attach-mode command: the remote's stdin gets [`ATTACH_GATE`] first, then our
/// stdin and EOF if `forward`, else nothing more and the stream held open until the end.
async fn drive_streamed(
    remote: &Remote<'_>,
    mut attached: AttachedProcess,
    forward: bool,
    capture: Option<&mut Captured>,
    interrupted: impl std::future::Future<Output = i32>,
) -> Result<Ending, ExecError> {
    let (Some(remote_out), Some(remote_err), Some(status)) =
        (attached.stdout(), attached.stderr(), attached.take_status())
    else {
        return Err(ExecError::Session(stream_error(
            remote,
            "the exec stream has no stdout/stderr",
        )));
    };
    let capturing = capture.is_some();
    // An aborted exec never closes its output pipes (kube-rs's simplex halves see EOF only on
    // an explicit shutdown), so after a signal the pumps are told to stop, with what they have.
    let (stop_pumps, stop) = tokio::sync::watch::channel(false);
    let out_task = tokio::spawn(pump(
        remote_out,
        capturing.then(Vec::new),
        false,
        stop.clone(),
        remote.tap.clone(),
    ));
    let err_task = tokio::spawn(pump(
        remote_err,
        capturing.then(Vec::new),
        true,
        stop,
        remote.tap.clone(),
    ));
    let in_task = attached.stdin().map(|mut remote_in| {
        tokio::spawn(async move {
            if remote_in.write_all(ATTACH_GATE).await.is_err() {
                return;
            }
            if !forward {
                // Held open: its end tells the command that we are gone.
                std::future::pending::<()>().await;
            }
            let mut chunks = terminal::spawn_stdin_reader();
            while let Some(chunk) = chunks.recv().await {
                if remote_in.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            // EOF on our stdin becomes EOF on the remote's (a v5 close frame).
            let _ = remote_in.shutdown().await;
        })
    });

    let ending = tokio::select! {
        status = status => exit_code_of(status.as_ref()).map(Ending::Exited).map_err(|m| stream_error(remote, m)),
        signal = interrupted => Ok(Ending::Interrupted(signal)),
    };
    if let Some(task) = in_task {
        task.abort();
    }
    if matches!(ending, Ok(Ending::Interrupted(_))) {
        attached.abort();
        let _ = stop_pumps.send(true);
    }
    let grace = std::time::Duration::from_secs(2);
    let out = tokio::time::timeout(grace, out_task)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let err = tokio::time::timeout(grace, err_task)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    if !matches!(ending, Ok(Ending::Interrupted(_))) {
        let _ = tokio::time::timeout(grace, attached.join()).await;
    }
    if let Some(captured) = capture {
        captured.stdout = out.unwrap_or_default();
        captured.stderr = err.unwrap_or_default();
    }
    ending.map_err(ExecError::Session)
}

/// Copies a remote stream to our stdout/stderr as it arrives, or into a buffer, until it
/// ends or `stop` turns true (what is already in the pipe is still read first); the tap
/// sees every byte either way.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut buffer: Option<Vec<u8>>,
    to_stderr: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
    tap: Option<SharedTap>,
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut stopping = false;
    loop {
        let read = tokio::select! {
            biased;
            read = from.read(&mut buf) => read,
            changed = stop.wait_for(|stop| *stop), if !stopping => {
                // A dropped sender means nobody will ask: read to the end.
                stopping = true;
                if changed.is_ok() {
                    return buffer;
                }
                continue;
            }
        };
        match read {
            Ok(0) | Err(_) => return buffer,
            Ok(n) => match tap.as_deref() {
                Some(tap) if to_stderr => tap.stderr(&buf[..n]),
                Some(tap) => tap.stdout(&buf[..n]),
                None => {}
            },
        }
        match read {
            Ok(0) | Err(_) => return buffer,
            Ok(n) => match buffer.as_mut() {
                Some(b) => b.extend_from_slice(&buf[..n]),
                None if to_stderr => write_through(&mut std::io::stderr(), &buf[..n]),
                None => write_through(&mut std::io::stdout(), &buf[..n]),
            },
        }
    }
}

/// Runs `command` and collects its output; for teardown and `cleanup`, which need no terminal.
pub async fn run_quietly(
    remote: &Remote<'_>,
    command: Vec<String>,
) -> Result<(i32, String), kube::Error> {
    let params = AttachParams::default()
        .container(remote.container)
        .stdout(true)
        .stderr(true);
    let mut attached = open(remote, command, &params).await?;
    let (out, err, status) = (attached.stdout(), attached.stderr(), attached.take_status());
    // Never stopped early: the sender is dropped, which pump reads as "to the end".
    let (_, never) = tokio::sync::watch::channel(false);
    let out_task = out.map(|s| tokio::spawn(pump(s, Some(Vec::new()), false, never.clone(), None)));
    let err_task = err.map(|s| tokio::spawn(pump(s, Some(Vec::new()), true, never, None)));
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let mut text = Vec::new();
    for task in [out_task, err_task].into_iter().flatten() {
        if let Ok(Some(bytes)) = task.await {
            text.extend(bytes);
        }
    }
    let _ = attached.join().await;
    let code = exit_code_of(status.as_ref()).unwrap_or(-1);
    Ok((code, String::from_utf8_lossy(&text).trim().to_string()))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};

    use super::*;

    fn status(
        status: &str,
        reason: Option<&str>,
        code: Option<&str>,
        message: Option<&str>,
    ) -> Status {
        Status {
            status: Some(status.into()),
            reason: reason.map(String::from),
            message: message.map(String::from),
            details: code.map(|c| StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("ExitCode".into()),
                    message: Some(c.into()),
                    field: None,
                }]),
                ..StatusDetails::default()
            }),
            ..Status::default()
        }
    }

    #[test]
    fn success_is_zero() {
        assert_eq!(
            exit_code_of(Some(&status("Success", None, None, None))),
            Ok(0)
        );
    }

    #[test]
    fn a_non_zero_exit_code_passes_through() {
        let s = status(
            "Failure",
            Some("NonZeroExitCode"),
            Some("7"),
            Some("command terminated with non-zero exit code"),
        );
        assert_eq!(exit_code_of(Some(&s)), Ok(7));
    }

    #[test]
    fn other_failures_and_a_missing_status_are_errors_with_a_reason() {
        let s = status(
            "Failure",
            Some("InternalError"),
            None,
            Some("exec: \"nope\": executable file not found"),
        );
        assert_eq!(
            exit_code_of(Some(&s)),
            Err("exec: \"nope\": executable file not found".into())
        );
        assert!(
            exit_code_of(None)
                .unwrap_err()
                .contains("without an exit status")
        );
    }
}
