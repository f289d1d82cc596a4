#!/usr/bin/env bash
# The whole test suite (README command 2), as root on Debian 12:
#   - gcc build with -Werror: suites unit, integration, fuzz (corpus replay)
#   - clang build with -Werror: compile only (warnings differ between compilers)
#   - gcc build with -Werror and without the optional features (-Dtpm2=disabled -Dgpio=disabled
#     -Dpostgresql=disabled: hw/tpm2-none.c, hw/leds-none.c, mef/store-pg-none.c): the unit
#     suite and the integration tests whose checks depend on them (a TPM or LEDs asked for in
#     the configuration, sealing, custody, --once with [leds]); about 3 minutes
#   - gcc ASan+UBSan build: the same suites, failing on any sanitizer report (LSan reports from
#     criterion's worker processes do not change exit codes, so tests/sanitize-wrap.sh scans
#     the output and the report files it has ASan and LSan write)
#   - the .debs (packaging/build-deb.sh: dpkg-buildpackage, then lintian: an error or a warning
#     fails the run), then suites packaging and system in the gcc run: what the .debs hold and
#     do on purge, the rpm with its %check and rpmlint (tests/packaging/), and the .debs on a
#     QEMU guest with systemd, a TPM and gpio-sim (tests/system/; skips on hosts without QEMU)
#   - Debian 13 (trixie) before those: gcc and clang with -Werror, the unit, integration, fuzz
#     and packaging suites and the trixie .debs with lintian, in a cached trixie root filesystem
#     through chroot (scripts/test-release.sh trixie; wolfSSL 5.7, docs/interop.md). The system
#     suite then runs a Debian 12 guest with the host's .debs and a Debian 13 guest with the
#     trixie ones (libgpiod 2 on gpio-sim). MSCE_RELEASES lists the releases: trixie by default
#     (MSCE_RELEASES= leaves it out): docs/platforms.md, "The Debian 13 stage".
# Ends with one line "N passed, N failed, N skipped" over all runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/deps.sh

suites=(--suite unit --suite integration --suite fuzz)
. scripts/meson-setup.sh

echo "== gcc -Werror"
setup build/gcc -Dwerror=true
echo "== clang -Werror (compile only)"
CC=clang setup build/clang -Dwerror=true
echo "== gcc -Werror without TPM, LEDs and PostgreSQL"
setup build/nohw -Dwerror=true -Dtpm2=disabled -Dgpio=disabled -Dpostgresql=disabled
echo "== gcc ASan+UBSan"
setup build/asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

status=0
echo "== .debs (dpkg-buildpackage) and lintian"
rm -rf build/debs
packaging/build-deb.sh build/debs || status=1
releases=${MSCE_RELEASES-trixie}
logs=()
for release in $releases; do
        echo "== Debian $release (scripts/test-release.sh $release)"
        t0=$SECONDS
        rm -f "build/$release/gcc/meson-logs/testlog.json"
        scripts/test-release.sh "$release" || status=1
        echo "[$release] stage: $((SECONDS - t0)) s"
        logs+=("build/$release/gcc/meson-logs/testlog.json")
done

echo "== tests (gcc)"
MSCE_DEBS_DIR=$root/build/debs \
        meson test -C build/gcc "${suites[@]}" --suite packaging --suite system --print-errorlogs --num-processes 2 || status=1
echo "== tests (without TPM, LEDs and PostgreSQL)"
t0=$SECONDS
meson test -C build/nohw --suite unit --print-errorlogs --num-processes 2 --logbase testlog-unit || status=1
meson test -C build/nohw mscectl-cli operator seal custody-c agent-mef --print-errorlogs --num-processes 2 \
        --logbase testlog-features || status=1
echo "[nohw] tests: $((SECONDS - t0)) s"
echo "== tests (ASan+UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C build/asan "${suites[@]}" --print-errorlogs --num-processes 2 \
        --wrapper "$root/tests/sanitize-wrap.sh" --timeout-multiplier 3 || status=1

logs+=(build/gcc/meson-logs/testlog.json build/asan/meson-logs/testlog-sanitize-wrap.sh.json
      build/nohw/meson-logs/testlog-unit.json build/nohw/meson-logs/testlog-features.json)
python3 - "${logs[@]}" <<'PY'
import json, sys
p = f = s = 0
for log in sys.argv[1:]:
    try:
        fh = open(log)
    except OSError as e:
        print(f"no test log {log}: {e}")
        f += 1
        continue
    with fh:
        for line in fh:
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"): p += 1
            elif r == "SKIP": s += 1
            else: f += 1
print(f"{p} passed, {f} failed, {s} skipped")
PY
exit $status
