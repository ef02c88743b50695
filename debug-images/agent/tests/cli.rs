//! The real agent binary, driven as the plugin drives it: `hold` as a main process,
//! `run`/`stop`/`info` exec'd next to it. Each test has its own state directory
//! (`DISTROLESS_DEBUG_STATE_DIR`), so they run in parallel.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::wait_for;

const AGENT: &str = env!("CARGO_BIN_EXE_distroless-debug-agent");

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("dda-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    fn agent(&self, args: &[&str]) -> Command {
        let mut command = Command::new(AGENT);
        command
            .args(args)
            .env("DISTROLESS_DEBUG_STATE_DIR", self.state());
        command
            .env_remove("DISTROLESS_DEBUG_TTL")
            .env_remove("DISTROLESS_DEBUG_IDLE");
        command
    }

    fn output(&self, args: &[&str]) -> Output {
        self.agent(args).stdin(Stdio::null()).output().unwrap()
    }

    fn spawn_hold(&self, args: &[&str]) -> Child {
        let mut full = vec!["hold"];
        full.extend_from_slice(args);
        let child = self.agent(&full).stderr(Stdio::piped()).spawn().unwrap();
        wait_for(Duration::from_secs(5), || {
            self.state().join("hold.pid").exists()
        });
        child
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits for `child` to exit within `limit`; kills it and fails otherwise.
fn exit_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let mut status = None;
    wait_for(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    match status {
        Some(status) => status,
        None => {
            let _ = child.kill();
            panic!("process {} still running after {limit:?}", child.id());
        }
    }
}

fn stderr_of(child: Child) -> String {
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
}

#[test]
fn hold_exits_by_itself_when_idle() {
    let scratch = Scratch::new("idle");
    let started = Instant::now();
    let mut hold = scratch.spawn_hold(&["--idle", "1s"]);
    let status = exit_within(&mut hold, Duration::from_secs(5));
    assert!(status.success());
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(stderr_of(hold).contains("exiting: idle: no session for 1s"));
    assert!(!scratch.state().join("hold.pid").exists());
}

#[test]
fn hold_takes_its_limits_from_env_and_exits_at_ttl() {
    let scratch = Scratch::new("ttl");
    let mut hold = scratch
        .agent(&["hold"])
        .env("DISTROLESS_DEBUG_TTL", "1s")
        .env("DISTROLESS_DEBUG_IDLE", "0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(exit_within(&mut hold, Duration::from_secs(5)).success());
    assert!(stderr_of(hold).contains("exiting: ttl: 1s elapsed"));
}

/// `stop` returns before `hold` exits: `hold`'s exit ends the container, and the runtime would
/// kill a `stop` still running in it before it could report success (docs/agent.md).
#[test]
fn stop_ends_hold_and_returns_first() {
    let scratch = Scratch::new("stop");
    let mut hold = scratch.spawn_hold(&["--idle", "0"]);
    let mut stop = scratch
        .agent(&["stop"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each turn looks at `hold` before `stop`: `hold` seen gone while `stop` is then seen
    // running means `hold` went first. (Both gone between two looks proves nothing either way;
    // `hold` waits for `stop` in 20 ms steps, so a turn of 1 ms catches the order.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut hold_status, mut stop_status, mut hold_first) = (None, None, false);
    while (hold_status.is_none() || stop_status.is_none()) && Instant::now() < deadline {
        if hold_status.is_none() {
            hold_status = hold.try_wait().unwrap();
        }
        if stop_status.is_none() {
            stop_status = stop.try_wait().unwrap();
            hold_first |= hold_status.is_some() && stop_status.is_none();
        }
        sleep(Duration::from_millis(1));
    }
    if hold_status.is_none() {
        let _ = hold.kill();
    }
    let (stop_stderr, hold_stderr) = (stderr_of(stop), stderr_of(hold));
    assert!(!hold_first, "hold exited while stop was still running");
    assert!(stop_status.is_some_and(|s| s.success()), "{stop_stderr}");
    assert!(hold_status.is_some_and(|s| s.success()), "{hold_stderr}");
    assert!(hold_stderr.contains("exiting: stop: requested by pid"));

    // Idempotent: nothing left to stop is still success.
    assert!(scratch.output(&["stop"]).status.success());
}

#[test]
fn sigterm_ends_hold_with_success() {
    let scratch = Scratch::new("sigterm");
    let mut hold = scratch.spawn_hold(&[]);
    Command::new("kill")
        .arg(hold.id().to_string())
        .status()
        .unwrap();
    assert!(exit_within(&mut hold, Duration::from_secs(3)).success());
    assert!(stderr_of(hold).contains("exiting: signal: SIGTERM"));
}

#[test]
fn a_running_session_keeps_hold_alive() {
    let scratch = Scratch::new("session");
    let mut hold = scratch.spawn_hold(&["--idle", "1s"]);
    let mut session = scratch
        .agent(&["run", "--", "sleep", "2.5"])
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(1900));
    assert!(
        hold.try_wait().unwrap().is_none(),
        "hold must not idle out during a session"
    );
    assert!(exit_within(&mut session, Duration::from_secs(3)).success());
    assert!(exit_within(&mut hold, Duration::from_secs(4)).success());
    assert!(stderr_of(hold).contains("idle"));
}

#[test]
fn the_last_session_that_ends_the_container_ends_hold_and_only_the_last() {
    let scratch = Scratch::new("lastout");
    let mut hold = scratch.spawn_hold(&["--idle", "0"]);
    // A session without the flag ends: hold stays.
    assert!(scratch.output(&["run", "--", "true"]).status.success());
    // One that asked ends while another (a reuser) is alive: hold stays for the other.
    let mut other = scratch
        .agent(&["run", "--", "sleep", "1.5"])
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(200));
    assert!(
        scratch
            .output(&["run", "--end-container", "--", "true"])
            .status
            .success()
    );
    sleep(Duration::from_millis(300));
    assert!(
        hold.try_wait().unwrap().is_none(),
        "hold ended while a session was alive"
    );
    assert!(exit_within(&mut other, Duration::from_secs(3)).success());
    sleep(Duration::from_millis(300));
    assert!(
        hold.try_wait().unwrap().is_none(),
        "the session alive last did not ask to end the container"
    );
    // The last one out asks: hold ends at once.
    let ended = Instant::now();
    last_one_out_ends(&scratch, &mut hold);
    assert!(
        ended.elapsed() < Duration::from_millis(1000),
        "seen within a tick of 50 ms, not the idle second: {:?}",
        ended.elapsed()
    );
    assert!(stderr_of(hold).contains("exiting: last session: it ended the container"));
    assert!(!scratch.state().join("hold.pid").exists());
}

/// A `run --end-container` that cannot identify its target runs nothing and exits 3; it
/// takes its session back, so hold stays for the plugin's `target` (the candidates) and its
/// `stop`. The same session with a target found ends hold.
#[test]
fn a_session_whose_target_is_not_identified_does_not_end_the_container() {
    let scratch = Scratch::new("notidentified");
    let mut hold = scratch.spawn_hold(&["--idle", "0"]);
    for handshake in [false, true] {
        let mut args = vec!["run"];
        if handshake {
            args.push("--handshake");
        }
        args.extend([
            "--end-container",
            "--target-pid",
            "2147483646",
            "--",
            "true",
        ]);
        let refused = scratch.output(&args);
        assert_eq!(refused.status.code(), Some(3), "{refused:?}");
        sleep(Duration::from_millis(300));
        assert!(
            hold.try_wait().unwrap().is_none(),
            "a refused session ended the container (handshake: {handshake})"
        );
    }
    last_one_out_ends(&scratch, &mut hold);
}

/// A session whose target is found, marked to end the container, runs and then ends hold.
fn last_one_out_ends(scratch: &Scratch, hold: &mut Child) {
    assert!(
        scratch
            .output(&["run", "--end-container", "--", "true"])
            .status
            .success()
    );
    assert!(exit_within(hold, Duration::from_secs(2)).success());
}

#[test]
fn stop_ends_sessions_and_their_children_but_nothing_else() {
    let scratch = Scratch::new("stopsessions");
    let mut hold = scratch.spawn_hold(&["--idle", "0"]);
    let mut bystander = Command::new("sleep").arg("30").spawn().unwrap();
    let mut session = scratch
        .agent(&[
            "run",
            "--",
            "sh",
            "-c",
            "sleep 30 & echo $! > child.pid; wait",
        ])
        .current_dir(&scratch.0)
        .spawn()
        .unwrap();
    let child_pid = scratch.0.join("child.pid");
    assert!(wait_for(Duration::from_secs(3), || {
        std::fs::read_to_string(&child_pid).is_ok_and(|s| s.ends_with('\n'))
    }));
    let grandchild: u32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    assert!(scratch.output(&["stop"]).status.success());
    let status = exit_within(&mut session, Duration::from_secs(3));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc_sigterm())
    );
    assert!(
        wait_for(Duration::from_secs(3), || !alive(grandchild)),
        "the session's child ends too"
    );
    assert!(exit_within(&mut hold, Duration::from_secs(5)).success());
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "a process that is not a session survives"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

fn libc_sigterm() -> i32 {
    15
}

#[test]
fn run_passes_exit_codes_through_and_reports_missing_commands() {
    let scratch = Scratch::new("run");
    let out = scratch.output(&["run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));

    let out = scratch.output(&["run", "nosuchcmd-dda"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "distroless-debug-agent: nosuchcmd-dda: command not found\n"
    );

    let not_executable = scratch.0.join("data.txt");
    std::fs::write(&not_executable, "just data\n").unwrap();
    let out = scratch.output(&["run", not_executable.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126));
    assert!(String::from_utf8_lossy(&out.stderr).ends_with("data.txt: Permission denied\n"));

    let out = scratch.output(&["run"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_registers_a_session_that_survives_exec() {
    let scratch = Scratch::new("register");
    let out = scratch.output(&[
        "run",
        "--",
        "sh",
        "-c",
        "ls \"$DISTROLESS_DEBUG_STATE_DIR/sessions\"; echo $$",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0], lines[1],
        "the session file is named after the pid that became sh"
    );
}

#[test]
fn info_describes_a_process_as_json() {
    let scratch = Scratch::new("info");
    let mut child = Command::new("sleep")
        .arg("30")
        .env("DDA_TEST_SECRET", "hunter2")
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let out = scratch.output(&["info", "--pid", &pid, "-o", "json"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("hunter2"),
        "environment values never leave the agent"
    );
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(facts["pid"], child.id());
    assert_eq!(facts["cmdline"], serde_json::json!(["sleep", "30"]));
    assert_eq!(facts["runtime"], "other");
    assert!(facts["uid"].is_u64());
    assert!(
        facts["env_names"]
            .as_array()
            .unwrap()
            .contains(&"DDA_TEST_SECRET".into())
    );
    assert!(
        facts["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["path"] == "/")
    );
    assert!(facts["errors"].as_array().unwrap().is_empty(), "{text}");
}

#[test]
fn info_detects_a_go_binary_from_its_build_info() {
    let scratch = Scratch::new("go");
    let fake_go = scratch.0.join("server");
    if !make_fake_go_binary(&fake_go, &scratch.0) {
        let why = "objcopy (binutils) could not add a .go.buildinfo section: ./tests/run.sh installs binutils";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipped the Go detection test on a live process: {why}");
        return;
    }
    let mut child = Command::new(&fake_go).arg("30").spawn().unwrap();
    let out = scratch.output(&["info", "--pid", &child.id().to_string(), "-o", "json"]);
    child.kill().unwrap();
    child.wait().unwrap();
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(facts["runtime"], "go");
    assert_eq!(facts["go_version"], "go1.22.3");
}

/// A copy of `sleep` carrying a Go 1.18+ `.go.buildinfo` section.
fn make_fake_go_binary(dest: &Path, scratch: &Path) -> bool {
    let mut section = b"\xff Go buildinf:".to_vec();
    section.extend_from_slice(&[8, 2]);
    section.resize(32, 0);
    section.push(8);
    section.extend_from_slice(b"go1.22.3");
    section.extend_from_slice(&[0, 0]);
    let section_file = scratch.join("buildinfo.bin");
    std::fs::write(&section_file, section).unwrap();
    let sleep_path = Command::new("sh")
        .args(["-c", "command -v sleep"])
        .output()
        .unwrap();
    let sleep_path = String::from_utf8(sleep_path.stdout).unwrap();
    Command::new("objcopy")
        .arg(format!(
            "--add-section=.go.buildinfo={}",
            section_file.display()
        ))
        .arg(sleep_path.trim())
        .arg(dest)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn help_and_version() {
    let scratch = Scratch::new("help");
    let out = scratch.output(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
    let out = scratch.output(&["hold", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--idle"));
    let out = scratch.output(&["version"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("distroless-debug-agent 0."));
    assert_eq!(scratch.output(&["bogus"]).status.code(), Some(2));
    assert_eq!(scratch.output(&[]).status.code(), Some(2));
}

/// `root/etc/app/v2/config.yaml` and `root/etc/app/current -> /etc/app/v2`, as a target
/// image lays them out.
fn target_tree(scratch: &Scratch) -> PathBuf {
    let root = scratch.0.join("root");
    std::fs::create_dir_all(root.join("etc/app/v2")).unwrap();
    std::fs::write(root.join("etc/app/v2/config.yaml"), "port: 8080\n").unwrap();
    std::os::unix::fs::symlink("/etc/app/v2", root.join("etc/app/current")).unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    root
}

fn pipe_tar_to_gnu_tar(scratch: &Scratch, root: &Path, no_openat2: bool, out: &Path) -> String {
    std::fs::create_dir_all(out).unwrap();
    let mut agent = scratch.agent(&[
        "tar",
        "--root",
        root.to_str().unwrap(),
        "/etc/app/current/config.yaml",
    ]);
    if no_openat2 {
        agent.env("DISTROLESS_DEBUG_NO_OPENAT2", "1");
    }
    let mut agent = agent
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = Command::new("tar")
        .args(["-xf", "-", "-C"])
        .arg(out)
        .stdin(agent.stdout.take().unwrap())
        .status()
        .unwrap();
    let agent = agent.wait_with_output().unwrap();
    assert!(agent.status.success() && status.success());
    String::from_utf8_lossy(&agent.stderr).into_owned()
}

#[test]
fn tar_follows_the_targets_absolute_symlink_and_gnu_tar_reads_it() {
    let scratch = Scratch::new("tar");
    let root = target_tree(&scratch);
    for no_openat2 in [false, true] {
        let out = scratch.0.join(format!("out-{no_openat2}"));
        let stderr = pipe_tar_to_gnu_tar(&scratch, &root, no_openat2, &out);
        assert_eq!(stderr, "", "no warnings for a clean copy");
        assert_eq!(
            std::fs::read_to_string(out.join("etc/app/current/config.yaml")).unwrap(),
            "port: 8080\n"
        );
    }
}

#[test]
fn untar_takes_gnu_tar_archives_and_refuses_absolute_names() {
    let scratch = Scratch::new("untar");
    let root = target_tree(&scratch);
    let src = scratch.0.join("src");
    std::fs::create_dir_all(src.join("conf")).unwrap();
    std::fs::write(src.join("conf/a.txt"), "a").unwrap();
    let archive = Command::new("tar")
        .args(["-cf", "-", "-C"])
        .arg(&src)
        .arg(".")
        .output()
        .unwrap();
    assert!(archive.status.success());

    let untar = |dest: &str, input: &[u8]| {
        let mut child = scratch
            .agent(&["untar", "--root", root.to_str().unwrap(), dest])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
        child.wait_with_output().unwrap()
    };
    // DEST is resolved inside the root: /etc/app/current is the target's /etc/app/v2.
    let out = untar("/etc/app/current", &archive.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/app/v2/conf/a.txt")).unwrap(),
        "a"
    );

    let evil = Command::new("tar")
        .args(["-cPf", "-"])
        .arg(src.join("conf/a.txt"))
        .output()
        .unwrap();
    let out = untar("/data", &evil.stdout);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing entry") && stderr.contains("conf/a.txt"),
        "{stderr}"
    );
    assert!(stderr.contains("absolute name"), "{stderr}");
    assert_eq!(std::fs::read_dir(root.join("data")).unwrap().count(), 0);
}

/// `tar`, `untar` and `info` with `--end-container` (the last exec of `cp`, `snapshot` and
/// `info`): the same output and exit code as without, and hold ends with them when no other
/// session is alive; without the flag, or beside a live session, hold stays.
#[test]
fn tar_untar_and_info_with_end_container_end_hold_only_as_the_last_session() {
    let scratch = Scratch::new("verblast");
    let root = target_tree(&scratch);
    let root = root.to_str().unwrap();
    let me = std::process::id().to_string();
    let archive = scratch
        .output(&["tar", "--root", root, "--", "/etc/app"])
        .stdout;
    assert!(!archive.is_empty());
    // The verb, with the flag or without, and what it answered.
    let verb = |name: &str, ending: bool| -> Output {
        let mut args = vec![name];
        if ending {
            args.push("--end-container");
        }
        let (rest, input): (&[&str], &[u8]) = match name {
            "tar" => (&["--root", root, "--", "/etc/app"], b""),
            "untar" => (&["--root", root, "/data"], &archive),
            _ => (&["--target-pid", &me, "-o", "json"], b""),
        };
        args.extend_from_slice(rest);
        let mut child = scratch
            .agent(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let still_held = |hold: &mut Child, why: &str| {
        sleep(Duration::from_millis(300));
        assert!(hold.try_wait().unwrap().is_none(), "{why}");
    };
    for name in ["tar", "untar", "info"] {
        let mut hold = scratch.spawn_hold(&["--idle", "0"]);
        let plain = verb(name, false);
        assert!(
            plain.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&plain.stderr)
        );
        still_held(&mut hold, &format!("{name} without the flag ended hold"));

        let mut other = scratch.agent(&["run", "--", "sleep", "1"]).spawn().unwrap();
        sleep(Duration::from_millis(100));
        let beside = verb(name, true);
        assert_eq!(beside.status.code(), plain.status.code(), "{name}");
        still_held(
            &mut hold,
            &format!("{name} ended hold while a session was alive"),
        );
        assert!(exit_within(&mut other, Duration::from_secs(3)).success());
        still_held(&mut hold, &format!("{name}'s mark outlived it"));

        let ended = Instant::now();
        let last = verb(name, true);
        assert_eq!(last.status.code(), plain.status.code(), "{name}");
        if name == "tar" {
            assert_eq!(last.stdout, plain.stdout, "the same archive");
        } else {
            assert_eq!(last.stdout.is_empty(), plain.stdout.is_empty(), "{name}");
        }
        assert_eq!(last.stderr, plain.stderr, "{name}: nothing more on stderr");
        assert!(
            exit_within(&mut hold, Duration::from_secs(2)).success(),
            "{name}"
        );
        assert!(
            ended.elapsed() < Duration::from_millis(1000),
            "{name}: seen within a tick, not the idle second: {:?}",
            ended.elapsed()
        );
        let log = stderr_of(hold);
        assert!(
            log.contains("exiting: last session: it ended the container"),
            "{name}: {log}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(scratch.0.join("root/data/etc/app/v2/config.yaml")).unwrap(),
        "port: 8080\n",
        "untar extracted as it does without the flag"
    );
}

#[test]
fn tar_of_nothing_readable_fails_with_a_summary() {
    let scratch = Scratch::new("tarmissing");
    let root = target_tree(&scratch);
    let out = scratch.output(&["tar", "--root", root.to_str().unwrap(), "/no/such/file"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/no/such/file: No such file or directory"),
        "{stderr}"
    );
    assert!(stderr.contains("0 entries"), "{stderr}");
}

#[test]
fn shell_announces_the_target_and_runs_what_stdin_says() {
    let scratch = Scratch::new("shell");
    let mut shell = scratch
        .agent(&["shell", "--pid", &std::process::id().to_string()])
        .env("SHELL", "/bin/sh")
        .env("HOME", "/nonexistent-home")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut shell.stdin.take().unwrap(),
        b"echo \"home=$HOME pwd=$(pwd) ps1=$PS1\"; ls \"$DISTROLESS_DEBUG_STATE_DIR/sessions\"; exit 4\n",
    )
    .unwrap();
    let out = shell.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "the shell's own exit code");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("home=/tmp pwd=/ ps1=dbg:"), "{stdout}");
    assert_eq!(
        stdout.lines().count(),
        2,
        "one session registered: {stdout}"
    );
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("target: pid {} (", std::process::id()))
            && first.contains("filesystem is at /proc/"),
        "{stderr}"
    );
}

#[test]
fn stop_run_from_inside_a_session_still_completes() {
    let scratch = Scratch::new("stopinside");
    let mut hold = scratch.spawn_hold(&["--idle", "0"]);
    let script = format!("{AGENT} stop; sleep 30");
    let mut session = scratch
        .agent(&["run", "--", "sh", "-c", &script])
        .current_dir(&scratch.0)
        .spawn()
        .unwrap();
    exit_within(&mut session, Duration::from_secs(5));
    assert!(exit_within(&mut hold, Duration::from_secs(5)).success());
    assert!(stderr_of(hold).contains("exiting: stop"));
}

#[test]
fn bad_hold_durations_are_usage_errors() {
    let scratch = Scratch::new("badhold");
    assert_eq!(
        scratch.output(&["hold", "--ttl", "soon"]).status.code(),
        Some(2)
    );
    let out = scratch
        .agent(&["hold"])
        .env("DISTROLESS_DEBUG_IDLE", "15")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DISTROLESS_DEBUG_IDLE"));
}

#[test]
fn run_with_a_handshake_runs_only_after_go_and_leaves_the_rest_of_stdin_to_the_command() {
    let scratch = Scratch::new("handshake");
    let with_stdin = |input: &'static [u8]| {
        let mut child = scratch
            .agent(&["run", "--handshake", "--", "sh", "-c", "cat; echo ran"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let went = with_stdin(b"go\nthe rest\n");
    assert_eq!(went.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&went.stdout), "the rest\nran\n");

    for refused in [&b"abort\n"[..], b"", b"go"] {
        let out = with_stdin(refused);
        assert_eq!(out.status.code(), Some(1), "{refused:?}");
        assert!(out.stdout.is_empty(), "nothing ran: {refused:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("nothing was run"), "{stderr}");
    }
}

#[test]
fn a_session_waiting_for_its_handshake_keeps_hold_from_ending_the_container() {
    let scratch = Scratch::new("gatedlive");
    let mut hold = scratch.spawn_hold(&["--idle", "0"]);
    // A reused session's exec, opened beside the plugin's reads, waits for its word...
    let mut gated = scratch
        .agent(&["run", "--handshake", "--end-container", "--", "echo", "ran"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(200));
    // ...while the session before it, the last one out so far, ends and asks to end the
    // container.
    assert!(
        scratch
            .output(&["run", "--end-container", "--", "true"])
            .status
            .success()
    );
    sleep(Duration::from_millis(300));
    assert!(
        hold.try_wait().unwrap().is_none(),
        "hold ended the container under a session waiting for its handshake"
    );
    let mut stdin = gated.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let out = gated.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    // Now it was the last one out.
    assert!(exit_within(&mut hold, Duration::from_secs(2)).success());
}
