/* wm_dynamics_train: training the dynamics model on latent clips with
 * truncated backpropagation through time and Adam (the pieces shared with
 * the tokenizer's training, the optimizer and the learning-rate schedule,
 * come from wm_adam.h).
 *
 * Data: clips of latents in memory (a wm_clipset), read from streams of
 * `latent` messages (wm-encode-latent's output) or of `frame` messages,
 * which are encoded with the model file's tokenizer as they are read.
 *
 * One optimizer step is one truncated window: each minibatch is B
 * windows of `seq` + 1 consecutive latents (random clips, random offsets,
 * a random crop of the grid), run in chunks of `tbptt` steps; the state
 * flows from chunk to chunk, the gradient does not, and every chunk is an
 * Adam step.  A new minibatch starts from a zero state, as wm-step starts
 * each clip.  With rollout_p > 0 some lanes of a chunk are fed the
 * model's own predictions from a random step on (scheduled sampling), so
 * rollouts learn to correct their own errors.
 *
 * Determinism: minibatch m is drawn from a generator seeded with
 * (seed, m) alone, and a checkpoint holds the parameters, Adam's moments,
 * the step and the state carried between chunks, so a resumed run is the
 * run that never stopped (for the same data, options and BLAS threads).
 *
 * Ownership: the caller owns the clip set (wm_clipset_free) and the
 * model; training updates the model in place. */
#ifndef WM_DYNAMICS_TRAIN_H
#define WM_DYNAMICS_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "wm_detect.h"
#include "wm_dynamics.h"
#include "wm_error.h"
#include "wm_tokenizer.h"
#include "wm_train.h"

/* ---- the training clips ---- */

typedef struct wm_clipset wm_clipset;

/* Keeps at most max_clips clips per source (a uniform sample of those
 * offered, by seeded reservoir sampling); C channels per latent. */
wm_clipset *wm_clipset_new(int C, size_t max_clips, uint64_t seed, wm_error *err);
void wm_clipset_free(wm_clipset **cs);

/* The labels a latent of a clip can carry, per latent: the object maps
 * [h, w, WM_DYNAMICS_OBJECT_MAPS] (the dynamics model's objects head), then
 * the ball centres [h, w, WM_DETECT_LABELS] (the detector's, wm_detect.h). */
#define WM_CLIPSET_LABELS (WM_DYNAMICS_OBJECT_MAPS + WM_DETECT_LABELS)

/* Offers a clip of n latents [n, h, w, C] (copied) from source, with the
 * labels of its latents [n, h * w * WM_CLIPSET_LABELS] (copied; NULL: the
 * clip has no object labels). */
wm_status wm_clipset_add(wm_clipset *cs, int source, const float *latents, const float *objects, int n, int h, int w,
                         wm_error *err);

/* Reads every clip of the stream spec (NULL or "-": stdin) as source
 * `source`: its latents in index order, or, for a clip that carries
 * frames, the frames encoded with tk (which may be NULL when the stream
 * holds latents only).  Latents of another channel count than the set's,
 * NaN or Inf values, frame sizes that are not multiples of 4 and a stream
 * without any clip are WM_E_INPUT, naming the clip.  A clip whose frames or
 * latents carry wm-synth's "objects" labels (x, y, r in pixels, visible)
 * keeps them as labels: object maps, where a latent cell (WM_TOKENIZER_PATCH
 * pixels on a side) is 1 in map 0 where a ball's disc meets it, and in map
 * 1 where a ball that is not visible does; and the centre, offset and
 * radius of each visible ball at the cell of its centre (wm_detector_label). */
wm_status wm_clipset_read(wm_clipset *cs, const char *spec, int source, size_t max_message, wm_tokenizer *tk,
                          wm_error *err);

size_t wm_clipset_count(const wm_clipset *cs);
/* Clips kept of source s, and clip i of them: its latents and labels
 * (NULL: none; labels may be NULL when not wanted), borrowed from the set. */
size_t wm_clipset_source_size(const wm_clipset *cs, int s);
void wm_clipset_clip(const wm_clipset *cs, int s, size_t i, const float **latents, const float **labels, int *n, int *h,
                     int *w);
size_t wm_clipset_labelled(const wm_clipset *cs);   /* clips with object maps */
size_t wm_clipset_latents(const wm_clipset *cs);
int wm_clipset_sources(const wm_clipset *cs);
/* Clips with at least min_len latents and a grid of at least h x w. */
size_t wm_clipset_usable(const wm_clipset *cs, int min_len, int h, int w);
/* Per-channel mean and standard deviation over every latent (C each). */
void wm_clipset_stats(const wm_clipset *cs, float *mean, float *std);
/* FNV-1a over sources, shapes and values, for --resume. */
uint64_t wm_clipset_hash(const wm_clipset *cs);

/* ---- training ---- */

typedef struct wm_dynamics_train_options {
    long steps;                /* optimizer steps (truncated windows) in all */
    int batch;                 /* windows per minibatch */
    int seq;                   /* predictions per window: seq + 1 latents */
    int tbptt;                 /* steps per truncated chunk (<= seq) */
    int crop_h, crop_w;        /* grid cells of each window */
    float lr, lr_floor, clip, beta;
    float change_weight;       /* wm_dynamics_set_change_weight, 0: off */
    float objects;             /* weight of the objects head's loss (wm_dynamics_set_objects), 0: off */
    float rollout_p;           /* share of lanes fed their own predictions in a chunk (scheduled sampling) */
    long warmup;
    uint64_t seed;
    const double *weights;     /* per-source sampling weights, NULL: equal */
    int keep_norm;             /* keep the model's normalisation (fine-tuning), else the clips' */
    const char *checkpoint;    /* path, NULL: none */
    double checkpoint_every, log_every;   /* seconds */
} wm_dynamics_train_options;

typedef struct wm_dynamics_progress {
    long step, steps;
    double nll;                /* mean NLL per value since the last report, normalised units */
    double mse_ratio;          /* squared error of the mean / that of "no change", same span */
    double objects;            /* the objects head's cross-entropy, same span (0: off) */
    double latents_per_s;      /* predictions per second */
    double elapsed, eta;
    float lr;
    double grad_norm;          /* largest since the last report */
    int final;
    const char *checkpointed;
} wm_dynamics_progress;

typedef void (*wm_dynamics_report_fn)(void *ctx, const wm_dynamics_progress *p);

/* Trains d on cs (d's normalisation is set from cs unless keep_norm; a
 * resumed run restores it).  With resume, o->checkpoint must come from the same
 * options, seed and data.  stop is polled once per step: nonzero writes a
 * checkpoint and returns WM_E_INTERRUPTED. */
wm_status wm_dynamics_train(wm_dynamics *d, const wm_clipset *cs, const wm_dynamics_train_options *o, int resume,
                            wm_dynamics_report_fn report, wm_train_stop_fn stop, void *ctx, wm_error *err);

#endif
