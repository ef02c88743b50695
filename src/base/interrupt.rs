//! Ctrl-C, SIGTERM and SIGHUP, turned into a value the session can select on.
//!
//! Once these handlers are installed the default "die now" is gone, so every wait that could
//! take long must select on [`Interrupts::recv`] and then tear down. During an interactive
//! session the terminal is raw, so Ctrl-C is a byte for the remote and never a SIGINT here.

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Interrupts {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Interrupts {
    pub fn install() -> std::io::Result<Interrupts> {
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The number of the next of these signals to arrive.
    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
        }
    }
}
