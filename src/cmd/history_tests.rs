use super::*;

fn record(id: &str, pod: &str, start: &str) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        pod: pod.into(),
        namespace: "shop".into(),
        context: Some("prod".into()),
        start: start.into(),
        end: Some("2026-12-06T03:01:05Z".into()),
        exit_code: Some(3),
        user: "alice".into(),
        reason: Some("INC-42".into()),
        debug_container: "dbg-abcde".into(),
        recording: Some(PathBuf::from("/s/a.cast")),
        ..SessionRecord::default()
    }
}

fn options() -> HistoryOptions {
    HistoryOptions {
        pod: None,
        since: None,
        contexts: Vec::new(),
        format: None,
        show: None,
    }
}

#[test]
fn filters_by_pod_since_and_context() {
    let now: jiff::Timestamp = "2026-12-06T04:00:00Z".parse().expect("time");
    let all = vec![
        record("c", "web", "2026-12-06T03:50:00Z"),
        record("b", "db", "2026-12-06T03:30:00Z"),
        record("a", "web", "2026-12-05T03:00:00Z"),
    ];
    let ids = |opts: &HistoryOptions| -> Vec<String> {
        select(all.clone(), opts, now)
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids(&options()), ["c", "b", "a"]);
    let web = HistoryOptions {
        pod: Some("web".into()),
        ..options()
    };
    assert_eq!(ids(&web), ["c", "a"]);
    let hour = HistoryOptions {
        since: Some(Duration::from_secs(3600)),
        ..options()
    };
    assert_eq!(ids(&hour), ["c", "b"]);
    let other = HistoryOptions {
        contexts: vec!["staging".into()],
        ..options()
    };
    assert!(ids(&other).is_empty());
}

#[test]
fn ids_match_whole_or_by_a_unique_prefix() {
    let all = vec![
        record("20261206T0300Z-aaaaa", "web", "x"),
        record("20261206T0300Z-abbbb", "web", "x"),
    ];
    assert_eq!(
        find(&all, "20261206T0300Z-aaaaa").map(|r| r.id.as_str()),
        Some("20261206T0300Z-aaaaa")
    );
    assert_eq!(
        find(&all, "20261206T0300Z-ab").map(|r| r.id.as_str()),
        Some("20261206T0300Z-abbbb")
    );
    assert!(find(&all, "20261206T0300Z-a").is_none(), "ambiguous");
    assert!(find(&all, "").is_none());
}

#[test]
fn the_output_of_a_cast_and_its_plain_text() {
    let cast = concat!(
        "{\"version\": 2, \"width\": 80, \"height\": 24}\n",
        "[0.1, \"o\", \"\\u001b[1;31mred\\u001b[0m \\u001b]0;title\\u0007ok\\r\\n\"]\n",
        "[0.2, \"i\", \"typed\"]\n",
        "[0.3, \"r\", \"100x30\"]\n",
        "[0.4, \"o\", \"\\u001b(Bdone\\u001b[K\\n\"]\n",
        "[0.5, \"m\", \"exit code 0\"]\n",
    );
    assert_eq!(
        cast_output(cast, false),
        "\u{1b}[1;31mred\u{1b}[0m \u{1b}]0;title\u{7}ok\r\n\u{1b}(Bdone\u{1b}[K\n"
    );
    assert_eq!(cast_output(cast, true), "red ok\ndone\n");
}

#[test]
fn the_table_has_every_column() {
    let text = table(&[record("id1", "web", "2026-12-06T03:00:00Z")]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "ID",
            "STARTED",
            "WHERE",
            "CONTAINER",
            "USER",
            "REASON",
            "TOOK",
            "EXIT",
            "RECORDING"
        ]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        [
            "id1",
            "2026-12-06",
            "03:00:00",
            "prod/shop/web",
            "dbg-abcde",
            "alice",
            "INC-42",
            "1m5s",
            "3",
            "/s/a.cast"
        ]
    );
}

#[test]
fn a_session_whose_trail_misses_an_event_is_named_under_the_table() {
    let whole = record("id1", "web", "2026-12-06T03:00:00Z");
    let mut short = record("id2", "api", "2026-12-06T04:00:00Z");
    short.notes = vec![
        "the DebugSessionEnded Event was not written on pod api after the session ended (HTTP 500)"
            .into(),
    ];
    assert_eq!(
        trail_notes(&[whole, short]),
        [
            "id2: the DebugSessionEnded Event was not written on pod api after the session ended (HTTP 500)"
        ]
    );
}
