/* wm_loop: the message loop every filter shares (libavfilter's framework
 * role): reading, clip boundaries, flushing, and finishing cleanly on
 * errors and signals.
 *
 * A stage is a context and one callback per message.  The callback sees
 * every message in order and forwards those that pass through (every
 * message it does not consume, unknown kinds included).  on_finish runs
 * once when input ends, and also before an input error or an interrupt
 * is returned, so everything complete so far is emitted and flushed. */
#ifndef WM_LOOP_H
#define WM_LOOP_H

#include "wm_error.h"
#include "wm_io.h"
#include "wm_msg.h"

typedef struct wm_stage {
    void *ctx;
    wm_status (*on_msg)(void *ctx, const wm_msg *msg, wm_writer *out, wm_error *err);
    wm_status (*on_finish)(void *ctx, wm_writer *out, wm_error *err);   /* may be NULL */
} wm_stage;

/* Runs the stage over the inputs named by specs[0..n) in turn (n == 0:
 * stdin), writing to out.  Returns WM_OK at the end of all inputs, or the
 * first error (after on_finish and a flush). */
wm_status wm_loop_run(const char *const *specs, int n, size_t max_message,
                      wm_writer *out, const wm_stage *stage, wm_error *err);

/* The pass-through stage callback: forwards every message unchanged. */
wm_status wm_loop_forward(void *ctx, const wm_msg *msg, wm_writer *out, wm_error *err);

#endif
