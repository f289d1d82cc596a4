#!/bin/bash
# SPDX-License-Identifier: MIT
# The systemd units and the files installed beside them (TAP output; skipped when
# systemd-analyze is missing).
# Usage: tests/integration/units.sh SRCDIR BUILDDIR
# Covers: systemd-analyze verify of both units (ExecStart pointed at the build's binaries, the
# Documentation= man pages from the build when scdoc made them); systemd-analyze security
# --offline=true: overall exposure at most 2.5 for each; neither has ProcSubset= (both read
# /proc/sys); sysusers.d and tmpfiles.d applied to a scratch root (users, group memberships,
# owners, modes); both journal catalogs against the MESSAGE_IDs and journal fields of their
# programs; where meson installs everything;
# etc/agent.conf shows every key of the effective configuration with its default and loads when
# uncommented; etc/mef.conf names every key of mef/mef-config.c and loads when uncommented.
set -u

[ $# -eq 2 ] || { echo "usage: $0 SRCDIR BUILDDIR" >&2; exit 2; }
S=$(cd "$1" && pwd) || exit 2
B=$(cd "$2" && pwd) || exit 2
EXPOSURE_MAX=2.5
. "$(dirname "$0")/lib.sh"
need_cmds systemd-analyze
need_exec "$B/msce-agent" "$B/msce-mef"
tmpdir test-units
LIB_SHOW=$T/out

# ---- units ----
MAN=--man=no
if [ -f "$B/docs/msce-agent.8" ] && command -v man > /dev/null 2>&1; then
        mkdir -p "$T/man/man5" "$T/man/man8"
        cp "$B"/docs/*.8 "$T/man/man8/" && cp "$B"/docs/*.5 "$T/man/man5/" && MAN=--man=yes
fi
export MANPATH=$T/man
mkdir "$T/units"
for u in msce-agent.service msce-mef.service; do
        src=$B/systemd/$u
        [ -f "$src" ] || { not_ok "$u: not configured in $B/systemd"; continue; }
        # The unit as installed, but starting the binaries of this build (verify wants them).
        sed -E -e "s|^ExecStart=[^ ]*/(msce-[a-z]+)|ExecStart=$B/\1|" \
                -e "s|^ExecReload=[^ ]*/mscectl |ExecReload=$B/ctl/mscectl |" "$src" > "$T/units/$u"
        if systemd-analyze verify $MAN "$T/units/$u" > "$T/out" 2>&1 && ! [ -s "$T/out" ]; then
                ok "$u: systemd-analyze verify is clean ($MAN)"
        else
                not_ok "$u: systemd-analyze verify"
        fi
        systemd-analyze security --offline=true --no-pager "$T/units/$u" > "$T/out" 2>&1
        level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$T/out")
        if [ -n "$level" ] && awk -v l="$level" -v m=$EXPOSURE_MAX 'BEGIN { exit !(l <= m) }'; then
                ok "$u: exposure $level <= $EXPOSURE_MAX"
        else
                not_ok "$u: exposure '${level:-?}' (at most $EXPOSURE_MAX)"
        fi
        # ProcSubset=pid hides /proc/sys: the agent's persistent_keyring_expiry, serve's somaxconn
        if grep -q '^ProcSubset=' "$T/units/$u"; then
                not_ok "$u: ProcSubset= hides /proc/sys, which it reads"
        else
                ok "$u: /proc/sys readable (no ProcSubset=)"
        fi
done

# The contract that the rest of the project relies on (architecture.md, "systemd contract").
U=$T/units/msce-agent.service
missing=
for l in Type=notify NotifyAccess=main 'WatchdogSec=' Restart=on-failure RestartPreventExitStatus=78 \
         StateDirectory=msce StateDirectoryMode=0700 RuntimeDirectory=msce RuntimeDirectoryPreserve=yes \
         ConfigurationDirectory=msce ProtectSystem=strict NoNewPrivileges=yes DevicePolicy=closed \
         'DeviceAllow=char-gpiochip rw' 'CapabilityBoundingSet=CAP_SETUID CAP_SYS_ADMIN' \
         SystemCallFilter=@system-service 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' User=msce \
         'ExecReload=.*/mscectl reload --pid \$MAINPID'; do
        grep -qx -- "$l.*" "$U" || missing="$missing $l"
done
grep -q '^PrivateUsers=' "$U" && missing="$missing (PrivateUsers= must not be set)"
grep -qx 'After=.*time-sync\.target.*' "$U" || missing="$missing After=time-sync.target"
[ -z "$missing" ] && ok "msce-agent.service: the systemd contract" || { : > "$T/out"; not_ok "msce-agent.service lacks:$missing"; }
# msce-mef's: started on a set clock where the NTP client gates time-sync.target (expiry,
# certificates and retention go by the wall clock; docs/operations.md, "The clock").
U=$T/units/msce-mef.service
missing=
for l in Type=notify NotifyAccess=main 'WatchdogSec=' Restart=on-failure RestartPreventExitStatus=78 \
         StateDirectory=msce-mef StateDirectoryMode=0700 ProtectSystem=strict NoNewPrivileges=yes \
         User=msce-mef 'After=.*time-sync\.target'; do
        grep -qx -- "$l.*" "$U" || missing="$missing $l"
done
grep -qx 'CapabilityBoundingSet=' "$U" || missing="$missing CapabilityBoundingSet= (none)"
grep -q '^Wants=.*time-sync\.target' "$U" && missing="$missing (time-sync.target is ordered after, not pulled in)"
[ -z "$missing" ] && ok "msce-mef.service: the systemd contract" || { : > "$T/out"; not_ok "msce-mef.service lacks:$missing"; }

# ---- sysusers.d, tmpfiles.d ----
if command -v systemd-sysusers > /dev/null && command -v systemd-tmpfiles > /dev/null; then
        R=$T/root
        mkdir -p "$R/etc" "$R/var/lib" "$R/run"
        if systemd-sysusers --root="$R" "$S/systemd/msce-agent.sysusers" "$S/systemd/msce-mef.sysusers" > "$T/out" 2>&1 &&
           grep -q '^msce:[^:]*:[0-9]*:[0-9]*:[^:]*:/var/lib/msce:' "$R/etc/passwd" &&
           grep -q '^msce-mef:' "$R/etc/passwd" && grep -qE '^tss:[^:]*:[0-9]+:(.*,)?msce(,|$)' "$R/etc/group" &&
           grep -qE '^gpio:[^:]*:[0-9]+:(.*,)?msce(,|$)' "$R/etc/group"; then
                ok "sysusers.d: users msce and msce-mef; msce in groups tss and gpio"
        else
                cat "$R/etc/passwd" "$R/etc/group" >> "$T/out" 2> /dev/null
                not_ok "sysusers.d"
        fi
        uid() { sed -n "s/^$1:[^:]*:\([0-9]*\):.*/\1/p" "$R/etc/passwd"; }
        if systemd-tmpfiles --root="$R" --create "$S/systemd/msce-agent.tmpfiles" "$S/systemd/msce-mef.tmpfiles" \
                > "$T/out" 2>&1; then
                got=$(stat -c '%n %a %u' "$R/var/lib/msce" "$R/run/msce" "$R/var/lib/msce-mef" | sed "s|^$R||")
                want="/var/lib/msce 700 $(uid msce)
/run/msce 755 $(uid msce)
/var/lib/msce-mef 700 $(uid msce-mef)"
                [ "$got" = "$want" ] && ok "tmpfiles.d: /var/lib/msce 0700, /run/msce 0755, /var/lib/msce-mef 0700" ||
                        { echo "$got" > "$T/out"; not_ok "tmpfiles.d: modes or owners"; }
        else
                not_ok "tmpfiles.d"
        fi
else
        skip "sysusers.d: systemd-sysusers missing"
        skip "tmpfiles.d: systemd-tmpfiles missing"
fi

# ---- journal catalogs ----
# catalog_check NAME CATALOG HEADER SRCDIR JOURNAL_C: CATALOG has one complete entry (Subject,
# Defined-By: msce, Documentation, a text of 100 characters or more) for every MESSAGE_ID that
# HEADER defines, and no other; the program uses every one of them (SRCDIR/*.c); each @FIELD@ of
# the texts is a field the program sends (JOURNAL_C's "MSCE_..." names, or ERRNO); journalctl
# reads the file.
catalog_check() {
        name=$1 cat=$2 hdr=$3 src=$4 jc=$5
        : > "$T/out"
        sed -n 's/^#define \([A-Z_]*\) "\([0-9a-f]\{32\}\)".*/\1 \2/p' "$hdr" > "$T/ids"
        [ -s "$T/ids" ] || echo "no MESSAGE_IDs in $hdr" >> "$T/out"
        sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$cat" | sort > "$T/entries"
        [ -z "$(uniq -d "$T/entries")" ] || echo "entries twice: $(uniq -d "$T/entries")" >> "$T/out"
        cut -d' ' -f2 "$T/ids" | sort | diff - "$T/entries" | sed -n 's/^< /no entry for /p; s/^> /an entry for no id of the header: /p' \
                >> "$T/out"
        while read -r macro id; do
                grep -qw "$macro" "$src"/*.c || echo "$macro ($id) is never logged" >> "$T/out"
        done < "$T/ids"
        awk '/^-- [0-9a-f]+$/ && length($2) == 32 { id = $2; next }
             id == "" { next }
             /^Subject: [^ ]/ { subj[id] = 1 }
             /^Defined-By: msce$/ { def[id] = 1 }
             /^Documentation: [^ ]/ { doc[id] = 1 }
             /^$/ { body[id] = 1; next }
             body[id] { text[id] += length($0) }
             END { for (i in subj) if (!def[i] || !doc[i] || text[i] < 100) print "entry " i " lacks Defined-By, Documentation or a text" }
            ' "$cat" >> "$T/out"
        [ "$(grep -c '^Subject: ' "$cat")" = "$(wc -l < "$T/entries")" ] || echo "an entry without Subject:" >> "$T/out"
        { grep -o '"MSCE_[A-Z_]*"' "$jc" | tr -d '"'; echo ERRNO; } | sort -u > "$T/fields"
        grep -o '@[A-Z_]*@' "$cat" | tr -d @ | sort -u | while read -r f; do
                grep -qx "$f" "$T/fields" || echo "@$f@ is no field $name sends" >> "$T/out"
        done
        if command -v journalctl > /dev/null; then
                R=$T/catalog-$name
                mkdir -p "$R/usr/lib/systemd/catalog" "$R/var/lib/systemd/catalog"
                cp "$cat" "$R/usr/lib/systemd/catalog/"
                journalctl --root="$R" --update-catalog >> "$T/out" 2>&1
                journalctl --root="$R" --list-catalog > "$T/listed" 2>> "$T/out"
                while read -r macro id; do
                        grep -q "^$id msce: " "$T/listed" || echo "journalctl does not list $id" >> "$T/out"
                done < "$T/ids"
        fi
        if [ -s "$T/out" ]; then
                not_ok "$name catalog"
        else
                read_by=$(command -v journalctl > /dev/null && echo ', read by journalctl')
                ok "$name catalog: an entry for each of its $(wc -l < "$T/ids") MESSAGE_IDs and no other, each logged, its @FIELDS@ sent$read_by"
        fi
}
catalog_check msce-agent "$S/systemd/msce.catalog" "$S/agent/message-ids.h" "$S/agent" "$S/agent/report.c"
catalog_check msce-mef "$S/systemd/msce-mef.catalog" "$S/mef/message-ids.h" "$S/mef" "$S/mef/log.c"

# ---- install locations (meson's introspection: nothing is installed) ----
if command -v jq > /dev/null && [ -f "$B/meson-info/intro-installed.json" ]; then
        jq -r 'to_entries[] | .value' "$B/meson-info/intro-installed.json" > "$T/installed"
        missing=
        for f in systemd/system/msce-agent.service systemd/system/msce-mef.service sysusers.d/msce-agent.conf \
                 sysusers.d/msce-mef.conf tmpfiles.d/msce-agent.conf tmpfiles.d/msce-mef.conf \
                 udev/rules.d/60-msce.rules /msce/agent.conf /msce/mef.conf bin/mscectl; do
                grep -q -- "$f\$" "$T/installed" || missing="$missing $f"
        done
        [ -f "$S/systemd/msce.catalog" ] && { grep -q 'catalog/msce.catalog$' "$T/installed" || missing="$missing msce.catalog"; }
        if [ "$MAN" = --man=yes ]; then
                for f in man8/msce-agent.8 man8/mscectl.8 man8/msce-mef.8 man5/msce-agent.conf.5; do
                        grep -q -- "$f\$" "$T/installed" || missing="$missing $f"
                done
        fi
        [ -z "$missing" ] && ok "meson installs units, sysusers.d, tmpfiles.d, udev rules, configurations, man pages" ||
                { cp "$T/installed" "$T/out"; not_ok "not installed:$missing"; }
else
        skip "install locations: jq or meson-info missing"
fi

# ---- etc/agent.conf ----
# ini_keys FILE [commented]: "section.key=value" for every key (commented: only "#key = ..." lines)
ini_keys() {
        awk -v commented="${2:-}" '
                /^\[[a-z]+\]$/ { sec = substr($0, 2, length($0) - 2); next }
                commented && /^#[a-z_]+ =/ { line = substr($0, 2) }
                !commented && /^[a-z_]+ =/ { line = $0 }
                line != "" {
                        k = line; sub(/ =.*/, "", k); v = line; sub(/^[a-z_]+ =[ ]?/, "", v)
                        print sec "." k "=" v; line = ""
                }' "$1"
}
printf '00112233445566778899aabbccddeeff\n' > "$T/kpm.hex"
chmod 0600 "$T/kpm.hex"
REQUIRED="node.id=node-1
mef.uri=https://mef.example.net/msce
mef.psk_identity=kpm-1
mef.psk_file=$T/kpm.hex"
printf '[node]\nid = node-1\n[mef]\nuri = https://mef.example.net/msce\npsk_identity = kpm-1\npsk_file = %s\n' \
        "$T/kpm.hex" > "$T/min.conf"
# --syntax-only: the default [consumer] user cse need not exist on this machine.
if "$B/msce-agent" --check-config --syntax-only --config "$T/min.conf" > "$T/min.dump" 2> "$T/out"; then
        ini_keys "$T/min.dump" > "$T/effective"
        ini_keys "$S/etc/agent.conf" commented > "$T/example"
        : > "$T/out"
        while IFS= read -r kv; do
                k=${kv%%=*}
                grep -q "^$k=" "$T/example" || { echo "$k is not in etc/agent.conf" >> "$T/out"; continue; }
                printf '%s\n' "$REQUIRED" | grep -q "^$k=" && continue
                grep -qxF -- "$kv" "$T/example" || echo "$(grep "^$k=" "$T/example") but the default is $kv" >> "$T/out"
        done < "$T/effective"
        while IFS= read -r kv; do
                grep -q "^${kv%%=*}=" "$T/effective" || echo "${kv%%=*} in etc/agent.conf is not a key" >> "$T/out"
        done < "$T/example"
        [ -s "$T/out" ] && not_ok "etc/agent.conf: keys and defaults" ||
                ok "etc/agent.conf: every key, each with the default the agent uses ($(wc -l < "$T/effective") keys)"

        # Uncommented, with the required keys filled in, it loads to the same configuration.
        sed -E 's/^#([a-z_]+ =)/\1/' "$S/etc/agent.conf" | awk -v req="$REQUIRED" '
                BEGIN { n = split(req, r, "\n"); for (i = 1; i <= n; i++) { split(r[i], p, "="); v = r[i]; sub(/^[^=]*=/, "", v); val[p[1]] = v } }
                /^\[[a-z]+\]$/ { sec = substr($0, 2, length($0) - 2) }
                /^[a-z_]+ =/ { k = $0; sub(/ =.*/, "", k); if ((sec "." k) in val) { print k " = " val[sec "." k]; next } }
                { print }' > "$T/full.conf"
        if "$B/msce-agent" --check-config --syntax-only --config "$T/full.conf" > "$T/full.dump" 2> "$T/out" &&
           cmp -s "$T/min.dump" "$T/full.dump"; then
                ok "etc/agent.conf uncommented loads, to the same configuration as the defaults"
        else
                diff "$T/min.dump" "$T/full.dump" >> "$T/out"
                not_ok "etc/agent.conf uncommented"
        fi
else
        not_ok "msce-agent --check-config of a minimal configuration"
        skip "etc/agent.conf uncommented: no minimal configuration"
fi

# ---- etc/mef.conf ----
sed -n 's/^ *{ "\([a-z]*\)", "\([a-z_]*\)", &[a-z_]*,.*/\1.\2/p' "$S/mef/mef-config.c" > "$T/mef.keys"
ini_keys "$S/etc/mef.conf" commented | sed 's/=.*//' > "$T/mef.example"
: > "$T/out"
[ -s "$T/mef.keys" ] || echo "no keys found in mef/mef-config.c" > "$T/out"
while read -r k; do grep -qx "$k" "$T/mef.example" || echo "$k is not in etc/mef.conf" >> "$T/out"; done < "$T/mef.keys"
while read -r k; do grep -qx "$k" "$T/mef.keys" || echo "$k in etc/mef.conf is not a key" >> "$T/out"; done < "$T/mef.example"
[ -s "$T/out" ] && not_ok "etc/mef.conf: keys" || ok "etc/mef.conf: every key of mef/mef-config.c ($(wc -l < "$T/mef.keys") keys)"
# Uncommented (empty optional values dropped, the store in the scratch directory) it loads.
sed -E -e 's/^#([a-z_]+ =)/\1/' -e '/^[a-z_]+ =$/d' \
        -e "s|^path = .*|path = $T/mef.db|" -e "s|^master_key = .*|master_key = $T/master.key|" \
        "$S/etc/mef.conf" > "$T/mef.conf"
if "$B/msce-mef" --config "$T/mef.conf" init > "$T/out" 2>&1 && [ -f "$T/master.key" ]; then
        ok "etc/mef.conf uncommented loads (msce-mef init)"
else
        not_ok "etc/mef.conf uncommented"
fi

tap_done
