#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/pg-run.sh as root while another test's useradd/userdel holds the user database: its
# useradd exits 1, then 10 ("cannot lock /etc/passwd; try again later", as useradd does after
# waiting about 15 s for the lock), and pg-run.sh creates its user at the next try, runs the
# command and removes the user after it, rather than skip.
# Usage: pg-run-user.sh PATH/TO/pg-run.sh (TAP). Root only.
set -euo pipefail

PG_RUN=${1:?usage: pg-run-user.sh PATH/TO/pg-run.sh}
. "$(dirname "$0")/lib.sh"
need_root "useradd"
need_cmds useradd userdel
tmpdir pg-run-user

# useradd, locked out for the first two tries (a stand-in first in PATH)
mkdir "$T/bin"
cat > "$T/bin/useradd" << STUB
#!/bin/sh
n=\$(cat "$T/tries" 2> /dev/null || echo 0)
echo \$((n + 1)) > "$T/tries"
case \$n in
0) echo "useradd: cannot lock /etc/passwd; try again later." >&2; exit 1 ;;
1) echo "useradd: cannot lock /etc/group; try again later." >&2; exit 10 ;;
esac
exec $(command -v useradd) "\$@"
STUB
chmod 0755 "$T/bin/useradd"

rc=0
PATH="$T/bin:$PATH" bash "$PG_RUN" sh -c 'echo "$MSCE_TEST_PG_URI"' > "$T/out" 2> "$T/err" || rc=$?
if [ $rc = 77 ] && grep -q "PostgreSQL server binaries" "$T/out"; then skip_all "$(cat "$T/out")"; fi
# the run's directory, /tmp/msce-pg.PID, names its user: msce-tPID-pg
pid=$(sed -n 's|.*host=/tmp/msce-pg\.\([0-9]*\)&.*|\1|p' "$T/out")
if [ $rc = 0 ] && [ -n "$pid" ] && [ "$(cat "$T/tries")" -ge 3 ]; then
        ok "pg-run.sh: useradd tried again while the user database was locked, the command ran"
else
        not_ok "pg-run.sh with the user database locked: exit $rc, useradd tried $(cat "$T/tries" 2> /dev/null || echo 0) times: $(cat "$T/out" "$T/err")"
fi
if [ -n "$pid" ] && ! id "msce-t$pid-pg" > /dev/null 2>&1; then
        ok "pg-run.sh: its user is gone after the run"
else
        not_ok "pg-run.sh: user msce-t$pid-pg left behind"
fi
tap_done
