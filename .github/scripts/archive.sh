#!/usr/bin/env bash
# Packs one platform's release archive of the plugin: the archive krew installs from and that
# people who install by hand unpack into a directory on their PATH.
#
#   .github/scripts/archive.sh TARGET_TRIPLE OS ARCH OUTDIR
#       e.g. archive.sh aarch64-apple-darwin darwin arm64 dist
#       Reads every binary in BINARIES from ${CARGO_TARGET_DIR:-target}/TARGET_TRIPLE/release
#       (build them first: cargo build --locked --release --target TARGET_TRIPLE) and LICENSE
#       from the repository root; writes OUTDIR/kubectl-distroless-debug_vVERSION_OS_ARCH.tar.gz
#       and beside it the same name + .sha256 (sha256sum format). VERSION is the workspace
#       version in Cargo.toml; when RELEASE_TAG is set (the pushed tag) it must be vVERSION.
#   .github/scripts/archive.sh --layout
#       prints the archive's files, one a line, and exits
#   .github/scripts/archive.sh --name OS ARCH
#       prints the name of that platform's archive, and exits
#       (tests/krew.rs checks the krew manifest, .krew.yaml, against these two)
#
# OS and ARCH are krew's (Go's) names: linux|darwin, amd64|arm64. The archive holds the files
# at its top level in a fixed order, owned by 0:0, dated from the last commit: the same inputs
# give the same bytes. Needs GNU tar (gtar on macOS).
set -euo pipefail
cd "$(dirname "$0")/../.."

# Every binary the archive holds: the plugin, and kubectl's completion helper for it
# (kubectl >= 1.26 runs kubectl_complete-<plugin> to complete a plugin's arguments).
BINARIES=(kubectl-distroless_debug kubectl_complete-distroless_debug)
FILES=(LICENSE)

say() { printf 'archive.sh: %s\n' "$*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

check_platform() {
  case "$1" in linux|darwin) ;; *) say "OS $1 is not one we release: linux or darwin"; exit 2 ;; esac
  case "$2" in amd64|arm64) ;; *) say "ARCH $2 is not one we release: amd64 or arm64"; exit 2 ;; esac
}
# The workspace version: the `version` line of [workspace.package].
version="$(awk '/^\[/ { section = $0 } section == "[workspace.package]" && $1 == "version" {
  gsub(/"/, "", $3); print $3; exit }' Cargo.toml)"
[ -n "$version" ] || { say "no version in [workspace.package] of Cargo.toml"; exit 1; }
archive_name() { printf 'kubectl-distroless-debug_v%s_%s_%s.tar.gz' "$version" "$1" "$2"; }

case "${1:-}" in
  --layout) printf '%s\n' "${BINARIES[@]}" "${FILES[@]}"; exit 0 ;;
  --name)
    [ $# -eq 3 ] || { say "--name takes OS ARCH"; exit 2; }
    check_platform "$2" "$3"; archive_name "$2" "$3"; echo; exit 0 ;;
  -h|--help) usage; exit 0 ;;
esac
if [ $# -ne 4 ]; then
  say "expected TARGET_TRIPLE OS ARCH OUTDIR, got $# argument(s) (see --help)"
  exit 2
fi
triple="$1" os="$2" arch="$3" outdir="$4"
check_platform "$os" "$arch"
if [ -n "${RELEASE_TAG:-}" ] && [ "$RELEASE_TAG" != "v$version" ]; then
  say "tag $RELEASE_TAG does not match Cargo.toml's version $version: tag v$version, or set the version in Cargo.toml to ${RELEASE_TAG#v} first (krew's manifest takes its version from the tag)"
  exit 1
fi

bindir="${CARGO_TARGET_DIR:-target}/$triple/release"
missing=()
for bin in "${BINARIES[@]}"; do [ -f "$bindir/$bin" ] || missing+=("$bin"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "$bindir lacks ${missing[*]}: every binary in BINARIES goes into the archive; build them with cargo build --locked --release --target $triple"
  exit 1
fi
for file in "${FILES[@]}"; do
  [ -f "$file" ] || { say "$file is missing at the repository root"; exit 1; }
done

if tar --version 2>/dev/null | grep -q 'GNU tar'; then tar=tar
elif command -v gtar >/dev/null; then tar=gtar
else say "GNU tar is needed (on macOS: brew install gnu-tar)"; exit 1
fi
if command -v sha256sum >/dev/null; then sha256() { sha256sum "$1"; }
else sha256() { shasum -a 256 "$1"; }
fi

name="$(archive_name "$os" "$arch")"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
for bin in "${BINARIES[@]}"; do install -m 0755 "$bindir/$bin" "$stage/$bin"; done
for file in "${FILES[@]}"; do install -m 0644 "$file" "$stage/$file"; done
mtime="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
mkdir -p "$outdir"
"$tar" -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  -cf - "${BINARIES[@]}" "${FILES[@]}" | gzip -9n > "$outdir/$name"
(cd "$outdir" && sha256 "$name" > "$name.sha256")
say "wrote $outdir/$name ($(wc -c < "$outdir/$name" | tr -d ' ') bytes)"
printf '%s\n' "$outdir/$name"
