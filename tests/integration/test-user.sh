#!/bin/sh
# SPDX-License-Identifier: MIT
# System users for one test run, named msce-t<PID>-<TAG> (PID: the test's own process, alive as
# long as the run): two runs at once (the gcc and ASan builds, two worktrees, two test files)
# never share a user, nor the persistent keyring the agent files keys into for it.
#   test-user.sh add PID TAG [OPTION...]
#                              create the user (useradd --system --no-create-home OPTION...),
#                              print its name; first remove the users of runs that are gone
#                              (killed by a timeout before their cleanup)
#   test-user.sh del NAME...   empty each user's persistent keyring (a later user may be given
#                              the same uid, and with it that keyring), then remove the user
# Root only. Exit 1 when the user cannot be created.
set -u

# COMMAND... again while it says the user database is locked, for 30 s: useradd and userdel
# wait about 15 s for the locks of /etc/passwd and /etc/group themselves, then exit 1 or 10
# ("cannot lock /etc/passwd; try again later") while other tests' useradd/userdel hold them.
# Each try is a new attempt at the lock. Its last status; its last output in $out.
unlocked() {
        end=$(($(date +%s) + 30))
        while :; do
                out=$("$@" 2>&1)
                rc=$?
                case $rc in 1 | 10) [ "$(date +%s)" -lt "$end" ] || return $rc ;; *) return $rc ;; esac
                sleep 0.2
        done
}

purge() {
        uid=$(id -u "$1" 2> /dev/null) || return 0
        keyctl session - sh -c "p=\$(keyctl get_persistent @s $uid) && keyctl clear \$p" > /dev/null 2>&1
        unlocked userdel "$1"
        case $? in 0 | 6) return 0 ;; esac # 6: no such user (a concurrent sweep took it)
        echo "test-user.sh: cannot remove user $1: $out" >&2
}

case ${1:-} in
add)
        [ $# -ge 3 ] || { echo "usage: test-user.sh add PID TAG [OPTION...]" >&2; exit 2; }
        name=msce-t$2-$3
        shift 3
        [ ${#name} -le 32 ] || { echo "test-user.sh: '$name' is longer than 32 characters" >&2; exit 2; }
        for u in $(sed -n 's/^\(msce-t[0-9][0-9]*-[^:]*\):.*/\1/p' /etc/passwd); do
                p=${u#msce-t}
                p=${p%%-*}
                kill -0 "$p" 2> /dev/null || purge "$u"
        done
        unlocked useradd --system --no-create-home "$@" "$name" || id -u "$name" > /dev/null 2>&1 ||
                { echo "test-user.sh: cannot create user $name: $out" >&2; exit 1; }
        echo "$name"
        ;;
del)
        shift
        for u in "$@"; do purge "$u"; done
        ;;
*)
        echo "usage: test-user.sh add PID TAG [OPTION...] | del NAME..." >&2
        exit 2
        ;;
esac
