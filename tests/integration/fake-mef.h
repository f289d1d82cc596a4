/* SPDX-License-Identifier: MIT */
#pragma once
/* Between fake-mef.c (the server) and fake-mef-answers.c (what each scenario answers). */
/* Test tool: a scripted MEF for msce-agent's abuse tests (agent-abuse.sh). A proto/tls server in
 * psk mode that accepts connections, reads one enrolment request and answers it with the response
 * of a named scenario: a valid profile, or one that breaks a rule of the protocol (limits,
 * framing, headers, JSON, key confirmation, status codes, timing).
 *
 *   fake-mef SCENARIO --psk-identity ID --psk-hex-file FILE [--fqdn HOST] [--base /msce]
 *            [--port N] [-n COUNT] [--secrets-out FILE] [--status-polls POLL,...]
 *   fake-mef --list
 *
 * Listens on 127.0.0.1:PORT (0, the default: the kernel picks one) and prints "port=N" first.
 * The keID of a profile is computed like the MEF does (tls_conn_export + kdf_split_ekm with
 * --fqdn), so a scenario can send the right one or a wrong one. --secrets-out FILE (0600) gets
 * one line per key the agent may hold ("ke HEX", "ltk HEX", "kpsa KPSAID HEX"), for the test's
 * leak scan and key comparison. Exits 0 once COUNT connections were served as scripted (a peer
 * that gives up early is no error), 1 when a handshake or the request was not what an agent
 * sends, 2 on usage errors. Scenario status-polls (for a daemon, -n 1 + the number of POLLs)
 * answers the enrolment with a profile of poll 11, then each connection after it with a status
 * check of that KeID, answered active with the next POLL (a raw JSON value), or, for a POLL of
 * "500", 500/5000 without Retry-After, of "503:N", 503/5000 with Retry-After: N; and prints
 * "status poll=POLL" for each on stdout. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "keys/kdf.h"
#include "proto/http.h"
#include "proto/msg.h"
#include "proto/exchange.h"
#include "tests/integration/test-psk.h"
#include "util/util.h"

#define IO_TIMEOUT_USEC (10 * 1000 * 1000ULL)   /* handshake, request, normal answer */
#define HOLD_TIMEOUT_USEC (30 * 1000 * 1000ULL) /* silent scenarios: wait this long for the peer */
#define DRIP_INTERVAL_MSEC 100
#define REQUEST_MAX (HTTP_HEAD_MAX + HTTP_BODY_MAX)
#define CSE_BASE "https://in.example.net:8443/~/in-cse/in-name"

typedef enum scenario_id {
        S_VALID,
        S_VALID_LTK,
        S_VALID_HOLD,
        S_WRONG_KEID,
        S_KEID_FQDN,
        S_HEAD_8K,
        S_HEAD_8K_1,
        S_BODY_64K,
        S_BODY_64K_1,
        S_TRUNCATED,
        S_CLOSE,
        S_CHUNKED,
        S_CHUNK_BAD_SIZE,
        S_CHUNK_TOO_LARGE,
        S_NO_CONTENT_LENGTH,
        S_TWO_CONTENT_LENGTHS,
        S_NO_RSC,
        S_RSC_MISMATCH,
        S_WRONG_RI,
        S_BAD_JSON,
        S_NO_CSEID,
        S_POLL_STRING,
        S_TOO_MANY_TARGETS,
        S_LTK_8,
        S_EXPIRED,
        S_BUSY_503,
        S_RATE_429,
        S_ERROR_500,
        S_FORBIDDEN_403,
        S_BAD_REQUEST_400,
        S_GARBAGE,
        S_NOT_TLS,
        S_SILENT,
        S_DRIP,
        S_EXTRA_BYTES,
        S_CONTINUE_100,
        S_CSEID_SHELL,
        S_CSEID_NO_SLASH,
        S_CSEID_SPACE,
        S_TARGET_TRAVERSAL,
        S_KPSAID_PASSWD,
        S_CSEBASE_NO_URI,
        S_KEID_UPPER,
        S_BUSY_503_HUGE,
        S_BUSY_503_30_DIGITS,
        S_BUSY_503_ZERO,
        S_BUSY_503_DATE,
        S_CHUNKED_MAX,
        S_CHUNKED_MAX_1,
        S_BUSY_503_NO_RI,
        S_BUSY_503_WRONG_RI,
        S_ERROR_500_NO_RI,
        S_POLL_HUGE,
        S_POLL_ZERO,
        S_STATUS_POLLS,
        _S_MAX,
} scenario_id_t;

typedef enum delivery {
        SEND_ALL,        /* one write, close_notify, close */
        SEND_DRIP,       /* one byte per DRIP_INTERVAL_MSEC */
        SEND_THEN_HOLD,  /* write, then keep the connection open until the peer closes */
} delivery_t;

typedef struct fake {
        scenario_id_t scenario;
        test_psk_t psk;
        const char *fqdn;
        const char *base;
        const char *secrets_out;
        char *polls[16];          /* status-polls: --status-polls split */
        unsigned n_polls;
        unsigned served;          /* connections answered as scripted so far */
        char ke_id[KDF_KEID_MAX + 1]; /* status-polls: the KeID enrolled */
} fake_t;

/* What one connection knows once the request is in. Holds key bytes: wiped. */
typedef struct exch {
        char ri[128];
        char ke_id[KDF_KEID_MAX + 1];
        char rel[2 * KDF_REL_KEID_LEN + 1];
        uint8_t ke[KDF_KE_LEN];
        uint8_t ltk[KDF_KE_LEN];  /* a transported ltk (valid-ltk) */
        const char *status_poll;  /* status-polls: a status check, answered with this poll */
} exch_t;

/* A growable output buffer; sticky out-of-memory. Wiped on free (bodies may carry an ltk). */
typedef struct buf {
        char *data;
        size_t len, size;
        bool oom;
} buf_t;

/* What build() put in the profile, for secrets_write() */
typedef struct prof {
        const char *ke_id;   /* NULL: the right one */
        bool no_cse_id;
        const char *cse_id;  /* NULL: /mn-cse-fake */
        const char *cse_base; /* NULL: CSE_BASE */
        const char *target_id, *kpsa_id; /* of the first target; NULL: the right ones */
        const char *poll;    /* raw JSON value; NULL: 3600 */
        unsigned n_targets;
        size_t ltk_len;      /* 0: Ke is the Long Term Key (no ltk member) */
        bool expired;
        size_t pad;          /* > 0: an ignored member "pad" with that many characters */
} prof_t;

void buf_done(buf_t *b);
void _printf_(2, 3) buf_printf(buf_t *b, const char *fmt, ...);
/* The response of f->scenario to the request of e into out; what its profile holds in *ret_prof. */
int build(const fake_t *f, exch_t *e, buf_t *out, prof_t *ret_prof);
