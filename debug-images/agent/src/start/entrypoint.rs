//! `entrypoint --socket PATH -- ARGV...`: the target container's main process in a copy of
//! the pod. It never runs ARGV by itself: it listens on PATH, and each `start` that
//! connects gets ARGV run once, with its overrides, its descriptors and its signals. One
//! app at a time; after it ends, the next `start` may run it again. SIGTERM or SIGINT (the
//! pod being deleted) ends the app first, then the entrypoint, with exit code 0.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fds::recv_with_fds;
use super::proto::{MAX_LINE, Reply, Request, parse_signal_line};
use super::spawn::{self, Ended, ExecPlan};
use crate::cli::EntrypointFlags;
use crate::exit::Status;
use crate::sys::{self, SignalSet};

/// How long an app gets between SIGTERM and SIGKILL when the entrypoint stops or its
/// `start` goes away.
const APP_GRACE: Duration = Duration::from_secs(5);

/// The held entrypoint: the original command and the app running now, if any.
struct Held {
    argv: Vec<OsString>,
    app: Mutex<Option<i32>>,
}

pub fn main(flags: EntrypointFlags) -> Status {
    // Blocked before any thread starts, so every thread inherits the mask and the signals
    // wait for the main loop below.
    let signals = match SignalSet::block(&[libc::SIGTERM, libc::SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("distroless-debug-agent: entrypoint: cannot block signals: {e}");
            return Status::Failure;
        }
    };
    let listener = match listen(&flags.socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "distroless-debug-agent: entrypoint: cannot listen on {}: {e}; its directory \
                 must exist and be writable by uid {}",
                flags.socket.display(),
                sys::effective_uid()
            );
            return Status::Failure;
        }
    };
    eprintln!(
        "distroless-debug-agent: entrypoint held before {}; `start` in the debug container \
         runs it (socket {})",
        shell_words(&flags.argv),
        flags.socket.display()
    );
    let held = Arc::new(Held {
        argv: flags.argv,
        app: Mutex::new(None),
    });
    let accepting = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let held = accepting.clone();
            std::thread::spawn(move || serve(&held, stream));
        }
    });
    loop {
        if let Some(signal) = signals.wait(Duration::from_secs(3600)) {
            eprintln!("distroless-debug-agent: entrypoint: signal {signal}, stopping");
            stop_app(&held);
            let _ = std::fs::remove_file(&flags.socket);
            return Status::Success;
        }
    }
}

/// Binds the socket, replacing a stale one left by an earlier run, readable and writable by
/// every uid of the pod (the debug container may run as another user).
fn listen(path: &Path) -> io::Result<UnixListener> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// SIGTERM to the running app's process group, SIGKILL after the grace period.
fn stop_app(held: &Held) {
    let Some(pid) = *lock(&held.app) else {
        return;
    };
    let _ = sys::kill(-pid, libc::SIGTERM);
    let deadline = Instant::now() + APP_GRACE;
    while Instant::now() < deadline {
        if lock(&held.app).is_none() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = sys::kill(-pid, libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && lock(&held.app).is_some() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `start`: read its request, run the app, report until it ends.
fn serve(held: &Held, mut stream: UnixStream) {
    let (request, stdio, rest) = match read_request(&stream) {
        Ok(r) => r,
        Err(message) => {
            let _ = reply(&mut stream, &Reply::Error { message, code: 125 });
            return;
        }
    };
    if let Err(not_run) = run(held, &mut stream, request, stdio, rest) {
        let _ = reply(
            &mut stream,
            &Reply::Error {
                message: not_run.message,
                code: not_run.code,
            },
        );
    }
}

fn reply(stream: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    stream.write_all(reply.to_line().as_bytes())
}

/// The request line, the three descriptors sent with it, and whatever followed the line.
fn read_request(stream: &UnixStream) -> Result<(Request, [OwnedFd; 3], Vec<u8>), String> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    let newline = loop {
        let (n, received) = recv_with_fds(stream.as_fd(), &mut buf)
            .map_err(|e| format!("reading the request: {e}"))?;
        fds.extend(received);
        if n == 0 {
            return Err("the request ended before its newline".into());
        }
        line.extend_from_slice(&buf[..n]);
        if let Some(at) = line.iter().position(|&b| b == b'\n') {
            break at;
        }
        if line.len() > MAX_LINE {
            return Err("the request line is too long".into());
        }
    };
    let _ = stream.set_read_timeout(None);
    let rest = line.split_off(newline + 1);
    let text = std::str::from_utf8(&line).map_err(|_| "the request is not UTF-8".to_string())?;
    let request = Request::parse(text)?;
    let stdio: [OwnedFd; 3] = fds.try_into().map_err(|fds: Vec<OwnedFd>| {
        format!(
            "the request came with {} descriptors, not stdin, stdout and stderr",
            fds.len()
        )
    })?;
    Ok((request, stdio, rest))
}

/// The container's own environment with the request's overrides on top.
fn environment(request: &Request) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !k.to_str().is_some_and(|k| request.env.contains_key(k)))
        .collect();
    env.extend(
        request
            .env
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    env
}

fn run(
    held: &Held,
    stream: &mut UnixStream,
    request: Request,
    stdio: [OwnedFd; 3],
    rest: Vec<u8>,
) -> Result<(), spawn::NotRun> {
    let mut argv = held.argv.clone();
    argv.extend(request.args.iter().map(OsString::from));
    let plan = ExecPlan::new(&argv, &environment(&request))?;
    let child = {
        let mut app = lock(&held.app);
        if let Some(pid) = *app {
            return Err(spawn::NotRun {
                message: format!("already running: pid {pid}"),
                code: 125,
            });
        }
        let child =
            spawn::spawn(&plan, &stdio, request.wait_for_trace).map_err(|e| spawn::NotRun {
                message: format!("cannot start {}: {e}", plan.name),
                code: 125,
            })?;
        *app = Some(child.pid);
        child
    };
    // The app holds them now; ours would keep the caller's streams open after it ends.
    drop(stdio);
    let pid = child.pid;
    let finished = Arc::new(AtomicBool::new(false));
    if let Ok(reader) = stream.try_clone() {
        let finished = finished.clone();
        std::thread::spawn(move || forward_signals(pid, rest, reader, &finished));
    }
    let mut ended = None;
    if request.wait_for_trace {
        match spawn::wait(pid, true) {
            Ok(Ended::Stopped) => {}
            other => ended = other.ok(),
        }
    }
    if ended.is_none() {
        let _ = reply(stream, &Reply::Started(pid));
        if let Err(not_run) = child.wait_exec() {
            let _ = spawn::wait(pid, false);
            *lock(&held.app) = None;
            finished.store(true, Ordering::SeqCst);
            return Err(not_run);
        }
    }
    let ended = match ended {
        Some(e) => Ok(e),
        None => spawn::wait(pid, false),
    };
    *lock(&held.app) = None;
    finished.store(true, Ordering::SeqCst);
    let _ = reply(
        stream,
        &match ended {
            Ok(Ended::Exited(code)) => Reply::Exit(code),
            Ok(Ended::Killed(signal)) => Reply::Signal(signal),
            Ok(Ended::Stopped) | Err(_) => Reply::Error {
                message: format!("lost track of pid {pid}"),
                code: 125,
            },
        },
    );
    Ok(())
}

/// Reads the client's `{"signal":N}` lines and signals the app's process group. When the
/// client goes away while the app runs (its session ended), the app is ended too:
/// SIGTERM, SIGKILL after the grace period, so that it never outlives its `start`.
fn forward_signals(pid: i32, rest: Vec<u8>, reader: UnixStream, finished: &AtomicBool) {
    let lines = BufReader::new(io::Cursor::new(rest).chain(reader.take(u64::MAX)));
    for line in lines.lines() {
        let Ok(line) = line else { break };
        if finished.load(Ordering::SeqCst) {
            return;
        }
        match parse_signal_line(&line) {
            Ok(signal) => {
                let _ = sys::kill(-pid, signal);
            }
            Err(e) => eprintln!("distroless-debug-agent: entrypoint: {e}"),
        }
    }
    if finished.load(Ordering::SeqCst) {
        return;
    }
    let _ = sys::kill(-pid, libc::SIGTERM);
    let deadline = Instant::now() + APP_GRACE;
    while Instant::now() < deadline {
        if finished.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !finished.load(Ordering::SeqCst) {
        let _ = sys::kill(-pid, libc::SIGKILL);
    }
}

/// ARGV as one line for the log.
fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
