# Boot 1: install, configure, enrol against the local MEF, check (sourced by systest.sh).

install_packages() {
        echo "== install the .debs (no network: every Depends must be in the image)"
        check "dpkg -i msce-agent and msce-mef" dpkg -i "$IN"/debs/msce-agent_*.deb "$IN"/debs/msce-mef_*.deb || return 1
        check "sysusers: users msce and msce-mef exist" sh -c 'id msce && id msce-mef'
        local groups
        groups=$(id -nG msce 2> /dev/null)
        case " $groups " in
        *" tss "*) case " $groups " in *" gpio "*) groups=ok ;; esac ;;
        esac
        [ "$groups" = ok ] && pass "sysusers: msce is in groups tss and gpio" ||
                fail "sysusers: msce is in groups tss and gpio" "groups: '$groups'"
        local en act
        en=$(systemctl is-enabled msce-agent.service 2>&1)
        act=$(systemctl is-active msce-agent.service 2>&1)
        if [ "$en" = enabled ] && [ "$act" != active ]; then
                pass "msce-agent enabled but not started by the installation"
        else
                fail "msce-agent enabled but not started by the installation" "is-enabled $en, is-active $act"
        fi
        en=$(systemctl is-enabled msce-mef.service 2>&1)
        [ "$en" = disabled ] && pass "msce-mef not enabled by the installation" ||
                fail "msce-mef not enabled by the installation" "is-enabled $en"
        check "tmpfiles: /var/lib/msce is 0700 msce" sh -c '[ "$(stat -c "%a %U" /var/lib/msce)" = "700 msce" ]'
        check "journal catalog installed (journalctl --list-catalog)" \
                sh -c "journalctl --list-catalog | grep -qi $ID_ENROLLED"
        check "/etc/msce/agent.conf is a conffile" sh -c "dpkg-query -W -f '\${Conffiles}' msce-agent | grep -q /etc/msce/agent.conf"
        # the shipped agent.conf has every key commented out: a start must fail with EX_CONFIG
        # (78), name the missing field in the journal, and not loop (RestartPreventExitStatus=78)
        systemctl start msce-agent.service > /dev/null 2>&1
        # failed, not activating: a restart would show as activating (auto-restart) instead
        await 30 "msce-agent.service to be failed" is_failed msce-agent.service
        await 10 "the agent's last line in the journal" journal_grep msce-agent.service '\[node\] id'
        local code restarts msg
        code=$(prop msce-agent.service ExecMainStatus)
        restarts=$(prop msce-agent.service NRestarts)
        msg=$(journalctl -b _COMM=msce-agent -o cat | tail -n1)
        if [ "$(systemctl is-active msce-agent.service)" = failed ] && [ "$code" = 78 ] && [ "$restarts" = 0 ] &&
                echo "$msg" | grep -q '\[node\] id'; then
                pass "unconfigured agent fails with exit 78, no restart loop ($msg)"
        else
                fail "unconfigured agent fails with exit 78, no restart loop" \
                        "is-active $(systemctl is-active msce-agent.service), exit $code, restarts $restarts, '$msg'"
        fi
        systemctl reset-failed msce-agent.service 2> /dev/null
}

# A simulated GPIO chip with the LED lines (a oneshot unit: at every boot before msce-agent).
setup_gpio_sim() {
        echo "== gpio-sim chip with lines MSCE_STATUS and MSCE_ERROR"
        cat > /usr/local/sbin/msce-systest-gpiosim <<'EOF'
#!/bin/sh
set -e
modprobe gpio-sim
mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config
c=/sys/kernel/config/gpio-sim/msce-systest
if [ ! -e "$c/live" ]; then
        mkdir -p "$c/bank0/line0" "$c/bank0/line1"
        echo 4 > "$c/bank0/num_lines"
        echo msce-systest > "$c/bank0/label"
        echo MSCE_STATUS > "$c/bank0/line0/name"
        echo MSCE_ERROR > "$c/bank0/line1/name"
        echo 1 > "$c/live"
fi
mkdir -p /run/msce-systest
chip=$(cat "$c/bank0/chip_name")
echo "$chip" > /run/msce-systest/chip
echo "/sys/devices/platform/$(cat "$c/dev_name")/$chip" > /run/msce-systest/sim
udevadm settle --timeout=10 || true
EOF
        chmod 0755 /usr/local/sbin/msce-systest-gpiosim
        cat > /etc/systemd/system/msce-systest-gpiosim.service <<'EOF'
[Unit]
Description=msce system test: simulated GPIO chip for the state LEDs
After=systemd-udevd.service
Before=msce-agent.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/msce-systest-gpiosim

[Install]
WantedBy=msce-agent.service
EOF
        systemctl daemon-reload
        check "gpio-sim chip created (modprobe gpio-sim, configfs)" systemctl start msce-systest-gpiosim.service
}

# The chip existed before the installation: the package's udev rule must still reach it.
check_device_access() {
        local chip
        chip=$(cat /run/msce-systest/chip 2> /dev/null)
        check "udev rule applied on installation: /dev/$chip is group gpio, 0660" \
                sh -c "[ \"\$(stat -c '%G %a' /dev/$chip)\" = 'gpio 660' ] || { stat -c '%G %a' /dev/$chip; false; }"
        check "/dev/tpmrm0 is group tss (tpm-udev), the agent's group" \
                sh -c "[ \"\$(stat -c '%G' /dev/tpmrm0)\" = tss ]"
        # from the next boot on, before msce-agent starts
        systemctl enable msce-systest-gpiosim.service 2>&1
}

setup_mef() {
        echo "== msce-mef: store, one node with a generated bootstrap PSK"
        cat > /etc/msce/mef.conf <<EOF
[server]
listen = 127.0.0.1:8443
base = /msce
EOF
        check "msce-mef init (as msce-mef)" runuser -u msce-mef -- msce-mef init
        rm -f /var/lib/msce-mef/kpm.hex
        check "msce-mef node add (as msce-mef)" runuser -u msce-mef -- msce-mef node add "$NODE" \
                --cse-id /mn-cse-systest --cse-base https://in.example.net:8443/~/in-cse/in-name \
                --psk-id "$PSK_ID" --generate-psk /var/lib/msce-mef/kpm.hex --target /in-cse
        # the agent's copy of the factory PSK: owned by the agent's user, 0600
        install -o msce -g msce -m 0600 /var/lib/msce-mef/kpm.hex /etc/msce/kpm.hex
        rm -f /var/lib/msce-mef/kpm.hex
}

setup_agent() {
        echo "== msce-agent configuration"
        cat > /etc/msce/agent.conf <<EOF
[node]
id = $NODE

[mef]
uri = $MEF_URI
mode = psk
psk_identity = $PSK_ID
psk_file = /etc/msce/kpm.hex

[consumer]
user = $CSE_USER

[seal]
backend = auto

[leds]
status = name:MSCE_STATUS
error = name:MSCE_ERROR

[timing]
connect_timeout = 2s
backoff_min = 500ms
backoff_max = 2s
EOF
        check "msce-agent --check-config (as msce)" runuser -u msce -- msce-agent --check-config
}

setup_cse() {
        echo "== stand-in CSE service (user $CSE_USER) ordered after msce-agent by the documented drop-in"
        for u in "$CSE_USER" "$OTHER_USER"; do
                id "$u" > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
        done
        printf '#!/bin/sh\n%s\n' "$CSE_READ" > /usr/local/bin/msce-systest-cse
        chmod 0755 /usr/local/bin/msce-systest-cse
        cat > /etc/systemd/system/msce-systest-cse.service <<EOF
[Unit]
Description=msce system test: stand-in CSE reading its key from the keyring

[Service]
Type=oneshot
RemainAfterExit=yes
User=$CSE_USER
ExecStart=/usr/local/bin/msce-systest-cse

[Install]
WantedBy=multi-user.target
EOF
        mkdir -p /etc/systemd/system/msce-systest-cse.service.d
        local example=/usr/share/doc/msce-agent/examples/cse-wait-for-msce.conf
        if [ -f "$example" ]; then
                cp "$example" /etc/systemd/system/msce-systest-cse.service.d/50-msce.conf
                pass "CSE drop-in example shipped in msce-agent ($example)"
        else
                fail "CSE drop-in example shipped in msce-agent" "$example is missing"
                printf '[Unit]\nRequires=msce-agent.service\nAfter=msce-agent.service\n' \
                        > /etc/systemd/system/msce-systest-cse.service.d/50-msce.conf
        fi
        systemctl daemon-reload
        systemctl enable msce-systest-cse.service 2>&1
}

# Start the agent with the MEF down (it retries: the LED blinks), then bring the MEF up: it
# enrols and becomes ready (the LED stays on).
# An upgrade (the same .debs again: postinst configure with the old version) while the agent is
# activating, its MEF down: the postinst restarts it without waiting for the start job, which
# lasts until the MEF answers (Type=notify, TimeoutStartSec=infinity). debhelper's try-restart
# waited for it: dpkg held its lock until the MEF answered (here: never, timeout kills it).
check_upgrade_while_activating() {
        local pid rc=0
        pid=$(prop msce-agent.service MainPID)
        timeout 120 dpkg -i "$IN"/debs/msce-agent_*.deb "$IN"/debs/msce-mef_*.deb > "$STATE/upgrade.log" 2>&1 || rc=$?
        if [ "$rc" = 0 ]; then
                pass "upgrade while the agent is activating (MEF down): dpkg returns"
        else
                fail "upgrade while the agent is activating (MEF down): dpkg returns" "exit $rc: $(tail -n1 "$STATE/upgrade.log")"
        fi
        new_agent() { local p; p=$(prop msce-agent.service MainPID); [ "$p" != 0 ] && [ "$p" != "$pid" ]; }
        if wait_until 60 new_agent; then
                pass "... and the agent was restarted on the new binaries (MainPID $pid -> $(prop msce-agent.service MainPID))"
        else
                fail "... and the agent was restarted on the new binaries" "MainPID still $(prop msce-agent.service MainPID)"
        fi
}

enrol() {
        echo "== enrolment"
        local led=$STATE/led-1.txt t_start t_mef sampler
        systemctl stop msce-mef.service
        led_sampler "$led" &
        sampler=$!
        t_start=$(now_usec)
        systemctl start --no-block msce-agent.service
        # the agent retrying with the MEF down, and the LED blinking meanwhile
        await 60 "the LED to blink (3 transitions) while the MEF is down" led_seen "$led" "$t_start" 1 3
        echo "    agent before the MEF is up: $(systemctl is-active msce-agent.service), state '$(agent_state)', status '$(prop msce-agent.service StatusText)'"
        check_upgrade_while_activating
        t_mef=$(now_usec)
        check "msce-mef.service starts (Type=notify)" systemctl start msce-mef.service
        if wait_until 90 is_active msce-agent.service; then
                pass "systemctl start msce-agent: active once the MEF answers"
        else
                fail "systemctl start msce-agent: active once the MEF answers" \
                        "is-active $(systemctl is-active msce-agent.service), status '$(prop msce-agent.service StatusText)'"
        fi
        # the LED once ready: 25 samples from 300 ms after the enrolled entry (its time) on
        local e t_ready
        await 30 "the enrolled entry in the journal (MESSAGE_ID=$ID_ENROLLED)" journal_has "$ID_ENROLLED"
        e=$(journal_entry "$ID_ENROLLED")
        t_ready=$(echo "$e" | jq -r '.__REALTIME_TIMESTAMP // empty' 2> /dev/null)
        [ -n "$t_ready" ] && await 30 "25 LED samples after ready" led_seen "$led" $((t_ready + 300000)) 25 0
        kill "$sampler" 2> /dev/null
        wait "$sampler" 2> /dev/null
        local st
        await 20 "StatusText Ready" status_ready
        st=$(prop msce-agent.service StatusText)
        status_ready && pass "StatusText is Ready ($st)" || fail "StatusText is Ready" "StatusText '$st'"

        # journal: the enrolled entry with its MESSAGE_ID and the MSCE_* fields
        if [ -z "$e" ]; then
                fail "journal: enrolled entry (MESSAGE_ID=$ID_ENROLLED)" "no such entry; last lines: $(journalctl -b -u msce-agent -o cat | tail -n3 | tr '\n' '|')"
        elif echo "$e" | jq -e --arg n "$NODE" --arg mef "$MEF_URI" \
                '.MSCE_NODE_ID == $n and .MSCE_MEF == $mef and (.MSCE_KEID | length > 0) and (.MSCE_STATE | length > 0)' > /dev/null; then
                pass "journal: enrolled entry with MESSAGE_ID and MSCE_NODE_ID/MSCE_KEID/MSCE_MEF/MSCE_STATE"
        else
                fail "journal: enrolled entry with MSCE_* fields" "$(echo "$e" | jq -c '{MESSAGE, MSCE_NODE_ID, MSCE_KEID, MSCE_MEF, MSCE_STATE}')"
        fi
        check "journalctl -x shows the catalog text for it" \
                sh -c "journalctl -b -u msce-agent.service -x MESSAGE_ID=$ID_ENROLLED | grep -q 'Enrolled with the MEF'"
        # the MEF's side of it: its structured entry names the same node and KeID
        local me keid
        keid=$(echo "$e" | jq -r '.MSCE_KEID // empty' 2> /dev/null)
        me=$(journalctl -b -u msce-mef.service -o json "MESSAGE_ID=$ID_MEF_ENROLLED" 2> /dev/null | tail -n1)
        if [ -n "$me" ] && echo "$me" | jq -e --arg n "$NODE" --arg k "$keid" \
                '.MSCE_NODE_ID == $n and .MSCE_KEID == $k and .MSCE_OUTCOME == "enrolled" and .MSCE_EXCHANGE == "enrol" and .MSCE_HTTP_STATUS == "201"' > /dev/null; then
                pass "journal: msce-mef's enrolled entry (MESSAGE_ID, MSCE_NODE_ID, MSCE_KEID, MSCE_OUTCOME)"
        else
                fail "journal: msce-mef's enrolled entry with MSCE_* fields" "${me:-no such entry}"
        fi
        check "journalctl -x shows msce-mef's catalog text" \
                sh -c "journalctl -b -u msce-mef.service -x MESSAGE_ID=$ID_MEF_ENROLLED | grep -q 'and was given KeID'"

        # LEDs: the agent holds its lines; blinking before ready, solid on once ready
        local chip
        chip=$(cat /run/msce-systest/chip 2> /dev/null)
        # libgpiod 2's gpioinfo (Debian 13) names the chip with -c; 1.6's takes it as an argument
        gpioinfo_chip() { if gpioinfo --version 2>&1 | grep -q ' v1\.'; then gpioinfo "$1"; else gpioinfo -c "$1"; fi; }
        gpioinfo_chip "$chip" 2>&1 | head -n 3 | sed 's/^/    /'
        check "the agent holds its LED lines (gpioinfo: consumer msce-agent)" \
                bash -c "$(declare -f gpioinfo_chip); gpioinfo_chip $chip | grep MSCE_STATUS | grep -q '\"msce-agent\"'"
        if [ ! -s "$led" ] || [ -z "$t_ready" ]; then
                fail "LED: blinks before ready, solid on when ready" "no samples or no ready time"
        else
                local before after
                before=$(led_analyse "$led" "$t_start" "$t_ready")
                after=$(led_analyse "$led" $((t_ready + 300000)) 99999999999999999)
                echo "    LED before ready: $before"
                echo "    LED after ready:  $after"
                echo "    (MEF started $(((t_mef - t_start) / 1000)) ms after the agent, ready after $(((t_ready - t_start) / 1000)) ms)"
                set -- $before
                [ "$4" -ge 2 ] && pass "LED blinks while not ready ($4 transitions, median half-period $8 ms)" ||
                        fail "LED blinks while not ready" "$before"
                set -- $after
                [ "$2" -ge 20 ] && [ "$4" = 0 ] && [ "$6" = "$2" ] &&
                        pass "LED solid on when ready ($2 samples, all 1)" ||
                        fail "LED solid on when ready" "$after"
        fi
}

# mscectl check finds the chip of each LED line given by name, with libgpiod 1.x (Debian 12) and
# 2.x (Debian 13) alike (hw/gpio.h gpio_line_chip()), as root and as the agent's user: both
# findings OK with the gpio-sim chip, none a WARN that the line name was not checked.
check_mscectl_leds() {
        echo "== mscectl check: the LED lines given by name"
        local chip j who leds
        chip=$(cat /run/msce-systest/chip 2> /dev/null)
        for who in root msce; do
                j=$(runuser -u "$who" -- mscectl check --no-network --output json 2> /dev/null)
                leds=$(echo "$j" | jq -c '[.checks[] | select(.id == "leds") | {result, message}]' 2>&1)
                echo "    as $who: $leds"
                if [ -n "$chip" ] && echo "$j" | jq -e --arg dev "/dev/$chip " '[.checks[] | select(.id == "leds")] |
                        length == 2 and all(.result == "ok") and
                        (.[0].message | startswith("[leds] status: " + $dev)) and
                        (.[1].message | startswith("[leds] error: " + $dev))' > /dev/null 2>&1; then
                        pass "mscectl check as $who: [leds] status and error OK, lines found by name on /dev/$chip"
                else
                        fail "mscectl check as $who: [leds] status and error OK, lines found by name on /dev/${chip:-?}" \
                                "${leds:-no output}"
                fi
        done
        # the agent's user without group gpio (a changed User=): the finding must say why the
        # line was not found, not that no line has that name (libgpiod 2 skips the chips it
        # cannot open; libgpiod 1 fails the search)
        j=$(setpriv --reuid=msce --regid=msce --clear-groups mscectl check --no-network --output json 2> /dev/null)
        leds=$(echo "$j" | jq -c '[.checks[] | select(.id == "leds") | {result, message}]' 2>&1)
        echo "    as msce without group gpio: $leds"
        if echo "$j" | jq -e '[.checks[] | select(.id == "leds")] | length == 2 and
                all(.result == "failed" and (.message | test("cannot look for line MSCE_(STATUS|ERROR): Permission denied")))' \
                > /dev/null 2>&1; then
                pass "mscectl check as msce without group gpio: [leds] FAIL, Permission denied"
        else
                fail "mscectl check as msce without group gpio: [leds] FAIL, Permission denied" "${leds:-no output}"
        fi
}

check_sealed() {
        echo "== sealed profile"
        local j
        j=$(mscectl status --json 2>&1)
        echo "$j" | sed 's/^/    /'
        if echo "$j" | jq -e '.running == true and .state.state == "ready" and .state.backend == "tpm2"' > /dev/null 2>&1; then
                pass "mscectl status --json: running, ready, backend tpm2"
        else
                fail "mscectl status --json: running, ready, backend tpm2" "$(echo "$j" | jq -c '{running, state: .state.state, backend: .state.backend}' 2>&1 | tail -n1)"
        fi
        check "profile sealed in /var/lib/msce, no host key (TPM, not the fallback)" \
                sh -c 'ls -l /var/lib/msce; [ -s /var/lib/msce/profile.sealed ] && [ ! -e /var/lib/msce/host.key ]'
        check "mscectl status exits 0 (running and ready)" mscectl status
}

check_keys() {
        echo "== keys in the keyring"
        check "stand-in CSE unit (User=$CSE_USER) starts" systemctl start msce-systest-cse.service
        await 10 "the CSE unit's line in the journal" journal_grep msce-systest-cse.service 'msce:ltk:'
        local out
        out=$(journalctl -b -u msce-systest-cse.service -o cat | grep 'msce:ltk:' | tail -n1)
        case $out in
        "msce:ltk: 32 bytes") pass "CSE user reads its key with keyctl ($out)" ;;
        *) fail "CSE user reads its key with keyctl" "journal says '$out'" ;;
        esac
        if out=$(read_key_as "$OTHER_USER" 2>&1); then
                fail "another user is refused the key" "$OTHER_USER read: $out"
        else
                pass "another user is refused the key ($(echo "$out" | tail -n1))"
        fi
        check "CSE user reads its key in a fresh session (runuser + keyctl session)" read_key_as "$CSE_USER"
}

# The kernel expires a persistent keyring unused for persistent_keyring_expiry, the keys with
# it; the MEF's poll (a day here) may be far longer. With the expiry at 4 s, the CSE user's
# keyring must not expire for 5 expiry periods in which only the agent's own refresh timer can
# touch it: the CSE does not run, the observer reads /proc/keys (refreshing nothing) and the
# next status check is a poll away. The agent before that timer let it expire.
check_keyring_kept() {
        echo "== the persistent keyring kept between status polls (persistent_keyring_expiry 4 s)"
        local f=/proc/sys/kernel/keys/persistent_keyring_expiry old samples=$STATE/keyring-timeouts.txt poll
        old=$(cat $f)
        echo 4 > $f
        # restored, it installs the keys (their keyring expiring in 4 s) and arms its timer
        systemctl restart msce-agent.service
        await 60 "StatusText Ready after the restart" status_ready
        poll=$(prop msce-agent.service StatusText | sed -n 's/.*next check in \([0-9]*\) s.*/\1/p')
        [ "${poll:-0}" -ge 60 ] && pass "the next status poll is $poll s away (>= 15 expiry periods)" ||
                fail "the next status poll is far away" "StatusText '$(prop msce-agent.service StatusText)'"
        : > "$samples"
        keyring_expired() {
                local t
                t=$(persistent_timeout "$CSE_USER")
                echo "$(now_usec) ${t:-none}" >> "$samples"
                [ -z "$t" ] || [ "$t" = expd ]
        }
        # a bounded poll that must time out: it ends early only when it sees the keyring expired
        # (an expired key stays listed as such until the garbage collection, minutes later)
        wait_until 20 keyring_expired
        echo "    remaining time of the keyring in $(wc -l < "$samples") samples over 20 s: $(awk '{ print $2 }' "$samples" | sort | uniq -c | tr -s ' \n' ' ')"
        # never expired, and at most 4 s left at each sample over 5 expiry periods: refreshed,
        # with the short expiry, at least 4 times
        if awk '$2 !~ /^[1-4]s$/ { bad = 1 } END { exit bad || NR < 5 }' "$samples"; then
                pass "the persistent keyring did not expire in 20 s, 5 times persistent_keyring_expiry"
        else
                fail "the persistent keyring did not expire in 20 s" "a sample: $(grep -vE ' [1-4]s$' "$samples" | head -n1)"
        fi
        echo "$old" > $f
        # the agent's next refresh applies the restored expiry (hours or more again)
        keyring_long() { persistent_timeout "$CSE_USER" | grep -q '[hdw]$'; }
        await 10 "the keyring's timeout back to $old s" keyring_long
        check "with persistent_keyring_expiry $old again the keyring expires in $(persistent_timeout "$CSE_USER")" keyring_long
        check "CSE user reads its key after that" read_key_as "$CSE_USER"
}

check_reload() {
        echo "== systemctl reload"
        # ExecReload= is mscectl reload: systemctl returns once the reload is complete (so no
        # waiting for the StatusText below) and fails when the configuration was refused.
        local pid0 pid1 cursor st n0 rc
        pid0=$(prop msce-agent.service MainPID)
        n0=$(jq -r '.reloads // -1' /run/msce/state.json) # -1: an agent that does not count them
        cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
        check "systemctl reload msce-agent" systemctl reload msce-agent.service
        pid1=$(prop msce-agent.service MainPID)
        st=$(prop msce-agent.service StatusText)
        if is_active msce-agent.service && [ "$pid0" = "$pid1" ] && status_ready &&
                [ "$(jq -r '.reloads // -1' /run/msce/state.json)" = "$((n0 + 1))" ]; then
                pass "reload: same process, Ready again when systemctl reload returns (reloads $n0 -> $((n0 + 1)))"
        else
                fail "reload: same process, Ready again when systemctl reload returns" \
                        "pid $pid0 -> $pid1, status '$st', state.json $(cat /run/msce/state.json)"
        fi
        # the journal is written asynchronously: wait for it (a deadline, not a condition of the reload)
        await 10 "'Configuration reloaded' in the journal" \
                journal_grep msce-agent.service 'Configuration reloaded' --after-cursor="$cursor" &&
                pass "reload: 'Configuration reloaded' in the journal" ||
                fail "reload: 'Configuration reloaded' in the journal" "not found"
        # a broken drop-in: systemctl reload fails, says why, the previous configuration stays in force
        mkdir -p /etc/msce/agent.conf.d
        printf '[timing]\nbackoff_min = banana\n' > /etc/msce/agent.conf.d/99-systest-broken.conf
        cursor=$(journalctl -n0 --show-cursor -q | sed -n 's/^-- cursor: //p')
        systemctl reload msce-agent.service
        rc=$?
        st=$(prop msce-agent.service StatusText)
        if [ "$rc" != 0 ] && is_active msce-agent.service && [ "$(prop msce-agent.service MainPID)" = "$pid0" ] &&
                echo "$st" | grep -q '^Ready.*reload failed, previous configuration kept: .*backoff_min' &&
                jq -r '.reload_error' /run/msce/state.json | grep -q backoff_min; then
                pass "reload with a broken drop-in: systemctl reload fails (exit $rc), still active and Ready ($st)"
        else
                fail "reload with a broken drop-in: systemctl reload fails, still active and Ready" \
                        "exit $rc, is-active $(systemctl is-active msce-agent.service), status '$st'"
        fi
        await 10 "mscectl's refusal in the unit's journal" \
                journal_grep msce-agent.service 'mscectl: reload refused, previous configuration kept: .*backoff_min' \
                --after-cursor="$cursor" &&
                pass "reload with a broken drop-in: the reason in the unit's journal (systemctl status)" ||
                fail "reload with a broken drop-in: the reason in the unit's journal" \
                        "$(journalctl -b -u msce-agent.service -o cat --after-cursor="$cursor" | tail -n5)"
        rm -f /etc/msce/agent.conf.d/99-systest-broken.conf
        check "reload after fixing the drop-in" systemctl reload msce-agent.service
        status_ready && ! status_has 'reload failed' && [ "$(jq -r '.reload_error' /run/msce/state.json)" = null ] &&
                pass "reload after fixing the drop-in: Ready" ||
                fail "reload after fixing the drop-in: Ready" "status '$(prop msce-agent.service StatusText)'"
}

# The Kpm as a systemd credential (docs/configuration.md, "Factory provisioning"): until now
# /etc/credstore.encrypted/msce.kpm was missing and the unit ran on the blank SetCredential=
# fallback with psk_file; now seal the Kpm to the TPM with systemd-creds, take psk_file away
# and enrol again: only the credential can have provided the Kpm.
check_credential() {
        echo "== the Kpm as a systemd credential (LoadCredentialEncrypted=msce.kpm, TPM2)"
        local cred=/run/credentials/msce-agent.service/msce.kpm keid0 keid1
        check "without /etc/credstore.encrypted/msce.kpm the unit started on the blank fallback" \
                sh -c "[ -f $cred ] && [ \"\$(stat -c %s $cred)\" -le 2 ]"
        mkdir -p -m 0700 /etc/credstore.encrypted
        if ! systemd-creds encrypt --tpm2-device=auto --name=msce.kpm /etc/msce/kpm.hex \
                /etc/credstore.encrypted/msce.kpm 2>&1; then
                fail "systemd-creds encrypt --tpm2-device=auto (the factory step)" "see the guest log"
                return
        fi
        pass "systemd-creds encrypt --tpm2-device=auto (the factory step)"
        mkdir -p /etc/msce/agent.conf.d
        printf '[mef]\npsk_file =\n' > /etc/msce/agent.conf.d/90-systest-credential.conf
        check "msce-agent --check-config with the Kpm only in the credential store (as msce)" \
                runuser -u msce -- msce-agent --check-config
        keid0=$(mscectl status --json 2> /dev/null | jq -r '.state.keID // empty')
        check "systemctl restart msce-agent" systemctl restart msce-agent.service
        wait_until 60 status_ready
        # 0400 msce (systemd 252); 0440 root with an ACL for msce (systemd >= 254, Debian 13)
        check "the decrypted credential is in \$CREDENTIALS_DIRECTORY ($cred: msce reads it, nobody else)" \
                sh -c "stat -c '%a %U:%G' $cred && [ \$((0\$(stat -c %a $cred) & 7)) = 0 ] &&
                       runuser -u msce -- test -r $cred && ! runuser -u nobody -- test -r $cred &&
                       [ \"\$(stat -c %s $cred)\" -gt 2 ]"
        check "mscectl reprovision" mscectl reprovision
        wait_until 90 sh -c "k=\$(mscectl status --json 2> /dev/null | jq -r '.state.keID // empty'); [ -n \"\$k\" ] && [ \"\$k\" != '$keid0' ] && mscectl status > /dev/null"
        keid1=$(mscectl status --json 2> /dev/null | jq -r '.state.keID // empty')
        if [ -n "$keid1" ] && [ "$keid1" != "$keid0" ] && status_ready; then
                pass "enrolled again with the Kpm from the TPM-sealed credential alone (KeID $keid1)"
        else
                fail "enrolled again with the Kpm from the TPM-sealed credential alone" \
                        "KeID '$keid0' -> '$keid1', status '$(prop msce-agent.service StatusText)'"
        fi
        await 10 "the enrolment's catalog text in mscectl logs" \
                sh -c "mscectl logs -n 200 | grep -q 'Enrolled with the MEF: keys handed to the CSE'"
        check "mscectl logs shows the catalog text of the enrolment" \
                sh -c "mscectl logs -n 200 | grep -q 'Enrolled with the MEF: keys handed to the CSE'"
        # docs/configuration.md's recipe for --once with the Kpm in the credential store alone:
        # through systemd-run as the service runs it (User=msce, its capabilities and umask)
        local out keid2
        systemctl stop msce-agent.service
        out=$(systemd-run --quiet --pipe --wait -p User=msce -p Group=msce \
                -p "AmbientCapabilities=CAP_SETUID CAP_SYS_ADMIN" -p UMask=0077 \
                -p LoadCredentialEncrypted=msce.kpm msce-agent --once --reenrol 2>&1)
        printf '%s\n' "$out" | sed 's/^/    /'
        keid2=$(printf '%s\n' "$out" | sed -n 's/^  KeID: *//p')
        if [ -n "$keid2" ] && [ "$keid2" != "$keid1" ]; then
                pass "configuration.md's systemd-run recipe: msce-agent --once --reenrol enrolled with the credential alone (KeID $keid2)"
        else
                fail "configuration.md's systemd-run recipe: msce-agent --once --reenrol" "KeID '$keid1' -> '$keid2'"
        fi
        check "the recipe left the state directory the service's (nothing there owned by another user)" \
                sh -c "[ -z \"\$(find /var/lib/msce ! -user msce)\" ] || { ls -la /var/lib/msce; false; }"
        check "systemctl start msce-agent after the recipe" systemctl start msce-agent.service
        wait_until 60 status_ready
        check "the service restored the recipe's profile (KeID $keid2), no enrolment" \
                sh -c "status_ready() { systemctl show -P StatusText msce-agent.service | grep -q '^Ready'; }
                       status_ready && [ \"\$(mscectl status --json | jq -r '.state.keID // empty')\" = '$keid2' ]"
        # back to psk_file for the reboot and phase 2
        rm -f /etc/msce/agent.conf.d/90-systest-credential.conf /etc/credstore.encrypted/msce.kpm
        systemctl restart msce-agent.service
        wait_until 60 status_ready
}

prepare_reboot() {
        echo "== prepare the reboot: MEF disabled and stopped"
        systemctl disable --now msce-mef.service 2>&1
        check "msce-agent still enabled for the next boot" sh -c '[ "$(systemctl is-enabled msce-agent.service)" = enabled ]'
        mscectl status --json 2> /dev/null | jq -r '.state.keID // empty' > "$STATE/keid-1"
        echo 2 > "$STATE/phase"
        sync
}

run_phase() {
        setup_gpio_sim
        install_packages || { fail "boot 1" "the packages did not install: nothing else to test"; return; }
        check_device_access
        setup_mef
        # the CSE's user first: msce-agent --check-config checks it exists
        setup_cse
        setup_agent
        enrol
        check_mscectl_leds
        check_sealed
        check_keys
        measure "boot 1, READY after enrolling (psk, TLS 1.3)"
        measure_mef "boot 1, after serving the enrolment"
        check_no_crypto_mapped "after enrolling and sealing with the TPM"
        check_keyring_kept
        check_reload
        check_credential
        prepare_reboot
}
