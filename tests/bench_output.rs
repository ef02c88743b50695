//! Benchmark, not a test (ignored by default): 128 MiB of a session's stdout
//! (`-- head -c 134217728 /dev/zero`) with ours beside `kubectl exec` of the same command in
//! the same running debug container, and, when `BENCH_OUTPUT_BEFORE` names a plugin binary
//! built before output went over our own exec connection, that one too. Each run's stdout
//! goes to a file whose size is checked; rounds alternate which tool goes first. Prints the
//! table (MiB/s, medians of 7) and rewrites its section of docs/benchmarks.md:
//! `cargo test --release --test bench_output -- --ignored --nocapture`.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{BIN, NONROOT_APP, TestCluster};

const BYTES: u64 = 128 * 1024 * 1024;
const ROUNDS: usize = 7;
const LIMIT: Duration = Duration::from_secs(300);
const SECTION_START: &str = "<!-- session-output:start -->";
const SECTION_END: &str = "<!-- session-output:end -->";

#[derive(Clone)]
enum Tool {
    /// A plugin binary: this build's, or the one before.
    Plugin(String),
    Kubectl,
}

/// Runs the 128 MiB command with `tool`, stdout to `out`; the whole command's time.
async fn run(c: &TestCluster, tool: &Tool, container: &str, out: &Path) -> Duration {
    let command = ["head", "-c", &BYTES.to_string(), "/dev/zero"].map(String::from);
    let mut process = match tool {
        Tool::Plugin(binary) => {
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
                .args(["-n", "bench", "pod/web", "--"])
                .args(&command);
            tokio::process::Command::from(replaced)
        }
        Tool::Kubectl => {
            let mut kubectl = c.sb.kubectl();
            kubectl
                .args(["-n", "bench", "exec", "web", "-c", container, "--"])
                .args(&command);
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

fn mib_per_s(took: Duration) -> f64 {
    BYTES as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::test]
#[ignore = "a benchmark: cargo test --release --test bench_output -- --ignored --nocapture"]
async fn session_output_128_mib_ours_beside_kubectl_exec() {
    let Some(c) = support::cluster().await else {
        return;
    };
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
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();

    let mut tools = vec![
        ("ours".to_string(), Tool::Plugin(BIN.to_string())),
        (
            "`kubectl exec -c <that container>`".to_string(),
            Tool::Kubectl,
        ),
    ];
    if let Ok(before) = std::env::var("BENCH_OUTPUT_BEFORE") {
        tools.insert(
            1,
            (
                "ours before (kube's exec stream, 1 KiB pipes)".to_string(),
                Tool::Plugin(before),
            ),
        );
    }
    let dir = std::env::temp_dir().join(format!("bench-output-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out: PathBuf = dir.join("out");
    let mut times = vec![Vec::new(); tools.len()];
    for round in 0..ROUNDS {
        for i in 0..tools.len() {
            // Each round starts with the next tool, so load that comes and goes hits all alike.
            let at = (i + round) % tools.len();
            times[at].push(run(&c, &tools[at].1, &container, &out).await);
        }
    }
    let kubectl = median(times[tools.len() - 1].clone());
    let mut table = String::from(
        "| | time (median of 7) | MiB/s | vs. `kubectl exec` |\n|---|---:|---:|---:|\n",
    );
    for ((label, _), took) in tools.iter().zip(&times) {
        let took = median(took.clone());
        table.push_str(&format!(
            "| {label} | {:.2} s | {:.0} | {:.1}× |\n",
            took.as_secs_f64(),
            mib_per_s(took),
            kubectl.as_secs_f64() / took.as_secs_f64()
        ));
        eprintln!(
            "BENCH {label}: {:.3} s, {:.0} MiB/s",
            took.as_secs_f64(),
            mib_per_s(took)
        );
    }
    eprintln!("\n{table}");
    let section = format!(
        "{SECTION_START}\n## A session's output: 128 MiB of stdout\n\n\
         Issue 13's benchmark: `-- head -c 134217728 /dev/zero` in a reused debug container \
         (distroless-app as 65532:65532, `restricted` namespace), stdout to a local file whose size is checked, \
         beside `kubectl exec` of the same command in the same container; median of {ROUNDS} alternating rounds, \
         each the whole command (process start, API reads, exec, teardown checks). Sandbox cluster with runc pods \
         ({} CPUs shared with other builds, release build, load average {load} when it started), measured {} by \
         `cargo test --release --test bench_output -- --ignored --nocapture` (with `BENCH_OUTPUT_BEFORE=<binary>` \
         for the row before), which rewrites this section.\n\n{table}\n\
         A non-interactive session's stdout and stderr come over our own exec connection, the one `cp` uses \
         (`src/kube/exec_stream.rs`): 32 KiB frames gathered into 256 KiB chunks and written by one thread per \
         stream, where kube-rs's `AttachedProcess` passed every frame through a 1 KiB pipe.\n{SECTION_END}\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        jiff::Timestamp::now().strftime("%Y-%m-%d"),
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
