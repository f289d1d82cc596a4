#!/bin/bash
# The unit and fuzz-replay suites of a native ARCH build, run under qemu-user in a cached
# Debian 12 ARCH root filesystem (scripts/release/emulated-ARCH.txt, scripts/rootfs.sh) through
# chroot: binfmt_misc runs the ARCH binaries (scripts/binfmt.sh registers qemu-user-static).
# Results in build/emulated-ARCH/ (meson-logs/testlog.json). Not part of scripts/test.sh: the
# emulated build and run take long on this machine. Report RSS from it, never timings.
# --guest (arm64): instead, what needs a real kernel, in an aarch64 guest under QEMU TCG
# (tests/system/system-test.sh with MSCE_SYSTEM_ARCH=arm64; no KVM needed): the .debs'
# enrol-and-restore cycle with swtpm as the guest's TPM over two boots (MSCE_DEBS_DIR, else
# packaging/build-cross.sh ARCH builds them), then the integration suite (keyring, custody,
# seal, network namespaces, daemon) of the tree cross-built in build/cross-ARCH-tests
# (scripts/release/build-tests-cross.sh), or only the tests named in
# MSCE_SYSTEM_INTEGRATION_TESTS. Its verdict and exit status are the system test's (77: this
# host cannot run it).
# Usage: scripts/test-emulated.sh ARCH [--guest]        (root; arm64)
set -euo pipefail
arch=${1:?usage: test-emulated.sh ARCH [--guest]}
guest=${2:-}
case $guest in ""|--guest) ;; *) echo "usage: test-emulated.sh ARCH [--guest]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
if [ -z "$guest" ]; then
        list=scripts/release/emulated-$arch.txt
        [ -f "$list" ] || { echo "no package list $list" >&2; exit 2; }
        scripts/binfmt.sh "$arch"
        rootfs=$(scripts/rootfs.sh bookworm "$arch" "$list")
        echo "[emulated-$arch] root filesystem ready ($rootfs)"
        exec scripts/chroot.sh "$rootfs" /bin/bash /src/scripts/release/build-and-test-emulated.sh "$arch"
fi

t0=$SECONDS
if [ -z "${MSCE_DEBS_DIR:-}" ]; then
        packaging/build-cross.sh "$arch"
        export MSCE_DEBS_DIR=$PWD/build/cross-$arch/debs
fi
rootfs=$(scripts/rootfs.sh bookworm "$(dpkg --print-architecture)" "scripts/release/cross-$arch.txt")
scripts/chroot.sh "$rootfs" /bin/bash /src/scripts/release/build-tests-cross.sh "$arch"
# the boot-2 bound covers the whole integration suite under TCG
MSCE_SYSTEM_ARCH=$arch MSCE_SYSTEM_INTEGRATION=build/cross-$arch-tests \
        MSCE_SYSTEM_BOOT_TIMEOUT=${MSCE_SYSTEM_BOOT_TIMEOUT:-10800} tests/system/system-test.sh && rc=0 || rc=$?
echo "[guest-$arch] wall time of the whole run: $((SECONDS - t0)) s; exit $rc"
exit $rc
