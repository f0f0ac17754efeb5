/* wm_latent: latent-grid messages (`latent`, `pred`; docs/protocol.md) as
 * the dynamics model reads and writes them: the grid of a validated
 * message as floats, and the messages wm-step emits.
 *
 * The tokenizer's layout is [h, w, C] (channel-last); data is f32 or f16
 * little-endian (the reader already checked the size against the shape). */
#ifndef WM_LATENT_H
#define WM_LATENT_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"
#include "wm_msg.h"

typedef struct wm_latent_view {
    const char *clip;
    size_t clip_len;
    int64_t index;
    int h, w, C;
    int f16;                   /* data is IEEE half */
    const uint8_t *data;       /* h*w*C values, borrowed from the message */
    int imagined;              /* "imagined": true */
} wm_latent_view;

/* Fills v from a validated latent message.  WM_E_INPUT, naming the clip
 * and index, when the shape is not [h, w, C] with C == want_C (want_C 0:
 * any) or h, w exceed 16384. */
wm_status wm_latent_get(const wm_msg *m, int want_C, wm_latent_view *v, wm_error *err);

/* Converts v's values to float into out (h*w*C floats); returns the
 * number of values that are NaN or Inf. */
size_t wm_latent_to_f32(const wm_latent_view *v, float *out);

/* Packs a `pred` message {kind, clip, index, shape [h, w, C], dtype f32,
 * data: mean, var: var (omitted when NULL), prior: prior [h, w, C] and
 * prior_var: prior_var [C] (both omitted when prior is NULL)} into pk. */
void wm_latent_pack_pred(msgpack_packer *pk, const char *clip, size_t clip_len, int64_t index, int h, int w, int C,
                         const float *mean, const float *var, const float *prior, const float *prior_var);

/* Packs an imagined `latent` {kind, clip, index, pts (when pts >= 0),
 * shape, dtype f32, imagined: true, data}. */
void wm_latent_pack_imagined(msgpack_packer *pk, const char *clip, size_t clip_len, int64_t index, double pts, int h,
                             int w, int C, const float *data);

#endif
