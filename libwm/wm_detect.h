/* wm_detect: finds the balls of a scene in its latent grid.
 *
 * The first stage of the object-centric prior (docs/design.md): a small
 * fully convolutional network reads one latent z [h, w, C] (normalised
 * per channel) and gives, per cell, four maps:
 *   0  the logit that a visible ball's centre lies in this cell,
 *   1  the logit of the centre's x offset within the cell (sigmoid: 0..1),
 *   2  the same for y,
 *   3  the ball's radius in cells.
 * Layers: 3x3 C -> hidden, ReLU; 3x3 hidden -> hidden, ReLU; 3x3 dilation
 * 2, ReLU; 1x1 hidden -> 4 (a 9 x 9 cell view, 36 pixels).  Trained on
 * wm-synth's ball labels (centres, radii, visibility) with a weighted
 * binary cross-entropy for the centres and L1 for the offsets and radii
 * at the labelled cells; wm_detector_balls turns the maps into balls
 * (local maxima of the centre probability).
 *
 * Parameters live in one wm_params buffer named "detector.*" in the
 * model file, beside the tokenizer and the dynamics model, with the
 * normalisation detector.norm.mean / .std [C] and metadata
 * detector.arch, detector.hidden.  Weights are [out, kh, kw, in],
 * activations NHWC (wm_nn.h).
 *
 * Ownership: wm_detector_new / _load return a detector the caller frees
 * with wm_detector_free; it owns its parameters and a workspace that grows
 * to the largest batch seen.  Not thread-safe. */
#ifndef WM_DETECT_H
#define WM_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"
#include "wm_params.h"
#include "wm_safetensors.h"

#define WM_DETECT_PREFIX "detector."
#define WM_DETECT_ARCH "balls-conv4-v1"
#define WM_DETECT_MAPS 4    /* per cell: centre logit, x and y offset logits, radius (cells) */
#define WM_DETECT_LABELS 4  /* per cell: centre (0 or 1), x and y offset in [0, 1), radius (cells) */

typedef struct wm_detect_config {
    int latent_channels;    /* C, as the tokenizer's, 1..64 */
    int hidden;             /* channels of the three hidden layers, 4..256 */
} wm_detect_config;

/* hidden 48 */
wm_detect_config wm_detect_default_config(int latent_channels);

typedef struct wm_detector wm_detector;

/* A detector with weights drawn from seed (PyTorch's uniform(+-1/sqrt(fan_in)))
 * and the identity normalisation. */
wm_detector *wm_detector_new(const wm_detect_config *cfg, uint64_t seed, wm_error *err);
/* The detector stored in an open model file (path names it in errors):
 * NULL with WM_E_INPUT when the file has none. */
wm_detector *wm_detector_from_file(const wm_safetensors *st, const char *path, wm_error *err);
wm_detector *wm_detector_load(const char *path, wm_error *err);
void wm_detector_free(wm_detector **d);

const wm_detect_config *wm_detector_get_config(const wm_detector *d);
wm_params *wm_detector_params(wm_detector *d);
void wm_detector_set_norm(wm_detector *d, const float *mean, const float *std);

/* Writes d into the model file path, keeping every tensor and metadata key
 * of an existing file there that is not the detector's; extra metadata
 * pairs (n_meta) go under "detector.". */
wm_status wm_detector_save(const wm_detector *d, const char *path, const char *const *meta, size_t n_meta,
                           wm_error *err);

/* maps[B, h, w, WM_DETECT_MAPS] for latents z[B, h, w, C] in latent units
 * (the workspace keeps what a following wm_detector_backward needs). */
wm_status wm_detector_forward(wm_detector *d, const float *z, int B, int h, int w, float *maps, wm_error *err);

typedef struct wm_detect_loss {
    double total;           /* centre + offset + radius */
    double centre;          /* weighted binary cross-entropy, mean over cells */
    double offset, radius;  /* L1, summed over a cell's values, mean over labelled cells */
    long labelled;          /* cells with a centre */
} wm_detect_loss;

/* The loss of the last forward pass against labels[B, h, w, WM_DETECT_LABELS],
 * centres weighted pos_weight against the empty cells (PyTorch's
 * binary_cross_entropy_with_logits(pos_weight=...)); with grad, its
 * gradients are ACCUMULATED into the parameters' gradient buffer
 * (wm_params_alloc_grad first). */
wm_detect_loss wm_detector_loss(wm_detector *d, const float *labels, float pos_weight, int grad);

/* A ball found in a latent, in pixels of the decoded frame (a cell is
 * `patch` pixels on a side), with the centre probability as its score. */
typedef struct wm_detection {
    float x, y, r, score;
} wm_detection;

/* The balls in one latent's maps [h, w, WM_DETECT_MAPS]: cells whose centre
 * probability is above thr and no lower than any of their 8 neighbours', in
 * row-major order; at most max are written, the count found is returned. */
int wm_detector_balls(const float *maps, int h, int w, int patch, float thr, wm_detection *out, int max);

/* The labels of one ball for the cell grid labels[h, w, WM_DETECT_LABELS]
 * (zeroed by the caller): the cell that holds its centre (x, y, r in
 * pixels, cells of `patch` pixels); a centre outside the grid, or a cell
 * already taken by a larger ball, leaves the labels as they are. */
void wm_detector_label(float *labels, int h, int w, int patch, double x, double y, double r);

#endif
