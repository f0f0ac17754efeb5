/* wm_train: training the tokenizer (and the pieces the dynamics trainer
 * shares: checkpoints of parameters + Adam moments + step, deterministic
 * per-step sampling, the learning-rate schedule).
 *
 * Determinism: the minibatch of step s is drawn from a generator seeded
 * with (seed, s) alone, so a run is a function of (data, options, seed,
 * BLAS threads), and a run resumed from a checkpoint continues exactly
 * as if it had never stopped.
 *
 * Ownership: the caller owns the frame set (wm_frameset_free) and the
 * tokenizer; training updates the tokenizer's parameters in place. */
#ifndef WM_TRAIN_H
#define WM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "wm_adam.h"
#include "wm_error.h"
#include "wm_nn.h"
#include "wm_proto.h"
#include "wm_tokenizer.h"

/* ---- the training frames, in memory as rgb24 ---- */

typedef struct wm_frameset wm_frameset;

/* max_frames caps the set; past it, reservoir sampling (seeded) keeps a
 * uniform sample of everything offered, per source. */
wm_frameset *wm_frameset_new(size_t max_frames, uint64_t seed, wm_error *err);
void wm_frameset_free(wm_frameset **fs);

/* Offers a frame from input `source` (0, 1, ...); the pixels are copied
 * (gray8 becomes rgb24).  WM_E_INPUT when it is smaller than min_w x min_h
 * (the training crop), naming the clip and frame. */
wm_status wm_frameset_add(wm_frameset *fs, int source, const wm_frame_view *v, int min_w, int min_h,
                          wm_error *err);

/* Reads every frame of the stream spec (NULL or "-": stdin) as source
 * `source`; other messages are skipped.  WM_E_INPUT when the stream is
 * broken or holds no frame. */
wm_status wm_frameset_read(wm_frameset *fs, const char *spec, int source, size_t max_message, int min_w, int min_h,
                           wm_error *err);

size_t wm_frameset_count(const wm_frameset *fs);
int wm_frameset_sources(const wm_frameset *fs);
size_t wm_frameset_source_count(const wm_frameset *fs, int source);
/* A fingerprint of the contents (FNV-1a over sizes and pixels), stored in
 * checkpoints so --resume refuses different data. */
uint64_t wm_frameset_hash(const wm_frameset *fs);

/* Fills x[B, h, w, 3] with random crops of random frames: each item picks
 * a source with probability proportional to weights (NULL: equal), then a
 * frame of it uniformly, then a crop position, and with flip a mirror
 * image half the time. */
void wm_frameset_sample(const wm_frameset *fs, wm_rng *rng, const double *weights, int B, int h, int w,
                        int flip, float *x);

/* ---- tokenizer training ---- */

typedef struct wm_train_options {
    long steps;                /* optimizer steps in all */
    int batch;                 /* frames per step */
    int crop_w, crop_h;        /* training crop (multiples of 4) */
    float lr;                  /* peak learning rate */
    long warmup;               /* linear warm-up steps */
    float lr_floor;            /* final lr as a fraction of lr */
    float clip;                /* gradients scaled down to this global L2 norm (0: no clipping) */
    uint64_t seed;
    int flip;                  /* random horizontal mirror images */
    int pca_init;              /* start a fresh run from the PCA code of the data (wm_tokenizer_init_pca) */
    const double *weights;     /* per-source sampling weights, NULL: equal */
    const char *checkpoint;    /* path, NULL: none */
    double checkpoint_every;   /* seconds between checkpoints */
    double log_every;          /* seconds between progress reports */
} wm_train_options;

typedef struct wm_train_progress {
    long step, steps;
    double loss;               /* mean over the steps since the last report */
    double psnr;               /* of that loss, for 8-bit pixels (range 2 in network units) */
    double frames_per_s;
    double elapsed, eta;       /* seconds */
    float lr;
    double grad_norm;          /* largest global gradient norm since the last report */
    int final;                 /* the last report */
    const char *checkpointed;  /* set when a checkpoint was just written */
} wm_train_progress;

typedef void (*wm_train_report_fn)(void *ctx, const wm_train_progress *p);
/* Polled once per step; nonzero stops training (after a checkpoint) with
 * WM_E_INTERRUPTED. */
typedef int (*wm_train_stop_fn)(void *ctx);

/* Trains tk on fs.  With resume, the state in o->checkpoint (parameters,
 * Adam moments, step) is loaded first and must come from the same
 * options, seed and data.  Returns WM_OK when all steps are done. */
wm_status wm_train_tokenizer(wm_tokenizer *tk, const wm_frameset *fs, const wm_train_options *o, int resume,
                             wm_train_report_fn report, wm_train_stop_fn stop, void *ctx, wm_error *err);

/* Writes tk into path, keeping every tensor and metadata key of an
 * existing file there that is not the tokenizer's (the dynamics model);
 * extra metadata pairs (n_meta) are added under "tokenizer.".  *kept
 * receives the number of foreign tensors kept. */
wm_status wm_train_save_tokenizer(const wm_tokenizer *tk, const char *path, const char *const *meta, size_t n_meta,
                                  size_t *kept, wm_error *err);

/* PSNR in dB of a mean squared error in network units (range [-1, 1]). */
double wm_train_psnr(double mse);

#endif
