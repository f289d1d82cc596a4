#!/bin/bash
# Print the directory of a cached Debian root filesystem for RELEASE (bookworm, trixie) and
# ARCH (a Debian architecture; default the host's), with the packages of PKGLIST installed
# (name:ARCH entries add that architecture first, for multiarch cross-build dependencies),
# building it first when missing. The cache lives outside the checkout (MSCE_ROOTFS_CACHE,
# default /var/cache/msce-rootfs) and is keyed by a hash of its inputs: the release, the
# architecture, the package list, this script and debian-mirrors.sh. Changing any of them
# builds a new one; older ones for the same release and architecture are removed once it is built.
# Callers never change the cached tree: they run in an overlay on top of it (scripts/chroot.sh).
# Usage: scripts/rootfs.sh RELEASE ARCH PKGLIST       (root; exit 0 with the path on stdout)
set -euo pipefail
release=${1:?usage: rootfs.sh RELEASE ARCH PKGLIST}
arch=${2:-$(dpkg --print-architecture)}
pkglist=${3:?usage: rootfs.sh RELEASE ARCH PKGLIST}
cache=${MSCE_ROOTFS_CACHE:-/var/cache/msce-rootfs}

key=$( { echo "$release $arch"; grep -v '^#' "$pkglist" | sed '/^$/d' | LC_ALL=C sort; cat "$0" "$(dirname "$0")/debian-mirrors.sh"; } |
       sha256sum | cut -c1-16)
# one cache entry per list: the cross-build lists share release and architecture
name=$release-$arch-$(basename "$pkglist" .txt)
dir=$cache/$name-$key
mkdir -p "$cache"
exec 9> "$cache/lock-$name"
flock 9
if [ -f "$dir/.complete" ]; then
        echo "$dir"
        exit 0
fi

. "$(dirname "$0")/debian-mirrors.sh"
debian_mirrors "${MSCE_MIRROR:-}" "${MSCE_SECURITY_MIRROR:-}"

tmp=$cache/build-$name-$key
if grep -q " $cache/build-$name-" /proc/self/mounts; then
        echo "stale mounts under $cache/build-$name-*: unmount them first" >&2
        exit 1
fi
# a failed build's leftovers (the lock is held: no other build of this name runs)
rm -rf --one-file-system "$cache/build-$name"-*
mkdir -p "$tmp"
log=$tmp.log
echo "building the $release/$arch root filesystem $dir (a few minutes; log $log)" >&2
t0=$SECONDS
foreign=()
if [ "$arch" != "$(dpkg --print-architecture)" ]; then
        # a foreign architecture's maintainer scripts run under qemu-user (binfmt_misc)
        foreign=(--arch "$arch")
fi
# the mirror here drops connections now and then (seen: "Failed getting release file"):
# three attempts, each from scratch
for attempt in 1 2 3; do
        debootstrap --variant=minbase "${foreign[@]}" "$release" "$tmp" "$mirror" >> "$log" 2>&1 && break
        if [ $attempt = 3 ]; then
                tail -n 30 "$log" >&2
                exit 1
        fi
        echo "debootstrap attempt $attempt failed, retrying" | tee -a "$log" >&2
        rm -rf --one-file-system "$tmp"
        mkdir -p "$tmp"
        sleep $((attempt * 10))
done
echo "TIMING rootfs $name debootstrap: $((SECONDS - t0)) s" >&2
debian_sources "$release" > "$tmp/etc/apt/sources.list"
# no documentation, man pages or locales: a build and test root, not a system to read
debian_nodoc "$tmp" msce-nodoc '*/copyright'
trap debian_umount EXIT
debian_mount "$tmp"
in_root() { debian_chroot "$tmp" C.UTF-8 "$@"; }
apt_get() { in_root apt-get -q -y -o Dpkg::Use-Pty=0 -o Acquire::Retries=3 "$@" >> "$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }; }
packages=$(grep -v '^#' "$pkglist" | xargs)
# name:ARCH entries (multiarch -dev packages for a cross build) need that architecture first
for a in $(printf '%s\n' $packages | sed -n 's/^[^:]*:\([a-z0-9]*\)$/\1/p' | sort -u); do
        [ "$a" = "$arch" ] || in_root dpkg --add-architecture "$a"
done
apt_get update --error-on=any
apt_get full-upgrade
apt_get install --no-install-recommends $packages
apt_get clean
in_root dpkg-query -W -f '${Package} ${Version} ${Provides}\n' > "$tmp/packages.list"
debian_umount
echo "TIMING rootfs $name total: $((SECONDS - t0)) s" >&2
touch "$tmp/.complete"
mv "$tmp" "$dir"
mv "$log" "$dir.log"
for old in "$cache/$name"-*; do
        case $old in "$dir"|"$dir.log") ;; *) rm -rf --one-file-system "$old" ;; esac
done
echo "$dir"
