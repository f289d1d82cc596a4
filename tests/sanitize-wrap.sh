#!/usr/bin/env bash
# meson test --wrapper for the sanitizer build: runs the test, passes its output through, and
# fails it when any sanitizer report appears (an LSan report at a criterion worker's exit does
# not fail its test).
# ASan and LSan report to files in a directory of the wrapper's (log_path), printed here after
# the test: the integration tests send their daemons' stderr to files of their own. The
# directory is sticky and world-writable for the tests' processes that drop to another user.
# A test that sets ASAN_OPTIONS for a process (daemon-test.py) leaves that process reporting on
# stderr.
# gcc's UBSan (libubsan, beside libasan) reports on stderr whatever its log_path: its runtime
# sets its report file through __sanitizer_set_report_path, which binds to libasan's copy. So
# a criterion test's --tap becomes --tap=FILE, printed on stdout after the test: with its TAP on
# stdout, criterion points its workers' fds 1 and 2 at /dev/null (cri_silence_outputs(), 2.4.1),
# UBSan's report with them; with it in a file, their output comes here. UBSAN_OPTIONS gets the
# same log_path, or UBSan's first report would point ASan's reports back at stderr.
log=$(mktemp)
reports=$(mktemp -d)
tap=$(mktemp)
trap 'rm -rf "$log" "$reports" "$tap"' EXIT
chmod 1777 "$reports"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$reports/report:log_exe_name=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$reports/report:log_exe_name=1"
if [ "${2-}" = --tap ] && readelf -d "$1" 2>/dev/null | grep -q 'NEEDED.*libcriterion'; then
        "$1" --tap="$tap" "${@:3}" >"$log" 2>&1
        rc=$?
        cat "$tap"
else
        "$@" 2>"$log"
        rc=$?
fi
cat "$log" >&2
shopt -s nullglob
out=("$log" "$reports"/*)
for f in "${out[@]:1}"; do
        echo "sanitize-wrap: ${f##*/} (report.program.pid):" >&2
        cat "$f" >&2
done
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "${out[@]}"; then
        echo "sanitize-wrap: sanitizer report in $*" >&2
        [ "$rc" -eq 0 ] && rc=1
fi
exit "$rc"
