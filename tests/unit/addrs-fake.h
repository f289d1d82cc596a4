/* SPDX-License-Identifier: MIT */
#pragma once
/* A name with the addresses a test chose, in its order: getaddrinfo() is replaced at link time
 * (libmsce is static, so --wrap=getaddrinfo,--wrap=freeaddrinfo reaches its objects' calls) by
 * one that answers ADDRS_FAKE_NAME with the first addrs_fake_n of addrs_fake. A listener whose
 * accept queue is full drops SYNs (Linux: tcp_conn_request), as a black-holed address does,
 * without privileges. */
#include <netinet/in.h>
#include <stddef.h>

#define ADDRS_FAKE_NAME "two.msce-test.invalid"

extern struct sockaddr_in addrs_fake[2];
extern size_t addrs_fake_n;

/* A loopback listener with backlog; its address in *sa. */
int addrs_fake_listener(int backlog, struct sockaddr_in *sa);
/* A loopback listener that drops every further SYN, its address in *sa; ret_fillers hold the
 * connections that fill its queue (close them, and it, when done). */
int addrs_fake_black_hole(struct sockaddr_in *sa, int ret_fillers[static 2]);
