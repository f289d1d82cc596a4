/* SPDX-License-Identifier: MIT */
#pragma once
/* The small helpers most files use; each unit has its header (and unit test) of its own.
 * util/net.h, util/journal.h and util/string-table.h are included where needed. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/macro.h"
#include "util/base64.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/parse.h"
#include "util/random.h"
#include "util/time.h"
