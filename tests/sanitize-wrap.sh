#!/usr/bin/env bash
# meson test --wrapper for the sanitizer build: runs the test, passes its output through, and
# fails it when any sanitizer report appears (criterion's workers exit 0 after an LSan report).
log=$(mktemp)
"$@" 2>"$log"
rc=$?
cat "$log" >&2
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$log"; then
        echo "sanitize-wrap: sanitizer report in $*" >&2
        [ "$rc" -eq 0 ] && rc=1
fi
rm -f "$log"
exit "$rc"
