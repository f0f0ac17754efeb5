#include "wm_detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_convgru.h"
#include "wm_model.h"
#include "wm_nn.h"
#include "wm_rng.h"

/* parameter entries, in file order: three 3x3 layers and the 1x1 head */
enum { P_W0, P_B0, P_W1, P_B1, P_W2, P_B2, P_HW, P_HB, P_COUNT };
#define LAYERS 3
static const int layer_dilation[LAYERS] = { 1, 1, 2 };

struct wm_detector {
    wm_detect_config cfg;
    wm_params params;
    int idx[P_COUNT];
    float *norm_mean, *norm_std;
    /* the last forward pass, for the loss: N = B*h*w cells */
    int B, h, w;
    size_t cap;                       /* cells the buffers hold */
    float *x;                         /* [N, C] normalised input */
    float *pre[LAYERS], *act[LAYERS]; /* [N, hidden] before and after ReLU */
    float *maps;                      /* [N, WM_DETECT_MAPS] */
    float *dmaps, *dact, *dpre;       /* gradients */
    float *scratch;
    size_t scratch_cap;
};

wm_detect_config wm_detect_default_config(int latent_channels)
{
    return (wm_detect_config){ latent_channels, 48 };
}

static int layer_cin(const wm_detect_config *c, int l) { return l ? c->hidden : c->latent_channels; }

static wm_detector *detector_alloc(const wm_detect_config *cfg, wm_error *err)
{
    if (cfg->latent_channels < 1 || cfg->latent_channels > 64 || cfg->hidden < 4 || cfg->hidden > 256) {
        wm_error_set(err, WM_E_USAGE, "detector: C = %d, hidden = %d out of range", cfg->latent_channels, cfg->hidden);
        return NULL;
    }
    wm_detector *d = calloc(1, sizeof *d);
    if (!d) {
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    const int Ch = cfg->hidden;
    int ok = 1;
    for (int l = 0; l < LAYERS; l++) {
        int ws[4] = { Ch, 3, 3, layer_cin(cfg, l) }, bs[1] = { Ch };
        ok &= (d->idx[2 * l] = wm_params_add(&d->params, 4, ws, "l%d.weight", l)) >= 0;
        ok &= (d->idx[2 * l + 1] = wm_params_add(&d->params, 1, bs, "l%d.bias", l)) >= 0;
    }
    int hw[4] = { WM_DETECT_MAPS, 1, 1, Ch }, hb[1] = { WM_DETECT_MAPS };
    ok &= (d->idx[P_HW] = wm_params_add(&d->params, 4, hw, "head.weight")) >= 0;
    ok &= (d->idx[P_HB] = wm_params_add(&d->params, 1, hb, "head.bias")) >= 0;
    d->norm_mean = calloc((size_t)cfg->latent_channels, sizeof(float));
    d->norm_std = malloc((size_t)cfg->latent_channels * sizeof(float));
    if (!ok || !d->norm_mean || !d->norm_std || wm_params_alloc(&d->params, err) != WM_OK) {
        if (ok && d->norm_mean && d->norm_std) wm_error_prefix(err, "detector");
        else wm_error_set(err, WM_E_SYSTEM, "out of memory");
        wm_detector_free(&d);
        return NULL;
    }
    for (int c = 0; c < cfg->latent_channels; c++) d->norm_std[c] = 1.0f;
    return d;
}

wm_detector *wm_detector_new(const wm_detect_config *cfg, uint64_t seed, wm_error *err)
{
    wm_detector *d = detector_alloc(cfg, err);
    if (!d) return NULL;
    wm_rng rng;
    wm_rng_seed(&rng, seed);
    for (int p = 0; p < P_COUNT; p += 2) {
        const wm_param *w = &d->params.items[d->idx[p]];
        float bound = 1.0f / sqrtf((float)(w->shape[1] * w->shape[2] * w->shape[3]));
        float *wv = wm_params_value(&d->params, d->idx[p]), *bv = wm_params_value(&d->params, d->idx[p + 1]);
        for (size_t k = 0; k < w->numel; k++) wv[k] = bound * (float)(2.0 * wm_rng_uniform(&rng) - 1.0);
        for (int k = 0; k < w->shape[0]; k++) bv[k] = bound * (float)(2.0 * wm_rng_uniform(&rng) - 1.0);
    }
    return d;
}

wm_detector *wm_detector_from_file(const wm_safetensors *st, const char *path, wm_error *err)
{
    if (wm_model_check_arch(st, path, WM_DETECT_PREFIX, WM_DETECT_ARCH, "ball detector", "detector",
                            "; train one with wm-train detector", err))
        return NULL;
    wm_detect_config cfg = { 0, 0 };
    if (wm_model_meta_int(st, path, WM_DETECT_PREFIX "latent_channels", 1, 64, &cfg.latent_channels, err) ||
        wm_model_meta_int(st, path, WM_DETECT_PREFIX "hidden", 4, 256, &cfg.hidden, err))
        return NULL;
    wm_detector *d = detector_alloc(&cfg, err);
    if (!d) return NULL;
    if (wm_params_load(&d->params, st, path, WM_DETECT_PREFIX, err) != WM_OK) {
        wm_detector_free(&d);
        return NULL;
    }
    if (wm_model_read_norm(st, path, WM_DETECT_PREFIX, cfg.latent_channels, d->norm_mean, d->norm_std, err))
        wm_detector_free(&d);
    return d;
}

wm_detector *wm_detector_load(const char *path, wm_error *err)
{
    wm_safetensors *st = wm_safetensors_open(path, err);
    if (!st) return NULL;
    wm_detector *d = wm_detector_from_file(st, path, err);
    wm_safetensors_close(&st);
    return d;
}

static void free_workspace(wm_detector *d)
{
    free(d->x);
    for (int l = 0; l < LAYERS; l++) free(d->pre[l]), free(d->act[l]);
    free(d->maps);
    free(d->dmaps);
    free(d->dact);
    free(d->dpre);
    free(d->scratch);
}

void wm_detector_free(wm_detector **dp)
{
    wm_detector *d = *dp;
    if (!d) return;
    wm_params_free(&d->params);
    free(d->norm_mean);
    free(d->norm_std);
    free_workspace(d);
    free(d);
    *dp = NULL;
}

const wm_detect_config *wm_detector_get_config(const wm_detector *d) { return &d->cfg; }
wm_params *wm_detector_params(wm_detector *d) { return &d->params; }

void wm_detector_set_norm(wm_detector *d, const float *mean, const float *std)
{
    memcpy(d->norm_mean, mean, (size_t)d->cfg.latent_channels * sizeof(float));
    memcpy(d->norm_std, std, (size_t)d->cfg.latent_channels * sizeof(float));
}

wm_status wm_detector_save(const wm_detector *d, const char *path, const char *const *meta, size_t n_meta,
                           wm_error *err)
{
    wm_safetensors *old = NULL;
    wm_safetensors_builder *b = wm_safetensors_builder_new(err);
    wm_status st = b ? wm_model_keep_others(b, path, WM_DETECT_PREFIX, &old, NULL, err) : err->code;
    if (!st) st = wm_params_add_to(&d->params, d->params.data, WM_DETECT_PREFIX, b, err);
    uint64_t shape[1] = { (uint64_t)d->cfg.latent_channels };
    if (!st) st = wm_safetensors_builder_add(b, WM_DETECT_PREFIX, "norm.mean", WM_ST_F32, 1, shape, d->norm_mean, err);
    if (!st) st = wm_safetensors_builder_add(b, WM_DETECT_PREFIX, "norm.std", WM_ST_F32, 1, shape, d->norm_std, err);
    char num[2][32];
    snprintf(num[0], sizeof num[0], "%d", d->cfg.latent_channels);
    snprintf(num[1], sizeof num[1], "%d", d->cfg.hidden);
    const char *fixed[] = {
        "arch", WM_DETECT_ARCH,
        "latent_channels", num[0],
        "hidden", num[1],
        "layout", "NHWC; conv weight [out, kh, kw, in]; l0, l1 3x3, l2 3x3 dilation 2, each ReLU; head 1x1",
        "input", "the latent normalised: (z - norm.mean) / norm.std",
        "output", "head [4] per cell: centre logit, x and y offset in the cell (sigmoid), radius in cells",
    };
    if (!st) st = wm_model_add_meta(b, WM_DETECT_PREFIX, fixed, sizeof fixed / sizeof fixed[0] / 2, old, meta, n_meta, err);
    if (!st) st = wm_safetensors_builder_write(b, path, err);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&old);
    return st;
}

/* ---- forward ---- */

/* Grows the workspace to B latents of h x w cells (the scratch depends on
 * the shape, the rest on the cell count). */
static wm_status reserve(wm_detector *d, int B, int h, int w, wm_error *err)
{
    const size_t N = (size_t)B * h * w;
    const int C = d->cfg.latent_channels, Ch = d->cfg.hidden;
    size_t need_scratch = wm_conv2d_scratch_floats(Ch, WM_DETECT_MAPS, 1);
    for (int l = 0; l < LAYERS; l++) {
        size_t s = wm_dconv3x3_scratch_floats(B, h, w, layer_cin(&d->cfg, l), Ch, layer_dilation[l]);
        if (s > need_scratch) need_scratch = s;
    }
    if (N > d->cap) {
        free_workspace(d);
        memset(d->pre, 0, sizeof d->pre);
        memset(d->act, 0, sizeof d->act);
        d->x = malloc(N * C * sizeof(float));
        int ok = d->x != NULL;
        for (int l = 0; l < LAYERS; l++) {
            d->pre[l] = malloc(N * Ch * sizeof(float));
            d->act[l] = malloc(N * Ch * sizeof(float));
            ok = ok && d->pre[l] && d->act[l];
        }
        d->maps = malloc(N * WM_DETECT_MAPS * sizeof(float));
        d->dmaps = malloc(N * WM_DETECT_MAPS * sizeof(float));
        d->dact = malloc(N * Ch * sizeof(float));
        d->dpre = malloc(N * Ch * sizeof(float));
        d->scratch = NULL;
        d->cap = d->scratch_cap = 0;
        if (!ok || !d->maps || !d->dmaps || !d->dact || !d->dpre)
            return wm_error_set(err, WM_E_SYSTEM, "out of memory for the detector's workspace (%zu cells)", N);
        d->cap = N;
    }
    if (need_scratch > d->scratch_cap) {
        free(d->scratch);
        d->scratch = malloc(need_scratch * sizeof(float));
        d->scratch_cap = d->scratch ? need_scratch : 0;
        if (!d->scratch) return wm_error_set(err, WM_E_SYSTEM, "out of memory for the detector's scratch");
    }
    return WM_OK;
}

wm_status wm_detector_forward(wm_detector *d, const float *z, int B, int h, int w, float *maps, wm_error *err)
{
    wm_status st = reserve(d, B, h, w, err);
    if (st) return st;
    d->B = B;
    d->h = h;
    d->w = w;
    const int C = d->cfg.latent_channels, Ch = d->cfg.hidden;
    const size_t N = (size_t)B * h * w;
    for (size_t i = 0; i < N; i++)
        for (int c = 0; c < C; c++) d->x[i * C + c] = (z[i * C + c] - d->norm_mean[c]) / d->norm_std[c];
    const float *in = d->x;
    for (int l = 0; l < LAYERS; l++) {
        wm_dconv3x3_forward(d->pre[l], in, wm_params_value(&d->params, d->idx[2 * l]),
                            wm_params_value(&d->params, d->idx[2 * l + 1]), B, h, w, layer_cin(&d->cfg, l), Ch,
                            layer_dilation[l], d->scratch);
        wm_relu_forward(d->act[l], d->pre[l], N * Ch);
        in = d->act[l];
    }
    wm_conv2d_forward(d->maps, in, wm_params_value(&d->params, d->idx[P_HW]), wm_params_value(&d->params, d->idx[P_HB]),
                      B, h, w, Ch, WM_DETECT_MAPS, 1, 1, 0, d->scratch);
    if (maps) memcpy(maps, d->maps, N * WM_DETECT_MAPS * sizeof(float));
    return WM_OK;
}

/* ---- loss and backward ---- */

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
/* log(1 + e^x) without overflow */
static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static float sign(double v) { return v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f; }

wm_detect_loss wm_detector_loss(wm_detector *d, const float *labels, float pos_weight, int grad)
{
    wm_detect_loss L = { 0 };
    const size_t N = (size_t)d->B * d->h * d->w;
    for (size_t i = 0; i < N; i++) L.labelled += labels[i * WM_DETECT_LABELS] > 0.5f;
    const double inv_n = N ? 1.0 / (double)N : 0, inv_pos = L.labelled ? 1.0 / (double)L.labelled : 0;
    for (size_t i = 0; i < N; i++) {
        const float *y = d->maps + i * WM_DETECT_MAPS, *t = labels + i * WM_DETECT_LABELS;
        float *g = d->dmaps + i * WM_DETECT_MAPS;
        const double p = sigmoid(y[0]);
        L.centre += (pos_weight * t[0] * softplus(-y[0]) + (1.0 - t[0]) * softplus(y[0])) * inv_n;
        g[0] = (float)(((1.0 - t[0]) * p - pos_weight * t[0] * (1.0 - p)) * inv_n);
        g[1] = g[2] = g[3] = 0.0f;
        if (!(t[0] > 0.5f)) continue;
        for (int k = 1; k <= 2; k++) {
            const double s = sigmoid(y[k]), e = s - t[k];
            L.offset += fabs(e) * inv_pos;
            g[k] = (float)(sign(e) * s * (1.0 - s) * inv_pos);
        }
        const double e = (double)y[3] - t[3];
        L.radius += fabs(e) * inv_pos;
        g[3] = (float)(sign(e) * inv_pos);
    }
    L.total = L.centre + L.offset + L.radius;
    if (!grad) return L;
    const int Ch = d->cfg.hidden, B = d->B, h = d->h, w = d->w;
    float *G = d->params.grad;
    float *dw = G + d->params.items[d->idx[P_HW]].offset, *db = G + d->params.items[d->idx[P_HB]].offset;
    memset(d->dact, 0, N * Ch * sizeof(float));
    wm_conv2d_backward(d->dact, dw, db, d->dmaps, d->act[LAYERS - 1], wm_params_value(&d->params, d->idx[P_HW]), B, h,
                       w, Ch, WM_DETECT_MAPS, 1, 1, 0, d->scratch);
    for (int l = LAYERS - 1; l >= 0; l--) {
        memset(d->dpre, 0, N * Ch * sizeof(float));
        wm_relu_backward(d->dpre, d->dact, d->pre[l], N * Ch);
        if (l) memset(d->dact, 0, N * Ch * sizeof(float));
        wm_dconv3x3_backward(l ? d->dact : NULL, G + d->params.items[d->idx[2 * l]].offset,
                             G + d->params.items[d->idx[2 * l + 1]].offset, d->dpre, l ? d->act[l - 1] : d->x,
                             wm_params_value(&d->params, d->idx[2 * l]), B, h, w, layer_cin(&d->cfg, l), Ch,
                             layer_dilation[l], d->scratch);
    }
    return L;
}

/* ---- from maps to balls ---- */

int wm_detector_balls(const float *maps, int h, int w, int patch, float thr, wm_detection *out, int max)
{
    int found = 0;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            const float *m = maps + ((size_t)i * w + j) * WM_DETECT_MAPS;
            if (!(sigmoid(m[0]) > thr)) continue;
            int peak = 1;
            for (int di = -1; di <= 1 && peak; di++)
                for (int dj = -1; dj <= 1; dj++) {
                    int y = i + di, x = j + dj;
                    if ((di || dj) && y >= 0 && y < h && x >= 0 && x < w &&
                        maps[((size_t)y * w + x) * WM_DETECT_MAPS] > m[0]) {
                        peak = 0;
                        break;
                    }
                }
            if (!peak) continue;
            if (found < max)
                out[found] = (wm_detection){ (float)((j + sigmoid(m[1])) * patch), (float)((i + sigmoid(m[2])) * patch),
                                        (m[3] > 0 ? m[3] : 0.0f) * (float)patch, (float)sigmoid(m[0]) };
            found++;
        }
    return found;
}

void wm_detector_label(float *labels, int h, int w, int patch, double x, double y, double r)
{
    if (!isfinite(x) || !isfinite(y) || !(r > 0) || x < 0 || y < 0) return;
    const double cx = x / patch, cy = y / patch;
    if (cx >= w || cy >= h) return;
    const int j = (int)cx, i = (int)cy;
    float *t = labels + ((size_t)i * w + j) * WM_DETECT_LABELS;
    if (t[0] > 0.5f && t[3] >= r / patch) return;
    t[0] = 1.0f;
    t[1] = (float)(cx - j);
    t[2] = (float)(cy - i);
    t[3] = (float)(r / patch);
}
