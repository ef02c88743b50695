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
use crate::help::{
    HOLD_HELP, INFO_HELP, MAIN_HELP, RUN_HELP, SHELL_HELP, STAT_HELP, STOP_HELP, TAR_HELP,
    UNTAR_HELP,
};

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
    Stat(StatFlags),
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
pub struct StatFlags {
    pub root: Option<PathBuf>,
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
        "stat" => parse_stat(rest),
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
        "stat" => STAT_HELP,
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

fn parse_stat(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("stat", args);
    let mut stat = StatFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--root", v) => stat.root = Some(flags.value("--root", v)?.into()),
            Arg::Positional(p) => stat.paths.push(p.into()),
            other => return Err(flags.unexpected(other)),
        }
    }
    if stat.paths.is_empty() {
        return Err(flags.error("stat needs at least one PATH"));
    }
    Ok(Command::Stat(stat))
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
