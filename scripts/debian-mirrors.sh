# SPDX-License-Identifier: MIT
# Sourced by scripts/rootfs.sh and tests/system/image/build.sh (bash): the Debian mirrors a
# debootstrap uses, the host's own where it has them, and the setup of the root it made.
# debian_mirrors [MIRROR [SECURITY_MIRROR]]: sets mirror and security: the arguments when given
# (the callers' environment overrides), else the host's from its deb822 .sources or a classic
# sources.list, else deb.debian.org.
# debian_sources RELEASE: the sources.list of a RELEASE root on those mirrors.
debian_mirrors() {
        mirror=${1:-$(debian_host_uris | grep -E '/debian/?$' | head -n1)}
        mirror=${mirror:-http://deb.debian.org/debian}
        security=${2:-$(debian_host_uris | grep -E '/debian-security/?$' | head -n1)}
        security=${security:-http://deb.debian.org/debian-security}
}
debian_host_uris() {
        { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ for (i = 2; i <= NF; i++) print $i }' || true
          grep -hs '^deb ' /etc/apt/sources.list | awk '{ print $2 }' || true; } | awk '!seen[$0]++'
}
debian_sources() {
        printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
                "$mirror" "$1" "$mirror" "$1" "$security" "$1"
}

# What both build in the root they debootstrapped:
# debian_nodoc ROOT NAME KEEP: ROOT's dpkg (/etc/dpkg/dpkg.cfg.d/NAME) installs no documentation,
# man pages, locales or info pages, but /usr/share/doc/KEEP.
debian_nodoc() {
        printf 'path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/%s\npath-exclude=/usr/share/man/*\n' "$3" \
                > "$1/etc/dpkg/dpkg.cfg.d/$2"
        printf 'path-exclude=/usr/share/locale/*\npath-exclude=/usr/share/info/*\n' >> "$1/etc/dpkg/dpkg.cfg.d/$2"
}
# debian_mount ROOT: /proc, /sys, /dev and /dev/pts bound into ROOT; debian_umount (also for the
# caller's EXIT trap) undoes them, the last first.
debian_mounts=()
debian_mount() {
        local m
        for m in proc sys dev dev/pts; do
                mount --bind "/$m" "$1/$m"
                debian_mounts+=("$1/$m")
        done
}
debian_umount() {
        local i
        for ((i = ${#debian_mounts[@]} - 1; i >= 0; i--)); do
                umount "${debian_mounts[i]}" 2>/dev/null || umount -l "${debian_mounts[i]}"
        done
        debian_mounts=()
}
# debian_chroot ROOT LC_ALL COMMAND...: COMMAND in ROOT with a clean environment, for apt and dpkg.
debian_chroot() {
        local root=$1 lc=$2
        shift 2
        chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
                LC_ALL="$lc" "$@"
}
