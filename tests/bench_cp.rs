//! Benchmark, not a test (ignored by default): a 256 MiB file copied out of a distroless
//! target with our `cp`, beside the same bytes fetched with the real kubectl
//! (`kubectl exec <debug container> -- cat /proc/1/root/...`), both through the same running
//! debug container, so neither pays for adding one. Prints MiB/s; run it with
//! `tests/bench_cp.sh` (release build), which records the numbers in docs/benchmarks.md.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::NONROOT_APP;

const SIZE_MIB: u64 = 256;
const ROUNDS: usize = 3;
const LIMIT: Duration = Duration::from_secs(600);

fn sha256_file(path: &PathBuf) -> String {
    use std::io::Read;
    let mut file = std::fs::File::open(path).expect("the copy exists");
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("readable");
        if n == 0 {
            break;
        }
        context.update(&buf[..n]);
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mib_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::test]
#[ignore = "a benchmark: run tests/bench_cp.sh"]
async fn copy_256_mib_out_of_the_target_ours_beside_kubectl_exec_cat() {
    let Some(c) = support::cluster().await else {
        return;
    };
    c.namespace("bench", Some("restricted")).await;
    c.running_app("bench", "web", NONROOT_APP, Some((65532, 65532)))
        .await;
    let made = c
        .run(
            &[
                "-n",
                "bench",
                "pod/web",
                "--",
                "sh",
                "-c",
                &format!(
                    "head -c {} /dev/urandom > /target/tmp/big && sha256sum /target/tmp/big",
                    SIZE_MIB << 20
                ),
            ],
            LIMIT,
        )
        .await;
    assert_eq!(made.code, Some(0), "{made:?}");
    let remote_sha = made
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();

    // One debug container kept running for both tools.
    let mut holder = c
        .plugin(&["-n", "bench", "pod/web", "--", "sleep", "600"])
        .spawn()
        .expect("a session holds the debug container");
    let mut container = String::new();
    c.wait_for(
        "a running debug container",
        Duration::from_secs(60),
        async || {
            if let Some((name, _)) = c
                .debug_containers("bench", "web")
                .await
                .into_iter()
                .find(|(_, state)| state == "running")
            {
                container = name;
                return true;
            }
            false
        },
    )
    .await;

    let dir = std::env::temp_dir().join(format!("dd-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = SIZE_MIB << 20;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let out = dir.join(format!("ours-{round}"));
        let started = Instant::now();
        let run = c
            .run(
                &[
                    "-n",
                    "bench",
                    "cp",
                    "pod/web:/tmp/big",
                    &out.display().to_string(),
                ],
                LIMIT,
            )
            .await;
        let took = started.elapsed();
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(
            run.stderr.contains("reusing"),
            "the same container: {run:?}"
        );
        assert_eq!(sha256_file(&out), remote_sha, "byte for byte");
        ours.push(mib_per_s(bytes, took));
        let _ = std::fs::remove_file(&out);

        let out = dir.join(format!("kubectl-{round}"));
        let file = std::fs::File::create(&out).unwrap();
        let mut kubectl = c.sb.kubectl();
        kubectl
            .args([
                "-n",
                "bench",
                "exec",
                "web",
                "-c",
                &container,
                "--",
                "cat",
                "/proc/1/root/tmp/big",
            ])
            .stdout(file);
        // Async: the sandbox serves from this test's runtime, which must keep running.
        let mut kubectl = tokio::process::Command::from(kubectl);
        let started = Instant::now();
        let status = kubectl.status().await.expect("kubectl runs");
        let took = started.elapsed();
        assert!(status.success(), "kubectl exec cat: {status:?}");
        assert_eq!(sha256_file(&out), remote_sha, "byte for byte");
        theirs.push(mib_per_s(bytes, took));
        let _ = std::fs::remove_file(&out);
    }
    let _ = holder.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "BENCH cp {SIZE_MIB} MiB out of the target, median of {ROUNDS}: ours {ours:.1} MiB/s, kubectl exec cat {theirs:.1} MiB/s (ratio {:.2})",
        ours / theirs
    );
}
