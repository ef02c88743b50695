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
    ENTRYPOINT_HELP, HOLD_HELP, INFO_HELP, INSTALL_HELP, MAIN_HELP, RUN_HELP, SHELL_HELP,
    START_HELP, STAT_HELP, STOP_HELP, TAR_HELP, TARGET_HELP, UNTAR_HELP,
};
use crate::target::cgroup::ContainerId;

/// What the agent was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help(&'static str),
    Version,
    Hold(HoldFlags),
    Stop,
    Run(RunFlags),
    Shell(ShellFlags),
    Info(InfoFlags),
    Target(TargetVerbFlags),
    Tar(TarFlags),
    Untar(UntarFlags),
    Stat(StatFlags),
    Install(PathBuf),
    Entrypoint(EntrypointFlags),
    Start(StartFlags),
}

/// `--target-pid N` and `--target-id ID`, accepted by every verb that works on the target.
/// The environment (`DISTROLESS_DEBUG_TARGET_PID`, `DISTROLESS_DEBUG_TARGET_ID`) is merged
/// later, in [`crate::target::request`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TargetFlags {
    pub pid: Option<i32>,
    pub id: Option<ContainerId>,
}

impl TargetFlags {
    fn is_empty(&self) -> bool {
        self.pid.is_none() && self.id.is_none()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct HoldFlags {
    pub ttl: Option<Duration>,
    pub idle: Option<Duration>,
    pub target: TargetFlags,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunFlags {
    pub target: TargetFlags,
    /// `--end-container`: `hold` ends the container when this session ends and no other is
    /// alive.
    pub end_container: bool,
    /// `--handshake`: run nothing until stdin's first line says `go` (session.rs).
    pub handshake: bool,
    pub argv: Vec<OsString>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ShellFlags {
    pub target: TargetFlags,
    /// As `run --end-container`.
    pub end_container: bool,
    pub handshake: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct InfoFlags {
    pub target: TargetFlags,
    pub json: bool,
    /// As `run --end-container`: this `info` is a session for its whole run.
    pub end_container: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct TargetVerbFlags {
    pub target: TargetFlags,
    pub json: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct TarFlags {
    pub root: Option<PathBuf>,
    pub target: TargetFlags,
    /// As `run --end-container`: this `tar` is a session for its whole run.
    pub end_container: bool,
    pub excludes: Vec<PathBuf>,
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct StatFlags {
    pub root: Option<PathBuf>,
    pub target: TargetFlags,
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct UntarFlags {
    pub root: Option<PathBuf>,
    pub target: TargetFlags,
    /// As `run --end-container`: this `untar` is a session for its whole run.
    pub end_container: bool,
    pub dest: PathBuf,
}

/// `entrypoint --socket PATH [--] ARGV...`.
#[derive(Debug, PartialEq, Eq)]
pub struct EntrypointFlags {
    pub socket: PathBuf,
    pub argv: Vec<OsString>,
}

/// `start [--socket PATH] [--wait-for-trace] [KEY=VALUE...] [--] [ARGS...]`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StartFlags {
    pub socket: Option<PathBuf>,
    pub wait_for_trace: bool,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
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
    if !matches!(verb, "run" | "entrypoint" | "start")
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
        "target" => parse_target(rest),
        "tar" => parse_tar(rest),
        "untar" => parse_untar(rest),
        "stat" => parse_stat(rest),
        "install" => parse_install(rest),
        "entrypoint" => parse_entrypoint(rest),
        "start" => parse_start(rest),
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
        "target" => TARGET_HELP,
        "tar" => TAR_HELP,
        "untar" => UNTAR_HELP,
        "stat" => STAT_HELP,
        "install" => INSTALL_HELP,
        "entrypoint" => ENTRYPOINT_HELP,
        "start" => START_HELP,
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
            Arg::Flag(name @ ("--target-pid" | "--target-id"), v) => {
                flags.target(&mut hold.target, name, v)?
            }
            other => return Err(flags.unexpected(other)),
        }
    }
    flags.finish_without_positionals(Command::Hold(hold))
}

fn parse_run(args: &[OsString]) -> Result<Command, UsageError> {
    // Our flags come first; everything from the first other word on is the command: `run ls
    // -l` works as `run -- ls -l`, and the command's own flags are never taken for ours.
    let mut flags = Flags::new("run", args);
    let mut target = TargetFlags::default();
    let mut end_container = false;
    let mut handshake = false;
    loop {
        let at = flags.index;
        match args.get(at).and_then(|a| a.to_str()) {
            Some("--help" | "-h") => return Ok(Command::Help(RUN_HELP)),
            Some("--") => {
                return non_empty_command(target, end_container, handshake, &args[at + 1..]);
            }
            Some("--handshake") => {
                flags.index += 1;
                handshake = true;
            }
            Some(flag) if flag.starts_with('-') && flag != "-" => match flags.next()? {
                Some(Arg::Flag(name @ ("--target-pid" | "--target-id"), v)) => {
                    flags.target(&mut target, name, v)?
                }
                Some(Arg::Flag("--end-container", None)) => end_container = true,
                _ => {
                    return Err(
                        flags.error(&format!("unknown flag {flag:?} (put the command after --)"))
                    );
                }
            },
            _ => return non_empty_command(target, end_container, handshake, &args[at..]),
        }
    }
}

fn non_empty_command(
    target: TargetFlags,
    end_container: bool,
    handshake: bool,
    argv: &[OsString],
) -> Result<Command, UsageError> {
    if argv.is_empty() {
        return Err(UsageError {
            message: "run needs a command".into(),
            verb: Some("run"),
        });
    }
    Ok(Command::Run(RunFlags {
        target,
        end_container,
        handshake,
        argv: argv.to_vec(),
    }))
}

fn parse_shell(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("shell", args);
    let mut shell = ShellFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            // `--pid` is the older spelling of `--target-pid`.
            Arg::Flag(name @ ("--target-pid" | "--target-id" | "--pid"), v) => {
                flags.target(&mut shell.target, name, v)?
            }
            Arg::Flag("--end-container", None) => shell.end_container = true,
            Arg::Flag("--handshake", None) => shell.handshake = true,
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
            Arg::Flag(name @ ("--target-pid" | "--target-id" | "--pid"), v) => {
                flags.target(&mut info.target, name, v)?
            }
            Arg::Flag("-o" | "--output", v) => info.json = flags.json(v)?,
            Arg::Flag("--end-container", None) => info.end_container = true,
            other => return Err(flags.unexpected(other)),
        }
    }
    flags.finish_without_positionals(Command::Info(info))
}

fn parse_target(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("target", args);
    let mut target = TargetVerbFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag(name @ ("--target-pid" | "--target-id"), v) => {
                flags.target(&mut target.target, name, v)?
            }
            Arg::Flag("-o" | "--output", v) => target.json = flags.json(v)?,
            other => return Err(flags.unexpected(other)),
        }
    }
    flags.finish_without_positionals(Command::Target(target))
}

fn parse_tar(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("tar", args);
    let mut tar = TarFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--root", v) => tar.root = Some(flags.value("--root", v)?.into()),
            Arg::Flag(name @ ("--target-pid" | "--target-id"), v) => {
                flags.target(&mut tar.target, name, v)?
            }
            Arg::Flag("--exclude", v) => tar.excludes.push(flags.value("--exclude", v)?.into()),
            Arg::Flag("--end-container", None) => tar.end_container = true,
            Arg::Positional(p) => tar.paths.push(p.into()),
            other => return Err(flags.unexpected(other)),
        }
    }
    if tar.paths.is_empty() {
        return Err(flags.error("tar needs at least one PATH"));
    }
    flags.root_or_target(&tar.root, &tar.target)?;
    Ok(Command::Tar(tar))
}

fn parse_untar(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("untar", args);
    let mut root = None;
    let mut target = TargetFlags::default();
    let mut end_container = false;
    let mut dests = Vec::new();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--root", v) => root = Some(flags.value("--root", v)?.into()),
            Arg::Flag(name @ ("--target-pid" | "--target-id"), v) => {
                flags.target(&mut target, name, v)?
            }
            Arg::Flag("--end-container", None) => end_container = true,
            Arg::Positional(p) => dests.push(PathBuf::from(p)),
            other => return Err(flags.unexpected(other)),
        }
    }
    flags.root_or_target(&root, &target)?;
    match <[PathBuf; 1]>::try_from(dests) {
        Ok([dest]) => Ok(Command::Untar(UntarFlags {
            root,
            target,
            end_container,
            dest,
        })),
        Err(_) => Err(flags.error("untar needs exactly one DEST")),
    }
}

fn parse_stat(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("stat", args);
    let mut stat = StatFlags::default();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Flag("--root", v) => stat.root = Some(flags.value("--root", v)?.into()),
            Arg::Flag(name @ ("--target-pid" | "--target-id"), v) => {
                flags.target(&mut stat.target, name, v)?
            }
            Arg::Positional(p) => stat.paths.push(p.into()),
            other => return Err(flags.unexpected(other)),
        }
    }
    if stat.paths.is_empty() {
        return Err(flags.error("stat needs at least one PATH"));
    }
    flags.root_or_target(&stat.root, &stat.target)?;
    Ok(Command::Stat(stat))
}

fn parse_install(args: &[OsString]) -> Result<Command, UsageError> {
    let mut flags = Flags::new("install", args);
    let mut dests = Vec::new();
    while let Some(arg) = flags.next()? {
        match arg {
            Arg::Positional(p) => dests.push(PathBuf::from(p)),
            other => return Err(flags.unexpected(other)),
        }
    }
    match <[PathBuf; 1]>::try_from(dests) {
        Ok([dest]) => Ok(Command::Install(dest)),
        Err(_) => Err(flags.error("install needs exactly one DEST")),
    }
}

fn parse_entrypoint(args: &[OsString]) -> Result<Command, UsageError> {
    // Our flags come first; the held command starts at `--` or the first other word, so
    // its own flags are never taken for ours (as `run` does).
    let mut flags = Flags::new("entrypoint", args);
    let mut socket = None;
    let argv = loop {
        let at = flags.index;
        match args.get(at).and_then(|a| a.to_str()) {
            Some("--help" | "-h") => return Ok(Command::Help(ENTRYPOINT_HELP)),
            Some("--") => break &args[at + 1..],
            Some(flag) if flag.starts_with('-') && flag != "-" => match flags.next()? {
                Some(Arg::Flag("--socket", v)) => {
                    socket = Some(PathBuf::from(flags.value("--socket", v)?))
                }
                _ => return Err(flags.error(&format!("unknown flag {flag:?} (put ARGV after --)"))),
            },
            _ => break &args[at..],
        }
    };
    let socket = socket.ok_or_else(|| flags.error("entrypoint needs --socket PATH"))?;
    if argv.is_empty() {
        return Err(flags.error("entrypoint needs the command to hold after --"));
    }
    Ok(Command::Entrypoint(EntrypointFlags {
        socket,
        argv: argv.to_vec(),
    }))
}

fn parse_start(args: &[OsString]) -> Result<Command, UsageError> {
    // Flags, then KEY=VALUE overrides (as env(1) takes them), then the extra arguments:
    // from `--`, or the first word that is neither (a flag after an override included),
    // everything is an argument of the app.
    let mut flags = Flags::new("start", args);
    let mut start = StartFlags::default();
    let utf8 = |flags: &Flags<'_>, word: &OsStr| {
        word.to_str()
            .map(String::from)
            .ok_or_else(|| flags.error(&format!("{word:?} is not UTF-8")))
    };
    let rest = loop {
        let at = flags.index;
        let Some(word) = args.get(at) else {
            break &args[at..];
        };
        match word.to_str() {
            Some("--help" | "-h") => return Ok(Command::Help(START_HELP)),
            Some("--") => break &args[at + 1..],
            Some(flag) if flag.starts_with('-') && flag != "-" && start.env.is_empty() => {
                match flags.next()? {
                    Some(Arg::Flag("--wait-for-trace", None)) => start.wait_for_trace = true,
                    Some(Arg::Flag("--socket", v)) => {
                        start.socket = Some(PathBuf::from(flags.value("--socket", v)?))
                    }
                    _ => {
                        return Err(flags.error(&format!(
                            "unknown flag {flag:?} (put app arguments after --)"
                        )));
                    }
                }
            }
            Some(assignment)
                if assignment
                    .split_once('=')
                    .is_some_and(|(k, _)| crate::start::proto::is_env_name(k)) =>
            {
                let (k, v) = assignment.split_once('=').expect("checked above");
                start.env.push((k.to_string(), v.to_string()));
                flags.index += 1;
            }
            _ => break &args[at..],
        }
    };
    start.args = rest
        .iter()
        .map(|a| utf8(&flags, a))
        .collect::<Result<_, _>>()?;
    Ok(Command::Start(start))
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

    fn pid(&mut self, name: &str, inline: Option<&'a OsStr>) -> Result<i32, UsageError> {
        let v = self.value(name, inline)?;
        match v.to_str().and_then(|s| s.parse::<i32>().ok()) {
            Some(pid) if pid > 0 => Ok(pid),
            _ => Err(self.error(&format!("{name}: {v:?} is not a process id"))),
        }
    }

    /// `--target-pid N` (also spelled `--pid`) or `--target-id ID` into `target`.
    fn target(
        &mut self,
        target: &mut TargetFlags,
        name: &str,
        inline: Option<&'a OsStr>,
    ) -> Result<(), UsageError> {
        if name == "--target-id" {
            let v = self.value(name, inline)?;
            let id = v
                .to_str()
                .ok_or_else(|| format!("{v:?} is not a container ID"))
                .and_then(ContainerId::parse)
                .map_err(|e| self.error(&format!("--target-id: {e}")))?;
            target.id = Some(id);
        } else {
            target.pid = Some(self.pid(name, inline)?);
        }
        Ok(())
    }

    fn json(&mut self, inline: Option<&'a OsStr>) -> Result<bool, UsageError> {
        match self.value("--output", inline)?.to_str() {
            Some("json") => Ok(true),
            Some("text") => Ok(false),
            _ => Err(self.error("--output must be json or text")),
        }
    }

    /// `--root DIR` names the directory itself: a target to find makes no sense beside it.
    fn root_or_target(
        &self,
        root: &Option<PathBuf>,
        target: &TargetFlags,
    ) -> Result<(), UsageError> {
        if root.is_some() && !target.is_empty() {
            return Err(self.error(
                "--root names the directory itself: leave out --target-pid and --target-id",
            ));
        }
        Ok(())
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
            target: TargetFlags::default(),
        });
        assert_eq!(
            parse_words(&["hold", "--ttl", "1h30m", "--idle", "2m"]),
            Ok(expected)
        );
        let expected = Command::Hold(HoldFlags {
            ttl: Some(Duration::from_secs(5400)),
            idle: Some(Duration::from_secs(120)),
            target: TargetFlags::default(),
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
        for verb in [
            "hold", "run", "shell", "stop", "info", "target", "tar", "untar", "stat",
        ] {
            let help = help_of(verb).unwrap();
            assert_eq!(parse_words(&[verb, "--help"]), Ok(Command::Help(help)));
            assert_eq!(parse_words(&["help", verb]), Ok(Command::Help(help)));
            assert!(help.contains("Exit codes"), "{verb} help lists exit codes");
        }
        assert_eq!(parse_words(&["--help"]), Ok(Command::Help(MAIN_HELP)));
    }

    #[test]
    fn run_takes_the_command_verbatim() {
        let run = |words: &[&str]| {
            Ok(Command::Run(RunFlags {
                target: TargetFlags::default(),
                end_container: false,
                handshake: false,
                argv: argv(words),
            }))
        };
        assert_eq!(
            parse_words(&["run", "--", "ls", "-l", "--help"]),
            run(&["ls", "-l", "--help"])
        );
        assert_eq!(parse_words(&["run", "ls", "-l"]), run(&["ls", "-l"]));
        assert_eq!(
            parse_words(&["run", "ls", "--target-pid", "3"]),
            run(&["ls", "--target-pid", "3"]),
            "flags after the command are the command's"
        );
        assert!(parse_words(&["run"]).is_err());
        assert!(parse_words(&["run", "--"]).is_err());
        assert!(parse_words(&["run", "-x"]).is_err());
        assert_eq!(
            parse_words(&["run", "--end-container", "--", "ls", "--end-container"]),
            Ok(Command::Run(RunFlags {
                target: TargetFlags::default(),
                end_container: true,
                handshake: false,
                argv: argv(&["ls", "--end-container"]),
            })),
            "ours before the command, the command's after it"
        );
        assert!(parse_words(&["run", "--end-container=yes", "ls"]).is_err());
        assert_eq!(
            parse_words(&["shell", "--end-container"]),
            Ok(Command::Shell(ShellFlags {
                target: TargetFlags::default(),
                end_container: true,
                handshake: false,
            }))
        );
    }

    #[test]
    fn handshake_is_a_flag_of_run_and_shell_and_only_before_the_command() {
        assert_eq!(
            parse_words(&["run", "--handshake", "--target-id", ID, "--", "ls"]),
            Ok(Command::Run(RunFlags {
                target: by_id(),
                end_container: false,
                handshake: true,
                argv: argv(&["ls"])
            }))
        );
        assert_eq!(
            parse_words(&["run", "ls", "--handshake"]),
            Ok(Command::Run(RunFlags {
                target: TargetFlags::default(),
                end_container: false,
                handshake: false,
                argv: argv(&["ls", "--handshake"])
            })),
            "after the command it is the command's"
        );
        assert_eq!(
            parse_words(&["shell", "--handshake"]),
            Ok(Command::Shell(ShellFlags {
                target: TargetFlags::default(),
                end_container: false,
                handshake: true
            }))
        );
        assert!(parse_words(&["shell", "--handshake=yes"]).is_err());
    }

    #[test]
    fn info_output_and_pid() {
        let info = |pid, json| {
            Ok(Command::Info(InfoFlags {
                target: TargetFlags { pid, id: None },
                json,
                end_container: false,
            }))
        };
        assert_eq!(
            parse_words(&["info", "-o", "json", "--target-pid", "42"]),
            info(Some(42), true)
        );
        assert_eq!(
            parse_words(&["info", "-o", "json", "--pid", "42"]),
            info(Some(42), true),
            "--pid is the older spelling"
        );
        assert_eq!(parse_words(&["info", "-ojson"]), info(None, true));
        assert_eq!(parse_words(&["info", "--output=text"]), info(None, false));
        assert!(parse_words(&["info", "-o", "yaml"]).is_err());
        assert!(parse_words(&["info", "--pid", "0"]).is_err());
        assert!(parse_words(&["info", "--target-pid", "x"]).is_err());
    }

    const ID: &str = "3f2a0c1b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a";

    fn by_id() -> TargetFlags {
        TargetFlags {
            pid: None,
            id: Some(ContainerId::parse(ID).unwrap()),
        }
    }

    #[test]
    fn every_target_verb_takes_the_target_flags() {
        let with_id = format!("--target-id=containerd://{ID}");
        assert_eq!(
            parse_words(&["hold", &with_id]),
            Ok(Command::Hold(HoldFlags {
                target: by_id(),
                ..HoldFlags::default()
            }))
        );
        assert_eq!(
            parse_words(&["run", "--target-id", ID, "--", "ls"]),
            Ok(Command::Run(RunFlags {
                target: by_id(),
                end_container: false,
                handshake: false,
                argv: argv(&["ls"])
            }))
        );
        assert_eq!(
            parse_words(&["run", "--target-pid=7", "ls", "-l"]),
            Ok(Command::Run(RunFlags {
                target: TargetFlags {
                    pid: Some(7),
                    id: None
                },
                end_container: false,
                handshake: false,
                argv: argv(&["ls", "-l"])
            }))
        );
        assert_eq!(
            parse_words(&["shell", "--target-id", &format!("cri-o://{ID}")]),
            Ok(Command::Shell(ShellFlags {
                target: by_id(),
                end_container: false,
                handshake: false
            }))
        );
        assert_eq!(
            parse_words(&["target", "--target-id", ID, "-o", "json"]),
            Ok(Command::Target(TargetVerbFlags {
                target: by_id(),
                json: true
            }))
        );
        assert_eq!(
            parse_words(&["tar", "--target-id", ID, "/etc"]),
            Ok(Command::Tar(TarFlags {
                target: by_id(),
                paths: vec!["/etc".into()],
                ..TarFlags::default()
            }))
        );
        assert_eq!(
            parse_words(&["untar", "--target-id", ID, "/tmp"]),
            Ok(Command::Untar(UntarFlags {
                target: by_id(),
                dest: "/tmp".into(),
                ..UntarFlags::default()
            }))
        );
        assert_eq!(
            parse_words(&["stat", "--target-pid", "9", "/etc"]),
            Ok(Command::Stat(StatFlags {
                target: TargetFlags {
                    pid: Some(9),
                    id: None
                },
                paths: vec!["/etc".into()],
                root: None
            }))
        );
    }

    #[test]
    fn bad_target_flags_are_usage_errors() {
        for words in [
            &["target", "--target-id"][..],
            &["target", "--target-id", "containerd://"],
            &["target", "--target-id", "a/b"],
            &["target", "--target-pid", "-3"],
            &["target", "extra"],
            &["run", "--target-pid", "0", "ls"],
            &["run", "--target-id"],
            &["run", "--target-pid", "3"],
            &["tar", "--root", "/r", "--target-pid", "3", "/etc"],
            &["untar", "--root", "/r", "--target-id", ID, "/tmp"],
            &["stat", "--target-pid", "3", "--root", "/r", "/etc"],
        ] {
            let err = parse_words(words).unwrap_err();
            assert!(!err.to_string().is_empty(), "{words:?}");
        }
        let err = parse_words(&["tar", "--root", "/r", "--target-pid", "3", "/etc"]).unwrap_err();
        assert!(err.to_string().contains("--root"), "{err}");
    }

    #[test]
    fn tar_and_untar_paths() {
        assert_eq!(
            parse_words(&["tar", "--root", "/r", "/etc", "--", "--odd-name"]),
            Ok(Command::Tar(TarFlags {
                root: Some("/r".into()),
                paths: vec!["/etc".into(), "--odd-name".into()],
                ..TarFlags::default()
            }))
        );
        assert!(parse_words(&["tar"]).is_err());
        assert_eq!(
            parse_words(&["untar", "/tmp/x"]),
            Ok(Command::Untar(UntarFlags {
                dest: "/tmp/x".into(),
                ..UntarFlags::default()
            }))
        );
        assert!(parse_words(&["untar"]).is_err());
        assert!(parse_words(&["untar", "a", "b"]).is_err());
    }

    #[test]
    fn tar_untar_and_info_take_end_container_as_a_plain_flag() {
        assert_eq!(
            parse_words(&["tar", "--end-container", "--target-id", ID, "--", "/etc"]),
            Ok(Command::Tar(TarFlags {
                target: by_id(),
                end_container: true,
                paths: vec!["/etc".into()],
                ..TarFlags::default()
            }))
        );
        assert_eq!(
            parse_words(&["tar", "--root", "/r", "--", "--end-container"]),
            Ok(Command::Tar(TarFlags {
                root: Some("/r".into()),
                paths: vec!["--end-container".into()],
                ..TarFlags::default()
            })),
            "after -- it is a PATH"
        );
        assert_eq!(
            parse_words(&["untar", "--root", "/r", "--end-container", "/tmp"]),
            Ok(Command::Untar(UntarFlags {
                root: Some("/r".into()),
                end_container: true,
                dest: "/tmp".into(),
                ..UntarFlags::default()
            }))
        );
        assert_eq!(
            parse_words(&["info", "--end-container", "-o", "json"]),
            Ok(Command::Info(InfoFlags {
                target: TargetFlags::default(),
                json: true,
                end_container: true,
            }))
        );
        for verb in [&["tar", "/etc"][..], &["untar", "/tmp"], &["info"]] {
            let mut words = vec![verb[0], "--end-container=yes"];
            words.extend_from_slice(&verb[1..]);
            assert!(parse_words(&words).is_err(), "{words:?}");
        }
        assert!(
            parse_words(&["stat", "--end-container", "/etc"]).is_err(),
            "stat is never the last exec"
        );
    }

    #[test]
    fn unknown_verbs_and_missing_verb() {
        assert!(parse_words(&[]).is_err());
        assert!(parse_words(&["frobnicate"]).is_err());
        assert_eq!(parse_words(&["version"]), Ok(Command::Version));
        assert_eq!(parse_words(&["--version"]), Ok(Command::Version));
    }

    #[test]
    fn install_takes_one_dest() {
        assert_eq!(
            parse_words(&["install", "/.distroless-debug/agent"]),
            Ok(Command::Install("/.distroless-debug/agent".into()))
        );
        assert!(parse_words(&["install"]).is_err());
        assert!(parse_words(&["install", "a", "b"]).is_err());
    }

    #[test]
    fn entrypoint_keeps_the_held_commands_own_flags() {
        let expected = Command::Entrypoint(EntrypointFlags {
            socket: "/s.sock".into(),
            argv: argv(&["/app", "--socket", "x", "-v"]),
        });
        assert_eq!(
            parse_words(&[
                "entrypoint",
                "--socket",
                "/s.sock",
                "--",
                "/app",
                "--socket",
                "x",
                "-v"
            ]),
            Ok(expected)
        );
        assert!(matches!(
            parse_words(&["entrypoint", "--socket=/s.sock", "/app"]),
            Ok(Command::Entrypoint(EntrypointFlags { argv, .. })) if argv == ["/app"]
        ));
        assert!(parse_words(&["entrypoint", "--", "/app"]).is_err());
        assert!(parse_words(&["entrypoint", "--socket", "/s"]).is_err());
        assert_eq!(
            parse_words(&["entrypoint", "--help"]),
            Ok(Command::Help(ENTRYPOINT_HELP))
        );
    }

    #[test]
    fn start_takes_flags_then_overrides_then_arguments() {
        let expected = Command::Start(StartFlags {
            socket: None,
            wait_for_trace: true,
            env: vec![
                ("PORT".into(), "8080".into()),
                ("MODE".into(), "a=b".into()),
            ],
            args: vec!["--verbose".into(), "X=1".into()],
        });
        assert_eq!(
            parse_words(&[
                "start",
                "--wait-for-trace",
                "PORT=8080",
                "MODE=a=b",
                "--verbose",
                "X=1"
            ]),
            Ok(expected)
        );
        let after_dashes = parse_words(&["start", "--", "PORT=1"]).unwrap();
        assert_eq!(
            after_dashes,
            Command::Start(StartFlags {
                args: vec!["PORT=1".into()],
                ..Default::default()
            })
        );
        assert_eq!(
            parse_words(&["start"]),
            Ok(Command::Start(StartFlags::default()))
        );
        assert!(parse_words(&["start", "--bogus"]).is_err());
        assert!(matches!(
            parse_words(&["start", "--socket", "/s", "1X=2"]),
            Ok(Command::Start(StartFlags { socket: Some(_), ref args, .. })) if args == &["1X=2"]
        ));
        assert_eq!(parse_words(&["start", "-h"]), Ok(Command::Help(START_HELP)));
    }
}
