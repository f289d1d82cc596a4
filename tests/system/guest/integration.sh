# The integration suite on the guest's real kernel (sourced by systest.sh on boot 2, after the
# purge, when the host asked for it): the host shares its checkout as 9p tag "src", mounted at
# /src as in the root filesystem the build directory was made in (its paths are /src/...), and
# names the build directory in IN/integration (e.g. build/emulated-arm64), optionally the tests
# to run in IN/integration-tests (meson test names, one line; else the whole suite).
# One "PASS|FAIL|SKIP integration: NAME" line per test from meson's testlog.json, and the
# peak RSS of the run in OUT/measure-<boot>.txt (timings under TCG mean nothing).

run_integration() {
        local b tests log rc
        b=$(cat "$IN/integration")
        tests=$(cat "$IN/integration-tests" 2> /dev/null)
        echo "== the integration suite of /src/$b${tests:+ ($tests)}"
        mkdir -p /src
        if ! mountpoint -q /src && ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 src /src; then
                fail "integration: the checkout shared as /src" "mount failed"
                return
        fi
        if [ ! -f "/src/$b/meson-private/coredata.dat" ]; then
                fail "integration: a configured build directory /src/$b" "none there"
                return
        fi
        log=/src/$b/meson-logs/testlog-guest.json
        rm -f "$log"
        # --no-rebuild: built in the root filesystem; the multiplier: a slow CPU, not another result
        # shellcheck disable=SC2086 # one word per test name
        python3 - "/src/$b" $tests <<'PY' >> "$OUT/measure-$phase.txt"
import resource, subprocess, sys
b, tests = sys.argv[1], sys.argv[2:]
subprocess.run(["meson", "test", "-C", b, "--no-rebuild", "--suite", "integration", "--logbase", "testlog-guest",
                "--print-errorlogs", "--num-processes", "2", "--timeout-multiplier", "10"] + tests,
               stdout=sys.stderr)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"integration suite ({len(tests) or 'all'} tests): peak RSS of one process {peak} KiB")
PY
        rc=$?
        [ $rc = 0 ] || fail "integration: the meson test run" "python3 exit $rc"
        if [ ! -s "$log" ]; then
                fail "integration: meson's test log" "$log is missing or empty"
                return
        fi
        # OK, EXPECTEDFAIL pass; SKIP skips; FAIL, TIMEOUT, UNEXPECTEDPASS, ERROR fail
        jq -r '"\(.result)\t\(.name | sub("^msce:integration / "; ""))"' "$log" |
                while IFS=$'\t' read -r r name; do
                        case $r in
                        OK | EXPECTEDFAIL) pass "integration: $name" ;;
                        SKIP) skip "integration: $name" "$(jq -r --arg n "$name" \
                                'select(.name | endswith(" / " + $n)) | .stdout' "$log" | grep -m1 -i skip)" ;;
                        *) fail "integration: $name" "$r" ;;
                        esac
                done
}
