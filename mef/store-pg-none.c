/* SPDX-License-Identifier: MIT */
/* Built without libpq (meson -Dpostgresql=disabled): [store] backend = postgresql is refused. */
#include <errno.h>

#include "mef/store-db.h"

int db_pg_open(const store_location_t *loc, db_t **ret) {
        return -EOPNOTSUPP;
}
