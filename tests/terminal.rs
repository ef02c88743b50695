//! An interactive session in a real terminal (tmux): the prompt, `/target`, resize, Ctrl-C to
//! the remote, the shell's exit code, and the local terminal exactly as it was afterwards.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{BIN, NONROOT_APP};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(session: &str, width: u16, height: u16) -> Tmux {
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .args(["env", "PS1=$ ", "bash", "--norc", "--noprofile"])
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session");
        let _ = Command::new("tmux")
            .args(["set-option", "-t", session, "window-size", "manual"])
            .status();
        Tmux {
            session: session.to_string(),
        }
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("tmux");
        assert!(status.success());
    }

    fn line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "capture-pane",
                "-p",
                "-J",
                "-S",
                "-200",
                "-t",
                &self.session,
            ])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, limit: Duration, check: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if check(&self.screen()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; the screen:\n{}",
            self.screen()
        );
    }

    fn resize(&self, width: u16, height: u16) {
        let status = Command::new("tmux")
            .args([
                "resize-window",
                "-t",
                &self.session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .status()
            .expect("tmux");
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
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

/// The debug shell's prompt, `dbg:/# ` or `dbg:/$ ` (docs/agent.md), at the start of a line:
/// the plugin's own notes ("dbg-xxxxx is ready") name the container, never this.
fn shows_the_prompt(screen: &str) -> bool {
    screen.lines().any(|l| {
        l.starts_with("dbg:/# ") || l.starts_with("dbg:/$ ") || l == "dbg:/#" || l == "dbg:/$"
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interactive_session_in_a_real_terminal() {
    if !tmux_available() {
        return;
    }
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("locked", Some("restricted")).await;
    c.running_app("locked", "web", NONROOT_APP, Some((65532, 65532)))
        .await;

    let dir = c.sb.dir().to_path_buf();
    let (before, after, exit) = (
        dir.join("stty-before"),
        dir.join("stty-after"),
        dir.join("exit"),
    );
    let kubeconfig = c.sb.kubeconfig_path().to_path_buf();
    let state = c.state_home();
    let session = format!("dd-{}", std::process::id());
    let terminal_test = tokio::task::spawn_blocking(move || {
        let t = Tmux::start(&session, 100, 30);
        t.line(&format!("stty -g > {}", before.display()));
        t.line(&format!(
            "KUBECONFIG={} XDG_STATE_HOME={} NO_COLOR=1 {BIN} -n locked pod/web; echo $? > {}; stty -g > {}",
            kubeconfig.display(),
            state.display(),
            exit.display(),
            after.display()
        ));
        t.wait_for(
            "the debug shell's prompt",
            Duration::from_secs(60),
            shows_the_prompt,
        );

        t.line("ls /target/etc");
        t.wait_for("the target's /etc", Duration::from_secs(10), |s| {
            s.contains("os-release")
        });

        t.line("stty size");
        t.wait_for("the initial size", Duration::from_secs(10), |s| {
            s.lines().any(|l| l.trim() == "30 100")
        });
        t.resize(120, 40);
        std::thread::sleep(Duration::from_millis(500));
        t.line("stty size");
        t.wait_for(
            "the new size after SIGWINCH",
            Duration::from_secs(10),
            |s| s.lines().any(|l| l.trim() == "40 120"),
        );

        t.line("sleep 100");
        std::thread::sleep(Duration::from_millis(800));
        let started = Instant::now();
        t.keys(&["C-c"]);
        t.line("echo still-$((40+2))");
        t.wait_for("the shell after Ctrl-C", Duration::from_secs(10), |s| {
            s.contains("still-42")
        });
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "Ctrl-C stopped the remote sleep"
        );

        t.line("exit 3");
        let deadline = Instant::now() + Duration::from_secs(40);
        while read(&exit).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        (read(&exit), read(&before), read(&after), t.screen())
    });
    let (code, before, after, screen) = terminal_test.await.expect("the terminal test ran");
    assert_eq!(
        code, "3",
        "the shell's exit code is ours; screen:\n{screen}"
    );
    assert!(!before.is_empty());
    assert_eq!(before, after, "the terminal is restored exactly");
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_exec_an_interactive_session_attaches_to_a_shell_container() {
    if !tmux_available() {
        return;
    }
    let Some(c) = support::cluster_with(kube_sandbox::SandboxOptions {
        rbac: Some(support::ATTACH_ONLY.into()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    c.namespace("locked", Some("restricted")).await;
    c.running_app("locked", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    let carol = c.sb.dir().join("carol.kubeconfig");
    c.sb.write_kubeconfig_for("carol-token", "carol", &carol)
        .expect("carol's kubeconfig");
    let exit = c.sb.dir().join("exit");
    let state = c.state_home();
    let session = format!("dd-attach-{}", std::process::id());
    c.sb.clear_requests();
    let terminal_test = tokio::task::spawn_blocking(move || {
        let t = Tmux::start(&session, 100, 30);
        t.line(&format!(
            "KUBECONFIG={} XDG_STATE_HOME={} NO_COLOR=1 {BIN} -n locked pod/web; echo $? > {}",
            carol.display(),
            state.display(),
            exit.display()
        ));
        t.wait_for("the attach-mode note", Duration::from_secs(60), |s| {
            s.contains("attach mode")
        });
        t.wait_for("the hint to press Enter", Duration::from_secs(30), |s| {
            s.contains("press Enter")
        });
        t.keys(&["Enter"]);
        t.line("ls /target/etc");
        t.wait_for("the target's /etc", Duration::from_secs(10), |s| {
            s.contains("os-release")
        });
        t.line("exit 4");
        let deadline = Instant::now() + Duration::from_secs(40);
        while read(&exit).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        (read(&exit), t.screen())
    });
    let (code, screen) = terminal_test.await.expect("the terminal test ran");
    assert_eq!(code, "4", "screen:\n{screen}");
    let execs =
        c.sb.requests()
            .iter()
            .filter(|r| r.path.ends_with("/exec"))
            .count();
    assert_eq!(execs, 0, "no exec was tried; screen:\n{screen}");
    c.wait_all_terminated("locked", "web", Duration::from_secs(20))
        .await;
    assert_eq!(
        c.debug_containers("locked", "web").await.len(),
        1,
        "one container, no holder left"
    );
}

/// The asciicast events of a recording (after its header), and the header.
fn cast(path: &Path) -> (serde_json::Value, Vec<serde_json::Value>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_default());
    let header = lines.next().unwrap_or_default();
    (header, lines.collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interactive_session_is_recorded_with_its_resizes_and_input_only_when_asked() {
    if !tmux_available() {
        return;
    }
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("locked", Some("restricted")).await;
    c.running_app("locked", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    let dir = c.sb.dir().to_path_buf();
    let kubeconfig = c.sb.kubeconfig_path().to_path_buf();
    let state = c.state_home();
    let session = format!("dd-rec-{}", std::process::id());
    let (plain, with_input) = (dir.join("plain.cast"), dir.join("input.cast"));
    let (plain_at, input_at) = (plain.clone(), with_input.clone());
    let terminal_test = tokio::task::spawn_blocking(move || {
        let t = Tmux::start(&session, 100, 30);
        for (file, extra, done) in [
            (&plain_at, "", "first-done"),
            (&input_at, "--record-input", "second-done"),
        ] {
            t.line(&format!(
                "clear; KUBECONFIG={} XDG_STATE_HOME={} NO_COLOR=1 {BIN} -n locked pod/web --record {} {extra}; echo {done}",
                kubeconfig.display(),
                state.display(),
                file.display(),
            ));
            t.wait_for(
                "the debug shell's prompt",
                Duration::from_secs(60),
                shows_the_prompt,
            );
            t.line("echo mark-$((6*7))");
            t.wait_for("the output", Duration::from_secs(10), |s| {
                s.contains("mark-42")
            });
            if extra.is_empty() {
                t.resize(120, 40);
                std::thread::sleep(Duration::from_millis(500));
                t.line("stty size");
                t.wait_for("the new size", Duration::from_secs(10), |s| {
                    s.lines().any(|l| l.trim() == "40 120")
                });
            }
            t.line("exit");
            t.wait_for("the session's end", Duration::from_secs(40), |s| {
                s.lines().any(|l| l == done)
            });
        }
    });
    terminal_test.await.expect("the terminal test ran");

    let (header, events) = cast(&plain);
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(100), Some(30))
    );
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .filter_map(|e| e[2].as_str())
        .collect();
    let prompt = output.find("dbg:/").expect("the prompt is replayed");
    let echoed = output.find("mark-42").expect("the output is replayed");
    assert!(prompt < echoed, "the prompt, then the output: {output:?}");
    assert!(
        events.iter().any(|e| e[1] == "r" && e[2] == "120x40"),
        "a resize event: {events:?}"
    );
    let resized = events.iter().position(|e| e[1] == "r");
    let size_shown = events
        .iter()
        .position(|e| e[1] == "o" && e[2].as_str().unwrap_or("").contains("40 120"));
    assert!(
        resized < size_shown,
        "the resize comes before what it changed"
    );
    assert!(
        !events.iter().any(|e| e[1] == "i"),
        "no input events unless asked"
    );

    let (_, events) = cast(&with_input);
    let typed: String = events
        .iter()
        .filter(|e| e[1] == "i")
        .filter_map(|e| e[2].as_str())
        .collect();
    assert!(
        typed.contains("echo mark-$((6*7))"),
        "--record-input keeps keystrokes: {typed:?}"
    );
}

/// `--copy` in a real terminal (docs/copy.md): `start` fails with the app's own error, `start`
/// again with an override serves until Ctrl-C, `exit`; the copy is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_session_starts_the_held_target_again_and_again() {
    if !tmux_available() {
        return;
    }
    let Some(c) = support::cluster().await else {
        return;
    };
    c.crash_looping("default", "crashy", Some((65532, 65532)))
        .await;
    let dir = c.sb.dir().to_path_buf();
    let exit = dir.join("copy-exit");
    let kubeconfig = c.sb.kubeconfig_path().to_path_buf();
    let state = c.state_home();
    let session = format!("dd-copy-{}", std::process::id());
    let terminal_test = tokio::task::spawn_blocking(move || {
        let t = Tmux::start(&session, 120, 40);
        t.line(&format!(
            "KUBECONFIG={} XDG_STATE_HOME={} NO_COLOR=1 {BIN} pod/crashy --copy; echo $? > {}",
            kubeconfig.display(),
            state.display(),
            exit.display(),
        ));
        t.wait_for(
            "the debug shell's prompt",
            Duration::from_secs(90),
            shows_the_prompt,
        );
        t.line("start; echo start-exited-$?");
        t.wait_for("the app's own error", Duration::from_secs(20), |s| {
            s.contains("sandbox-app: PORT is not set") && s.contains("start-exited-1")
        });
        t.line("start PORT=8080");
        t.wait_for("the app serving", Duration::from_secs(20), |s| {
            s.contains("serving on :8080")
        });
        t.keys(&["C-c"]);
        t.line("echo back-$((40+2))");
        t.wait_for("the shell after Ctrl-C", Duration::from_secs(10), |s| {
            s.contains("back-42")
        });
        t.line("exit");
        let deadline = Instant::now() + Duration::from_secs(40);
        while read(&exit).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        (read(&exit), t.screen())
    });
    let (code, screen) = terminal_test.await.expect("the terminal test ran");
    assert_eq!(code, "0", "screen:\n{screen}");
    c.wait_no_copies("default").await;
}
