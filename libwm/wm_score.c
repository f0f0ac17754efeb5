#include "wm_score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wm_json.h"
#include "wm_latent.h"
#include "wm_proto.h"
#include "wm_venc.h"

#define CONSISTENCY_REF 4      /* latents averaged as the clip's reference */
#define THUMB_H 64             /* thumbnail height (at most) */
#define THUMB_SIDE 2           /* thumbnails each side of the peak */
#define THUMB_N (2 * THUMB_SIDE + 1)

void wm_score_options_default(wm_score_options *o)
{
    memset(o, 0, sizeof *o);
    o->warmup = WM_SCORE_WARMUP;
    o->center = WM_SCORE_CENTER;
    o->scale = WM_SCORE_SCALE;
    o->heat_max = WM_SCORE_HEAT_MAX;
    o->prior_weight = WM_SCORE_PRIOR_WEIGHT;
    o->frame_cap = WM_SCORE_FRAME_CAP;
    o->dyn_adapt = WM_SCORE_DYN_ADAPT;
}

/* ---- the measures ---- */

/* Cell surprise of n cells of C channels under var (per element, or per
 * channel with per_channel; NULL: 1), times weight, written into out or
 * added to it.  Returns the count of non-finite inputs (var <= 0 counts). */
static size_t cell_surprise(const float *z, const float *mu, const float *var, int per_channel, size_t n, int C,
                            double weight, int add, float *out)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int c = 0; c < C; c++) {
            const size_t k = i * (size_t)C + (size_t)c;
            const double v = var ? var[per_channel ? (size_t)c : k] : 1.0, d = (double)z[k] - mu[k];
            if (!isfinite(d) || !isfinite(v) || v <= 0) { bad++; continue; }
            s += 0.5 * (d * d / v - 1.0);
        }
        out[i] = (add ? out[i] : 0.0f) + (float)(weight * s / C);
    }
    return bad;
}

size_t wm_score_cells(const float *z, const float *mu, const float *var, size_t n, int C, float *out)
{
    return cell_surprise(z, mu, var, 0, n, C, 1.0, 0, out);
}

size_t wm_score_cells_add(const float *z, const float *mu, const float *var_c, size_t n, int C, double weight,
                          float *out)
{
    return cell_surprise(z, mu, var_c, 1, n, C, weight, 1, out);
}

static int desc_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

double wm_score_topk(const float *v, size_t n, size_t k, float *scratch, size_t *argmax)
{
    if (n == 0) { if (argmax) *argmax = 0; return 0; }
    if (k < 1) k = 1;
    if (k > n) k = n;
    size_t am = 0;
    for (size_t i = 1; i < n; i++) if (v[i] > v[am]) am = i;
    if (argmax) *argmax = am;
    if (k == 1) return v[am];
    memcpy(scratch, v, n * sizeof *v);
    qsort(scratch, n, sizeof *scratch, desc_float);
    double s = 0;
    for (size_t i = 0; i < k; i++) s += scratch[i];
    return s / (double)k;
}

size_t wm_score_k(size_t cells)
{
    size_t k = (cells + 16) / 32;
    return k < 1 ? 1 : k;
}

/* "hot" colour map of t in [0, 1] */
static void heat_colour(double t, double rgb[3])
{
    rgb[0] = fmin(1.0, 3 * t);
    rgb[1] = fmin(1.0, fmax(0.0, 3 * t - 1));
    rgb[2] = fmin(1.0, fmax(0.0, 3 * t - 2));
}

/* Blends the cell surprise (h x w) over an rgb24 picture of W x H. */
static void overlay(uint8_t *rgb, int W, int H, const float *cells, int h, int w, double heat_max)
{
    for (int y = 0; y < H; y++) {
        const int i = (int)((int64_t)y * h / H);
        for (int x = 0; x < W; x++) {
            const int j = (int)((int64_t)x * w / W);
            double t = cells[(size_t)i * w + j] / heat_max;
            if (!(t > 0.02)) continue;   /* also NaN */
            if (t > 1) t = 1;
            double c[3];
            heat_colour(t, c);
            const double a = 0.8 * t;
            uint8_t *p = rgb + ((size_t)y * W + x) * 3;
            for (int k = 0; k < 3; k++) p[k] = (uint8_t)lround((1 - a) * p[k] + a * 255.0 * c[k]);
        }
    }
}

/* ---- a clip being scored ---- */

typedef struct thumb {
    int64_t index;
    uint8_t *rgb;              /* tw x th rgb24, NULL when none */
} thumb;

typedef struct score_clip {
    int active;
    char *id, *source;
    uint8_t *clip_raw;         /* the clip message, for its labels */
    size_t clip_raw_len;
    int clip_w, clip_h;        /* decoded size from the clip message (0: unknown) */
    char error[256];
    int64_t end_frames;        /* from `end`, -1 before */

    /* latents and predictions */
    int h, w, C;               /* grid, 0 before the first latent */
    int64_t n;                 /* real latents seen */
    double *surprise;          /* per latent; NAN where there is none */
    int64_t *index;            /* the latents' indices */
    size_t cap;
    int *peak_cell;            /* cell of each latent's most surprising cell */
    float *pred_mean, *pred_var;
    float *pred_prior, *pred_prior_var;   /* [h, w, C] and [C] when the pred carries the object prior */
    float *prior_var_eff;      /* [C]: the prior's variance in this clip so far (prior_variance) */
    double *prior_sum;         /* [C]: sum over earlier latents of their mean squared residual to the prior */
    int64_t prior_n;
    float *dyn_var_eff;        /* [h, w, C]: the dynamics' variance in this clip so far (dynamics_variance) */
    double *dyn_sum;           /* [C]: sum over earlier latents of their mean (z - mean)^2 / var */
    int64_t dyn_n;
    int64_t pred_index;        /* -1: no pending prediction */
    int pred_has_var, pred_has_prior;
    float *z, *cells, *scratch;
    int64_t missing_preds;

    /* consistency: cosine similarity to the mean of the first latents */
    float *first;              /* CONSISTENCY_REF latents */
    double *ref;
    int n_first, ref_ready;
    double cons_sum;
    int64_t cons_n;

    /* frames: flicker and smoothness on the pixels */
    int fw, fh, fch;
    uint8_t *prev, *prev2;     /* the last two frames */
    int64_t n_frames;
    double flick_sum, smooth_sum;
    int64_t flick_n, smooth_n;

    /* heatmap: the frame waiting for its latent */
    uint8_t *held_raw;
    size_t held_len, held_cap;
    int64_t held_index;
    int held;

    /* thumbnails around the peak */
    int tw, th;
    thumb ring[THUMB_SIDE];    /* the last frames' thumbnails, oldest first */
    thumb win[THUMB_N];        /* around the best peak so far */
    int win_n, win_need;
    double best;
} score_clip;

struct wm_score_stage {
    wm_score_options o;
    score_clip c;
    wm_msgbuf mb;
    wm_score_sink sink;
    void *sink_ctx;
    wm_score_stats stats;
    uint8_t *heat_px;
    size_t heat_cap;
};

static void thumb_clear(thumb *t) { free(t->rgb); t->rgb = NULL; t->index = -1; }

static void clip_reset(score_clip *c)
{
    free(c->id); free(c->source); free(c->clip_raw);
    free(c->surprise); free(c->index); free(c->peak_cell);
    free(c->pred_mean); free(c->pred_var); free(c->pred_prior); free(c->pred_prior_var);
    free(c->prior_var_eff); free(c->prior_sum); free(c->dyn_var_eff); free(c->dyn_sum);
    free(c->z); free(c->cells); free(c->scratch);
    free(c->first); free(c->ref); free(c->prev); free(c->prev2); free(c->held_raw);
    for (int i = 0; i < THUMB_SIDE; i++) thumb_clear(&c->ring[i]);
    for (int i = 0; i < THUMB_N; i++) thumb_clear(&c->win[i]);
    memset(c, 0, sizeof *c);
    c->pred_index = -1;
    c->end_frames = -1;
    c->best = -INFINITY;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

static wm_status oom(wm_error *err) { return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }

static wm_status clip_begin(score_clip *c, const wm_msg *m, const char *id, size_t id_len, wm_error *err)
{
    clip_reset(c);
    c->active = 1;
    const char *src = "";
    size_t src_len = 0;
    int64_t v;
    if (m) {
        wm_msg_str(m, "source", &src, &src_len);
        if (wm_msg_i64(m, "width", &v) == 0) c->clip_w = (int)v;
        if (wm_msg_i64(m, "height", &v) == 0) c->clip_h = (int)v;
        const char *e;
        size_t el;
        if (wm_msg_str(m, "error", &e, &el) == 0)
            snprintf(c->error, sizeof c->error, "%.*s", (int)(el > 200 ? 200 : el), e);
        if (!(c->clip_raw = malloc(m->len))) return oom(err);
        memcpy(c->clip_raw, m->raw, m->len);
        c->clip_raw_len = m->len;
    }
    if (!(c->id = dup_n(id, id_len)) || !(c->source = dup_n(src, src_len))) return oom(err);
    return WM_OK;
}

static int same_clip(const score_clip *c, const char *id, size_t n)
{
    return c->active && strlen(c->id) == n && memcmp(c->id, id, n) == 0;
}

static void clip_fail(score_clip *c, const char *why, int64_t index)
{
    if (c->error[0]) return;
    if (index >= 0) snprintf(c->error, sizeof c->error, "latent %lld: %s", (long long)index, why);
    else snprintf(c->error, sizeof c->error, "%s", why);
}

/* ---- thumbnails ---- */

static void thumb_size(score_clip *c, int W, int H)
{
    if (c->tw) return;
    c->th = H < THUMB_H ? H : THUMB_H;
    c->tw = (int)((int64_t)W * c->th / H);
    if (c->tw < 1) c->tw = 1;
}

static uint8_t *thumb_make(const score_clip *c, const uint8_t *rgb, int W, int H)
{
    uint8_t *t = malloc((size_t)c->tw * c->th * 3);
    if (!t) return NULL;
    for (int y = 0; y < c->th; y++) {
        const int sy = (int)(((int64_t)y * H + H / 2) / c->th) < H ? (int)(((int64_t)y * H + H / 2) / c->th) : H - 1;
        for (int x = 0; x < c->tw; x++) {
            int sx = (int)(((int64_t)x * W + W / 2) / c->tw);
            if (sx >= W) sx = W - 1;
            memcpy(t + ((size_t)y * c->tw + x) * 3, rgb + ((size_t)sy * W + sx) * 3, 3);
        }
    }
    return t;
}

/* A frame's rgb picture (plain: before the overlay; shown: after) reaches
 * the thumbnails.  `peak`: this frame is the clip's new peak. */
static wm_status thumb_push(score_clip *c, int64_t index, const uint8_t *plain, const uint8_t *shown, int W, int H,
                            int peak, wm_error *err)
{
    thumb_size(c, W, H);
    if (W < 1 || H < 1) return WM_OK;
    if (peak) {
        for (int i = 0; i < THUMB_N; i++) thumb_clear(&c->win[i]);
        c->win_n = 0;
        for (int i = 0; i < THUMB_SIDE; i++)
            if (c->ring[i].rgb) {
                c->win[c->win_n].index = c->ring[i].index;
                if (!(c->win[c->win_n].rgb = malloc((size_t)c->tw * c->th * 3))) return oom(err);
                memcpy(c->win[c->win_n].rgb, c->ring[i].rgb, (size_t)c->tw * c->th * 3);
                c->win_n++;
            }
        c->win[c->win_n].index = index;
        if (!(c->win[c->win_n].rgb = thumb_make(c, shown, W, H))) return oom(err);
        c->win_n++;
        c->win_need = THUMB_SIDE;
    } else if (c->win_need > 0 && c->win_n < THUMB_N) {
        c->win[c->win_n].index = index;
        if (!(c->win[c->win_n].rgb = thumb_make(c, plain, W, H))) return oom(err);
        c->win_n++;
        c->win_need--;
    }
    uint8_t *t = thumb_make(c, plain, W, H);
    if (!t) return oom(err);
    thumb_clear(&c->ring[0]);
    memmove(&c->ring[0], &c->ring[1], (THUMB_SIDE - 1) * sizeof(thumb));
    c->ring[THUMB_SIDE - 1] = (thumb){ index, t };
    return WM_OK;
}

/* ---- frames ---- */

static wm_status frame_measure(score_clip *c, const wm_frame_view *v, wm_error *err)
{
    const int ch = wm_pixfmt_channels(v->format);
    const size_t n = v->size;
    if (n == 0) return WM_OK;   /* the reader never passes one; nothing to measure */
    if (c->prev && (v->width != c->fw || v->height != c->fh || ch != c->fch)) {
        free(c->prev); free(c->prev2);
        c->prev = c->prev2 = NULL;   /* a size change: the measures restart */
    }
    c->fw = v->width;
    c->fh = v->height;
    c->fch = ch;
    if (c->prev) {
        uint64_t d = 0;
        for (size_t i = 0; i < n; i++) d += (uint64_t)abs((int)v->data[i] - (int)c->prev[i]);
        c->flick_sum += (double)d / (double)n / 255.0;
        c->flick_n++;
        if (c->prev2) {
            uint64_t e = 0;
            for (size_t i = 0; i < n; i++) e += (uint64_t)abs((int)v->data[i] + (int)c->prev2[i] - 2 * (int)c->prev[i]);
            c->smooth_sum += (double)e / 2.0 / (double)n / 255.0;
            c->smooth_n++;
        }
    }
    if (!c->prev2 && !(c->prev2 = malloc(n))) return oom(err);
    uint8_t *t = c->prev2;   /* the oldest buffer takes the new frame */
    c->prev2 = c->prev;
    c->prev = t;
    memcpy(c->prev, v->data, n);
    c->n_frames++;
    return WM_OK;
}

/* ---- latents ---- */

static wm_status grow(score_clip *c, wm_error *err)
{
    if ((size_t)c->n < c->cap) return WM_OK;
    size_t cap = c->cap ? 2 * c->cap : 64;
    double *s = realloc(c->surprise, cap * sizeof *s);
    if (s) c->surprise = s;
    int64_t *ix = realloc(c->index, cap * sizeof *ix);
    if (ix) c->index = ix;
    int *pc = realloc(c->peak_cell, cap * sizeof *pc);
    if (pc) c->peak_cell = pc;
    if (!s || !ix || !pc) return oom(err);
    c->cap = cap;
    return WM_OK;
}

static wm_status grid_alloc(score_clip *c, int h, int w, int C, wm_error *err)
{
    const size_t cells = (size_t)h * w, n = cells * C;
    c->h = h; c->w = w; c->C = C;
    if (!(c->z = calloc(n, sizeof(float))) || !(c->cells = calloc(cells, sizeof(float))) ||
        !(c->scratch = calloc(cells, sizeof(float))) || !(c->pred_mean = calloc(n, sizeof(float))) ||
        !(c->pred_var = calloc(n, sizeof(float))) || !(c->pred_prior = calloc(n, sizeof(float))) ||
        !(c->pred_prior_var = calloc((size_t)C, sizeof(float))) ||
        !(c->prior_var_eff = calloc((size_t)C, sizeof(float))) || !(c->prior_sum = calloc((size_t)C, sizeof(double))) ||
        !(c->dyn_var_eff = calloc(n, sizeof(float))) || !(c->dyn_sum = calloc((size_t)C, sizeof(double))) ||
        !(c->first = malloc(CONSISTENCY_REF * n * sizeof(float))) || !(c->ref = calloc(n, sizeof(double))))
        return oom(err);
    return WM_OK;
}

static double cosine(const float *z, const double *ref, size_t n)
{
    double d = 0, a = 0, b = 0;
    for (size_t i = 0; i < n; i++) { d += z[i] * ref[i]; a += (double)z[i] * z[i]; b += ref[i] * ref[i]; }
    return a > 0 && b > 0 ? d / sqrt(a * b) : 0;
}

static void consistency_complete(score_clip *c)
{
    const size_t n = (size_t)c->h * c->w * c->C;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < c->n_first; k++) s += c->first[(size_t)k * n + i];
        c->ref[i] = s / c->n_first;
    }
    for (int k = 0; k < c->n_first; k++) { c->cons_sum += cosine(c->first + (size_t)k * n, c->ref, n); c->cons_n++; }
    c->ref_ready = 1;
}

static void consistency_add(score_clip *c, const float *z)
{
    const size_t n = (size_t)c->h * c->w * c->C;
    if (c->ref_ready) {
        c->cons_sum += cosine(z, c->ref, n);
        c->cons_n++;
        return;
    }
    memcpy(c->first + (size_t)c->n_first * n, z, n * sizeof(float));
    if (++c->n_first == CONSISTENCY_REF) consistency_complete(c);   /* the first ones get theirs now */
}

static void floats_of(const uint8_t *p, int f16, size_t n, float *out)
{
    if (f16)
        for (size_t i = 0; i < n; i++) out[i] = wm_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    else
        memcpy(out, p, n * sizeof(float));
}

static wm_status take_pred(score_clip *c, const wm_msg *m, wm_error *err)
{
    wm_latent_view v;
    if (wm_latent_get(m, 0, &v, err) != WM_OK) {
        clip_fail(c, "a prediction whose shape is not [h, w, C]", -1);
        return WM_OK;
    }
    if (c->h && (v.h != c->h || v.w != c->w || v.C != c->C)) {
        clip_fail(c, "a prediction of another grid than the latents", v.index);
        return WM_OK;
    }
    if (!c->h && grid_alloc(c, v.h, v.w, v.C, err)) return err->code;
    const size_t n = (size_t)v.h * v.w * v.C;
    floats_of(v.data, v.f16, n, c->pred_mean);
    /* the optional arrays, in the data's dtype: var [h, w, C], prior [h, w, C], prior_var [C] */
    const size_t el = v.f16 ? 2 : 4;
    const uint8_t *var, *prior, *prior_var;
    size_t vl, pl, pvl;
    c->pred_has_var = wm_msg_bin(m, "var", &var, &vl) == 0;
    c->pred_has_prior = wm_msg_bin(m, "prior", &prior, &pl) == 0;
    if (c->pred_has_prior != (wm_msg_bin(m, "prior_var", &prior_var, &pvl) == 0) ||
        (c->pred_has_var && vl != n * el) || (c->pred_has_prior && (pl != n * el || pvl != (size_t)v.C * el))) {
        clip_fail(c, "a prediction whose var, prior or prior_var is not of its shape", v.index);
        return WM_OK;
    }
    if (c->pred_has_var) floats_of(var, v.f16, n, c->pred_var);
    if (c->pred_has_prior) {
        floats_of(prior, v.f16, n, c->pred_prior);
        floats_of(prior_var, v.f16, (size_t)v.C, c->pred_prior_var);
    }
    c->pred_index = v.index;
    return WM_OK;
}

/* The object prior's variance for the latent at position pos: per channel
 * the larger of the model's (prior_var, fitted on wm-synth) and the mean
 * squared residual of this clip's earlier latents from position
 * PRIOR_ADAPT_FROM on.  A scene the prior does not fit (a moving camera,
 * textures it cannot track) widens it, so the prior's surprise stays
 * calibrated there; causal, so a violation cannot hide itself.  Then the
 * latent's own residual joins the sum. */
#define PRIOR_ADAPT_FROM 2

/* Adds to sum[c], per channel, the mean over the n cells of (z - mu)^2 /
 * var (var NULL: 1; non-finite terms left out): one latent's residual
 * for the clip-adaptive variances below. */
static void residual_add(const float *z, const float *mu, const float *var, size_t n, int C, double *sum)
{
    for (int ch = 0; ch < C; ch++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) {
            const size_t k = i * (size_t)C + (size_t)ch;
            const double v = var ? var[k] : 1.0, d = (double)z[k] - mu[k];
            if (v > 0 && isfinite(d * d / v)) s += d * d / v;
        }
        sum[ch] += s / (double)n;
    }
}

static const float *prior_variance(score_clip *c, int64_t pos)
{
    for (int ch = 0; ch < c->C; ch++) {
        const double run = c->prior_n ? c->prior_sum[ch] / (double)c->prior_n : 0;
        c->prior_var_eff[ch] = (float)fmax(c->pred_prior_var[ch], run);
    }
    if (pos >= PRIOR_ADAPT_FROM) {
        residual_add(c->z, c->pred_prior, NULL, (size_t)c->h * c->w, c->C, c->prior_sum);
        c->prior_n++;
    }
    return c->prior_var_eff;
}

/* The learnt dynamics' variance for the latent at position pos: its
 * predicted variance (1 without one), widened per channel by
 * max(1, adapt * the mean of (z - mean)^2 / var over the cells of this
 * clip's earlier latents from position PRIOR_ADAPT_FROM on), the twin of
 * prior_variance: where the dynamics has been more than 1 / adapt times
 * overconfident on this clip (a texture or a motion it never learnt), its
 * surprise is taken in that proportion.  Causal, as the prior's.  NULL
 * (the predicted variance as it is) with adapt 0. */
static const float *dynamics_variance(score_clip *c, int64_t pos, double adapt)
{
    if (!(adapt > 0)) return c->pred_has_var ? c->pred_var : NULL;
    const size_t cells = (size_t)c->h * c->w;
    const int C = c->C;
    for (int ch = 0; ch < C; ch++) {
        const double widen = fmax(1.0, c->dyn_n ? adapt * c->dyn_sum[ch] / (double)c->dyn_n : 0);
        for (size_t i = 0; i < cells; i++) {
            const size_t k = i * (size_t)C + (size_t)ch;
            c->dyn_var_eff[k] = (float)((c->pred_has_var ? c->pred_var[k] : 1.0f) * widen);
        }
    }
    if (pos >= PRIOR_ADAPT_FROM) {
        residual_add(c->z, c->pred_mean, c->pred_has_var ? c->pred_var : NULL, cells, C, c->dyn_sum);
        c->dyn_n++;
    }
    return c->dyn_var_eff;
}

/* Surprise of the latent just converted into c->z (its cells in c->cells);
 * returns 1 when it has one. */
static int latent_surprise(score_clip *c, int64_t index, int64_t pos, double prior_weight, double dyn_adapt)
{
    const size_t cells = (size_t)c->h * c->w;
    c->surprise[pos] = NAN;
    c->peak_cell[pos] = 0;
    if (c->pred_index != index) {
        if (pos > 0) c->missing_preds++;
        return 0;
    }
    c->pred_index = -1;
    if (wm_score_cells(c->z, c->pred_mean, dynamics_variance(c, pos, dyn_adapt), cells, c->C, c->cells) ||
        (c->pred_has_prior && prior_weight > 0 &&
         wm_score_cells_add(c->z, c->pred_prior, prior_variance(c, pos), cells, c->C, prior_weight, c->cells))) {
        clip_fail(c, "the prediction holds NaN, Inf or a variance <= 0", index);
        return 0;
    }
    size_t am;
    /* a frame predicted better than the model expected earns the clip
     * nothing: a still, clean scene would otherwise pass for more
     * plausible than one in motion (a ball that stops, or vanishes) */
    c->surprise[pos] = fmax(0.0, wm_score_topk(c->cells, cells, wm_score_k(cells), c->scratch, &am));
    c->peak_cell[pos] = (int)am;
    return 1;
}

/* The frame size the positions refer to. */
static void picture_size(const score_clip *c, int *W, int *H)
{
    if (c->fw) { *W = c->fw; *H = c->fh; }
    else if (c->clip_w && c->clip_h) { *W = c->clip_w; *H = c->clip_h; }
    else { *W = 4 * c->w; *H = 4 * c->h; }
}

/* ---- the stage ---- */

static wm_status emit_heat_frame(wm_score_stage *s, const wm_msg *frame, int64_t index, double pts, int have_cells,
                                 int peak, wm_writer *out, wm_error *err)
{
    score_clip *c = &s->c;
    int W, H;
    wm_frame_view v = { 0 };
    if (frame) { if (wm_proto_frame_get(frame, &v, err)) return err->code; W = v.width; H = v.height; }
    else picture_size(c, &W, &H);
    if (W < 1 || H < 1) return WM_OK;
    const size_t n = (size_t)W * H * 3;
    if (n > s->heat_cap) {
        uint8_t *p = realloc(s->heat_px, 2 * n);
        if (!p) return oom(err);
        s->heat_px = p;
        s->heat_cap = 2 * n;
    }
    uint8_t *plain = s->heat_px, *shown = s->heat_px + n;
    for (size_t i = 0; i < (size_t)W * H; i++) {
        if (!frame) memset(plain + 3 * i, 64, 3);
        else if (v.format == WM_PIX_GRAY8) memset(plain + 3 * i, v.data[i], 3);
        else memcpy(plain + 3 * i, v.data + 3 * i, 3);
    }
    memcpy(shown, plain, n);
    if (have_cells) overlay(shown, W, H, c->cells, c->h, c->w, s->o.heat_max);
    if (s->o.thumbs && thumb_push(c, index, plain, shown, W, H, peak, err)) return err->code;
    if (!s->o.heatmap) return WM_OK;
    wm_frame_info fi = { c->id, index, pts, W, H, WM_PIX_RGB24 };
    wm_msgbuf_reset(&s->mb);
    wm_proto_pack_frame(&s->mb.pk, &fi, 1);
    wm_pack_kv_bool(&s->mb.pk, "heatmap", 1);
    wm_proto_pack_data_header(&s->mb.pk, n);
    wm_status st = wm_writer_send(out, s->mb.sbuf.data, s->mb.sbuf.size, shown, n, err);
    wm_msgbuf_reset(&s->mb);
    return st;
}

/* The held frame goes out: with the overlay of the current cells when
 * have_cells (its latent just arrived), else as it is. */
static wm_status release_held(wm_score_stage *s, int have_cells, int peak, wm_writer *out, wm_error *err)
{
    score_clip *c = &s->c;
    if (!c->held) return WM_OK;
    c->held = 0;
    wm_msg m;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    wm_status st = wm_msg_parse(&m, c->held_raw, c->held_len, &z, err);
    if (st == WM_OK) {
        double pts = 0;
        wm_msg_f64(&m, "pts", &pts);
        st = emit_heat_frame(s, &m, c->held_index, pts, have_cells, peak, out, err);
    }
    msgpack_zone_destroy(&z);
    return st;
}

static wm_status on_latent(wm_score_stage *s, const wm_msg *m, wm_writer *out, wm_error *err)
{
    score_clip *c = &s->c;
    wm_latent_view v;
    if (wm_latent_get(m, 0, &v, err) != WM_OK) { clip_fail(c, "a latent whose shape is not [h, w, C]", -1); return WM_OK; }
    if (v.imagined || c->error[0]) return WM_OK;
    if (!c->h && grid_alloc(c, v.h, v.w, v.C, err)) return err->code;
    if (v.h != c->h || v.w != c->w || v.C != c->C) { clip_fail(c, "the latent grid changes size", v.index); return WM_OK; }
    if (wm_latent_to_f32(&v, c->z)) { clip_fail(c, "NaN or Inf in the latent", v.index); return WM_OK; }
    if (grow(c, err)) return err->code;
    const int64_t pos = c->n++;
    c->index[pos] = v.index;
    const int have = latent_surprise(c, v.index, pos, s->o.prior_weight, s->o.dyn_adapt);
    consistency_add(c, c->z);
    int peak = 0;
    if (have && pos > s->o.warmup && c->surprise[pos] > c->best) { c->best = c->surprise[pos]; peak = 1; }
    if (!s->o.heatmap && !s->o.thumbs) return WM_OK;
    if (c->held && c->held_index == v.index) return release_held(s, have, peak, out, err);
    wm_status st = release_held(s, 0, 0, out, err);
    if (st == WM_OK && !c->n_frames) {
        double pts = 0;
        wm_msg_f64(m, "pts", &pts);
        st = emit_heat_frame(s, NULL, v.index, pts, have, peak, out, err);
    }
    return st;
}

static wm_status on_frame(wm_score_stage *s, const wm_msg *m, wm_writer *out, wm_error *err)
{
    score_clip *c = &s->c;
    wm_frame_view v;
    if (wm_proto_frame_get(m, &v, err)) return err->code;
    if (frame_measure(c, &v, err)) return err->code;
    if (!s->o.heatmap && !s->o.thumbs) return WM_OK;
    /* the frame waits for its latent (wm-encode-latent --keep-frames sends
     * it right before); an earlier frame still waiting goes out as it is */
    wm_status st = release_held(s, 0, 0, out, err);
    if (st) return st;
    if (m->len > c->held_cap) {
        uint8_t *p = realloc(c->held_raw, m->len);
        if (!p) return oom(err);
        c->held_raw = p;
        c->held_cap = m->len;
    }
    memcpy(c->held_raw, m->raw, m->len);
    c->held_len = m->len;
    c->held_index = v.index;
    c->held = 1;
    return WM_OK;
}

/* ---- the score ---- */

static int is_standard_clip_key(const msgpack_object *k)
{
    static const char *const keys[] = { "kind", "id", "source", "fps", "width", "height", "error", NULL };
    for (int i = 0; keys[i]; i++) if (wm_obj_streq(k, keys[i])) return 1;
    return 0;
}

static double round4(double v) { return isfinite(v) ? round(v * 1e4) / 1e4 : v; }

/* six significant digits: the plausibility keeps its ranking near 0 and 1 */
static double sig6(double v)
{
    if (!isfinite(v) || v == 0) return v;
    const double p = pow(10.0, 5 - floor(log10(fabs(v))));
    return round(v * p) / p;
}

static wm_status thumbs_uri(score_clip *c, wm_strbuf *b, wm_error *err)
{
    const size_t row = (size_t)c->tw * 3, W = (size_t)c->tw * c->win_n + (size_t)(c->win_n - 1) * 2;
    uint8_t *strip = calloc(W * c->th, 3);
    if (!strip) return oom(err);
    for (int k = 0; k < c->win_n; k++)
        for (int y = 0; y < c->th; y++)
            memcpy(strip + ((size_t)y * W + (size_t)k * (c->tw + 2)) * 3, c->win[k].rgb + y * row, row);
    uint8_t *png;
    size_t len;
    wm_status st = wm_venc_png_memory(strip, (int)W, c->th, &png, &len, err);
    free(strip);
    if (st) return st;
    wm_strbuf_add(b, "data:image/png;base64,", 22);
    wm_json_base64(b, png, len);   /* quoted: the quotes are dropped below */
    free(png);
    return b->oom ? oom(err) : WM_OK;
}

static wm_status pack_score(wm_score_stage *s, wm_error *err)
{
    score_clip *c = &s->c;
    msgpack_packer *pk = &s->mb.pk;
    const int64_t frames = c->end_frames >= 0 ? c->end_frames : (c->n_frames > c->n ? c->n_frames : c->n);
    if (!c->error[0] && c->n < 2)
        snprintf(c->error, sizeof c->error, "%lld latent%s: scoring needs at least 2", (long long)c->n,
                 c->n == 1 ? "" : "s");
    if (!c->error[0] && c->missing_preds)
        snprintf(c->error, sizeof c->error, "%lld latents without a prediction (put wm-step before "
                 "wm-score-coherence)", (long long)c->missing_preds);

    /* aggregates over the predictions after the warm-up */
    const int64_t from = c->n - 1 > s->o.warmup ? s->o.warmup + 1 : 1;
    const double cap = s->o.frame_cap;
    double sum = 0, sum_clip = 0, mx = -INFINITY;
    int64_t cnt = 0, peak = -1;
    for (int64_t p = from; p < c->n; p++) {
        if (!isfinite(c->surprise[p])) continue;
        sum += c->surprise[p];
        sum_clip += cap > 0 ? cap * log1p(c->surprise[p] / cap) : c->surprise[p];
        cnt++;
        if (c->surprise[p] > mx) { mx = c->surprise[p]; peak = p; }
    }
    if (!c->error[0] && cnt == 0) snprintf(c->error, sizeof c->error, "no predictions to score");
    const int ok = !c->error[0];

    /* labels: every key of the clip message that is not a standard one */
    msgpack_zone z;
    msgpack_zone_init(&z, 2048);
    msgpack_object clip_obj = { 0 };
    int n_labels = 0;
    if (c->clip_raw) {
        size_t off = 0;
        if (msgpack_unpack(c->clip_raw_len ? (const char *)c->clip_raw : "", c->clip_raw_len, &off, &z, &clip_obj) ==
                MSGPACK_UNPACK_SUCCESS && clip_obj.type == MSGPACK_OBJECT_MAP) {
            for (uint32_t i = 0; i < clip_obj.via.map.size; i++)
                n_labels += !is_standard_clip_key(&clip_obj.via.map.ptr[i].key);
        } else {
            clip_obj.type = MSGPACK_OBJECT_NIL;
        }
    }
    wm_strbuf uri;
    wm_strbuf_init(&uri);
    int thumbs = ok && s->o.thumbs && c->win_n > 0;
    if (thumbs && thumbs_uri(c, &uri, err)) { wm_strbuf_free(&uri); msgpack_zone_destroy(&z); return err->code; }

    int W, H;
    picture_size(c, &W, &H);
    const int n_keys = 5 + (ok ? 11 : 1) + n_labels + (thumbs ? 2 : 0);
    wm_msgbuf_reset(&s->mb);
    msgpack_pack_map(pk, (size_t)n_keys);
    wm_pack_kv_str(pk, "kind", "score");
    wm_pack_kv_str(pk, "clip", c->id);
    wm_pack_kv_str(pk, "source", c->source);
    wm_pack_kv_i64(pk, "frames", frames);
    wm_pack_str(pk, "size");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, W > 0 ? W : 0);
    msgpack_pack_int(pk, H > 0 ? H : 0);
    if (ok) {
        wm_pack_str(pk, "latent");
        msgpack_pack_array(pk, 3);
        msgpack_pack_int(pk, c->h);
        msgpack_pack_int(pk, c->w);
        msgpack_pack_int(pk, c->C);
        wm_pack_str(pk, "surprise");
        msgpack_pack_array(pk, (size_t)c->n);
        for (int64_t p = 0; p < c->n; p++) {
            if (isfinite(c->surprise[p])) msgpack_pack_double(pk, round4(c->surprise[p]));
            else msgpack_pack_nil(pk);
        }
        wm_pack_kv_f64(pk, "surprise_mean", round4(sum / (double)cnt));
        wm_pack_kv_f64(pk, "surprise_max", round4(mx));
        wm_pack_kv_f64(pk, "surprise_clip", round4(sum_clip / (double)cnt));
        wm_pack_kv_i64(pk, "peak_frame", c->index[peak]);
        const int cell = c->peak_cell[peak], ci = cell / c->w, cj = cell % c->w;
        wm_pack_str(pk, "peak_xy");
        msgpack_pack_array(pk, 2);
        msgpack_pack_int64(pk, (int64_t)floor((cj + 0.5) * W / c->w));
        msgpack_pack_int64(pk, (int64_t)floor((ci + 0.5) * H / c->h));
        const double pl = 1.0 / (1.0 + exp((sum_clip / (double)cnt - s->o.center) / s->o.scale));
        wm_pack_kv_f64(pk, "plausibility", sig6(pl));
        wm_pack_str(pk, "flicker");
        if (c->flick_n) msgpack_pack_double(pk, round4(c->flick_sum / (double)c->flick_n)); else msgpack_pack_nil(pk);
        wm_pack_str(pk, "smoothness");
        if (c->smooth_n) msgpack_pack_double(pk, round4(c->smooth_sum / (double)c->smooth_n)); else msgpack_pack_nil(pk);
        if (!c->ref_ready && c->n_first > 0) consistency_complete(c);
        wm_pack_str(pk, "consistency");
        msgpack_pack_double(pk, round4(c->cons_n ? c->cons_sum / (double)c->cons_n : 1.0));
    } else {
        wm_pack_kv_str(pk, "error", c->error);
    }
    if (clip_obj.type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < clip_obj.via.map.size; i++) {
            const msgpack_object_kv *kv = &clip_obj.via.map.ptr[i];
            if (is_standard_clip_key(&kv->key)) continue;
            wm_pack_obj(pk, &kv->key);
            wm_pack_obj(pk, &kv->val);
        }
    if (thumbs) {
        wm_pack_str(pk, "thumbs");
        /* uri holds data:...;base64,"..." : drop the two quotes */
        char *q1 = memchr(uri.s, '"', uri.len);
        const size_t pre = (size_t)(q1 - uri.s);
        msgpack_pack_str(pk, uri.len - 2);
        msgpack_pack_str_body(pk, uri.s, pre);
        msgpack_pack_str_body(pk, q1 + 1, uri.len - pre - 2);
        wm_pack_str(pk, "thumbs_frames");
        msgpack_pack_array(pk, 2);
        msgpack_pack_int64(pk, c->win[0].index);
        msgpack_pack_int64(pk, c->win[c->win_n - 1].index);
    }
    wm_strbuf_free(&uri);
    msgpack_zone_destroy(&z);
    return WM_OK;
}

static wm_status clip_finish(wm_score_stage *s, wm_writer *out, wm_error *err)
{
    score_clip *c = &s->c;
    if (!c->active) return WM_OK;
    wm_status st = release_held(s, 0, 0, out, err);
    if (st == WM_OK) st = pack_score(s, err);
    if (st == WM_OK) {
        s->stats.clips++;
        s->stats.errors += c->error[0] != 0;
        if (s->sink) {
            msgpack_zone z;
            msgpack_zone_init(&z, 4096);
            msgpack_object o;
            size_t off = 0;
            if (msgpack_unpack(s->mb.sbuf.data, s->mb.sbuf.size, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS)
                st = s->sink(s->sink_ctx, &o, err);
            else
                st = wm_error_set(err, WM_E_SYSTEM, "clip %s: the score could not be read back", c->id);
            msgpack_zone_destroy(&z);
            wm_msgbuf_reset(&s->mb);
        } else {
            st = wm_writer_send_buf(out, &s->mb, err);
        }
    }
    clip_reset(c);
    return st;
}

/* Makes sure the message's clip is the one being scored. */
static wm_status ensure_clip(wm_score_stage *s, const wm_msg *m, wm_writer *out, wm_error *err)
{
    const char *id;
    size_t n;
    if (wm_msg_str(m, "clip", &id, &n) != 0 || same_clip(&s->c, id, n)) return WM_OK;
    wm_status st = WM_OK;
    if (s->c.active) {
        clip_fail(&s->c, "the clip has no end message before the next clip's messages", -1);
        st = clip_finish(s, out, err);
    }
    return st ? st : clip_begin(&s->c, NULL, id, n, err);
}

static wm_status score_msg(void *ctx, const wm_msg *m, wm_writer *out, wm_error *err)
{
    wm_score_stage *s = ctx;
    score_clip *c = &s->c;
    wm_status st = WM_OK;
    int pass = !s->o.only_scores;
    if (wm_msg_is(m, "clip")) {
        if (c->active) {
            clip_fail(c, "the clip has no end message before the next clip", -1);
            if ((st = clip_finish(s, out, err))) return st;
        }
        const char *id = "";
        size_t n = 0;
        wm_msg_str(m, "id", &id, &n);
        st = clip_begin(c, m, id, n, err);
    } else if (wm_msg_is(m, "frame")) {
        if (!(st = ensure_clip(s, m, out, err))) st = on_frame(s, m, out, err);
        if (s->o.heatmap) pass = 0;   /* replaced by its overlay */
    } else if (wm_msg_is(m, "latent")) {
        if (!(st = ensure_clip(s, m, out, err))) {
            if (pass && (st = wm_writer_forward(out, m, err))) return st;
            pass = 0;
            st = on_latent(s, m, out, err);
        }
    } else if (wm_msg_is(m, "pred")) {
        if (!(st = ensure_clip(s, m, out, err))) st = take_pred(c, m, err);
    } else if (wm_msg_is(m, "end")) {
        const char *id;
        size_t n;
        if (wm_msg_str(m, "clip", &id, &n) == 0 && !same_clip(c, id, n)) {
            if ((st = ensure_clip(s, m, out, err))) return st;
        }
        int64_t f;
        if (wm_msg_i64(m, "frames", &f) == 0) c->end_frames = f;
        const char *e;
        size_t el;
        if (wm_msg_str(m, "error", &e, &el) == 0 && !c->error[0])
            snprintf(c->error, sizeof c->error, "%.*s", (int)(el > 200 ? 200 : el), e);
        st = clip_finish(s, out, err);
    } else if (wm_msg_is(m, "score")) {
        pass = 0;   /* an older score of the same clips: ours replaces it */
    }
    /* --only-scores keeps each clip's frame (its clip and end), so the
     * output is still a stream of whole clips (wm-worker waits for ends) */
    if (s->o.only_scores && !s->sink && (wm_msg_is(m, "clip") || wm_msg_is(m, "end"))) pass = 1;
    if (st == WM_OK && pass) st = wm_writer_forward(out, m, err);
    return st;
}

static wm_status score_finish(void *ctx, wm_writer *out, wm_error *err)
{
    wm_score_stage *s = ctx;
    if (!s->c.active) return WM_OK;
    clip_fail(&s->c, "the stream ended before the clip's end", -1);
    return clip_finish(s, out, err);
}

wm_score_stage *wm_score_stage_new(const wm_score_options *o, wm_error *err)
{
    if (o->warmup < 0 || !(o->scale > 0) || !(o->heat_max > 0)) {
        wm_error_set(err, WM_E_USAGE, "score: warm-up >= 0, scale > 0 and heat max > 0 are needed");
        return NULL;
    }
    wm_score_stage *s = calloc(1, sizeof *s);
    if (!s) { oom(err); return NULL; }
    s->o = *o;
    wm_msgbuf_init(&s->mb);
    clip_reset(&s->c);
    return s;
}

void wm_score_stage_free(wm_score_stage **sp)
{
    wm_score_stage *s = *sp;
    if (!s) return;
    clip_reset(&s->c);
    wm_msgbuf_destroy(&s->mb);
    free(s->heat_px);
    free(s);
    *sp = NULL;
}

void wm_score_stage_set_sink(wm_score_stage *s, wm_score_sink sink, void *ctx)
{
    s->sink = sink;
    s->sink_ctx = ctx;
}

wm_stage wm_score_stage_get(wm_score_stage *s) { return (wm_stage){ s, score_msg, score_finish }; }

void wm_score_stage_stats(const wm_score_stage *s, wm_score_stats *out) { *out = s->stats; }
