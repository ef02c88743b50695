#!/usr/bin/env bash
# Builds a debug image as a plain directory, without Docker or a registry:
#
#   OUTDIR/rootfs/       the image's root filesystem
#   OUTDIR/config.json   its OCI image config (User, Entrypoint, Cmd, Env, Labels)
#
# This is the layout the sandbox node runs containers from. Toolkits: base (busybox-static
# from the Debian package installed on this machine, plus the agent built static from this
# repository). debug-images/Dockerfile (a stage per toolkit) builds the same images for
# registries.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: debug-images/build-local.sh [--agent PATH] TOOLKIT OUTDIR

Builds TOOLKIT as OUTDIR/rootfs/ plus OUTDIR/config.json (an OCI image config), then
prints its size on stdout: on disk (du of the rootfs) and gzipped (the rootfs as a
tar | gzip -6 stream, about what a registry stores for it), e.g.
  full: 120.3 MiB on disk, 41.2 MiB gzipped

Toolkits: base (busybox + distroless-debug-agent); net and full (Debian packages from
debug-images/TOOLKIT/packages.txt, unpacked by debian-rootfs.sh, + the agent). jvm, python,
go and node are built with Docker only (debug-images/build.sh).

Options:
  --agent PATH   use this static distroless-debug-agent binary instead of building it
                 (built with: cargo build --locked --release --target x86_64-unknown-linux-gnu
                  -p distroless-debug-agent, RUSTFLAGS=-C target-feature=+crt-static;
                  honours CARGO_TARGET_DIR)
  -h, --help     this help

Exit codes: 0 built; 1 a step failed; 2 bad arguments or unsupported toolkit.
USAGE
}

die() { echo "build-local.sh: $*" >&2; exit 1; }

agent=""
positional=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --agent) [[ $# -ge 2 ]] || { echo "build-local.sh: --agent needs a path" >&2; exit 2; }
                 agent="$2"; shift 2 ;;
        --agent=*) agent="${1#--agent=}"; shift ;;
        --) shift; positional+=("$@"); break ;;
        -*) echo "build-local.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) positional+=("$1"); shift ;;
    esac
done
if [[ ${#positional[@]} -ne 2 ]]; then
    usage >&2
    exit 2
fi
toolkit="${positional[0]}"
outdir="${positional[1]}"

case "$toolkit" in
    base|net|full) ;;
    jvm|python|go|node)
        echo "build-local.sh: toolkit '$toolkit' is not yet supported by the local builder" >&2
        exit 2 ;;
    *)
        echo "build-local.sh: unknown toolkit '$toolkit' (base, net, full, jvm, python, go, node)" >&2
        exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n1)"
arch="$(uname -m)"
case "$arch" in
    x86_64) oci_arch=amd64 ;;
    aarch64) oci_arch=arm64 ;;
    *) die "unsupported machine architecture $arch" ;;
esac

# --- the agent: a static binary --------------------------------------------------------
if [[ -z "$agent" ]]; then
    target="${arch}-unknown-linux-gnu"
    target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    echo "build-local.sh: building distroless-debug-agent (static, $target)" >&2
    (cd "$repo" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --locked --release --target "$target" -p distroless-debug-agent >&2)
    agent="$target_dir/$target/release/distroless-debug-agent"
fi
[[ -x "$agent" ]] || die "agent binary $agent not found or not executable"
if command -v file >/dev/null 2>&1; then
    file -L "$agent" | grep -q 'dynamically linked' \
        && die "$agent is dynamically linked; the image needs a static binary (RUSTFLAGS=-C target-feature=+crt-static)"
fi

# --- the root filesystem ----------------------------------------------------------------
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
rootfs="$outdir/rootfs"
rm -rf "$rootfs" "$outdir/config.json"
if [[ "$toolkit" == base ]]; then
    busybox=/bin/busybox
    if ! dpkg -s busybox-static >/dev/null 2>&1; then
        die "the Debian package busybox-static is not installed (apt-get install busybox-static)"
    fi
    file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked' && die "$busybox is not static"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,usr/local/sbin,etc,proc,sys,dev,root,tmp}
    chmod 0755 "$rootfs" "$rootfs"/{bin,sbin,usr,usr/bin,usr/sbin,usr/local,usr/local/bin,usr/local/sbin,etc,proc,sys,dev}
    chmod 0700 "$rootfs/root"
    install -m 0755 "$busybox" "$rootfs/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ "$applet" == busybox ]] && continue
        ln -s busybox "$rootfs/bin/$applet"
    done
    description="busybox and distroless-debug-agent"
else
    # The same package list the Dockerfile installs from.
    "$here/debian-rootfs.sh" "$here/$toolkit/packages.txt" "$rootfs"
    mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/sbin" "$rootfs/root"
    description="Debian packages of debug-images/$toolkit/packages.txt and distroless-debug-agent"
fi
chmod 1777 "$rootfs/tmp"
install -m 0755 "$agent" "$rootfs/usr/local/bin/distroless-debug-agent"
# `start` (a --copy session's verb) is the agent called by that name (docs/agent.md).
ln -sf distroless-debug-agent "$rootfs/usr/local/bin/start"

# The target's root filesystem: the agent points /tmp/.distroless-debug/target at
# /proc/<pid>/root of the target it resolves (docs/agent.md, the target process).
ln -s /tmp/.distroless-debug/target "$rootfs/target"

# Names for the ids debug containers usually run as, so `id` and `ls -l` show names.
shell=/bin/sh; [[ -x "$rootfs/bin/bash" ]] && shell=/bin/bash
cat > "$rootfs/etc/passwd" <<PASSWD
root:x:0:0:root:/root:$shell
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
nonroot:x:65532:65532:nonroot:/tmp:$shell
PASSWD
cat > "$rootfs/etc/group" <<GROUP
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
GROUP
# Debian's tcpdump drops root to the user `tcpdump` after opening the capture, and refuses
# to run without it ("Couldn't find user 'tcpdump'"); its maintainer script, which did not
# run here, creates that system user.
if [[ -x "$rootfs/usr/bin/tcpdump" ]]; then
    echo "tcpdump:x:101:101::/nonexistent:/usr/sbin/nologin" >> "$rootfs/etc/passwd"
    echo "tcpdump:x:101:" >> "$rootfs/etc/group"
fi
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
# Mount points the runtime binds over (kubelet-managed files).
: > "$rootfs/etc/hosts"
rm -f "$rootfs/etc/resolv.conf"; : > "$rootfs/etc/resolv.conf"
: > "$rootfs/etc/hostname"

# --- the OCI image config ---------------------------------------------------------------
cat > "$outdir/config.json" <<CONFIG
{
  "architecture": "$oci_arch",
  "os": "linux",
  "config": {
    "User": "65532:65532",
    "Entrypoint": ["/usr/local/bin/distroless-debug-agent"],
    "Cmd": ["hold"],
    "Env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "HOME=/tmp"
    ],
    "WorkingDir": "/",
    "Labels": {
      "org.opencontainers.image.title": "distroless-debug-$toolkit",
      "org.opencontainers.image.description": "kubectl-distroless-debug toolkit '$toolkit': $description",
      "org.opencontainers.image.source": "https://github.com/distroless-debug/kubectl-distroless-debug",
      "org.opencontainers.image.version": "$version",
      "org.opencontainers.image.licenses": "Apache-2.0",
      "io.distroless-debug.toolkit": "$toolkit"
    }
  },
  "rootfs": {"type": "layers", "diff_ids": []}
}
CONFIG

# What the image weighs: on disk (the rootfs as du counts it), and as a registry stores a
# single-layer image (the rootfs as a gzip -6 tarball).
on_disk="$(du -sk "$rootfs" | cut -f1)"
gzipped="$(tar -C "$rootfs" -c . | gzip -6 | wc -c)"
echo "build-local.sh: $toolkit built in $outdir" >&2
awk -v t="$toolkit" -v k="$on_disk" -v b="$gzipped" \
    'BEGIN { printf "%s: %.1f MiB on disk, %.1f MiB gzipped\n", t, k / 1024, b / 1048576 }'
