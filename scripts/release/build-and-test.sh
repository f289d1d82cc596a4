#!/bin/bash
# Inside a release root filesystem (scripts/test-release.sh runs it there through
# scripts/chroot.sh, with the checkout at /src): the same build and test steps scripts/test.sh
# runs on the host, in build/RELEASE/:
#   - gcc with -Werror: suites unit, integration, fuzz (corpus replay), and packaging with this
#     release's .debs (the rpm test skips: no rpmbuild here)
#   - clang with -Werror: compile only
#   - the .debs of this release (packaging/build-deb.sh, lintian with errors and warnings fatal)
#     into build/RELEASE/debs, for the system test's guest of this release
# Usage: build-and-test.sh RELEASE      Exit 0 when everything passed.
set -euo pipefail
release=${1:?usage: build-and-test.sh RELEASE}
cd /src
b=build/$release
suites=(--suite unit --suite integration --suite fuzz)
SETUP_TAG=$release
. scripts/meson-setup.sh
. /etc/os-release
echo "[$release] $PRETTY_NAME; $(dpkg-query -W -f '${Package} ${Version}, ' libwolfssl-dev libgpiod-dev libsystemd-dev libtss2-dev meson gcc clang | sed 's/, $//')"
t0=$SECONDS
echo "== [$release] gcc -Werror"
setup "$b/gcc" -Dwerror=true
echo "== [$release] clang -Werror (compile only)"
CC=clang setup "$b/clang" -Dwerror=true
echo "[$release] builds: $((SECONDS - t0)) s"

status=0
echo "== [$release] .debs (dpkg-buildpackage) and lintian"
t0=$SECONDS
rm -rf "$b/debs"
packaging/build-deb.sh "$b/debs" || status=1
echo "[$release] .debs: $((SECONDS - t0)) s"
echo "== [$release] tests (gcc)"
t0=$SECONDS
MSCE_DEBS_DIR=/src/$b/debs meson test -C "$b/gcc" "${suites[@]}" --suite packaging --print-errorlogs --num-processes 2 ||
        status=1
echo "[$release] tests: $((SECONDS - t0)) s"
exit $status
