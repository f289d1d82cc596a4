#!/bin/bash
# Build the msce .debs for another architecture (arm64, armhf) from this checkout with Debian's
# cross toolchain, and check them with lintian (errors and warnings fail, as build-deb.sh does
# for amd64). The build runs in a cached Debian 12 amd64 root filesystem that has
# crossbuild-essential-ARCH and the ARCH multiarch -dev packages (scripts/release/cross-ARCH.txt,
# built by scripts/rootfs.sh under /var/cache/msce-rootfs), through scripts/chroot.sh, so the
# host gets no foreign packages: dpkg-buildpackage --host-arch ARCH -us -uc -b with the
# nocheck profile (the tests cannot run on this machine's CPU; see docs/platforms.md).
# Usage: packaging/build-cross.sh ARCH [OUTDIR]     (root; OUTDIR default build/cross-ARCH/debs)
set -euo pipefail
arch=${1:?usage: build-cross.sh ARCH [OUTDIR]}
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
list=scripts/release/cross-$arch.txt
[ -f "$list" ] || { echo "no package list $list: architectures with one: $(ls scripts/release/cross-*.txt | sed 's,.*/cross-,,; s,\.txt,,' | xargs)" >&2; exit 2; }
out=${2:-build/cross-$arch/debs}
mkdir -p "$out"
out=$(cd "$out" && pwd)
case $out in "$src"/*) ;; *) echo "OUTDIR must be inside the checkout ($src)" >&2; exit 2 ;; esac
t0=$SECONDS
rootfs=$(scripts/rootfs.sh bookworm "$(dpkg --print-architecture)" "$list")
echo "[cross-$arch] root filesystem ready: $((SECONDS - t0)) s ($rootfs)"
t0=$SECONDS
scripts/chroot.sh "$rootfs" /usr/bin/env DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
        DEB_BUILD_PROFILES=nocheck MSCE_DEB_HOST_ARCH="$arch" \
        /src/packaging/build-deb.sh "/src/${out#"$src"/}"
echo "[cross-$arch] .debs and lintian: $((SECONDS - t0)) s"
for deb in "$out"/msce-agent_*.deb "$out"/msce-mef_*.deb; do
        a=$(dpkg-deb -f "$deb" Architecture)
        [ "$a" = "$arch" ] || { echo "$deb is for $a, not $arch" >&2; exit 1; }
done
