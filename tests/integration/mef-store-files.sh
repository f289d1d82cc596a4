#!/usr/bin/env bash
# The SQLite store's files as msce-mef finds them:
#  - an empty mef.db (0 bytes: what SQLite would take for a new database) is refused by every
#    command but init, with the path named, and nothing is written: the file stays empty, no
#    -wal, -shm or master key appears; init then makes the store in it;
#  - a store group or others may read or write (the database, or its -wal or -shm) is refused
#    by the commands and by serve, the file and its mode named, and opened again once 0600;
#    so are a master key and a PostgreSQL password_file that are not owner-only;
#  - serve on SQLite never maps libpq; a PostgreSQL configuration where libpq cannot be loaded
#    is refused (78), naming libpq, its package and why.
# Usage: mef-store-files.sh PATH/TO/msce-mef (TAP).
set -euo pipefail
MEF=${1:?usage: mef-store-files.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
tmpdir mef-store-files
LIB_SHOW="$T/out"
DB=$T/a/mef.db

a() { "$MEF" --config "$T/a/mef.conf" "$@"; }
mef_dir_conf "$T/a"
printf 'a long backup passphrase\n' > "$T/pass"
chmod 0600 "$T/pass"

# untouched: the empty store is still 0 bytes, and nothing was made beside it
untouched() {
        [ -f "$DB" ] && [ ! -s "$DB" ] && [ ! -e "$DB-wal" ] && [ ! -e "$DB-shm" ] && [ ! -e "$T/a/master.key" ] &&
                [ ! -e "$T/bk" ]
}
# refused_empty CMD...: fails on the empty store, names it, writes nothing
refused_empty() {
        if a "$@" > "$T/out" 2>&1; then
                return 1
        fi
        grep -q "open store $DB: an empty file, not a store" "$T/out" && untouched
}
: > "$DB"
chmod 0600 "$DB"
for cmd in "node list" "node show urn:dev:ops:none" "target list" "enrolments" "audit" "prune" "migrate" "rekey" \
        "backup $T/bk --passphrase-file $T/pass"; do
        # shellcheck disable=SC2086 # the command's words
        check "an empty mef.db: '$cmd' is refused, nothing written" refused_empty $cmd
done
# the same with the master key there: refused as empty, not opened (SQLite would write it)
a init > /dev/null 2>&1 || fail "init"
mv "$T/a/master.key" "$T/key.keep"
rm -f "$DB" "$DB-wal" "$DB-shm"
: > "$DB"
chmod 0600 "$DB"
cp -p "$T/key.keep" "$T/a/master.key"
keeps_empty_with_key() {
        if a node list > "$T/out" 2>&1; then
                return 1
        fi
        grep -q "an empty file, not a store" "$T/out" && [ ! -s "$DB" ] && [ ! -e "$DB-wal" ] && [ ! -e "$DB-shm" ]
}
check "an empty mef.db beside its master key: refused, still empty" keeps_empty_with_key
rm -f "$T/a/master.key"
init_makes_it() {
        a init > "$T/out" 2>&1 && grep -q "^Created store $DB" "$T/out" && [ -s "$DB" ] && a node list > "$T/out" 2>&1
}
check "init makes the store in the empty file; then it opens" init_makes_it

# ---- modes ----
# refused_mode FILE MODE [TEXT [CONF]]: node list and serve with CONF (default $T/a/mef.conf)
# refuse the store, naming FILE and MODE, then TEXT (default: a file of the store's)
refused_mode() {
        local conf=${4:-$T/a/mef.conf}
        if "$MEF" --config "$conf" node list > "$T/out" 2>&1; then
                return 1
        fi
        grep -qF "$1 is mode $2${3:-: group or others may read or write it}" "$T/out" || return 1
        local rc=0
        timeout 30 "$MEF" --config "$conf" serve > "$T/serve.out" 2>&1 || rc=$?
        cat "$T/serve.out" >> "$T/out"
        [ "$rc" = 78 ] && grep -qF "$1 is mode $2${3:-}" "$T/serve.out"
}
chmod 0644 "$DB"
check "mef.db 0644: refused by node list and serve" refused_mode "$DB" 0644
chmod 0640 "$DB"
check "mef.db 0640: refused" refused_mode "$DB" 0640
chmod 0606 "$DB"
check "mef.db 0606: refused" refused_mode "$DB" 0606
chmod 0600 "$DB"
: > "$DB-wal"
chmod 0604 "$DB-wal"
check "mef.db 0600 with a -wal 0604 beside it: refused, the -wal named" refused_mode "$DB-wal" 0604
rm -f "$DB-wal"
opens() { a node list > "$T/out" 2>&1; } # its table is no TAP
check "mef.db 0600 again: opens" opens
# serve on SQLite never maps libpq (loaded only for a PostgreSQL store) nor what it pulls in
sqlite_serve_maps() {
        cp "$T/a/mef.conf" "$T/a/serve.conf.in"
        PORT=0 mef_start "$T/a/serve.conf.in" "$T/a" || return 1
        local maps
        maps=$(cat "/proc/$MEF_PID/maps")
        mef_stop
        grep -q 'libsqlite3' <<< "$maps" && ! grep -qE 'libpq|libssl|libcrypto|libgnutls|libldap|libkrb5' <<< "$maps"
}
check "serve on SQLite: libpq, OpenSSL, GnuTLS, LDAP, Kerberos not mapped" sqlite_serve_maps
chmod 0440 "$T/a/master.key"
check "master.key 0440: refused, the master key named with its mode" \
        refused_mode "master key $T/a/master.key" 0440 ", not owner-only"
chmod 0400 "$T/a/master.key"
check "master.key 0400 again: opens" opens
# PostgreSQL: the password_file is read before connecting, so no server is needed to see it
# refused; the master key beside it is 0400 and must not be the one named.
mkdir -p "$T/b"
printf '[server]\nlisten = 127.0.0.1:0\n[store]\nbackend = postgresql\nuri = postgresql:///msce?host=%s/b/none\npassword_file = %s/b/db.password\nmaster_key = %s/a/master.key\n' \
        "$T" "$T" "$T" > "$T/b/mef.conf"
printf 'a database password\n' > "$T/b/db.password"
chmod 0640 "$T/b/db.password"
if "$MEF" --config "$T/b/mef.conf" node list 2>&1 | grep -q "without PostgreSQL support"; then
        skip "password_file 0640: this msce-mef is built without PostgreSQL"
else
        check "password_file 0640 (master key 0400): refused, the password_file named with its mode" \
                refused_mode "password_file $T/b/db.password" 0640 ", not owner-only" "$T/b/mef.conf"
        # a NUL byte: the file named and why (was "Invalid argument" alone), nothing of the password
        printf 'a data\0base password\n' > "$T/b/db.password"
        chmod 0600 "$T/b/db.password"
        refused_nul() {
                ! "$MEF" --config "$T/b/mef.conf" node list > "$T/out" 2>&1 &&
                        grep -qF "$T/b/db.password: holds a NUL byte" "$T/out" && ! grep -q "base password" "$T/out"
        }
        check "password_file with a NUL byte: refused, the file named" refused_nul
        # libpq is loaded only for a PostgreSQL store: where it cannot be (a file that is no
        # library, a library without libpq's functions, found first through LD_LIBRARY_PATH),
        # the configuration is refused (78) naming libpq, its package and why
        mkdir -p "$T/nolib" "$T/otherlib"
        : > "$T/nolib/libpq.so.5"
        cp "$(ldd "$MEF" | awk '$1 ~ /^libjansson/ { print $3 }')" "$T/otherlib/libpq.so.5"
        refused_lib() {
                local rc=0
                LD_LIBRARY_PATH=$1 "$MEF" --config "$T/b/mef.conf" node list > "$T/out" 2>&1 || rc=$?
                [ "$rc" = 78 ] && grep -qF "PostgreSQL needs libpq (libpq.so.5; Debian: libpq5, rpm: libpq): $2" "$T/out"
        }
        check "libpq.so.5 that is no library: refused (78), libpq and why named" \
                refused_lib "$T/nolib" "$T/nolib/libpq.so.5: file too short"
        check "libpq.so.5 without libpq's functions: refused (78), the function named" \
                refused_lib "$T/otherlib" "libpq.so.5: no PQclear"
fi
rm -f "$DB" "$T/a/master.key"
: > "$DB"
chmod 0644 "$DB"
refused_init() {
        if a init > "$T/out" 2>&1; then
                return 1
        fi
        grep -q "$DB is mode 0644" "$T/out" && [ ! -s "$DB" ] && [ ! -e "$T/a/master.key" ]
}
check "init refuses an empty mef.db of mode 0644, writes nothing" refused_init
tap_done
