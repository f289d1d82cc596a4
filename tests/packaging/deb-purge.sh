#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What purging the .debs does (issue 15, packaging): the maintainer scripts of the built
# packages, run as "postrm purge", remove /var/lib/msce and /run/msce (msce-agent) and
# /var/lib/msce-mef (msce-mef), and unlink the agent's "msce" keyring from the persistent
# keyring of the CSE's user, leaving other keyrings alone; and what "mscectl setup" wrote into
# /etc/msce (the Kpm and its drop-in), keeping the administrator's own files there.
# The scripts run in a user and mount namespace of their own: /var/lib and /run are fresh tmpfs
# there, and persistent keyrings are per user namespace, so neither this machine's state nor
# another test's keys are within their reach (/etc is an overlay with a tmpfs upper layer). The namespace maps its uid 0 to root and its uids
# 1000-1001 to two outside uids nobody has.
# Usage: deb-purge.sh      (the .debs in MSCE_DEBS_DIR; exit 77 without them, root or keyctl)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (a user namespace with two uids mapped)"
for c in keyctl unshare dpkg-deb; do command -v $c > /dev/null || skip "$c is missing"; done
# the kernel refuses a user namespace to a chrooted process (the Debian 13 stage runs in one)
unshare --user true 2> /dev/null || skip "no user namespace here (unshare --user: $(unshare --user true 2>&1 | tail -n1))"

T=$(mktemp -d /tmp/msce-test-deb-purge.XXXXXX)
pid=
cleanup() { [ -z "$pid" ] || kill "$pid" 2> /dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
dpkg-deb -e "$agent" "$T/agent"
dpkg-deb -e "$mef" "$T/mef"
[ -f "$T/agent/postrm" ] || { echo "FAIL: msce-agent has no postrm"; exit 1; }
[ -f "$T/mef/postrm" ] || { echo "FAIL: msce-mef has no postrm"; exit 1; }

# Inside: tmpfs /var/lib and /run, the state the packages leave, keys as the agent files them
# (a keyring "msce" in uid 1000's persistent keyring) and a keyring of someone else (uid 1001),
# then both postrm scripts with "purge", then what is left.
cat > "$T/inside.sh" <<'EOS'
set -eu
T=$1
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /run
mkdir -p /var/lib/msce /run/msce /var/lib/msce-mef /var/lib/other
echo sealed > /var/lib/msce/profile.sealed
echo x > /run/msce/state.json
echo db > /var/lib/msce-mef/mef.db
# set -e in there too: keyctl session's status is the last command's, and a keyring that was
# never made would be "gone after purge" all the same
keyctl session - sh -ec '
        p=$(keyctl get_persistent @s 1000)
        r=$(keyctl newring msce "$p")
        keyctl add user msce:ltk not-a-real-key "$r" > /dev/null
        keyctl add user msce:kpsa:k1 not-a-real-key "$r" > /dev/null
        q=$(keyctl get_persistent @s 1001)
        keyctl newring other "$q" > /dev/null' > /dev/null
# keyrings UID [RING]: the names in UID's persistent keyring, or in its keyring RING
keyrings() {
        keyctl session - sh -ec 'r=$(keyctl get_persistent @s "$1")
                [ -z "$2" ] || r=$(keyctl search "$r" keyring "$2")
                for k in $(keyctl rlist "$r"); do keyctl rdescribe "$k"; echo; done' _ "$1" "${2:-}" 2> /dev/null |
                sed -n 's/.*;//p' | sort | tr '\n' ' '
}
echo "BEFORE uid1000: $(keyrings 1000)| msce: $(keyrings 1000 msce)| uid1001: $(keyrings 1001)"
# /etc: an overlay whose upper layer is a tmpfs of this namespace, so that nothing the scripts
# do there reaches this machine's /etc. What "mscectl setup" writes (the Kpm, its drop-in), a
# drop-in of the administrator's own, and the package's conffile (dpkg has removed it by now).
etc=none
mkdir -p "$T/ovl"
mount -n -t tmpfs tmpfs "$T/ovl"
mkdir "$T/ovl/upper" "$T/ovl/work"
if mount -n -t overlay overlay -o "lowerdir=/etc,upperdir=$T/ovl/upper,workdir=$T/ovl/work" /etc 2> /dev/null; then
        etc=
        rm -rf /etc/msce
        mkdir -p /etc/msce/agent.conf.d
        echo 00112233445566778899aabbccddeeff > /etc/msce/msce.kpm
        printf '[mef]\npsk_file = /etc/msce/msce.kpm\n' > /etc/msce/agent.conf.d/50-setup.conf
        echo '[node]' > /etc/msce/agent.conf.d/60-local.conf
fi
sh "$T/agent/postrm" purge
sh "$T/mef/postrm" purge
if [ -z "$etc" ]; then
        etc=$(cd /etc/msce && find . -mindepth 1 | sort | tr '\n' ' ')
        # without the administrator's drop-in, a second purge (a re-run) leaves no /etc/msce
        rm /etc/msce/agent.conf.d/60-local.conf
        sh "$T/agent/postrm" purge
        [ -e /etc/msce ] && etc="$etc, then /etc/msce stays" || etc="$etc, then gone"
fi
echo "LEFT $(cd /var/lib && ls | sort | tr '\n' ' ')| run: $(ls /run | tr '\n' ' ')| uid1000: $(keyrings 1000)| uid1001: $(keyrings 1001)| etc: $etc"
EOS

base=$((2100000000 + ($$ % 100000) * 2))
mkfifo "$T/go"
unshare --user --mount --propagation private -- bash -c 'read -r _ < "$1"; exec bash "$2/inside.sh" "$2"' _ "$T/go" "$T" \
        > "$T/out" 2>&1 &
pid=$!
# uid 0 stays root (the scripts' own uid); 1000-1001 map to unused uids. Wait (bounded) until
# unshare has made the namespace: the child then blocks on the fifo.
ours=$(readlink /proc/self/ns/user)
for _ in $(seq 100); do
        ns=$(readlink /proc/$pid/ns/user 2> /dev/null) || { echo "FAIL: unshare exited"; cat "$T/out"; exit 1; }
        [ "$ns" = "$ours" ] || break
        sleep 0.05
done
[ "$ns" != "$ours" ] || { echo "FAIL: no user namespace after 5 s"; exit 1; }
# a map is written in one write(2): dd, not the shell's line by line printf
map=$(printf '0 0 1\n1000 %d 2' "$base")
dd of=/proc/$pid/uid_map bs=4096 status=none <<< "$map"
echo deny > /proc/$pid/setgroups
dd of=/proc/$pid/gid_map bs=4096 status=none <<< "$map"
echo go > "$T/go"
rc=0
wait $pid || rc=$?
pid=
cat "$T/out"
[ $rc = 0 ] || { echo "FAIL: the scripts in the namespace exited $rc"; exit 1; }
left=$(sed -n 's/^LEFT //p' "$T/out")
status=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "FAIL: $1: '$2', expected '$3'"; status=1; fi; }
# what "gone after purge" is measured against
check "before purge: the agent's keyring msce with its keys, and another keyring" \
        "$(sed -n 's/^BEFORE //p' "$T/out")" "uid1000: msce | msce: msce:kpsa:k1 msce:ltk | uid1001: other "
check "/var/lib after purge: msce and msce-mef gone, other state kept" "$(echo "$left" | cut -d'|' -f1)" "other "
check "/run after purge: msce gone" "$(echo "$left" | cut -d'|' -f2)" " run: "
check "the agent's keyring unlinked from the CSE user's persistent keyring" "$(echo "$left" | cut -d'|' -f3)" " uid1000: "
check "another keyring left alone" "$(echo "$left" | cut -d'|' -f4)" " uid1001: other "
if [ "$(echo "$left" | cut -d'|' -f5)" = " etc: none" ]; then
        echo "SKIP: /etc/msce after purge: no overlay mount in the namespace"
else
        check "/etc/msce after purge: the Kpm and drop-in of mscectl setup gone, the administrator's drop-in kept" \
                "$(echo "$left" | cut -d'|' -f5)" " etc: ./agent.conf.d ./agent.conf.d/60-local.conf , then gone"
fi
exit $status
