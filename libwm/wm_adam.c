#include "wm_adam.h"

#include <math.h>
#include <stdlib.h>

wm_status wm_adam_init(wm_adam *a, size_t n, wm_error *err)
{
    a->m = calloc(n ? n : 1, sizeof(float));
    a->v = calloc(n ? n : 1, sizeof(float));
    if (!a->m || !a->v) {
        wm_adam_free(a);
        return wm_error_set(err, WM_E_SYSTEM, "out of memory for the optimizer state");
    }
    a->n = n;
    a->step = 0;
    a->beta1 = 0.9f;
    a->beta2 = 0.999f;
    a->eps = 1e-8f;
    a->weight_decay = 0.0f;
    return WM_OK;
}

void wm_adam_free(wm_adam *a)
{
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
    a->n = 0;
}

void wm_adam_update(wm_adam *a, float *params, const float *grads, float lr)
{
    a->step++;
    /* bias corrections in double: at step 1, 1 - 0.999 loses digits in float */
    const double bc1 = 1.0 - pow(a->beta1, (double)a->step), bc2 = 1.0 - pow(a->beta2, (double)a->step);
    const float step_size = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float b1 = a->beta1, b2 = a->beta2, decay = 1.0f - lr * a->weight_decay;
    for (size_t i = 0; i < a->n; i++) {
        float g = grads[i];
        float m = a->m[i] = b1 * a->m[i] + (1.0f - b1) * g;
        float v = a->v[i] = b2 * a->v[i] + (1.0f - b2) * g * g;
        params[i] = params[i] * decay - step_size * m / (sqrtf(v) * inv_sqrt_bc2 + a->eps);
    }
}

double wm_clip_grad_norm(float *grads, size_t n, double max_norm)
{
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)grads[i] * grads[i];
    double norm = sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float k = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++) grads[i] *= k;
    }
    return norm;
}

float wm_lr_schedule(long step, long total, long warmup, float lr, float floor_frac)
{
    if (warmup > 0 && step < warmup) return lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup + 1) return lr;
    double progress = (double)(step - warmup) / (double)(total - warmup - 1);
    if (progress > 1.0) progress = 1.0;
    double cosine = 0.5 * (1.0 + cos(3.141592653589793 * progress));
    return (float)(lr * (floor_frac + (1.0 - floor_frac) * cosine));
}
