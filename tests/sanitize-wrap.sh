#!/usr/bin/env bash
# meson test --wrapper for the sanitizer build: runs the test, passes its output through, and
# fails it when any sanitizer report appears (an LSan report at a criterion worker's exit does
# not fail its test).
# ASan and LSan report to files in a directory of the wrapper's (log_path), printed here after
# the test: criterion's --tap points its workers' stderr at /dev/null, and the integration
# tests send their daemons' stderr to files of their own. The directory is sticky and
# world-writable for the tests' processes that drop to another user. gcc's UBSan, a runtime
# of its own, ignores log_path and reports on stderr only; a test that sets ASAN_OPTIONS for a
# process (daemon-test.py) leaves that process reporting on stderr.
log=$(mktemp)
reports=$(mktemp -d)
trap 'rm -rf "$log" "$reports"' EXIT
chmod 1777 "$reports"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$reports/report:log_exe_name=1"
"$@" 2>"$log"
rc=$?
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
