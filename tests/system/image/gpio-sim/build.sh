#!/bin/sh
# Build gpio-sim.ko for kernel $1 from Debian's linux-source tarball. Runs inside the guest
# rootfs (chroot), so the compiler and headers are the guest's, not the host's.
# Needs: linux-headers-$1 linux-source-X.Y gcc make xz-utils
# Installs /lib/modules/$1/updates/msce-systest/gpio-sim.ko and runs depmod.
set -eu
kver=$1
here=$(cd "$(dirname "$0")" && pwd)
tarball=$(ls /usr/src/linux-source-*.tar.xz | head -n1)
top=$(basename "$tarball" .tar.xz)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xJf "$tarball" -C "$work" \
        "$top/drivers/gpio/gpio-sim.c" "$top/drivers/gpio/gpiolib.h" "$top/kernel/irq/irq_sim.c"
src=$work/src
mkdir "$src"
# the module is built from two objects, so its main file needs a name other than gpio-sim.c
cp "$work/$top/drivers/gpio/gpio-sim.c" "$src/gpio-sim-core.c"
cp "$work/$top/drivers/gpio/gpiolib.h" "$work/$top/kernel/irq/irq_sim.c" "$here/Kbuild" "$src/"
# irq_to_desc() is not exported to modules; generic_handle_irq_safe() is and does the same job here
# (6.1 in bookworm, 6.12 in trixie); a source that no longer calls it needs no patch
if grep -q 'handle_simple_irq(irq_to_desc(irqnum));' "$src/irq_sim.c"; then
        sed -i 's/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq_safe(irqnum);/' "$src/irq_sim.c"
        grep -q 'generic_handle_irq_safe(irqnum)' "$src/irq_sim.c"
fi
make -s -C "/usr/src/linux-headers-$kver" M="$src" -j"$(nproc)" modules
install -D -m 0644 "$src/gpio-sim.ko" "/lib/modules/$kver/updates/msce-systest/gpio-sim.ko"
depmod -a "$kver"
