//! `tar` and `untar` inside the target's root (issue 5).

use crate::cli::{TarFlags, UntarFlags};
use crate::exit::Status;

pub fn archive_main(_flags: TarFlags) -> Status {
    eprintln!("distroless-debug-agent tar: not implemented yet");
    Status::Failure
}

pub fn extract_main(_flags: UntarFlags) -> Status {
    eprintln!("distroless-debug-agent untar: not implemented yet");
    Status::Failure
}
