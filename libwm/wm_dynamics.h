/* wm_dynamics: the latent dynamics model, a recurrent predictor on the
 * tokenizer's latent grid.
 *
 * Each step reads latent z_t [H, W, C] (normalised per channel with the
 * training set's mean and std) together with its change since the last
 * step, z_t - z_{t-1} (zero at a clip's first latent), and the state of
 * two ConvGRU layers (wm_convgru.h; `hidden` channels each, 3x3 kernels;
 * the first layer undilated, the second with dilation `dilation` so one
 * step reaches 4 cells = 16 pixels), and predicts z_{t+1} as a Gaussian
 * per element: a
 * 3x3 convolution of the second layer's state gives a residual on z_t
 * (the mean) and a log variance (wm_gauss_head_forward).  Trained with
 * the Gaussian negative log-likelihood, the variance is calibrated: an
 * element's predicted variance is its expected squared error, so
 * surprise is a likelihood, not a raw distance.  The state is what lets
 * the model remember what it can no longer see (a ball behind a screen).
 *
 * Parameters live in one wm_params buffer named "dynamics.*" in the model
 * file (shapes in docs/model.md); the normalisation is the tensors
 * dynamics.norm.mean and dynamics.norm.std [C], the hyper-parameters are
 * __metadata__ ("dynamics.arch", "dynamics.hidden", ...).
 *
 * Ownership: wm_dynamics_new / _load return a model the caller frees with
 * wm_dynamics_free; it owns its parameters and a training workspace that
 * grows to the largest window seen.  A wm_dynamics_state (the recurrent
 * state of a number of lanes, i.e. clips run in lock-step, plus the
 * scratch space of a step) borrows its model, which must outlive it.
 * Neither is thread-safe. */
#ifndef WM_DYNAMICS_H
#define WM_DYNAMICS_H

#include <stdint.h>

#include "wm_error.h"
#include "wm_params.h"
#include "wm_safetensors.h"

#define WM_DYNAMICS_PREFIX "dynamics."
#define WM_DYNAMICS_ARCH "convgru2-gauss-v2"
#define WM_DYNAMICS_LAYERS 2
/* log variance floor in normalised units (std 0.0067 of the data's) */
#define WM_DYNAMICS_LOGVAR_MIN (-10.0f)

typedef struct wm_dynamics_config {
    int latent_channels;   /* C, as the tokenizer's, 1..64 */
    int hidden;            /* channels of each GRU layer, a multiple of 4 in 4..256 */
    int dilation;          /* of the second layer, 1..4 */
    int objects;           /* 0, or WM_DYNAMICS_OBJECT_MAPS: the objects head (below) */
} wm_dynamics_config;

/* The objects head, a training aid: a 3x3 convolution of the second
 * layer's state that predicts, for the next latent, which cells a ball
 * covers (map 0, seen or hidden behind a screen) and which cells a
 * hidden ball covers (map 1), as logits.  Trained on wm-synth's object
 * labels, it makes the state hold where a ball is while nothing shows it;
 * inference (wm-step) never runs it.  Stored as dynamics.objects.* with
 * metadata dynamics.objects = 2 when present. */
#define WM_DYNAMICS_OBJECT_MAPS 2

/* The shipped default: hidden 32, dilation 2, no objects head (C is the
 * tokenizer's). */
wm_dynamics_config wm_dynamics_default_config(int latent_channels);

typedef struct wm_dynamics wm_dynamics;

/* A model of architecture cfg with weights drawn from seed (PyTorch's
 * uniform(+-1/sqrt(fan_in)); update-gate bias +1 so the state starts out
 * kept; head scaled by 0.1 so the first prediction is "no change") and
 * the identity normalisation. */
wm_dynamics *wm_dynamics_new(const wm_dynamics_config *cfg, uint64_t seed, wm_error *err);

/* The dynamics model stored in an open model file (path names it in
 * errors).  WM_E_INPUT with a clear message when the file has none. */
wm_dynamics *wm_dynamics_from_file(const wm_safetensors *st, const char *path, wm_error *err);
wm_dynamics *wm_dynamics_load(const char *path, wm_error *err);
void wm_dynamics_free(wm_dynamics **d);

const wm_dynamics_config *wm_dynamics_get_config(const wm_dynamics *d);
/* The parameter table (values, and gradients after a training pass).
 * Calling it marks what is derived from the values (Winograd filters)
 * stale, as wm_tokenizer_params does. */
wm_params *wm_dynamics_params(wm_dynamics *d);

/* The five convolutions (gru0.x, gru0.h, gru1.x, gru1.h, head): views of
 * their weights [out][3][3][in] and biases, for another backend. */
void wm_dynamics_weights(const wm_dynamics *d, const float *weight[5], const float *bias[5]);

/* The per-channel normalisation, C values each (std > 0). */
void wm_dynamics_set_norm(wm_dynamics *d, const float *mean, const float *std);
void wm_dynamics_get_norm(const wm_dynamics *d, const float **mean, const float **std);

/* 1 when the model file's tokenizer is the one this model was trained on,
 * 0 when it is another, -1 when unknown (no tokenizer, no record). */
int wm_dynamics_tokenizer_matches(const wm_dynamics *d);

/* Adds the parameters (values from buf, laid out like the params' data;
 * NULL: the values) and normalisation as prefix + "dynamics.*", plus the
 * architecture metadata, to b. */
wm_status wm_dynamics_add_to(const wm_dynamics *d, const float *buf, const char *prefix, wm_safetensors_builder *b,
                             wm_error *err);

/* Writes d into the model file path, keeping every tensor and metadata
 * key of an existing file there that is not the dynamics model's (the
 * tokenizer), and recording a fingerprint of that tokenizer; extra
 * metadata pairs (n_meta) go under "dynamics.". */
wm_status wm_dynamics_save(const wm_dynamics *d, const char *path, const char *const *meta, size_t n_meta,
                           wm_error *err);

/* ---- inference: lanes stepped in lock-step ---- */

typedef struct wm_dynamics_state wm_dynamics_state;

/* State for up to `lanes` clips of latent grids H x W, all zero.  The
 * state holds each lane's last input too, for the change z_t - z_{t-1};
 * the first step after a reset takes it as zero for every lane (lanes
 * start together: the lanes a step runs are a prefix that only shrinks). */
wm_dynamics_state *wm_dynamics_state_new(wm_dynamics *d, int lanes, int H, int W, wm_error *err);
void wm_dynamics_state_free(wm_dynamics_state **s);
void wm_dynamics_state_reset(wm_dynamics_state *s);   /* every lane back to zero (a new clip) */
int wm_dynamics_state_lanes(const wm_dynamics_state *s);
/* Sets every lane's state: hidden [LAYERS][lanes, H, W, hidden] (NULL:
 * zeros, as wm_dynamics_train_pass lays it out) and the last input, prev
 * [lanes, H, W, C] in latent units (NULL: the next step starts a clip). */
void wm_dynamics_state_load(wm_dynamics_state *s, const float *hidden, const float *prev);
/* The hidden state of layer l: [lanes, H, W, hidden] (for tests). */
float *wm_dynamics_state_hidden(wm_dynamics_state *s, int l);

/* One step of lanes 0..n-1: x[n, H, W, C] latents in -> mean and var
 * [n, H, W, C], the predicted next latents and per-element variances, in
 * latent units; the state advances.  var may be NULL.  The convolutions
 * run by Winograd where the channel counts allow, else im2col + GEMM. */
void wm_dynamics_step(wm_dynamics *d, wm_dynamics_state *s, int n, const float *x, float *mean, float *var);

/* T steps at once, the same bytes as T calls of wm_dynamics_step: at step
 * t lanes 0..active[t]-1 run (active non-increasing, active[0] <= the
 * state's lanes); a lane's input is x[t] for t < feed_from (>= 1), else its
 * own mean of step t-1.  x, mean and var (may be NULL) are [T][lanes][H, W,
 * C].  Lanes are independent, so each thread takes a group of lanes
 * through all T steps and then claims the next group: the threads meet
 * once per run instead of once per step, and a thread the OS preempts
 * delays only the group it holds. */
void wm_dynamics_run(wm_dynamics *d, wm_dynamics_state *s, int T, const int *active, int lanes, const float *x,
                     int feed_from, float *mean, float *var);

/* ---- training ---- */

/* Over the predictions made from the clip's own latents (with fed_from,
 * the steps before it). */
typedef struct wm_dynamics_loss {
    double nll;        /* mean Gaussian NLL per value, in normalised units */
    double mse;        /* mean squared error of the predicted mean, normalised */
    double mse_copy;   /* the same for predicting "no change" (z_{t+1} = z_t) */
    double objects;    /* mean cross-entropy of the objects head per map value (0: not trained) */
} wm_dynamics_loss;

/* One training pass over a window: seq[T+1, B, H, W, C] (time-major,
 * latent units); predicts seq[t+1] for t < T from the inputs fed at steps
 * 0..t, which are seq[0..T-1] (inputs NULL: teacher forcing) or inputs
 * [T, B, H, W, C] (for training on the model's own predictions, which
 * are then constants; fed_from[b], when not NULL, is the step from which
 * lane b was fed its own predictions: there the mean learns but the
 * variance does not, so it stays calibrated for teacher mode), starting
 * from state ([LAYERS][B, H, W, hidden],
 * NULL: zeros) and the input fed before the window, prev [B, H, W, C]
 * (NULL: the window starts a clip), and leaving the state after T steps
 * in state (truncated BPTT: the next window continues from it, gradients
 * do not).  The loss is the beta-NLL averaged over all values; the
 * backward pass OVERWRITES the gradient buffer. */
wm_status wm_dynamics_train_pass(wm_dynamics *d, const float *seq, const float *inputs, const int *fed_from,
                                 const float *prev, int T, int B, int H, int W, float *state, float beta,
                                 wm_dynamics_loss *loss, wm_error *err);

/* Weighs the mean's squared error at each value by 1 + a * min(c^2, 4),
 * c the clip's change there from step t to t+1 in normalised units, so
 * the few values where something moves (or comes out from behind a
 * screen) count more than the calm background; the variance's gradient
 * stays unweighted, so it stays calibrated.  0 (the default): off. */
void wm_dynamics_set_change_weight(wm_dynamics *d, float a);

/* Targets of the objects head for the next training passes: maps
 * [T+1, B, H, W, WM_DYNAMICS_OBJECT_MAPS] laid out as the pass's seq (0 or
 * 1: map k of latent t), lanes[B] nonzero where a lane has labels (NULL:
 * every lane; footage without labels trains the rest of the model only).
 * The pass adds weight times the mean binary cross-entropy of the head's
 * logits for latent t+1 at step t, over every map value of the labelled
 * lanes.  maps NULL or weight 0: off.  Borrowed; the model needs an
 * objects head (config.objects). */
void wm_dynamics_set_objects(wm_dynamics *d, const float *maps, const unsigned char *lanes, float weight);

/* The predicted means and log variances of the last training pass,
 * [T, B, H, W, C] in normalised units, valid until the next pass (for
 * tests). */
void wm_dynamics_last(const wm_dynamics *d, const float **mean, const float **logvar);

#endif
