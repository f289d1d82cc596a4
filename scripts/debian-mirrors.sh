# SPDX-License-Identifier: MIT
# Sourced by scripts/rootfs.sh and tests/system/image/build.sh (bash): the Debian mirrors a
# debootstrap uses, the host's own where it has them.
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
