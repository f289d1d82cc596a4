#!/bin/bash
# Build and test msce on another Debian release, from a Debian 12 host (as root):
# a cached root filesystem of RELEASE (scripts/rootfs.sh, packages from
# scripts/release/RELEASE.txt, cache /var/cache/msce-rootfs keyed by those inputs) and in it,
# through chroot with this checkout at /src (scripts/chroot.sh), scripts/release/build-and-test.sh:
# gcc and clang with -Werror, the unit, integration and fuzz suites, the .debs with lintian.
# Results in build/RELEASE/ (meson-logs/testlog.json of build/RELEASE/gcc, debs/).
# Usage: scripts/test-release.sh RELEASE         (e.g. trixie)
set -euo pipefail
release=${1:?usage: test-release.sh RELEASE}
cd "$(dirname "$0")/.."
list=scripts/release/$release.txt
[ -f "$list" ] || { echo "no package list $list for release $release" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "test-release.sh needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
t0=$SECONDS
rootfs=$(scripts/rootfs.sh "$release" "$(dpkg --print-architecture)" "$list")
echo "[$release] root filesystem ready: $((SECONDS - t0)) s ($rootfs)"
scripts/chroot.sh "$rootfs" /bin/bash /src/scripts/release/build-and-test.sh "$release"
