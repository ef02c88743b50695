//! `sandbox-app`: the one program inside the sandbox's distroless-app image.
//!
//! Like a real distroless workload it is a single static binary with nothing else beside it:
//! it serves HTTP on a TCP port (8080, or `PORT`), logs one line a second to stdout and exits
//! cleanly on SIGTERM so a graceful pod delete does not have to wait for SIGKILL.
//!
//! `sandbox-app require-port` is the crashing app of the crash-loop tests: the same server,
//! but like a service whose config is incomplete it exits 1 at start, with
//! `sandbox-app: PORT is not set` on stderr, unless `PORT` is set.
//!
//! `sandbox-app pause` is the pod sandbox's ("pause") process instead: it holds the pod's
//! namespaces open, reaps orphans when it is PID 1 of a shared PID namespace, and exits on
//! SIGTERM/SIGINT.
//!
//! It uses std only; the few libc calls std does not wrap are declared below (libc is linked
//! into every std program anyway).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn _exit(code: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}

extern "C" fn exit_on_signal(_: i32) {
    // SAFETY: _exit is async-signal-safe; nothing else runs in this handler.
    unsafe { _exit(0) }
}

/// Exit with status 0 on SIGTERM and SIGINT (PID 1 of a namespace ignores them otherwise).
fn exit_on_termination_signals() {
    for sig in [SIGTERM, SIGINT] {
        // SAFETY: installs a handler that only calls the async-signal-safe `_exit`.
        unsafe { signal(sig, exit_on_signal) };
    }
}

fn main() {
    exit_on_termination_signals();
    match std::env::args().nth(1).as_deref() {
        Some("pause") => pause(),
        Some("require-port") => {
            if std::env::var_os("PORT").is_none_or(|p| p.is_empty()) {
                eprintln!("{} sandbox-app: PORT is not set", now());
                std::process::exit(1);
            }
            serve()
        }
        Some("--help") | Some("-h") => {
            println!(
                "usage: sandbox-app [pause | require-port]   (serves HTTP on $PORT, default 8080;\n\
                 require-port: exits 1 when PORT is not set)"
            );
        }
        _ => serve(),
    }
}

/// Hold the pod's namespaces; reap whatever gets reparented to us.
fn pause() -> ! {
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on any child with a valid pointer to a local.
        let pid = unsafe { waitpid(-1, &mut status, 0) };
        if pid <= 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn serve() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = match TcpListener::bind(format!("0.0.0.0:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{} sandbox-app: cannot listen on :{port}: {e}", now());
            std::process::exit(1);
        }
    };
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || answer(stream));
        }
    });
    loop {
        let n = requests.load(Ordering::Relaxed);
        println!("{} sandbox-app: serving on :{port}, requests={n}", now());
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn answer(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if seen.len() > 64 * 1024 {
            break;
        }
    }
    let body = "sandbox-app: ok\n";
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// RFC 3339 UTC timestamp with seconds, without a date crate.
fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
