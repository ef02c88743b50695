#!/usr/bin/env bash
# Benchmark: a 256 MiB file out of (and into) a distroless target, our `cp` beside `kubectl exec`,
# against the sandbox cluster (needs root and runc), bench profile (release optimisations, thin LTO). Prints the BENCH lines;
# the numbers go into docs/benchmarks.md by hand, with the machine they were taken on.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --profile bench --locked --test bench_cp -- --ignored --nocapture 2>&1 | tee /dev/stderr | grep '^BENCH' || {
    echo "bench_cp.sh: no BENCH line (skipped? see above)" >&2
    exit 1
}
