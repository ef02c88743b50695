//! Container probes (startup, readiness, liveness) as the kubelet's prober runs them: exec in
//! the container, TCP connect and HTTP GET from inside the pod's network namespace (a probe
//! thread joins it with setns; the pod has no address the host could reach).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::AsyncReadExt;

use super::container::Instance;
use super::pod::PodRuntime;
use super::status::Kind;
use super::{Node, lock, sys};
use crate::runtime::{ProcessExit, StreamOptions};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Startup,
    Readiness,
    Liveness,
}

impl Which {
    fn word(self) -> &'static str {
        match self {
            Which::Startup => "Startup",
            Which::Readiness => "Readiness",
            Which::Liveness => "Liveness",
        }
    }
}

struct Schedule {
    which: Which,
    probe: Probe,
    next: Instant,
    successes: i32,
    failures: i32,
}

impl Schedule {
    fn new(which: Which, probe: Option<Probe>, start: Instant) -> Option<Schedule> {
        let probe = probe?;
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as u64;
        Some(Schedule {
            which,
            probe,
            next: start + Duration::from_secs(delay),
            successes: 0,
            failures: 0,
        })
    }
    fn period(&self) -> Duration {
        Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64)
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.probe.timeout_seconds.unwrap_or(1).max(1) as u64)
    }
    fn success_threshold(&self) -> i32 {
        self.probe.success_threshold.unwrap_or(1).max(1)
    }
    fn failure_threshold(&self) -> i32 {
        self.probe.failure_threshold.unwrap_or(3).max(1)
    }
}

/// Whether the container has probes that gate `started` / `ready`.
pub fn gates(c: &Container) -> (bool, bool) {
    let startup = c.startup_probe.is_some();
    (startup, startup || c.readiness_probe.is_some())
}

impl Node {
    /// Probe a regular container's or a native sidecar's instance until it ends or the pod stops: startup first,
    /// then readiness (sets `ready`) and liveness (restarts the container on failure).
    pub(super) async fn probe(
        self: Arc<Self>,
        p: Arc<PodRuntime>,
        name: String,
        kind: Kind,
        instance: Arc<Instance>,
        c: Container,
    ) {
        let start = Instant::now();
        let mut startup = Schedule::new(Which::Startup, c.startup_probe.clone(), start);
        let mut others: Vec<Schedule> = [
            Schedule::new(Which::Readiness, c.readiness_probe.clone(), start),
            Schedule::new(Which::Liveness, c.liveness_probe.clone(), start),
        ]
        .into_iter()
        .flatten()
        .collect();
        if startup.is_none() && others.is_empty() {
            return;
        }
        let field = kind.field_path(&name);
        let field = Some(field.as_str());
        loop {
            let due: Vec<&mut Schedule> = match startup.as_mut() {
                Some(s) => vec![s],
                None => others.iter_mut().collect(),
            };
            let Some(wake) = due.iter().map(|s| s.next).min() else {
                // Started, and nothing else to probe.
                return;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = instance.wait() => return,
                _ = p.cancel.cancelled() => return,
            }
            let mut kill = None;
            let mut ready_change = None;
            let mut started_now = false;
            for s in due.into_iter().filter(|s| s.next <= Instant::now()) {
                s.next = Instant::now() + s.period();
                let result = self
                    .run_probe(&p, &instance, &c, &s.probe, s.timeout())
                    .await;
                if instance.exited().is_some() {
                    return;
                }
                match result {
                    Ok(()) => {
                        s.failures = 0;
                        s.successes += 1;
                        if s.successes >= s.success_threshold() {
                            match s.which {
                                Which::Startup => started_now = true,
                                Which::Readiness => ready_change = Some(true),
                                Which::Liveness => {}
                            }
                        }
                    }
                    Err(output) => {
                        s.successes = 0;
                        s.failures += 1;
                        let word = s.which.word();
                        self.event(
                            &p,
                            "Warning",
                            "Unhealthy",
                            &format!("{word} probe failed: {output}"),
                            field,
                        );
                        if s.failures >= s.failure_threshold() {
                            match s.which {
                                Which::Readiness => ready_change = Some(false),
                                Which::Startup | Which::Liveness => kill = Some(s.which),
                            }
                        }
                    }
                }
            }
            if started_now {
                startup = None;
                self.with_record(&p, &name, kind, |r| {
                    r.status.started = Some(true);
                    // Without a readiness probe, started means ready.
                    if c.readiness_probe.is_none() {
                        r.status.ready = true;
                    }
                });
            }
            if let Some(ready) = ready_change {
                let changed = lock(&p.state)
                    .record(&name, kind)
                    .is_some_and(|r| r.status.ready != ready);
                if changed {
                    self.with_record(&p, &name, kind, |r| r.status.ready = ready);
                }
            }
            if let Some(which) = kill {
                let word = which.word().to_lowercase();
                self.event(
                    &p,
                    "Normal",
                    "Killing",
                    &format!("Container {name} failed {word} probe, will be restarted"),
                    field,
                );
                let runc = self.runc.clone();
                let (id, all) = (instance.id.clone(), !instance.owns_pid_ns);
                let _ = tokio::task::spawn_blocking(move || runc.kill(&id, "SIGTERM", all)).await;
                if tokio::time::timeout(Duration::from_secs(2), instance.wait())
                    .await
                    .is_err()
                {
                    let runc = self.runc.clone();
                    let id = instance.id.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || runc.kill(&id, "SIGKILL", all)).await;
                }
                return;
            }
        }
    }

    /// One probe run: `Err` carries the kubelet-style failure output.
    async fn run_probe(
        &self,
        p: &PodRuntime,
        instance: &Arc<Instance>,
        c: &Container,
        probe: &Probe,
        timeout: Duration,
    ) -> Result<(), String> {
        if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            let streams = StreamOptions {
                stdin: false,
                stdout: true,
                stderr: true,
                tty: false,
            };
            let run = async {
                let mut process = instance
                    .clone()
                    .exec(&self.runc, self.reaper, command.clone(), streams)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut out = Vec::new();
                if let Some(mut r) = process.stdout.take() {
                    let _ = r.read_to_end(&mut out).await;
                }
                if let Some(mut r) = process.stderr.take() {
                    let _ = r.read_to_end(&mut out).await;
                }
                let text = String::from_utf8_lossy(&out).trim_end().to_string();
                match process.exit.await {
                    Ok(ProcessExit::Code(0)) => Ok(()),
                    Ok(ProcessExit::StartFailed(m)) => Err(m),
                    Ok(other) if text.is_empty() => {
                        Err(format!("command {command:?} exited with {}", other.code()))
                    }
                    _ => Err(text),
                }
            };
            return match tokio::time::timeout(timeout, run).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "command timed out: {:?} timed out after {}s",
                    command.join(" "),
                    timeout.as_secs()
                )),
            };
        }
        let netns = match *p.sandbox_pid.borrow() {
            Some(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            None => return Err("pod sandbox is not running".into()),
        };
        let port_of = |port: &IntOrString| -> Result<u16, String> {
            match port {
                IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
                IntOrString::String(name) => c
                    .ports
                    .iter()
                    .flatten()
                    .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                    .and_then(|cp| u16::try_from(cp.container_port).ok())
                    .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name)),
            }
        };
        let check: Box<dyn FnOnce() -> Result<(), String> + Send> =
            if let Some(tcp) = &probe.tcp_socket {
                let host = tcp
                    .host
                    .clone()
                    .unwrap_or_else(|| super::status::POD_IP.into());
                let port = port_of(&tcp.port)?;
                Box::new(move || connect(&host, port, timeout).map(drop))
            } else if let Some(http) = &probe.http_get {
                let host = http
                    .host
                    .clone()
                    .unwrap_or_else(|| super::status::POD_IP.into());
                let port = port_of(&http.port)?;
                let path = http.path.clone().unwrap_or_else(|| "/".into());
                if http.scheme.as_deref() == Some("HTTPS") {
                    return Err("HTTPS probes are not supported by the sandbox node".into());
                }
                Box::new(move || http_get(&host, port, &path, timeout))
            } else {
                // gRPC probes are not supported: treated as passing.
                return Ok(());
            };
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A thread of its own: setns changes the calling thread's namespace for good.
        let spawned = std::thread::Builder::new()
            .name("sandbox-probe".into())
            .spawn(move || {
                let result = sys::enter_net_namespace(&netns)
                    .map_err(|e| format!("entering the pod network: {e}"))
                    .and_then(|()| check());
                let _ = tx.send(result);
            });
        if spawned.is_err() {
            return Err("cannot start a probe thread".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("probe thread failed".into()))
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addr: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("dial tcp {host}:{port}: no address"))?;
    TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
            std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
            _ => e.to_string(),
        };
        format!("dial tcp {addr}: {why}")
    })
}

/// The kubelet's HTTP probe: success for 200..=399.
fn http_get(host: &str, port: u16, path: &str, timeout: Duration) -> Result<(), String> {
    let url = format!("http://{host}:{port}{path}");
    let mut stream = connect(host, port, timeout).map_err(|e| format!("Get {url:?}: {e}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("Get {url:?}: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .map_err(|e| format!("Get {url:?}: context deadline exceeded ({e})"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("Get {url:?}: malformed HTTP response"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}
