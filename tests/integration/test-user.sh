#!/bin/sh
# SPDX-License-Identifier: MIT
# System users for one test run, named msce-t<PID>-<TAG> (PID: the test's own process, alive as
# long as the run): two runs at once (the gcc and ASan builds, two worktrees, two test files)
# never share a user, nor the persistent keyring the agent files keys into for it.
#   test-user.sh add PID TAG   create the user, print its name; first remove the users of runs
#                              that are gone (killed by a timeout before their cleanup)
#   test-user.sh del NAME...   empty each user's persistent keyring (a later user may be given
#                              the same uid, and with it that keyring), then remove the user
# Root only. Exit 1 when the user cannot be created.
set -u

purge() {
        uid=$(id -u "$1" 2> /dev/null) || return 0
        keyctl session - sh -c "p=\$(keyctl get_persistent @s $uid) && keyctl clear \$p" > /dev/null 2>&1
        for _ in 1 2 3 4 5 6 7 8 9 10; do
                userdel "$1" > /dev/null 2>&1
                case $? in 0 | 6) return 0 ;; esac # 6: no such user (a concurrent sweep took it)
                sleep 0.5                          # /etc/passwd locked by another useradd/userdel
        done
        echo "test-user.sh: cannot remove user $1" >&2
}

case ${1:-} in
add)
        [ $# -eq 3 ] || { echo "usage: test-user.sh add PID TAG" >&2; exit 2; }
        name=msce-t$2-$3
        [ ${#name} -le 32 ] || { echo "test-user.sh: '$name' is longer than 32 characters" >&2; exit 2; }
        for u in $(sed -n 's/^\(msce-t[0-9][0-9]*-[^:]*\):.*/\1/p' /etc/passwd); do
                p=${u#msce-t}
                p=${p%%-*}
                kill -0 "$p" 2> /dev/null || purge "$u"
        done
        for _ in 1 2 3 4 5 6 7 8 9 10; do
                id -u "$name" > /dev/null 2>&1 && break
                useradd --system --no-create-home "$name" > /dev/null 2>&1 || sleep 0.5
        done
        id -u "$name" > /dev/null 2>&1 || exit 1
        echo "$name"
        ;;
del)
        shift
        for u in "$@"; do purge "$u"; done
        ;;
*)
        echo "usage: test-user.sh add PID TAG | del NAME..." >&2
        exit 2
        ;;
esac
