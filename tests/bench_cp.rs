//! Benchmark, not a test (ignored by default): a 256 MiB file copied out of a distroless
//! target with our `cp`, beside the same bytes fetched with the real kubectl
//! (`kubectl exec <debug container> -- cat /proc/1/root/...`), both through the same running
//! debug container, so neither pays for adding one. Every copy is checked by sha256. Rounds
//! alternate which tool goes first, so load that comes and goes hits both alike; each round
//! also fetches a 1 KiB file with both, whose time is each tool's fixed cost, and sends a
//! 256 MiB file into the target with both (`kubectl exec -i ... -- sh -c 'cat > ...'`).
//! Prints MiB/s (medians) and the load average; run it with `tests/bench_cp.sh` (bench profile
//! build) and put the numbers in docs/benchmarks.md.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::NONROOT_APP;

const SIZE_MIB: u64 = 256;
/// The fixed cost of each tool (process start, API reads, exec setup, teardown checks) is
/// its time for a file this small.
const SMALL_BYTES: u64 = 1024;
const ROUNDS: usize = 7;
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Ours,
    Kubectl,
}

/// Fetches `/tmp/NAME` of the target to `out` with `tool`, through the running debug
/// `container`, and checks the bytes; the whole command's time.
async fn fetch(
    c: &support::TestCluster,
    tool: Tool,
    container: &str,
    name: &str,
    out: &PathBuf,
    sha: &str,
) -> Duration {
    let took = match tool {
        Tool::Ours => {
            let started = Instant::now();
            let run = c
                .run(
                    &[
                        "-n",
                        "bench",
                        "cp",
                        &format!("pod/web:/tmp/{name}"),
                        &out.display().to_string(),
                    ],
                    LIMIT,
                )
                .await;
            let took = started.elapsed();
            assert_eq!(run.code, Some(0), "{run:?}");
            assert!(
                run.stderr.contains(&format!("reusing {container}")),
                "the same container: {run:?}"
            );
            took
        }
        Tool::Kubectl => {
            let file = std::fs::File::create(out).unwrap();
            let mut kubectl = c.sb.kubectl();
            kubectl
                .args([
                    "-n",
                    "bench",
                    "exec",
                    "web",
                    "-c",
                    container,
                    "--",
                    "cat",
                    &format!("/proc/1/root/tmp/{name}"),
                ])
                .stdout(file);
            // Async: the sandbox serves from this test's runtime, which must keep running.
            let mut kubectl = tokio::process::Command::from(kubectl);
            let started = Instant::now();
            let status = kubectl.status().await.expect("kubectl runs");
            let took = started.elapsed();
            assert!(status.success(), "kubectl exec cat: {status:?}");
            took
        }
    };
    assert_eq!(sha256_file(out), sha, "byte for byte");
    let _ = std::fs::remove_file(out);
    took
}

/// Sends `local` into the target's `/tmp/NAME` with `tool`, through the running debug
/// `container`, and checks the bytes there; the whole command's time.
async fn send(
    c: &support::TestCluster,
    tool: Tool,
    container: &str,
    local: &PathBuf,
    name: &str,
    sha: &str,
) -> Duration {
    let started = Instant::now();
    match tool {
        Tool::Ours => {
            let run = c
                .run(
                    &[
                        "-n",
                        "bench",
                        "cp",
                        &local.display().to_string(),
                        &format!("pod/web:/tmp/{name}"),
                    ],
                    LIMIT,
                )
                .await;
            assert_eq!(run.code, Some(0), "{run:?}");
        }
        Tool::Kubectl => {
            let mut kubectl = c.sb.kubectl();
            kubectl
                .args(["-n", "bench", "exec", "-i", "web", "-c", container, "--"])
                .args(["sh", "-c", &format!("cat > /proc/1/root/tmp/{name}")])
                .stdin(std::fs::File::open(local).unwrap());
            let status = tokio::process::Command::from(kubectl)
                .status()
                .await
                .expect("kubectl runs");
            assert!(status.success(), "kubectl exec -i cat: {status:?}");
        }
    }
    let took = started.elapsed();
    let mut check = c.sb.kubectl();
    check.args(["-n", "bench", "exec", "web", "-c", container, "--"]);
    check.args(["sha256sum", &format!("/proc/1/root/tmp/{name}")]);
    let out = tokio::process::Command::from(check)
        .output()
        .await
        .expect("kubectl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.split_whitespace().next(), Some(sha), "byte for byte");
    took
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
                    "head -c {} /dev/urandom > /target/tmp/big && head -c {SMALL_BYTES} /dev/urandom > /target/tmp/small && sha256sum /target/tmp/big /target/tmp/small",
                    SIZE_MIB << 20
                ),
            ],
            LIMIT,
        )
        .await;
    assert_eq!(made.code, Some(0), "{made:?}");
    let sums: Vec<&str> = made
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let [big_sha, small_sha] = sums[..] else {
        panic!("two sums: {made:?}");
    };

    // One debug container kept running for both tools.
    let mut holder = c
        .plugin(&["-n", "bench", "pod/web", "--", "sleep", "600"])
        .spawn()
        .expect("a session holds the debug container");
    let container = c.running_debug_container("bench", "web").await;

    let dir = std::env::temp_dir().join(format!("dd-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = SIZE_MIB << 20;
    let load = support::load_average();
    let upload = dir.join("upload");
    std::io::copy(
        &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), bytes),
        &mut std::fs::File::create(&upload).unwrap(),
    )
    .unwrap();
    let upload_sha = sha256_file(&upload);
    let mut big = [Vec::new(), Vec::new()];
    let mut small = [Vec::new(), Vec::new()];
    let mut up = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS {
        // Alternate who goes first, so load that comes and goes hits both alike.
        let order = if round % 2 == 0 {
            [Tool::Ours, Tool::Kubectl]
        } else {
            [Tool::Kubectl, Tool::Ours]
        };
        for tool in order {
            let i = tool as usize;
            let out = dir.join(format!("out-{i}"));
            big[i].push(fetch(&c, tool, &container, "big", &out, big_sha).await);
            small[i].push(fetch(&c, tool, &container, "small", &out, small_sha).await);
        }
        for tool in order {
            let name = format!("up-{}", tool as usize);
            up[tool as usize].push(send(&c, tool, &container, &upload, &name, &upload_sha).await);
        }
        println!(
            "BENCH round {}: out: ours {:.1} MiB/s ({:.2} s), kubectl {:.1} MiB/s ({:.2} s); in: ours {:.1} MiB/s, kubectl {:.1} MiB/s",
            round + 1,
            mib_per_s(bytes, big[0][round]),
            big[0][round].as_secs_f64(),
            mib_per_s(bytes, big[1][round]),
            big[1][round].as_secs_f64(),
            mib_per_s(bytes, up[0][round]),
            mib_per_s(bytes, up[1][round]),
        );
    }
    let _ = holder.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    let rate = |i: usize| median(big[i].iter().map(|t| mib_per_s(bytes, *t)).collect());
    let fixed = |i: usize| median(small[i].iter().map(Duration::as_secs_f64).collect());
    let took = |i: usize| median(big[i].iter().map(Duration::as_secs_f64).collect());
    let streaming = |i: usize| bytes as f64 / (1024.0 * 1024.0) / (took(i) - fixed(i));
    println!(
        "BENCH fixed cost (a {SMALL_BYTES}-byte file), median: ours {:.0} ms, kubectl {:.0} ms; rate net of it: ours {:.1} MiB/s, kubectl {:.1} MiB/s",
        fixed(0) * 1000.0,
        fixed(1) * 1000.0,
        streaming(0),
        streaming(1),
    );
    let up_rate = |i: usize| median(up[i].iter().map(|t| mib_per_s(bytes, *t)).collect());
    println!(
        "BENCH cp {SIZE_MIB} MiB into the target, median of {ROUNDS}: ours {:.1} MiB/s, kubectl exec -i sh -c 'cat > ...' {:.1} MiB/s (ratio {:.2})",
        up_rate(0),
        up_rate(1),
        up_rate(0) / up_rate(1),
    );
    let (ours, theirs) = (rate(0), rate(1));
    println!(
        "BENCH cp {SIZE_MIB} MiB out of the target, median of {ROUNDS}: ours {ours:.1} MiB/s, kubectl exec cat {theirs:.1} MiB/s (ratio {:.2}); load average at start {load}, at end {}",
        ours / theirs,
        support::load_average()
    );
}
