#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with cargo-fuzz on nightly, from the
# committed seeds in fuzz/corpus/TARGET, new inputs going to fuzz/work/TARGET (not committed;
# copy an input worth keeping into corpus/), and prints executions per second and corpus size.
#   fuzz/run.sh 600            # ten minutes each
#   fuzz/run.sh 60 duration    # one target
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`.
set -euo pipefail
seconds="${1:-60}"
shift || true
cd "$(dirname "$0")"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
    log="$(mktemp)"
    echo "== $target: ${seconds}s" >&2
    # -max_total_time stops it; a crash stops it early with a non-zero status and the input
    # in fuzz/artifacts/TARGET/.
    mkdir -p "work/$target"
    cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>"$log" || {
        tail -n 40 "$log" >&2
        echo "$target: crashed, input in fuzz/artifacts/$target/" >&2
        exit 1
    }
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)"
    files="$(find "corpus/$target" "work/$target" -type f | wc -l)"
    echo "$target: ${runs} executions in ${seconds}s ($((runs / seconds))/s), corpus ${files} files, no crash"
    rm -f "$log"
done
