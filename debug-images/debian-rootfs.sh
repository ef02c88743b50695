#!/usr/bin/env bash
# Makes a root filesystem from a toolkit's Debian package list without Docker: apt resolves the
# list as `apt-get install --no-install-recommends` would on an empty system, the packages are
# fetched with `apt-get download` from this machine's Debian sources and unpacked with dpkg-deb
# into a merged-/usr tree, less what the dpkg filters of dpkg-slim.cfg leave out (the same file
# the Dockerfile installs: no docs, man pages or translations). Maintainer scripts do not run, so
# the few things they would have made are made here: alternatives the tools are called by (vi,
# nc, awk, pager), the CA bundle, and the dynamic loader cache.
#
#   debug-images/debian-rootfs.sh PACKAGES.txt ROOTFS
#
# Needs apt-get, apt-cache and dpkg-deb (Debian), and an `apt-get update` done once. Exit
# codes: 0 built; 1 a step failed; 2 bad arguments.
set -euo pipefail

[[ $# -eq 2 ]] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
list="$1" rootfs="$2"
[[ -f "$list" ]] || { echo "debian-rootfs.sh: no package list $list" >&2; exit 2; }
mapfile -t wanted < <(grep -v -e '^#' -e '^[[:space:]]*$' "$list")
[[ ${#wanted[@]} -gt 0 ]] || { echo "debian-rootfs.sh: $list lists no package" >&2; exit 2; }
filters="$(dirname "${BASH_SOURCE[0]}")/dpkg-slim.cfg"
[[ -f "$filters" ]] || { echo "debian-rootfs.sh: no dpkg filters $filters" >&2; exit 1; }

cache="${DEBIAN_ROOTFS_CACHE:-${TMPDIR:-/tmp}/distroless-debug-debs}"
mkdir -p "$cache" "$rootfs"

# Every package the list needs, as apt's resolver picks them for an empty system (the
# status file is /dev/null): the first of alternatives, one provider of a virtual package.
# usr-is-merged is named because this tree is merged-/usr, as bookworm-slim is (where it is
# installed): otherwise init-system-helpers' `usrmerge | usr-is-merged` brings usrmerge and
# with it all of Perl. Each line: NAME VERSION ARCH.
mapfile -t pkgs < <(apt-get install --simulate --no-install-recommends -q \
        -o Dir::State::status=/dev/null usr-is-merged "${wanted[@]}" 2>"$cache/resolve.log" \
    | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*\[\([^]]*\)\]).*/\1 \2 \3/p')
[[ ${#pkgs[@]} -gt 0 ]] || {
    echo "debian-rootfs.sh: apt cannot resolve $list:" >&2; cat "$cache/resolve.log" >&2; exit 1; }
debs=() missing=()
for line in "${pkgs[@]}"; do
    read -r name version arch <<<"$line"
    # apt-get download's file name: the epoch's colon is escaped.
    deb="$cache/${name}_${version//:/%3a}_${arch}.deb"
    debs+=("$deb")
    [[ -f "$deb" ]] || missing+=("$name=$version")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    (cd "$cache" && apt-get download -q "${missing[@]}" >/dev/null 2>"$cache/download.log") || {
        echo "debian-rootfs.sh: apt-get download failed:" >&2; cat "$cache/download.log" >&2; exit 1; }
fi

# Merged /usr, as Debian bookworm systems are.
mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64} "$rootfs"/{etc,tmp,var/tmp,proc,sys,dev,run}
for d in bin sbin lib lib64; do [[ -e "$rootfs/$d" ]] || ln -s "usr/$d" "$rootfs/$d"; done
for deb in "${debs[@]}"; do
    [[ -f "$deb" ]] || { echo "debian-rootfs.sh: $deb was not downloaded" >&2; exit 1; }
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$rootfs"
done

# The dpkg filters, applied as dpkg applies them at unpack: the last matching rule decides;
# a filtered-out directory stays only when something kept is inside it.
rules=()
while read -r verb pattern _; do
    case "$verb" in
        path-exclude|path-include) rules+=("$verb" "$pattern") ;;
        ''|'#'*) ;;
        *) echo "debian-rootfs.sh: $filters: unknown line '$verb $pattern'" >&2; exit 1 ;;
    esac
done <"$filters"
excluded() {
    local verdict=1 i
    for ((i = 0; i < ${#rules[@]}; i += 2)); do
        # shellcheck disable=SC2053 # the pattern is a glob, as dpkg's fnmatch(3) reads it
        if [[ "$1" == ${rules[i + 1]} ]]; then
            [[ ${rules[i]} == path-exclude ]] && verdict=0 || verdict=1
        fi
    done
    return "$verdict"
}
# Every pattern is absolute; only the directories the patterns start in are walked, each once.
declare -A walk=()
for ((i = 1; i < ${#rules[@]}; i += 2)); do
    top="${rules[i]%%[*?[]*}"
    top="${top%/*}"
    [[ -d "$rootfs$top" ]] && walk["$rootfs$top"]=1
done
if [[ ${#walk[@]} -gt 0 ]]; then
    # Deepest first, so a directory is judged after what was inside it.
    while IFS= read -r -d '' path; do
        excluded "${path#"$rootfs"}" || continue
        if [[ -d "$path" && ! -L "$path" ]]; then
            rmdir "$path" 2>/dev/null || true
        else
            rm -f "$path"
        fi
    done < <(find "${!walk[@]}" -mindepth 1 -depth -print0)
fi

# What maintainer scripts would have done.
alt() { [[ -e "$rootfs$2" ]] && [[ ! -e "$rootfs$1" ]] && ln -s "$2" "$rootfs$1" || true; }
# /bin/sh: dash's in a Debian image (it is in bookworm-slim, so the lists do not name it).
alt /usr/bin/sh /usr/bin/dash
alt /usr/bin/sh /usr/bin/bash
alt /usr/bin/vi /usr/bin/vim.tiny
alt /usr/bin/vim /usr/bin/vim.tiny
alt /usr/bin/nc /usr/bin/nc.openbsd
alt /usr/bin/awk /usr/bin/mawk
alt /usr/bin/pager /usr/bin/less
alt /usr/bin/editor /usr/bin/vim.tiny
if [[ -d "$rootfs/usr/share/ca-certificates" ]]; then
    mkdir -p "$rootfs/etc/ssl/certs"
    find "$rootfs/usr/share/ca-certificates" -name '*.crt' -exec cat {} + \
        >"$rootfs/etc/ssl/certs/ca-certificates.crt"
fi
if [[ -x "$rootfs/usr/sbin/ldconfig" ]]; then
    "$rootfs/usr/sbin/ldconfig" -r "$rootfs" 2>/dev/null || true
fi
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
printf 'root:x:0:0:root:/root:/bin/bash\nnonroot:x:65532:65532:nonroot:/tmp:/bin/bash\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
echo "debian-rootfs.sh: ${#pkgs[@]} packages unpacked into $rootfs ($(du -sh "$rootfs" | cut -f1))" >&2
