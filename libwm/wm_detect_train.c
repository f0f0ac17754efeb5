#include "wm_detect_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wm_adam.h"
#include "wm_cli.h"
#include "wm_rng.h"
#include "wm_tokenizer.h"

/* the labelled clips of a set that hold a crop: (source, index) pairs */
typedef struct labelled { int source; size_t index; } labelled;

static size_t list_labelled(const wm_clipset *cs, int min_h, int min_w, int negatives, labelled *out)
{
    size_t n = 0;
    for (int s = 0; s < wm_clipset_sources(cs); s++)
        for (size_t i = 0; i < wm_clipset_source_size(cs, s); i++) {
            const float *lat, *lab;
            int len, h, w;
            wm_clipset_clip(cs, s, i, &lat, &lab, &len, &h, &w);
            if ((!lab && !negatives) || h < min_h || w < min_w) continue;
            if (out) out[n] = (labelled){ s, i };
            n++;
        }
    return n;
}

/* The detector's labels of latent t of a clip: they follow its object maps. */
static const float *centre_labels(const float *labels, int t, int h, int w)
{
    return labels + (size_t)t * h * w * WM_CLIPSET_LABELS + (size_t)h * w * WM_DYNAMICS_OBJECT_MAPS;
}

/* One clip of the list: by weight, a source among those with a clip in the
 * list, then one of its clips (the list is in source order); without
 * weights, any clip of the list. */
static const labelled *draw_clip(wm_rng *rng, const labelled *list, size_t n_list, const double *weights)
{
    if (!weights) return &list[wm_rng_below(rng, n_list)];
    double total = 0;
    for (size_t k = 0; k < n_list; k++)
        if (k == 0 || list[k].source != list[k - 1].source) total += weights[list[k].source];
    double u = wm_rng_uniform(rng) * total;
    size_t first = 0;
    for (size_t k = 0; k < n_list; k++) {
        if (k && list[k].source == list[k - 1].source) continue;
        first = k;
        if (u < weights[list[k].source]) break;
        u -= weights[list[k].source];
    }
    size_t n = 0;
    while (first + n < n_list && list[first + n].source == list[first].source) n++;
    return &list[first + wm_rng_below(rng, n)];
}

/* Fills z[B, ch, cw, C] and lab[B, ch, cw, WM_DETECT_LABELS] with minibatch m
 * (a clip without labels: no ball anywhere). */
static void sample(const wm_clipset *cs, const labelled *list, size_t n_list, const wm_detect_train_options *o, long m,
                   int C, float *z, float *lab)
{
    wm_rng rng;
    wm_rng_seed(&rng, o->seed * 0x9e3779b97f4a7c15ULL + (uint64_t)m + 1);
    const int ch = o->crop_h, cw = o->crop_w;
    for (int b = 0; b < o->batch; b++) {
        const labelled *c = draw_clip(&rng, list, n_list, o->weights);
        const float *lat, *labels;
        int len, h, w;
        wm_clipset_clip(cs, c->source, c->index, &lat, &labels, &len, &h, &w);
        const int t = (int)wm_rng_below(&rng, (uint64_t)len);
        const int y0 = (int)wm_rng_below(&rng, (uint64_t)(h - ch) + 1), x0 = (int)wm_rng_below(&rng, (uint64_t)(w - cw) + 1);
        const float *zl = lat + (size_t)t * h * w * C, *ll = labels ? centre_labels(labels, t, h, w) : NULL;
        for (int y = 0; y < ch; y++) {
            memcpy(z + (((size_t)b * ch + y) * cw) * C, zl + ((size_t)(y0 + y) * w + x0) * C, (size_t)cw * C * sizeof(float));
            float *to = lab + (((size_t)b * ch + y) * cw) * WM_DETECT_LABELS;
            if (ll) memcpy(to, ll + ((size_t)(y0 + y) * w + x0) * WM_DETECT_LABELS, (size_t)cw * WM_DETECT_LABELS * sizeof(float));
            else memset(to, 0, (size_t)cw * WM_DETECT_LABELS * sizeof(float));
        }
    }
}

static void add_loss(wm_detect_loss *acc, const wm_detect_loss *l)
{
    acc->total += l->total;
    acc->centre += l->centre;
    acc->offset += l->offset;
    acc->radius += l->radius;
    acc->labelled += l->labelled;
}

wm_status wm_detect_train(wm_detector *d, const wm_clipset *cs, const wm_detect_train_options *o,
                          wm_detect_report_fn report, wm_train_stop_fn stop, void *ctx, wm_error *err)
{
    const int C = wm_detector_get_config(d)->latent_channels;
    const size_t n_list = list_labelled(cs, o->crop_h, o->crop_w, o->negatives, NULL);
    if (!list_labelled(cs, o->crop_h, o->crop_w, 0, NULL))
        return wm_error_set(err, WM_E_INPUT, "no clip carries ball labels on a grid of at least %dx%d cells (wm-synth's "
                            "streams do)", o->crop_w, o->crop_h);
    const size_t cells = (size_t)o->batch * o->crop_h * o->crop_w;
    labelled *list = calloc(n_list ? n_list : 1, sizeof *list);
    float *z = malloc(cells * C * sizeof(float)), *lab = malloc(cells * WM_DETECT_LABELS * sizeof(float));
    float *mean = malloc((size_t)C * sizeof(float)), *std = malloc((size_t)C * sizeof(float));
    wm_params *p = wm_detector_params(d);
    wm_adam adam = { 0 };
    wm_status st = WM_OK;
    if (!list || !z || !lab || !mean || !std) st = wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (!st) st = wm_params_alloc_grad(p, err);
    if (!st) st = wm_adam_init(&adam, p->total, err);
    if (!st) {
        list_labelled(cs, o->crop_h, o->crop_w, o->negatives, list);
        wm_clipset_stats(cs, mean, std);
        wm_detector_set_norm(d, mean, std);
    }
    double t0 = wm_now(), last = t0;
    long since = 0;
    wm_detect_loss acc = { 0 };
    for (long step = 0; st == WM_OK && step < o->steps; step++) {
        if (stop && stop(ctx)) {
            st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted at step %ld of %ld", step, o->steps);
            break;
        }
        sample(cs, list, n_list, o, step, C, z, lab);
        memset(p->grad, 0, p->total * sizeof(float));
        if ((st = wm_detector_forward(d, z, o->batch, o->crop_h, o->crop_w, NULL, err))) break;
        wm_detect_loss l = wm_detector_loss(d, lab, o->pos_weight, 1);
        const float lr = wm_lr_schedule(step, o->steps, o->warmup, o->lr, o->lr_floor);
        wm_adam_update(&adam, p->data, p->grad, lr);
        add_loss(&acc, &l);
        since++;
        const double now = wm_now();
        const int final = step + 1 == o->steps;
        if (report && (final || o->log_every <= 0 || now - last >= o->log_every)) {
            wm_detect_progress pr = { 0 };
            pr.step = step + 1;
            pr.steps = o->steps;
            pr.loss = acc;
            pr.loss.total /= (double)since;
            pr.loss.centre /= (double)since;
            pr.loss.offset /= (double)since;
            pr.loss.radius /= (double)since;
            pr.elapsed = now - t0;
            pr.latents_per_s = pr.elapsed > 0 ? (double)(step + 1) * o->batch / pr.elapsed : 0;
            pr.eta = pr.elapsed / (double)(step + 1) * (double)(o->steps - step - 1);
            pr.lr = lr;
            pr.final = final;
            report(ctx, &pr);
            memset(&acc, 0, sizeof acc);
            since = 0;
            last = now;
        }
    }
    wm_adam_free(&adam);
    free(list);
    free(z);
    free(lab);
    free(mean);
    free(std);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the q-quantile of v[0..n) (sorted in place), 0 when empty */
static double quantile(double *v, size_t n, double q)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

#define EVAL_MAX_BALLS 256

wm_status wm_detect_evaluate(wm_detector *d, const wm_clipset *cs, float thr, wm_detect_eval *out, wm_error *err)
{
    memset(out, 0, sizeof *out);
    const int P = WM_TOKENIZER_PATCH;
    size_t n_err = 0, cap_err = 0;
    double *errs = NULL, *rerrs = NULL;
    float *maps = NULL;
    size_t maps_cap = 0;
    wm_detection balls[EVAL_MAX_BALLS];
    unsigned char used[EVAL_MAX_BALLS];
    wm_status st = WM_OK;
    for (int s = 0; st == WM_OK && s < wm_clipset_sources(cs); s++)
        for (size_t i = 0; st == WM_OK && i < wm_clipset_source_size(cs, s); i++) {
            const float *lat, *labels;
            int len, h, w;
            wm_clipset_clip(cs, s, i, &lat, &labels, &len, &h, &w);
            if (!labels) continue;
            const size_t per = (size_t)h * w * WM_DETECT_MAPS;
            if (per * len > maps_cap) {
                float *m2 = realloc(maps, per * len * sizeof(float));
                if (!m2) { st = wm_error_set(err, WM_E_SYSTEM, "out of memory"); break; }
                maps = m2;
                maps_cap = per * len;
            }
            if ((st = wm_detector_forward(d, lat, len, h, w, maps, err))) break;
            for (int t = 0; t < len; t++) {
                int nb = wm_detector_balls(maps + per * t, h, w, P, thr, balls, EVAL_MAX_BALLS);
                if (nb > EVAL_MAX_BALLS) nb = EVAL_MAX_BALLS;
                memset(used, 0, sizeof used);
                const float *ll = centre_labels(labels, t, h, w);
                long matched = 0;
                for (int c = 0; c < h * w; c++) {
                    const float *lb = ll + (size_t)c * WM_DETECT_LABELS;
                    if (!(lb[0] > 0.5f)) continue;
                    const int row = c / w, col = c % w;   /* the labelled cell */
                    const double gx = (col + lb[1]) * P, gy = (row + lb[2]) * P, gr = lb[3] * P;
                    out->balls++;
                    int best = -1;
                    double bd = 1.5 * P;
                    for (int k = 0; k < nb; k++) {
                        double e = hypot(balls[k].x - gx, balls[k].y - gy);
                        if (!used[k] && e < bd) bd = e, best = k;
                    }
                    if (best < 0) continue;
                    used[best] = 1;
                    matched++;
                    if (n_err == cap_err) {
                        size_t nc = cap_err ? 2 * cap_err : 1024;
                        double *e2 = realloc(errs, nc * sizeof *e2), *r2 = e2 ? realloc(rerrs, nc * sizeof *r2) : NULL;
                        if (e2) errs = e2;
                        if (r2) rerrs = r2;
                        if (!e2 || !r2) { st = wm_error_set(err, WM_E_SYSTEM, "out of memory"); break; }
                        cap_err = nc;
                    }
                    errs[n_err] = bd;
                    rerrs[n_err++] = fabs(balls[best].r - gr);
                }
                out->found += matched;
                out->extra += nb - matched;
                if (st) break;
            }
        }
    out->err_median = quantile(errs, n_err, 0.5);
    out->err_p90 = quantile(errs, n_err, 0.9);
    out->radius_median = quantile(rerrs, n_err, 0.5);
    free(errs);
    free(rerrs);
    free(maps);
    return st;
}
