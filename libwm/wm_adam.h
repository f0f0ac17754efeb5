/* wm_adam: the Adam optimizer (with optional decoupled weight decay,
 * AdamW) over one flat parameter buffer, as llm.c updates its single
 * parameter block.  Its moments are saved in checkpoints so a resumed run
 * continues exactly where it stopped.
 *
 * The update matches torch.optim.Adam / AdamW:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr * wd * p   (AdamW only)
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *
 * Ownership: the caller owns the wm_adam struct; wm_adam_init allocates
 * its moments, wm_adam_free releases them. */
#ifndef WM_ADAM_H
#define WM_ADAM_H

#include <stddef.h>

#include "wm_error.h"

typedef struct wm_adam {
    float *m, *v;          /* first and second moments, n floats each */
    size_t n;
    long step;             /* updates done so far (t of the bias correction) */
    float beta1, beta2, eps, weight_decay;
} wm_adam;

/* Zeroed moments for n parameters; PyTorch's defaults (0.9, 0.999, 1e-8, 0). */
wm_status wm_adam_init(wm_adam *a, size_t n, wm_error *err);
void wm_adam_free(wm_adam *a);

/* One update of params[0..n) from grads[0..n) with learning rate lr. */
void wm_adam_update(wm_adam *a, float *params, const float *grads, float lr);

/* Scales grads[0..n) so that their global L2 norm is at most max_norm
 * (max_norm <= 0: unchanged); returns the norm before scaling. */
double wm_clip_grad_norm(float *grads, size_t n, double max_norm);

/* Learning rate at step of total: linear warm-up over `warmup` steps, then
 * a cosine decay from lr to lr * floor_frac at the last step. */
float wm_lr_schedule(long step, long total, long warmup, float lr, float floor_frac);

#endif
