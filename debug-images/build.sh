#!/usr/bin/env bash
# Builds the debug images from debug-images/Dockerfile, one stage per toolkit (context: the
# repository root, so the agent is built from this source), multi-arch, tagged with the plugin
# version.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: debug-images/build.sh [options] [TOOLKIT...]

Builds the named toolkits (default: all of base net full jvm python go node) as
REGISTRY/TOOLKIT:VERSION, where VERSION is the plugin version from Cargo.toml.

Options:
  --registry REG    image registry/prefix (default: ghcr.io/kubectl-distroless-debug, or
                    $DISTROLESS_DEBUG_REGISTRY)
  --push            push the images (multi-arch manifest) instead of loading them locally
  --platforms LIST  target platforms (default: linux/amd64,linux/arm64; without --push only
                    the first is built, as a local image store holds one platform per tag)
  --builder TOOL    docker (buildx) or podman (default: whichever is found, docker first)
  --dry-run         print the exact commands and run none of them
  -h, --help        this help

After a build each image's size is printed. Exit codes: 0 built; 1 a build failed;
2 bad arguments (unknown toolkit or option, no builder found).
USAGE
}

all=(base net full jvm python go node)
root=$(cd "$(dirname "$0")/.." && pwd)
registry="${DISTROLESS_DEBUG_REGISTRY:-ghcr.io/kubectl-distroless-debug}"
push=0 dry=0 builder="" platforms="linux/amd64,linux/arm64"
toolkits=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --registry) registry="${2:?--registry needs a value}"; shift 2 ;;
        --registry=*) registry="${1#*=}"; shift ;;
        --push) push=1; shift ;;
        --platforms) platforms="${2:?--platforms needs a value}"; shift 2 ;;
        --platforms=*) platforms="${1#*=}"; shift ;;
        --builder) builder="${2:?--builder needs a value}"; shift 2 ;;
        --builder=*) builder="${1#*=}"; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) toolkits+=("$1"); shift ;;
    esac
done
[[ ${#toolkits[@]} -gt 0 ]] || toolkits=("${all[@]}")
for t in "${toolkits[@]}"; do
    known=0
    for k in "${all[@]}"; do [[ "$t" == "$k" ]] && known=1; done
    [[ $known = 1 ]] || { echo "build.sh: unknown toolkit '$t' (one of: ${all[*]})" >&2; exit 2; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
if [[ -z "$builder" ]]; then
    if command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then builder=docker
    elif command -v podman >/dev/null 2>&1; then builder=podman
    elif [[ $dry = 1 ]]; then builder=docker
    else echo "build.sh: neither docker buildx nor podman found" >&2; exit 2; fi
fi
[[ $push = 1 ]] || platforms="${platforms%%,*}"

run() {
    printf '%q ' "$@"; printf '\n'
    [[ $dry = 1 ]] || "$@"
}

for t in "${toolkits[@]}"; do
    ref="$registry/$t:$version"
    df="debug-images/Dockerfile"
    # TOOLKIT picks the stage (and the package list); --target stops there.
    select=(--build-arg "TOOLKIT=$t" --target "$t")
    case "$builder" in
        docker)
            if [[ $push = 1 ]]; then out=(--push); else out=(--load); fi
            run docker buildx build --platform "$platforms" --build-arg "VERSION=$version" \
                "${select[@]}" -f "$root/$df" -t "$ref" "${out[@]}" "$root" ;;
        podman)
            run podman build --platform "$platforms" --build-arg "VERSION=$version" \
                "${select[@]}" -f "$root/$df" --manifest "$ref" "$root"
            [[ $push = 0 ]] || run podman manifest push --all "$ref" "docker://$ref" ;;
        *) echo "build.sh: unknown builder '$builder' (docker or podman)" >&2; exit 2 ;;
    esac
    if [[ $dry = 0 && $push = 0 ]]; then
        size=$("$builder" image inspect --format '{{.Size}}' "$ref" 2>/dev/null || echo "?")
        printf '%-8s %s  %s bytes\n' "$t" "$ref" "$size"
    fi
done
