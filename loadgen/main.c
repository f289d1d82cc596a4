/* SPDX-License-Identifier: MIT */
/* msce-loadgen: simulated gateways against an MEF, to size a deployment (docs/msce-loadgen.1.scd). */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <getopt.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <wolfssl/ssl.h>

#include "loadgen/loadgen.h"
#include "msce-config.h"
#include "proto/tls.h"
#include "util/json-alloc.h"

#define EXIT_LOST 1
#define EXIT_USAGE 2
#define PROCS_MAX 16u
#define PIDS_MAX 64u
#define CREDS_MAX 1000000u
/* room for CREDS_MAX of the longest lines the rules allow (255 + 127 + 128 characters, two
 * spaces, the line end): a file within them is never refused for its size */
#define FILE_MAX (CREDS_MAX * 514u)
_Static_assert(MSG_ID_MAX + TLS_PSK_ID_MAX + 2 * MSG_KEY_MAX + 3 <= 514, "FILE_MAX");

static void usage(FILE *f) {
        fprintf(f, "Usage: msce-loadgen [OPTIONS] --gateways FILE https://MEF[:PORT]/BASE\n\n"
                   "Simulated gateways run the real enrolment exchanges against an MEF: enrol (TLS PSK, key\n"
                   "confirmation), a status check and one credential fetch per target, with the agent's backoff.\n\n"
                   "  --gateways FILE         lines \"NODE_ID PSK_IDENTITY KPM_HEX\" (mode 0600), one a node\n"
                   "  --allow-duplicate-nodes a node on several lines: as many gateways competing for its\n"
                   "                          enrolment (complete counts gateways, the MEF keeps one)\n"
                   "  --targets FILE          lines \"TARGET_ID PSK_IDENTITY KEY_HEX\": fetch as these targets\n"
                   "  --count N               the first N gateways of the file (default: all)\n"
                   "  --spread SECONDS        power-on times spread uniformly over SECONDS (default 0: all at once)\n"
                   "  --concurrency N         connections in flight at most (default 0: no limit)\n"
                   "  --procs N               generator processes (default 1; at most --concurrency)\n"
                   "  --timeout SECONDS       gateways not done by then are lost (default 300)\n"
                   "  --exchange-timeout S    one exchange, connect to answer (default 30)\n"
                   "  --backoff-min MS, --backoff-max MS, --retry-after-max S   (defaults as msce-agent: 1000,\n"
                   "                          600000, 3600)\n"
                   "  --fqdn NAME             MEF-FQDN of the KeIDs (default: the URI's host)\n"
                   "  --duration SECONDS      sustained mode (benchmarks): --concurrency gateways enrol again and\n"
                   "                          again for SECONDS after --warmup SECONDS (default 1); answers counted\n"
                   "                          by status only\n"
                   "  --server-pid PID        (sustained) report the rate per CPU-second of these processes\n"
                   "  -h, --help, --version\n\n"
                   "Exit status: 0 when every gateway completed, 1 when any was lost, 2 on usage errors.\n");
}

typedef struct id_line {
        const char *id;
        unsigned line;
} id_line_t;

static int id_line_cmp(const void *a, const void *b) {
        const id_line_t *x = a, *y = b;
        int c = strcmp(x->id, y->id);
        return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* An ID on two lines: the first line that repeats one, the ID and the line it repeats in *ret_line,
 * *ret_id and *ret_first; *ret_line 0 when every ID is on one line. */
static int ids_repeated(const lg_cred_t *c, const unsigned *lines, size_t n, unsigned *ret_line, const char **ret_id,
                        unsigned *ret_first) {
        _cleanup_free_ id_line_t *v = calloc(n ? n : 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                v[i] = (id_line_t) { c[i].id, lines[i] };
        qsort(v, n, sizeof *v, id_line_cmp);
        unsigned line = 0, first = 0;
        const char *id = NULL;
        for (size_t i = 1; i < n; i++)
                if (streq(v[i].id, v[i - 1].id) && (line == 0 || v[i].line < line))
                        line = v[i].line, first = v[i - 1].line, id = v[i].id;
        *ret_line = line;
        *ret_id = id;
        *ret_first = first;
        return 0;
}

/* unique: refuse a file with an ID on two lines (naming them) */
static int creds_load(const char *path, bool unique, lg_cred_t **ret, size_t *ret_n) {
        _cleanup_secret_ secret_t sec = {};
        int r = secret_file_read(path, FILE_MAX, &sec);
        if (r < 0) {
                if (r == -EFBIG)
                        fprintf(stderr, "msce-loadgen: %s: more than %u bytes\n", path, FILE_MAX);
                else
                        fprintf(stderr, "msce-loadgen: %s: %s%s\n", path, strerror(-r),
                                r == -EPERM ? " (the file holds keys: chmod 0600)" : "");
                return r;
        }
        /* the entries counted first, every one held or the file refused (the first CREDS_MAX
         * were read and the rest silently dropped): a line not empty and not a comment */
        size_t line_nr = 1, cap = 0, n = 0;
        for (size_t i = 0; i < sec.len; i++) {
                /* a NUL would end the text early: the lines after it silently lost */
                if (sec.data[i] == 0) {
                        fprintf(stderr, "msce-loadgen: %s: line %zu: a NUL byte (not a text file?)\n", path, line_nr);
                        return -EINVAL;
                }
                if ((i == 0 || sec.data[i - 1] == '\n') && sec.data[i] != '\n' && sec.data[i] != '#' &&
                    ++cap > CREDS_MAX) {
                        fprintf(stderr, "msce-loadgen: %s: line %zu: more than %u entries (the most it reads)\n", path,
                                line_nr, CREDS_MAX);
                        return -E2BIG;
                }
                line_nr += sec.data[i] == '\n';
        }
        cap = MAX(cap, (size_t) 1);
        lg_cred_t *c = calloc(cap, sizeof *c);
        _cleanup_free_ unsigned *lines = calloc(cap, sizeof *lines);
        /* not strndup(): the file's bytes end at sec.len, with no NUL after them to stop a read */
        char *text = malloc(sec.len + 1);
        if (text) {
                memcpy(text, sec.data, sec.len);
                text[sec.len] = 0;
        }
        if (!c || !lines || !text) {
                free(c);
                erase_free(text, sec.len);
                return -ENOMEM;
        }
        char *rest = text, *line;
        unsigned line_no = 0;
        r = 0;
        /* every line counts for the numbers the errors name, empty ones too (strtok_r skipped them) */
        while (n < cap && (line = strsep(&rest, "\n"))) {
                /* each a byte longer than a field may be: one that fills it is too long (a
                 * shorter buffer cut it there and read its rest as the next field) */
                char id[MSG_ID_MAX + 2], psk_id[MSG_ID_MAX + 2], hex[2 * MSG_KEY_MAX + 2];
                _Static_assert(MSG_ID_MAX == 255 && 2 * MSG_KEY_MAX == 128 && TLS_PSK_ID_MAX < MSG_ID_MAX, "the widths below");
                int end = -1;
                line_no++;
                if (line[0] == '#' || line[0] == 0)
                        continue;
                const char *why = NULL;
                int k = sscanf(line, "%256s %256s %129s %n", id, psk_id, hex, &end);
                if (k >= 1 && strlen(id) > MSG_ID_MAX)
                        why = "the ID is longer than 255 characters";
                else if (k >= 2 && strlen(psk_id) > TLS_PSK_ID_MAX)
                        why = "the PSK identity is longer than 127 characters (what TLS carries)";
                else if (k == 3 && strlen(hex) > 2 * MSG_KEY_MAX)
                        why = "the key is longer than 64 bytes";
                else if (k != 3)
                        why = "expected \"ID PSK_IDENTITY KEY_HEX\"";
                else if (end < 0 || line[end] != 0)
                        why = "text after the key (expected \"ID PSK_IDENTITY KEY_HEX\")";
                else if (hex_decode(hex, c[n].key, sizeof c[n].key, &c[n].key_len) < 0 || c[n].key_len < MSG_KEY_MIN)
                        why = "expected a key of 16..64 bytes as hex";
                if (why) {
                        fprintf(stderr, "msce-loadgen: %s: line %u: %s\n", path, line_no, why);
                        r = -EINVAL;
                }
                erase(hex, sizeof hex);
                if (r < 0)
                        break;
                /* checked above: each fits (255 characters, the assertion above) */
                snprintf(c[n].id, sizeof c[n].id, "%.255s", id);
                snprintf(c[n].psk_id, sizeof c[n].psk_id, "%.255s", psk_id);
                lines[n++] = line_no;
        }
        erase_free(text, sec.len);
        if (r == 0 && n == 0) {
                fprintf(stderr, "msce-loadgen: %s: no entries\n", path);
                r = -ENODATA;
        }
        unsigned dup = 0, first = 0;
        const char *dup_id = NULL;
        if (r == 0 && unique)
                r = ids_repeated(c, lines, n, &dup, &dup_id, &first);
        if (r == 0 && dup > 0) {
                fprintf(stderr, "msce-loadgen: %s: line %u: node %s is on line %u already (one gateway a node; "
                                "--allow-duplicate-nodes to run several)\n", path, dup, dup_id, first);
                r = -EINVAL;
        }
        if (r < 0) {
                erase_free(c, cap * sizeof *c);
                return r;
        }
        *ret = c;
        *ret_n = n;
        return 0;
}

/* https://host[:port]/base; host may be [v6]. */
static int uri_parse(const char *uri, char **host, char **port, char **base) {
        if (strncmp(uri, "https://", 8) != 0)
                return -EINVAL;
        const char *h = uri + 8, *end;
        size_t hl;
        if (*h == '[') {
                end = strchr(h, ']');
                if (!end)
                        return -EINVAL;
                h++;
                hl = (size_t) (end - h);
                end++;
        } else {
                end = h + strcspn(h, ":/");
                hl = (size_t) (end - h);
        }
        const char *p = "443", *slash = strchr(end, '/');
        size_t pl = 3;
        if (*end == ':') {
                p = end + 1;
                pl = slash ? (size_t) (slash - p) : strlen(p);
        } else if (*end && *end != '/')
                return -EINVAL;
        *host = strndup(h, hl);
        *port = strndup(p, pl);
        *base = strdup(slash && slash[1] ? slash : "");
        if (!*host || !*port || !*base)
                return -ENOMEM;
        size_t bl = strlen(*base);
        while (bl > 0 && (*base)[bl - 1] == '/')
                (*base)[--bl] = 0;
        unsigned long long v;
        return hl > 0 && parse_uint(*port, 65535, &v) == 0 && v > 0 ? 0 : -EINVAL;
}

static uint64_t cpu_ns_self_and_children(void) {
        struct rusage a, b;
        if (getrusage(RUSAGE_SELF, &a) < 0 || getrusage(RUSAGE_CHILDREN, &b) < 0)
                return 0;
        return rusage_cpu_nsec(&a) + rusage_cpu_nsec(&b);
}

static uint64_t servers_cpu_ns(const pid_t *pids, size_t n) {
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += process_cpu_nsec(pids[i]);
        return sum;
}

static void raise_fd_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static void merge(lg_result_t *sum, const lg_result_t *r) {
        sum->gateways += r->gateways;
        sum->enrolled += r->enrolled;
        sum->reenrolled += r->reenrolled;
        sum->complete += r->complete;
        sum->lost += r->lost;
        sum->rejected += r->rejected;
        sum->retry_after_waits += r->retry_after_waits;
        sum->ok_in_window += r->ok_in_window;
        sum->window_usec = MAX(sum->window_usec, r->window_usec);
        for (unsigned i = 0; i < ELEMENTSOF(r->exchanges); i++)
                sum->exchanges[i] += r->exchanges[i];
        for (unsigned i = 0; i < _LG_CLASS_MAX; i++)
                sum->failures[i] += r->failures[i];
        if (r->first_start && (!sum->first_start || r->first_start < sum->first_start))
                sum->first_start = r->first_start;
        sum->last_enrolled = MAX(sum->last_enrolled, r->last_enrolled);
        for (unsigned i = 0; i < LG_HIST_N; i++) {
                sum->enrol_hist[i] += r->enrol_hist[i];
                sum->ready_hist[i] += r->ready_hist[i];
        }
}

static void print_failures(const lg_result_t *r) {
        bool any = false;
        printf("failures by class:");
        for (unsigned i = 0; i < _LG_CLASS_MAX; i++)
                if (r->failures[i]) {
                        printf("%s %s %llu", any ? "," : "", lg_class_to_string(i), (unsigned long long) r->failures[i]);
                        any = true;
                }
        printf("%s\n", any ? "" : " none");
}

static void report_storm(const lg_result_t *r, unsigned procs) {
        double span = r->last_enrolled > r->first_start ? (double) (r->last_enrolled - r->first_start) / 1e6 : 0;
        printf("gateways %llu  enrolled %llu  complete %llu  lost %llu  rejected %llu  (%u generator process%s)\n",
               (unsigned long long) r->gateways, (unsigned long long) r->enrolled, (unsigned long long) r->complete,
               (unsigned long long) r->lost, (unsigned long long) r->rejected, procs, procs == 1 ? "" : "es");
        printf("time to last enrolment %.2f s  enrolments/s %.0f  re-enrolments %llu\n", span,
               span > 0 ? (double) r->enrolled / span : 0.0, (unsigned long long) r->reenrolled);
        printf("enrol exchange latency p50 %.1f  p99 %.1f  max %.1f ms\n", lg_hist_ms(r->enrol_hist, 50),
               lg_hist_ms(r->enrol_hist, 99), lg_hist_max_ms(r->enrol_hist));
        printf("power-on to enrolled p50 %.1f  p99 %.1f  max %.1f ms\n", lg_hist_ms(r->ready_hist, 50),
               lg_hist_ms(r->ready_hist, 99), lg_hist_max_ms(r->ready_hist));
        printf("exchanges enrol %llu  status %llu  fetch %llu  waits on Retry-After %llu\n",
               (unsigned long long) r->exchanges[0], (unsigned long long) r->exchanges[1],
               (unsigned long long) r->exchanges[2], (unsigned long long) r->retry_after_waits);
        print_failures(r);
}

int main(int argc, char **argv) {
        /* Every gateway's Kpm is held for the whole run, and profiles may carry an ltk: no core
         * dump, no ptrace by the same user, jansson's buffers wiped (inherited by the workers). */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        json_alloc_install();
        enum { O_GATEWAYS = 256, O_TARGETS, O_COUNT, O_SPREAD, O_CONC, O_PROCS, O_TIMEOUT, O_XTIMEOUT,
               O_BMIN, O_BMAX, O_RAMAX, O_FQDN, O_DURATION, O_WARMUP, O_PID, O_DUP, O_VERSION };
        static const struct option longopts[] = {
                { "gateways", required_argument, NULL, O_GATEWAYS },
                { "targets", required_argument, NULL, O_TARGETS },
                { "count", required_argument, NULL, O_COUNT },
                { "spread", required_argument, NULL, O_SPREAD },
                { "concurrency", required_argument, NULL, O_CONC },
                { "procs", required_argument, NULL, O_PROCS },
                { "timeout", required_argument, NULL, O_TIMEOUT },
                { "exchange-timeout", required_argument, NULL, O_XTIMEOUT },
                { "backoff-min", required_argument, NULL, O_BMIN },
                { "backoff-max", required_argument, NULL, O_BMAX },
                { "retry-after-max", required_argument, NULL, O_RAMAX },
                { "fqdn", required_argument, NULL, O_FQDN },
                { "duration", required_argument, NULL, O_DURATION },
                { "warmup", required_argument, NULL, O_WARMUP },
                { "server-pid", required_argument, NULL, O_PID },
                { "allow-duplicate-nodes", no_argument, NULL, O_DUP },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, O_VERSION },
                {},
        };
        const char *gw_path = NULL, *tg_path = NULL, *fqdn = NULL;
        bool allow_dup = false;
        unsigned long long count = 0, spread = 0, conc = 0, procs = 1, timeout = 300, xtimeout = 30, bmin = 1000,
                           bmax = 600000, ramax = 3600, duration = 0, warmup = 1, v;
        pid_t pids[PIDS_MAX];
        size_t n_pids = 0;
        int c, li;
        while ((c = getopt_long(argc, argv, "h", longopts, &li)) >= 0) {
                unsigned long long *dst = NULL, max = 0, min = 0;
                switch (c) {
                case 'h':
                        usage(stdout);
                        return 0;
                case O_VERSION:
                        printf("msce-loadgen %s\n", PACKAGE_VERSION);
                        return 0;
                case O_GATEWAYS: gw_path = optarg; continue;
                case O_TARGETS: tg_path = optarg; continue;
                case O_FQDN: fqdn = optarg; continue;
                case O_DUP: allow_dup = true; continue;
                case O_COUNT: dst = &count, min = 1, max = CREDS_MAX; break;
                case O_SPREAD: dst = &spread, max = 86400; break;
                case O_CONC: dst = &conc, max = 1000000; break;
                case O_PROCS: dst = &procs, min = 1, max = PROCS_MAX; break;
                case O_TIMEOUT: dst = &timeout, min = 1, max = 86400; break;
                case O_XTIMEOUT: dst = &xtimeout, min = 1, max = 3600; break;
                case O_BMIN: dst = &bmin, min = 1, max = 3600000; break;
                case O_BMAX: dst = &bmax, min = 1, max = 86400000; break;
                case O_RAMAX: dst = &ramax, min = 1, max = 86400; break;
                case O_DURATION: dst = &duration, min = 1, max = 86400; break;
                case O_WARMUP: dst = &warmup, max = 3600; break;
                case O_PID:
                        if (parse_uint(optarg, INT32_MAX, &v) < 0 || v == 0 || n_pids >= PIDS_MAX) {
                                fprintf(stderr, "msce-loadgen: --server-pid: expected a process ID (at most %u)\n",
                                        PIDS_MAX);
                                return EXIT_USAGE;
                        }
                        pids[n_pids++] = (pid_t) v;
                        continue;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
                if (parse_uint(optarg, max, dst) < 0 || *dst < min) {
                        fprintf(stderr, "msce-loadgen: --%s: expected an integer from %llu to %llu\n",
                                longopts[li].name, min, max);
                        return EXIT_USAGE;
                }
        }
        if (optind != argc - 1 || !gw_path) {
                usage(stderr);
                return EXIT_USAGE;
        }
        _cleanup_free_ char *host = NULL, *port = NULL, *base = NULL;
        if (uri_parse(argv[optind], &host, &port, &base) < 0) {
                fprintf(stderr, "msce-loadgen: %s: expected https://HOST[:PORT]/BASE\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (bmax < bmin) {
                fprintf(stderr, "msce-loadgen: --backoff-max is below --backoff-min\n");
                return EXIT_USAGE;
        }
        _cleanup_free_ char *fqdn_lower = strdup(fqdn ?: host);
        if (!fqdn_lower)
                return EXIT_LOST;
        for (char *p = fqdn_lower; *p; p++)
                *p = (char) tolower((unsigned char) *p);

        lg_cred_t *gws = NULL, *tgs = NULL;
        size_t n_gws = 0, n_tgs = 0;
        if (creds_load(gw_path, !allow_dup, &gws, &n_gws) < 0 || (tg_path && creds_load(tg_path, false, &tgs, &n_tgs) < 0))
                return EXIT_USAGE;
        if (count > n_gws) {
                fprintf(stderr, "msce-loadgen: --count %llu: %s has %zu gateways\n", count, gw_path, n_gws);
                return EXIT_USAGE;
        }
        size_t n_gws_all = n_gws; /* every one loaded holds a key to wipe, --count or not */
        if (count)
                n_gws = count;
        if (procs > n_gws)
                procs = n_gws;
        if (duration > 0 && conc == 0)
                conc = 64;
        /* each process takes a share of --concurrency, and a share of 0 would be no limit: with
         * fewer connections than processes, as many processes as connections */
        if (conc > 0 && procs > conc)
                procs = conc;

        signal(SIGPIPE, SIG_IGN); /* wolfSSL writes without MSG_NOSIGNAL */
        raise_fd_limit();
        if (wolfSSL_Init() != WOLFSSL_SUCCESS)
                return EXIT_LOST;

        /* one result per process in shared memory */
        size_t res_size = procs * sizeof(lg_result_t);
        lg_result_t *res = mmap(NULL, res_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (res == MAP_FAILED) {
                perror("msce-loadgen: mmap");
                return EXIT_LOST;
        }
        uint64_t cpu0 = cpu_ns_self_and_children(), t0 = now_usec(), srv0 = 0, srv1 = 0, ts0 = 0, ts1 = 0;
        pid_t children[PROCS_MAX];
        for (unsigned p = 0; p < procs; p++) {
                /* process p takes a contiguous share of the gateways (sustained: cycling over it) */
                size_t first = p * (n_gws / procs) + MIN((size_t) p, n_gws % procs);
                size_t share = n_gws / procs + (p < n_gws % procs);
                lg_options_t o = {
                        .host = host,
                        .port = port,
                        .base = base,
                        .fqdn = fqdn_lower,
                        .gateways = gws + first,
                        .n_gateways = share,
                        .targets = tgs,
                        .n_targets = n_tgs,
                        .spread_usec = spread * 1000000u,
                        .exchange_usec = xtimeout * 1000000u,
                        .deadline_usec = timeout * 1000000u,
                        .backoff_min_usec = bmin * 1000u,
                        .backoff_max_usec = bmax * 1000u,
                        .retry_after_max_usec = ramax * 1000000u,
                        .concurrency = (unsigned) (conc / procs + (p < conc % procs)),
                        .duration_usec = duration * 1000000u,
                        .warmup_usec = warmup * 1000000u,
                };
                pid_t parent = getpid();
                children[p] = fork();
                if (children[p] < 0) {
                        perror("msce-loadgen: fork");
                        return EXIT_LOST;
                }
                if (children[p] == 0) {
                        /* msce-loadgen killed (a script's kill, timeout(1)): its load stops too */
                        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
                                _exit(EXIT_LOST);
                        int r = lg_run(&o, &res[p]);
                        if (r < 0)
                                fprintf(stderr, "msce-loadgen: %s\n", strerror(-r));
                        _exit(r < 0 ? EXIT_LOST : 0);
                }
        }
        if (duration > 0) {
                sleep_usec(warmup * USEC_PER_SEC);
                srv0 = servers_cpu_ns(pids, n_pids), ts0 = now_usec();
                sleep_usec(duration * USEC_PER_SEC);
                srv1 = servers_cpu_ns(pids, n_pids), ts1 = now_usec();
        }
        int rc = 0;
        for (unsigned p = 0; p < procs; p++) {
                int st;
                if (waitpid(children[p], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        rc = EXIT_LOST;
        }
        erase_free(gws, n_gws_all * sizeof *gws);
        if (tgs)
                erase(tgs, n_tgs * sizeof *tgs);
        free(tgs);
        uint64_t cpu = cpu_ns_self_and_children() - cpu0, wall = now_usec() - t0;
        lg_result_t *sum = calloc(1, sizeof *sum);
        if (!sum)
                return EXIT_LOST;
        for (unsigned p = 0; p < procs; p++)
                merge(sum, &res[p]);
        munmap(res, res_size);
        if (duration > 0) {
                double secs = (double) duration;
                printf("ok/s %.0f  ok %llu  latency p50 %.2f p99 %.2f ms  client cpu %.0f%% (%llu proc, %llu conns)",
                       (double) sum->ok_in_window / secs, (unsigned long long) sum->ok_in_window,
                       lg_hist_ms(sum->enrol_hist, 50), lg_hist_ms(sum->enrol_hist, 99),
                       100.0 * (double) cpu / ((double) wall * 1000.0), procs, conc);
                if (n_pids > 0 && srv1 > srv0 && ts1 > ts0) {
                        double share = (double) (srv1 - srv0) / ((double) (ts1 - ts0) * 1000.0);
                        printf("  server cpu %.0f%%  ok per server cpu-s %.0f", 100.0 * share,
                               (double) sum->ok_in_window / secs / share);
                }
                printf("\n");
                print_failures(sum);
                if (sum->ok_in_window == 0)
                        rc = EXIT_LOST;
        } else {
                report_storm(sum, (unsigned) procs);
                if (sum->lost > 0 || sum->complete != sum->gateways)
                        rc = EXIT_LOST;
        }
        free(sum);
        return rc;
}
