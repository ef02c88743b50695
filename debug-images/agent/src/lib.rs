//! `distroless-debug-agent`: the entrypoint of every kubectl-distroless-debug image.
//!
//! The debug container's main process is `hold`; the plugin execs every other verb into the
//! container. The agent runs as the target's uid/gid with every capability dropped, so nothing
//! here may rely on privilege. See docs/agent.md for the verbs, files and exit codes.
//! [`main`] is the whole run (the binary,
//! `src/bin/distroless-debug-agent.rs`, calls it); [`fuzzing`] opens `untar` and path
//! resolution to the fuzz targets (fuzz/) and nothing else.

mod cli;
mod duration;
mod exit;
mod help;
mod hold;
mod info;
mod procs;
mod session;
mod start;
mod state;
mod stop;
mod sys;
mod tar;
mod target;

pub mod fuzzing;

use std::process::ExitCode;

use cli::Command;

/// The whole run of the agent, from its arguments to its exit status.
pub fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let invoked_as = argv.next();
    let mut args: Vec<_> = argv.collect();
    // The images link `start` to the agent: `start ARGS` is `distroless-debug-agent start ARGS`.
    if invoked_as
        .as_deref()
        .and_then(|a| std::path::Path::new(a).file_name())
        .is_some_and(|name| name == "start")
    {
        args.insert(0, "start".into());
    }
    let status = match cli::parse(&args) {
        Ok(command) => run(command),
        Err(err) => {
            eprintln!("distroless-debug-agent: {err}");
            exit::Status::Usage
        }
    };
    status.into()
}

fn run(command: Command) -> exit::Status {
    match command {
        Command::Help(text) => {
            print!("{text}");
            exit::Status::Success
        }
        Command::Version => {
            println!("distroless-debug-agent {}", env!("CARGO_PKG_VERSION"));
            exit::Status::Success
        }
        Command::Hold(flags) => hold::main(flags),
        Command::Stop => stop::main(),
        Command::Run(flags) => session::run(flags),
        Command::Shell(flags) => session::shell(flags),
        Command::Info(flags) => info::main(flags),
        Command::Target(flags) => target::main(flags),
        Command::Tar(flags) => tar::archive_main(flags),
        Command::Untar(flags) => tar::extract_main(flags),
        Command::Stat(flags) => tar::stat::main(flags),
        Command::Install(dest) => start::install::main(&dest),
        Command::Entrypoint(flags) => start::entrypoint::main(flags),
        Command::Start(flags) => start::client::main(flags),
    }
}
