/* wm_step: the stage behind wm-step, the latent world model as a filter.
 *
 * Teacher mode (rollout 0): each `latent` of a clip passes through and is
 * followed by a `pred` of the next latent (index + 1): the model's mean
 * and per-element variance given the clip so far.  The state resets at
 * each `clip` (and whenever a latent names another clip).
 *
 * Rollout mode (rollout N >= 1, context K >= 1): the first K latents of a
 * clip go as in teacher mode; right after the K-th, the model imagines N
 * more latents, each its mean prediction fed back as the next input,
 * emitted as `latent` messages with `imagined: true` (indices K..K+N-1
 * after the K-th latent's index; pts continued at the clip's frame
 * interval when the latents carry pts).  The clip's later real latents
 * pass through unchanged, or are dropped with drop_rest (so a decoder
 * shows context then dream).  A clip with fewer than K latents imagines
 * from all it has, just before its `end`.
 *
 * A latent with NaN or Inf values, or a latent grid that changes size
 * within a clip, makes that clip an error: no further predictions for it,
 * and its `end` carries `error`.  Imagined latents in the input pass
 * through untouched.  Every other message passes through in order.
 *
 * Batching: with batch B > 1 the stage holds up to B whole clips and runs
 * them in lock-step (lanes of one grid size together), then emits
 * everything in input order; B = 1 streams, one latent in, its pred out.
 * Memory grows with B times the clip length.
 *
 * With a prior (wm_prior.h) each pred of a real latent also carries the
 * object prior of the next latent and its per-channel variance (fields
 * `prior`, `prior_var`); it runs on the CPU beside any backend, its
 * lanes' gravity set from each clip's fps (25 when the clip has none).
 * With imagine_prior, rollouts imagine with the prior instead of the
 * dynamics: the first imagined latent is the last context latent's prior,
 * each next one the prior of the one before (the tracker carries on from
 * the context: its balls keep falling, bouncing and hiding).
 *
 * The network runs behind a wm_step_backend: the CPU reference
 * (wm_step_backend_cpu) or the CUDA one (libwm/wm_gpu.h, linked only
 * into bin/wm-step).  Ownership: the stage owns its backend and destroys
 * it in wm_step_stage_free. */
#ifndef WM_STEP_H
#define WM_STEP_H

#include <stdint.h>

#include "wm_dynamics.h"
#include "wm_error.h"
#include "wm_loop.h"
#include "wm_prior.h"

typedef struct wm_step_backend {
    void *ctx;
    const char *name;          /* "cpu", "cuda" */
    int C;                     /* latent channels */
    /* Prepares `lanes` lanes of h x w cells, every state zero. */
    wm_status (*reset)(void *ctx, int lanes, int h, int w, wm_error *err);
    /* T steps.  At step t lanes 0..active[t]-1 run (active non-increasing,
     * the others keep their state); a lane's input is x[t] for
     * t < feed_from (>= 1), else its own mean from step t-1.  x, mean and
     * var are [T][lanes][h][w][C] (rows of inactive lanes untouched). */
    wm_status (*run)(void *ctx, int T, const int *active, const float *x, int feed_from, float *mean, float *var,
                     wm_error *err);
    void (*destroy)(void *ctx);
} wm_step_backend;

/* The CPU backend over d (borrowed; must outlive the backend). */
wm_status wm_step_backend_cpu(wm_dynamics *d, wm_step_backend *out, wm_error *err);

typedef struct wm_step_options {
    int rollout;               /* N imagined latents per clip, 0: teacher mode */
    int context;               /* K real latents before imagining */
    int drop_rest;             /* rollout: drop the real latents after the context */
    int batch;                 /* clips in lock-step, >= 1 */
    const wm_prior_model *prior;  /* borrowed, must outlive the stage; NULL: the dynamics alone */
    int imagine_prior;         /* rollouts: imagine with the object prior (needs prior), else the dynamics */
} wm_step_options;

typedef struct wm_step_stage wm_step_stage;

/* Takes over backend (destroyed with the stage, also on failure). */
wm_step_stage *wm_step_stage_new(const wm_step_backend *backend, const wm_step_options *o, wm_error *err);
void wm_step_stage_free(wm_step_stage **s);

wm_stage wm_step_stage_get(wm_step_stage *s);

typedef struct wm_step_stats {
    uint64_t steps;            /* latents through the network (lanes x steps) */
    uint64_t preds, imagined;  /* messages emitted */
    uint64_t clip_errors;      /* clips ended with an error */
    double seconds;            /* in the backend */
    double prior_seconds;      /* in the object prior */
} wm_step_stats;

void wm_step_stage_stats(const wm_step_stage *s, wm_step_stats *out);

#endif
