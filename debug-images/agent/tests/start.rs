//! The held entrypoint of a `--copy` pod and `start`, as the real binaries in two
//! processes: `entrypoint` holding a small shell program, `start` asking it to run it. The
//! app's output must come out of start's own stdout, its exit code out of start's.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::wait_for;

const AGENT: &str = env!("CARGO_BIN_EXE_distroless-debug-agent");

/// A directory standing for the copy pod's shared emptyDir, and the entrypoint holding
/// `sh -c SCRIPT app` there.
struct Held {
    dir: PathBuf,
    entrypoint: Child,
}

impl Held {
    fn new(name: &str, argv: &[&str]) -> Held {
        let dir = std::env::temp_dir().join(format!("dda-start-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("start.sock");
        let entrypoint = Command::new(AGENT)
            .args(["entrypoint", "--socket"])
            .arg(&socket)
            .arg("--")
            .args(argv)
            .env("APP_ENV", "from-the-container")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(5), || socket.exists()),
            "the entrypoint listens on {}",
            socket.display()
        );
        Held { dir, entrypoint }
    }

    fn shell(name: &str, script: &str) -> Held {
        Held::new(name, &["sh", "-c", script, "app"])
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("start.sock")
    }

    /// `start ARGS` as a debug container runs it: the socket from the environment.
    fn start(&self, args: &[&str]) -> Command {
        let mut command = Command::new(AGENT);
        command
            .arg("start")
            .args(args)
            .env("DISTROLESS_DEBUG_START_SOCKET", self.socket())
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.start(args).output().unwrap()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.entrypoint.kill();
        let _ = self.entrypoint.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Spawns `start` with piped output and returns it with the app's first stdout line.
fn spawn_until_first_line(command: &mut Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line)
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill takes plain integers; the pid is a child of this test.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

/// The state letter of /proc/PID/stat (R, S, T, Z...).
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn output_and_exit_code_are_the_apps_with_overrides_and_again_after_an_exit() {
    let held = Held::shell(
        "basic",
        r#"echo "port=$PORT env=$APP_ENV args=$*"; echo "to stderr" >&2; exit 3"#,
    );
    let out = held.run(&["PORT=8080", "--", "x", "y"]);
    assert_eq!(
        text(&out.stdout),
        "port=8080 env=from-the-container args=x y\n"
    );
    assert_eq!(text(&out.stderr), "to stderr\n");
    assert_eq!(out.status.code(), Some(3));

    // Again, without the override: the container's own environment, nothing appended.
    let out = held.run(&[]);
    assert_eq!(text(&out.stdout), "port= env=from-the-container args=\n");
    assert_eq!(out.status.code(), Some(3));

    // An override replaces the container's value.
    let out = held.run(&["APP_ENV=overridden"]);
    assert_eq!(text(&out.stdout), "port= env=overridden args=\n");
}

#[test]
fn the_apps_stdin_is_the_callers() {
    let held = Held::shell("stdin", "read line; echo \"got $line\"");
    let mut start = held
        .start(&[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    start.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = start.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "got hello\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn one_app_at_a_time_and_ctrl_c_ends_it() {
    let held = Held::shell("busy", "echo started; exec sleep 30");
    let (first, line) = spawn_until_first_line(&mut held.start(&[]));
    assert_eq!(line, "started\n");

    let second = held.run(&[]);
    assert_eq!(second.status.code(), Some(125));
    let refused = text(&second.stderr);
    assert!(
        refused.starts_with("start: already running: pid "),
        "{refused}"
    );

    // Ctrl-C reaches start; start forwards it; the app dies of it, and start says so.
    kill(first.id(), libc::SIGINT);
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));

    // The app is gone: the next start runs it again.
    let (again, line) = spawn_until_first_line(&mut held.start(&[]));
    assert_eq!(line, "started\n");
    kill(again.id(), libc::SIGTERM);
    assert_eq!(again.wait_with_output().unwrap().status.code(), Some(143));
}

#[test]
fn wait_for_trace_leaves_the_app_stopped_until_it_is_continued() {
    let held = Held::shell("trace", "echo running");
    let mut start = held
        .start(&["--wait-for-trace"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(start.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line
        .strip_prefix("start: pid ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    assert!(line.contains("kill -CONT"), "{line}");
    assert!(
        wait_for(Duration::from_secs(2), || proc_state(pid) == Some('T')),
        "pid {pid} is stopped: {:?}",
        proc_state(pid)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(proc_state(pid), Some('T'), "still stopped");
    // Still the agent, stopped before execve: the app has not run yet.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, Path::new(AGENT).canonicalize().unwrap());

    kill(pid as u32, libc::SIGCONT);
    let out = start.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "running\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_missing_program_is_127_and_named() {
    let held = Held::new("missing", &["/no/such/app", "--flag"]);
    let out = held.run(&[]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(text(&out.stderr), "start: not found: /no/such/app\n");
    let held = Held::new("missing-path", &["no-such-app-xyz"]);
    let out = held.run(&["PATH=/nonexistent"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(text(&out.stderr), "start: not found: no-such-app-xyz\n");
}

#[test]
fn without_a_held_target_start_says_where_it_works() {
    let out = Command::new(AGENT)
        .arg("start")
        .env_remove("DISTROLESS_DEBUG_START_SOCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "start: no held target here: DISTROLESS_DEBUG_START_SOCKET is not set; start works in \
         a `--copy` session\n"
    );
    let out = Command::new(AGENT)
        .args(["start", "--socket", "/nonexistent/start.sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).starts_with("start: cannot reach the held target at /nonexistent/"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sigterm_ends_the_app_then_the_entrypoint() {
    let mut held = Held::shell("stop", "echo started; exec sleep 30");
    let (start, line) = spawn_until_first_line(&mut held.start(&[]));
    assert_eq!(line, "started\n");
    kill(held.entrypoint.id(), libc::SIGTERM);
    let status = held.entrypoint.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let out = start.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert!(!held.socket().exists(), "the socket is removed");
}

#[test]
fn a_start_that_goes_away_ends_its_app() {
    let held = Held::shell("gone", "echo started; exec sleep 30");
    let (mut start, _) = spawn_until_first_line(&mut held.start(&[]));
    let refused = held.run(&[]);
    let pid: i32 = text(&refused.stderr)
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    start.kill().unwrap();
    let _ = start.wait();
    assert!(
        wait_for(Duration::from_secs(5), || proc_state(pid)
            .is_none_or(|s| s == 'Z')),
        "the app {pid} ended"
    );
    let (again, line) = spawn_until_first_line(&mut held.start(&[]));
    assert_eq!(line, "started\n");
    kill(again.id(), libc::SIGINT);
    assert_eq!(again.wait_with_output().unwrap().status.code(), Some(130));
}

#[test]
fn install_copies_the_agent_and_start_answers_to_its_link_name() {
    let held = Held::shell("install", "echo linked");
    let dest = held.dir.join("agent");
    let status = Command::new(AGENT)
        .arg("install")
        .arg(&dest)
        .status()
        .unwrap();
    assert!(status.success());
    let version = Command::new(&dest).arg("version").output().unwrap();
    assert!(text(&version.stdout).starts_with("distroless-debug-agent "));

    let link = held.dir.join("start");
    std::os::unix::fs::symlink(&dest, &link).unwrap();
    let out = Command::new(&link)
        .env("DISTROLESS_DEBUG_START_SOCKET", held.socket())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "linked\n");
    assert_eq!(out.status.code(), Some(0));
}

fn tmux_available() -> bool {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => true,
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("tmux is missing under CI"),
        _ => {
            eprintln!("skipped: tmux is not installed");
            false
        }
    }
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    text(&out.stdout)
}

/// In a real terminal: the app reads the terminal that `start` was given (it is not the
/// app's controlling terminal, so reading it does not stop the app), and Ctrl-C, which the
/// terminal sends to start's process group, ends the app through start.
#[test]
fn in_a_terminal_the_app_reads_it_and_ctrl_c_ends_it() {
    if !tmux_available() {
        return;
    }
    let held = Held::shell("tty", "read line; echo \"got $line\"; exec sleep 30");
    let session = format!("dda-start-{}", std::process::id());
    // The shell around start is in the terminal's foreground group too: a trap (not an
    // ignore, which start would inherit) keeps it alive to print start's exit code.
    let command = format!(
        "trap : INT; DISTROLESS_DEBUG_START_SOCKET={} {AGENT} start; echo \"start exited $?\"; \
         sleep 30",
        held.socket().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "20",
        "sh",
        "-c",
        &command,
    ]);
    let screen = || tmux(&["capture-pane", "-p", "-t", &session]);
    std::thread::sleep(Duration::from_millis(500));
    tmux(&["send-keys", "-t", &session, "hello", "Enter"]);
    let echoed = wait_for(Duration::from_secs(5), || screen().contains("got hello"));
    if echoed {
        tmux(&["send-keys", "-t", &session, "C-c"]);
    }
    let ended = wait_for(Duration::from_secs(5), || {
        screen().contains("start exited 130")
    });
    let last = screen();
    tmux(&["kill-session", "-t", &session]);
    assert!(echoed, "the app read the terminal: {last}");
    assert!(ended, "Ctrl-C ended the app and start: {last}");
}
