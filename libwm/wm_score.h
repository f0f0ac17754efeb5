/* wm_score: clip-level physical plausibility from the world model's
 * surprise, the stage behind wm-score-coherence (docs/scoring.md has the
 * definitions and docs/protocol.md the `score` message).
 *
 * Input: a stream carrying each clip's `latent` messages and wm-step's
 * `pred` messages (a pred with index t is the prediction of latent t made
 * from latents 0..t-1), and the clip's `frame` messages when present.
 *
 * Surprise, per latent element: the Gaussian negative log-likelihood of
 * the latent under the predicted mean and variance, minus its expectation
 * under the model itself:  e = ((z - mu)^2 / var - 1) / 2  nats.  A
 * calibrated model scores 0 on average whatever the scene, so clips of
 * different content compare; var is widened per channel where this
 * clip's earlier latents showed the model overconfident by more than
 * 1 / dyn_adapt (and the object prior's variance likewise, from its own
 * residuals; docs/scoring.md).  Per cell: the mean of e over the channels.
 * Per frame: the mean of the k most surprising cells, k = max(1,
 * round(cells / 32)) (8 cells of a 16x16 grid: about two balls), so frame
 * sizes compare.  Per clip, over the frames from `warmup` on (the first
 * predictions lack the context to know velocities): the mean, the max,
 * where the max is (frame and pixel position), the clip's surprise
 * surprise_clip = mean of cap * ln(1 + s / cap) over those frames (s
 * itself where s << cap; a frame far past the cap, a screen sliding in or
 * a cut, counts logarithmically rather than as dozens of frames; cap 0:
 * the plain mean), and the plausibility
 * 1 / (1 + exp((surprise_clip - center) / scale)).
 *
 * At each clip's `end` the stage emits one `score` message right before
 * it; with a sink set, the score goes to the sink instead (wm-score-
 * coherence --json).  Heatmap mode replaces each frame by a colour-mapped
 * overlay of its per-cell surprise (a synthetic gray frame when the clip
 * carries no frames).  A clip that failed upstream (`error` in its clip or
 * end message), that has latents without predictions, or whose values
 * are NaN/Inf gets a score with an `error` field; the stream goes on.
 *
 * Memory per clip: the per-frame surprise, the first latents (for
 * consistency), the last two frames and the thumbnails; never the whole
 * clip.  Ownership: the caller frees the stage with wm_score_stage_free. */
#ifndef WM_SCORE_H
#define WM_SCORE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"
#include "wm_loop.h"

#define WM_SCORE_WARMUP 3
#define WM_SCORE_CENTER 3.58  /* scripts/calibrate-score.sh on the shipped model */
#define WM_SCORE_SCALE 0.83
#define WM_SCORE_HEAT_MAX 4.0
#define WM_SCORE_PRIOR_WEIGHT 0.4    /* chosen on wm-synth and real development pairs (docs/scoring.md) */
#define WM_SCORE_FRAME_CAP 75.0      /* nats: where a frame's surprise starts to count logarithmically (the same) */
#define WM_SCORE_DYN_ADAPT 0.5       /* the dynamics' variance widened past 1 / this of overconfidence (the same) */

typedef struct wm_score_options {
    int warmup;              /* predictions excluded from the aggregates (default WM_SCORE_WARMUP) */
    double center, scale;    /* the plausibility's logistic calibration */
    double prior_weight;     /* weight of the object prior's surprise (0: ignore it) */
    double frame_cap;        /* surprise_clip's cap (0: the plain mean) */
    double dyn_adapt;        /* the dynamics' clip-adaptive variance (0: the predicted variance as it is) */
    int heatmap;             /* replace frames by surprise overlays */
    double heat_max;         /* cell surprise shown at full colour */
    int thumbs;              /* add a PNG strip of the frames around the peak */
    int only_scores;         /* emit the scores (and each clip's clip and end) only */
} wm_score_options;

void wm_score_options_default(wm_score_options *o);

/* Called with each finished score (a msgpack map) instead of writing it. */
typedef wm_status (*wm_score_sink)(void *ctx, const msgpack_object *score, wm_error *err);

typedef struct wm_score_stage wm_score_stage;

wm_score_stage *wm_score_stage_new(const wm_score_options *o, wm_error *err);
void wm_score_stage_free(wm_score_stage **s);
void wm_score_stage_set_sink(wm_score_stage *s, wm_score_sink sink, void *ctx);
wm_stage wm_score_stage_get(wm_score_stage *s);

typedef struct wm_score_stats {
    uint64_t clips, errors;
} wm_score_stats;

void wm_score_stage_stats(const wm_score_stage *s, wm_score_stats *out);

/* The pieces, exposed for tests.  Cell surprise of n cells of C channels:
 * out[i] = mean_c ((z - mu)^2 / var - 1) / 2.  Returns the count of
 * non-finite inputs (var <= 0 counts as non-finite). */
size_t wm_score_cells(const float *z, const float *mu, const float *var, size_t n, int C, float *out);

/* Adds weight times the cell surprise under a per-channel variance
 * var_c[C]: out[i] += weight * mean_c ((z - mu)^2 / var_c - 1) / 2.
 * Returns the count of non-finite inputs, as wm_score_cells (a variance
 * <= 0 counts at each element it serves). */
size_t wm_score_cells_add(const float *z, const float *mu, const float *var_c, size_t n, int C, double weight,
                          float *out);

/* The mean of the k largest of v[0..n) (k clamped to [1, n]); *argmax gets
 * the index of the largest.  scratch holds n floats. */
double wm_score_topk(const float *v, size_t n, size_t k, float *scratch, size_t *argmax);

/* k for a grid of n cells. */
size_t wm_score_k(size_t cells);

#endif
