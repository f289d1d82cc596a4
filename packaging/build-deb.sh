#!/bin/bash
# Build the msce .debs from this checkout and check them with lintian.
# dpkg-buildpackage wants debian/ at the source root, so the tree is copied to a scratch
# directory (without build directories and .git), packaging/debian is linked there as debian/,
# and the results (.deb, .changes, .buildinfo, lintian.txt) are collected into OUTDIR.
#
# Usage: packaging/build-deb.sh OUTDIR [--no-lintian]
# Environment: DEB_BUILD_OPTIONS (default "nocheck parallel=<cpus>": scripts/test.sh runs the
# tests itself; set it to "parallel=N" to run the unit suite inside the package build);
# MSCE_DEB_HOST_ARCH: cross-build for that architecture (packaging/build-cross.sh sets it).
# Exit 0 when the build succeeded and lintian reported no error and no warning.
set -euo pipefail
out=${1:?usage: build-deb.sh OUTDIR [--no-lintian]}
run_lintian=1
[ "${2:-}" = --no-lintian ] && run_lintian=0
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
# nothing stale: a failed build leaves no .debs behind for the system test to pick up
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out"/lintian.txt "$out"/build.log

scratch=$(mktemp -d /tmp/msce-deb.XXXXXX)
trap 'rm -rf --one-file-system "$scratch"' EXIT
version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
tree=$scratch/msce-$version
mkdir "$tree"
# everything but build output, VCS data and a stray debian/ (packaging/debian is the one)
tar -C "$src" -c --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude=./.demo \
        --exclude=./debian --exclude='./obj-*' . | tar -C "$tree" -x
ln -s packaging/debian "$tree/debian"

export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck parallel=$(nproc)}
profiles=()
case " $DEB_BUILD_OPTIONS " in *" nocheck "*) profiles=(-Pnocheck) ;; esac
t0=$SECONDS
host_arch=()
[ -n "${MSCE_DEB_HOST_ARCH:-}" ] && host_arch=(--host-arch "$MSCE_DEB_HOST_ARCH")
(cd "$tree" && dpkg-buildpackage -us -uc -b "${host_arch[@]}" "${profiles[@]}") > "$scratch/build.log" 2>&1 || {
        cp "$scratch/build.log" "$out/build.log"
        tail -n 60 "$scratch/build.log"
        echo "dpkg-buildpackage failed" >&2
        exit 1
}
echo "dpkg-buildpackage: $((SECONDS - t0)) s"
cp "$scratch"/*.deb "$scratch"/*.changes "$scratch"/*.buildinfo "$out/"
cp "$scratch/build.log" "$out/build.log"
ls -l "$out"/*.deb

[ $run_lintian = 1 ] || exit 0
changes=$(ls "$out"/*.changes)
# --fail-on: an error or a warning fails; overrides (with their reasons) live in
# packaging/debian/<package>.lintian-overrides
status=0
lintian --fail-on error,warning --display-info --show-overrides "$changes" > "$out/lintian.txt" 2>&1 || status=$?
if [ -s "$out/lintian.txt" ]; then cat "$out/lintian.txt"; else echo "lintian: no tags"; fi
[ $status = 0 ] || echo "lintian reported errors or warnings (exit $status)" >&2
exit $status
