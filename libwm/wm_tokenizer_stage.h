/* wm_tokenizer_stage: the stage behind wm-encode-latent and
 * wm-decode-frame, so both filters stay thin and share batching.
 *
 * Encode: each `frame` becomes a `latent` {clip, index, pts, shape
 * [H/4, W/4, C], dtype "f32", data, and every extra key of the frame};
 * with keep, the frame is passed through first.  Decode: each `latent`
 * (imagined ones too) becomes an rgb24 `frame` of 4h x 4w with the
 * latent's extra keys (`imagined` included); with keep, the latent is
 * passed through first.  Every other message passes through unchanged.
 *
 * Batching: up to `batch` consecutive items of one size go through the
 * network together; any other message, a size change or the end of input
 * runs the pending batch first, so the output order is the input order.
 *
 * Ownership: the stage borrows tk, which must outlive it; the caller frees
 * the stage with wm_tokenizer_stage_free. */
#ifndef WM_TOKENIZER_STAGE_H
#define WM_TOKENIZER_STAGE_H

#include <stdint.h>

#include "wm_error.h"
#include "wm_loop.h"
#include "wm_tokenizer.h"

typedef enum wm_tokenizer_direction { WM_TOKENIZER_ENCODE, WM_TOKENIZER_DECODE } wm_tokenizer_direction;

typedef struct wm_tokenizer_stage wm_tokenizer_stage;

wm_tokenizer_stage *wm_tokenizer_stage_new(wm_tokenizer *tk, wm_tokenizer_direction dir, int keep, int batch,
                                           wm_error *err);
void wm_tokenizer_stage_free(wm_tokenizer_stage **s);

/* The stage for wm_loop_run. */
wm_stage wm_tokenizer_stage_get(wm_tokenizer_stage *s);

/* Items converted so far, and seconds spent in the network. */
uint64_t wm_tokenizer_stage_items(const wm_tokenizer_stage *s);
double wm_tokenizer_stage_seconds(const wm_tokenizer_stage *s);

/* What a run did, for a filter's -v line. */
typedef struct wm_tokenizer_report {
    char model[4096];       /* the model file used */
    uint64_t items;         /* frames encoded or latents decoded */
    double seconds;         /* time spent in the network */
} wm_tokenizer_report;

/* The body of wm-encode-latent and wm-decode-frame once their options are
 * parsed: resolves and loads the model (model_opt, else $WM_MODEL, else the
 * shipped one), runs the stage over inputs[0..n) (n == 0: stdin) into
 * out_spec and closes it.  A model that cannot be loaded is a usage error. */
wm_status wm_tokenizer_stage_run(const char *model_opt, wm_tokenizer_direction dir, int keep, int batch,
                                 const char *const *inputs, int n, const char *out_spec,
                                 size_t max_message, wm_tokenizer_report *report, wm_error *err);

#endif
