#!/bin/bash
# Run a command as root in a root filesystem made by scripts/rootfs.sh, with this checkout
# bind-mounted read-write at /src. The cached tree is never changed: the command runs on an
# overlay (a scratch upper directory, removed afterwards), so packages a test installs or users
# it adds are gone with it. Everything is mounted in a private mount namespace, so nothing
# outlives the command even when it is killed: /proc, /sys, /dev and /dev/pts from the host,
# /run (with /run/systemd and /run/lock, as on a booted system) and /tmp as fresh tmpfs. The
# kernel keyring and the network namespace are the host's; users that tests add get uids in
# 60001-60999, which no host user has (keyrings are per uid). So the locks that guard what is
# shared, /run/lock/msce (fault-matrix picking a network on the host's interfaces), are the
# host's: that one directory is bind-mounted from it.
# Usage: scripts/chroot.sh ROOTFS COMMAND [ARG...]        (root)
set -euo pipefail
rootfs=${1:?usage: chroot.sh ROOTFS COMMAND [ARG...]}
shift
[ $# -gt 0 ] || { echo "usage: chroot.sh ROOTFS COMMAND [ARG...]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$rootfs/.complete" ] || { echo "$rootfs is not a complete root filesystem" >&2; exit 1; }

scratch=$(mktemp -d "${MSCE_CHROOT_SCRATCH:-/var/tmp}/msce-chroot.XXXXXX")
trap 'rm -rf --one-file-system "$scratch"' EXIT
mkdir "$scratch/upper" "$scratch/work" "$scratch/root"

mkdir -p /run/lock/msce
# shellcheck disable=SC2016
unshare --mount --propagation private -- /bin/bash -euc '
        rootfs=$1 scratch=$2 src=$3; shift 3
        r=$scratch/root
        mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$scratch/upper,workdir=$scratch/work" "$r"
        mount -t proc proc "$r/proc"
        mount --rbind /sys "$r/sys"
        mount --bind /dev "$r/dev"
        mount --bind /dev/pts "$r/dev/pts"
        mount -t tmpfs -o mode=0755 tmpfs "$r/run"
        mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
        mkdir -p "$r/src" "$r/run/systemd" "$r/run/lock/msce"
        mount --bind /run/lock/msce "$r/run/lock/msce"
        # The kernel keyring is per uid and shared with the host: system users that tests add
        # in here (useradd --system) get uids no host user has, so their keyrings are theirs.
        sed -i -E "/^#?(SYS_UID|SYS_GID)_(MIN|MAX)/d" "$r/etc/login.defs"
        printf "SYS_UID_MIN 60001\nSYS_UID_MAX 60999\nSYS_GID_MIN 60001\nSYS_GID_MAX 60999\n" >> "$r/etc/login.defs"
        mount --bind "$src" "$r/src"
        exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                HOME=/root LC_ALL=C.UTF-8 TERM=dumb "$@"
' chroot-sh "$rootfs" "$scratch" "$src" "$@"
