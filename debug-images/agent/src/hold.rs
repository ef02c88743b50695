//! `hold`: the debug container's main process. It does nothing but wait, and it is the
//! safety net of DESIGN.md step 8: a client that vanishes mid-session still leaves nothing
//! running, because `hold` ends at its ttl or when no session has been alive for `idle`.
//!
//! It is also the normal end of a container: a session started with `--end-container`
//! (the plugin's, for its last exec) that has ended, with no other session alive, ends
//! `hold` and with it the container, so the plugin sends no `stop` and the user waits for
//! nothing after the work. A session still alive, whoever started it, keeps the container
//! for itself: that is what reusing a container relies on.

use std::time::{Duration, Instant};

use crate::cli::{HoldFlags, TargetFlags};
use crate::duration::{self, Human};
use crate::exit::Status;
use crate::procs;
use crate::state::StateDir;
use crate::sys::{self, SignalSet};
use crate::target;

pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);

/// How often sessions, ttl and idle are checked when no signal arrives.
const TICK: Duration = Duration::from_secs(1);
/// The same while a session is alive: its end is seen this soon (a few syscalls per look).
const SESSION_TICK: Duration = Duration::from_millis(50);
/// How long `hold` waits for the `stop` that asked it to exit to finish first.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Limits after flags and env are merged; `None` disables a limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub ttl: Option<Duration>,
    pub idle: Option<Duration>,
}

/// Flags win over `DISTROLESS_DEBUG_TTL` / `DISTROLESS_DEBUG_IDLE`, which win over the
/// defaults; `0` disables a limit.
pub fn options(flags: &HoldFlags, env: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
    let pick = |flag: Option<Duration>, var: &str, default: Duration| -> Result<_, String> {
        let value = match (flag, env(var).filter(|v| !v.trim().is_empty())) {
            (Some(d), _) => d,
            (None, Some(text)) => duration::parse(&text).map_err(|e| format!("{var}: {e}"))?,
            (None, None) => default,
        };
        Ok((!value.is_zero()).then_some(value))
    };
    Ok(Options {
        ttl: pick(flags.ttl, "DISTROLESS_DEBUG_TTL", DEFAULT_TTL)?,
        idle: pick(flags.idle, "DISTROLESS_DEBUG_IDLE", DEFAULT_IDLE)?,
    })
}

/// Why `hold` ended; its `Display` is the one log line.
#[derive(Debug, PartialEq, Eq)]
enum Reason {
    Stop(i32),
    Signal(i32),
    Ttl(Duration),
    Idle(Duration),
    /// A session that asked to end the container ended, and no other was alive.
    LastSession,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Stop(pid) => write!(f, "stop: requested by pid {pid}"),
            Reason::Signal(libc::SIGINT) => f.write_str("signal: SIGINT"),
            Reason::Signal(libc::SIGTERM) => f.write_str("signal: SIGTERM"),
            Reason::Signal(n) => write!(f, "signal: {n}"),
            Reason::Ttl(ttl) => write!(f, "ttl: {} elapsed", Human(*ttl)),
            Reason::Idle(idle) => write!(f, "idle: no session for {}", Human(*idle)),
            Reason::LastSession => f.write_str("last session: it ended the container"),
        }
    }
}

pub fn main(flags: HoldFlags) -> Status {
    let options = match options(&flags, |var| std::env::var(var).ok()) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("distroless-debug-agent hold: {e}");
            return Status::Usage;
        }
    };
    // A bad DISTROLESS_DEBUG_TARGET_* is a bad command line, as a bad ttl is.
    if let Err(e) = target::request(&flags.target, |var| std::env::var(var).ok()) {
        eprintln!("distroless-debug-agent hold: {e}");
        return Status::Usage;
    }
    let state = StateDir::from_env();
    match hold(&options, &flags.target, &state) {
        Ok(reason) => {
            eprintln!("distroless-debug-agent hold: exiting: {reason}");
            Status::Success
        }
        Err(e) => {
            eprintln!("distroless-debug-agent hold: {e}");
            Status::Failure
        }
    }
}

/// Resolves the target once at start, so `/target` leads to it before the first session,
/// and logs it. A target that cannot be identified is logged and does not end `hold`: the
/// plugin still has to exec `target -o json` to show the candidates.
fn announce_target(flags: &TargetFlags) {
    match target::identify(flags) {
        Ok(t) => eprintln!(
            "distroless-debug-agent hold: target: pid {}, container {}, found by {}, root {}",
            t.pid,
            t.container_id.as_deref().unwrap_or("unknown"),
            t.method.as_str(),
            t.root
        ),
        Err(failure) => {
            failure.report("hold");
        }
    }
}

fn hold(options: &Options, target: &TargetFlags, state: &StateDir) -> std::io::Result<Reason> {
    let signals = SignalSet::block(&[libc::SIGTERM, libc::SIGINT, libc::SIGCHLD])?;
    state.ensure()?;
    let _ = std::fs::remove_file(state.stop_request_path());
    state.write_hold_pid(std::process::id())?;
    let limit =
        |d: Option<Duration>| d.map_or_else(|| "none".to_string(), |d| Human(d).to_string());
    eprintln!(
        "distroless-debug-agent hold: pid {}, ttl {}, idle {}",
        std::process::id(),
        limit(options.ttl),
        limit(options.idle)
    );
    announce_target(target);

    let started = Instant::now();
    let mut last_session = started;
    let mut tick = TICK;
    let reason = loop {
        match signals.wait(tick) {
            Some(libc::SIGCHLD) | None => {}
            Some(signal) => {
                break match state.read_stop_request() {
                    Some(pid) => Reason::Stop(pid),
                    None => Reason::Signal(signal),
                };
            }
        }
        sys::reap_children();
        let now = Instant::now();
        let sessions = state.sweep_sessions().unwrap_or_default();
        if sessions.live.is_empty() && sessions.ended_one_ending_the_container {
            break Reason::LastSession;
        }
        if sessions.live.is_empty() {
            tick = TICK;
        } else {
            last_session = now;
            tick = SESSION_TICK;
        }
        if let Some(ttl) = options.ttl.filter(|&ttl| now - started >= ttl) {
            break Reason::Ttl(ttl);
        }
        if let Some(idle) = options.idle.filter(|&idle| now - last_session >= idle) {
            break Reason::Idle(idle);
        }
    };

    // Removing hold.pid is the acknowledgement `stop` waits for.
    if state.read_hold_pid() == Some(std::process::id() as i32) {
        let _ = std::fs::remove_file(state.hold_pid_path());
    }
    if let Reason::Stop(pid) = reason {
        // Our exit ends the container, and the runtime then kills what still runs in it,
        // `stop` included: let `stop` return its exit code to the plugin first.
        let deadline = Instant::now() + STOP_GRACE;
        while !procs::is_gone(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(state.stop_request_path());
    }
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_apply_without_flags_or_env() {
        assert_eq!(
            options(&HoldFlags::default(), env_of(&[])),
            Ok(Options {
                ttl: Some(DEFAULT_TTL),
                idle: Some(DEFAULT_IDLE)
            })
        );
    }

    #[test]
    fn flags_win_over_env_and_zero_disables() {
        let env = env_of(&[
            ("DISTROLESS_DEBUG_TTL", "2h"),
            ("DISTROLESS_DEBUG_IDLE", "5m"),
        ]);
        assert_eq!(
            options(&HoldFlags::default(), &env),
            Ok(Options {
                ttl: Some(Duration::from_secs(7200)),
                idle: Some(Duration::from_secs(300))
            })
        );
        let flags = HoldFlags {
            ttl: Some(Duration::from_secs(60)),
            idle: Some(Duration::ZERO),
            target: TargetFlags::default(),
        };
        assert_eq!(
            options(&flags, &env),
            Ok(Options {
                ttl: Some(Duration::from_secs(60)),
                idle: None
            })
        );
    }

    #[test]
    fn a_bad_env_value_names_the_variable() {
        let err = options(
            &HoldFlags::default(),
            env_of(&[("DISTROLESS_DEBUG_IDLE", "soon")]),
        );
        assert!(err.unwrap_err().contains("DISTROLESS_DEBUG_IDLE"));
    }

    #[test]
    fn log_lines_say_why() {
        assert_eq!(
            Reason::Idle(Duration::from_secs(900)).to_string(),
            "idle: no session for 15m"
        );
        assert_eq!(
            Reason::Ttl(Duration::from_secs(3600)).to_string(),
            "ttl: 1h elapsed"
        );
        assert_eq!(Reason::Stop(9).to_string(), "stop: requested by pid 9");
        assert_eq!(
            Reason::LastSession.to_string(),
            "last session: it ended the container"
        );
        assert_eq!(Reason::Signal(libc::SIGTERM).to_string(), "signal: SIGTERM");
    }
}
