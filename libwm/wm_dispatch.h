/* wm_dispatch: fan-out of whole clips to worker processes over ZeroMQ, and
 * the workers that run a filter chain on them (the zguide's Paranoid
 * Pirate pattern).
 *
 * The dispatcher binds a ROUTER socket; workers connect DEALER sockets,
 * announce themselves (READY) and send heartbeats (HB) every
 * WM_DISPATCH_HEARTBEAT seconds.  The dispatcher hands an idle worker one
 * clip (CLIP seq clip-id message...), the worker pipes it through its chain
 * and returns what came out (RESULT seq message...), or FAILED seq reason.
 * A worker silent for longer than the timeout is presumed dead and its
 * clip goes to another; results are deduplicated by clip, so every clip
 * comes out exactly once, in input order with `ordered`, else as they
 * finish.  A clip that fails `retries` times comes out as its `clip`
 * message and an `end` carrying an `error`.  At the end of input the
 * dispatcher tells the workers BYE.
 *
 * Memory is bounded: at most max_pending clips are read ahead of the
 * results written. */
#ifndef WM_DISPATCH_H
#define WM_DISPATCH_H

#include "wm_cli.h"
#include "wm_error.h"
#include "wm_io.h"

#define WM_DISPATCH_HEARTBEAT 0.25   /* seconds between heartbeats */

typedef struct wm_dispatch_opts {
    const char *endpoint;     /* ROUTER endpoint; "@..." binds (default when no prefix) */
    int ordered;              /* results in input order */
    double timeout;           /* seconds of silence before a worker is presumed dead */
    int retries;              /* tries of one clip before it is reported failed */
    int max_pending;          /* clips read ahead of the results */
    size_t max_message;
    /* -v notes (a worker joined, went silent; the totals): the filter
     * prints them, libwm does not (NULL: none) */
    void (*note)(void *ctx, const char *line);
    void *note_ctx;
} wm_dispatch_opts;

void wm_dispatch_opts_init(wm_dispatch_opts *o);

/* Reads the inputs (specs[0..n), n == 0: stdin), farms the clips out and
 * writes the results to out.  Returns WM_OK when every clip came out
 * whole.  A clip that failed for good (retries spent, or cut short by the
 * input) does not stop the batch: when every result has been written,
 * WM_E_INPUT is returned with "N of M clips failed; first: clip ID: why"
 * (the earliest such clip in input order) in err. */
wm_status wm_dispatch_run(const wm_dispatch_opts *o, const char *const *specs, int n,
                          wm_writer *out, wm_progress *progress, wm_error *err);

typedef struct wm_worker_opts {
    const char *endpoint;     /* the dispatcher's ROUTER; connects unless "@" */
    const char *command;      /* the chain, run by /bin/sh -c, stream in and out */
    int keep;                 /* stay for the next batch after BYE */
    size_t max_message;
    int verbose;
} wm_worker_opts;

/* Serves clips until BYE (or a signal).  *clips_done counts results sent. */
wm_status wm_worker_run(const wm_worker_opts *o, long *clips_done, wm_error *err);

#endif
