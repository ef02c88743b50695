//! Benchmark, not a test (ignored by default): 128 MiB of a session's stdout, ours beside
//! `kubectl exec` of the same command in the same running debug container, for two producers:
//! `head -c 134217728 /dev/zero` (issue 13's command, whose busybox copy loop is slower than
//! either transport) and `cat` of a 128 MiB file made once in the container (which hands the
//! bytes to the pipe with sendfile(2), so the transport is the limit). Each producer is also
//! timed alone in the container, its output to /dev/null: what no transport can beat. Ours
//! runs twice, recording the session locally (the default) and with `--no-record`. When
//! `BENCH_OUTPUT_BEFORE` names a plugin binary built before output went over our own exec
//! connection, that one is measured too. Each run's stdout goes to a file whose size is
//! checked; rounds alternate which tool goes first. Prints the table (medians of 7, or of
//! `BENCH_OUTPUT_ROUNDS`) and rewrites its section of docs/benchmarks.md:
//! `cargo test --profile bench --locked --test bench_output -- --ignored --nocapture`.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{BIN, NONROOT_APP, TestCluster};

const BYTES: u64 = 128 * 1024 * 1024;
const ROUNDS: usize = 7;
const LIMIT: Duration = Duration::from_secs(300);
const SECTION_START: &str = "<!-- session-output:start -->";
const SECTION_END: &str = "<!-- session-output:end -->";
/// The file `cat` reads, made once in the debug container before the rounds.
const BIG_FILE: &str = "/tmp/big";

/// Microseconds of the container's clock: busybox `date` has no `%N`, `adjtimex` (reading
/// only, allowed without privileges) prints the time to the microsecond.
const CLOCK: &str = r#"now() { set -- $(adjtimex | sed -n 's/^ *time\.tv_[a-z]*: *//p'); echo $(($1 * 1000000 + $2)); }"#;

#[derive(Clone)]
enum Tool {
    /// A plugin binary (this build's, or the one before) and its flags before `pod/web`.
    Plugin(String, &'static [&'static str]),
    Kubectl,
    /// The command alone in the container, its output to /dev/null, timed by the container's
    /// clock.
    Alone,
}

/// `kubectl exec` of `script` with `sh -c` in the debug container; its stdout.
async fn exec_script(c: &TestCluster, container: &str, script: &str) -> String {
    let mut kubectl = c.sb.kubectl();
    kubectl.args([
        "-n", "bench", "exec", "web", "-c", container, "--", "sh", "-c", script,
    ]);
    let run = support::run_command(tokio::process::Command::from(kubectl), LIMIT).await;
    assert_eq!(run.code, Some(0), "{script}: {run:?}");
    run.stdout
}

/// Runs `command` with `tool`, stdout to `out` (whose size is checked); the whole command's
/// time, or for `Tool::Alone` the command's own time in the container.
async fn run(
    c: &TestCluster,
    tool: &Tool,
    container: &str,
    command: &[&str],
    out: &Path,
) -> Duration {
    let mut process = match tool {
        Tool::Alone => return alone(c, container, command).await,
        Tool::Plugin(binary, flags) => {
            let mut plugin = c.plugin(&[]);
            let plugin = plugin.as_std_mut();
            let mut replaced = std::process::Command::new(binary);
            for (key, value) in plugin.get_envs() {
                match value {
                    Some(value) => replaced.env(key, value),
                    None => replaced.env_remove(key),
                };
            }
            replaced
                .args(*flags)
                .args(["-n", "bench", "pod/web", "--"])
                .args(command);
            tokio::process::Command::from(replaced)
        }
        Tool::Kubectl => {
            let mut kubectl = c.sb.kubectl();
            kubectl
                .args(["-n", "bench", "exec", "web", "-c", container, "--"])
                .args(command);
            tokio::process::Command::from(kubectl)
        }
    };
    process
        .stdout(std::fs::File::create(out).expect("the output file"))
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    let started = Instant::now();
    let child = process.spawn().expect("runs");
    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("within the limit")
        .expect("runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        std::fs::metadata(out).unwrap().len(),
        BYTES,
        "every byte: {stderr}; {:?}",
        output.stdout.len()
    );
    let _ = std::fs::remove_file(out);
    took
}

/// `command` run in the container with its output to /dev/null, timed there: from before its
/// process starts to after it ends, net of what reading the clock twice costs (measured the
/// same way around nothing, in the same shell).
async fn alone(c: &TestCluster, container: &str, command: &[&str]) -> Duration {
    let command = command.join(" ");
    let script = format!(
        "{CLOCK}; a=$(now); b=$(now); {command} >/dev/null || exit 1; e=$(now); echo $((b - a)) $((e - b))"
    );
    let stdout = exec_script(c, container, &script).await;
    let times: Vec<u64> = stdout
        .split_whitespace()
        .map(|t| t.parse().unwrap_or_else(|_| panic!("µs: {stdout:?}")))
        .collect();
    let [clock, producer] = times[..] else {
        panic!("two times in µs: {stdout:?}");
    };
    Duration::from_micros(producer.saturating_sub(clock))
}

fn mib_per_s(took: Duration) -> f64 {
    BYTES as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::test]
#[ignore = "a benchmark: cargo test --profile bench --locked --test bench_output -- --ignored --nocapture"]
async fn session_output_128_mib_ours_beside_kubectl_exec() {
    let Some(c) = support::cluster().await else {
        return;
    };
    let rounds = std::env::var("BENCH_OUTPUT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(ROUNDS);
    c.namespace("bench", Some("restricted")).await;
    c.running_app("bench", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    // A session held open keeps one debug container running for every run to reuse.
    let mut held = c
        .started_session(&[
            "-n",
            "bench",
            "pod/web",
            "--",
            "sh",
            "-c",
            "echo started; sleep 3600",
        ])
        .await;
    let container = c.debug_containers("bench", "web").await[0].0.clone();
    let bytes = BYTES.to_string();
    let head = ["head", "-c", &bytes, "/dev/zero"];
    let cat = ["cat", BIG_FILE];
    // The file `cat` sends, and each producer's output size, checked once.
    exec_script(
        &c,
        &container,
        &format!(
            "dd if=/dev/urandom of={BIG_FILE} bs=1M count={} iflag=fullblock 2>/dev/null",
            BYTES / (1024 * 1024)
        ),
    )
    .await;
    for command in [&head[..], &cat[..]] {
        let counted = exec_script(&c, &container, &format!("{} | wc -c", command.join(" "))).await;
        assert_eq!(counted.trim(), bytes, "{command:?}");
    }
    let load = support::load_average();

    let mut tools = vec![
        ("ours".to_string(), Tool::Plugin(BIN.to_string(), &[])),
        (
            "ours, `--no-record`".to_string(),
            Tool::Plugin(BIN.to_string(), &["--no-record"]),
        ),
        (
            "`kubectl exec -c <that container>`".to_string(),
            Tool::Kubectl,
        ),
        (
            "the command alone in the container, to /dev/null".to_string(),
            Tool::Alone,
        ),
    ];
    if let Ok(before) = std::env::var("BENCH_OUTPUT_BEFORE") {
        tools.insert(
            2,
            (
                "ours before (kube's exec stream, 1 KiB pipes)".to_string(),
                Tool::Plugin(before, &[]),
            ),
        );
    }
    let kubectl_at = tools.len() - 2;
    let dir = std::env::temp_dir().join(format!("bench-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out: PathBuf = dir.join("out");
    let commands = [
        ("`head -c 134217728 /dev/zero`", &head[..]),
        ("`cat /tmp/big` (128 MiB of random bytes)", &cat[..]),
    ];
    let mut table = format!(
        "| command | | time (median of {rounds}) | MiB/s | vs. `kubectl exec` |\n|---|---|---:|---:|---:|\n"
    );
    // (command, ours, kubectl, alone) medians, for the prose.
    let mut medians = Vec::new();
    for (name, command) in commands {
        let mut times = vec![Vec::new(); tools.len()];
        for round in 0..rounds {
            for i in 0..tools.len() {
                // Each round starts with the next tool, so load that comes and goes hits all
                // alike.
                let at = (i + round) % tools.len();
                times[at].push(run(&c, &tools[at].1, &container, command, &out).await);
            }
        }
        let times: Vec<Duration> = times.into_iter().map(median).collect();
        let kubectl = times[kubectl_at];
        for (i, ((label, tool), took)) in tools.iter().zip(&times).enumerate() {
            let vs = match tool {
                Tool::Alone => "–".to_string(),
                _ => format!("{:.2}×", kubectl.as_secs_f64() / took.as_secs_f64()),
            };
            table.push_str(&format!(
                "| {} | {label} | {:.3} s | {:.0} | {vs} |\n",
                if i == 0 { name } else { "" },
                took.as_secs_f64(),
                mib_per_s(*took),
            ));
            eprintln!(
                "BENCH {name} {label}: {:.3} s, {:.0} MiB/s",
                took.as_secs_f64(),
                mib_per_s(*took)
            );
        }
        medians.push((name, times[0], kubectl, times[tools.len() - 1]));
    }
    eprintln!("\n{table}");
    let shares: Vec<String> = medians
        .iter()
        .map(|(name, ours, kubectl, alone)| {
            format!(
                "{name} alone takes {:.1}% of ours' time and {:.1}% of `kubectl exec`'s",
                100.0 * alone.as_secs_f64() / ours.as_secs_f64(),
                100.0 * alone.as_secs_f64() / kubectl.as_secs_f64()
            )
        })
        .collect();
    let section = format!(
        "{SECTION_START}\n## A session's output: 128 MiB of stdout\n\n\
         Issue 13's benchmark: 128 MiB of a command's stdout in a reused debug container (distroless-app as 65532:65532, \
         `restricted` namespace), ours (`pod/web -- COMMAND`) beside `kubectl exec` of the same command in the same container, \
         stdout to a local file whose size is checked; median of {rounds} rounds that alternate which tool goes first. \
         Sandbox cluster with runc pods ({} CPUs shared with other builds, {} build, load average {load} when it started), \
         measured {} by `cargo test --profile bench --locked --test bench_output -- --ignored --nocapture` (with `BENCH_OUTPUT_BEFORE=<binary>` \
         for a row of a plugin built before), which rewrites this section.\n\n{table}\n\
         What the time includes: for ours, the whole command (process start, the API reads, the exec, the bytes to a local file, \
         the trail's first Event on the pod, written beside the work, the start of the process that writes the last one after the exit; no teardown request after a normal end) and the session's local recording, on by default (asciicast: the output decoded as UTF-8, \
         invalid bytes as U+FFFD, and JSON-escaped on a thread of its own, up to the size cap or until the output outruns it by 4 MiB, when what is still queued is dropped: docs/recording.md); for ours with `--no-record`, the same without the \
         recording; for `kubectl exec`, process start, one exec, the bytes to a local file; for the \
         command alone, its own process start and run in the container with its output to /dev/null, timed by the container's clock \
         (`adjtimex`, to the microsecond) net of the cost of reading that clock: no transport at all, the most any tool can reach.\n\n\
         What bounds each: {}. Busybox's `head -c` copies byte by byte between 4 KiB stdio reads and writes: its own CPU is a \
         floor under both tools' times, whatever the transport. `cat` of a file (made once before the rounds with `dd if=/dev/urandom`) hands the \
         bytes to its stdout with sendfile(2), which to /dev/null costs next to nothing: its pair measures the transport, from \
         the exec's stdout pipe in the container through the exec server's websocket frames to the local file.\n\n\
         A non-interactive session's stdout and stderr come over our own exec connection, the one `cp` uses \
         (`src/kube/exec_stream.rs`): 32 KiB frames gathered into 256 KiB chunks and written by one thread per \
         stream, where kube-rs's `AttachedProcess` passed every frame through a 1 KiB pipe. A frame that comes after \
         2 ms without output (a first line, a prompt) is written at once; only a burst is gathered.\n{SECTION_END}\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        if cfg!(debug_assertions) {
            "dev-profile"
        } else {
            "bench-profile (release optimisations, thin LTO)"
        },
        jiff::Timestamp::now().strftime("%Y-%m-%d"),
        shares.join("; "),
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md");
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let updated = match (current.find(SECTION_START), current.find(SECTION_END)) {
        (Some(start), Some(end)) if end > start => format!(
            "{}{section}{}",
            &current[..start],
            current[end + SECTION_END.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n{section}", current.trim_end()),
    };
    std::fs::write(&path, updated).expect("write docs/benchmarks.md");
    let _ = std::fs::remove_dir_all(&dir);
    support::send(&held, libc::SIGTERM);
    let _ = support::exit_code(&mut held, LIMIT).await;
}
