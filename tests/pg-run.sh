#!/usr/bin/env bash
# Run a command against a PostgreSQL of its own: initdb + pg_ctl in /tmp/msce-pg.PID, as an
# unprivileged user (as root: msce-t<PID>-pg, made for this run by integration/test-user.sh and
# removed after it; otherwise the caller), on a unix socket in that directory only
# (listen_addresses = ''), password authentication (scram-sha-256). No system service is touched. The command gets:
#   MSCE_TEST_PG_URI            postgresql:///msce?host=DIR&port=PORT&user=msce (no password)
#   MSCE_TEST_PG_PASSWORD_FILE  the password, 0600
#   MSCE_TEST_PG_CTL            a script: stop | start | freeze | thaw (SIGSTOP/SIGCONT) this server
#   MSCE_TEST_PG_PORT           its port: 5432 (the socket's name), or with MSCE_TEST_PG_TCP=1 set by
#                               the caller a free one on which it also listens on 127.0.0.1 (for a
#                               relay in front of it: tests/bench/bench-mef-pg.sh remote)
# Usage: pg-run.sh [--tap] COMMAND [ARGS...]. Without PostgreSQL's server binaries: exit 77
# (skip), or with --tap (a TAP command: meson takes 77 for an error there) "1..0 # SKIP", exit 0.
set -euo pipefail
tap=
[ "${1:-}" != --tap ] || { tap=1; shift; }
[ $# -ge 1 ] || { echo "usage: pg-run.sh [--tap] COMMAND [ARGS...]" >&2; exit 2; }
skip() {
        if [ -n "$tap" ]; then echo "1..0 # SKIP $1"; exit 0; fi
        echo "SKIP: $1"
        exit 77
}

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ ! -x "$bindir/initdb" ]; then
        bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
fi
[ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] ||
        skip "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"

# Named after this process (/tmp/msce-pg.PID, user msce-t<PID>-pg), so that a run killed before
# its cleanup (meson's timeout: SIGTERM, then SIGKILL) is known by its PID being gone: its server
# (pg_ctl detaches it) and directory are removed here by the next run, its user by the next
# test-user.sh add. A leftover of our own PID is one of a process gone before us.
test_user_sh=$(dirname "$0")/integration/test-user.sh
gone() { [ "$1" = $$ ] || [ ! -d "/proc/$1" ]; }
for d in /tmp/msce-pg.*; do
        p=${d#/tmp/msce-pg.}
        case $p in '' | *[!0-9]*) continue ;; esac
        gone "$p" || continue
        if [ -f "$d/data/postmaster.pid" ]; then
                owner=$(stat -c %U "$d/data")
                stop=("$bindir/pg_ctl" -D "$d/data" -m immediate -w stop)
                [ "$(id -u)" != 0 ] || stop=(runuser -u "$owner" -- "${stop[@]}")
                "${stop[@]}" >/dev/null 2>&1 || :
        fi
        rm -rf "$d" 2>/dev/null || :
done
if [ "$(id -u)" = 0 ]; then
        # the users of runs before they were test-user.sh's
        for u in $(sed -n 's/^\(msce-pg-[0-9][0-9]*\):.*/\1/p' /etc/passwd); do
                gone "${u#msce-pg-}" && sh "$test_user_sh" del "$u"
        done
fi

dir=/tmp/msce-pg.$$
mkdir -m 0700 "$dir"
user=
as=()
cleanup() {
        if [ -f "$dir/data/postmaster.pid" ]; then
                "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        rm -rf "$dir"
        [ -z "$user" ] || sh "$test_user_sh" del "$user"
}
trap cleanup EXIT

if [ "$(id -u)" = 0 ]; then
        # initdb refuses root: a user of this run's own
        user=$(sh "$test_user_sh" add $$ pg --home-dir "$dir" --shell /usr/sbin/nologin) ||
                skip "cannot create a user to run PostgreSQL as"
        chown "$user" "$dir"
        as=(runuser -u "$user" --)
fi
chmod 0711 "$dir" # the socket is reached through it
port=5432 listen=
if [ -n "${MSCE_TEST_PG_TCP:-}" ]; then
        # a port nobody holds now (the kernel's choice, released for the server to take)
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        listen=127.0.0.1
fi

# The password: for the server (initdb --pwfile, read by its user) and for the command (0600).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/password"
chmod 0600 "$dir/password"
[ -n "$user" ] && chown "$user" "$dir/password"
cp "$dir/password" "$dir/client-password"
chmod 0600 "$dir/client-password"
"${as[@]}" "$bindir/initdb" -D "$dir/data" -U msce --pwfile="$dir/password" --auth=scram-sha-256 \
        --no-locale -E UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; echo "FAIL: initdb"; exit 1; }
rm -f "$dir/password"

cat > "$dir/ctl" <<EOF
#!/bin/sh
# stop | start | freeze | thaw this run's PostgreSQL (freeze: SIGSTOP to its postmaster and
# its children, by their process IDs: a database host gone silent). The postmaster first, so
# that no child comes after the list; a child that ended since the list is no error.
signal() {
        pm=\$(head -n1 "$dir/data/postmaster.pid")
        kill -"\$1" "\$pm" || exit 1
        for p in \$(ps -o pid= --ppid "\$pm"); do kill -"\$1" "\$p" 2> /dev/null || :; done
}
case "\$1" in
freeze) signal STOP ;;
thaw) signal CONT ;;
stop) exec ${as[*]} "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop ;;
start) exec ${as[*]} "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -c listen_addresses='$listen' -c port=$port -c max_connections=200" start ;;
*) echo "usage: \$0 stop|start|freeze|thaw" >&2; exit 2 ;;
esac
EOF
chmod 0755 "$dir/ctl"
"$dir/ctl" start >/dev/null || { cat "$dir/server.log"; echo "FAIL: pg_ctl start"; exit 1; }

# the database the tests use, created through the same password (a .pgpass file, not the environment)
printf '*:*:*:msce:%s\n' "$(cat "$dir/client-password")" > "$dir/pgpass"
chmod 0600 "$dir/pgpass"
PGPASSFILE="$dir/pgpass" "$bindir/psql" -h "$dir" -p "$port" -U msce -d postgres -qAt -c 'CREATE DATABASE msce' >/dev/null ||
        { echo "FAIL: CREATE DATABASE"; exit 1; }
rm -f "$dir/pgpass"

export MSCE_TEST_PG_URI="postgresql:///msce?host=$dir&port=$port&user=msce"
export MSCE_TEST_PG_PORT=$port
export MSCE_TEST_PG_PASSWORD_FILE="$dir/client-password"
export MSCE_TEST_PG_CTL="$dir/ctl"
export MSCE_TEST_PG_BINDIR="$bindir"
rc=0
"$@" || rc=$?
exit "$rc"
