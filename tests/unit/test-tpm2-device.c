/* SPDX-License-Identifier: MIT */
/* hw/tpm2.c's reading of a device: TCTI whose node is there but not ours to open, and what
 * keys/seal.c's method auto makes of it: the TPM's error, not a seal with the host key. As root,
 * each case runs in a child that drops to uid/gid 65534 (nobody): root would open a mode 0000
 * node. No TPM is needed: the node is a plain file, refused before tss2 opens it. The agent says
 * so in words of its setup (agent/enrol.c, agent/custody.c: enrolling, sealing, unsealing; a TPM
 * busy while sealing is a retry). And a fake TPM on the cmd TCTI: answering about another
 * capability than asked, and counting the connections the enrolment's probe makes. */
#include "msce-config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/custody.h"
#include "agent/enrol.h"
#include "agent/outcome.h"
#include "hw/tpm2-names.h"
#include "hw/tpm2.h"
#include "keys/seal.h"
#include "tests/unit/profile-example.h"
#include "util/util.h"

#if HAVE_TPM2
#define NOBODY 65534

static char dir[64], node[96], tcti[112];

static void setup(void) {
        strcpy(dir, "/tmp/msce-tpm2-device-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        cr_assert_eq(chmod(dir, 0755), 0);
        snprintf(node, sizeof node, "%s/tpm0", dir);
        snprintf(tcti, sizeof tcti, "device:%s", node);
        int fd = open(node, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        close(fd);
        cr_assert_eq(chmod(node, 0), 0);
        if (geteuid() == 0) /* the host key's directory: the agent's own */
                cr_assert_eq(chown(dir, NOBODY, NOBODY), 0);
}

static void teardown(void) {
        char p[128];
        static const char *const names[] = { "tpm0", SEAL_ENVELOPE_NAME, SEAL_HOST_KEY_NAME };
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
                snprintf(p, sizeof p, "%s/%s", dir, names[i]);
                (void) unlink(p);
        }
        (void) rmdir(dir);
}

TestSuite(tpm2_device, .init = setup, .fini = teardown);

/* fn's result (a -errno, 0..-125) as seen from a process without the privilege to open node. */
static int unprivileged(int (*fn)(void)) {
        if (geteuid() != 0)
                return fn();
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(255);
                _exit(-fn() & 0x7f);
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 255, "status %d", status);
        return -WEXITSTATUS(status);
}

static int probe(void) {
        return tpm2_probe(tcti);
}

static int store_auto(void) {
        stored_profile_t p;
        profile_example(&p, 1);
        seal_opts_t o = { .state_dir = dir, .method = SEAL_METHOD_AUTO, .tcti = tcti };
        return seal_store(&o, &p, NULL);
}

Test(tpm2_device, node_not_ours_is_not_absent) {
        cr_assert_eq(unprivileged(probe), -EACCES);
}

Test(tpm2_device, auto_does_not_seal_with_the_host_key) {
        cr_assert_eq(unprivileged(store_auto), -EACCES);
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, SEAL_ENVELOPE_NAME);
        cr_assert_eq(access(p, F_OK), -1, "%s written", p);
        snprintf(p, sizeof p, "%s/%s", dir, SEAL_HOST_KEY_NAME);
        cr_assert_eq(access(p, F_OK), -1, "%s written", p);
}

/* A configuration with tcti and dir, and seal's lines in [seal]. */
static int config_seal(agent_config_t *cfg, const char *seal) {
        char text[512], err[512];
        snprintf(text, sizeof text,
                 "[node]\nid = urn:dev:ops:gw-tpm-access\n[mef]\nuri = https://127.0.0.1:1\npsk_identity = kpm-access\n"
                 "psk_file = /nonexistent/kpm.hex\n[seal]\n%stcti = %s\nstate_dir = %s\n",
                 seal, tcti, dir);
        return agent_config_parse_buffer("t.conf", text, strlen(text), AGENT_CONFIG_NO_SECRETS, cfg, err, sizeof err);
}

static int config_auto(agent_config_t *cfg) {
        return config_seal(cfg, "backend = auto\n");
}

/* The agent's enrolment (backend auto) stops before it sends anything, with a configuration
 * error that names the node and the uid: not a retry, not an enrolment sealed with the host key. */
static int enrol_auto(void) {
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        if (config_auto(&cfg) < 0)
                return -EINVAL;
        stored_profile_t p;
        exchange_info_t info;
        char want[256];
        snprintf(want, sizeof want, "not enrolling: the TPM %s is not accessible to uid %u: ", node, (unsigned) geteuid());
        int r = enrol_run(&cfg, NULL, &p, &info);
        return r == -EACCES && info.failure.outcome == OUTCOME_CONFIG && strstr(info.failure.reason, want) ? 0 : -EPROTO;
}

Test(tpm2_device, enrolment_stops_as_a_configuration_error) {
        cr_assert_eq(unprivileged(enrol_auto), 0);
}

/* An unseal that met the node so (a TPM profile under auto): the TPM's access, retried (udev
 * may not have given the node its group yet at boot), not "cannot read the sealed profile". */
static int restore_denied(void) {
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        if (config_auto(&cfg) < 0)
                return -EINVAL;
        stored_profile_t p = {};
        custody_info_t ci;
        char want[256];
        snprintf(want, sizeof want, "cannot unseal the profile: the TPM %s is not accessible to uid %u: ", node,
                 (unsigned) geteuid());
        int r = custody_restore_finish(&cfg, -EACCES, "", &p, _SEAL_METHOD_INVALID, NULL, &ci);
        return r == -EACCES && ci.failure.outcome == OUTCOME_FAILED && strstr(ci.failure.reason, want) ? 0 : -EPROTO;
}

Test(tpm2_device, restore_names_the_tpm_s_access) {
        cr_assert_eq(unprivileged(restore_denied), 0);
}

/* A seal after an enrolment that met the node so: the TPM's access, a configuration error (the
 * enrolment's probe found the TPM), not "cannot write the sealed profile". */
static int store_denied(void) {
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        if (config_auto(&cfg) < 0)
                return -EINVAL;
        stored_profile_t p;
        profile_example(&p, 1);
        custody_info_t ci;
        char want[256];
        snprintf(want, sizeof want, "cannot seal the profile: the TPM %s is not accessible to uid %u: ", node,
                 (unsigned) geteuid());
        int r = custody_store_finish(&cfg, -EACCES, "", 0, &p, _SEAL_METHOD_INVALID, NULL, &ci);
        return r == -EACCES && ci.failure.outcome == OUTCOME_CONFIG && !ci.sealed && strstr(ci.failure.reason, want)
                       ? 0
                       : -EPROTO;
}

Test(tpm2_device, store_names_the_tpm_s_access) {
        cr_assert_eq(unprivileged(store_denied), 0);
}

/* A seal that found the TPM held by another process (/dev/tpmN): a retry that says so. */
Test(tpm2_device, store_busy_is_a_retry) {
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        cr_assert_eq(config_auto(&cfg), 0);
        stored_profile_t p;
        profile_example(&p, 1);
        custody_info_t ci;
        char want[256];
        snprintf(want, sizeof want, "the TPM at %s is busy (another process has it open) while sealing the profile", tcti);
        cr_assert_eq(custody_store_finish(&cfg, -EBUSY, "", 0, &p, _SEAL_METHOD_INVALID, NULL, &ci), -EBUSY);
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED);
        cr_assert_str_eq(ci.failure.reason, want);
        cr_assert(!ci.sealed);
}

Test(tpm2_device, no_node_is_no_tpm) {
        snprintf(tcti, sizeof tcti, "device:%s/tpm-none", dir);
        cr_assert_eq(unprivileged(probe), -ENODEV);
}
/* A "TPM" behind tss2's cmd TCTI (a program on its stdin and stdout, one per connection) that
 * logs each connection and each command's code (for GetCapability, with the capability asked),
 * answers the probe's question (TPM2_CAP_TPM_PROPERTIES) with TPM2_PT_MANUFACTURER "IBM", the
 * question about the PCR banks (TPM2_CAP_PCRS) with pcrs_answer (printf octal escapes), and
 * refuses everything else (TPM_RC_FAILURE). tcti names it; *ret_log is the log's path. */
static void fake_tpm(const char *pcrs_answer, char *log, size_t log_size) {
        char script[sizeof dir + 16];
        snprintf(script, sizeof script, "%s/fake-tpm", dir);
        snprintf(log, log_size, "%s/commands", dir);
        FILE *f = fopen(script, "we");
        cr_assert_not_null(f);
        fprintf(f, "echo open >> %s\n"
                   "while h=$(head -c 10 | od -An -tx1 -v | tr -d ' \\n'); [ ${#h} -eq 20 ]; do\n"
                   "  b=$(head -c $((0x$(echo $h | cut -c5-12) - 10)) | od -An -tx1 -v | tr -d ' \\n')\n"
                   "  cc=$(echo $h | cut -c13-20); [ $cc = 0000017a ] && cc=$cc:$(echo $b | cut -c1-8)\n"
                   "  echo $cc >> %s\n"
                   "  case $cc in\n"
                   "  0000017a:00000006) printf '\\200\\001\\000\\000\\000\\033\\000\\000\\000\\000\\000\\000\\000\\000"
                   "\\006\\000\\000\\000\\001\\000\\000\\001\\005\\111\\102\\115\\000';;\n"
                   "  0000017a:00000005) printf '%s';;\n"
                   "  *) printf '\\200\\001\\000\\000\\000\\012\\000\\000\\001\\001';;\n"
                   "  esac\n"
                   "done\n",
                log, log, pcrs_answer);
        cr_assert_eq(fclose(f), 0);
        snprintf(tcti, sizeof tcti, "cmd:sh %s", script);
        setenv("TSS2_LOG", "all+none", 1); /* the refusals are expected */
}

/* The fake's log, and the fake and its log gone; skips when tss2 has no cmd TCTI (r). */
static char *fake_tpm_done(const char *log, int r) {
        char script[sizeof dir + 16];
        snprintf(script, sizeof script, "%s/fake-tpm", dir);
        (void) unlink(script);
        char *commands = NULL;
        int q = file_read_all(log, 4096, &commands, NULL);
        (void) unlink(log);
        if (r == -ENODEV || r == -EOPNOTSUPP) {
                free(commands);
                teardown(); /* criterion does not run .fini for a skipped test */
                cr_skip_test("tss2's cmd TCTI (libtss2-tcti-cmd) not installed");
        }
        cr_assert_eq(q, 0);
        return commands;
}

/* The answer about the PCR banks: TPM_ST_NO_SESSIONS, 99 bytes, TPM_RC_SUCCESS, moreData NO, a
 * list of 20 handles, TPM2_CAP_HANDLES: no list of banks (and more entries than a
 * TPML_PCR_SELECTION has), -EIO, never read as one. */
Test(tpm2_device, an_answer_about_another_capability_is_no_list_of_banks) {
        char log[sizeof dir + 16];
        fake_tpm("\\200\\001\\000\\000\\000\\143\\000\\000\\000\\000\\000\\000\\000\\000\\001\\000\\000\\000\\024"
                 "\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000"
                 "\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000"
                 "\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000"
                 "\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000",
                 log, sizeof log);
        int pcrs = 0, r = tpm2_probe_pcrs(tcti, "sha256:7", &pcrs);
        _cleanup_free_ char *commands = fake_tpm_done(log, r);
        cr_assert_eq(r, 0, "the probe's answer is one");
        cr_assert_eq(pcrs, -EIO);
        cr_assert_str_eq(commands, "open\n0000017a:00000006\n0000017a:00000005\n");
}

/* No PCRs to check: the TPM is probed, and not asked about its banks. */
Test(tpm2_device, no_pcrs_are_not_asked_about) {
        char log[sizeof dir + 16];
        fake_tpm("", log, sizeof log);
        int pcrs = 1, r = tpm2_probe_pcrs(tcti, "", &pcrs);
        _cleanup_free_ char *commands = fake_tpm_done(log, r);
        cr_assert_eq(r, 0);
        cr_assert_eq(pcrs, 0);
        cr_assert_str_eq(commands, "open\n0000017a:00000006\n");
}

/* The agent's enrolment (backend tpm2, [seal] pcrs = sha256:7) asks a TPM whose sha256 bank has
 * PCRs 0-6 only: a configuration error before anything is sent, the TPM probed and asked about
 * its banks on one connection. The answer: TPM_ST_NO_SESSIONS, 25 bytes, TPM_RC_SUCCESS,
 * moreData NO, TPM2_CAP_PCRS, count 1, TPM2_ALG_SHA256, sizeofSelect 3, 0x7f 0 0. */
Test(tpm2_device, enrolment_probes_and_checks_the_pcrs_on_one_connection) {
        char log[sizeof dir + 16];
        fake_tpm("\\200\\001\\000\\000\\000\\031\\000\\000\\000\\000\\000\\000\\000\\000\\005\\000\\000\\000\\001"
                 "\\000\\013\\003\\177\\000\\000",
                 log, sizeof log);
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        cr_assert_eq(config_seal(&cfg, "backend = tpm2\npcrs = sha256:7\n"), 0);
        stored_profile_t p;
        exchange_info_t info;
        int r = enrol_run(&cfg, NULL, &p, &info);
        _cleanup_free_ char *commands = fake_tpm_done(log, r);
        cr_assert_eq(r, -ENXIO, "%d: %s", r, info.failure.reason);
        cr_assert_eq(info.failure.outcome, OUTCOME_CONFIG);
        cr_assert_not_null(strstr(info.failure.reason, "[seal] pcrs = sha256:7: the TPM at cmd:sh "),
                           "%s", info.failure.reason);
        cr_assert_not_null(strstr(info.failure.reason, " has not all of them active"), "%s", info.failure.reason);
        cr_assert_str_eq(commands, "open\n0000017a:00000006\n0000017a:00000005\n", "one connection");
}

/* The same on the cmd TCTI (no resource manager, so a seal first flushes what a dead process
 * left): a TPM answering "which transient objects / sessions are loaded" with its properties,
 * TPM2_CAP_TPM_PROPERTIES, lists no handle to flush. The fake logs each command's code and
 * refuses all but GetCapability (TPM_RC_FAILURE), so the seal stops at CreatePrimary. */
Test(tpm2_device, leftovers_are_not_read_from_an_answer_about_another_capability) {
        char script[sizeof dir + 16], log[sizeof dir + 16];
        snprintf(script, sizeof script, "%s/fake-tpm", dir);
        snprintf(log, sizeof log, "%s/commands", dir);
        FILE *f = fopen(script, "we");
        cr_assert_not_null(f);
        /* per command: the 10-byte header (tag, size, code), the rest of it; GetCapability's
         * answer: TPM_ST_NO_SESSIONS, 35 bytes, success, moreData NO, TPM2_CAP_TPM_PROPERTIES,
         * count 2: TPM2_PT_MANUFACTURER "IBM", TPM2_PT_VENDOR_STRING_1 "SW  " */
        fprintf(f, "while h=$(head -c 10 | od -An -tx1 -v | tr -d ' \\n'); [ ${#h} -eq 20 ]; do\n"
                   "  head -c $((0x$(echo $h | cut -c5-12) - 10)) > /dev/null\n"
                   "  cc=$(echo $h | cut -c13-20); echo $cc >> %s\n"
                   "  if [ $cc = 0000017a ]; then\n"
                   "    printf '\\200\\001\\000\\000\\000\\043\\000\\000\\000\\000\\000\\000\\000\\000\\006"
                   "\\000\\000\\000\\002\\000\\000\\001\\005\\111\\102\\115\\000\\000\\000\\001\\006"
                   "\\123\\127\\040\\040'\n"
                   "  else printf '\\200\\001\\000\\000\\000\\012\\000\\000\\001\\001'; fi\n"
                   "done\n",
                log);
        cr_assert_eq(fclose(f), 0);
        snprintf(tcti, sizeof tcti, "cmd:sh %s", script);
        cr_assert_not(tpm2_tcti_is_resource_manager(tcti));
        setenv("TSS2_LOG", "all+none", 1); /* the refusal is expected */
        static const uint8_t secret[32] = { 1 };
        uint8_t *blob = NULL;
        size_t blob_len = 0;
        int r = tpm2_seal(tcti, NULL, secret, sizeof secret, &blob, &blob_len);
        (void) unlink(script);
        _cleanup_free_ char *commands = NULL;
        int q = file_read_all(log, 4096, &commands, NULL);
        (void) unlink(log);
        if (r == -ENODEV || r == -EOPNOTSUPP) {
                teardown();
                cr_skip_test("tss2's cmd TCTI (libtss2-tcti-cmd) not installed");
        }
        cr_assert_lt(r, 0, "the fake refuses CreatePrimary");
        cr_assert_null(blob);
        cr_assert_eq(q, 0);
        /* GetCapability for transient objects, loaded and saved sessions, then CreatePrimary:
         * no FlushContext (0x165) of a property read as a handle */
        cr_assert_str_eq(commands, "0000017a\n0000017a\n0000017a\n00000131\n");
}
#else
Test(tpm2_device, no_tpm_support) {
        cr_skip_test("built without TPM support");
}
#endif
