/* SPDX-License-Identifier: MIT */
/* mscectl check: the system around the agent: clock, the consumer's keys, TPM, the sealed
 * profile, LEDs, and the agent's own preflight. */
#include "msce-config.h"

#include <keyutils.h>
#include <sys/timex.h>

#include "agent/credential.h"
#include "agent/custody.h"
#include "ctl/check-internal.h"
#include "ctl/runtime.h"
#include "ctl/tpm.h"
#include "hw/gpio.h"
#include "hw/leds.h"
#include "hw/tpm2-names.h"
#include "keys/keyring.h"
#include "keys/seal.h"
#include "util/child.h"

void check_clock(checker_t *c) {
        time_t now = time(NULL), built = (time_t) MSCE_BUILD_TIME;
        char a[32], b[32];
        time_format_utc(now, a);
        time_format_utc(built, b);
        if (now < built) {
                check_report(c, L_FAIL, "set the clock: timedatectl set-ntp true (or date -s)",
                             "clock: %s is before this build (%s): certificates and expiry cannot be checked", a, b);
                return;
        }
        struct timex tx = {};
        if (adjtimex(&tx) == TIME_ERROR) {
                check_report(c, L_WARN, "enable time synchronization: timedatectl set-ntp true",
                             "clock: %s, not synchronized", a);
                return;
        }
        check_report(c, L_OK, NULL, "clock: %s, synchronized", a);
}

/* In a child run as the CSE's user, with a fresh session keyring (so nothing of ours is
 * possessed): read msce:ltk the way docs/cse-integration.md tells a CSE to. The payload is the
 * key's length; the bytes are wiped and never leave the child. */
static int key_read(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        uint8_t buf[KEYRING_LTK_MAX + 1];
        if (max < sizeof(long))
                return -ENOBUFS;
        if (keyctl_join_session_keyring(NULL) < 0 || keyctl_get_persistent((uid_t) -1, KEY_SPEC_SESSION_KEYRING) < 0)
                return negative_errno();
        long ring = keyctl_search(KEY_SPEC_SESSION_KEYRING, "keyring", KEYRING_NAME, 0);
        long key = ring < 0 ? -1 : keyctl_search((key_serial_t) ring, "user", KEYRING_PREFIX KEYRING_LTK, 0);
        long len = key < 0 ? -1 : keyctl_read((key_serial_t) key, (char *) buf, sizeof buf);
        int r = len < 0 ? negative_errno() : 0;
        erase(buf, sizeof buf);
        memcpy(out, &len, sizeof len);
        *out_len = sizeof len;
        return r;
}

/* The key's length, or a negative errno. */
static long key_read_as(uid_t uid, gid_t gid) {
        long len = -1;
        size_t n = 0;
        int r = child_run_as(uid, gid, key_read, NULL, (uint8_t *) &len, sizeof len, &n, 0);
        if (r < 0)
                return r;
        return n == sizeof len && len >= 0 ? len : -EIO;
}

void check_service_user(checker_t *c, const agent_config_t *cfg) {
        char fix[512];
        uid_t uid;
        gid_t gid;
        int r = user_resolve(cfg->service_user, &uid, &gid);
        if (r < 0) {
                snprintf(fix, sizeof fix, "create the CSE's user %s, or set [consumer] user", cfg->service_user);
                check_report(c, L_FAIL, fix, "[consumer] user: %s: %s", cfg->service_user,
                             r == -ESRCH ? "no such user" : strerror(-r));
                return;
        }
        if (uid == 0) {
                check_report(c, L_FAIL, "run the CSE as its own user and name it in [consumer] user",
                             "[consumer] user: %s is root: the keys must go to the CSE's own user", cfg->service_user);
                return;
        }
        check_report(c, L_OK, NULL, "[consumer] user: %s (uid %u)", cfg->service_user, (unsigned) uid);

        if (geteuid() != 0) {
                check_report(c, L_WARN, "run mscectl check as root", "keys: not checked (needs root)");
                return;
        }
        _cleanup_keyring_names_ char **names = NULL;
        r = keyring_list(uid, &names);
        if (r == -ENOKEY) {
                check_report(c, L_WARN, "start msce-agent: it files the keys once enrolled",
                             "keys: none filed for %s yet", cfg->service_user);
                return;
        }
        if (r < 0) {
                check_report(c, L_FAIL, NULL, "keys: cannot list the keys of %s: %s", cfg->service_user,
                             keyring_strerror(r));
                return;
        }
        size_t n = 0;
        while (names[n])
                n++;
        long len = key_read_as(uid, gid);
        if (len < 0) {
                check_report(c, L_FAIL, "restart msce-agent.service: it files the keys again",
                             "keys: %zu filed, but %s cannot read " KEYRING_PREFIX KEYRING_LTK ": %s", n,
                             cfg->service_user, strerror((int) -len));
                return;
        }
        check_report(c, L_OK, NULL, "keys: %zu filed; %s reads " KEYRING_PREFIX KEYRING_LTK " (%ld bytes)", n,
                     cfg->service_user, len);
}

void check_tpm(checker_t *c, const agent_config_t *cfg) {
        if (cfg->seal_backend == SEAL_HOST) {
                check_report(c, L_OK, NULL, "[seal] backend: host (no TPM used)");
                return;
        }
        bool required = cfg->seal_backend == SEAL_TPM2;
        int pcrs = 0, r = ctl_tpm_probe(cfg->tcti, cfg->pcrs, &pcrs);
        if (r == -ETIMEDOUT) {
                check_report(c, L_FAIL, "check the TPM: msce-agent does not enrol until it answers",
                             "TPM: the TPM at %s did not answer within %u s", cfg->tcti, CTL_TPM_TIMEOUT_S);
                return;
        }
        if (r == -ECHILD || r == -EMSGSIZE) {
                check_report(c, L_FAIL, NULL, "TPM: the process asking the TPM at %s ended without an answer", cfg->tcti);
                return;
        }
        if (r == -EOPNOTSUPP) {
                check_report(c, required ? L_FAIL : L_OK, "set [seal] backend = host or auto",
                             "[seal] backend: %s, but this build has no TPM support%s",
                             seal_backend_to_string(cfg->seal_backend), required ? "" : ": the host key is used");
                return;
        }
        if (r == -EACCES && geteuid() != 0) {
                check_report(c, L_WARN, "run mscectl check as root", "TPM: %s not checked (needs root)", cfg->tcti);
                return;
        }
        if (r < 0 && r != -ENODEV) {
                /* there, but failing: the agent does not enrol (agent/enrol.c), under auto too */
                check_report(c, L_FAIL, r == -EBUSY ? "stop the other program that has the TPM open, or use device:/dev/tpmrm0"
                                                    : "check the TPM: msce-agent does not enrol until it answers",
                             "TPM: %s fails: %s", cfg->tcti, strerror(-r));
                return;
        }
        if (r < 0) {
                if (required)
                        check_report(c, L_FAIL, "check that the TPM is enabled and [seal] tcti names it",
                                     "TPM: none answers on %s: %s", cfg->tcti, strerror(-r));
                else
                        check_report(c, L_WARN, "nothing to do when this gateway has no TPM",
                                     "TPM: none answers on %s: the profile is sealed with the host key", cfg->tcti);
                return;
        }
        /* as the agent's enrolment checks them: it stops with a configuration error */
        r = pcrs;
        if (r == -ENXIO)
                check_report(c, L_FAIL, "set [seal] pcrs to PCRs of an active bank (tpm2_getcap pcrs), or allocate the bank",
                             "[seal] pcrs = %s: the TPM at %s has not all of them active", cfg->pcrs, cfg->tcti);
        else if (r < 0)
                check_report(c, L_FAIL, NULL, "TPM: cannot read the active PCR banks on %s: %s", cfg->tcti, strerror(-r));
        else
                check_report(c, L_OK, NULL, "TPM: answers on %s%s%s", cfg->tcti, cfg->pcrs && cfg->pcrs[0] ? ", pcrs " : "",
                             cfg->pcrs && cfg->pcrs[0] ? cfg->pcrs : "");
        if (r < 0)
                return;
        if (strncmp(cfg->tcti, "device:", 7) == 0 && cfg->tcti[7] == '/')
                check_device(c, "TPM", cfg->tcti + 7,
                             "make the agent's user a member of the TPM device's group (tss): systemd-sysusers");
}

/* seal_load() failed with r: the agent's words for it (agent/custody.h, with the TPM's response
 * code rc when the TPM failed with one, as the child that unsealed reports it), and what the
 * agent does about it (agent/states.c): a profile it cannot use (corrupted, its key gone) it enrols again
 * over; a failure it cannot tell from a passing one (the TPM refusing, not answering, a read
 * error) it retries with backoff and does not enrol, so it stays without a profile until the
 * cause goes; a host.key readable by others stops it. */
static void check_sealed_failure(checker_t *c, const agent_config_t *cfg, int r, uint32_t rc) {
        char err[128];
        tpm2_rc_describe(rc, err, sizeof err);
        stored_profile_t none = {};
        custody_info_t ci;
        (void) custody_restore_finish(cfg, r, err, &none, _SEAL_METHOD_INVALID, NULL, &ci);
        const char *why = ci.failure.reason;
        switch (ci.failure.outcome) {
        case OUTCOME_CONFIG:
                check_report(c, L_FAIL, "correct it: msce-agent stops with a configuration error until then",
                             "sealed profile: %s", why);
                return;
        case OUTCOME_FAILED:
                check_report(c, L_FAIL,
                             err[0] ? "clear what the TPM's code names (troubleshooting.md: an owner password, a full "
                                      "TPM); msce-agent does not enrol again: it retries the unseal with backoff (BACKOFF)"
                                    : "msce-agent does not enrol again: it retries the restore with backoff (BACKOFF) "
                                      "until this is fixed",
                             "sealed profile: %s", why);
                return;
        default:
                check_report(c, L_WARN, "nothing: the agent enrols again (mscectl factory-reset removes it now)",
                             "sealed profile: %s", why);
        }
}

void check_sealed(checker_t *c, const agent_config_t *cfg) {
        seal_opts_t so = credential_seal_opts(cfg);
        ctl_sealed_t p;
        uint32_t rc;
        int r = ctl_sealed_read(&so, &p, &rc);
        if (r == -ENOENT) {
                check_report(c, L_WARN, "start msce-agent: it enrols with the MEF",
                             "sealed profile: none in %s (not enrolled yet)", cfg->state_dir);
                return;
        }
        if (r == -EACCES && geteuid() != 0) {
                check_report(c, L_WARN, "run mscectl check as root", "sealed profile: not checked (needs root)");
                return;
        }
        if (r == -ETIMEDOUT) {
                check_report(c, L_FAIL,
                             "msce-agent does not enrol again: it retries the restore with backoff (BACKOFF) until "
                             "the TPM answers",
                             "sealed profile: not opened: the TPM at %s did not answer within %u s", cfg->tcti,
                             CTL_TPM_TIMEOUT_S);
                return;
        }
        if (r < 0) {
                check_sealed_failure(c, cfg, r, rc);
                return;
        }
        char when[32], rel[48];
        time_format_utc(p.exp_t, when);
        ctl_time_relative(p.exp_t, time(NULL), rel);
        if (p.expired)
                check_report(c, L_FAIL, "start msce-agent (systemctl restart msce-agent): it enrols again",
                             "sealed profile: KeID %s expired %s (%s)", p.ke_id, when, rel);
        else if (!streq(p.node_id, cfg->node_id) || !streq(p.mef_uri, cfg->mef_uri))
                check_report(c, L_WARN, "nothing: the agent enrols again with this configuration",
                             "sealed profile: for node %s at %s, not this configuration's", p.node_id, p.mef_uri);
        else
                check_report(c, L_OK, NULL, "sealed profile: KeID %s, expires %s (%s), %s backend", p.ke_id, when, rel,
                             seal_method_to_string(p.method) ?: "?");
}

void check_led(checker_t *c, const char *key, const char *spec) {
        char what[32];
        snprintf(what, sizeof what, "[leds] %s", key);
        led_spec_t ls;
        const char *why = NULL;
        int r = leds_parse_spec(spec, &ls, &why);
        if (r == 0)
                return; /* no LED */
        if (r < 0) {
                check_report(c, L_FAIL, "write gpiochipN:OFFSET[:active-low] or name:LINE[:active-low]", "%s: %s: %s",
                             what, spec, why ?: "invalid");
                return;
        }
#if !HAVE_GPIOD
        check_report(c, L_FAIL, "remove the [leds] settings, or use a build with libgpiod",
                     "%s: %s, but this build has no LED support", what, spec);
        return;
#else
        const char *devfix = "make the agent's user a member of group gpio (systemd-sysusers, udev/60-msce.rules)";
        char path[64];
        if (ls.chip[0]) {
                snprintf(path, sizeof path, "/dev/%s", ls.chip);
                check_device(c, what, path, devfix);
                return;
        }
        char chip[32];
        r = gpio_line_chip(ls.name, chip, sizeof chip);
        if (r == -ENOENT) {
                check_report(c, L_FAIL, "gpioinfo lists the line names", "%s: no GPIO line is named %s", what, ls.name);
                return;
        }
        if (r < 0) {
                check_report(c, L_FAIL, devfix, "%s: cannot look for line %s: %s", what, ls.name, strerror(-r));
                return;
        }
        snprintf(path, sizeof path, "/dev/%s", chip);
        check_device(c, what, path, devfix);
#endif
}

void check_preflight(checker_t *c, agent_config_t *cfg) {
        custody_info_t ci;
        cfg->check_only = true; /* a Kpm only in the credential store is msce-agent.service's */
        if (custody_preflight(cfg, c->user, &ci) < 0)
                check_report(c, L_FAIL, "correct what the message names; msce-agent --check-config says the same",
                             "preflight: %s", ci.failure.reason);
        else
                check_report(c, L_OK, NULL, "preflight: what msce-agent checks before it enrols passes");
}
