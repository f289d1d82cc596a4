/* SPDX-License-Identifier: MIT */
/* placeholder: not written yet */
#include "keys/kdf.h"
