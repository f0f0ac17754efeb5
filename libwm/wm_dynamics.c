#include "wm_dynamics.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_convgru.h"
#include "wm_hash.h"
#include "wm_model.h"
#include "wm_nn.h"
#include "wm_parallel.h"

/* parameter entries, in file order */
enum { P_WX0, P_BX0, P_WH0, P_BH0, P_WX1, P_BX1, P_WH1, P_BH1, P_HEAD_W, P_HEAD_B, P_COUNT,
       P_OBJ_W = P_COUNT, P_OBJ_B, P_ALL };   /* the objects head, when there is one, last */
/* the five convolutions of inference (with their Winograd filters), then
 * the objects head's (training only, im2col) */
enum { CV_X0, CV_H0, CV_X1, CV_H1, CV_HEAD, CV_COUNT, CV_OBJ = CV_COUNT, CV_ALL };

typedef struct conv_desc { int weight, bias, cin, cout, dil; } conv_desc;

/* the convolutions and parameter entries a model of cfg has */
static int conv_count(const wm_dynamics_config *cfg) { return cfg->objects ? CV_ALL : CV_COUNT; }
static int param_count(const wm_dynamics_config *cfg) { return cfg->objects ? P_ALL : P_COUNT; }

#define TRAIN_MAX_PARTS 8   /* a training pass's lanes run in up to this many threads */

struct wm_dynamics {
    wm_dynamics_config cfg;
    wm_params params;
    int idx[P_ALL];
    conv_desc conv[CV_ALL];
    float *norm_mean, *norm_std;
    int tokenizer_match;               /* wm_dynamics_tokenizer_matches */
    /* Winograd filters of each convolution (NULL where unsupported) */
    float *wino[CV_ALL];               /* (none for the objects head) */
    float *winob[CV_ALL];              /* the flipped filters, for input gradients (training) */
    float *wino_tmp;                   /* room to transform one layer's filters */
    int wino_valid;
    /* training workspaces (one per part of the lanes) and the last pass's outputs */
    float *work[TRAIN_MAX_PARTS];
    size_t work_cap[TRAIN_MAX_PARTS];
    float *last;                       /* [2][T, B, H, W, C] when a pass ran in parts */
    size_t last_cap;
    const float *last_mean, *last_logvar;
    float change_weight;               /* wm_dynamics_set_change_weight */
    const float *obj_maps;             /* wm_dynamics_set_objects */
    const unsigned char *obj_lanes;
    float obj_weight;
};

/* What one thread needs to run a group of lanes through the network. */
typedef struct step_ws { float *xn, *xin, *gx, *gh, *y, *scratch; } step_ws;

#define STEP_MAX_THREADS 8

struct wm_dynamics_state {
    wm_dynamics *d;
    int lanes, H, W;
    int group;                         /* lanes run together */
    int fresh;                         /* no step since the reset */
    float *h[WM_DYNAMICS_LAYERS];      /* [lanes, H, W, hidden] */
    float *prev;                       /* [lanes, H, W, C]: the last normalised input */
    int threads;                       /* groups run side by side, one workspace each */
    step_ws ws[STEP_MAX_THREADS];
};

wm_dynamics_config wm_dynamics_default_config(int latent_channels)
{
    wm_dynamics_config c = { latent_channels, 32, 2, 0 };
    return c;
}

static wm_status check_config(const wm_dynamics_config *c, wm_error *err)
{
    if (c->latent_channels < 1 || c->latent_channels > 64)
        return wm_error_set(err, WM_E_USAGE, "latent channels must be 1 to 64, not %d", c->latent_channels);
    if (c->hidden < 4 || c->hidden > 256 || c->hidden % 4)
        return wm_error_set(err, WM_E_USAGE, "hidden channels must be a multiple of 4 in 4..256, not %d", c->hidden);
    if (c->dilation < 1 || c->dilation > 4)
        return wm_error_set(err, WM_E_USAGE, "dilation must be 1 to 4, not %d", c->dilation);
    if (c->objects != 0 && c->objects != WM_DYNAMICS_OBJECT_MAPS)
        return wm_error_set(err, WM_E_USAGE, "the objects head has %d maps, not %d", WM_DYNAMICS_OBJECT_MAPS, c->objects);
    return WM_OK;
}

static void add_conv(wm_dynamics *d, int cv, int pw, int pb, int cin, int cout, int dil, const char *name)
{
    int wshape[4] = { cout, 3, 3, cin }, bshape[1] = { cout };
    d->idx[pw] = wm_params_add(&d->params, 4, wshape, "%s.weight", name);
    d->idx[pb] = wm_params_add(&d->params, 1, bshape, "%s.bias", name);
    d->conv[cv] = (conv_desc){ pw, pb, cin, cout, dil };
}

static wm_dynamics *dynamics_alloc(const wm_dynamics_config *cfg, wm_error *err)
{
    if (check_config(cfg, err) != WM_OK) return NULL;
    wm_dynamics *d = calloc(1, sizeof *d);
    if (!d) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    d->cfg = *cfg;
    d->tokenizer_match = -1;
    const int C = cfg->latent_channels, Ch = cfg->hidden;
    add_conv(d, CV_X0, P_WX0, P_BX0, 2 * C, 3 * Ch, 1, "gru0.x");   /* [z_t, z_t - z_{t-1}] */
    add_conv(d, CV_H0, P_WH0, P_BH0, Ch, 3 * Ch, 1, "gru0.h");
    add_conv(d, CV_X1, P_WX1, P_BX1, Ch, 3 * Ch, cfg->dilation, "gru1.x");
    add_conv(d, CV_H1, P_WH1, P_BH1, Ch, 3 * Ch, cfg->dilation, "gru1.h");
    add_conv(d, CV_HEAD, P_HEAD_W, P_HEAD_B, Ch, 2 * C, 1, "head");
    if (cfg->objects) add_conv(d, CV_OBJ, P_OBJ_W, P_OBJ_B, Ch, cfg->objects, 1, "objects");
    int bad = 0;
    for (int i = 0; i < param_count(cfg); i++) bad |= d->idx[i] < 0;
    d->norm_mean = calloc((size_t)C, sizeof(float));
    d->norm_std = malloc((size_t)C * sizeof(float));
    bad |= !d->norm_mean || !d->norm_std;
    size_t most = 0;
    for (int cv = 0; !bad && cv < CV_COUNT; cv++) {
        size_t n = wm_dconv3x3_winograd_weights_floats(d->conv[cv].cin, d->conv[cv].cout);
        const int ci = d->conv[cv].cin, co = d->conv[cv].cout;
        if (wm_winograd_supported(ci, co) && (!(d->wino[cv] = malloc(n * sizeof(float))) ||
                                              !(d->winob[cv] = malloc(wm_dconv3x3_winograd_weights_floats(co, ci) *
                                                                      sizeof(float)))))
            bad = 1;
        if (n > most) most = n;
        if (wm_dconv3x3_winograd_flip_scratch_floats(ci, co) > most) most = wm_dconv3x3_winograd_flip_scratch_floats(ci, co);
    }
    bad |= !(d->wino_tmp = malloc(most * sizeof(float)));
    if (bad) wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (bad || wm_params_alloc(&d->params, err) != WM_OK) {
        wm_dynamics_free(&d);
        return NULL;
    }
    for (int c = 0; c < C; c++) d->norm_std[c] = 1.0f;
    return d;
}

wm_dynamics *wm_dynamics_new(const wm_dynamics_config *cfg, uint64_t seed, wm_error *err)
{
    wm_dynamics *d = dynamics_alloc(cfg, err);
    if (!d) return NULL;
    wm_rng rng;
    wm_rng_seed(&rng, seed);
    const int Ch = cfg->hidden, C = cfg->latent_channels;
    for (int cv = 0; cv < conv_count(cfg); cv++) {   /* the objects head's draws come last */
        const conv_desc *c = &d->conv[cv];
        float bound = 1.0f / sqrtf(9.0f * (float)c->cin);
        if (cv == CV_HEAD) bound *= 0.1f;
        float *w = wm_params_value(&d->params, d->idx[c->weight]), *b = wm_params_value(&d->params, d->idx[c->bias]);
        for (size_t k = 0; k < (size_t)c->cout * 9 * c->cin; k++)
            w[k] = bound * (float)(2.0 * wm_rng_uniform(&rng) - 1.0);
        for (int k = 0; k < c->cout; k++) b[k] = bound * (float)(2.0 * wm_rng_uniform(&rng) - 1.0);
    }
    /* keep the state at first (update gate open toward h); start with a
     * variance near the data's frame-to-frame change */
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) {
        float *bx = wm_params_value(&d->params, d->idx[l ? P_BX1 : P_BX0]);
        for (int c = 0; c < Ch; c++) bx[Ch + c] += 1.0f;
    }
    float *hb = wm_params_value(&d->params, d->idx[P_HEAD_B]);
    for (int c = 0; c < C; c++) hb[C + c] = -2.0f;
    return d;
}

/* ---- the model file ---- */

wm_dynamics *wm_dynamics_from_file(const wm_safetensors *st, const char *path, wm_error *err)
{
    if (wm_model_check_arch(st, path, WM_DYNAMICS_PREFIX, WM_DYNAMICS_ARCH, "dynamics model", "dynamics",
                            "; train one with wm-train dynamics", err))
        return NULL;
    wm_dynamics_config cfg = { 0, 0, 0, 0 };
    if (wm_model_meta_int(st, path, WM_DYNAMICS_PREFIX "latent_channels", 1, 64, &cfg.latent_channels, err) ||
        wm_model_meta_int(st, path, WM_DYNAMICS_PREFIX "hidden", 4, 256, &cfg.hidden, err) ||
        wm_model_meta_int(st, path, WM_DYNAMICS_PREFIX "dilation", 1, 4, &cfg.dilation, err) ||
        (wm_safetensors_meta(st, WM_DYNAMICS_PREFIX "objects") &&
         wm_model_meta_int(st, path, WM_DYNAMICS_PREFIX "objects", WM_DYNAMICS_OBJECT_MAPS, WM_DYNAMICS_OBJECT_MAPS,
                           &cfg.objects, err)))
        return NULL;
    if (cfg.hidden % 4) {
        wm_error_set(err, WM_E_INPUT, "%s: metadata \"dynamics.hidden\" = %d is not a multiple of 4", path, cfg.hidden);
        return NULL;
    }
    wm_dynamics *d = dynamics_alloc(&cfg, err);
    if (!d) return NULL;
    if (wm_params_load(&d->params, st, path, WM_DYNAMICS_PREFIX, err) != WM_OK) {
        wm_dynamics_free(&d);
        return NULL;
    }
    if (wm_model_read_norm(st, path, WM_DYNAMICS_PREFIX, cfg.latent_channels, d->norm_mean, d->norm_std, err)) {
        wm_dynamics_free(&d);
        return NULL;
    }
    const char *rec = wm_safetensors_meta(st, WM_DYNAMICS_PREFIX "tokenizer");
    uint64_t now = wm_model_tokenizer_fingerprint(st);
    if (rec && now) {
        char text[32];
        snprintf(text, sizeof text, "%016llx", (unsigned long long)now);
        d->tokenizer_match = strcmp(rec, text) == 0;
    }
    return d;
}

wm_dynamics *wm_dynamics_load(const char *path, wm_error *err)
{
    wm_safetensors *st = wm_safetensors_open(path, err);
    if (!st) return NULL;
    wm_dynamics *d = wm_dynamics_from_file(st, path, err);
    wm_safetensors_close(&st);
    return d;
}

void wm_dynamics_free(wm_dynamics **dp)
{
    wm_dynamics *d = *dp;
    if (!d) return;
    wm_params_free(&d->params);
    free(d->norm_mean);
    free(d->norm_std);
    for (int cv = 0; cv < CV_ALL; cv++) free(d->wino[cv]), free(d->winob[cv]);
    free(d->wino_tmp);
    for (int k = 0; k < TRAIN_MAX_PARTS; k++) free(d->work[k]);
    free(d->last);
    free(d);
    *dp = NULL;
}

const wm_dynamics_config *wm_dynamics_get_config(const wm_dynamics *d) { return &d->cfg; }

wm_params *wm_dynamics_params(wm_dynamics *d)
{
    d->wino_valid = 0;
    return &d->params;
}

void wm_dynamics_set_norm(wm_dynamics *d, const float *mean, const float *std)
{
    memcpy(d->norm_mean, mean, (size_t)d->cfg.latent_channels * sizeof(float));
    memcpy(d->norm_std, std, (size_t)d->cfg.latent_channels * sizeof(float));
}

void wm_dynamics_get_norm(const wm_dynamics *d, const float **mean, const float **std)
{
    *mean = d->norm_mean;
    *std = d->norm_std;
}

int wm_dynamics_tokenizer_matches(const wm_dynamics *d) { return d->tokenizer_match; }

static const float *weight(const wm_dynamics *d, int cv);
static const float *bias(const wm_dynamics *d, int cv);

void wm_dynamics_weights(const wm_dynamics *d, const float *w[5], const float *b[5])
{
    for (int cv = 0; cv < CV_COUNT; cv++) {
        w[cv] = weight(d, cv);
        b[cv] = bias(d, cv);
    }
}

wm_status wm_dynamics_add_to(const wm_dynamics *d, const float *buf, const char *prefix, wm_safetensors_builder *b,
                             wm_error *err)
{
    char full[96], num[4][24];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", WM_DYNAMICS_PREFIX);
    wm_status s = wm_params_add_to(&d->params, buf ? buf : d->params.data, full, b, err);
    uint64_t shape[1] = { (uint64_t)d->cfg.latent_channels };
    if (!s) s = wm_safetensors_builder_add(b, full, "norm.mean", WM_ST_F32, 1, shape, d->norm_mean, err);
    if (!s) s = wm_safetensors_builder_add(b, full, "norm.std", WM_ST_F32, 1, shape, d->norm_std, err);
    snprintf(num[0], sizeof num[0], "%d", d->cfg.latent_channels);
    snprintf(num[1], sizeof num[1], "%d", d->cfg.hidden);
    snprintf(num[2], sizeof num[2], "%d", d->cfg.dilation);
    snprintf(num[3], sizeof num[3], "%g", (double)WM_DYNAMICS_LOGVAR_MIN);
    const char *meta[] = {
        "arch", WM_DYNAMICS_ARCH,
        "latent_channels", num[0],
        "hidden", num[1],
        "dilation", num[2],
        "logvar_min", num[3],
        "cell", "ConvGRU (nn.GRU gate form: n = tanh(Wx x + r * (Wh h + bh))), gate blocks r|z|n, 3x3 convs",
        "layout", "NHWC; conv weight [out, kh, kw, in]; gru1 and its recurrence dilated",
        "input", "gru0.x reads [z_t, z_t - z_{t-1}] normalised (the change is 0 at a clip's first latent)",
        "output", "head [2C]: mean = input + y[:C], logvar = logvar_min + softplus(y[C:] - logvar_min), in units (z - norm.mean) / norm.std",
    };
    for (size_t i = 0; s == WM_OK && i < sizeof meta / sizeof meta[0]; i += 2) {
        snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", WM_DYNAMICS_PREFIX, meta[i]);
        s = wm_safetensors_builder_meta(b, full, meta[i + 1], err);
    }
    if (s == WM_OK && d->cfg.objects) {   /* only then, so files without the head keep their bytes */
        snprintf(full, sizeof full, "%s%sobjects", prefix ? prefix : "", WM_DYNAMICS_PREFIX);
        snprintf(num[0], sizeof num[0], "%d", d->cfg.objects);
        s = wm_safetensors_builder_meta(b, full, num[0], err);
    }
    return s;
}

wm_status wm_dynamics_save(const wm_dynamics *d, const char *path, const char *const *meta, size_t n_meta,
                           wm_error *err)
{
    wm_safetensors *old = NULL;
    wm_safetensors_builder *b = wm_safetensors_builder_new(err);
    wm_status st = b ? wm_model_keep_others(b, path, WM_DYNAMICS_PREFIX, &old, NULL, err) : err->code;
    if (!st) st = wm_dynamics_add_to(d, NULL, NULL, b, err);
    uint64_t fp = old ? wm_model_tokenizer_fingerprint(old) : 0;
    if (!st && fp) {
        char text[32];
        snprintf(text, sizeof text, "%016llx", (unsigned long long)fp);
        st = wm_safetensors_builder_meta(b, WM_DYNAMICS_PREFIX "tokenizer", text, err);
    }
    for (size_t i = 0; st == WM_OK && i < n_meta; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s%s", WM_DYNAMICS_PREFIX, meta[2 * i]);
        st = wm_safetensors_builder_meta(b, key, meta[2 * i + 1], err);
    }
    if (!st) st = wm_safetensors_builder_write(b, path, err);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&old);
    return st;
}

/* ---- shared pieces of the passes ---- */

static const float *weight(const wm_dynamics *d, int cv) { return wm_params_value(&d->params, d->idx[d->conv[cv].weight]); }
static const float *bias(const wm_dynamics *d, int cv) { return wm_params_value(&d->params, d->idx[d->conv[cv].bias]); }
/* convolution cv's gradients inside a gradient buffer laid out as the parameters */
static float *dweight(const wm_dynamics *d, float *grad, int cv)
{
    return grad + d->params.items[d->idx[d->conv[cv].weight]].offset;
}
static float *dbias(const wm_dynamics *d, float *grad, int cv)
{
    return grad + d->params.items[d->idx[d->conv[cv].bias]].offset;
}

static void normalize(const wm_dynamics *d, float *out, const float *z, size_t cells)
{
    const int C = d->cfg.latent_channels;
    for (size_t i = 0; i < cells; i++)
        for (int c = 0; c < C; c++) out[i * C + c] = (z[i * C + c] - d->norm_mean[c]) / d->norm_std[c];
}

/* The first layer's input: each cell's normalised latent and its change
 * since the previous step, [x, x - prev] (2C channels); prev NULL: no
 * previous step (a clip's first latent), a change of zero. */
static void layer0_input(float *out, const float *xn, const float *prev, size_t cells, int C)
{
    for (size_t i = 0; i < cells; i++) {
        const float *x = xn + i * C, *p = prev ? prev + i * C : x;
        float *o = out + i * 2 * C;
        for (int c = 0; c < C; c++) {
            o[c] = x[c];
            o[C + c] = x[c] - p[c];
        }
    }
}

/* the largest scratch any convolution of the model needs for B images */
static size_t conv_scratch(const wm_dynamics *d, int B, int H, int W, int winograd)
{
    size_t m = 0;
    for (int cv = 0; cv < conv_count(&d->cfg); cv++) {
        const conv_desc *c = &d->conv[cv];
        size_t s = winograd && d->wino[cv] ? wm_dconv3x3_winograd_scratch_floats(B, H, W, c->cin, c->cout, c->dil)
                                           : wm_dconv3x3_scratch_floats(B, H, W, c->cin, c->cout, c->dil);
        if (s > m) m = s;
    }
    return m;
}

/* ---- inference ---- */

static void refresh_winograd(wm_dynamics *d)
{
    if (d->wino_valid) return;
    for (int cv = 0; cv < CV_COUNT; cv++)
        if (d->wino[cv])
            wm_dconv3x3_winograd_weights(d->wino[cv], weight(d, cv), d->conv[cv].cin, d->conv[cv].cout, d->wino_tmp);
    d->wino_valid = 1;
}

static void conv_infer(wm_dynamics *d, int cv, float *out, const float *inp, int B, int H, int W, float *scratch)
{
    const conv_desc *c = &d->conv[cv];
    if (d->wino[cv])
        wm_dconv3x3_winograd_forward(out, inp, d->wino[cv], bias(d, cv), B, H, W, c->cin, c->cout, c->dil, scratch);
    else
        wm_dconv3x3_forward(out, inp, weight(d, cv), bias(d, cv), B, H, W, c->cin, c->cout, c->dil, scratch);
}

/* The backward pass of convolution cv: the input gradient by Winograd on
 * the flipped filters where there are some, the weight gradient (into
 * grad, when not NULL) by one im2col GEMM over everything
 * (wm_dconv3x3_backward). */
static void conv_backward(wm_dynamics *d, int cv, float *dinp, float *grad, const float *dout, const float *inp, int B,
                          int H, int W, float *scratch)
{
    const conv_desc *c = &d->conv[cv];
    float *dw = grad ? dweight(d, grad, cv) : NULL, *db = grad ? dbias(d, grad, cv) : NULL;
    if (dinp && d->winob[cv]) {
        wm_dconv3x3_winograd_backward_input(dinp, dout, d->winob[cv], B, H, W, c->cin, c->cout, c->dil, scratch);
        dinp = NULL;
    }
    if (dinp || dw || db)
        wm_dconv3x3_backward(dinp, dw, db, dout, inp, weight(d, cv), B, H, W, c->cin, c->cout, c->dil, scratch);
}

wm_dynamics_state *wm_dynamics_state_new(wm_dynamics *d, int lanes, int H, int W, wm_error *err)
{
    if (lanes < 1 || H < 1 || W < 1 || (size_t)lanes * H * W > ((size_t)1 << 28)) {
        wm_error_set(err, WM_E_USAGE, "bad dynamics state size: %d lanes of %dx%d", lanes, W, H);
        return NULL;
    }
    wm_dynamics_state *s = calloc(1, sizeof *s);
    if (!s) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    s->d = d;
    s->lanes = lanes;
    s->H = H;
    s->W = W;
    s->group = 256 / (H * W) < 1 ? 1 : 256 / (H * W) > lanes ? lanes : 256 / (H * W);
    s->fresh = 1;
    const size_t cells = (size_t)lanes * H * W, gcells = (size_t)s->group * H * W;
    const size_t C = (size_t)d->cfg.latent_channels, Ch = (size_t)d->cfg.hidden;
    int bad = 0;
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) bad |= !(s->h[l] = calloc(cells * Ch, sizeof(float)));
    bad |= !(s->prev = malloc(cells * C * sizeof(float)));
    /* wm_nn_threads() threads, no more than there are groups of lanes */
    const int groups = (lanes + s->group - 1) / s->group;
    s->threads = wm_nn_threads() < groups ? wm_nn_threads() : groups;
    if (s->threads > STEP_MAX_THREADS) s->threads = STEP_MAX_THREADS;
    for (int k = 0; k < s->threads; k++) {
        step_ws *w = &s->ws[k];
        bad |= !(w->xn = malloc(gcells * C * sizeof(float)));
        bad |= !(w->xin = malloc(gcells * 2 * C * sizeof(float)));
        bad |= !(w->gx = malloc(gcells * 3 * Ch * sizeof(float)));
        bad |= !(w->gh = malloc(gcells * 3 * Ch * sizeof(float)));
        bad |= !(w->y = malloc(gcells * 2 * C * sizeof(float)));
        bad |= !(w->scratch = malloc(conv_scratch(d, s->group, H, W, 1) * sizeof(float)));
    }
    if (bad) {
        wm_error_set(err, WM_E_SYSTEM, "out of memory for %d lanes of %dx%d", lanes, W, H);
        wm_dynamics_state_free(&s);
    }
    return s;
}

void wm_dynamics_state_free(wm_dynamics_state **sp)
{
    wm_dynamics_state *s = *sp;
    if (!s) return;
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) free(s->h[l]);
    free(s->prev);
    for (int k = 0; k < STEP_MAX_THREADS; k++) {
        step_ws *w = &s->ws[k];
        free(w->xn), free(w->xin), free(w->gx), free(w->gh), free(w->y), free(w->scratch);
    }
    free(s);
    *sp = NULL;
}

void wm_dynamics_state_reset(wm_dynamics_state *s)
{
    const size_t n = (size_t)s->lanes * s->H * s->W * s->d->cfg.hidden;
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) memset(s->h[l], 0, n * sizeof(float));
    s->fresh = 1;
}

int wm_dynamics_state_lanes(const wm_dynamics_state *s) { return s->lanes; }

void wm_dynamics_state_load(wm_dynamics_state *s, const float *hidden, const float *prev)
{
    const size_t cells = (size_t)s->lanes * s->H * s->W, Ch = (size_t)s->d->cfg.hidden;
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++)
        if (hidden) memcpy(s->h[l], hidden + l * cells * Ch, cells * Ch * sizeof(float));
        else memset(s->h[l], 0, cells * Ch * sizeof(float));
    s->fresh = !prev;
    if (prev) normalize(s->d, s->prev, prev, cells);
}
float *wm_dynamics_state_hidden(wm_dynamics_state *s, int l) { return s->h[l]; }

/* Lanes are independent, so a step runs a few lanes at a time through the
 * whole network: about 256 cells keep every activation in L2. */
static void step_lanes(wm_dynamics *d, wm_dynamics_state *s, step_ws *w, int lane0, int n, int fresh, const float *x,
                       float *mean, float *var)
{
    const int H = s->H, W = s->W, C = d->cfg.latent_channels, Ch = d->cfg.hidden;
    const size_t cells = (size_t)n * H * W, first = (size_t)lane0 * H * W;
    normalize(d, w->xn, x, cells);
    float *prev = s->prev + first * C;
    layer0_input(w->xin, w->xn, fresh ? NULL : prev, cells, C);
    memcpy(prev, w->xn, cells * C * sizeof(float));
    const float *in = w->xin;
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) {
        float *h = s->h[l] + first * Ch;
        conv_infer(d, l ? CV_X1 : CV_X0, w->gx, in, n, H, W, w->scratch);
        conv_infer(d, l ? CV_H1 : CV_H0, w->gh, h, n, H, W, w->scratch);
        wm_gru_gates_forward(h, NULL, w->gx, w->gh, h, cells, Ch);   /* in place */
        in = h;
    }
    conv_infer(d, CV_HEAD, w->y, in, n, H, W, w->scratch);
    wm_gauss_head_infer(mean, var, w->y, w->xn, cells, C, WM_DYNAMICS_LOGVAR_MIN, d->norm_mean, d->norm_std);
}

/* One thread of a run: it takes the next group of lanes through every
 * step, until none is left. */
typedef struct run_job {
    wm_dynamics *d;
    wm_dynamics_state *s;
    int k, T, lanes, feed_from;
    const int *active;
    const float *x;
    float *mean, *var;
    atomic_int *next;
} run_job;

static void *run_share(void *arg)
{
    const run_job *j = arg;
    wm_dynamics_state *s = j->s;
    const size_t per_lane = (size_t)s->H * s->W * j->d->cfg.latent_channels, plane = (size_t)j->lanes * per_lane;
    const int groups = (j->active[0] + s->group - 1) / s->group;
    for (int gi; (gi = atomic_fetch_add(j->next, 1)) < groups;) {
        const int b = gi * s->group;
        for (int t = 0; t < j->T && j->active[t] > b; t++) {
            int n = j->active[t] - b < s->group ? j->active[t] - b : s->group;
            /* feed_from >= 1: a fed-back step has a step before it */
            const float *in = t < j->feed_from ? j->x + (size_t)t * plane : j->mean + (size_t)t * plane - plane;
            size_t off = b * per_lane;
            step_lanes(j->d, s, &s->ws[j->k], b, n, s->fresh && t == 0, in + off, j->mean + t * plane + off,
                       j->var ? j->var + t * plane + off : NULL);
        }
    }
    return NULL;
}

void wm_dynamics_run(wm_dynamics *d, wm_dynamics_state *s, int T, const int *active, int lanes, const float *x,
                     int feed_from, float *mean, float *var)
{
    if (T < 1 || active[0] < 1) return;
    refresh_winograd(d);
    const int groups = (active[0] + s->group - 1) / s->group, threads = s->threads < groups ? s->threads : groups;
    atomic_int next = 0;
    run_job jobs[STEP_MAX_THREADS];
    for (int k = 0; k < threads; k++) jobs[k] = (run_job){ d, s, k, T, lanes, feed_from, active, x, mean, var, &next };
    /* the lane groups are the threads: the convolutions inside run on one */
    wm_nn_run_parts(run_share, jobs, sizeof jobs[0], threads, NULL, 0);
    s->fresh = 0;
}

void wm_dynamics_step(wm_dynamics *d, wm_dynamics_state *s, int n, const float *x, float *mean, float *var)
{
    wm_dynamics_run(d, s, 1, &n, n, x, 1, mean, var);
    s->fresh = 0;   /* a step of no lanes still ends the fresh state (the run returns before) */
}

/* ---- training ---- */

/* Workspace of a training pass, carved from d->work. */
typedef struct train_ws {
    float *xn;                                   /* [T+1, B, cells, C]: the clip, normalised */
    float *un;                                   /* [T, B, cells, C]: the inputs fed, normalised */
    float *xin;                                  /* [T, B, cells, 2C]: layer 0's input */
    float *prevn;                                /* [B, cells, C]: the latent before the window */
    float *hs[WM_DYNAMICS_LAYERS];               /* [T+1, B, cells, Ch]: state before and after each step */
    float *act[WM_DYNAMICS_LAYERS];              /* [T, B, cells, 3Ch] */
    float *gh[WM_DYNAMICS_LAYERS];               /* [T, B, cells, 3Ch] */
    float *dh_ext[WM_DYNAMICS_LAYERS];           /* [T, B, cells, Ch]: gradient from above */
    float *g3, *dg3;                             /* [T, B, cells, 3Ch]: gx / dgx, dgh */
    float *y, *mean, *logvar, *dy, *dmean, *dlogvar;
    float *dcarry, *dho;                         /* [B, cells, Ch] */
    float *ologit, *dologit;                     /* [T, B, cells, objects]: the objects head */
    float *scratch;
} train_ws;

/* The inputs of one part of the lanes, gathered (a part runs lanes b0..b1-1). */
typedef struct train_part_in {
    float *seq, *inputs, *prev, *state, *grad;
} train_part_in;

static wm_status train_layout(wm_dynamics *d, int k, int T, int B, int H, int W, int parted, train_ws *w,
                              train_part_in *in, wm_error *err)
{
    const size_t cells = (size_t)H * W, C = (size_t)d->cfg.latent_channels, Ch = (size_t)d->cfg.hidden;
    const size_t N = (size_t)T * B * cells, F = (size_t)(T + 1) * B * cells;
    size_t scratch = conv_scratch(d, T * B, H, W, 0), sw = conv_scratch(d, T * B, H, W, 1);
    if (sw > scratch) scratch = sw;
    for (int cv = 0; cv < CV_COUNT; cv++) {
        const conv_desc *c = &d->conv[cv];
        sw = d->winob[cv] ? wm_dconv3x3_winograd_backward_input_scratch_floats(T * B, H, W, c->cin, c->cout, c->dil) : 0;
        if (sw > scratch) scratch = sw;
    }
    size_t need = F * C + N * C + N * 2 * C + (size_t)B * cells * C + WM_DYNAMICS_LAYERS * (F * Ch + 2 * N * 3 * Ch + N * Ch) + 2 * N * 3 * Ch +
                  N * C * 8 + 2 * (size_t)B * cells * Ch + 2 * N * (size_t)d->cfg.objects + scratch;
    /* a part also holds its gathered inputs and, past the first, its own gradients */
    if (parted)
        need += F * C + N * C + (size_t)B * cells * C + WM_DYNAMICS_LAYERS * (size_t)B * cells * Ch +
                (k ? d->params.total : 0);
    if (need > d->work_cap[k]) {
        free(d->work[k]);
        d->work[k] = malloc(need * sizeof(float));
        d->work_cap[k] = d->work[k] ? need : 0;
        if (!d->work[k])
            return wm_error_set(err, WM_E_SYSTEM, "out of memory for the dynamics model's activations (%zu MB)",
                                need * sizeof(float) >> 20);
    }
    float *p = d->work[k];
    if (!p) return wm_error_set(err, WM_E_SYSTEM, "no workspace");
#define TAKE(ptr, n) do { (ptr) = p; p += (n); } while (0)
    TAKE(w->xn, F * C);
    TAKE(w->un, N * C);
    TAKE(w->xin, N * 2 * C);
    TAKE(w->prevn, (size_t)B * cells * C);
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) {
        TAKE(w->hs[l], F * Ch);
        TAKE(w->act[l], N * 3 * Ch);
        TAKE(w->gh[l], N * 3 * Ch);
        TAKE(w->dh_ext[l], N * Ch);
    }
    TAKE(w->g3, N * 3 * Ch);
    TAKE(w->dg3, N * 3 * Ch);
    TAKE(w->y, N * 2 * C);
    TAKE(w->dy, N * 2 * C);
    TAKE(w->mean, N * C);
    TAKE(w->logvar, N * C);
    TAKE(w->dmean, N * C);
    TAKE(w->dlogvar, N * C);
    TAKE(w->dcarry, (size_t)B * cells * Ch);
    TAKE(w->dho, (size_t)B * cells * Ch);
    TAKE(w->ologit, N * (size_t)d->cfg.objects);
    TAKE(w->dologit, N * (size_t)d->cfg.objects);
    TAKE(w->scratch, scratch);
    *in = (train_part_in){ 0 };
    if (parted) {
        TAKE(in->seq, F * C);
        TAKE(in->inputs, N * C);
        TAKE(in->prev, (size_t)B * cells * C);
        TAKE(in->state, WM_DYNAMICS_LAYERS * (size_t)B * cells * Ch);
        if (k) TAKE(in->grad, d->params.total);
    }
#undef TAKE
    return WM_OK;
}

/* One part of a pass: lanes of their own (seq, inputs, prev, state
 * gathered), gradients into grad (overwritten), the loss's sums into
 * sums (nll, squared error, no-change squared error, values counted);
 * scale is 1 / (the values of the whole pass), so the parts' gradients add
 * up to the whole's. */
typedef struct train_part {
    wm_dynamics *d;
    train_ws w;
    float *grad;
    const float *seq, *inputs, *prev;
    const int *fed_from;
    int T, B, H, W;
    float *state;
    float beta, scale;
    /* the objects head's targets: the whole pass's maps and lanes (this
     * part's lane b is the pass's b0 + b of Ball), and its loss scale */
    const float *obj_maps;
    const unsigned char *obj_lanes;
    int b0, Ball;
    float obj_scale;
    double sums[5];
} train_part;

/* The objects head over the whole window: logits from the top state,
 * the cross-entropy's sum (returned) and its gradient into w->dologit
 * (zero on unlabelled lanes). */
static double objects_forward(wm_dynamics *d, const train_part *pt, train_ws *w, const float *top)
{
    const int T = pt->T, B = pt->B, K = d->cfg.objects;
    const size_t cells = (size_t)pt->H * pt->W, lane_o = cells * (size_t)K;
    conv_infer(d, CV_OBJ, w->ologit, top, T * B, pt->H, pt->W, w->scratch);
    double sum = 0.0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const int gb = pt->b0 + b;
            const size_t o = ((size_t)t * B + b) * lane_o;
            float *g = w->dologit + o;
            if (pt->obj_lanes && !pt->obj_lanes[gb]) {
                memset(g, 0, lane_o * sizeof(float));
                continue;
            }
            const float *y = pt->obj_maps + ((size_t)(t + 1) * pt->Ball + gb) * lane_o, *a = w->ologit + o;
            for (size_t i = 0; i < lane_o; i++) {
                /* softplus(a) - y a, stably; its gradient sigmoid(a) - y */
                const float e = expf(-fabsf(a[i]));
                sum += (double)((a[i] > 0 ? a[i] : 0.0f) + log1pf(e) - y[i] * a[i]);
                const float sg = a[i] >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
                g[i] = pt->obj_scale * (sg - y[i]);
            }
        }
    return sum;
}

static void *train_part_run(void *arg)
{
    train_part *pt = arg;
    wm_dynamics *d = pt->d;
    train_ws w = pt->w;
    float *grad = pt->grad;
    const float *seq = pt->seq, *inputs = pt->inputs, *prev = pt->prev;
    const int *fed_from = pt->fed_from;
    const int T = pt->T, B = pt->B, H = pt->H, W = pt->W;
    float *state = pt->state;
    const float beta = pt->beta;
    const int C = d->cfg.latent_channels, Ch = d->cfg.hidden;
    const size_t cells = (size_t)H * W, step_h = (size_t)B * cells * Ch, step_g = 3 * step_h;
    const size_t N = (size_t)T * B * cells;

    /* ---- forward, one layer at a time over the whole window ---- */
    normalize(d, w.xn, seq, (size_t)(T + 1) * B * cells);
    const size_t step_x = (size_t)B * cells * C;
    /* the inputs: the clip itself (teacher forcing) or what the caller fed */
    const float *un = w.xn;
    if (inputs) {
        normalize(d, w.un, inputs, N);
        un = w.un;
    }
    if (prev) normalize(d, w.prevn, prev, (size_t)B * cells);   /* the input before the window */
    for (int t = 0; t < T; t++)
        layer0_input(w.xin + t * step_x * 2, un + t * step_x, t ? un + (t - 1) * step_x : prev ? w.prevn : NULL,
                     (size_t)B * cells, C);
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) {
        const int cx = l ? CV_X1 : CV_X0, ch = l ? CV_H1 : CV_H0;
        const float *xin = l ? w.hs[0] + step_h : w.xin;   /* layer 0's outputs h_1..h_T */
        conv_infer(d, cx, w.g3, xin, T * B, H, W, w.scratch);
        if (state) memcpy(w.hs[l], state + l * step_h, step_h * sizeof(float));
        else memset(w.hs[l], 0, step_h * sizeof(float));
        for (int t = 0; t < T; t++) {
            float *gh = w.gh[l] + t * step_g;
            conv_infer(d, ch, gh, w.hs[l] + t * step_h, B, H, W, w.scratch);
            wm_gru_gates_forward(w.hs[l] + (t + 1) * step_h, w.act[l] + t * step_g, w.g3 + t * step_g, gh,
                                 w.hs[l] + t * step_h, (size_t)B * cells, Ch);
        }
    }
    const float *top = w.hs[WM_DYNAMICS_LAYERS - 1] + step_h;
    conv_infer(d, CV_HEAD, w.y, top, T * B, H, W, w.scratch);
    const float *target = w.xn + (size_t)B * cells * C;
    wm_gauss_head_forward(w.mean, w.logvar, w.y, un, N, C, WM_DYNAMICS_LOGVAR_MIN);
    const size_t nv = N * (size_t)C, lane_v = cells * (size_t)C;
    /* the figures count the predictions made from the clip's own latents
     * (all of them in teacher forcing) */
    double nll = 0.0, sq = 0.0, sq_copy = 0.0;
    size_t counted = 0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            if (fed_from && t >= fed_from[b]) continue;
            const size_t o = ((size_t)t * B + b) * lane_v;
            double q;
            nll += wm_gauss_nll_forward(w.mean + o, w.logvar + o, target + o, lane_v, &q);
            sq += q;
            for (size_t i = 0; i < lane_v; i++) {
                double e = (double)target[o + i] - w.xn[o + i];
                sq_copy += e * e;
            }
            counted += lane_v;
        }
    pt->sums[0] = nll, pt->sums[1] = sq, pt->sums[2] = sq_copy, pt->sums[3] = (double)counted;
    const int objects = pt->obj_maps != NULL;   /* set only for a model with the head */
    if (objects) pt->sums[4] = objects_forward(d, pt, &w, top);
    if (state)
        for (int l = 0; l < WM_DYNAMICS_LAYERS; l++)
            memcpy(state + l * step_h, w.hs[l] + (size_t)T * step_h, step_h * sizeof(float));

    /* ---- backward ---- */
    memset(grad, 0, d->params.total * sizeof(float));
    memset(w.dmean, 0, nv * sizeof(float));
    memset(w.dlogvar, 0, nv * sizeof(float));
    memset(w.dy, 0, N * 2 * C * sizeof(float));
    wm_gauss_nll_backward(w.dmean, w.dlogvar, w.mean, w.logvar, target, nv, pt->scale, beta);
    /* the mean's error weighs more where the clip changes (the ball, not
     * the background), capped at a change of 2 standard deviations */
    if (d->change_weight > 0)
        for (size_t i = 0; i < nv; i++) {
            float c = target[i] - w.xn[i], c2 = c * c;
            w.dmean[i] *= 1.0f + d->change_weight * (c2 < 4.0f ? c2 : 4.0f);
        }
    /* the variance is learned where the model was fed the clip (teacher
     * mode, what scoring uses), not where it was fed its own predictions */
    for (int t = 0; fed_from && t < T; t++)
        for (int b = 0; b < B; b++)
            if (t >= fed_from[b])
                memset(w.dlogvar + ((size_t)t * B + b) * cells * C, 0, cells * C * sizeof(float));
    wm_gauss_head_backward(w.dy, NULL, w.dmean, w.dlogvar, w.y, N, C, WM_DYNAMICS_LOGVAR_MIN);
    float *dtop = w.dh_ext[WM_DYNAMICS_LAYERS - 1];
    memset(dtop, 0, N * Ch * sizeof(float));
    conv_backward(d, CV_HEAD, dtop, grad, w.dy, top, T * B, H, W, w.scratch);
    if (objects) conv_backward(d, CV_OBJ, dtop, grad, w.dologit, top, T * B, H, W, w.scratch);   /* adds */
    for (int l = WM_DYNAMICS_LAYERS - 1; l >= 0; l--) {
        const int cx = l ? CV_X1 : CV_X0, ch = l ? CV_H1 : CV_H0;
        float *dgx = w.g3, *dgh = w.dg3;
        memset(dgx, 0, N * 3 * Ch * sizeof(float));
        memset(dgh, 0, N * 3 * Ch * sizeof(float));
        memset(w.dcarry, 0, step_h * sizeof(float));
        for (int t = T - 1; t >= 0; t--) {
            const float *ext = w.dh_ext[l] + t * step_h;
            for (size_t i = 0; i < step_h; i++) w.dho[i] = ext[i] + w.dcarry[i];
            memset(w.dcarry, 0, step_h * sizeof(float));
            wm_gru_gates_backward(dgx + t * step_g, dgh + t * step_g, w.dcarry, w.dho, w.act[l] + t * step_g,
                                  w.gh[l] + t * step_g, w.hs[l] + t * step_h, (size_t)B * cells, Ch);
            /* through the recurrent convolution into h_{t-1}; the window's
             * initial state is a constant (truncated BPTT) */
            if (t > 0)
                conv_backward(d, ch, w.dcarry, NULL, dgh + t * step_g, w.hs[l] + t * step_h, B, H, W, w.scratch);
        }
        /* weight gradients over the whole window in one GEMM each */
        conv_backward(d, ch, NULL, grad, dgh, w.hs[l], T * B, H, W, w.scratch);
        float *dxin = NULL;
        if (l > 0) {
            dxin = w.dh_ext[l - 1];
            memset(dxin, 0, N * Ch * sizeof(float));
        }
        const float *xin = l ? w.hs[0] + step_h : w.xin;
        conv_backward(d, cx, dxin, grad, dgx, xin, T * B, H, W, w.scratch);
    }
    return NULL;
}


void wm_dynamics_set_change_weight(wm_dynamics *d, float a) { d->change_weight = a > 0 ? a : 0; }

void wm_dynamics_set_objects(wm_dynamics *d, const float *maps, const unsigned char *lanes, float weight)
{
    d->obj_maps = weight > 0 ? maps : NULL;
    d->obj_lanes = lanes;
    d->obj_weight = weight > 0 ? weight : 0;
}

/* The lanes split into up to wm_nn_threads() parts that run side by side,
 * each part single-threaded inside (its own workspace, its own gradients,
 * summed at the end in a fixed order: the same threads give the same bits). */
wm_status wm_dynamics_train_pass(wm_dynamics *d, const float *seq, const float *inputs, const int *fed_from,
                                 const float *prev, int T, int B, int H, int W, float *state, float beta,
                                 wm_dynamics_loss *loss, wm_error *err)
{
    if (T < 1 || B < 1 || H < 1 || W < 1)
        return wm_error_set(err, WM_E_USAGE, "bad training window: %d steps of %d lanes of %dx%d", T, B, W, H);
    wm_status st = wm_params_alloc_grad(&d->params, err);
    if (st) return st;
    /* the optimizer changed the parameters since the last pass */
    d->wino_valid = 0;
    refresh_winograd(d);
    for (int cv = 0; cv < CV_COUNT; cv++)
        if (d->winob[cv])
            wm_dconv3x3_winograd_flip_weights(d->winob[cv], weight(d, cv), d->conv[cv].cin, d->conv[cv].cout,
                                              d->wino_tmp);
    const int C = d->cfg.latent_channels, Ch = d->cfg.hidden;
    const size_t lane = (size_t)H * W * C, lane_h = (size_t)H * W * Ch;
    int parts = wm_nn_threads();
    if (parts > B) parts = B;
    if (parts > TRAIN_MAX_PARTS) parts = TRAIN_MAX_PARTS;
    if (parts < 1) parts = 1;
    const float scale = 1.0f / (float)((size_t)T * B * lane);
    const float *obj_maps = d->cfg.objects ? d->obj_maps : NULL;
    int labelled = 0;
    for (int b = 0; obj_maps && b < B; b++) labelled += !d->obj_lanes || d->obj_lanes[b];
    if (!labelled) obj_maps = NULL;
    const float obj_scale = obj_maps ? d->obj_weight / (float)((size_t)T * labelled * H * W * d->cfg.objects) : 0;
    train_part pt[TRAIN_MAX_PARTS] = { 0 };
    int b0[TRAIN_MAX_PARTS + 1];
    for (int k = 0; k <= parts; k++) b0[k] = (int)((long)B * k / parts);
    for (int k = 0; k < parts; k++) {
        const int Bp = b0[k + 1] - b0[k];
        train_part_in in;
        train_ws w;
        if ((st = train_layout(d, k, T, Bp, H, W, parts > 1, &w, &in, err))) return st;
        pt[k] = (train_part){ d, w, k ? in.grad : d->params.grad, seq, inputs, prev,
                              fed_from ? fed_from + b0[k] : NULL, T, Bp, H, W, state, beta, scale,
                              obj_maps, d->obj_lanes, b0[k], B, obj_scale, { 0 } };
        if (parts == 1) break;
        /* gather the part's lanes: every [.., B, lane] block keeps b0..b1-1 */
        for (int t = 0; t <= T; t++)
            memcpy(in.seq + (size_t)t * Bp * lane, seq + ((size_t)t * B + b0[k]) * lane, Bp * lane * sizeof(float));
        pt[k].seq = in.seq;
        if (inputs) {
            for (int t = 0; t < T; t++)
                memcpy(in.inputs + (size_t)t * Bp * lane, inputs + ((size_t)t * B + b0[k]) * lane,
                       Bp * lane * sizeof(float));
            pt[k].inputs = in.inputs;
        }
        if (prev) {
            memcpy(in.prev, prev + b0[k] * lane, Bp * lane * sizeof(float));
            pt[k].prev = in.prev;
        }
        if (state) {
            for (int l = 0; l < WM_DYNAMICS_LAYERS; l++)
                memcpy(in.state + l * Bp * lane_h, state + ((size_t)l * B + b0[k]) * lane_h, Bp * lane_h * sizeof(float));
            pt[k].state = in.state;
        }
    }
    float *grads[TRAIN_MAX_PARTS];
    for (int k = 0; k < parts; k++) grads[k] = pt[k].grad;
    wm_nn_run_parts(train_part_run, pt, sizeof pt[0], parts, grads, d->params.total);
    for (int k = 0; parts > 1 && state && k < parts; k++)   /* the parts' states back in place */
        for (int l = 0; l < WM_DYNAMICS_LAYERS; l++)
            memcpy(state + ((size_t)l * B + b0[k]) * lane_h, pt[k].state + (size_t)l * pt[k].B * lane_h,
                   pt[k].B * lane_h * sizeof(float));
    double sums[5] = { 0 };
    for (int k = 0; k < parts; k++)
        for (int i = 0; i < 5; i++) sums[i] += pt[k].sums[i];
    if (loss) {
        loss->nll = sums[0] / sums[3];
        loss->mse = sums[1] / sums[3];
        loss->mse_copy = sums[2] / sums[3];
        loss->objects = obj_maps ? sums[4] / ((double)T * labelled * H * W * d->cfg.objects) : 0;
    }
    if (parts == 1) {
        d->last_mean = pt[0].w.mean;
        d->last_logvar = pt[0].w.logvar;
        return WM_OK;
    }
    /* the predictions, put back in [T, B] order */
    const size_t nv = (size_t)T * B * lane;
    if (2 * nv > d->last_cap) {
        free(d->last);
        d->last = malloc(2 * nv * sizeof(float));
        d->last_cap = d->last ? 2 * nv : 0;
        if (!d->last) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    }
    for (int k = 0; k < parts; k++)
        for (int t = 0; t < T; t++) {
            const size_t n = (size_t)pt[k].B * lane, from = (size_t)t * n, to = ((size_t)t * B + b0[k]) * lane;
            memcpy(d->last + to, pt[k].w.mean + from, n * sizeof(float));
            memcpy(d->last + nv + to, pt[k].w.logvar + from, n * sizeof(float));
        }
    d->last_mean = d->last;
    d->last_logvar = d->last + nv;
    return WM_OK;
}

void wm_dynamics_last(const wm_dynamics *d, const float **mean, const float **logvar)
{
    *mean = d->last_mean;
    *logvar = d->last_logvar;
}
