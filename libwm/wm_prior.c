#include "wm_prior.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wm_model.h"
#include "wm_safetensors.h"

#define MAX_BALLS WM_OBJECTS_MAX_TRACKS
#define BALL_THRESHOLD 0.5f

struct wm_prior {
    wm_tokenizer *tk;
    wm_detector *det;
    int lanes, h, w, C, H, W;
    wm_objects **scene;          /* one per lane */
    float *y;                    /* [lanes, H, W, 3] decoded, network values */
    uint8_t *pix;                /* [lanes, H, W, 3] the same as pixels */
    float *frame;                /* [lanes, H, W, 3] the pixels as floats */
    float *drawn;                /* [lanes, H, W, 3] the predicted frames */
    float *x;                    /* [2 lanes, H, W, 3] to encode: drawn, then decoded */
    float *enc;                  /* [2 lanes, h, w, C] */
    float *maps;                 /* [lanes, h, w, WM_DETECT_MAPS] */
};

wm_prior *wm_prior_new(wm_tokenizer *tk, wm_detector *det, int lanes, int h, int w, double fps,
                       const wm_objects_config *cfg, wm_error *err)
{
    const int C = wm_tokenizer_get_config(tk)->latent_channels;
    if (wm_detector_get_config(det)->latent_channels != C) {
        wm_error_set(err, WM_E_INPUT, "the ball detector reads %d latent channels, the tokenizer writes %d",
                     wm_detector_get_config(det)->latent_channels, C);
        return NULL;
    }
    if (lanes < 1 || h < 1 || w < 1) {
        wm_error_set(err, WM_E_USAGE, "prior: %d lanes of %dx%d", lanes, w, h);
        return NULL;
    }
    wm_prior *p = calloc(1, sizeof *p);
    if (!p) {
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    p->tk = tk;
    p->det = det;
    p->lanes = lanes;
    p->h = h;
    p->w = w;
    p->C = C;
    p->H = h * WM_TOKENIZER_PATCH;
    p->W = w * WM_TOKENIZER_PATCH;
    const size_t px = (size_t)lanes * p->H * p->W * 3, cells = (size_t)lanes * h * w;
    p->scene = calloc((size_t)lanes, sizeof(wm_objects *));
    p->y = malloc(px * sizeof(float));
    p->pix = malloc(px);
    p->frame = malloc(px * sizeof(float));
    p->drawn = malloc(px * sizeof(float));
    p->x = malloc(2 * px * sizeof(float));
    p->enc = malloc(2 * cells * C * sizeof(float));
    p->maps = malloc(cells * WM_DETECT_MAPS * sizeof(float));
    if (!p->scene || !p->y || !p->pix || !p->frame || !p->drawn || !p->x || !p->enc || !p->maps) {
        wm_prior_free(&p);
        wm_error_set(err, WM_E_SYSTEM, "out of memory for the object prior of %d lanes", lanes);
        return NULL;
    }
    const wm_objects_config dflt = wm_objects_default_config(p->W, p->H, fps);
    for (int l = 0; l < lanes; l++)
        if (!(p->scene[l] = wm_objects_new(cfg ? cfg : &dflt, err))) {
            wm_prior_free(&p);
            return NULL;
        }
    return p;
}

void wm_prior_free(wm_prior **pp)
{
    wm_prior *p = *pp;
    if (!p) return;
    for (int l = 0; p->scene && l < p->lanes; l++) wm_objects_free(&p->scene[l]);
    free(p->scene);
    free(p->y);
    free(p->pix);
    free(p->frame);
    free(p->drawn);
    free(p->x);
    free(p->enc);
    free(p->maps);
    free(p);
    *pp = NULL;
}

void wm_prior_set_doubt(wm_prior *p, int frames)
{
    for (int l = 0; l < p->lanes; l++) wm_objects_set_doubt(p->scene[l], frames);
}

void wm_prior_reset(wm_prior *p, int lane, double fps)
{
    for (int l = 0; l < p->lanes; l++)
        if (lane < 0 || l == lane) {
            wm_objects_reset(p->scene[l]);
            if (fps > 0) wm_objects_set_fps(p->scene[l], fps);
        }
}

const float *wm_prior_drawn(const wm_prior *p) { return p->drawn; }
const wm_objects *wm_prior_scene(const wm_prior *p, int lane) { return p->scene[lane]; }

static wm_status prior_next(wm_prior *p, int n, const float *z, float *prior, int imagined, wm_error *err)
{
    if (n < 1 || n > p->lanes) return wm_error_set(err, WM_E_USAGE, "prior: %d lanes of %d", n, p->lanes);
    const size_t fpx = (size_t)p->H * p->W, cells = (size_t)p->h * p->w, lat = cells * p->C;
    wm_status st = wm_tokenizer_decode(p->tk, p->y, z, n, p->h, p->w, err);
    if (!st && !imagined) st = wm_detector_forward(p->det, z, n, p->h, p->w, p->maps, err);
    if (st) return st;
    wm_tokenizer_output_to_pixels(p->pix, p->y, (size_t)n * fpx);
    for (size_t k = 0; k < (size_t)n * fpx * 3; k++) p->frame[k] = p->pix[k];
    /* the decoded frames as the encoder reads them, after the drawn ones (p->pix is reused for those) */
    wm_tokenizer_pixels_to_input(p->x + (size_t)n * fpx * 3, p->pix, (size_t)n * fpx, 3);
    for (int l = 0; l < n; l++) {
        float *drawn = p->drawn + (size_t)l * fpx * 3;
        if (imagined) {
            wm_objects_step_imagined(p->scene[l], p->frame + (size_t)l * fpx * 3, drawn);
        } else {
            wm_detection balls[MAX_BALLS];
            int nb = wm_detector_balls(p->maps + (size_t)l * cells * WM_DETECT_MAPS, p->h, p->w, WM_TOKENIZER_PATCH,
                                       BALL_THRESHOLD, balls, MAX_BALLS);
            if (nb > MAX_BALLS) nb = MAX_BALLS;
            wm_objects_step(p->scene[l], p->frame + (size_t)l * fpx * 3, balls, nb, drawn);
        }
        uint8_t *q = p->pix + (size_t)l * fpx * 3;   /* the drawn frame as 8-bit pixels, as a stream carries it */
        for (size_t k = 0; k < fpx * 3; k++) q[k] = (uint8_t)lrintf(drawn[k]);
    }
    /* encode the drawn frames, then the decoded ones, in one batch */
    wm_tokenizer_pixels_to_input(p->x, p->pix, (size_t)n * fpx, 3);
    if ((st = wm_tokenizer_encode(p->tk, p->enc, p->x, 2 * n, p->H, p->W, err))) return st;
    const float *drawn_z = p->enc, *decoded_z = p->enc + (size_t)n * lat;
    for (size_t k = 0; k < (size_t)n * lat; k++) prior[k] = z[k] + drawn_z[k] - decoded_z[k];
    return WM_OK;
}

wm_status wm_prior_step(wm_prior *p, int n, const float *z, float *prior, wm_error *err)
{
    return prior_next(p, n, z, prior, 0, err);
}

wm_status wm_prior_imagine(wm_prior *p, int n, const float *z, float *prior, wm_error *err)
{
    return prior_next(p, n, z, prior, 1, err);
}

/* ---- the variance, fitted and kept in the model file ---- */

#define FIT_LANES 8

/* Runs the clips lanes[0..n) (one grid, longest first) through p and adds
 * their squared residuals per channel into sum. */
static wm_status fit_group(wm_prior *p, const wm_clipset *cs, const int *src, const size_t *idx, int n, double fps,
                           double *sum, double *cells, long *count, float *z, float *out, wm_error *err)
{
    const float *lat[FIT_LANES];
    int len[FIT_LANES], h = 0, w = 0, T = 0;
    for (int l = 0; l < n; l++) {
        wm_clipset_clip(cs, src[l], idx[l], &lat[l], NULL, &len[l], &h, &w);
        if (len[l] > T) T = len[l];
    }
    const size_t L = (size_t)h * w * p->C;
    wm_prior_reset(p, -1, fps);
    for (int t = 0; t + 1 < T; t++) {
        int a = 0;
        while (a < n && len[a] > t + 1) a++;   /* lanes with a latent t + 1 to predict */
        for (int l = 0; l < a; l++) memcpy(z + l * L, lat[l] + (size_t)t * L, L * sizeof(float));
        wm_status st = wm_prior_step(p, a, z, out, err);
        if (st) return st;
        if (t + 1 < WM_PRIOR_FROM) continue;
        for (int l = 0; l < a; l++) {
            const float *next = lat[l] + (size_t)(t + 1) * L, *pr = out + l * L;
            for (size_t k = 0; k < L; k++) {
                const double d = (double)next[k] - pr[k];
                sum[k % (size_t)p->C] += d * d;
            }
            *count += 1;
            *cells += (double)h * w;
        }
    }
    return WM_OK;
}

/* by grid, then longest first, then source and index: one order on every
 * machine, in which the clips of one grid follow each other */
static int cmp_clip_key(const void *a, const void *b)
{
    const int *x = a, *y = b;
    for (int k = 1; k <= 2; k++)
        if (x[k] != y[k]) return (x[k] > y[k]) - (x[k] < y[k]);
    if (x[0] != y[0]) return (y[0] > x[0]) - (y[0] < x[0]);
    for (int k = 3; k <= 4; k++)
        if (x[k] != y[k]) return (x[k] > y[k]) - (x[k] < y[k]);
    return 0;
}

wm_status wm_prior_fit(wm_tokenizer *tk, wm_detector *det, const wm_clipset *cs, double fps, float *var, long *count,
                       wm_error *err)
{
    const int C = wm_tokenizer_get_config(tk)->latent_channels;
    size_t total = 0;
    for (int s = 0; s < wm_clipset_sources(cs); s++) total += wm_clipset_source_size(cs, s);
    /* clips as (length, h, w, source, index) */
    int *key = malloc((total ? total : 1) * 5 * sizeof(int));
    double *sum = calloc((size_t)C, sizeof(double)), cells = 0;
    if (!key || !sum) {
        free(key);
        free(sum);
        return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    }
    size_t m = 0;
    for (int s = 0; s < wm_clipset_sources(cs); s++)
        for (size_t i = 0; i < wm_clipset_source_size(cs, s); i++) {
            const float *lat;
            int n, h, w;
            wm_clipset_clip(cs, s, i, &lat, NULL, &n, &h, &w);
            int *k = key + 5 * m++;
            k[0] = n, k[1] = h, k[2] = w, k[3] = s, k[4] = (int)i;
        }
    qsort(key, m, 5 * sizeof(int), cmp_clip_key);
    wm_status st = WM_OK;
    wm_prior *p = NULL;
    float *z = NULL, *out = NULL;
    *count = 0;
    /* groups of up to FIT_LANES consecutive clips of one grid */
    for (size_t i = 0; st == WM_OK && i < m;) {
        const int h = key[5 * i + 1], w = key[5 * i + 2];
        int src[FIT_LANES], n = 0;
        size_t idx[FIT_LANES];
        for (; i < m && n < FIT_LANES && key[5 * i + 1] == h && key[5 * i + 2] == w; i++, n++) {
            src[n] = key[5 * i + 3];
            idx[n] = (size_t)key[5 * i + 4];
        }
        if (!p || p->h != h || p->w != w) {
            wm_prior_free(&p);
            free(z);
            free(out);
            const size_t L = (size_t)FIT_LANES * h * w * C;
            z = malloc(L * sizeof(float));
            out = malloc(L * sizeof(float));
            p = z && out ? wm_prior_new(tk, det, FIT_LANES, h, w, fps, NULL, err) : NULL;
            if (!p) {
                st = z && out ? err->code : wm_error_set(err, WM_E_SYSTEM, "out of memory");
                break;
            }
        }
        st = fit_group(p, cs, src, idx, n, fps, sum, &cells, count, z, out, err);
    }
    if (st == WM_OK && *count == 0)
        st = wm_error_set(err, WM_E_INPUT, "no clip has %d latents or more to fit the object prior on",
                          WM_PRIOR_FROM + 1);
    for (int c = 0; st == WM_OK && c < C; c++) var[c] = (float)(sum[c] / cells);
    wm_prior_free(&p);
    free(z);
    free(out);
    free(key);
    free(sum);
    return st;
}

wm_status wm_prior_save(const char *path, const float *var, int C, const char *const *meta, size_t n_meta,
                        wm_error *err)
{
    wm_safetensors *old = NULL;
    wm_safetensors_builder *b = wm_safetensors_builder_new(err);
    wm_status st = b ? wm_model_keep_others(b, path, WM_PRIOR_PREFIX, &old, NULL, err) : err->code;
    const uint64_t shape[1] = { (uint64_t)C };
    if (!st) st = wm_safetensors_builder_add(b, WM_PRIOR_PREFIX, "var", WM_ST_F32, 1, shape, var, err);
    char num[32];
    snprintf(num, sizeof num, "%d", C);
    const char *fixed[] = {
        "arch", WM_PRIOR_ARCH,
        "latent_channels", num,
        "mean", "z_t + E(frame t+1 drawn by the ball tracker) - E(D(z_t)) (libwm/wm_prior.h)",
        "var", "per channel, of z_{t+1} - prior_t in latent units",
    };
    if (!st) st = wm_model_add_meta(b, WM_PRIOR_PREFIX, fixed, sizeof fixed / sizeof fixed[0] / 2, old, meta, n_meta, err);
    if (!st) st = wm_safetensors_builder_write(b, path, err);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&old);
    return st;
}

wm_status wm_prior_load_var(const char *path, int C, float *var, wm_error *err)
{
    wm_safetensors *st = wm_safetensors_open(path, err);
    if (!st) return err->code;
    wm_status s = wm_model_check_arch(st, path, WM_PRIOR_PREFIX, WM_PRIOR_ARCH, "object prior", "prior",
                                      "; fit one with wm-train prior", err);
    if (!s) s = wm_model_read_vector(st, path, WM_PRIOR_PREFIX "var", C, var, err);
    for (int c = 0; !s && c < C; c++)
        if (!(var[c] > 0.0f) || !isfinite(var[c]))
            s = wm_error_set(err, WM_E_INPUT, "%s: " WM_PRIOR_PREFIX "var[%d] = %g is not a positive number", path, c,
                             (double)var[c]);
    wm_safetensors_close(&st);
    return s;
}

wm_status wm_prior_model_load(const char *path, int C, wm_prior_model *m, wm_error *err)
{
    *m = (wm_prior_model){ 0 };
    m->tk = wm_tokenizer_load(path, err);
    m->det = m->tk ? wm_detector_load(path, err) : NULL;
    wm_status st = m->det ? WM_OK : err->code;
    if (!st && wm_tokenizer_get_config(m->tk)->latent_channels != C)
        st = wm_error_set(err, WM_E_INPUT, "%s: the tokenizer writes %d channels, the dynamics model reads %d", path,
                          wm_tokenizer_get_config(m->tk)->latent_channels, C);
    if (!st && !(m->var = malloc((size_t)C * sizeof *m->var)))
        st = wm_error_set(err, WM_E_SYSTEM, "out of memory for the prior's variance");
    if (!st) st = wm_prior_load_var(path, C, m->var, err);
    if (st) wm_prior_model_free(m);
    return st;
}

void wm_prior_model_free(wm_prior_model *m)
{
    wm_detector_free(&m->det);
    wm_tokenizer_free(&m->tk);
    free(m->var);
    m->var = NULL;
}
