/* wm_tokenizer: the latent tokenizer, a convolutional autoencoder.
 *
 * Encoder: a frame x[H, W, 3] (values in [-1, 1]) -> space-to-depth by 4
 * (H/4 x W/4 x 48) -> 3x3 conv to `hidden` channels -> `blocks` residual
 * blocks (x + conv(silu(conv(silu(x))))) -> 3x3 conv to latent_channels:
 * the latent grid z[H/4, W/4, C], channel-last (HWC), so each cell of the
 * grid is the code of one 4x4 patch and its neighbourhood, and a small
 * ball keeps its position on the grid.  Decoder: the mirror image, 3x3
 * conv C -> hidden, residual blocks, 3x3 conv to 48 channels,
 * depth-to-space back to H x W x 3.  The path through the residual
 * stream is linear, so training starts from (and first learns) a linear
 * code like PCA's and the blocks add what a linear code cannot do.
 * Fully convolutional: any H and W divisible by 4.
 *
 * Parameters live in one wm_params buffer named "tokenizer.*" in the
 * model file; the architecture's hyper-parameters are __metadata__
 * ("tokenizer.latent_channels", ...).  Layers come from wm_nn (NHWC, conv
 * weights [out][ky][kx][in]); docs/tokenizer.md has the details.
 *
 * Ownership: wm_tokenizer_new / _load return an object the caller frees
 * with wm_tokenizer_free; it owns its parameters and a workspace that
 * grows to the largest batch seen.  Not thread-safe. */
#ifndef WM_TOKENIZER_H
#define WM_TOKENIZER_H

#include <stdint.h>

#include "wm_error.h"
#include "wm_params.h"
#include "wm_safetensors.h"

#define WM_TOKENIZER_PATCH 4           /* the grid is 4x coarser than the frame */
#define WM_TOKENIZER_PREFIX "tokenizer."
#define WM_TOKENIZER_ARCH "conv-ae-s2d4-v1"

typedef struct wm_tokenizer_config {
    int latent_channels;   /* C, 4..16 */
    int hidden;            /* channels of the hidden layers, 8..256 */
    int blocks;            /* residual blocks in each half, 0..8 */
} wm_tokenizer_config;

/* The shipped default: C = 8, hidden = 64, 2 blocks. */
wm_tokenizer_config wm_tokenizer_default_config(void);

typedef struct wm_tokenizer wm_tokenizer;

/* A tokenizer with the architecture cfg and weights drawn from seed
 * (PyTorch's default uniform(+-1/sqrt(fan_in)); the second conv of each
 * residual block scaled by 0.1 so blocks start near identity). */
wm_tokenizer *wm_tokenizer_new(const wm_tokenizer_config *cfg, uint64_t seed, wm_error *err);

/* Sets the linear path of the network to the per-patch PCA code of the
 * frames x[B, H, W, 3]: enc.in's first C output channels project each
 * 4x4 patch (minus the mean patch) on the top C principal components,
 * enc.out and dec.in pass those channels through, dec.out maps them back
 * and adds the mean, and the residual blocks start as the identity (their
 * second convolution zero).  The network then starts as exactly the PCA
 * baseline, and training only has to add what a linear code misses.
 * Needs hidden >= C. */
wm_status wm_tokenizer_init_pca(wm_tokenizer *tk, const float *x, int B, int H, int W, wm_error *err);

/* The tokenizer stored in an open model file (path names it in errors). */
wm_tokenizer *wm_tokenizer_from_file(const wm_safetensors *st, const char *path, wm_error *err);
wm_tokenizer *wm_tokenizer_load(const char *path, wm_error *err);

void wm_tokenizer_free(wm_tokenizer **tk);

const wm_tokenizer_config *wm_tokenizer_get_config(const wm_tokenizer *tk);
/* The parameter table, its values and (after a training step) gradients.
 * Calling it marks what is derived from the values (the Winograd
 * filters) stale; a caller that keeps the pointer and changes values
 * later calls it again before encoding (training passes always refresh). */
wm_params *wm_tokenizer_params(wm_tokenizer *tk);

/* Adds the parameters (values taken from buf, laid out like the params'
 * data; NULL: the values) as prefix + "tokenizer.*", plus the
 * architecture metadata, to b. */
wm_status wm_tokenizer_add_to(const wm_tokenizer *tk, const float *buf, const char *prefix,
                              wm_safetensors_builder *b, wm_error *err);

/* x[B, H, W, 3] -> z[B, H/4, W/4, C].  H, W: positive multiples of 4. */
wm_status wm_tokenizer_encode(wm_tokenizer *tk, float *z, const float *x, int B, int H, int W, wm_error *err);

/* z[B, h, w, C] -> y[B, 4h, 4w, 3] (not clamped). */
wm_status wm_tokenizer_decode(wm_tokenizer *tk, float *y, const float *z, int B, int h, int w, wm_error *err);

/* One training pass on x[B, H, W, 3]: encode, decode, loss = mean squared
 * error of the reconstruction against x, and the backward pass, which
 * OVERWRITES the gradient buffer (wm_tokenizer_params(tk)->grad).  The
 * latent and reconstruction of this pass stay readable through
 * wm_tokenizer_last until the next call. */
wm_status wm_tokenizer_train_pass(wm_tokenizer *tk, const float *x, int B, int H, int W, double *loss,
                                  wm_error *err);
void wm_tokenizer_last(const wm_tokenizer *tk, const float **z, const float **y);

/* Pixels <-> network values: v / 127.5 - 1, and back with rounding and
 * clamping.  rgb24 / gray8 in (channels 3 or 1), always 3 channels out. */
void wm_tokenizer_pixels_to_input(float *x, const uint8_t *pixels, size_t n_pixels, int channels);
void wm_tokenizer_output_to_pixels(uint8_t *rgb, const float *y, size_t n_pixels);

#endif
