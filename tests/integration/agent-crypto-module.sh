#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-agent (the daemon) with a crypto module it cannot use next to it (TAP), restoring a sealed
# profile: one of another version (foreign-crypto-module.c) and a file that is no library. The
# unseal's child meets it; the daemon exits 78 naming the reason the child gave, and never loads
# the module itself (agent/crypto.h: it maps no crypto library, and a foreign module's
# constructors must not run in it): the module's constructor logs each pid that loads it, and
# LD_DEBUG=files (on stderr, the one descriptor a child keeps: util/child.h) names each process
# that tries to. The sealed envelope is junk: the child stops before reading it.
# Usage: agent-crypto-module.sh BUILDDIR. Root (the CSE user of its own); skipped otherwise.
set -u

[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
AGENT=$B/msce-agent
FOREIGN=$B/tests/integration/foreign-crypto-module.so
. "$(dirname "$0")/lib.sh"
need_root "a CSE user of its own"
need_exec "$AGENT"
[ -f "$FOREIGN" ] || skip_all "$FOREIGN not built"
CSE_USER=$(test_user cmodcse) || skip_all "cannot create a test user"
test_user_cleanup "$CSE_USER"
tmpdir msce-test-cmod
umask 077

# pids_loading FILE: the pids LD_DEBUG=files shows loading msce-agent-crypto.so, one a line
pids_loading() { sed -n 's/^ *\([0-9][0-9]*\):[[:space:]]*file=.*msce-agent-crypto\.so .*/\1/p' "$1" | sort -u; }

# scenario NAME MODULE REASON: the agent copied next to MODULE (as msce-agent-crypto.so) exits
# 78 with "Configuration error: REASON (reinstall msce-agent)", and only its children load it.
scenario() {
        local name=$1 module=$2 reason=$3 d=$T/$1
        mkdir -p "$d/bin" "$d/state" "$d/run"
        cp "$AGENT" "$d/bin/msce-agent"
        cp "$module" "$d/bin/msce-agent-crypto.so"
        echo junk > "$d/state/profile.sealed"
        head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n' > "$d/kpm"
        {
                printf '[node]\nid = node-1\n[mef]\nuri = https://127.0.0.1:9/msce\n'
                printf 'psk_identity = kpm-1\npsk_file = %s\n' "$d/kpm"
                agent_custody "$CSE_USER" "$d/state" "$d/run"
        } > "$d/agent.conf"
        LD_DEBUG=files MSCE_FOREIGN_MODULE_LOG=$d/loaded-by "$d/bin/msce-agent" --config "$d/agent.conf" \
                > "$d/out" 2> "$d/err" &
        local pid=$! rc
        wait $pid
        rc=$?
        grep -v '^ *[0-9]*:' "$d/err" > "$d/said" # without LD_DEBUG's lines
        LIB_SHOW=$d/said
        local want="Configuration error: $reason (reinstall msce-agent)"
        if [ $rc -eq 78 ] && grep -qF -- "msce-agent: $want" "$d/err"; then
                ok "$name: exit 78, '$want'"
        else
                not_ok "$name: exit $rc, expected 78 and '$want'"
        fi
        local tried
        tried=$(pids_loading "$d/err" | paste -sd' ')
        if [ -n "$tried" ] && ! pids_loading "$d/err" | grep -qx "$pid"; then
                ok "$name: only the child ($tried) loads the module, not the daemon ($pid) (LD_DEBUG=files)"
        else
                not_ok "$name: the daemon ($pid) loads the module; processes that did: '$tried'"
        fi
        if [ "$name" = foreign ]; then
                local ran
                ran=$(paste -sd' ' "$d/loaded-by" 2> /dev/null)
                if [ -n "$ran" ] && ! grep -qx "$pid" "$d/loaded-by"; then
                        ok "$name: its constructor ran in the child ($ran) only, not in the daemon ($pid)"
                else
                        not_ok "$name: its constructor ran in: '$ran', the daemon is $pid"
                fi
        fi
}

scenario foreign "$FOREIGN" "msce-agent-crypto.so is not the crypto module of this msce-agent (another version)"
head -c 256 /dev/zero | tr '\0' x > "$T/junk.so"
scenario junk "$T/junk.so" "cannot load the crypto module: $T/junk/bin/msce-agent-crypto.so: invalid ELF header"
tap_done
