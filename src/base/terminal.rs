//! The local terminal during an interactive session: raw mode, size, and keyboard input.
//!
//! Raw mode exists only inside a [`RawMode`] guard, and the panic hook restores the terminal
//! before the panic message is printed, so no path leaves the user's shell in raw mode (the
//! tokio-console pattern). crossterm saves the original termios and puts exactly it back, so
//! `stty -g` is the same before and after. Keyboard input is read on a dedicated OS thread:
//! `tokio::io::stdin` reads on the blocking pool and can keep the runtime from shutting down.

use std::io::Read;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::api::TerminalSize;
use tokio::sync::mpsc;

static RAW: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

fn restore() {
    if RAW.swap(false, Ordering::SeqCst) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Restores the terminal on panic, then runs the previous hook. Installed once, at start.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// The terminal is raw while this lives.
pub struct RawMode(());

impl RawMode {
    pub fn enable() -> std::io::Result<RawMode> {
        install_panic_hook();
        crossterm::terminal::enable_raw_mode()?;
        RAW.store(true, Ordering::SeqCst);
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// The local terminal's size, as the remote wants it.
pub fn size() -> Option<TerminalSize> {
    crossterm::terminal::size()
        .ok()
        .map(|(width, height)| TerminalSize { width, height })
}

/// Our stdin, chunk by chunk, read on its own thread; the channel closes at EOF.
pub fn spawn_stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
    // Without a thread the channel is simply closed: the remote sees EOF on stdin.
    drop(spawned);
    rx
}
