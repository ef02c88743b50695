//! `start [--wait-for-trace] [KEY=VALUE...] [--] [ARGS...]`, in the debug container: asks
//! the held entrypoint to run the target's command with the caller's stdin, stdout and
//! stderr, forwards the signals a terminal or `kill` sends, and exits as the app did.
//! Nothing of its own is printed on success: the output is the app's.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use super::SOCKET_ENV;
use super::fds::send_with_fds;
use super::proto::{FORWARDED, Reply, Request, signal_line};
use crate::cli::StartFlags;
use crate::exit::Status;
use crate::sys::SignalSet;

pub fn main(flags: StartFlags) -> Status {
    match start(flags) {
        Ok(status) => status,
        Err(message) => {
            eprintln!("start: {message}");
            Status::StartFailed
        }
    }
}

/// The socket: `--socket`, else the environment the copy's debug container has.
fn socket_path(flag: Option<PathBuf>, env: Option<std::ffi::OsString>) -> Result<PathBuf, String> {
    flag.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .ok_or_else(|| {
            format!(
                "no held target here: {SOCKET_ENV} is not set; start works in a `--copy` session"
            )
        })
}

/// The exit status `start` reports for a reply that ends the app.
fn status_of(reply: &Reply) -> Option<Status> {
    let code = match reply {
        Reply::Started(_) => return None,
        Reply::Exit(code) => *code,
        Reply::Signal(n) => 128 + n,
        Reply::Error { code, .. } => *code,
    };
    Some(Status::App(u8::try_from(code).unwrap_or(255)))
}

fn start(flags: StartFlags) -> Result<Status, String> {
    let socket = socket_path(flags.socket, std::env::var_os(SOCKET_ENV))?;
    let mut stream = UnixStream::connect(&socket).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            format!(
                "uid {} may not connect to it (the held entrypoint makes it mode 0666; \
                 check the mode of its directory)",
                crate::sys::effective_uid()
            )
        } else {
            "the target container's entrypoint is not running (see `kubectl logs` of the \
             copy's target container)"
                .to_string()
        };
        format!(
            "cannot reach the held target at {}: {e}; {hint}",
            socket.display()
        )
    })?;
    // Blocked before the reader thread starts: the signals wait here to be forwarded.
    let signals = SignalSet::block(&FORWARDED).map_err(|e| format!("cannot block signals: {e}"))?;
    let request = Request {
        env: flags.env.into_iter().collect(),
        args: flags.args,
        wait_for_trace: flags.wait_for_trace,
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    use std::os::fd::AsRawFd;
    let fds = [
        stdin.as_fd().as_raw_fd(),
        stdout.as_fd().as_raw_fd(),
        stderr.as_fd().as_raw_fd(),
    ];
    send_with_fds(stream.as_fd(), request.to_line().as_bytes(), &fds)
        .map_err(|e| format!("sending the request to {}: {e}", socket.display()))?;

    let (tx, rx) = mpsc::channel();
    let reader = stream
        .try_clone()
        .map_err(|e| format!("cannot read from {}: {e}", socket.display()))?;
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(Reply::parse(&line)).is_err() {
                return;
            }
        }
    });
    loop {
        if let Some(signal) = signals.wait(Duration::from_millis(50)) {
            // The app's exit (by that signal, or not) decides our status.
            let _ = stream.write_all(signal_line(signal).as_bytes());
        }
        loop {
            match rx.try_recv() {
                Ok(Ok(Reply::Started(pid))) if flags.wait_for_trace => eprintln!(
                    "start: pid {pid} is stopped before its first instruction; attach a \
                     tracer (strace -f -p {pid}), then let it go on: kill -CONT {pid}"
                ),
                Ok(Ok(Reply::Error { message, code })) => {
                    eprintln!("start: {message}");
                    return Ok(Status::App(u8::try_from(code).unwrap_or(125)));
                }
                Ok(Ok(reply)) => {
                    if let Some(status) = status_of(&reply) {
                        return Ok(status);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(format!(
                        "the held target at {} closed the connection before the app ended",
                        socket.display()
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_from_the_flag_else_the_environment_else_a_clear_refusal() {
        assert_eq!(
            socket_path(Some("/s".into()), Some("/e".into())),
            Ok(PathBuf::from("/s"))
        );
        assert_eq!(
            socket_path(None, Some("/e".into())),
            Ok(PathBuf::from("/e"))
        );
        assert_eq!(
            socket_path(None, Some("".into())),
            Err(
                "no held target here: DISTROLESS_DEBUG_START_SOCKET is not set; start works \
                 in a `--copy` session"
                    .into()
            )
        );
        assert!(socket_path(None, None).is_err());
    }

    #[test]
    fn exit_status_is_the_apps_and_128_plus_a_signal() {
        assert_eq!(status_of(&Reply::Started(3)), None);
        assert_eq!(status_of(&Reply::Exit(3)), Some(Status::App(3)));
        assert_eq!(status_of(&Reply::Signal(2)), Some(Status::App(130)));
    }
}
