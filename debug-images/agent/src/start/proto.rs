//! The `start` protocol, one JSON object per line over the unix stream socket.
//!
//! - client → entrypoint, once, sent together with the client's descriptors 0, 1 and 2 as
//!   SCM_RIGHTS: `{"env":{"K":"V"},"args":["extra"],"wait_for_trace":false}`;
//! - entrypoint → client: `{"started":PID}`, then one of `{"exit":CODE}`,
//!   `{"signal":N}` (the app was killed by signal N) or `{"error":"…","code":C}` (the
//!   app could not run; C is the exit code `start` reports: 127 not found, 126 not
//!   executable, 125 anything else);
//! - client → entrypoint, any number while the app runs: `{"signal":N}`, forwarded to the
//!   app's process group.
//!
//! Both ends parse what another process wrote: anything else is refused with a message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The longest line either end accepts.
pub const MAX_LINE: usize = 1 << 20;

/// What `start` asks for: environment overrides, extra arguments, a stop before execve.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub wait_for_trace: bool,
}

impl Request {
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a request always serializes");
        line.push('\n');
        line
    }

    /// Parses and checks a request line: names that a process environment can hold, no
    /// NUL bytes anywhere (they cannot reach execve).
    pub fn parse(line: &str) -> Result<Request, String> {
        let request: Request =
            serde_json::from_str(line.trim_end()).map_err(|e| format!("bad request: {e}"))?;
        for (k, v) in &request.env {
            if !is_env_name(k) {
                return Err(format!(
                    "bad request: {k:?} is not an environment variable name"
                ));
            }
            if v.contains('\0') {
                return Err(format!("bad request: the value of {k} holds a NUL byte"));
            }
        }
        if request.args.iter().any(|a| a.contains('\0')) {
            return Err("bad request: an argument holds a NUL byte".into());
        }
        Ok(request)
    }
}

/// A name `KEY=VALUE` may set: a letter or `_`, then letters, digits and `_`, as a shell's
/// assignment word.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// What the entrypoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Started(i32),
    Exit(i32),
    Signal(i32),
    Error { message: String, code: i32 },
}

impl Reply {
    pub fn to_line(&self) -> String {
        let value = match self {
            Reply::Started(pid) => json!({ "started": pid }),
            Reply::Exit(code) => json!({ "exit": code }),
            Reply::Signal(n) => json!({ "signal": n }),
            Reply::Error { message, code } => json!({ "error": message, "code": code }),
        };
        format!("{value}\n")
    }

    pub fn parse(line: &str) -> Result<Reply, String> {
        let value: Value =
            serde_json::from_str(line.trim_end()).map_err(|e| format!("bad reply: {e}"))?;
        let int = |key: &str| {
            value[key]
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| format!("bad reply: {key} is not an integer: {line:?}"))
        };
        let object = value.as_object().ok_or("bad reply: not a JSON object")?;
        if object.contains_key("started") {
            Ok(Reply::Started(int("started")?))
        } else if object.contains_key("exit") {
            Ok(Reply::Exit(int("exit")?))
        } else if object.contains_key("signal") {
            Ok(Reply::Signal(int("signal")?))
        } else if let Some(message) = value["error"].as_str() {
            Ok(Reply::Error {
                message: message.to_string(),
                code: int("code").unwrap_or(125),
            })
        } else {
            Err(format!("bad reply: {line:?}"))
        }
    }
}

/// The client's signal line: `{"signal":N}`.
pub fn signal_line(signal: i32) -> String {
    format!("{}\n", json!({ "signal": signal }))
}

/// The signal a client line asks to forward; only signals a terminal or `kill` sends to
/// end or interrupt a process are accepted.
pub fn parse_signal_line(line: &str) -> Result<i32, String> {
    let value: Value =
        serde_json::from_str(line.trim_end()).map_err(|e| format!("bad signal line: {e}"))?;
    let n = value["signal"]
        .as_i64()
        .ok_or_else(|| format!("bad signal line: {line:?}"))?;
    match i32::try_from(n) {
        Ok(n) if FORWARDED.contains(&n) => Ok(n),
        _ => Err(format!("signal {n} is not forwarded")),
    }
}

/// The signals `start` forwards to the app.
pub const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_defaults() {
        let request = Request {
            env: BTreeMap::from([("PORT".into(), "8080".into())]),
            args: vec!["--verbose".into()],
            wait_for_trace: true,
        };
        assert_eq!(Request::parse(&request.to_line()), Ok(request));
        assert_eq!(Request::parse("{}\n"), Ok(Request::default()));
        assert_eq!(
            Request::parse(r#"{"env":{"K":"V"},"args":["extra"],"wait_for_trace":false}"#)
                .unwrap()
                .env["K"],
            "V"
        );
    }

    #[test]
    fn request_refuses_what_execve_cannot_take() {
        for bad in [
            r#"{"env":{"1X":"v"}}"#,
            r#"{"env":{"A=B":"v"}}"#,
            r#"{"env":{"":"v"}}"#,
            r#"{"env":{"A":"v\u0000"}}"#,
            r#"{"args":["a\u0000b"]}"#,
            r#"{"args":"not a list"}"#,
            r#"{"unknown":1}"#,
            "not json",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies_round_trip() {
        for reply in [
            Reply::Started(42),
            Reply::Exit(3),
            Reply::Signal(2),
            Reply::Error {
                message: "not found: /app/server".into(),
                code: 127,
            },
        ] {
            assert_eq!(Reply::parse(&reply.to_line()), Ok(reply));
        }
        assert_eq!(
            Reply::parse(r#"{"error":"already running: pid 7"}"#),
            Ok(Reply::Error {
                message: "already running: pid 7".into(),
                code: 125
            })
        );
        assert!(Reply::parse(r#"{"exit":"3"}"#).is_err());
        assert!(Reply::parse("[1]").is_err());
        assert!(Reply::parse("{}").is_err());
    }

    #[test]
    fn only_interrupting_signals_are_forwarded() {
        assert_eq!(
            parse_signal_line(&signal_line(libc::SIGINT)),
            Ok(libc::SIGINT)
        );
        assert!(parse_signal_line(r#"{"signal":9}"#).is_err());
        assert!(parse_signal_line(r#"{"signal":-2}"#).is_err());
        assert!(parse_signal_line("{}").is_err());
    }

    #[test]
    fn env_names_are_shell_assignment_names() {
        assert!(is_env_name("PORT"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1PORT"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name(""));
    }
}
