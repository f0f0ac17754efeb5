/* wm_prior: the object prior of the next latent, for lanes of clips run in
 * lock-step.
 *
 * For each lane, from latent z_t: decode it to frame t with the tokenizer
 * (rounded to 8-bit pixels, as wm-decode-frame writes them), find the balls
 * in z_t (wm_detect.h), let the lane's scene (wm_objects.h) track them and
 * draw frame t+1, and encode both frames; the prior mean of z_{t+1} is
 *     z_t + E(drawn frame t+1) - E(decoded frame t),
 * so the tokenizer's round trip cancels wherever nothing moves, and where
 * a ball moves the encoder turns its move in pixels into the latent's
 * (docs/model.md, "The ball detector, and the object prior it starts").
 *
 * Ownership: wm_prior_new borrows the tokenizer and the detector, which
 * must outlive it, and owns one scene per lane.  Not thread-safe. */
#ifndef WM_PRIOR_H
#define WM_PRIOR_H

#include "wm_detect.h"
#include "wm_error.h"
#include "wm_objects.h"
#include "wm_tokenizer.h"

typedef struct wm_prior wm_prior;

/* lanes of latent grids h x w (frames of h and w times the tokenizer's
 * patch); cfg sets the scenes (NULL: wm_objects_default_config at fps). */
wm_prior *wm_prior_new(wm_tokenizer *tk, wm_detector *det, int lanes, int h, int w, double fps,
                       const wm_objects_config *cfg, wm_error *err);
void wm_prior_free(wm_prior **p);
/* Lane `lane` starts a new clip (-1: every lane). */
void wm_prior_reset(wm_prior *p, int lane);

/* The prior means [n, h, w, C] of the next latents of lanes 0..n-1 from
 * their latents z [n, h, w, C] now. */
wm_status wm_prior_step(wm_prior *p, int n, const float *z, float *prior, wm_error *err);

/* The frames lane 0..n-1 were last drawn for the next step [n, H, W, 3]
 * (0..255), and a lane's scene (its tracks), for tracing. */
const float *wm_prior_drawn(const wm_prior *p);
const wm_objects *wm_prior_scene(const wm_prior *p, int lane);

#endif
