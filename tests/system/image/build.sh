#!/bin/bash
# Build the system-test guest: Debian RELEASE (MSCE_SYSTEM_RELEASE, default bookworm) for ARCH
# (MSCE_SYSTEM_ARCH, default amd64; another one is debootstrapped through qemu-user, which
# scripts/binfmt.sh registers) minbase + systemd + the packages in packages.txt (bookworm amd64),
# packages-RELEASE.txt or packages-RELEASE-ARCH.txt (another architecture), the newest kernel
# of that release with an out-of-tree gpio-sim module, and a oneshot unit that runs the
# test script shipped with each run. Result in OUTDIR: vmlinuz, initrd.img, rootfs.ext4 (raw,
# sparse) and packages.list (what is installed, for the host's dependency check).
# Usage: build.sh WORKDIR OUTDIR      (root; WORKDIR is scratch space, removed by the caller)
set -euo pipefail
work=${1:?usage: build.sh WORKDIR OUTDIR}
out=${2:?usage: build.sh WORKDIR OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
release=${MSCE_SYSTEM_RELEASE:-bookworm}
arch=${MSCE_SYSTEM_ARCH:-amd64}
pkglist=$here/packages.txt
[ "$release" = bookworm ] || pkglist=$here/packages-$release.txt
foreign=()
if [ "$arch" != amd64 ]; then
        pkglist=$here/packages-$release-$arch.txt
        foreign=(--arch "$arch")
fi
root=$work/rootfs
image_size=${MSCE_SYSTEM_IMAGE_SIZE:-2G}

. "$here/../../../scripts/debian-mirrors.sh"
debian_mirrors "${MSCE_SYSTEM_MIRROR:-}" "${MSCE_SYSTEM_SECURITY_MIRROR:-}"

t0=$SECONDS
tick() { echo "TIMING image $1: $((SECONDS - t0))s"; }

mkdir -p "$root" "$out"
debootstrap --variant=minbase "${foreign[@]}" "$release" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 ||
        { tail -n 30 "$work/debootstrap.log"; exit 1; }
tick debootstrap

debian_sources "$release" > "$root/etc/apt/sources.list"
# small initrd (virtio-blk + ext4), configured before the kernel is installed so it is built once
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/initramfs-tools/hooks"
echo 'MODULES=list' > "$root/etc/initramfs-tools/conf.d/msce-systest"
install -m 0755 "$here/initramfs-hook" "$root/etc/initramfs-tools/hooks/msce-systest"
# no documentation, man pages or locales in the guest, but msce's own (the CSE drop-in example)
debian_nodoc "$root" msce-systest-nodoc 'msce*'

trap debian_umount EXIT
debian_mount "$root"

in_guest() { debian_chroot "$root" C "$@"; }
apt_get() { in_guest apt-get -q -y -o Dpkg::Use-Pty=0 "$@"; }

packages=$(grep -v '^#' "$pkglist" | xargs)
apt_get update > "$work/apt.log"
apt_get full-upgrade >> "$work/apt.log"
apt_get install --no-install-recommends $packages >> "$work/apt.log" ||
        { tail -n 30 "$work/apt.log"; exit 1; }
tick packages

# gpio-sim for exactly the installed kernel, from the same source version
kver=$(ls "$root/lib/modules" | sort -V | tail -n1)
# the binary version: the signed image's source version (6.1.192+2) names no linux-source
srcver=$(in_guest dpkg-query -W -f '${Version}' "linux-image-$kver")
series=$(echo "$kver" | cut -d. -f1-2)   # 6.1.0-56-amd64 (or -arm64) -> 6.1
build_deps="gcc make linux-headers-$kver linux-source-$series"
apt_get install --no-install-recommends gcc make "linux-headers-$kver" "linux-source-$series=$srcver" >> "$work/apt.log" ||
        { tail -n 30 "$work/apt.log"; exit 1; }
mkdir -p "$root/tmp/gpio-sim"
cp "$here/gpio-sim/"* "$root/tmp/gpio-sim/"
in_guest /tmp/gpio-sim/build.sh "$kver"
rm -rf "$root/tmp/gpio-sim"
apt_get purge $build_deps >> "$work/apt.log"
apt_get autoremove --purge >> "$work/apt.log"
apt_get clean
tick gpio-sim

# drop driver trees a headless virtio guest never loads: a smaller image is faster to create
kmod=$root/lib/modules/$kver/kernel
rm -rf "$kmod/drivers/gpu" "$kmod/drivers/net/wireless" "$kmod/drivers/net/ethernet" \
       "$kmod/drivers/media" "$kmod/drivers/infiniband" "$kmod/drivers/staging" \
       "$kmod/drivers/bluetooth" "$kmod/drivers/isdn" "$kmod/drivers/iio" "$kmod/drivers/scsi" \
       "$kmod/drivers/hid" "$kmod/drivers/input/touchscreen" "$kmod/sound" "$kmod/net/wireless" \
       "$kmod/net/mac80211" "$kmod/net/bluetooth" "$kmod/fs/ocfs2" "$kmod/fs/xfs" "$kmod/fs/btrfs"
in_guest depmod -a "$kver"

# guest configuration: root on virtio-blk, 9p shares in (read-only) and out, the test unit.
# 9pnet_virtio registers its transport before it probes the share devices, so a mount made while
# udev's coldplug is loading it can find the transport and not yet the share (seen on a loaded
# host: "9pnet_virtio: no channels available for device in", boot 1 lost). systemd-modules-load
# loads it (a load returns once the module's init, probes included, is done, also when udev
# started it) and the mounts wait for that.
echo msce-systest > "$root/etc/hostname"
printf '9pnet_virtio\n9p\n' > "$root/etc/modules-load.d/msce-9p.conf"
# as the Debian installer writes it (debootstrap writes none): without it "localhost" does not
# resolve in the guest (nsswitch: files, then dns, and there is no network)
cat > "$root/etc/hosts" <<'EOF'
127.0.0.1       localhost
127.0.1.1       msce-systest
::1             localhost ip6-localhost ip6-loopback
ff02::1         ip6-allnodes
ff02::2         ip6-allrouters
EOF
cat > "$root/etc/fstab" <<'EOF'
/dev/vda  /         ext4  rw,errors=remount-ro                            0 1
in        /mnt/in   9p    trans=virtio,version=9p2000.L,msize=262144,ro,nofail,x-systemd.requires=systemd-modules-load.service  0 0
out       /mnt/out  9p    trans=virtio,version=9p2000.L,msize=262144,rw,nofail,x-systemd.requires=systemd-modules-load.service  0 0
EOF
mkdir -p "$root/mnt/in" "$root/mnt/out" "$root/var/log/journal"
install -m 0755 "$here/msce-systest-launch" "$root/usr/local/sbin/msce-systest-launch"
install -m 0644 "$here/msce-systest.service" "$root/etc/systemd/system/msce-systest.service"
in_guest systemctl enable msce-systest.service
in_guest systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
        e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer
in_guest systemctl set-default multi-user.target
in_guest passwd -d root > /dev/null       # passwordless root on the serial console, for debugging
in_guest dpkg-query -W -f '${Package} ${Version} ${Provides}\n' > "$out/packages.list"

debian_umount
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
echo "$kver" > "$out/kernel-version"
mkfs.ext4 -q -L msce-systest -d "$root" "$out/rootfs.ext4" "$image_size"
tick total
