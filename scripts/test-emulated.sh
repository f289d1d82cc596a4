#!/bin/bash
# The unit and fuzz-replay suites of a native ARCH build, run under qemu-user in a cached
# Debian 12 ARCH root filesystem (scripts/release/emulated-ARCH.txt, scripts/rootfs.sh) through
# chroot: binfmt_misc runs the ARCH binaries (scripts/binfmt.sh registers qemu-user-static).
# Results in build/emulated-ARCH/ (meson-logs/testlog.json). Not part of scripts/test.sh: the
# emulated build and run take long on this machine. Report RSS from it, never timings.
# Usage: scripts/test-emulated.sh ARCH        (root; arm64)
set -euo pipefail
arch=${1:?usage: test-emulated.sh ARCH}
cd "$(dirname "$0")/.."
list=scripts/release/emulated-$arch.txt
[ -f "$list" ] || { echo "no package list $list" >&2; exit 2; }
scripts/binfmt.sh "$arch"
rootfs=$(scripts/rootfs.sh bookworm "$arch" "$list")
echo "[emulated-$arch] root filesystem ready ($rootfs)"
scripts/chroot.sh "$rootfs" /bin/bash /src/scripts/release/build-and-test-emulated.sh "$arch"
