#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The rpm (issue 16): packaging/build-rpm.sh builds it from this checkout with
# packaging/rpm/msce.spec (its %check runs the unit suite) and fails unless rpmlint is clean;
# then every file both the .rpms and the .debs (MSCE_DEBS_DIR) ship has the same mode in both.
# On Debian, rpmbuild runs with --nodeps: the spec's BuildRequires name rpm packages.
# Usage: rpm.sh SOURCEDIR         (exit 77 without rpmbuild or rpmlint)
set -euo pipefail
src=${1:?usage: rpm.sh SOURCEDIR}
skip() { echo "SKIP: $1"; exit 77; }
for c in rpmbuild rpmlint rpm; do command -v $c > /dev/null || skip "$c is missing (Debian: apt install rpm rpmlint)"; done

T=$(mktemp -d /tmp/msce-test-rpm.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$src/packaging/build-rpm.sh" "$T/rpms" > "$T/out" 2>&1 || { cat "$T/out"; echo "FAIL: build-rpm.sh (rpmbuild, %check or rpmlint)"; exit 1; }
grep -E 'rpmbuild: |checked;' "$T/out"
status=0
if grep -q 'Executing(%check)' "$T/rpms/build.log" && grep -qE '^Ok: +[1-9]' "$T/rpms/build.log"; then
        echo "ok - %check ran the unit suite ($(grep -E '^Ok: ' "$T/rpms/build.log" | tr -s ' '))"
else
        echo "FAIL: %check did not run the unit suite"; status=1
fi

# The scriptlets. Upgrades restart a running service with systemctl --no-block, so that the
# transaction does not wait for a Type=notify start job (the agent's never ends offline).
for r in "$T"/rpms/msce-agent-[0-9]*.rpm "$T"/rpms/msce-mef-[0-9]*.rpm; do
        n=$(rpm -qp --qf '%{NAME}' "$r")
        rpm -qp --scripts "$r" | sed -n '/^postuninstall scriptlet/,/^[a-z]* *scriptlet/p' > "$T/$n.postun"
        if grep -q "systemctl --no-block try-restart $n.service" "$T/$n.postun" &&
           ! grep -qE 'systemctl +(--[a-z-]+ +)*(try-)?(reload-or-)?restart|mark-restart|update-helper' \
                   <(grep -v -- '--no-block' "$T/$n.postun"); then
                echo "ok - $n's %postun restarts it on upgrade with --no-block, nothing waits"
        else
                echo "FAIL: $n's %postun:"; cat "$T/$n.postun"; status=1
        fi
done
# The users exist before %post's tmpfiles --create where rpm does not create them itself: on
# RHEL 9 / Fedora 41, where systemd-rpm-macros defines %sysusers_create_package (stood in for
# here, as are the restart macros), %post calls systemd-sysusers; on Fedora 42 rpm does.
macros=(--define 'sysusers_create_package() :' --define 'systemd_postun_with_restart() WITH_RESTART %1'
        --define 'systemd_postun() : %1')
for dist in 'rhel 9' 'fedora 41' 'fedora 42'; do
        rpmspec -P --define "$dist" "${macros[@]}" "$src/packaging/rpm/msce.spec" > "$T/spec.$dist" 2>&1 || true
        for n in msce-agent msce-mef; do
                post=$(sed -n "/^%post -n $n\$/,/^%preun/p" "$T/spec.$dist")
                postun=$(sed -n "/^%postun -n $n\$/,/^%[a-z]/p" "$T/spec.$dist")
                want=1; [ "$dist" = 'fedora 42' ] && want=0
                got=0; grep -q "^[^#]*systemd-sysusers .*/$n.conf" <<< "$post" && got=1
                if [ $got = $want ] && grep -q -- "--no-block try-restart $n.service" <<< "$postun" &&
                   ! grep -q WITH_RESTART <<< "$postun"; then
                        echo "ok - $dist: $n's %post $([ $want = 1 ] && echo calls || echo leaves) systemd-sysusers, %postun --no-block"
                else
                        echo "FAIL: $dist: $n's %post (systemd-sysusers wanted: $want) or %postun:"; echo "$post"; echo "$postun"
                        status=1
                fi
        done
done

debs=${MSCE_DEBS_DIR:-}
if [ -z "$debs" ] || ! ls "$debs"/msce-agent_*.deb > /dev/null 2>&1; then
        echo "ok - modes not compared: no .debs (MSCE_DEBS_DIR) # SKIP"
        exit $status
fi
# mode and path of each regular file and directory; the rpm's paths in the .deb's spelling
# (the multiarch libdir, and the .deb's lintian overrides and copyright have no rpm
# counterpart, nor the rpm's licenses and build-id links: they are simply not in both)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for r in "$T"/rpms/*.rpm; do
        rpm -qlvp "$r" | awk '$1 !~ /^l/ { print $1, $NF }'
done | sed "s, /usr/lib64/, /usr/lib/$multiarch/," | sort -k2 > "$T/rpm.modes"
for d in "$debs"/msce-agent_*.deb "$debs"/msce-mef_*.deb; do
        dpkg-deb -c "$d" | awk '$1 !~ /^l/ { print $1, $6 }' | sed 's, \./, /,; s,/$,,'
done | sort -k2 > "$T/deb.modes"
join -1 2 -2 2 "$T/rpm.modes" "$T/deb.modes" > "$T/both"
n=$(wc -l < "$T/both")
diff=$(awk '$2 != $3' "$T/both")
if [ "$n" -ge 20 ] && [ -z "$diff" ]; then
        echo "ok - the same mode in the .rpm and the .deb for the $n paths both ship"
else
        echo "FAIL: modes differ between .rpm and .deb ($n paths in both):"; echo "$diff"; status=1
fi
for f in /usr/bin/msce-agent /usr/bin/mscectl /usr/bin/msce-mef "/usr/lib/$multiarch/msce/msce-agent-crypto.so" \
         /etc/msce/agent.conf /etc/msce/agent.conf.d/20-device.conf /etc/msce/mef.conf; do
        grep -q "^$f " "$T/both" || { echo "FAIL: $f is not in both"; status=1; }
done
exit $status
