//! Terminals: runc's `--console-socket` protocol (runc connects and sends the pty master with
//! SCM_RIGHTS) and resizing the pty.

use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener as StdListener};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::mpsc;

use super::sys;
use crate::runtime::TerminalSize;

/// Run `start` (a blocking runc invocation given the console socket argument) and receive the
/// pty master runc sends. The socket is abstract (`@name`), so nothing is left on disk.
pub async fn with_console<T, F>(start: F) -> Result<(T, OwnedFd), String>
where
    T: Send + 'static,
    F: FnOnce(&str) -> Result<T, String> + Send + 'static,
{
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| e.to_string())?;
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("kube-sandbox-console-{name}");
    let listener = (|| {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let l = StdListener::bind_addr(&addr)?;
        l.set_nonblocking(true)?;
        UnixListener::from_std(l)
    })()
    .map_err(|e| format!("console socket: {e}"))?;
    let arg = format!("@{name}");
    let mut job = tokio::task::spawn_blocking(move || start(&arg));

    let accept = async {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let stream = stream.into_std().map_err(|e| e.to_string())?;
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || sys::recv_fd(&stream))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("receiving the pty from runc: {e}"))
    };
    tokio::pin!(accept);
    tokio::select! {
        master = &mut accept => {
            let result = job.await.map_err(|e| e.to_string())?;
            let master = master?;
            Ok((result?, master))
        }
        result = &mut job => {
            let result = result.map_err(|e| e.to_string())??;
            // runc succeeded; the fd must already be on its way.
            let master = tokio::time::timeout(Duration::from_secs(5), accept)
                .await
                .map_err(|_| "runc did not send the pty master".to_string())??;
            Ok((result, master))
        }
    }
}

/// Apply sizes sent by the client to the pty until the sender is dropped.
pub fn resizer(master: OwnedFd) -> mpsc::UnboundedSender<TerminalSize> {
    let (tx, mut rx) = mpsc::unbounded_channel::<TerminalSize>();
    tokio::spawn(async move {
        while let Some(size) = rx.recv().await {
            let _ = sys::set_window_size(&master, size.width, size.height);
        }
    });
    tx
}
