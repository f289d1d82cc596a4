/* SPDX-License-Identifier: MIT */
#pragma once
/* The fixture of the sealing tests (test-seal-*.c, one executable): suite "seal" with a state
 * directory of its own per test, and swtpm instances on AF_UNIX sockets in their own directories. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/enrol.h"
#include "agent/outcome.h"
#include "agent/sealing.h"
#include "tests/integration/sealing-loop.h"
#include "hw/tpm2.h"
#include "keys/seal.h"
#include "tests/unit/profile-example.h"
#include "util/util.h"

typedef struct swtpm {
        pid_t pid;
        char dir[64];
        char tcti[96];
} swtpm_t;

/* criterion does not run .fini for a skipped test: clean up first */
#define skip(...)                               \
        do {                                    \
                rm_rf(state_dir);               \
                cr_skip_test(__VA_ARGS__);      \
        } while (0)

/* profile_example() for cse_id with random keys; field by field equality. */
void fill(stored_profile_t *p, const char *cse_id, size_t n_targets);
bool same_profile(const stored_profile_t *a, const stored_profile_t *b);

/* The test's state directory, the envelope in it, and files of a directory. */
extern char state_dir[64];
void rm_rf(const char *dir);
void path_in(const char *dir, const char *name, char out[PATH_MAX]);
/* true when needle occurs in any regular file of dir */
bool dir_contains(const char *dir, const uint8_t *needle, size_t n);
unsigned count_entries(const char *dir);
void envelope_read(char **ret, size_t *ret_len);
/* Plain rewrite (no fsync: the corruption loops write hundreds of variants). */
void envelope_write(const void *data, size_t len);
/* name is a program in $PATH */
bool have_program(const char *name);
/* Run argv; stdout into out (NUL-terminated, may be NULL); returns the exit status or -1. */
int run(char *const argv[], char *out, size_t out_size);
/* seal_store()/seal_load() in a child process (agent/sealing.h) */
int store_isolated(const seal_opts_t *o, const stored_profile_t *p, seal_method_t *m);
int load_isolated(const seal_opts_t *o, stored_profile_t *q, seal_method_t *m);
/* p filled for cse_id with n_targets targets and stored with o (in a child when isolated): the
 * envelope's bytes (*ret_len of them). */
char *sealed_envelope(const seal_opts_t *o, bool isolated, stored_profile_t *p, const char *cse_id, size_t n_targets,
                      size_t *ret_len);
/* p stored and loaded again with o, in-process or in a child (isolated): both with method want,
 * and the same profile comes back. */
void round_trip(const seal_opts_t *o, bool isolated, const stored_profile_t *p, seal_method_t want);

/* The swtpm instances of a test (stopped by the fixture), started with swtpm_start() after
 * skip_without_swtpm(); closed_port_pair(): a TCP port pair where nothing answers. */
extern swtpm_t tpm_a, tpm_b;
void skip_without_swtpm(void);
void swtpm_start(swtpm_t *t);
int closed_port_pair(void);
