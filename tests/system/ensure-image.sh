#!/bin/bash
# Print the directory of the cached guest image of MSCE_SYSTEM_RELEASE (default bookworm) for
# MSCE_SYSTEM_ARCH (default amd64), building it first when missing.
# The cache lives outside the checkout (MSCE_SYSTEM_CACHE, default /var/cache/msce-system-test)
# and is keyed by a hash of everything under image/: changing any of those files rebuilds it.
# Older images are removed once a new one is built. Exit 0 with the path on stdout, else 1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${MSCE_SYSTEM_CACHE:-/var/cache/msce-system-test}

# MSCE_SYSTEM_RELEASE (default bookworm): the guest's Debian release, part of the key and name
release=${MSCE_SYSTEM_RELEASE:-bookworm}
key=$("$here/image-key.sh")
# guest-*, not image-*: checkouts from before the release parameter remove every image-* but
# their own, and this one must not remove theirs either (one cache, several branches at once)
# Another architecture's names start with it (guest-arm64-bookworm-KEY, arm64-build-*, lock-arm64):
# the amd64 names' globs, also those of older checkouts, never match them, so neither removes
# nor waits for the other's (a foreign image takes long to build).
arch=${MSCE_SYSTEM_ARCH:-amd64}
name=guest-$release build=build lock=lock
if [ "$arch" != amd64 ]; then
        name=guest-$arch-$release build=$arch-build lock=lock-$arch
fi
dir=$cache/$name-$key
mkdir -p "$cache"

# one builder at a time; a second caller waits and then finds the image
exec 9> "$cache/$lock"
flock 9
if [ ! -f "$dir/rootfs.ext4" ]; then
        tmp=$cache/$build-$key.$$
        # a failed build's leftovers; never follow a bind mount that a crashed build left behind
        if grep -q " $cache/$build-" /proc/self/mounts; then
                echo "stale mounts under $cache/$build-*: unmount them first" >&2
                exit 1
        fi
        rm -rf --one-file-system "$cache/$build"-*
        mkdir -p "$tmp"
        echo "building the guest image $dir (a few minutes)" >&2
        mkdir -p "$tmp/out"
        if ! MSCE_SYSTEM_RELEASE=$release MSCE_SYSTEM_ARCH=$arch "$here/image/build.sh" "$tmp/work" "$tmp/out" > "$tmp/out/build.log" 2>&1; then
                tail -n 40 "$tmp/out/build.log" >&2
                echo "image build failed; logs in $tmp/out/build.log and $tmp/work" >&2
                exit 1
        fi
        grep '^TIMING' "$tmp/out/build.log" >&2
        rm -rf --one-file-system "$tmp/work"
        mv "$tmp/out" "$dir"
        rmdir "$tmp"
        for old in "$cache/$name"-*; do
                [ "$old" = "$dir" ] || rm -rf "$old"
        done
fi
echo "$dir"
