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
 * Its surprise needs a spread: the per-channel variance of the latent
 * about the prior, fitted on training clips (wm_prior_fit, `wm-train
 * prior`) and kept in the model file as "prior.var" [C].
 *
 * Ownership: wm_prior_new borrows the tokenizer and the detector, which
 * must outlive it, and owns one scene per lane.  Not thread-safe. */
#ifndef WM_PRIOR_H
#define WM_PRIOR_H

#include "wm_detect.h"
#include "wm_dynamics_train.h"
#include "wm_error.h"
#include "wm_objects.h"
#include "wm_tokenizer.h"

typedef struct wm_prior wm_prior;

/* lanes of latent grids h x w (frames of h and w times the tokenizer's
 * patch); cfg sets the scenes (NULL: wm_objects_default_config at fps). */
wm_prior *wm_prior_new(wm_tokenizer *tk, wm_detector *det, int lanes, int h, int w, double fps,
                       const wm_objects_config *cfg, wm_error *err);
void wm_prior_free(wm_prior **p);
#define WM_PRIOR_PREFIX "prior."
#define WM_PRIOR_ARCH "objects-v1"
#define WM_PRIOR_FROM 3        /* wm_prior_fit: the predictions of latents 3, 4, ... (the first lack velocities) */

/* Lane `lane` starts a new clip (-1: every lane); fps > 0 sets its
 * gravity for that frame rate (wm_objects_default_config), else it keeps
 * the one it had. */
void wm_prior_reset(wm_prior *p, int lane, double fps);

/* Every lane's doubt of a ball that appears from nowhere, in real frames
 * it is not drawn (wm_objects_config.doubt; 0: drawn at once, as a rollout
 * wants the balls its context showed). */
void wm_prior_set_doubt(wm_prior *p, int frames);

/* The prior means [n, h, w, C] of the next latents of lanes 0..n-1 from
 * their latents z [n, h, w, C] now. */
wm_status wm_prior_step(wm_prior *p, int n, const float *z, float *prior, wm_error *err);

/* The same for latents z the lanes imagined (their last priors, fed back):
 * the balls are not looked for; each scene moves its own on
 * (wm_objects_step_imagined), so a rollout keeps its balls, their sprites
 * and their bounces however the tokenizer renders them. */
wm_status wm_prior_imagine(wm_prior *p, int n, const float *z, float *prior, wm_error *err);

/* The frames lane 0..n-1 were last drawn for the next step [n, H, W, 3]
 * (0..255), and a lane's scene (its tracks), for tracing. */
const float *wm_prior_drawn(const wm_prior *p);
const wm_objects *wm_prior_scene(const wm_prior *p, int lane);

/* Fits the per-channel variance var[C] of z_{t+1} - prior_t over the clips
 * of cs (every source; lanes of 8 clips of one grid at a time, scenes at
 * fps), from the prediction of latent WM_PRIOR_FROM on; *count gets the
 * latents counted.  WM_E_INPUT when there are none. */
wm_status wm_prior_fit(wm_tokenizer *tk, wm_detector *det, const wm_clipset *cs, double fps, float *var, long *count,
                       wm_error *err);

/* Writes "prior.var" [C] and the prior's metadata (arch, latent_channels,
 * the tokenizer's fingerprint, then the meta key/value pairs, each
 * prefixed "prior.") into the model file at path, keeping its other parts. */
wm_status wm_prior_save(const char *path, const float *var, int C, const char *const *meta, size_t n_meta,
                        wm_error *err);

/* Reads the model file's "prior.var" [C] into var: WM_E_INPUT naming the
 * file when the prior part is missing, of another architecture or channel
 * count, or a variance is not a positive number. */
wm_status wm_prior_load_var(const char *path, int C, float *var, wm_error *err);

/* The object prior's parts in a model file, as wm-step runs it. */
typedef struct wm_prior_model {
    wm_tokenizer *tk;
    wm_detector *det;
    float *var;                   /* [C]: prior.var */
} wm_prior_model;

/* Loads the tokenizer, the detector and prior.var for a dynamics model of
 * C channels: WM_E_INPUT naming the file and the part when one is missing
 * or does not fit (the tokenizer writes another channel count); on failure
 * *m is left empty.  Free with wm_prior_model_free. */
wm_status wm_prior_model_load(const char *path, int C, wm_prior_model *m, wm_error *err);
void wm_prior_model_free(wm_prior_model *m);

#endif
