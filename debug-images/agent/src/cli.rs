//! The command line: argv in, one validated [`Command`] out, and every help text.
//!
//! Hand-parsed because the agent stays a small static binary without clap. Rules follow
//! common CLI habits: `--flag VALUE` and `--flag=VALUE`, `-o VALUE` and `-oVALUE`, `--`
//! ends the flags, `VERB --help` or `help VERB` shows a verb's help.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration;

pub const MAIN_HELP: &str = "\
distroless-debug-agent: the entrypoint of kubectl-distroless-debug images

Usage: distroless-debug-agent VERB [ARGS...]

Verbs:
  hold     keep the debug container open (its main process); ends at ttl, idle or stop
  run      run a command as a registered session: run -- CMD [ARGS...]
  shell    start an interactive shell as a registered session
  stop     end the sessions of this debug container, then hold (never the target)
  info     facts about the target process (uid/gid, exe, runtime, sockets, mounts)
  tar      write a tar of paths inside the target's root to stdout
  untar    extract a tar from stdin inside the target's root
  version  print the version

Run 'distroless-debug-agent VERB --help' for a verb's flags.

Exit codes:
  0    success
  1    failure (reason on stderr)
  2    bad command line
  126  run/shell: command found but not executable
  127  run/shell: command not found
  run and shell otherwise exit with the command's own code (128+N when killed by signal N).

Files: /tmp/.distroless-debug/hold.pid, /tmp/.distroless-debug/sessions/<pid>
(the directory is DISTROLESS_DEBUG_STATE_DIR when set).
";

pub const HOLD_HELP: &str = "\
Usage: distroless-debug-agent hold [--ttl DURATION] [--idle DURATION]

Keeps the debug container open. Exits 0, with one line on stderr saying why, when:
  - it receives SIGTERM or SIGINT, or `stop` asks it to;
  - the ttl has elapsed since it started;
  - no session (run/shell) has been alive for the idle time (counted from start).

Flags:
  --ttl DURATION    maximum lifetime (default 1h; env DISTROLESS_DEBUG_TTL)
  --idle DURATION   exit after this long without a session (default 15m;
                    env DISTROLESS_DEBUG_IDLE)
Durations: 90s, 15m, 1h, 1h30m; 0 disables that limit. Flags win over env.

Exit codes: 0 stopped as above; 1 the state directory cannot be used; 2 bad flags.
";

pub const RUN_HELP: &str = "\
Usage: distroless-debug-agent run [--] CMD [ARGS...]

Registers a session (so `hold` does not idle out and `stop` can end it), then executes
CMD in place of the agent: the exit code and signals are the command's own.

Exit codes: the command's own; 126 found but not executable; 127 not found; 2 no command.
";

pub const SHELL_HELP: &str = "\
Usage: distroless-debug-agent shell [--pid PID]

Registers a session and starts an interactive shell ($SHELL, else bash if present, else
/bin/sh) in /, with HOME=/tmp when HOME is unset or not writable, a PATH that includes the
toolkit directories, and a `dbg:` prompt. Prints one line about the target first.
Also works as the container's main process (attach mode).

Flags:
  --pid PID   the target process (default: env DISTROLESS_DEBUG_TARGET_PID, else PID 1,
              else, when PID 1 is the pod's pause process, the first process of another
              container)

Exit codes: the shell's own; 126/127 when no shell can be executed.
";

pub const STOP_HELP: &str = "\
Usage: distroless-debug-agent stop

Ends this debug container: SIGTERM (SIGKILL after 2s) to the registered sessions and their
children, then asks `hold` to exit. Only processes of this container are signalled: never
PID 1 and never a process whose root differs from the agent's own (the target's).
`hold` exits as soon as this `stop` has returned, so the caller sees exit code 0.
Idempotent: exits 0 when hold is already gone.

Exit codes: 0 stopped (or nothing to stop); 1 hold did not acknowledge within 5s.
";

pub const INFO_HELP: &str = "\
Usage: distroless-debug-agent info [--pid PID] [-o json|text]

Facts about the target process: pid, uid/gid/groups, exe, cmdline, runtime
(go|jvm|python|node|other), listening sockets of its network namespace, mounts,
environment variable names (never values), whether its root is readable.
Facts that cannot be read are null (text: '-') and the reason is listed under errors.

Flags:
  --pid PID        the target process (default: as for shell)
  -o, --output F   json or text (default text)

Exit codes: 0 facts printed (possibly partial); 1 no such process; 2 bad flags.
";

pub const TAR_HELP: &str = "\
Usage: distroless-debug-agent tar [--root DIR] [--exclude PATH]... PATH...

Writes a tar (ustar with PAX extensions) of PATHs to stdout. PATHs are resolved inside
DIR (default the target's root, /proc/1/root): symlinks in them are followed as the target
would follow them, and neither absolute symlinks nor `..` ever leave DIR. Directories are
archived recursively; symlinks inside them are archived as symlinks, never followed.
Entry names are the PATHs without the leading `/` (`/etc/app` -> `etc/app/...`); for `/`
the entries are its children. Keeps modes, mtimes, uid/gid numbers, symlinks and hard
links; skips sockets, devices and fifos with a note. Unreadable files are reported on
stderr and skipped; then a summary line follows on stderr.

Flags:
  --root DIR       resolve PATHs inside DIR
  --exclude PATH   leave out PATH (inside the root) and everything below it; repeatable

Env: DISTROLESS_DEBUG_NO_OPENAT2=1 forces the userspace resolver.

Exit codes: 0 archive written (warnings possible); 1 nothing could be archived or
stdout failed; 2 bad flags.
";

pub const UNTAR_HELP: &str = "\
Usage: distroless-debug-agent untar [--root DIR] DEST

Reads a tar from stdin and extracts it under DEST, an existing directory resolved inside
DIR (default the target's root, /proc/1/root). Refuses, naming the entry, any entry with
`..`, an absolute name, or a path through a symlink (also one the archive itself created);
stops at the first refusal, leaving the entries before it in place. Existing files are
replaced. Sets modes and mtimes; uid/gid only where permitted. Devices and fifos are
skipped with a note.

Env: DISTROLESS_DEBUG_NO_OPENAT2=1 forces the userspace resolver.

Exit codes: 0 extracted; 1 an entry was refused or could not be written; 2 bad flags.
";

/// What the agent was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help(&'static str),
    Version,
    Hold(HoldFlags),
    Stop,
    Run(Vec<OsString>),
    Shell(ShellFlags),
    Info(InfoFlags),
    Tar(TarFlags),
    Untar(UntarFlags),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct HoldFlags {
    pub ttl: Option<Duration>,
    pub idle: Option<Duration>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ShellFlags {
    pub pid: Option<i32>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct InfoFlags {
    pub pid: Option<i32>,
    pub json: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct TarFlags {
    pub root: Option<PathBuf>,
    pub excludes: Vec<PathBuf>,
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct UntarFlags {
    pub root: Option<PathBuf>,
    pub dest: PathBuf,
}

/// A command line we refuse, with the help hint for its verb.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError {
    message: String,
    verb: Option<&'static str>,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.verb {
            Some(verb) => write!(
                f,
                "{}\nRun 'distroless-debug-agent {verb} --help' for usage.",
                self.message
            ),
            None => write!(
                f,
                "{}\nRun 'distroless-debug-agent --help' for usage.",
                self.message
            ),
        }
    }
}

pub fn parse(args: &[OsString]) -> Result<Command, UsageError> {
    let Some(verb) = args.first() else {
        return Err(UsageError {
            message: "missing verb".into(),
            verb: None,
        });
    };
    let rest = &args[1..];
    let verb = verb.to_str().unwrap_or("");
    if verb != "run"
        && wants_help(rest)
        && let Some(help) = help_of(verb)
    {
        return Ok(Command::Help(help));
    }
    match verb {
        "--help" | "-h" => Ok(Command::Help(MAIN_HELP)),
        "help" => match rest.first().and_then(|v| v.to_str()) {
            None => Ok(Command::Help(MAIN_HELP)),
            Some(v) => help_of(v).map(Command::Help).ok_or_else(|| UsageError {
                message: format!("unknown verb {v:?}"),
                verb: None,
            }),
        },
        "version" | "--version" | "-V" => Ok(Command::Version),
        "hold" => parse_hold(rest),
        "stop" => Flags::new("stop", rest).finish_without_positionals(Command::Stop),
        "run" => parse_run(rest),
        "shell" => parse_shell(rest),
        "info" => parse_info(rest),
        "tar" => parse_tar(rest),
        "untar" => parse_untar(rest),
        other => Err(UsageError {
            message: format!("unknown verb {other:?}"),
            verb: None,
        }),
    }
}

/// `--help` or `-h` among a verb's flags (before any `--`).
fn wants_help(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--help" || a == "-h")
}

fn help_of(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "hold" => HOLD_HELP,
        "run" => RUN_HELP,
        "shell" => SHELL_HELP,
        "stop" => STOP_HELP,
        "info" => INFO_HELP,
        "tar" => TAR_HELP,
        "untar" => UNTAR_HELP,
        _ => return None,
    })
}

fn parse_hold(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("hold", args);
    let mut hold = HoldFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--ttl", v) => hold.ttl = Some(flags.duration("--ttl", v)?),
            Arg::Flag("--idle", v) => hold.idle = Some(flags.duration("--idle", v)?),
            other => return Err(flags.unexpected(other)),
        }
    }
    flags.finish_without_positionals(Command::Hold(hold))
}

fn parse_run(args: &[OsString]) -> Result<Command, UsageError> {
    // Everything from the first non-flag word on is the command: `run ls -l` works as
    // `run -- ls -l`, and the command's own flags are never taken for ours.
    match args.first().and_then(|a| a.to_str()) {
        Some("--help" | "-h") => Ok(Command::Help(RUN_HELP)),
        Some("--") => non_empty_command(&args[1..]),
        Some(flag) if flag.starts_with('-') => Err(UsageError {
            message: format!("unknown flag {flag:?} (put the command after --)"),
            verb: Some("run"),
        }),
        _ => non_empty_command(args),
    }
}

fn non_empty_command(argv: &[OsString]) -> Result<Command, UsageError> {
    if argv.is_empty() {
        return Err(UsageError {
            message: "run needs a command".into(),
            verb: Some("run"),
        });
    }
    Ok(Command::Run(argv.to_vec()))
}

fn parse_shell(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("shell", args);
    let mut shell = ShellFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--pid", v) => shell.pid = Some(flags.pid(v)?),
            other => return Err(flags.unexpected(other)),
        }
    }
    flags.finish_without_positionals(Command::Shell(shell))
}

fn parse_info(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("info", args);
    let mut info = InfoFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--pid", v) => info.pid = Some(flags.pid(v)?),
            Arg::Flag("-o" | "--output", v) => {
                info.json = match flags.value("--output", v)?.to_str() {
                    Some("json") => true,
                    Some("text") => false,
                    _ => return Err(flags.error("--output must be json or text")),
                }
            }
            other => return Err(flags.unexpected(other)),
        }
    }
    flags.finish_without_positionals(Command::Info(info))
}

fn parse_tar(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("tar", args);
    let mut tar = TarFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--root", v) => tar.root = Some(flags.value("--root", v)?.into()),
            Arg::Flag("--exclude", v) => tar.excludes.push(flags.value("--exclude", v)?.into()),
            Arg::Positional(p) => tar.paths.push(p.into()),
            other => return Err(flags.unexpected(other)),
        }
    }
    if tar.paths.is_empty() {
        return Err(flags.error("tar needs at least one PATH"));
    }
    Ok(Command::Tar(tar))
}

fn parse_untar(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("untar", args);
    let mut root = None;
    let mut dests = Vec::new();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--root", v) => root = Some(flags.value("--root", v)?.into()),
            Arg::Positional(p) => dests.push(PathBuf::from(p)),
            other => return Err(flags.unexpected(other)),
        }
    }
    match <[PathBuf; 1]>::try_from(dests) {
        Ok([dest]) => Ok(Command::Untar(UntarFlags { root, dest })),
        Err(_) => Err(flags.error("untar needs exactly one DEST")),
    }
}

/// One word of a verb's arguments.
#[derive(Debug)]
enum Arg<'a> {
    /// `--name`, `--name=value` (value inline), `-o`, `-ovalue`.
    Flag(&'a str, Option<&'a OsStr>),
    Positional(&'a OsStr),
}

struct Flags<'a> {
    verb: &'static str,
    args: &'a [OsString],
    index: usize,
    only_positionals: bool,
    positionals: usize,
}

impl<'a> Flags<'a> {
    fn new(verb: &'static str, args: &'a [OsString]) -> Self {
        Flags {
            verb,
            args,
            index: 0,
            only_positionals: false,
            positionals: 0,
        }
    }

    fn next(&mut self) -> Result<Option<Arg<'a>>, UsageError> {
        let Some(word) = self.args.get(self.index) else {
            return Ok(None);
        };
        self.index += 1;
        if self.only_positionals {
            self.positionals += 1;
            return Ok(Some(Arg::Positional(word)));
        }
        let Some(text) = word.to_str() else {
            self.positionals += 1;
            return Ok(Some(Arg::Positional(word)));
        };
        Ok(Some(match text {
            "--" => {
                self.only_positionals = true;
                return self.next();
            }
            "-" => {
                self.positionals += 1;
                Arg::Positional(word)
            }
            long if long.starts_with("--") => match long.split_once('=') {
                Some((name, value)) => Arg::Flag(name, Some(OsStr::new(value))),
                None => Arg::Flag(long, None),
            },
            short if short.starts_with('-') => {
                let (name, value) = short.split_at(2.min(short.len()));
                Arg::Flag(name, (!value.is_empty()).then(|| OsStr::new(value)))
            }
            _ => {
                self.positionals += 1;
                Arg::Positional(word)
            }
        }))
    }

    /// The value of a flag: inline, or the next word.
    fn value(&mut self, name: &str, inline: Option<&'a OsStr>) -> Result<&'a OsStr, UsageError> {
        if let Some(v) = inline {
            return Ok(v);
        }
        let v = self
            .args
            .get(self.index)
            .ok_or_else(|| self.error(&format!("{name} needs a value")))?;
        self.index += 1;
        Ok(v)
    }

    fn duration(&mut self, name: &str, inline: Option<&'a OsStr>) -> Result<Duration, UsageError> {
        let v = self.value(name, inline)?;
        duration::parse(&v.to_string_lossy()).map_err(|e| self.error(&format!("{name}: {e}")))
    }

    fn pid(&mut self, inline: Option<&'a OsStr>) -> Result<i32, UsageError> {
        let v = self.value("--pid", inline)?;
        match v.to_str().and_then(|s| s.parse::<i32>().ok()) {
            Some(pid) if pid > 0 => Ok(pid),
            _ => Err(self.error(&format!("--pid: {v:?} is not a process id"))),
        }
    }

    fn error(&self, message: &str) -> UsageError {
        UsageError {
            message: message.to_string(),
            verb: Some(self.verb),
        }
    }

    fn unexpected(&self, arg: Arg<'_>) -> UsageError {
        match arg {
            Arg::Flag(name, _) => self.error(&format!("unknown flag {name:?} for {}", self.verb)),
            Arg::Positional(p) => self.error(&format!("unexpected argument {p:?}")),
        }
    }

    fn finish_without_positionals(self, command: Command) -> Result<Command, UsageError> {
        if self.positionals > 0 {
            return Err(self.error(&format!("{} takes no arguments", self.verb)));
        }
        Ok(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn parse_words(words: &[&str]) -> Result<Command, UsageError> {
        parse(&argv(words))
    }

    #[test]
    fn hold_flags_in_both_spellings() {
        let expected = Command::Hold(HoldFlags {
            ttl: Some(Duration::from_secs(5400)),
            idle: Some(Duration::from_secs(120)),
        });
        assert_eq!(
            parse_words(&["hold", "--ttl", "1h30m", "--idle", "2m"]),
            Ok(expected)
        );
        let expected = Command::Hold(HoldFlags {
            ttl: Some(Duration::from_secs(5400)),
            idle: Some(Duration::from_secs(120)),
        });
        assert_eq!(
            parse_words(&["hold", "--ttl=1h30m", "--idle=2m"]),
            Ok(expected)
        );
        assert_eq!(
            parse_words(&["hold"]),
            Ok(Command::Hold(HoldFlags::default()))
        );
    }

    #[test]
    fn bad_hold_flags_are_usage_errors() {
        assert!(parse_words(&["hold", "--ttl"]).is_err());
        assert!(parse_words(&["hold", "--ttl", "soon"]).is_err());
        assert!(parse_words(&["hold", "--forever"]).is_err());
        assert!(parse_words(&["hold", "extra"]).is_err());
    }

    #[test]
    fn every_verb_has_help() {
        for verb in ["hold", "run", "shell", "stop", "info", "tar", "untar"] {
            let help = help_of(verb).unwrap();
            assert_eq!(parse_words(&[verb, "--help"]), Ok(Command::Help(help)));
            assert_eq!(parse_words(&["help", verb]), Ok(Command::Help(help)));
            assert!(help.contains("Exit codes"), "{verb} help lists exit codes");
        }
        assert_eq!(parse_words(&["--help"]), Ok(Command::Help(MAIN_HELP)));
    }

    #[test]
    fn run_takes_the_command_verbatim() {
        assert_eq!(
            parse_words(&["run", "--", "ls", "-l", "--help"]),
            Ok(Command::Run(argv(&["ls", "-l", "--help"])))
        );
        assert_eq!(
            parse_words(&["run", "ls", "-l"]),
            Ok(Command::Run(argv(&["ls", "-l"])))
        );
        assert!(parse_words(&["run"]).is_err());
        assert!(parse_words(&["run", "--"]).is_err());
        assert!(parse_words(&["run", "-x"]).is_err());
    }

    #[test]
    fn info_output_and_pid() {
        assert_eq!(
            parse_words(&["info", "-o", "json", "--pid", "42"]),
            Ok(Command::Info(InfoFlags {
                pid: Some(42),
                json: true
            }))
        );
        assert_eq!(
            parse_words(&["info", "-ojson"]),
            Ok(Command::Info(InfoFlags {
                pid: None,
                json: true
            }))
        );
        assert_eq!(
            parse_words(&["info", "--output=text"]),
            Ok(Command::Info(InfoFlags {
                pid: None,
                json: false
            }))
        );
        assert!(parse_words(&["info", "-o", "yaml"]).is_err());
        assert!(parse_words(&["info", "--pid", "0"]).is_err());
        assert!(parse_words(&["info", "--pid", "x"]).is_err());
    }

    #[test]
    fn tar_and_untar_paths() {
        assert_eq!(
            parse_words(&["tar", "--root", "/r", "/etc", "--", "--odd-name"]),
            Ok(Command::Tar(TarFlags {
                root: Some("/r".into()),
                excludes: Vec::new(),
                paths: vec!["/etc".into(), "--odd-name".into()],
            }))
        );
        assert!(parse_words(&["tar"]).is_err());
        assert_eq!(
            parse_words(&["untar", "/tmp/x"]),
            Ok(Command::Untar(UntarFlags {
                root: None,
                dest: "/tmp/x".into()
            }))
        );
        assert!(parse_words(&["untar"]).is_err());
        assert!(parse_words(&["untar", "a", "b"]).is_err());
    }

    #[test]
    fn unknown_verbs_and_missing_verb() {
        assert!(parse_words(&[]).is_err());
        assert!(parse_words(&["frobnicate"]).is_err());
        assert_eq!(parse_words(&["version"]), Ok(Command::Version));
        assert_eq!(parse_words(&["--version"]), Ok(Command::Version));
    }
}
