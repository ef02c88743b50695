//! All user-facing output goes through here.
//!
//! Human text (progress, notes, warnings, errors) goes to stderr; data (`-o json|yaml`, `ls`
//! tables, the remote command's output) goes to stdout, so `| jq` always sees data only.
//! Progress is shown only when stderr is a terminal, colour only then and without NO_COLOR,
//! and `-q` leaves only data and errors.

use std::io::Write;

use serde::Serialize;

use crate::base::error::{Error, api_message};
use crate::kube::retry::RetryEvent;

use clap::ValueEnum;

/// Where human output goes and how it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputOptions {
    pub quiet: bool,
    pub color: bool,
    /// Progress lines (waiting for the container...) only make sense on a terminal.
    pub progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Yaml,
    /// One JSON object per line (with -l or `run`: one per step as it finishes).
    Jsonl,
}

#[derive(Debug, Clone, Copy)]
pub struct Printer {
    options: OutputOptions,
}

const BOLD_RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

impl Printer {
    pub fn new(options: OutputOptions) -> Self {
        Printer { options }
    }

    /// A printer for before the flags are known: errors only, no colour.
    pub fn plain() -> Self {
        Printer::new(OutputOptions {
            quiet: false,
            color: false,
            progress: false,
        })
    }

    fn paint(&self, colour: &str, text: &str) -> String {
        if self.options.color {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn stderr_line(&self, line: &str) {
        // A closed stderr is not worth failing the session for.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Transient progress ("waiting for dbg-x to start..."): terminal only.
    pub fn progress(&self, text: &str) {
        if self.options.progress {
            self.stderr_line(&self.paint(DIM, text));
        }
    }

    /// A live view (a fan-out's per-pod progress): erases the `previous` lines it drew last
    /// time and draws `lines` in their place. Terminal only, like [`Printer::progress`];
    /// returns how many lines are now on screen.
    pub fn redraw(&self, previous: usize, lines: &[String]) -> usize {
        if !self.options.progress {
            return 0;
        }
        // CPL (cursor to the start of a previous line), then ED (erase to the end).
        let mut frame = if previous > 0 {
            format!("\x1b[{previous}F\x1b[J")
        } else {
            "\x1b[J".to_string()
        };
        for line in lines {
            frame.push_str(line);
            frame.push('\n');
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(frame.as_bytes()).and_then(|()| err.flush());
        lines.len()
    }

    /// A note the user should see once (not in `-q`).
    pub fn note(&self, text: &str) {
        if !self.options.quiet {
            self.stderr_line(text);
        }
    }

    /// What the retry policy does: a progress line on a terminal ("API server busy, retrying
    /// (2/5)"), else one note line per retry, so a script's log shows why a run was slow.
    pub fn api_retry(&self, event: &RetryEvent) {
        match event {
            RetryEvent::Retrying { what, cause, retry } => {
                let text = format!(
                    "API server busy, retrying ({}/{}): {cause} on {what}",
                    retry.retry, retry.of
                );
                if self.options.progress {
                    self.progress(&text);
                } else {
                    self.note(&format!(
                        "note: {text}; next attempt in {}",
                        crate::base::duration::Human(retry.delay)
                    ));
                }
            }
            RetryEvent::GaveUp {
                what,
                cause,
                retries,
                elapsed,
            } => self.note(&format!(
                "note: API server busy: gave up on {what} after {retries} retries in {} ({cause})",
                crate::base::duration::Human(*elapsed)
            )),
        }
    }

    pub fn warn(&self, text: &str) {
        self.stderr_line(&format!("{} {text}", self.paint(YELLOW, "warning:")));
    }

    /// The error, every cause under it, and the hint.
    pub fn error(&self, error: &Error) {
        self.stderr_line(&format!("{} {error}", self.paint(BOLD_RED, "error:")));
        for cause in causes(error) {
            self.stderr_line(&format!("  caused by: {cause}"));
        }
        if let Some(hint) = error.hint() {
            self.stderr_line(&format!("{} {hint}", self.paint(CYAN, "hint:")));
        }
    }

    /// Data on stdout as JSON or YAML.
    pub fn data<T: Serialize>(&self, format: OutputFormat, value: &T) -> Result<(), Error> {
        let text = render(format, value)?;
        self.stdout(&text)
    }

    pub fn stdout(&self, text: &str) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Error::Output {
                source: Box::new(e),
            })
    }
}

/// JSON (pretty, newline-terminated) or YAML of `value`.
pub fn render<T: Serialize>(format: OutputFormat, value: &T) -> Result<String, Error> {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| Error::Output {
                source: Box::new(e),
            }),
        OutputFormat::Jsonl => serde_json::to_string(value)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| Error::Output {
                source: Box::new(e),
            }),
        OutputFormat::Yaml => serde_saphyr::to_string(value).map_err(|e| Error::Output {
            source: Box::new(e),
        }),
    }
}

/// The chain of causes below `error`, each said once: kube's API errors print their Status
/// with Debug formatting, so we show just the server's message and code.
pub fn causes(error: &Error) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        let line = match cause.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => format!(
                "{} (HTTP {} {})",
                api_message(&kube::Error::Api(status.clone())).unwrap_or_default(),
                status.code,
                status.reason
            ),
            _ => cause.to_string(),
        };
        // Wrappers often repeat their inner error's text; say each thing once.
        if !lines.last().is_some_and(|last| last.contains(&line)) {
            lines.push(line);
        }
        if matches!(
            cause.downcast_ref::<kube::Error>(),
            Some(kube::Error::Api(_))
        ) {
            break;
        }
        next = cause.source();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_show_the_servers_message_not_a_debug_dump() {
        let status = kube::core::Status::failure(
            "pods \"web\" is forbidden: User \"bob\" cannot patch",
            "Forbidden",
        )
        .with_code(403);
        let e = Error::Inject {
            pod: "web".into(),
            source: kube::Error::Api(Box::new(status)),
        };
        assert_eq!(
            causes(&e),
            vec![
                "pods \"web\" is forbidden: User \"bob\" cannot patch (HTTP 403 Forbidden)"
                    .to_string()
            ]
        );
    }

    #[test]
    fn yaml_and_json_render_the_same_value() {
        // Strings that YAML would read as something else unless quoted, a number, a null and
        // nesting: each format, read back by its own parser, must give the value we rendered.
        let value = serde_json::json!({
            "spec": {"ephemeralContainers": [{"name": "dbg-abcde", "tty": true}]},
            "ambiguous": ["true", "null", "0755", "1.10", "a: b", "- x", ""],
            "count": 3,
            "missing": null,
        });
        let yaml = render(OutputFormat::Yaml, &value).unwrap_or_default();
        let from_yaml: serde_json::Value =
            serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(from_yaml, value, "{yaml}");
        let json = render(OutputFormat::Json, &value).unwrap_or_default();
        let from_json: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}\n{json}"));
        assert_eq!(from_json, value, "{json}");
        assert!(json.ends_with("}\n"));
    }
}
