#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What the built .debs hold and say (issue 15, packaging), read with dpkg-deb -c/-I/-e, and
# that packaging/rpm/msce.spec states the same dependencies and enablement:
#   - agent.conf.d/ with the per-device template, a conffile with every setting commented out
#   - the descriptions say what purging deletes, and the postrm scripts do it
#   - every /usr/share/doc path a man page names is in the package that ships the page
#   - Debian policy for enablement: the agent enabled on installation, the MEF not; the rpm's
#     presets say the same
#   - upgrades restart a running service with systemctl --no-block (dpkg does not wait for it)
#   - tpm2-tss and keyutils are Recommends in both (neither Requires nor Depends); so is libpq
#     for msce-mef
#   - the crypto module is 0644 in both
# Usage: deb-contents.sh SOURCEDIR      (the .debs in MSCE_DEBS_DIR; exit 77 without them)
set -euo pipefail
src=${1:?usage: deb-contents.sh SOURCEDIR}
. "$(dirname "$0")/lib.sh"
command -v dpkg-deb > /dev/null || skip "dpkg-deb is missing"
spec=$src/packaging/rpm/msce.spec
preset=$src/packaging/rpm/msce.preset

T=$(mktemp -d /tmp/msce-test-deb-contents.XXXXXX)
trap 'rm -rf "$T"' EXIT
status=0
ok() { echo "ok - $1"; }
fail() { echo "FAIL: $1"; status=1; }
check() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }
for p in agent mef; do
        deb=${!p}
        dpkg-deb -c "$deb" | awk '{ print $1, $6 }' | sed 's, \./, /,; s,/$,,' > "$T/$p.list"
        dpkg-deb -e "$deb" "$T/$p.ctl"
        dpkg-deb -x "$deb" "$T/$p.root"
        dpkg-deb -f "$deb" Description > "$T/$p.desc"
done

tmpl=/etc/msce/agent.conf.d/20-device.conf
check "msce-agent ships $tmpl (0644) in a directory of its own" \
        "grep -qx -- '-rw-r--r-- $tmpl' '$T/agent.list' && grep -qx -- 'drwxr-xr-x /etc/msce/agent.conf.d' '$T/agent.list'"
check "$tmpl is a conffile" "grep -qx '$tmpl' '$T/agent.ctl/conffiles'"
check "$tmpl: every setting commented out" \
        "! grep -vE '^[[:space:]]*(#.*|\[[a-z]+\])?[[:space:]]*$' '$T/agent.root$tmpl' | grep -q ."
check "$tmpl: names the per-device keys" \
        "grep -q '^#id = ' '$T/agent.root$tmpl' && grep -q '^#psk_identity = ' '$T/agent.root$tmpl' && grep -q '^#user = ' '$T/agent.root$tmpl'"

check "msce-agent's description says purging deletes /var/lib/msce and the keys" \
        "tr '\n' ' ' < '$T/agent.desc' | grep -q 'Purging the package deletes /var/lib/msce .*keyring'"
check "msce-mef's description says purging deletes /var/lib/msce-mef" \
        "tr '\n' ' ' < '$T/mef.desc' | grep -q 'Purging the package deletes /var/lib/msce-mef'"
check "msce-agent's postrm removes /var/lib/msce and the keys on purge" \
        "grep -q 'rm -rf /var/lib/msce /run/msce' '$T/agent.ctl/postrm' && grep -q 'msce_clear_keys' '$T/agent.ctl/postrm'"
check "msce-mef's postrm removes /var/lib/msce-mef on purge" "grep -q 'rm -rf /var/lib/msce-mef' '$T/mef.ctl/postrm'"

# every documentation path in a man page exists in the package that ships the page
for p in agent mef; do
        for man in $(grep -o '/usr/share/man/man[0-9]/.*\.gz' "$T/$p.list"); do
                for path in $(zcat "$T/$p.root$man" | sed 's/\\&//g' | grep -o '/usr/share/doc/[A-Za-z0-9._/-]*' | sed 's/[.]$//' | sort -u); do
                        check "$(basename "$man" .gz) names $path, which msce-$p ships" "grep -q ' $path\$' '$T/$p.list'"
                done
        done
done

# enablement: dh_installsystemd enables on installation what it is not told --no-enable for;
# with --no-enable it only keeps an administrator's links, under "debian-installed"
check "msce-agent.service is enabled on installation (postinst)" \
        "grep -q \"deb-systemd-helper enable 'msce-agent.service'\" '$T/agent.ctl/postinst' && ! grep -q \"debian-installed 'msce-agent.service'\" '$T/agent.ctl/postinst'"
check "msce-mef.service is not enabled on installation" "grep -q \"debian-installed 'msce-mef.service'\" '$T/mef.ctl/postinst'"
check "the rpm's presets enable msce-agent.service and not msce-mef.service" \
        "grep -qx 'enable msce-agent.service' '$preset' && grep -qx 'disable msce-mef.service' '$preset'"
check "the spec installs the presets" "grep -q '80-msce.preset' '$spec'"

# upgrades restart a running service without waiting for its start job: both are Type=notify,
# and an agent that cannot reach its MEF stays activating for ever (TimeoutStartSec=infinity)
for p in agent mef; do
        check "msce-$p's postinst restarts it on upgrade with systemctl --no-block, and nothing waits" \
                "grep -q 'systemctl --no-block try-restart msce-$p.service' '$T/$p.ctl/postinst' && ! grep -qE 'deb-systemd-invoke .*(start|restart)' '$T/$p.ctl/postinst' && ! grep -qE '^[^#]*systemctl +(--system +)?(try-)?(re)?start' '$T/$p.ctl/postinst'"
        check "msce-$p is not stopped before an upgrade (preinst)" \
                "! grep -qs 'deb-systemd-invoke stop' '$T/$p.ctl/preinst'"
done

# ... and what the postinst runs: in a mount namespace with /run/systemd/system, a
# policy-rc.d that says yes (0) or no (101), and stand-ins that log instead of acting
if [ "$(id -u)" = 0 ] && unshare --mount true 2> /dev/null; then
        mkdir "$T/bin"
        for c in systemctl deb-systemd-helper deb-systemd-invoke systemd-sysusers systemd-tmpfiles udevadm; do
                printf '#!/bin/sh\necho "%s $*" >> "$LOG"\n' "$c" > "$T/bin/$c"
        done
        printf '#!/bin/sh\necho "policy-rc.d $*" >> "$LOG"\nexit $POLICY\n' > "$T/bin/policy-rc.d"
        chmod +x "$T"/bin/*
        for p in agent mef; do
                for run in 'configure:0' 'configure 0.0.9:0' 'configure 0.0.9:101'; do
                        LOG=$T/log POLICY=${run#*:} unshare --mount --propagation private sh -ec '
                                mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system
                                mount -t tmpfs tmpfs /usr/sbin && cp "$1/bin/policy-rc.d" /usr/sbin/
                                : > "$LOG"; PATH=$1/bin:$PATH; shift; sh "$@"' sh "$T" "$T/$p.ctl/postinst" ${run%:*}
                        grep -E 'systemctl|policy-rc|invoke' "$T/log" | paste -sd';' > "$T/log.$p.${run// /_}"
                done
                check "msce-$p's postinst on installation: daemon-reload, no restart" \
                        "[ \"\$(cat '$T/log.$p.configure:0')\" = 'systemctl --system daemon-reload' ]"
                check "msce-$p on upgrade: asks policy-rc.d, then systemctl --no-block try-restart" \
                        "[ \"\$(cat '$T/log.$p.configure_0.0.9:0')\" = 'systemctl --system daemon-reload;policy-rc.d msce-$p.service try-restart;systemctl --no-block try-restart msce-$p.service' ]"
                check "msce-$p on upgrade with policy-rc.d 101: no restart" \
                        "[ \"\$(cat '$T/log.$p.configure_0.0.9:101')\" = 'systemctl --system daemon-reload;policy-rc.d msce-$p.service try-restart' ]"
        done
else
        ok "what the postinsts run on upgrade: not checked (needs root and a mount namespace) # SKIP"
fi

# dependencies
deps=$(dpkg-deb -f "$agent" Depends)
recs=$(dpkg-deb -f "$agent" Recommends)
check "msce-agent Recommends keyutils and tpm2-tss (libtss2-*), Depends on neither" \
        "grep -qE '(^|[ ,])keyutils' <<< '$recs' && grep -q 'libtss2-esys' <<< '$recs' && ! grep -qE '(^|[ ,])(keyutils|libtss2)' <<< '$deps'"
spec_agent=$(sed -n '/^%package -n msce-agent/,/^%description -n msce-agent/p' "$spec")
check "the spec's msce-agent Recommends keyutils and tpm2-tss, Requires neither" \
        "grep -qE '^Recommends: +keyutils' <<< \"\$spec_agent\" && grep -qE '^Recommends: +tpm2-tss' <<< \"\$spec_agent\" && ! grep -qE '^Requires: +(keyutils|tpm2-tss)' <<< \"\$spec_agent\""

# libpq: dlopen()ed for a PostgreSQL store only
spec_mef=$(sed -n '/^%package -n msce-mef/,/^%description -n msce-mef/p' "$spec")
check "msce-mef Recommends libpq in both formats (libpq5 in Debian), Depends/Requires not" \
        "grep -qE '(^|[ ,])libpq5' <<< '$(dpkg-deb -f "$mef" Recommends)' && ! grep -q libpq <<< '$(dpkg-deb -f "$mef" Depends)' &&
        grep -qE '^Recommends: +libpq$' <<< \"\$spec_mef\" && ! grep -qE '^Requires: +libpq' <<< \"\$spec_mef\""

# modes: the module the agent dlopen()s
check "msce-agent-crypto.so is 0644 in the .deb" "grep -qE '^-rw-r--r-- /usr/lib/.*/msce/msce-agent-crypto.so$' '$T/agent.list'"
check "and in the spec" "grep -qE '^%attr\\(0644,root,root\\) %\\{_libdir\\}/msce/msce-agent-crypto.so' '$spec'"
exit $status
