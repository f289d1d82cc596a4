/* SPDX-License-Identifier: MIT */
/* placeholder: not written yet */
#include "agent/enrol.h"
