/* wm_detect_train: training the ball detector (wm_detect.h) on labelled
 * latents, and measuring it.
 *
 * Data: the labelled clips of a wm_clipset (wm-synth's streams carry the
 * labels), and with `negatives` the clips without labels too, as scenes
 * without a visible ball (footage known to hold none teaches the detector
 * what is not a ball).  Each Adam step is a minibatch of `batch` latents
 * (a clip, uniformly or by source weight, then one of its latents, then a
 * crop of the grid), with the
 * learning rate warmed up and decayed by a cosine (wm_adam.h).
 * Minibatch m is drawn from a generator seeded with (seed, m) alone, so a
 * run is the same for the same data, options and BLAS threads.
 *
 * Ownership: the caller owns the clip set and the detector; training
 * updates the detector in place. */
#ifndef WM_DETECT_TRAIN_H
#define WM_DETECT_TRAIN_H

#include <stdint.h>

#include "wm_detect.h"
#include "wm_dynamics_train.h"
#include "wm_error.h"

typedef struct wm_detect_train_options {
    long steps;
    int batch;                 /* latents per minibatch */
    int crop_h, crop_w;        /* grid cells of each latent drawn */
    float lr, lr_floor;        /* peak, and final as a fraction of it */
    long warmup;
    float pos_weight;          /* weight of the centre cells in the cross-entropy */
    int negatives;             /* clips without labels count as scenes without a visible ball */
    const double *weights;     /* per-source sampling weights (a source, then a clip of it); NULL: every
                                * clip alike */
    uint64_t seed;
    double log_every;          /* seconds between reports, 0: every step */
} wm_detect_train_options;

typedef struct wm_detect_progress {
    long step, steps;
    wm_detect_loss loss;       /* mean per step since the last report */
    double latents_per_s, elapsed, eta;
    float lr;
    int final;
} wm_detect_progress;

typedef void (*wm_detect_report_fn)(void *ctx, const wm_detect_progress *p);

/* Trains d on the labelled clips of cs (d's normalisation is set from all
 * of cs's latents).  stop (may be NULL) is polled once per step: nonzero
 * returns WM_E_INTERRUPTED with d as far as it got.  WM_E_INPUT when cs
 * has no labelled clip of at least the crop. */
wm_status wm_detect_train(wm_detector *d, const wm_clipset *cs, const wm_detect_train_options *o,
                          wm_detect_report_fn report, wm_train_stop_fn stop, void *ctx, wm_error *err);

/* How well d finds the labelled balls of cs: every latent of every
 * labelled clip, balls above thr (wm_detector_balls), each label matched
 * to the nearest unmatched ball within 1.5 cells. */
typedef struct wm_detect_eval {
    long balls, found, extra;  /* labelled balls, those matched, unmatched detections */
    double err_median, err_p90;    /* centre error of the matches, pixels */
    double radius_median;          /* |radius error| of the matches, pixels */
} wm_detect_eval;

wm_status wm_detect_evaluate(wm_detector *d, const wm_clipset *cs, float thr, wm_detect_eval *out, wm_error *err);

#endif
