/* SPDX-License-Identifier: MIT */
/* placeholder: not written yet */
#include "proto/http.h"
