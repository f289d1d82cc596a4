# Helpers and fixed names for the guest test (sourced by systest.sh).

NODE=urn:dev:ops:msce-systest-0001
PSK_ID=systest-kpm
CSE_USER=msce-systest-cse
OTHER_USER=msce-systest-other
MEF_URI=https://127.0.0.1:8443/msce
# agent/message-ids.h (fixed forever)
ID_ENROLLED=2606ed3f512648db851c350a30b0459f
ID_MEF_ENROLLED=5bf0bbfa4c5848f9a223f2089188fed7 # mef/message-ids.h
ID_RESTORED=73a291f16a924c6f9b4b436007f9155a
export TPM2TOOLS_TCTI=device:/dev/tpmrm0

result() { # PASS|FAIL|SKIP name [why]
        local line="$1 $2${3:+: $3}"
        echo "$line" >> "$RESULTS"
        echo "RESULT $line"
}
pass() { result PASS "$1" "${2:-}"; }
fail() { result FAIL "$1" "$2"; }
skip() { result SKIP "$1" "$2"; }
# check NAME COMMAND...: PASS when the command succeeds, else FAIL with its output's last line
check() {
        local name=$1 out rc
        shift
        out=$("$@" 2>&1)
        rc=$?
        [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /'
        if [ $rc = 0 ]; then pass "$name"; else fail "$name" "exit $rc: $(printf '%s' "$out" | tail -n1)"; fi
        return $rc
}
# wait_until SECONDS COMMAND...: poll every 0.2 s
wait_until() {
        local end=$((SECONDS + $1))
        shift
        until "$@" > /dev/null 2>&1; do
                [ $SECONDS -ge $end ] && return 1
                sleep 0.2
        done
}
# await SECONDS WHAT COMMAND...: wait_until, and on a timeout say what was awaited (the check
# that follows reads the state once more and fails with what it found)
await() {
        local secs=$1 what=$2
        shift 2
        wait_until "$secs" "$@" && return 0
        echo "    timed out after $secs s awaiting $what"
        return 1
}
now_usec() { echo "${EPOCHREALTIME/./}"; }
prop() { systemctl show -P "$2" "$1"; }
is_active() { [ "$(systemctl is-active "$1")" = active ]; }
agent_state() { jq -r '.state // empty' /run/msce/state.json 2> /dev/null; }
agent_state_is() { [ "$(agent_state)" = "$1" ]; }
status_ready() { prop msce-agent.service StatusText | grep -q '^Ready'; }
status_not_ready() { ! status_ready; }
status_has() { prop msce-agent.service StatusText | grep -q "$1"; }
is_failed() { [ "$(systemctl is-active "$1")" = failed ]; }

# The stand-in CSE's key read (docs/cse-integration.md, "Shell"): prints "msce:ltk: N bytes".
CSE_READ='set -e
keyctl get_persistent @s > /dev/null
ring=$(keyctl search @s keyring msce)
ltk=$(keyctl search "$ring" user msce:ltk)
echo "msce:ltk: $(keyctl pipe "$ltk" | wc -c) bytes"'
# as USER in a fresh session keyring (nothing inherited from root's session)
read_key_as() { runuser -u "$1" -- keyctl session - /bin/sh -c "$CSE_READ"; }
# The timeout of USER's persistent keyring as USER sees it in /proc/keys ("3s", "2d", "expd";
# nothing without one). Unlike keyctl get_persistent, reading /proc/keys refreshes nothing.
persistent_timeout() { runuser -u "$1" -- awk -v d="_persistent.$(id -u "$1"):" '$9 == d { print $4 }' /proc/keys; }

# LED sampling: the gpio-sim line's "value" attribute (what the line drives) every ~20 ms,
# as "usec value" lines, until killed.
led_value_path() { echo "$(cat /run/msce-systest/sim 2> /dev/null)/sim_gpio0/value"; }
# No fork per sample (a fork+exec of sleep costs ~100 ms under TCG): the pause is a read with
# a timeout on a FIFO nobody writes to.
led_sampler() { # FILE
        local v x tick fd
        v=$(led_value_path)
        tick=/run/msce-systest/tick.$BASHPID
        mkfifo "$tick"
        exec {fd}<> "$tick"
        rm -f "$tick"
        while :; do
                read -r x < "$v" || x=?
                echo "${EPOCHREALTIME/./} $x"
                read -r -t 0.02 -u "$fd" _
        done > "$1"
}
# led_seen FILE FROM SAMPLES TRANSITIONS: the sampler has recorded at least SAMPLES samples and
# TRANSITIONS changes of the line from FROM (usec) on
led_seen() {
        awk -v from="$2" -v ns="$3" -v nt="$4" '
                $1 >= from && ($2 == 0 || $2 == 1) { n++; if (n > 1 && $2 != last) t++; last = $2 }
                END { exit !(n >= ns && t >= nt) }' "$1"
}
# led_analyse FILE FROM TO: transitions and the median time between them in [FROM, TO) (usec)
# -> "samples N transitions T ones O median_half_period_ms M" (mawk: no asort, hence sort -n)
led_analyse() {
        local stats med
        stats=$(awk -v from="$2" -v to="$3" '
                $1 >= from && $1 < to && ($2 == 0 || $2 == 1) {
                        n++; if ($2 == 1) ones++
                        if (n > 1 && $2 != last) t++
                        last = $2
                }
                END { printf "samples %d transitions %d ones %d", n, t, ones }' "$1")
        med=$(awk -v from="$2" -v to="$3" '
                $1 >= from && $1 < to && ($2 == 0 || $2 == 1) {
                        if (n++ && $2 != last) { if (lt) print int(($1 - lt) / 1000); lt = $1 }
                        last = $2
                }' "$1" | sort -n | awk '{ a[NR] = $1 } END { print NR ? a[int((NR + 1) / 2)] : 0 }')
        echo "$stats median_half_period_ms $med"
}
# first journal entry of this boot with MESSAGE_ID $1 from msce-agent, as JSON ("" if none)
journal_entry() { journalctl -b -u msce-agent.service -o json "MESSAGE_ID=$1" 2> /dev/null | head -n1; }
journal_has() { [ -n "$(journal_entry "$1")" ]; }
# journal_grep UNIT PATTERN [journalctl args]: a line of UNIT's journal this boot matches (journald
# stores what a unit wrote a little after the unit has moved on)
journal_grep() {
        local unit=$1 pattern=$2
        shift 2
        journalctl -b -u "$unit" -o cat "$@" 2> /dev/null | grep -q "$pattern"
}

# measure LABEL: the running agent's memory, for the benchmark record (never a check): VmRSS,
# its peak VmHWM, RssFile/RssAnon, Pss and Private from smaps_rollup, the unit's cgroup
# memory.current, and the kernel it was read on. One line in OUT/measure-<boot>.txt, printed by
# the host.
measure() {
        local pid rollup
        pid=$(prop msce-agent.service MainPID)
        [ "${pid:-0}" != 0 ] || { echo "$1: agent not running" >> "$OUT/measure-$phase.txt"; return 0; }
        rollup=$(awk '/^(Pss|Private_Clean|Private_Dirty):/ { v[$1] = $2 }
                END { printf "Pss %d KiB, Private %d KiB", v["Pss:"], v["Private_Clean:"] + v["Private_Dirty:"] }' \
                "/proc/$pid/smaps_rollup")
        printf '%s (kernel %s): %s, %s, %s, cgroup memory.current %s KiB\n' "$1" "$(uname -r)" \
                "$(awk '/^Vm(RSS|HWM):/ { v[$1] = $2 } END { printf "VmRSS %d KiB (peak VmHWM %d KiB)", v["VmRSS:"], v["VmHWM:"] }' "/proc/$pid/status")" \
                "$(awk '/^Rss(File|Anon):/ { printf "%s %d KiB ", $1, $2 }' "/proc/$pid/status" | sed 's/: / /g; s/ $//')" \
                "$rollup" "$(($(cat /sys/fs/cgroup/system.slice/msce-agent.service/memory.current) / 1024))" \
                >> "$OUT/measure-$phase.txt"
}

# measure_mef LABEL: the same record for msce-mef's main process (VmRSS and its peak VmHWM)
measure_mef() {
        local pid
        pid=$(prop msce-mef.service MainPID)
        [ "${pid:-0}" != 0 ] || { echo "$1: msce-mef not running" >> "$OUT/measure-$phase.txt"; return 0; }
        printf '%s (kernel %s): msce-mef %s\n' "$1" "$(uname -r)" \
                "$(awk '/^Vm(RSS|HWM):/ { v[$1] = $2 } END { printf "VmRSS %d KiB (peak VmHWM %d KiB)", v["VmRSS:"], v["VmHWM:"] }' "/proc/$pid/status")" \
                >> "$OUT/measure-$phase.txt"
}

# check_no_crypto_mapped WHEN: the daemon maps no crypto library; sealing, unsealing and the
# exchanges ran in child processes (docs/architecture.md, "The agent's processes").
check_no_crypto_mapped() {
        local pid mapped
        pid=$(prop msce-agent.service MainPID)
        mapped=$(grep -oE '(libwolfssl|libcrypto|libtss2|msce-agent-crypto)[^ ]*' "/proc/$pid/maps" 2> /dev/null | sort -u | tr '\n' ' ')
        if [ "${pid:-0}" != 0 ] && [ -r "/proc/$pid/maps" ] && [ -z "$mapped" ]; then
                pass "$1: the daemon maps no crypto library (TPM and TLS work ran in child processes)"
        else
                fail "$1: the daemon maps no crypto library" "pid ${pid:-none}, mapped: ${mapped:-?}"
        fi
}
