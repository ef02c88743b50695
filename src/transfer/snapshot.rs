//! `kubectl distroless-debug snapshot pod/NAME -o FILE.tar[.gz]`: the target container's
//! whole filesystem view, as the target sees it, in one archive for offline analysis, with a
//! manifest of sha256s inside it so two snapshots can be diffed without unpacking them.
//!
//! The agent archives the target's `/` (never /proc, /sys or /dev, which are not files; the
//! target's volumes unless `--no-volumes`); the stream is filtered, hashed and written as it
//! arrives (`manifest.rs`), gzip-compressed for `.tar.gz`, into `FILE.partial`, renamed to
//! FILE only when complete: a snapshot on disk is never a truncated one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::base::error::Failure;
use crate::base::error::{CREATE_EXEC, Error, status_code};
use crate::base::exit::ExitStatus;
use crate::base::interrupt::Interrupts;
use crate::kube::cluster::Cluster;
use crate::kube::exec::{ExecError, Remote};
use crate::output::printer::Printer;
use crate::session::obtain::{Obtained, running_debug_container};
use crate::session::plan::Plan;
use crate::session::refusal::{NOT_IDENTIFIED, refusal};
use crate::session::spec::{agent_command, ending_the_container, run_command};
use crate::transfer::manifest::{MANIFEST_NAME, Manifest, RecordError, Recorder};
use crate::transfer::options::{SnapshotOptions, SnapshotOutput};
use crate::transfer::remote::{Bytes, Counter, Meter, Transferred, from_remote, rate};

/// Never in a snapshot: kernel views, not files (and /proc's walk never ends).
pub const ALWAYS_EXCLUDED: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Where the archive goes while it is written.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
    Stdout(BufWriter<std::io::Stdout>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
            Sink::Stdout(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Stdout(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Writes what is left (the gzip trailer) and syncs a file to disk.
    fn close(self) -> std::io::Result<()> {
        let file = match self {
            Sink::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Gzip(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
            Sink::Stdout(mut w) => return w.flush(),
        };
        file.sync_all()
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// The target container's volume mount paths, as the pod spec has them.
fn volume_paths(plan: &Plan) -> Vec<String> {
    plan.target
        .spec()
        .and_then(|c| c.volume_mounts.as_ref())
        .map(|mounts| mounts.iter().map(|m| m.mount_path.clone()).collect())
        .unwrap_or_default()
}

/// What the agent leaves out at the source.
pub fn agent_excludes(options: &SnapshotOptions, volumes: &[String]) -> Vec<String> {
    let mut excluded: Vec<String> = ALWAYS_EXCLUDED.iter().map(|p| p.to_string()).collect();
    if !options.volumes {
        excluded.extend(volumes.iter().cloned());
    }
    excluded.extend(
        options
            .filter
            .exclude
            .iter()
            .filter_map(|g| g.literal_path()),
    );
    excluded.sort();
    excluded.dedup();
    excluded
}

pub async fn run(
    options: &SnapshotOptions,
    cluster: &Cluster,
    progress: bool,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    // The file first: nothing is added to the pod for a snapshot that cannot be written.
    let (sink, partial) = match &options.output {
        SnapshotOutput::Stdout => (
            Sink::Stdout(BufWriter::with_capacity(1 << 20, std::io::stdout())),
            None,
        ),
        SnapshotOutput::File { path, gzip } => {
            let partial = partial_path(path);
            let file = File::create(&partial).map_err(|source| Error::LocalFile {
                what: "cannot write the snapshot",
                path: partial.clone(),
                source,
            })?;
            let file = BufWriter::with_capacity(1 << 20, file);
            let sink = if *gzip {
                Sink::Gzip(GzEncoder::new(file, Compression::fast()))
            } else {
                Sink::Plain(file)
            };
            (sink, Some(partial))
        }
    };
    let result = snapshot(options, cluster, progress, printer, sink).await;
    match (&result, &partial, &options.output) {
        (Ok(ExitStatus::Success), Some(partial), SnapshotOutput::File { path, .. }) => {
            std::fs::rename(partial, path).map_err(|source| Error::LocalFile {
                what: "cannot write the snapshot",
                path: path.clone(),
                source,
            })?;
        }
        (_, Some(partial), _) => {
            let _ = std::fs::remove_file(partial);
        }
        _ => {}
    }
    result
}

async fn snapshot(
    options: &SnapshotOptions,
    cluster: &Cluster,
    progress: bool,
    printer: &Printer,
    sink: Sink,
) -> Result<ExitStatus, Error> {
    let mut interrupts = Interrupts::install().map_err(|source| Error::Terminal { source })?;
    let (plan, obtained) =
        running_debug_container(&options.session, cluster, &mut interrupts, printer).await?;
    let mut session = match obtained {
        Obtained::Ready { session, .. } => session,
        Obtained::Interrupted(signal) => return Ok(ExitStatus::Interrupted(signal)),
    };
    let mut last_exit = None;
    let result = record(
        options,
        cluster,
        &plan,
        &session,
        progress,
        printer,
        sink,
        &mut interrupts,
        &mut last_exit,
    )
    .await;
    let interrupted = matches!(result, Ok(ExitStatus::Interrupted(_)));
    session.last_exec_exited(last_exit);
    session.teardown(printer, interrupted).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn record(
    options: &SnapshotOptions,
    cluster: &Cluster,
    plan: &Plan,
    session: &crate::session::teardown::Session,
    progress: bool,
    printer: &Printer,
    sink: Sink,
    interrupts: &mut Interrupts,
    last_exit: &mut Option<i32>,
) -> Result<ExitStatus, Error> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let remote = Remote {
        pods: &pods,
        pod: &session.pod,
        container: &session.container,
        tap: None,
    };
    let pod = plan.target.pod_name().to_string();
    let volumes = volume_paths(plan);
    let excluded = agent_excludes(options, &volumes);
    let mut argv = agent_command("tar", &session.target, &[]);
    for path in &excluded {
        argv.extend(["--exclude".into(), path.clone()]);
    }
    argv.extend(["--".into(), "/".into()]);
    // The snapshot's one exec is its last: the container ends with it (docs/agent.md).
    if session.has_agent {
        argv = ending_the_container(argv);
    }

    let filter = options.filter.clone();
    let counter = Counter::default();
    let meter = Meter::start(progress, "reading", &counter);
    let started = Instant::now();
    let transferred = from_remote(
        &remote,
        run_command(&options.session.image, &session.target, &argv),
        &counter,
        interrupts,
        move |reader| {
            let mut warnings = Vec::new();
            let mut recorder = Recorder::new(sink, filter);
            let result = recorder.copy_from(reader, &mut |w| warnings.push(w));
            (result.map(|()| recorder), warnings)
        },
    )
    .await;
    meter.stop();
    let transferred = transferred.map_err(|e| match e {
        ExecError::Session(error) => error,
        ExecError::Open(source) if status_code(&source) == Some(403) => Error::Forbidden {
            namespace: cluster.namespace.clone(),
            pod: pod.clone(),
            step: "exec into the debug container",
            missing: vec![CREATE_EXEC],
            source,
        },
        ExecError::Open(source) => Error::Exec {
            pod: pod.clone(),
            container: session.container.clone(),
            source,
        },
    })?;
    let ((recorded, warnings), remote_end) = match transferred {
        Transferred::Done { local, remote } => {
            *last_exit = remote.code.as_ref().ok().copied();
            (local, remote)
        }
        Transferred::Interrupted(signal) => {
            printer.note("interrupted: no snapshot was written");
            return Ok(ExitStatus::Interrupted(signal));
        }
    };
    if remote_end.code == Ok(NOT_IDENTIFIED)
        && let Some(refused) = refusal(&remote, &session.target).await
    {
        return Err(refused.into());
    }
    for warning in &warnings {
        printer.warn(warning);
    }
    let output_name = match &options.output {
        SnapshotOutput::File { path, .. } => path.display().to_string(),
        SnapshotOutput::Stdout => "stdout".to_string(),
    };
    let snapshot_error = |source: RecordError| {
        Error::from(SnapshotNotWritten {
            path: output_name.clone(),
            pod: pod.clone(),
            source,
        })
    };
    let recorder = recorded.map_err(&snapshot_error)?;
    // The whole stream arrived; a remote that then failed means nothing could be read.
    if remote_end.code != Ok(0) && recorder.files == 0 {
        return Err(Error::Stream {
            pod: pod.clone(),
            container: session.container.clone(),
            source: format!(
                "the agent's tar of / ended with {}: {}",
                remote_end
                    .code
                    .as_ref()
                    .map_or_else(|e| e.clone(), |c| format!("exit code {c}")),
                remote_end.stderr.trim()
            )
            .into(),
        });
    }
    let notes: Vec<String> = remote_end
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.strip_prefix("distroless-debug-agent tar: ")
                .unwrap_or(l)
                .to_string()
        })
        .collect();
    for note in &notes {
        printer.warn(note);
    }
    let manifest = Manifest {
        api_version: "distroless-debug/v1",
        kind: "SnapshotManifest",
        namespace: cluster.namespace.clone(),
        pod: pod.clone(),
        container: plan.target.container.clone(),
        image: plan
            .target
            .pod
            .spec
            .as_ref()
            .and_then(|s| {
                s.containers
                    .iter()
                    .find(|c| c.name == plan.target.container)
            })
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        created: jiff::Timestamp::now().to_string(),
        excluded,
        include: options
            .filter
            .include
            .iter()
            .map(|g| g.as_str().to_string())
            .collect(),
        exclude: options
            .filter
            .exclude
            .iter()
            .map(|g| g.as_str().to_string())
            .collect(),
        files: 0,
        bytes: 0,
        notes,
        entries: Vec::new(),
    };
    let (files, bytes) = (recorder.files, recorder.bytes);
    let mtime = jiff::Timestamp::now().as_second();
    let finished = tokio::task::spawn_blocking(move || {
        recorder
            .finish(manifest, mtime)
            .and_then(|sink| sink.close().map_err(RecordError::Output))
    })
    .await
    .map_err(|e| {
        Error::from(SnapshotNotWritten {
            path: output_name.clone(),
            pod: pod.clone(),
            source: RecordError::Output(std::io::Error::other(e)),
        })
    })?;
    finished.map_err(&snapshot_error)?;
    let elapsed = started.elapsed();
    let size = match &options.output {
        SnapshotOutput::File { path, .. } => std::fs::metadata(partial_path(path))
            .map(|m| format!(", {} on disk", Bytes(m.len())))
            .unwrap_or_default(),
        SnapshotOutput::Stdout => String::new(),
    };
    printer.note(&format!(
        "wrote {output_name}: {files} files, {} from pod {pod} ({}){size} in {:.1}s ({}/s); {MANIFEST_NAME} inside has every path with its sha256",
        Bytes(bytes),
        if options.volumes {
            "volumes included"
        } else {
            "without volumes"
        },
        elapsed.as_secs_f64(),
        Bytes(rate(counter.get(), elapsed)),
    ));
    Ok(ExitStatus::Success)
}

/// The snapshot file could not be written (or the archive feeding it broke); the partial
/// file was removed.
#[derive(Debug, thiserror::Error)]
#[error("could not write the snapshot of pod {pod} to {path}; nothing was kept")]
pub struct SnapshotNotWritten {
    pub path: String,
    pub pod: String,
    #[source]
    pub source: RecordError,
}

impl Failure for SnapshotNotWritten {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::flags::Environment;
    use crate::cmd::options::{Action, Options};
    use crate::transfer::glob::Glob;
    use crate::transfer::manifest::Filter;

    fn options(args: &[&str]) -> SnapshotOptions {
        use clap::Parser;
        let mut argv = vec!["kubectl-distroless_debug", "snapshot"];
        argv.extend_from_slice(args);
        let cli = crate::cmd::cli::Cli::try_parse_from(argv).expect("a command line");
        match Options::from_cli(cli, &Environment::default()).map(|o| o.action) {
            Ok(Action::Snapshot(s)) => s,
            other => panic!("not a snapshot: {other:?}"),
        }
    }

    #[test]
    fn the_agent_skips_kernel_views_volumes_without_volumes_and_literal_excludes() {
        let mut options = options(&["pod/web", "-o", "x.tar"]);
        let volumes = vec![
            "/data".to_string(),
            "/var/run/secrets/kubernetes.io/serviceaccount".to_string(),
        ];
        assert_eq!(
            agent_excludes(&options, &volumes),
            ["/dev", "/proc", "/sys"]
        );
        options.volumes = false;
        options.filter = Filter {
            include: Vec::new(),
            exclude: vec![
                Glob::new("/var/cache").unwrap(),
                Glob::new("*.log").unwrap(),
            ],
        };
        assert_eq!(
            agent_excludes(&options, &volumes),
            [
                "/data",
                "/dev",
                "/proc",
                "/sys",
                "/var/cache",
                "/var/run/secrets/kubernetes.io/serviceaccount"
            ]
        );
    }

    #[test]
    fn partial_files_sit_next_to_the_snapshot() {
        assert_eq!(
            partial_path(Path::new("out/incident.tar.gz")),
            Path::new("out/incident.tar.gz.partial")
        );
    }
}
