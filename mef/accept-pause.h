/* SPDX-License-Identifier: MIT */
#pragma once
/* What a listener does when accept() fails: the listening socket is level-triggered, so while
 * the process is out of file descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM) it stays
 * readable with the connection still queued, and accepting again at once would spin the loop.
 * The listener turns its accept source off and tries again ACCEPT_PAUSE_USEC later. Both of
 * msce-mef's listener kinds use it: the TLS ones (mef/conn.c) and metrics (mef/metrics-http.c). */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define ACCEPT_PAUSE_USEC (100u * 1000u)

typedef struct accept_pause {
        sd_event_source *timer; /* the end of a pause */
        void (*resume)(void *userdata); /* the pause is over: accept again */
        void *userdata;
        const char *name;       /* the listener's, for the log line: "", "admin", "metrics" */
        uint64_t logged;        /* when a pause was last logged (once every 10 s) */
        bool paused;
} accept_pause_t;

typedef enum accept_fail {
        ACCEPT_DRAINED, /* EAGAIN: nothing more queued */
        ACCEPT_SKIP,    /* that connection only (aborted, interrupted, refused by a filter): the next */
        ACCEPT_PAUSED,  /* out of fds or memory: paused; turn accept off until resume() */
} accept_fail_t;

/* A disabled timer on event; resume(userdata) when a pause ends. name: a prefix for the log. */
int accept_pause_init(accept_pause_t *p, sd_event *event, const char *name, void (*resume)(void *userdata),
                      void *userdata);
void accept_pause_done(accept_pause_t *p);
/* accept4() failed with error (errno): what to do. ACCEPT_PAUSED logs a warning (at most once
 * every 10 s) and arms the timer. */
accept_fail_t accept_pause_failed(accept_pause_t *p, int error);
