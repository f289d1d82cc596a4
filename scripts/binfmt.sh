#!/bin/bash
# Make this kernel run ARCH binaries through qemu-user-static (binfmt_misc), for an emulated
# chroot: mount binfmt_misc when it is not, and register Debian's qemu-user-static handler
# (/usr/lib/binfmt.d/qemu-CPU.conf, with the F flag: the interpreter is opened now, so it
# needs not exist inside the chroot) unless one is registered. Idempotent; never unregisters
# (the registration is the kernel's, shared with everything on this machine).
# Usage: scripts/binfmt.sh ARCH        (root; a Debian architecture: arm64, armhf)
set -euo pipefail
arch=${1:?usage: binfmt.sh ARCH}
case $arch in
arm64) cpu=aarch64 ;;
armhf|armel) cpu=arm ;;
*) echo "binfmt.sh: no qemu-user mapping for $arch" >&2; exit 2 ;;
esac
conf=/usr/lib/binfmt.d/qemu-$cpu.conf
[ -f "$conf" ] || { echo "binfmt.sh: $conf is missing (qemu-user-static, scripts/packages.txt)" >&2; exit 1; }
d=/proc/sys/fs/binfmt_misc
mountpoint -q "$d" || mount -t binfmt_misc binfmt_misc "$d"
[ -e "$d/qemu-$cpu" ] || grep -v '^#' "$conf" > "$d/register"
grep -q '^enabled' "$d/qemu-$cpu"
