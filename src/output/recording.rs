//! The local recording of a session: an asciicast v2 file (what `asciinema play` replays) and
//! a JSON sidecar that `history` lists.
//!
//! asciicast v2 (docs.asciinema.org/manual/asciicast/v2) knows four event codes: `"o"` output,
//! `"i"` input, `"m"` marker, `"r"` resize. It has no stderr, so a session without a terminal
//! writes its stdout as `"o"` events in `ID.cast` and its stderr as `"o"` events in a second
//! asciicast file, `ID.stderr.cast`, on the same clock; each replays on its own, and neither
//! mixes the two streams. With a terminal there is one stream (the terminal's), `"r"` on
//! every resize, and `"i"` only when asked (`--record-input`: what is typed can be a password).
//! The last event is an `"m"` marker naming the exit code.
//!
//! Files are created 0600 in a 0700 directory (they can hold secrets seen in a session). A
//! size cap per session ends the recording with an `"m"` marker and drops what follows; the
//! session's streams hand their bytes to a writer thread (which does the UTF-8 and JSON work
//! and the writes) and never wait for it: output that outruns the writer by more than 4 MiB
//! ends the recording the same way, and a write that fails ends it quietly.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::base::tap::Tap;

const DIR: &str = "kubectl-distroless-debug";
/// Default size cap of one session's recording files together.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Whether and where a session is recorded, from the flags and the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOptions {
    pub enabled: bool,
    /// `--record FILE`: the asciicast file; else `sessions/ID.cast` in the state directory.
    pub path: Option<PathBuf>,
    /// `--record-input`: keystrokes as `"i"` events.
    pub input: bool,
    pub max_bytes: u64,
    /// The kubeconfig context, for the sidecar (filled in once the cluster is connected).
    pub context: Option<String>,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            enabled: true,
            path: None,
            input: false,
            max_bytes: DEFAULT_MAX_BYTES,
            context: None,
        }
    }
}

impl RecordOptions {
    /// No recording: commands that run no session of their own (`cp`, `snapshot`).
    pub fn off() -> Self {
        RecordOptions {
            enabled: false,
            ..RecordOptions::default()
        }
    }
}

/// Bytes seen per stream (all of them, also past the cap).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bytes {
    pub stdout: u64,
    pub stderr: u64,
    pub input: u64,
}

/// The sidecar `sessions/ID.json`: what `history` lists. Versioned: fields are only added.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SessionRecord {
    pub api_version: String,
    pub kind: String,
    pub id: String,
    pub context: Option<String>,
    pub namespace: String,
    pub pod: String,
    /// The target container.
    pub target: String,
    pub debug_container: String,
    pub image: String,
    pub profile: String,
    pub user: String,
    pub reason: Option<String>,
    pub interactive: bool,
    /// RFC 3339.
    pub start: String,
    pub end: Option<String>,
    pub exit_code: Option<i32>,
    pub interrupted: bool,
    pub recording: Option<PathBuf>,
    pub stderr_recording: Option<PathBuf>,
    pub bytes: Bytes,
    pub truncated: bool,
    /// The names of the Events written on the pod.
    pub events: Vec<String>,
    /// What of the trail could not be done once the session had ended: an Event that its
    /// hand-off (session/handoff.rs) could not write.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// `$XDG_STATE_HOME/kubectl-distroless-debug/sessions` (when absolute, as the XDG spec says),
/// else `$HOME/.local/state/kubectl-distroless-debug/sessions`.
pub fn sessions_dir_from(xdg_state_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match xdg_state_home.filter(|d| Path::new(d).is_absolute()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(home.filter(|h| !h.is_empty())?).join(".local/state"),
    };
    Some(base.join(DIR).join("sessions"))
}

pub fn sessions_dir() -> Option<PathBuf> {
    let var = |name| std::env::var(name).ok();
    sessions_dir_from(var("XDG_STATE_HOME").as_deref(), var("HOME").as_deref())
}

/// Creates `dir` (and its parents) and makes it 0700 even when it was there already.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// A new file, 0600 whatever the umask, replacing what was there.
fn private_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// A session id: its start (UTC, sortable) and five random characters.
pub fn new_id(start: jiff::Timestamp) -> String {
    let mut random = [0u8; 5];
    let _ = getrandom::fill(&mut random);
    let suffix: String = random
        .iter()
        .map(|b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(*b) % 36]))
        .collect();
    format!("{}-{suffix}", start.strftime("%Y%m%dT%H%M%SZ"))
}

/// `x.cast` → `x.stderr.cast`; any other name gets `.stderr.cast` appended.
pub fn stderr_path(cast: &Path) -> PathBuf {
    let text = cast.to_string_lossy();
    PathBuf::from(match text.strip_suffix(".cast") {
        Some(stem) => format!("{stem}.stderr.cast"),
        None => format!("{text}.stderr.cast"),
    })
}

/// One asciicast stream being written: its file and the bytes of an unfinished UTF-8
/// character at the end of the last chunk (events carry text, and a character can be split
/// across reads).
struct Cast {
    file: File,
    pending: Vec<u8>,
}

impl Cast {
    fn create(path: &Path, header: &serde_json::Value) -> std::io::Result<(Cast, u64)> {
        let mut file = private_file(path)?;
        let line = format!("{header}\n");
        file.write_all(line.as_bytes())?;
        Ok((
            Cast {
                file,
                pending: Vec::new(),
            },
            line.len() as u64,
        ))
    }

    /// The text of `bytes` that is complete UTF-8 so far (invalid bytes become U+FFFD).
    fn text(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }
}

struct Inner {
    out: Cast,
    err: Option<Cast>,
    written: u64,
    /// The cap was reached (or a write failed): nothing more is written.
    stopped: bool,
    truncated: bool,
}

/// Which file an event goes to.
#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// What the session hands to the recording's writer thread.
enum Message {
    /// Bytes of a stream, at `time` seconds since the start, under event `code`.
    Event {
        stream: Stream,
        code: &'static str,
        time: f64,
        bytes: Vec<u8>,
    },
    /// The output outran the writer by more than [`BEHIND_BYTES`]: the recording ends here.
    FellBehind { time: f64 },
    /// The closing marker; the thread then ends.
    Finish { time: f64, ending: String },
}

/// How many bytes may wait for the writer thread. When the session's output outruns the
/// writer by more (binary output by the hundred MiB: every invalid byte becomes U+FFFD in
/// the JSON), the recording ends there with a marker saying so: the session never waits
/// for it.
const BEHIND_BYTES: usize = 4 * 1024 * 1024;

/// A session's recording in progress; a [`Tap`] for the exec streams.
///
/// The exec streams only count the bytes and queue a copy: the UTF-8 and JSON work and the
/// file writes happen on a writer thread, so the output reaches the user at the connection's
/// speed.
pub struct Recording {
    start: Instant,
    input: bool,
    pub stderr_path: Option<PathBuf>,
    bytes: Mutex<Bytes>,
    /// Set once the cap is reached or the writer fell behind: nothing more is queued.
    full: Arc<AtomicBool>,
    /// Bytes queued and not yet written.
    behind: Arc<AtomicUsize>,
    queue: Mutex<Option<Sender<Message>>>,
    writer: Mutex<Option<JoinHandle<bool>>>,
}

impl Recording {
    /// Starts the files: `path`, and beside it the stderr stream when the session has no
    /// terminal (`size` is the terminal's, else what the header says for a pipe).
    pub fn create(
        path: &Path,
        interactive: bool,
        size: (u16, u16),
        title: &str,
        options: &RecordOptions,
    ) -> std::io::Result<Recording> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if options.path.is_none() {
                private_dir(parent)?;
            } else {
                std::fs::create_dir_all(parent)?;
            }
        }
        let header = |stream: &str| {
            json!({
                "version": 2,
                "width": size.0,
                "height": size.1,
                "timestamp": jiff::Timestamp::now().as_second(),
                "title": format!("{title}{stream}"),
                "env": {
                    "TERM": std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into()),
                    "SHELL": "/bin/sh",
                },
            })
        };
        let (out, mut written) = Cast::create(path, &header(""))?;
        let (err, stderr_path) = if interactive {
            (None, None)
        } else {
            let at = stderr_path(path);
            let (err, n) = Cast::create(&at, &header(" (stderr)"))?;
            written += n;
            (Some(err), Some(at))
        };
        let inner = Inner {
            out,
            err,
            written,
            stopped: false,
            truncated: false,
        };
        let full = Arc::new(AtomicBool::new(false));
        let behind = Arc::new(AtomicUsize::new(0));
        let (queue, queued) = channel();
        let writer = {
            let (full, behind) = (full.clone(), behind.clone());
            let max_bytes = options.max_bytes;
            std::thread::Builder::new()
                .name("recording".into())
                .spawn(move || write_events(inner, max_bytes, &full, &behind, &queued))?
        };
        Ok(Recording {
            start: Instant::now(),
            input: options.input,
            stderr_path,
            bytes: Mutex::new(Bytes::default()),
            full,
            behind,
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(writer)),
        })
    }

    fn event(&self, stream: Stream, code: &'static str, bytes: &[u8]) {
        if self.full.load(Ordering::Relaxed) {
            return;
        }
        let time = self.start.elapsed().as_secs_f64();
        let Ok(queue) = self.queue.lock() else {
            return;
        };
        let Some(queue) = queue.as_ref() else {
            return;
        };
        let message =
            if self.behind.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len() > BEHIND_BYTES {
                self.full.store(true, Ordering::Relaxed);
                Message::FellBehind { time }
            } else {
                Message::Event {
                    stream,
                    code,
                    time,
                    bytes: bytes.to_vec(),
                }
            };
        // A writer that ended (a failed write) drops what follows, as the cap does.
        let _ = queue.send(message);
    }

    fn count(&self, add: impl FnOnce(&mut Bytes)) {
        if let Ok(mut bytes) = self.bytes.lock() {
            add(&mut bytes);
        }
    }

    /// Ends the recording with a marker naming how the session ended, once everything
    /// queued is written; the bytes seen and whether the cap cut it.
    pub fn finish(&self, ending: &str) -> (Bytes, bool) {
        let queue = self.queue.lock().ok().and_then(|mut q| q.take());
        if let Some(queue) = queue {
            let _ = queue.send(Message::Finish {
                time: self.start.elapsed().as_secs_f64(),
                ending: ending.to_string(),
            });
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        let truncated = writer.is_some_and(|w| w.join().unwrap_or(false));
        let bytes = self.bytes.lock().map(|b| *b).unwrap_or_default();
        (bytes, truncated)
    }
}

/// The writer thread: each queued event as an asciicast line, up to the cap; whether the cap
/// cut the recording.
fn write_events(
    mut inner: Inner,
    max_bytes: u64,
    full: &AtomicBool,
    behind: &AtomicUsize,
    queued: &Receiver<Message>,
) -> bool {
    while let Ok(message) = queued.recv() {
        match message {
            Message::Event {
                stream,
                code,
                time,
                bytes,
            } => {
                // Once the output has outrun the writer, the backlog is dropped rather than
                // written: the marker follows, and the session's end does not wait for
                // megabytes of U+FFFD to be escaped.
                if !inner.stopped && !full.load(Ordering::Relaxed) {
                    write_event(&mut inner, max_bytes, stream, code, time, &bytes);
                    if inner.stopped {
                        full.store(true, Ordering::Relaxed);
                    }
                }
                behind.fetch_sub(bytes.len(), Ordering::Relaxed);
            }
            Message::FellBehind { time } => {
                if !inner.stopped {
                    let _ = inner.out.file.write_all(
                        event_line(
                            time,
                            "m",
                            &format!(
                                "recording truncated: the output outran the recording by more than {BEHIND_BYTES} bytes"
                            ),
                        )
                        .as_bytes(),
                    );
                    inner.stopped = true;
                    inner.truncated = true;
                }
            }
            Message::Finish { time, ending } => {
                if !inner.stopped {
                    let _ = inner
                        .out
                        .file
                        .write_all(event_line(time, "m", &ending).as_bytes());
                }
                inner.stopped = true;
                break;
            }
        }
    }
    inner.truncated
}

fn write_event(
    inner: &mut Inner,
    max_bytes: u64,
    stream: Stream,
    code: &str,
    time: f64,
    bytes: &[u8],
) {
    let text = match stream {
        Stream::Out => inner.out.text(bytes),
        Stream::Err => match inner.err.as_mut() {
            Some(err) => err.text(bytes),
            None => return,
        },
    };
    if text.is_empty() {
        return;
    }
    let line = event_line(time, code, &text);
    if inner.written + line.len() as u64 > max_bytes {
        let marker = event_line(
            time,
            "m",
            &format!("recording truncated: the size cap of {max_bytes} bytes was reached"),
        );
        let _ = inner.out.file.write_all(marker.as_bytes());
        inner.stopped = true;
        inner.truncated = true;
        return;
    }
    inner.written += line.len() as u64;
    let file = match (stream, inner.err.as_mut()) {
        (Stream::Err, Some(err)) => &mut err.file,
        _ => &mut inner.out.file,
    };
    if file.write_all(line.as_bytes()).is_err() {
        inner.stopped = true;
    }
}

/// One asciicast event line, `[TIME, "CODE", "TEXT"]` and a newline, written straight from the
/// text (no JSON value built on the way).
fn event_line(time: f64, code: &str, text: &str) -> String {
    let time = serde_json::to_string(&round(time)).unwrap_or_else(|_| "0".into());
    let text = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    let mut line = String::with_capacity(time.len() + code.len() + text.len() + 8);
    line.push('[');
    line.push_str(&time);
    line.push_str(",\"");
    line.push_str(code);
    line.push_str("\",");
    line.push_str(&text);
    line.push_str("]\n");
    line
}

/// Microseconds are as fine as asciinema writes them.
fn round(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e6
}

impl Tap for Recording {
    fn stdout(&self, bytes: &[u8]) {
        self.count(|b| b.stdout += bytes.len() as u64);
        self.event(Stream::Out, "o", bytes);
    }

    fn stderr(&self, bytes: &[u8]) {
        self.count(|b| b.stderr += bytes.len() as u64);
        self.event(Stream::Err, "o", bytes);
    }

    fn input(&self, bytes: &[u8]) {
        self.count(|b| b.input += bytes.len() as u64);
        if self.input {
            self.event(Stream::Out, "i", bytes);
        }
    }

    fn resize(&self, cols: u16, rows: u16) {
        self.event(Stream::Out, "r", format!("{cols}x{rows}").as_bytes());
    }
}

/// Writes the sidecar (0600), replacing an earlier version of it.
/// Written beside and renamed over the old one, so that `history`, or the hand-off completing
/// it, never reads half a sidecar.
pub fn write_record(dir: &Path, record: &SessionRecord) -> std::io::Result<PathBuf> {
    private_dir(dir)?;
    let path = dir.join(format!("{}.json", record.id));
    let partial = dir.join(format!(".{}.json.{}", record.id, std::process::id()));
    let mut file = private_file(&partial)?;
    let text = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    drop(file);
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// The sidecar at `path`.
pub fn read_record(path: &Path) -> std::io::Result<SessionRecord> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(std::io::Error::other)
}

/// Every sidecar in `dir`, newest first; unreadable ones are skipped.
pub fn read_records(dir: &Path) -> Vec<SessionRecord> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut records: Vec<SessionRecord> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect();
    records.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| b.id.cmp(&a.id)));
    records
}

#[cfg(test)]
#[path = "recording_tests.rs"]
mod tests;
