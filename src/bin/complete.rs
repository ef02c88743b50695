//! `kubectl_complete-distroless_debug`: kubectl (1.26 and later) runs it for `kubectl
//! distroless-debug <TAB>` with the words typed after the plugin's name. It hands them to the
//! plugin installed beside it (else the one on PATH), whose hidden `__complete` verb answers
//! in cobra's completion protocol (src/cmd/complete.rs).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const PLUGIN: &str = "kubectl-distroless_debug";

fn main() -> ExitCode {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(PLUGIN)))
        .filter(|path| path.is_file());
    let plugin = beside.unwrap_or_else(|| PathBuf::from(PLUGIN));
    // exec returns only when the plugin could not be run: then no candidates, and no file
    // names either (ShellCompDirectiveNoFileComp), rather than an error in the shell.
    let _ = Command::new(plugin)
        .arg("__complete")
        .args(std::env::args_os().skip(1))
        .exec();
    println!(":4");
    ExitCode::SUCCESS
}
