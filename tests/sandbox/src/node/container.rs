//! One container instance under runc: its overlay root, bundle, stdio or pty, main process,
//! and what `exec` and `attach` do with it. A restart makes a new instance (new ID, fresh
//! writable layer), as CRI does.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex as AsyncMutex, broadcast, mpsc, oneshot, watch};

use super::console::{resizer, with_console};
use super::fdio::FdStream;
use super::logs::{LogBuffer, Stream};
use super::reaper::Reaper;
use super::runc::{Runc, RuncStdio};
use super::spec::{ContainerPlan, ProcessPlan, oci_config, oci_process};
use super::sys;
use crate::runtime::{
    BoxRead, BoxWrite, Process, ProcessExit, RuntimeError, StreamOptions, TerminalSize,
};

/// What to create.
pub struct InstanceSpec {
    pub id: String,
    /// The bundle directory (holds config.json, the overlay's upper/work and the root mount).
    pub dir: PathBuf,
    /// The image root filesystem, the overlay's lower layer.
    pub lower: PathBuf,
    /// `plan.root` is replaced by the overlay mount point.
    pub plan: ContainerPlan,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log_path: PathBuf,
    pub owns_pid_ns: bool,
}

pub struct Instance {
    pub id: String,
    pub pid: i32,
    pub dir: PathBuf,
    pub process: ProcessPlan,
    pub owns_pid_ns: bool,
    pub log: Arc<LogBuffer>,
    pub started_at: jiff::Timestamp,
    tty: bool,
    stdin_enabled: bool,
    stdin_once: bool,
    stdin: Arc<AsyncMutex<Option<BoxWrite>>>,
    pty: Option<OwnedFd>,
    exit: watch::Receiver<Option<ProcessExit>>,
    execs: AtomicU64,
    attached: AtomicBool,
}

fn rootfs_of(dir: &Path) -> PathBuf {
    dir.join("rootfs")
}

fn read_pid(path: &Path) -> Result<i32, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("bad pid in {}: {e}", path.display()))
}

fn blocking_err(e: tokio::task::JoinError) -> String {
    format!("runc invocation panicked: {e}")
}

fn pipe_pair() -> Result<(OwnedFd, OwnedFd), String> {
    sys::pipe().map_err(|e| format!("pipe: {e}"))
}

fn stream(fd: OwnedFd) -> Result<FdStream, String> {
    FdStream::new(fd).map_err(|e| format!("registering fd: {e}"))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, String> {
    fd.try_clone().map_err(|e| format!("dup: {e}"))
}

/// Our side of a process's stdio.
struct Stdio {
    stdin: Option<BoxWrite>,
    stdout: Option<BoxRead>,
    stderr: Option<BoxRead>,
    pty: Option<OwnedFd>,
}

/// Run a runc invocation that starts a process (create or exec), with a pty (`tty`) or with
/// pipes for the streams asked for.
async fn start_with_stdio<F>(tty: bool, want: StreamOptions, run: F) -> Result<Stdio, String>
where
    F: FnOnce(Option<&str>, RuncStdio) -> Result<(), String> + Send + 'static,
{
    if tty {
        let ((), master) = with_console(move |sock| run(Some(sock), RuncStdio::default())).await?;
        let reader = stream(dup(&master)?)?;
        let writer = stream(dup(&master)?)?;
        return Ok(Stdio {
            stdin: want.stdin.then(|| Box::pin(writer) as BoxWrite),
            stdout: Some(Box::pin(reader)),
            stderr: None,
            pty: Some(master),
        });
    }
    let (stdin_child, stdin_ours) = if want.stdin {
        let (r, w) = pipe_pair()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let (stdout_ours, stdout_child) = if want.stdout {
        let (r, w) = pipe_pair()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let (stderr_ours, stderr_child) = if want.stderr {
        let (r, w) = pipe_pair()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let io = RuncStdio {
        stdin: stdin_child,
        stdout: stdout_child,
        stderr: stderr_child,
    };
    tokio::task::spawn_blocking(move || run(None, io))
        .await
        .map_err(blocking_err)??;
    Ok(Stdio {
        stdin: stdin_ours
            .map(stream)
            .transpose()?
            .map(|s| Box::pin(s) as BoxWrite),
        stdout: stdout_ours
            .map(stream)
            .transpose()?
            .map(|s| Box::pin(s) as BoxRead),
        stderr: stderr_ours
            .map(stream)
            .transpose()?
            .map(|s| Box::pin(s) as BoxRead),
        pty: None,
    })
}

impl Instance {
    /// Mount the overlay, write the bundle, `runc create`, learn the pid, `runc start`.
    pub async fn create(
        runc: &Arc<Runc>,
        reaper: &'static Reaper,
        mut spec: InstanceSpec,
    ) -> Result<Arc<Instance>, String> {
        let dir = spec.dir.clone();
        let merged = rootfs_of(&dir);
        let prepared = (|| -> std::io::Result<()> {
            for d in ["upper", "work", "rootfs"] {
                std::fs::create_dir_all(dir.join(d))?;
            }
            sys::mount_overlay(&spec.lower, &dir.join("upper"), &dir.join("work"), &merged)?;
            spec.plan.root = merged.clone();
            let config = serde_json::to_vec_pretty(&oci_config(&spec.plan))?;
            std::fs::write(dir.join("config.json"), config)
        })();
        if let Err(e) = prepared {
            let runc = runc.clone();
            let (id, d) = (spec.id.clone(), dir.clone());
            let _ = tokio::task::spawn_blocking(move || remove(&runc, &id, &d)).await;
            return Err(format!("preparing container root: {e}"));
        }

        let tty = spec.plan.process.terminal;
        let want = StreamOptions {
            stdin: spec.stdin,
            stdout: true,
            stderr: true,
            tty,
        };
        let pid_file = dir.join("pid");
        let (r, id, bundle, pf) = (runc.clone(), spec.id.clone(), dir.clone(), pid_file.clone());
        let started = start_with_stdio(tty, want, move |sock, io| {
            let _cgroups = super::cgroups::Lock::creating();
            r.create(&id, &bundle, &pf, sock, io)
        })
        .await;
        let stdio = match started {
            Ok(s) => s,
            Err(e) => {
                let runc = runc.clone();
                let (id, d) = (spec.id.clone(), dir.clone());
                let _ = tokio::task::spawn_blocking(move || remove(&runc, &id, &d)).await;
                return Err(e);
            }
        };
        let pid = match read_pid(&pid_file) {
            Ok(p) => p,
            Err(e) => {
                let runc = runc.clone();
                let (id, d) = (spec.id.clone(), dir.clone());
                let _ = tokio::task::spawn_blocking(move || remove(&runc, &id, &d)).await;
                return Err(e);
            }
        };
        let exited = reaper.watch(pid);
        let (exit_tx, exit_rx) = watch::channel(None);
        tokio::spawn(async move {
            let e = exited.await.unwrap_or(ProcessExit::Code(255));
            let _ = exit_tx.send(Some(e));
        });

        let log = LogBuffer::new(&spec.log_path);
        tokio::spawn(log.clone().pump_all(stdio.stdout, stdio.stderr));

        let (r, id) = (runc.clone(), spec.id.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || r.start(&id))
            .await
            .map_err(blocking_err)
            .and_then(|r| r)
        {
            let runc = runc.clone();
            let (id, d) = (spec.id.clone(), dir.clone());
            let _ = tokio::task::spawn_blocking(move || remove(&runc, &id, &d)).await;
            return Err(e);
        }

        Ok(Arc::new(Instance {
            id: spec.id,
            pid,
            dir,
            process: spec.plan.process,
            owns_pid_ns: spec.owns_pid_ns,
            log,
            started_at: jiff::Timestamp::now(),
            tty,
            stdin_enabled: spec.stdin,
            stdin_once: spec.stdin_once,
            stdin: Arc::new(AsyncMutex::new(stdio.stdin)),
            pty: stdio.pty,
            exit: exit_rx,
            execs: AtomicU64::new(0),
            attached: AtomicBool::new(false),
        }))
    }

    /// How the main process ended, once it has.
    pub fn exited(&self) -> Option<ProcessExit> {
        self.exit.borrow().clone()
    }

    pub async fn wait(&self) -> ProcessExit {
        let mut rx = self.exit.clone();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return ProcessExit::Code(255);
            }
        }
    }

    /// `runc exec` a process like the main one (same user, capabilities, environment).
    ///
    /// With a tty the process starts once the client's first terminal size arrives (or after
    /// a short wait), with that size set on the pty before it runs (OCI `consoleSize`): a
    /// client sends its size right after connecting, and a shell started on a 0x0 terminal
    /// would otherwise race it (`stty size` failing, a first prompt wrapped at column 0).
    pub async fn exec(
        self: Arc<Self>,
        runc: &Arc<Runc>,
        reaper: &'static Reaper,
        command: Vec<String>,
        streams: StreamOptions,
    ) -> Result<Process, RuntimeError> {
        if !streams.tty {
            return self.start_exec(runc, reaper, command, streams, None).await;
        }
        let (resize_tx, mut resize_rx) = mpsc::unbounded_channel::<TerminalSize>();
        let (client_in, mut inner_in) = tokio::io::duplex(64 * 1024);
        let (mut inner_out, client_out) = tokio::io::duplex(64 * 1024);
        let (exit_tx, exit_rx) = oneshot::channel();
        let runc = runc.clone();
        tokio::spawn(async move {
            let first = tokio::time::timeout(Duration::from_millis(300), resize_rx.recv())
                .await
                .ok()
                .flatten();
            let size = first.map(|s| (s.width, s.height));
            let mut process = match self.start_exec(&runc, reaper, command, streams, size).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = exit_tx.send(ProcessExit::StartFailed(e.to_string()));
                    return;
                }
            };
            if let Some(pty) = process.resize.take() {
                tokio::spawn(async move {
                    while let Some(size) = resize_rx.recv().await {
                        if pty.send(size).is_err() {
                            break;
                        }
                    }
                });
            }
            if let Some(mut to_pty) = process.stdin.take() {
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut inner_in, &mut to_pty).await;
                });
            }
            let output = process.stdout.take().map(|mut from_pty| {
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_pty, &mut inner_out).await;
                    let _ = inner_out.shutdown().await;
                })
            });
            let exit = process.exit.await.unwrap_or(ProcessExit::Code(255));
            if let Some(output) = output {
                // The pty drains right after the process ends (unless a child keeps it open).
                let _ = tokio::time::timeout(Duration::from_secs(1), output).await;
            }
            let _ = exit_tx.send(exit);
        });
        Ok(Process {
            stdin: streams.stdin.then(|| Box::pin(client_in) as BoxWrite),
            stdout: Some(Box::pin(client_out)),
            stderr: None,
            resize: Some(resize_tx),
            exit: exit_rx,
        })
    }

    async fn start_exec(
        &self,
        runc: &Arc<Runc>,
        reaper: &'static Reaper,
        command: Vec<String>,
        streams: StreamOptions,
        console_size: Option<(u16, u16)>,
    ) -> Result<Process, RuntimeError> {
        let n = self.execs.fetch_add(1, Ordering::Relaxed);
        let process_json = self.dir.join(format!("exec-{n}.json"));
        let pid_file = self.dir.join(format!("exec-{n}.pid"));
        let mut plan = self.process.clone();
        plan.args = command;
        plan.terminal = streams.tty;
        plan.console_size = console_size;
        let doc = serde_json::to_vec(&oci_process(&plan))
            .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        std::fs::write(&process_json, doc)
            .map_err(|e| RuntimeError::Internal(format!("writing exec spec: {e}")))?;

        let (r, id, pj, pf) = (
            runc.clone(),
            self.id.clone(),
            process_json.clone(),
            pid_file.clone(),
        );
        let started = start_with_stdio(streams.tty, streams, move |sock, io| {
            r.exec(&id, &pj, &pf, sock, io)
        })
        .await;
        let _ = std::fs::remove_file(&process_json);
        let stdio = match started {
            Ok(s) => s,
            Err(msg) => {
                let _ = std::fs::remove_file(&pid_file);
                return Ok(start_failed(
                    streams,
                    format!("OCI runtime exec failed: {msg}: unknown"),
                ));
            }
        };
        let pid = read_pid(&pid_file).map_err(RuntimeError::Internal)?;
        let _ = std::fs::remove_file(&pid_file);
        let exit = reaper.watch(pid);
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(exit.await.unwrap_or(ProcessExit::Code(255)));
        });
        let resize = match &stdio.pty {
            Some(master) => Some(resizer(dup(master).map_err(RuntimeError::Internal)?)),
            None => None,
        };
        Ok(Process {
            stdin: stdio.stdin,
            stdout: if streams.stdout || streams.tty {
                stdio.stdout
            } else {
                None
            },
            stderr: stdio.stderr,
            resize,
            exit: rx,
        })
    }

    /// Whether this is a `stdin: true` container nobody has attached to yet.
    pub fn awaits_first_attach(&self) -> bool {
        self.stdin_enabled && !self.attached.load(Ordering::SeqCst)
    }

    /// Connect to the main process: its stdin (pipe or pty) and its output.
    ///
    /// The first attach to a `stdin: true` container also gets what the process wrote before
    /// it (even if it has ended since): a short command run for an attaching client
    /// (`kubectl debug -i -- ls`, `kubectl run -i`) would otherwise race the client and lose
    /// its output. Later attaches see live output only, as with a real runtime.
    pub fn attach(&self, name: &str, streams: StreamOptions) -> Result<Process, RuntimeError> {
        if streams.stdin && !self.stdin_enabled {
            return Err(RuntimeError::BadRequest(format!(
                "container {name} is not configured with stdin: true; cannot attach to its stdin"
            )));
        }
        let tty = self.tty;
        let first = !self.attached.swap(true, Ordering::SeqCst) && self.stdin_enabled;
        let (replay, mut live) = self.log.replay_and_subscribe();
        let replay = if first { replay } else { Vec::new() };
        let log = self.log.clone();
        let (out_tx, out_rx) = tokio::io::duplex(64 * 1024);
        let (err_tx, err_rx) = tokio::io::duplex(64 * 1024);
        let want_out = streams.stdout || (tty && streams.stderr);
        let want_err = streams.stderr && !tty;
        tokio::spawn(async move {
            let (mut out_tx, mut err_tx) = (out_tx, err_tx);
            for (s, bytes) in replay {
                let target = match s {
                    Stream::Stderr if !tty => want_err.then_some(&mut err_tx),
                    _ => want_out.then_some(&mut out_tx),
                };
                if let Some(t) = target {
                    let _ = t.write_all(&bytes).await;
                }
            }
            let mut done = std::pin::pin!(async move {
                while !log.is_finished() {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            });
            loop {
                let msg = tokio::select! {
                    m = live.recv() => m,
                    _ = &mut done => {
                        // Output still queued, then the end.
                        match live.try_recv() {
                            Ok(m) => Ok(m),
                            Err(_) => break,
                        }
                    }
                };
                match msg {
                    Ok((s, bytes)) => {
                        let target = match s {
                            Stream::Stderr if !tty => want_err.then_some(&mut err_tx),
                            _ => want_out.then_some(&mut out_tx),
                        };
                        if let Some(t) = target {
                            let _ = t.write_all(&bytes).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });

        let stdin = if streams.stdin {
            let (client, mut from_client) = tokio::io::duplex(64 * 1024);
            let target = self.stdin.clone();
            let once = self.stdin_once && !tty;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut guard = target.lock().await;
                            match guard.as_mut() {
                                Some(w) => {
                                    if w.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                                None => break,
                            }
                        }
                    }
                }
                if once {
                    // stdinOnce: the first attach session's end closes the process's stdin.
                    target.lock().await.take();
                }
            });
            Some(Box::pin(client) as BoxWrite)
        } else {
            None
        };
        let resize = match (&self.pty, streams.tty) {
            (Some(master), true) => Some(resizer(dup(master).map_err(RuntimeError::Internal)?)),
            _ => None,
        };
        let (tx, rx) = oneshot::channel();
        let mut exit = self.exit.clone();
        tokio::spawn(async move {
            let e = loop {
                if let Some(e) = exit.borrow_and_update().clone() {
                    break e;
                }
                if exit.changed().await.is_err() {
                    break ProcessExit::Code(255);
                }
            };
            let _ = tx.send(e);
        });
        Ok(Process {
            stdin,
            stdout: want_out.then(|| Box::pin(out_rx) as BoxRead),
            stderr: want_err.then(|| Box::pin(err_rx) as BoxRead),
            resize,
            exit: rx,
        })
    }
}

/// A Process that never started: empty streams and the runtime's message as the exit.
fn start_failed(streams: StreamOptions, message: String) -> Process {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(ProcessExit::StartFailed(message));
    Process {
        stdin: streams
            .stdin
            .then(|| Box::pin(tokio::io::sink()) as BoxWrite),
        stdout: (streams.stdout || streams.tty).then(|| Box::pin(tokio::io::empty()) as BoxRead),
        stderr: (streams.stderr && !streams.tty).then(|| Box::pin(tokio::io::empty()) as BoxRead),
        resize: None,
        exit: rx,
    }
}

/// Blocking: delete the runc container (killing what is left), unmount its root, remove its
/// directory.
pub fn remove(runc: &Runc, id: &str, dir: &Path) {
    let _ = runc.delete_force(id);
    for m in sys::mounts_under(dir) {
        let _ = sys::unmount(&m);
    }
    let _ = std::fs::remove_dir_all(dir);
}
