/* SPDX-License-Identifier: MIT */
/* placeholder: not written yet */
#include "mef/mef-config.h"
