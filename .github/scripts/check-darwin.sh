#!/usr/bin/env bash
# Type-checks the plugin for macOS on a Linux machine: `cargo check --target TRIPLE` with a
# stand-in for Apple's C compiler, so that build scripts compiling C (ring's) can run. Nothing
# is compiled to machine code or linked: this finds Rust that does not build on macOS (a
# Linux-only flag, a mode_t of another width), not C or link errors, which only the release
# workflow's macOS jobs can see.
#
#   .github/scripts/check-darwin.sh [TRIPLE...]   (default: aarch64-apple-darwin x86_64-apple-darwin)
#
# Needs each target's standard library: rustup target add aarch64-apple-darwin x86_64-apple-darwin
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf 'check-darwin.sh: %s\n' "$*" >&2; }
triples=("$@")
[ ${#triples[@]} -gt 0 ] || triples=(aarch64-apple-darwin x86_64-apple-darwin)
installed="$(rustup target list --installed 2>/dev/null || true)"
for t in "${triples[@]}"; do
  grep -qx "$t" <<< "$installed" || { say "no standard library for $t: rustup target add $t"; exit 1; }
done

# A fixed path, so that cargo does not rerun the build scripts every time.
stub="${CARGO_TARGET_DIR:-$PWD/target}/check-darwin"
mkdir -p "$stub"
cat > "$stub/cc" <<'STUB'
#!/bin/sh
# Writes each output file empty (cc-rs may take it for gcc/clang (-o) or for MSVC (-Fo)).
prev=""
for a in "$@"; do
  case "$a" in -o?*) : > "${a#-o}" ;; -Fo?*) : > "${a#-Fo}" ;; esac
  [ "$prev" = "-o" ] && : > "$a"
  prev="$a"
done
exit 0
STUB
chmod +x "$stub/cc"

for t in "${triples[@]}"; do
  say "cargo check --target $t"
  var="${t//-/_}"
  env "CC_$var=$stub/cc" "AR_$var=ar" CRATE_CC_NO_DEFAULTS=1 \
    cargo check --locked -p kubectl-distroless-debug --target "$t"
done
