/* SPDX-License-Identifier: MIT */
#include "mef/admin.h"
#include "util/util.h"

int admin_new(sd_event *event, const mef_config_t *cfg, store_queue_t *queue, logbook_t *logbook,
              sd_event_source *logbook_timer, admin_t **ret, char *err, size_t err_size) {
        snprintf(err, err_size, "no admin API yet");
        return -EOPNOTSUPP;
}
admin_t *admin_free(admin_t *a) {
        return NULL;
}
unsigned admin_port(const admin_t *a) {
        return 0;
}
