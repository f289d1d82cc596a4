/* SPDX-License-Identifier: MIT */
#pragma once
/* Between keyring-users.c (main, in the runner) and the tests of test-keyring.c (in workers). */
/* Set by main for the test workers (criterion re-executes this program for each test, so only
 * the environment reaches them): the two users' names, or why there are none. */
#define ENV_USERS "MSCE_TEST_KEYRING_USERS"
#define ENV_NO_USERS "MSCE_TEST_KEYRING_NO_USERS"
/* test-user.sh, from meson (tests/integration/meson.build) */
#define ENV_USER_SH "MSCE_TEST_USER_SH"
