#!/bin/sh
# SPDX-License-Identifier: MIT
# The TLS fuzzers' temporary directory under a long $TMPDIR (fuzz-tls-server.c; fuzz-store.h
# does the same when /dev/shm is not writable): one of 200 bytes works, and one longer than
# PATH_MAX stops them with a message that says so, not an abort on a cut-short mkdtemp()
# template.
# Usage: long-tmpdir.sh REPLAY-TLS-SERVER CORPUS-FILE
set -eu
replay=${1:?usage: long-tmpdir.sh REPLAY-TLS-SERVER CORPUS-FILE}
input=${2:?usage: long-tmpdir.sh REPLAY-TLS-SERVER CORPUS-FILE}
base=$(mktemp -d "${TMPDIR:-/tmp}/msce-long-tmpdir.XXXXXX")
trap 'rm -rf "$base"' EXIT
long=$base
while [ ${#long} -lt 200 ]; do long=$long/0123456789; done
mkdir -p "$long"
TMPDIR=$long "$replay" "$input" > "$base/out" 2>&1 || { cat "$base/out"; echo "FAIL: TMPDIR of ${#long} bytes"; exit 1; }
[ -z "$(ls -A "$long")" ] || { echo "FAIL: left in TMPDIR: $(ls -A "$long")"; exit 1; }
echo "ok - TMPDIR of ${#long} bytes: replayed, nothing left behind"
too=$(printf "/%04096d" 0)
rc=0
TMPDIR=$too "$replay" "$input" > "$base/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'longer than PATH_MAX' "$base/out" ||
        { cat "$base/out"; echo "FAIL: TMPDIR of ${#too} bytes: exit $rc, not 1 with the reason"; exit 1; }
echo "ok - TMPDIR of ${#too} bytes: exit 1, the reason given"
