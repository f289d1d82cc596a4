/* SPDX-License-Identifier: MIT */
/* The paging filters as the CLI's options and the admin API's query parameters give them. */
#include <time.h>

#include "mef/ops.h"
#include "util/parse.h"
#include "util/util.h"

int ops_since_parse(const char *v, int64_t *ret) {
        struct tm tm = { 0 };
        const char *end = strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end) {
                memset(&tm, 0, sizeof tm);
                end = strptime(v, "%Y-%m-%d", &tm);
        }
        if (end && !*end) {
                time_t t = timegm(&tm);
                if (t < 0)
                        return -EINVAL;
                *ret = (int64_t) t;
                return 0;
        }
        usec_t d;
        if (duration_parse(v, &d) < 0)
                return -EINVAL;
        int64_t now = (int64_t) time(NULL), back = (int64_t) (d / USEC_PER_SEC);
        *ret = back >= now ? 0 : now - back;
        return 0;
}

int ops_limit_parse(const char *v, size_t *ret) {
        unsigned long long u;
        if (parse_uint(v, OPS_PAGE_LIMIT_MAX, &u) < 0 || u == 0)
                return -EINVAL;
        *ret = (size_t) u;
        return 0;
}

int ops_enrolment_state_filter(const char *v, store_page_t *p) {
        /* as shown: "active" is active and not past its exp, "expired" active past it */
        bool expired = streq(v, "expired");
        p->state = expired ? ENROLMENT_ACTIVE : enrolment_state_from_string(v);
        if (p->state < 0)
                return -EINVAL;
        if (p->state == ENROLMENT_ACTIVE)
                p->expired = expired ? 1 : -1;
        return 0;
}
