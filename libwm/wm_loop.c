#include "wm_loop.h"

#include "wm_signal.h"

wm_status wm_loop_forward(void *ctx, const wm_msg *msg, wm_writer *out, wm_error *err)
{
    (void)ctx;
    return wm_writer_forward(out, msg, err);
}

static wm_status run_one(wm_reader *in, wm_writer *out, const wm_stage *stage, wm_error *err)
{
    wm_msg msg;
    for (;;) {
        if (wm_signal_pending())
            return wm_error_set(err, WM_E_INTERRUPTED, "interrupted");
        wm_status st = wm_reader_next(in, &msg, err);
        if (st == WM_EOF) return WM_OK;
        if (st != WM_OK) return st;
        if ((st = stage->on_msg(stage->ctx, &msg, out, err)) != WM_OK) return st;
        /* a finished clip reaches the next stage without waiting for more input */
        if (wm_msg_is(&msg, "end") && (st = wm_writer_flush(out, err)) != WM_OK) return st;
    }
}

wm_status wm_loop_run(const char *const *specs, int n, size_t max_message,
                      wm_writer *out, const wm_stage *stage, wm_error *err)
{
    wm_status st = WM_OK;
    for (int i = 0; i < (n ? n : 1) && st == WM_OK; i++) {
        wm_reader *in = wm_reader_open(n ? specs[i] : NULL, max_message, err);
        if (!in) { st = err->code; break; }
        st = run_one(in, out, stage, err);
        wm_reader_free(&in);
    }
    /* emit what is complete even when the input broke off */
    wm_error fin_err;
    wm_status fin = stage->on_finish ? stage->on_finish(stage->ctx, out, &fin_err) : WM_OK;
    if (fin == WM_OK) fin = wm_writer_flush(out, &fin_err);
    if (st == WM_OK && fin != WM_OK) { *err = fin_err; st = fin; }
    return st;
}
