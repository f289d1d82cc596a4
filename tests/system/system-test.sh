#!/bin/bash
# The system test: the msce .debs installed on a Debian guest (12, or MSCE_SYSTEM_RELEASE) with real systemd, a TPM 2.0
# (swtpm) and a simulated GPIO chip (gpio-sim), under QEMU TCG. Two boots of the same disk:
# boot 1 installs, configures and enrols against a local msce-mef; boot 2 (MEF disabled) must
# restore the TPM-sealed profile offline. The guest writes "PASS name" / "FAIL name: why" /
# "SKIP name: why" lines to the 9p output share; this script prints them and fails on any FAIL.
#
# Usage: tests/system/system-test.sh [WORKDIR]
# Environment:
#   MSCE_SYSTEM_RELEASE the guest's Debian release: bookworm (default) or trixie
#   MSCE_SYSTEM_ARCH    the guest's architecture: amd64 (default) or arm64 (an aarch64 TCG
#                       guest; its .debs from MSCE_DEBS_DIR, else build/cross-arm64/debs,
#                       packaging/build-cross.sh arm64)
#   MSCE_SYSTEM_INTEGRATION  a build directory of this checkout for the guest's architecture
#                       (scripts/test-emulated.sh arm64 --guest): boot 2 then runs its
#                       integration suite (MSCE_SYSTEM_INTEGRATION_TESTS: only these tests)
#   MSCE_DEBS_DIR       the bookworm .debs to test (else packaging/build-deb.sh builds them into
#                       WORKDIR); another release's come from build/RELEASE/debs
#                       (scripts/test-release.sh RELEASE)
#   MSCE_SYSTEM_CACHE   guest image cache (default /var/cache/msce-system-test)
#   MSCE_SYSTEM_KEEP=1  keep WORKDIR (console logs, journals) even when everything passed
# Exit: 0 all checks passed, 1 a check failed (or the VM did not finish), 77 this host cannot
# run the test (not root, no QEMU/swtpm/debootstrap, no space, no mirror for a first build).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
cache=${MSCE_SYSTEM_CACHE:-/var/cache/msce-system-test}
t_start=$SECONDS

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "ERROR: $*"; exit 1; }

# ---- host capabilities: a missing one is a skip, never a failure
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, loop-free mkfs.ext4 -d, 9p shares)"
arch=${MSCE_SYSTEM_ARCH:-amd64}
export MSCE_SYSTEM_ARCH=$arch
case $arch in
amd64) qemu=qemu-system-x86_64 ;;
arm64) qemu=qemu-system-aarch64 ;;
*) die "MSCE_SYSTEM_ARCH=$arch: amd64 or arm64" ;;
esac
for tool in $qemu qemu-img swtpm debootstrap mkfs.ext4 flock; do
        command -v "$tool" > /dev/null || skip "$tool is not installed (scripts/packages.txt lists it)"
done
mkdir -p "$cache" 2> /dev/null || skip "cannot create the image cache $cache"
free_mb() { df -Pm "$1" | awk 'NR == 2 { print $4 }'; }
release=${MSCE_SYSTEM_RELEASE:-bookworm}
export MSCE_SYSTEM_RELEASE=$release
key=$("$here/image-key.sh")
image_name=guest-$release         # ensure-image.sh's names
[ "$arch" = amd64 ] || image_name=guest-$arch-$release
if [ ! -f "$cache/$image_name-$key/rootfs.ext4" ]; then
        [ "$(free_mb "$cache")" -ge 3072 ] || skip "less than 3 GiB free in $cache to build the guest image"
        mirror_host=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }' |
                      grep -E '/debian/?$' | head -n1 | sed -E 's,^[a-z]+://([^/:]+).*,\1,')
        mirror_host=${mirror_host:-deb.debian.org}
        timeout 10 bash -c "exec 3<> /dev/tcp/$mirror_host/80" 2> /dev/null ||
                skip "the guest image must be built once and $mirror_host:80 is unreachable"
        # a foreign guest's root filesystem is made through qemu-user
        [ "$arch" = amd64 ] || "$src/scripts/binfmt.sh" "$arch" ||
                skip "cannot run $arch binaries through binfmt_misc (qemu-user-static)"
fi

workdir=${1:-}
if [ -z "$workdir" ]; then
        # short: swtpm's control socket path lives in it (sun_path holds 108 bytes)
        workdir=$(mktemp -d /tmp/msce-st.XXXXXX)
else
        rm -rf --one-file-system "$workdir"
        mkdir -p "$workdir"
fi
workdir=$(cd "$workdir" && pwd)
[ "$(free_mb "$workdir")" -ge 1024 ] || skip "less than 1 GiB free in $workdir for the guest's disk overlay"
echo "workdir: $workdir"

# ---- the .debs under test
debs=${MSCE_DEBS_DIR:-}
if [ "$arch" != amd64 ] && [ -z "$debs" ]; then
        # the .debs packaging/build-cross.sh built with Debian's cross toolchain
        debs=$src/build/cross-$arch/debs
        ls "$debs"/msce-agent_*.deb > /dev/null 2>&1 ||
                skip "no $arch .debs in $debs: packaging/build-cross.sh $arch builds them"
elif [ "$release" != bookworm ]; then
        # the .debs scripts/test-release.sh built in that release's root filesystem
        debs=$src/build/$release/debs
        ls "$debs"/msce-agent_*.deb > /dev/null 2>&1 ||
                skip "no $release .debs in $debs: scripts/test-release.sh $release builds them"
fi
if [ -z "$debs" ]; then
        command -v dpkg-buildpackage > /dev/null && command -v dh > /dev/null ||
                skip "MSCE_DEBS_DIR is not set and dpkg-dev/debhelper are missing to build the .debs"
        debs=$workdir/debs
        t0=$SECONDS
        "$src/packaging/build-deb.sh" "$debs" --no-lintian > "$workdir/build-deb.log" 2>&1 ||
                { tail -n 40 "$workdir/build-deb.log"; die "building the .debs failed"; }
        echo "TIMING .deb build: $((SECONDS - t0)) s"
fi
ls "$debs"/msce-agent_*.deb "$debs"/msce-mef_*.deb > /dev/null 2>&1 || die "no msce-agent/msce-mef .debs in $debs"

# ---- the guest image (cached; built on first use or when tests/system/image/ changed)
t0=$SECONDS
image=$("$here/ensure-image.sh") || die "the guest image could not be built"
echo "TIMING image ready: $((SECONDS - t0)) s ($image)"

# Every Depends of the .debs must be installed in the image: the guest has no network.
missing=$(for deb in "$debs"/msce-agent_*.deb "$debs"/msce-mef_*.deb; do dpkg-deb -f "$deb" Depends; done | "$here/deps-missing.sh" "$image/packages.list")
[ -z "$missing" ] || die "the guest image lacks dependencies of the .debs: $missing (add them to tests/system/image/packages.txt)"

# ---- the 9p input share: the .debs and the guest scripts
mkdir -p "$workdir/in/debs" "$workdir/out"
cp "$debs"/msce-agent_*.deb "$debs"/msce-mef_*.deb "$workdir/in/debs/"
cp -r "$here/guest" "$workdir/in/guest"
if [ -n "${MSCE_SYSTEM_INTEGRATION:-}" ]; then
        [ -f "$src/$MSCE_SYSTEM_INTEGRATION/meson-private/coredata.dat" ] ||
                die "MSCE_SYSTEM_INTEGRATION: no build directory $src/$MSCE_SYSTEM_INTEGRATION"
        echo "$MSCE_SYSTEM_INTEGRATION" > "$workdir/in/integration"
        echo "${MSCE_SYSTEM_INTEGRATION_TESTS:-}" > "$workdir/in/integration-tests"
        export MSCE_SYSTEM_SRC=$src     # the guest's /src (run-vm.sh)
fi
qemu-img create -q -f qcow2 -F raw -b "$image/rootfs.ext4" "$workdir/disk.qcow2" || die "qemu-img create failed"

# ---- two boots of the same disk and the same TPM
for boot in 1 2; do
        t0=$SECONDS
        "$here/run-vm.sh" "$image" "$workdir/disk.qcow2" "$workdir/in" "$workdir/out" \
                "$workdir/tpm" "$workdir/console-$boot.log"
        echo "TIMING boot $boot: $((SECONDS - t0)) s"
        # a boot that did not finish its checks makes the next one meaningless
        grep -q '^END' "$workdir/out/results-$boot.txt" 2> /dev/null || {
                echo "boot $boot did not finish its checks (console: $workdir/console-$boot.log):"
                tail -n 30 "$workdir/console-$boot.log"
                break
        }
done

# ---- verdict
echo "---- guest checks"
cat "$workdir"/out/results-*.txt 2> /dev/null
n_pass=$(cat "$workdir"/out/results-*.txt 2> /dev/null | grep -c '^PASS')
n_fail=$(cat "$workdir"/out/results-*.txt 2> /dev/null | grep -c '^FAIL')
n_skip=$(cat "$workdir"/out/results-*.txt 2> /dev/null | grep -c '^SKIP')
complete=1
for boot in 1 2; do
        grep -q '^END' "$workdir/out/results-$boot.txt" 2> /dev/null || complete=0
done
if ls "$workdir"/out/measure-*.txt > /dev/null 2>&1; then
        echo "---- measured in the guest (a record for the benchmarks, not a check)"
        sed 's/^/MEASURE /' "$workdir"/out/measure-*.txt
fi
echo "---- $n_pass passed, $n_fail failed, $n_skip skipped$([ $complete = 1 ] || echo ', guest run INCOMPLETE') in $((SECONDS - t_start)) s"
if [ "$n_fail" = 0 ] && [ $complete = 1 ]; then
        [ "${MSCE_SYSTEM_KEEP:-0}" = 1 ] || rm -rf --one-file-system "$workdir"
        exit 0
fi
echo "logs kept in $workdir (console-*.log, out/)"
exit 1
