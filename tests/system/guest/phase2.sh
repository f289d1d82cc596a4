# Boot 2: the same disk and TPM, the MEF disabled (sourced by systest.sh).

check_offline_restore() {
        echo "== after the reboot, without the MEF"
        if wait_until 120 is_active msce-agent.service; then
                pass "after reboot: msce-agent active at boot"
        else
                fail "after reboot: msce-agent active at boot" \
                        "is-active $(systemctl is-active msce-agent.service), status '$(prop msce-agent.service StatusText)'"
        fi
        local mef
        mef=$(systemctl is-active msce-mef.service)
        [ "$mef" != active ] && pass "msce-mef is not running ($mef)" || fail "msce-mef is not running" "it is $mef"
        status_ready && pass "StatusText is Ready offline ($(prop msce-agent.service StatusText))" ||
                fail "StatusText is Ready offline" "StatusText '$(prop msce-agent.service StatusText)'"
        local e
        await 10 "the restored entry in the journal (MESSAGE_ID=$ID_RESTORED)" journal_has "$ID_RESTORED"
        e=$(journal_entry "$ID_RESTORED")
        if [ -n "$e" ] && [ -z "$(journal_entry "$ID_ENROLLED")" ]; then
                pass "journal: restored from the sealed profile (MESSAGE_ID=$ID_RESTORED), no enrolment this boot"
        else
                fail "journal: restored from the sealed profile, no enrolment" \
                        "restored entry: ${e:+yes}${e:-no}; last lines: $(journalctl -b -u msce-agent -o cat | tail -n3 | tr '\n' '|')"
        fi
        local j
        j=$(mscectl status --json 2>&1)
        if echo "$j" | jq -e --arg k "$(cat "$STATE/keid-1" 2> /dev/null)" \
                '.state.state == "ready" and .state.backend == "tpm2" and .state.keID == $k' > /dev/null 2>&1; then
                pass "mscectl status --json: ready, backend tpm2, the KeID of boot 1"
        else
                fail "mscectl status --json: ready, backend tpm2, the KeID of boot 1" "$(echo "$j" | jq -c '.state' 2>&1 | tail -n1)"
        fi
}

check_cse_after_agent() {
        echo "== the CSE unit, ordered after the agent"
        wait_until 30 is_active msce-systest-cse.service
        local cse_start agent_ready
        cse_start=$(prop msce-systest-cse.service ExecMainStartTimestampMonotonic)
        agent_ready=$(prop msce-agent.service ActiveEnterTimestampMonotonic)
        echo "    agent ready at ${agent_ready} us, CSE started at ${cse_start} us (monotonic)"
        if is_active msce-systest-cse.service && [ "${cse_start:-0}" -gt 0 ] && [ "${agent_ready:-0}" -gt 0 ] &&
                [ "$cse_start" -ge "$agent_ready" ]; then
                pass "CSE unit started at boot after msce-agent was ready"
        else
                fail "CSE unit started at boot after msce-agent was ready" \
                        "cse $(systemctl is-active msce-systest-cse.service) at $cse_start, agent ready at $agent_ready"
        fi
        local out
        await 10 "the CSE unit's line in the journal" journal_grep msce-systest-cse.service 'msce:ltk:'
        out=$(journalctl -b -u msce-systest-cse.service -o cat | grep 'msce:ltk:' | tail -n1)
        [ "$out" = "msce:ltk: 32 bytes" ] && pass "CSE read its key at boot ($out)" ||
                fail "CSE read its key at boot" "journal says '$out'"
}

check_led_restored() {
        local chip
        chip=$(cat /run/msce-systest/chip 2> /dev/null)
        check "at boot: /dev/$chip is group gpio, 0660 (udev rule)" \
                sh -c "[ \"\$(stat -c '%G %a' /dev/$chip)\" = 'gpio 660' ]"
        local led=$STATE/led-2.txt sampler t0
        t0=$(now_usec)
        led_sampler "$led" &
        sampler=$!
        await 30 "25 LED samples" led_seen "$led" "$t0" 25 0
        kill "$sampler" 2> /dev/null
        wait "$sampler" 2> /dev/null
        set -- $(led_analyse "$led" "$t0" 99999999999999999)
        [ "$2" -ge 20 ] && [ "$4" = 0 ] && [ "$6" = "$2" ] && pass "LED solid on after the offline restore" ||
                fail "LED solid on after the offline restore" "$*"
}

check_factory_reset() {
        echo "== mscectl factory-reset (MEF still down)"
        local keid0
        keid0=$(cat "$STATE/keid-1" 2> /dev/null)
        check "mscectl factory-reset --yes" mscectl factory-reset --yes
        check "factory-reset: sealed profile and profile.json gone" \
                sh -c '[ ! -e /var/lib/msce/profile.sealed ] && [ ! -e /run/msce/profile.json ]'
        local out
        if out=$(read_key_as "$CSE_USER" 2>&1); then
                fail "factory-reset: the CSE user has no key any more" "read: $out"
        else
                pass "factory-reset: the CSE user has no key any more ($(echo "$out" | tail -n1))"
        fi
        if wait_until 15 status_not_ready; then
                pass "factory-reset: the agent enrols again (state '$(agent_state)')"
        else
                fail "factory-reset: the agent enrols again" "status '$(prop msce-agent.service StatusText)'"
        fi
        echo "== MEF back: the agent enrols with a new KeID"
        systemctl start msce-mef.service
        if wait_until 90 status_ready; then
                local keid1
                keid1=$(jq -r '.state.keID // empty' <<< "$(mscectl status --json 2> /dev/null)")
                [ -n "$keid1" ] && [ "$keid1" != "$keid0" ] &&
                        pass "after factory-reset: Ready again with a new KeID" ||
                        fail "after factory-reset: Ready again with a new KeID" "KeID '$keid0' -> '$keid1'"
        else
                fail "after factory-reset: Ready again with a new KeID" "status '$(prop msce-agent.service StatusText)'"
        fi
        check "after factory-reset: the CSE user reads its new key" read_key_as "$CSE_USER"
}

# ---- packaging (issue 15): purging the packages, the last check of the last boot ----
# apt purges both packages (offline: removal only); their state directories must go, and the
# CSE user must find no key any more: the msce-agent postrm clears the keyring.
check_purge() {
        echo "== apt purge msce-agent msce-mef"
        check "the CSE user reads its key before the purge" read_key_as "$CSE_USER"
        systemctl stop msce-systest-cse.service 2> /dev/null
        check "apt-get purge msce-agent msce-mef" \
                env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o Dpkg::Use-Pty=0 msce-agent msce-mef
        local d
        for d in /var/lib/msce /run/msce /var/lib/msce-mef; do
                [ ! -e "$d" ] && pass "purge: $d removed" || fail "purge: $d removed" "$(ls -A "$d" 2>&1 | tr '\n' ' ')"
        done
        local out
        if out=$(read_key_as "$CSE_USER" 2>&1); then
                fail "purge: the CSE user has no key any more" "read: $out"
        else
                pass "purge: the CSE user has no key any more ($(echo "$out" | tail -n1))"
        fi
}

run_phase() {
        check_offline_restore
        measure "boot 2, READY after the offline restore (tpm2)"
        check_no_crypto_mapped "after the TPM restore"
        check_cse_after_agent
        check_led_restored
        check_factory_reset
        check_purge
        echo done > "$STATE/phase"
}
