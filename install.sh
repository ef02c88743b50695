#!/usr/bin/env bash
# Builds and installs kubectl-distroless_debug, so that `kubectl distroless-debug` works, and
# kubectl_complete-distroless_debug beside it, so that kubectl 1.26+ completes its arguments.
#
#   ./install.sh                 build (release) and install both into $PREFIX/bin (default
#                                /usr/local, or ~/.local when not root), then print the version
#   ./install.sh --demo          also build the sandbox cluster and the `base` debug image, start
#                                the sandbox, create a distroless Pod and debug it once
#   ./install.sh --prefix DIR    install into DIR/bin
#   ./install.sh --debug         build with the dev profile instead of release (quicker to build;
#                                the test suite uses it to share its build)
#
# Needs cargo. The demo needs root, runc and busybox-static (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")"

demo=0
profile=release
if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --demo) demo=1 ;;
    --debug) profile=dev ;;
    --prefix) prefix="$2"; shift ;;
    --prefix=*) prefix="${1#--prefix=}" ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf 'install.sh: %s\n' "$*" >&2; }
command -v cargo >/dev/null || { say "cargo is needed: install Rust (https://rustup.rs) first"; exit 1; }

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "$profile" = dev ]; then out=debug; else out=release; fi
say "building kubectl-distroless_debug ($profile profile)"
# Every [[bin]] of the package: the plugin and its kubectl completion helper.
cargo build --locked --profile "$profile" -p kubectl-distroless-debug --bins
mkdir -p "$prefix/bin"
for bin in kubectl-distroless_debug kubectl_complete-distroless_debug; do
  install -m 0755 "$target_dir/$out/$bin" "$prefix/bin/"
  say "installed $prefix/bin/$bin"
done
case ":$PATH:" in *":$prefix/bin:"*) ;; *) say "add $prefix/bin to PATH so kubectl finds the plugin" ;; esac
"$prefix/bin/kubectl-distroless_debug" --version

[ "$demo" = 1 ] || exit 0

# ---- demo: a session into the sandbox cluster ----
[ "$(id -u)" = 0 ] || { say "--demo runs containers with runc and needs root"; exit 1; }
pkgs=()
command -v runc >/dev/null || pkgs+=(runc)
[ -x /bin/busybox ] || pkgs+=(busybox-static)
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing ${pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null
fi
command -v kubectl >/dev/null || { say "--demo needs kubectl on PATH"; exit 1; }

say "building the sandbox cluster and the static binaries inside its images"
cargo build --locked --profile "$profile" -p kube-sandbox
static_dir="$target_dir/x86_64-unknown-linux-gnu/$out"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --locked --profile "$profile" \
  --target x86_64-unknown-linux-gnu -p distroless-debug-agent -p sandbox-app
export SANDBOX_STATIC_DIR="$static_dir"

version=$("$prefix/bin/kubectl-distroless_debug" --version | awk '{print $NF}')
demo_dir=$(mktemp -d /tmp/distroless-debug-demo.XXXXXX)
say "building the base debug image into $demo_dir/base"
debug-images/build-local.sh base "$demo_dir/base" --agent "$static_dir/distroless-debug-agent"

say "starting the sandbox cluster"
"$target_dir/$out/kube-sandbox" up --dir "$demo_dir/cluster" \
  --image "ghcr.io/kubectl-distroless-debug/base:$version=$demo_dir/base" \
  >"$demo_dir/sandbox.log" 2>&1 &
sandbox_pid=$!
stop_sandbox() {
  kill -TERM "$sandbox_pid" 2>/dev/null || true
  wait "$sandbox_pid" 2>/dev/null || true
  rm -rf "$demo_dir"
}
trap stop_sandbox EXIT
for _ in $(seq 1 100); do [ -s "$demo_dir/cluster/kubeconfig" ] && break; sleep 0.1; done
[ -s "$demo_dir/cluster/kubeconfig" ] || { say "the sandbox did not start:"; cat "$demo_dir/sandbox.log" >&2; exit 1; }
export KUBECONFIG="$demo_dir/cluster/kubeconfig"
# kubectl caches discovery per host:port; a port reused by a later sandbox must not see it.
export KUBECACHEDIR="$demo_dir/kubecache"

kubectl apply -f - <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  containers:
    - name: app
      image: sandbox.local/distroless-app:nonroot
YAML
kubectl wait --for=condition=Ready pod/app --timeout=60s

export PATH="$prefix/bin:$PATH"
say "\$ kubectl distroless-debug pod/app -- ls -l /target/etc/app"
kubectl distroless-debug pod/app -- ls -l /target/etc/app
say "\$ kubectl distroless-debug pod/app -- id"
kubectl distroless-debug pod/app -- id
say "demo done: a debug session ran as the target's user, saw its files, and was torn down"
