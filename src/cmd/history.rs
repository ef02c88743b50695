//! `history`: the sessions recorded on this machine, newest first, from their sidecars
//! (output/recording.rs), with what their trails are missing said under the table;
//! `history show ID` prints one session's recorded output as text for a ticket, `--plain`
//! without escape sequences. Needs no cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::base::error::{Error, Failure};
use crate::base::exit::ExitStatus;
use crate::output::printer::{OutputFormat, Printer};
use crate::output::recording::{self, SessionRecord};

/// What `history` was asked for, from the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryOptions {
    pub pod: Option<String>,
    pub since: Option<Duration>,
    /// `--context`: only sessions in these contexts.
    pub contexts: Vec<String>,
    pub format: Option<OutputFormat>,
    /// `show ID [--plain]`.
    pub show: Option<(String, bool)>,
}

/// Why `history` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no recorded session {id} in {}", .dir.display())]
    UnknownId { id: String, dir: PathBuf },
    #[error("session {id} was not recorded (its sidecar names no recording file)")]
    NotRecorded { id: String },
    #[error("could not read the recording {} of session {id}", .path.display())]
    Unreadable {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("neither $XDG_STATE_HOME nor $HOME is set, so there is no session history")]
    NoStateDir,
}

impl Failure for HistoryError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            HistoryError::UnknownId { .. } => {
                "`kubectl distroless-debug history` lists the session ids".into()
            }
            HistoryError::NotRecorded { .. } | HistoryError::Unreadable { .. } => {
                "the sidecar's `recording` field says where it was written; a file moved or removed since cannot be shown".into()
            }
            HistoryError::NoStateDir => "set HOME (or XDG_STATE_HOME)".into(),
        })
    }
}

/// `-o json`: the list. Versioned: fields are only added.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct History<'a> {
    api_version: &'static str,
    kind: &'static str,
    items: &'a [SessionRecord],
}

pub fn run(options: &HistoryOptions, printer: &Printer) -> Result<ExitStatus, Error> {
    let dir = recording::sessions_dir().ok_or(HistoryError::NoStateDir)?;
    let records = recording::read_records(&dir);
    if let Some((id, plain)) = &options.show {
        let record = find(&records, id).ok_or_else(|| HistoryError::UnknownId {
            id: id.clone(),
            dir: dir.clone(),
        })?;
        let path = record
            .recording
            .as_ref()
            .ok_or_else(|| HistoryError::NotRecorded { id: id.clone() })?;
        printer.stdout(&output_of(&record.id, path, *plain)?)?;
        if let Some(stderr) = record.stderr_recording.as_ref().filter(|p| p.exists()) {
            let text = output_of(&record.id, stderr, *plain)?;
            if !text.is_empty() {
                eprint!("{text}");
            }
        }
        return Ok(ExitStatus::Success);
    }
    let now = jiff::Timestamp::now();
    let kept = select(records, options, now);
    match options.format {
        Some(format) => printer.data(
            format,
            &History {
                api_version: "distroless-debug/v1",
                kind: "SessionHistory",
                items: &kept,
            },
        )?,
        None if kept.is_empty() => printer.note(&format!(
            "no recorded sessions{} in {}",
            if options.pod.is_some() || options.since.is_some() || !options.contexts.is_empty() {
                " match"
            } else {
                ""
            },
            dir.display()
        )),
        None => {
            printer.stdout(&table(&kept))?;
            for line in trail_notes(&kept) {
                printer.note(&line);
            }
        }
    }
    Ok(ExitStatus::Success)
}

/// What a session's trail is missing (its sidecar's notes, such as an Event its hand-off
/// could not write), one line each, named by session: said under the table, on stderr, so
/// the table stays one line a session for scripts.
pub fn trail_notes(records: &[SessionRecord]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| r.notes.iter().map(move |note| format!("{}: {note}", r.id)))
        .collect()
}

/// The session with this id, or the only one whose id starts with it.
fn find<'a>(records: &'a [SessionRecord], id: &str) -> Option<&'a SessionRecord> {
    if let Some(exact) = records.iter().find(|r| r.id == id) {
        return Some(exact);
    }
    let mut prefixed = records.iter().filter(|r| r.id.starts_with(id));
    match (prefixed.next(), prefixed.next()) {
        (Some(only), None) if !id.is_empty() => Some(only),
        _ => None,
    }
}

fn output_of(id: &str, path: &Path, plain: bool) -> Result<String, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Unreadable {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(cast_output(&text, plain))
}

/// The `--pod`, `--since` and `--context` filters; the order (newest first) is kept.
pub fn select(
    records: Vec<SessionRecord>,
    options: &HistoryOptions,
    now: jiff::Timestamp,
) -> Vec<SessionRecord> {
    let oldest = options.since.and_then(|since| {
        jiff::SignedDuration::try_from(since)
            .ok()
            .and_then(|d| now.checked_sub(d).ok())
    });
    records
        .into_iter()
        .filter(|r| options.pod.as_ref().is_none_or(|pod| &r.pod == pod))
        .filter(|r| {
            options.contexts.is_empty()
                || r.context
                    .as_ref()
                    .is_some_and(|c| options.contexts.contains(c))
        })
        .filter(|r| {
            oldest.is_none_or(|oldest| {
                r.start
                    .parse::<jiff::Timestamp>()
                    .is_ok_and(|start| start >= oldest)
            })
        })
        .collect()
}

/// The output events (`"o"`) of an asciicast v2 file, joined; with `plain`, without escape
/// sequences and with `\r\n` as `\n` (what a ticket wants).
pub fn cast_output(text: &str, plain: bool) -> String {
    let output: String = text
        .lines()
        .skip(1)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event[1] == "o")
        .filter_map(|event| event[2].as_str().map(str::to_string))
        .collect();
    if plain {
        strip_escapes(&output)
    } else {
        output
    }
}

/// Removes ANSI/VT escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \`, and
/// two-character `ESC x`), other C0 controls but newline and tab, and carriage returns.
pub fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // Parameters and intermediates, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']' | 'P' | '_' | '^') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // Charset designations take one more character.
                Some('(' | ')' | '*' | '+') => {
                    chars.next();
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn duration_of(record: &SessionRecord) -> String {
    let (Ok(start), Some(Ok(end))) = (
        record.start.parse::<jiff::Timestamp>(),
        record.end.as_deref().map(str::parse::<jiff::Timestamp>),
    ) else {
        return "-".into();
    };
    let seconds = end.duration_since(start).as_secs().max(0);
    crate::base::duration::Human(Duration::from_secs(seconds as u64)).to_string()
}

/// The text table, one session a line.
pub fn table(records: &[SessionRecord]) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let mut rows = vec![
        [
            "ID",
            "STARTED",
            "WHERE",
            "CONTAINER",
            "USER",
            "REASON",
            "TOOK",
            "EXIT",
            "RECORDING",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in records {
        rows.push(vec![
            r.id.clone(),
            r.start.get(..19).unwrap_or(&r.start).replace('T', " "),
            format!(
                "{}/{}/{}",
                r.context.as_deref().unwrap_or("-"),
                r.namespace,
                r.pod
            ),
            dash(&r.debug_container),
            dash(&r.user),
            dash(r.reason.as_deref().unwrap_or("")),
            duration_of(r),
            match (r.exit_code, r.interrupted) {
                (Some(code), _) => code.to_string(),
                (None, true) => "signal".into(),
                (None, false) => "-".into(),
            },
            r.recording
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string()),
        ]);
    }
    crate::cmd::ls::aligned(rows)
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
