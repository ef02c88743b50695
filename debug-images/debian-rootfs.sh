#!/usr/bin/env bash
# Makes a root filesystem from a toolkit's Debian package list without Docker: the packages and
# their dependencies (no recommends) are fetched with `apt-get download` from this machine's
# Debian sources and unpacked with dpkg-deb into a merged-/usr tree. Maintainer scripts do not
# run, so the few things they would have made are made here: alternatives the tools are called
# by (vi, nc, awk, pager), the CA bundle, and the dynamic loader cache.
#
#   debug-images/debian-rootfs.sh PACKAGES.txt ROOTFS
#
# Needs apt-get, apt-cache and dpkg-deb (Debian), and an `apt-get update` done once. Exit
# codes: 0 built; 1 a step failed; 2 bad arguments.
set -euo pipefail

[[ $# -eq 2 ]] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
list="$1" rootfs="$2"
[[ -f "$list" ]] || { echo "debian-rootfs.sh: no package list $list" >&2; exit 2; }
mapfile -t wanted < <(grep -v -e '^#' -e '^[[:space:]]*$' "$list")
[[ ${#wanted[@]} -gt 0 ]] || { echo "debian-rootfs.sh: $list lists no package" >&2; exit 2; }

cache="${DEBIAN_ROOTFS_CACHE:-${TMPDIR:-/tmp}/distroless-debug-debs}"
mkdir -p "$cache" "$rootfs"

# Every package the list needs, as apt resolves it (virtual names, shown as <name>, dropped).
mapfile -t pkgs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${wanted[@]}" | grep -E '^[a-z0-9]' | sort -u)
(cd "$cache" && apt-get download -q "${pkgs[@]}" >/dev/null 2>"$cache/download.log") || {
    echo "debian-rootfs.sh: apt-get download failed:" >&2; cat "$cache/download.log" >&2; exit 1; }

# Merged /usr, as Debian bookworm systems are.
mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64} "$rootfs"/{etc,tmp,var/tmp,proc,sys,dev,run}
for d in bin sbin lib lib64; do [[ -e "$rootfs/$d" ]] || ln -s "usr/$d" "$rootfs/$d"; done
for p in "${pkgs[@]}"; do
    deb=$(ls "$cache/${p}_"*.deb 2>/dev/null | sort | tail -n 1)
    [[ -n "$deb" ]] || { echo "debian-rootfs.sh: $p was not downloaded" >&2; exit 1; }
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$rootfs"
done

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
