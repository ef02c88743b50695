//! The parsers of outside input, opened to the fuzz targets (`fuzz/`, a crate of its own) and
//! to nothing else: each function feeds one parser what a fuzzer made and checks, by
//! assertion, what must hold for any input and can only be seen from inside the crate. The
//! checks that need no internals (nothing written outside a destination, the bytes a frame
//! decoder passes on) live with the targets, in `fuzz/src/lib.rs`.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::fanout::runbook::{self, Condition};
use crate::kube::exec::exit_code_of;
use crate::kube::exec_stream;
use crate::session::target::{TargetRef, is_dns_subdomain};
use crate::toolkit::config;
use crate::transfer::extract::{Destination, extract};

/// `info -o json` documents a `when:` is evaluated against: each fact present, absent, and
/// of the wrong type.
fn fact_sets() -> [serde_json::Value; 4] {
    [
        json!({"runtime": "jvm", "exe": "/usr/bin/java", "uid": 0, "gid": 0}),
        json!({"runtime": "go", "exe": "/app", "uid": 65532, "gid": -1}),
        json!({"runtime": 1, "exe": null, "uid": "0", "gid": 1.5}),
        json!({}),
    ]
}

/// A `when:` expression: what parses shows (`Display`) as text that parses to the same
/// condition, unless the display escaped a literal (it shows text as Rust does, `\u{202e}`
/// for a bidi control, `\"` for a quote, which the grammar has no escapes for), and
/// evaluates against any facts.
pub fn when(text: &str) {
    if let Ok(condition) = Condition::parse(text) {
        check_condition(&condition, text);
    }
}

fn check_condition(condition: &Condition, text: &str) {
    let shown = condition.to_string();
    if shown.contains('\\') {
        return;
    }
    assert_eq!(
        Condition::parse(&shown).as_ref(),
        Ok(condition),
        "{text:?} shows as {shown:?}"
    );
    for facts in fact_sets() {
        condition.holds(&facts);
    }
}

/// A runbook file: loaded or refused with its problems (each with a line and a column inside
/// the text, or 0 for none); a loaded one's `when:` conditions hold as [`when`]'s do.
pub fn runbook(text: &str) {
    match runbook::parse(text, "fuzz.yaml") {
        Ok(book) => {
            assert!(!book.steps.is_empty(), "{text:?} loads with no step");
            for step in &book.steps {
                if let Some(condition) = &step.when {
                    check_condition(condition, text);
                }
            }
        }
        Err(error) => {
            assert!(
                !error.problems.is_empty(),
                "{text:?} refused with no problem"
            );
            let lines = yaml_lines(text);
            for problem in &error.problems {
                assert!(problem.line <= lines, "{text:?}: {problem:?} past the end");
                assert!(!problem.message.is_empty(), "{text:?}: an empty message");
            }
            let _ = error.to_string();
        }
    }
}

/// The last line a YAML parser can point at: YAML breaks lines at `\n`, `\r\n` and a lone
/// `\r`, and may point at the line after the last break.
fn yaml_lines(text: &str) -> u64 {
    let breaks = text.replace("\r\n", "\n").matches(['\n', '\r']).count();
    breaks as u64 + 1
}

/// A TARGET argument (`pod/NAME`, `NAME`, `deploy/NAME`, ...): what parses has a valid
/// name and shows as text that parses to the same reference.
pub fn target_ref(text: &str) {
    if let Ok(target) = text.parse::<TargetRef>() {
        assert!(is_dns_subdomain(&target.name), "{text:?} -> {target:?}");
        let shown = target.to_string();
        assert_eq!(
            shown.parse::<TargetRef>(),
            Ok(target),
            "{text:?} -> {shown:?}"
        );
    }
}

/// The config file: loaded or refused with a message (and, when it names a place, one inside
/// the text); a loaded one gives its image catalog.
pub fn config(text: &str) {
    match config::parse(text) {
        Ok(loaded) => {
            let _ = loaded.catalog(None);
            let _ = loaded.catalog(Some("registry.example"));
        }
        Err((at, message)) => {
            assert!(!message.is_empty(), "{text:?} refused with no message");
            if let Some((line, _)) = at {
                assert!(line <= yaml_lines(text), "{text:?}: line {line}");
            }
        }
    }
}

/// Extracts `archive` as `cp POD:/PREFIX DEST` does, `DEST` named `name` inside `dir` (a
/// directory the caller made): Ok, or the error the user would read. What must hold of the
/// filesystem afterwards the caller checks.
pub fn extract_into(archive: &[u8], prefix: &[u8], dir: &Path, name: &str) -> Result<(), String> {
    let dest = Destination::resolve(
        &dir.join(name),
        prefix.rsplit(|b| *b == b'/').next().unwrap_or(b""),
    )
    .map_err(|e| e.to_string())?;
    extract(archive, prefix, &dest, &mut |_| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One message of an exec connection, as the server sends it.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A binary frame: its channel byte, then the data.
    Binary(Vec<u8>),
    /// A text, ping or pong frame, which carries no stream.
    Other,
    /// The connection breaks.
    Broken,
}

/// What a download's message loop made of the messages.
#[derive(Debug)]
pub struct Decoded {
    /// What reached the reader, in order.
    pub stdout: Vec<u8>,
    /// Whether the reader saw the stream end in an error.
    pub stdout_broken: bool,
    /// What was kept for messages (stderr, bounded).
    pub kept: String,
    /// The exit code (or failure) of the status, when one arrived and parsed.
    pub exit: Option<Result<i32, String>>,
}

/// Runs the message loop of a `cp`/`snapshot` download over `messages`, then the end of the
/// connection, with its stdout read to the end on another thread.
pub fn exec_frames(messages: Vec<Incoming>) -> Decoded {
    let incoming: Vec<_> = messages
        .into_iter()
        .map(|m| match m {
            Incoming::Binary(data) => Ok(Message::Binary(Bytes::from(data))),
            Incoming::Other => Ok(Message::Pong(Bytes::new())),
            Incoming::Broken => Err(tungstenite::Error::ConnectionClosed),
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let (chunks, mut received) = exec_stream::download_parts();
    let (status_tx, status_rx) = tokio::sync::oneshot::channel();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut stdout = Vec::new();
            let broken = std::io::Read::read_to_end(&mut received, &mut stdout).is_err();
            (stdout, broken)
        });
        let ws = Replayed(incoming.into_iter());
        let kept = runtime.block_on(exec_stream::message_loop(
            ws,
            true,
            None,
            Some(chunks),
            None,
            status_tx,
        ));
        let (stdout, stdout_broken) = reader.join().expect("the reader thread");
        let exit = runtime
            .block_on(status_rx)
            .ok()
            .map(|status| exit_code_of(Some(&status)));
        Decoded {
            stdout,
            stdout_broken,
            kept,
            exit,
        }
    })
}

/// A connection that sends `.0` and takes whatever is sent to it.
struct Replayed(std::vec::IntoIter<Result<Message, tungstenite::Error>>);

impl futures::Stream for Replayed {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next())
    }
}

impl futures::Sink<Message> for Replayed {
    type Error = std::convert::Infallible;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), Self::Error> {
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}
