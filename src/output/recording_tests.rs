use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use super::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dd-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[test]
fn the_state_directory_follows_xdg_then_home() {
    assert_eq!(
        sessions_dir_from(Some("/s"), Some("/home/a")),
        Some(PathBuf::from("/s/kubectl-distroless-debug/sessions"))
    );
    assert_eq!(
        sessions_dir_from(Some("relative"), Some("/home/a")),
        Some(PathBuf::from(
            "/home/a/.local/state/kubectl-distroless-debug/sessions"
        ))
    );
    assert_eq!(sessions_dir_from(None, None), None);
}

#[test]
fn a_command_is_recorded_as_asciicast_v2_with_stderr_apart() {
    let dir = scratch("cmd");
    let path = dir.join("sessions/s1.cast");
    let rec = Recording::create(&path, false, (80, 24), "pod/web", &RecordOptions::default())
        .expect("created");
    rec.stdout(b"hello ");
    // A character split across two reads is written whole.
    rec.stdout(&"wörld\n".as_bytes()[..2]);
    rec.stdout(&"wörld\n".as_bytes()[2..]);
    rec.stderr(b"oops\n");
    let (bytes, truncated) = rec.finish("exit code 3");
    assert_eq!(
        bytes,
        Bytes {
            stdout: 13,
            stderr: 5,
            input: 0
        }
    );
    assert!(!truncated);

    let out = lines(&path);
    assert_eq!(out[0]["version"], 2);
    assert_eq!(
        (out[0]["width"].as_u64(), out[0]["height"].as_u64()),
        (Some(80), Some(24))
    );
    let output: String = out[1..]
        .iter()
        .filter(|e| e[1] == "o")
        .filter_map(|e| e[2].as_str())
        .collect();
    assert_eq!(output, "hello wörld\n");
    assert_eq!(out.last().map(|e| e[1].clone()), Some("m".into()));
    assert_eq!(out.last().map(|e| e[2].clone()), Some("exit code 3".into()));

    let err_path = dir.join("sessions/s1.stderr.cast");
    assert_eq!(rec.stderr_path.as_deref(), Some(err_path.as_path()));
    let err = lines(&err_path);
    assert_eq!(err[0]["version"], 2);
    assert_eq!(err[1][1], "o");
    assert_eq!(err[1][2], "oops\n");
    assert!(!output.contains("oops"));

    assert_eq!(mode(&dir.join("sessions")), 0o700);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&err_path), 0o600);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn input_only_when_asked_and_resizes_always() {
    let dir = scratch("tty");
    for asked in [false, true] {
        let path = dir.join(format!("{asked}.cast"));
        let options = RecordOptions {
            input: asked,
            ..RecordOptions::default()
        };
        let rec = Recording::create(&path, true, (100, 30), "t", &options).expect("created");
        rec.stdout(b"$ ");
        rec.input(b"ls\r");
        rec.resize(120, 40);
        let (bytes, _) = rec.finish("exit code 0");
        assert_eq!(bytes.input, 3, "typed bytes are counted either way");
        assert!(rec.stderr_path.is_none(), "a terminal is one stream");
        let events = lines(&path);
        let codes: Vec<&str> = events[1..].iter().filter_map(|e| e[1].as_str()).collect();
        let want = if asked {
            ["o", "i", "r", "m"].as_slice()
        } else {
            ["o", "r", "m"].as_slice()
        };
        assert_eq!(codes, want, "input recorded: {asked}");
        assert!(events.iter().any(|e| e[1] == "r" && e[2] == "120x40"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_size_cap_ends_the_recording_with_a_marker() {
    let dir = scratch("cap");
    let path = dir.join("c.cast");
    let options = RecordOptions {
        max_bytes: 400,
        ..RecordOptions::default()
    };
    let rec = Recording::create(&path, false, (80, 24), "t", &options).expect("created");
    for _ in 0..50 {
        rec.stdout(b"0123456789\n");
    }
    let (bytes, truncated) = rec.finish("exit code 0");
    assert!(truncated);
    assert_eq!(bytes.stdout, 550, "every byte seen is counted");
    let events = lines(&path);
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(last[1], "m");
    assert!(
        last[2]
            .as_str()
            .unwrap_or("")
            .contains("size cap of 400 bytes"),
        "{last}"
    );
    assert!(
        events.len() < 20,
        "writing stopped at the cap: {}",
        events.len()
    );
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(stderr_path(&path))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(size <= 400 + 120, "{size} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sidecars_are_private_and_listed_newest_first() {
    let dir = scratch("side");
    for (id, start) in [
        ("a", "2026-01-01T00:00:00Z"),
        ("c", "2026-03-01T00:00:00Z"),
        ("b", "2026-02-01T00:00:00Z"),
    ] {
        let record = SessionRecord {
            id: id.into(),
            start: start.into(),
            exit_code: Some(1),
            ..SessionRecord::default()
        };
        let path = write_record(&dir, &record).expect("written");
        assert_eq!(mode(&path), 0o600);
    }
    std::fs::write(dir.join("junk.json"), "not json").expect("junk");
    assert_eq!(mode(&dir), 0o700);
    let ids: Vec<String> = read_records(&dir).into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["c", "b", "a"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ids_sort_by_time_and_stderr_sits_beside_the_cast() {
    let t: jiff::Timestamp = "2026-12-06T03:45:16Z".parse().expect("a time");
    let id = new_id(t);
    assert!(id.starts_with("20261206T034516Z-"), "{id}");
    assert_eq!(id.len(), "20261206T034516Z-".len() + 5);
    assert_eq!(
        stderr_path(Path::new("/x/y.cast")),
        PathBuf::from("/x/y.stderr.cast")
    );
    assert_eq!(
        stderr_path(Path::new("/x/out.log")),
        PathBuf::from("/x/out.log.stderr.cast")
    );
}

#[test]
fn output_that_outruns_the_writer_ends_the_recording_with_a_marker_and_is_not_waited_for() {
    let dir = scratch("behind");
    let path = dir.join("b.cast");
    let rec =
        Recording::create(&path, false, (80, 24), "t", &RecordOptions::default()).expect("created");
    rec.stdout(b"before\n");
    // What the writer has written stays (what it has not is dropped once the output
    // outran it: see the test below).
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&path).is_ok_and(|s| s.contains("before")) {
        assert!(
            Instant::now() < deadline,
            "the writer writes the first event"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // More than the writer may be behind in one go: the recording ends there.
    let big = vec![b'x'; BEHIND_BYTES + 1];
    rec.stdout(&big);
    rec.stdout(b"after\n");
    let (bytes, truncated) = rec.finish("exit code 0");
    assert!(truncated);
    assert_eq!(
        bytes.stdout,
        7 + big.len() as u64 + 6,
        "every byte seen is counted"
    );
    let events = lines(&path);
    let texts: Vec<&str> = events.iter().filter_map(|e| e[2].as_str()).collect();
    assert_eq!(texts.first(), Some(&"before\n"), "{texts:?}");
    assert!(
        texts
            .last()
            .is_some_and(|t| t.contains("outran the recording")),
        "{texts:?}"
    );
    assert!(
        !texts.contains(&"after\n"),
        "nothing after the cut: {texts:?}"
    );
}

#[test]
fn once_the_output_outran_the_writer_its_backlog_is_dropped_not_written() {
    let dir = scratch("backlog");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("b.cast");
    let (out, written) = Cast::create(&path, &json!({"version": 2})).expect("cast");
    let inner = Inner {
        out,
        err: None,
        written,
        stopped: false,
        truncated: false,
    };
    let (queue, queued) = channel();
    let event = |text: &str| Message::Event {
        stream: Stream::Out,
        code: "o",
        time: 0.1,
        bytes: text.as_bytes().to_vec(),
    };
    queue.send(event("written\n")).expect("queued");
    queue
        .send(event("queued before the cut\n"))
        .expect("queued");
    queue
        .send(Message::FellBehind { time: 0.2 })
        .expect("queued");
    queue
        .send(Message::Finish {
            time: 0.3,
            ending: "exit code 0".into(),
        })
        .expect("queued");
    drop(queue);
    // The writer has taken the first event when the session finds it fell behind.
    let full = AtomicBool::new(false);
    let behind = AtomicUsize::new(100);
    let mut inner = inner;
    write_event(&mut inner, u64::MAX, Stream::Out, "o", 0.1, b"first\n");
    full.store(true, Ordering::Relaxed);
    let truncated = write_events(inner, u64::MAX, &full, &behind, &queued);
    assert!(truncated);
    let events = lines(&path);
    let texts: Vec<&str> = events.iter().filter_map(|e| e[2].as_str()).collect();
    assert_eq!(texts.first(), Some(&"first\n"), "{texts:?}");
    assert_eq!(texts.len(), 2, "the backlog is not written: {texts:?}");
    assert!(texts[1].contains("outran the recording"), "{texts:?}");
    assert_eq!(
        behind.load(Ordering::Relaxed),
        100 - "written\n".len() - "queued before the cut\n".len(),
        "what is dropped no longer counts as behind"
    );
}

#[test]
fn an_event_line_is_the_json_array_asciinema_reads() {
    let line = event_line(1.5, "o", "tab\there \"quoted\" \u{1b}[0m");
    assert_eq!(
        line,
        "[1.5,\"o\",\"tab\\there \\\"quoted\\\" \\u001b[0m\"]\n"
    );
    let parsed: Value = serde_json::from_str(line.trim_end()).expect("JSON");
    assert_eq!(parsed[2], "tab\there \"quoted\" \u{1b}[0m");
}
