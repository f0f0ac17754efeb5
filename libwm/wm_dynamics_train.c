#include "wm_dynamics_train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_cli.h"
#include "wm_hash.h"
#include "wm_io.h"
#include "wm_latent.h"
#include "wm_nn.h"
#include "wm_proto.h"
#include "wm_reservoir.h"
#include "wm_signal.h"

/* ---- clip set: a reservoir of clips per source ---- */

typedef struct cs_clip {
    float *lat;                /* [n, h, w, C] */
    float *obj;                /* [n][h * w * K_LAB] labels (wm_clipset_add), NULL: none */
    int n, h, w;
} cs_clip;

#define K_OBJ WM_DYNAMICS_OBJECT_MAPS
#define K_LAB WM_CLIPSET_LABELS

struct wm_clipset {
    int C;
    wm_reservoir *res;         /* of cs_clip */
};

static void clip_release(void *item)
{
    free(((cs_clip *)item)->lat);
    free(((cs_clip *)item)->obj);
}

static const cs_clip *clip_at(const wm_clipset *cs, int s, size_t i) { return wm_reservoir_item(cs->res, s, i); }

wm_clipset *wm_clipset_new(int C, size_t max_clips, uint64_t seed, wm_error *err)
{
    wm_clipset *cs = calloc(1, sizeof *cs);
    if (!cs) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    cs->C = C;
    cs->res = wm_reservoir_new(sizeof(cs_clip), max_clips, seed ^ 0xc11b5e7c11b5ULL, clip_release, err);
    if (!cs->res) { free(cs); return NULL; }
    return cs;
}

void wm_clipset_free(wm_clipset **csp)
{
    wm_clipset *cs = *csp;
    if (!cs) return;
    wm_reservoir_free(&cs->res);
    free(cs);
    *csp = NULL;
}

wm_status wm_clipset_add(wm_clipset *cs, int source, const float *latents, const float *objects, int n, int h, int w,
                         wm_error *err)
{
    void *slot;
    int replaces;
    wm_status st = wm_reservoir_offer(cs->res, source, &slot, &replaces, err);
    if (st || !slot) return st;
    size_t count = (size_t)n * h * w * cs->C, n_obj = (size_t)n * h * w * K_LAB;
    float *copy = malloc(count * sizeof(float)), *obj = objects ? malloc(n_obj * sizeof(float)) : NULL;
    if (!copy || (objects && !obj)) {
        free(copy);
        free(obj);
        return wm_error_set(err, WM_E_SYSTEM, "out of memory for %zu training clips", wm_clipset_count(cs));
    }
    memcpy(copy, latents, count * sizeof(float));
    if (obj) memcpy(obj, objects, n_obj * sizeof(float));
    if (replaces) clip_release(slot);
    *(cs_clip *)slot = (cs_clip){ copy, obj, n, h, w };
    return WM_OK;
}

size_t wm_clipset_labelled(const wm_clipset *cs)
{
    size_t n = 0;
    for (int s = 0; s < wm_reservoir_sources(cs->res); s++)
        for (size_t i = 0; i < wm_reservoir_size(cs->res, s); i++) n += clip_at(cs, s, i)->obj != NULL;
    return n;
}

size_t wm_clipset_count(const wm_clipset *cs) { return wm_reservoir_total(cs->res); }

size_t wm_clipset_source_size(const wm_clipset *cs, int s) { return wm_reservoir_size(cs->res, s); }

void wm_clipset_clip(const wm_clipset *cs, int s, size_t i, const float **latents, const float **labels, int *n, int *h,
                     int *w)
{
    const cs_clip *c = clip_at(cs, s, i);
    *latents = c->lat;
    if (labels) *labels = c->obj;
    *n = c->n;
    *h = c->h;
    *w = c->w;
}

size_t wm_clipset_latents(const wm_clipset *cs)
{
    size_t n = 0;
    for (int s = 0; s < wm_reservoir_sources(cs->res); s++)
        for (size_t i = 0; i < wm_reservoir_size(cs->res, s); i++) n += (size_t)clip_at(cs, s, i)->n;
    return n;
}

int wm_clipset_sources(const wm_clipset *cs) { return wm_reservoir_sources(cs->res); }

static int clip_usable(const cs_clip *c, int min_len, int h, int w) { return c->n >= min_len && c->h >= h && c->w >= w; }

size_t wm_clipset_usable(const wm_clipset *cs, int min_len, int h, int w)
{
    size_t n = 0;
    for (int s = 0; s < wm_reservoir_sources(cs->res); s++)
        for (size_t i = 0; i < wm_reservoir_size(cs->res, s); i++) n += (size_t)clip_usable(clip_at(cs, s, i), min_len, h, w);
    return n;
}

void wm_clipset_stats(const wm_clipset *cs, float *mean, float *std)
{
    const int C = cs->C;
    double *s1 = calloc((size_t)C, sizeof *s1), *s2 = calloc((size_t)C, sizeof *s2);
    double n = 0;
    for (int c = 0; c < C; c++) mean[c] = 0.0f, std[c] = 1.0f;
    if (!s1 || !s2) goto done;
    for (int s = 0; s < wm_reservoir_sources(cs->res); s++)
        for (size_t i = 0; i < wm_reservoir_size(cs->res, s); i++) {
            const cs_clip *cl = clip_at(cs, s, i);
            size_t cells = (size_t)cl->n * cl->h * cl->w;
            for (size_t k = 0; k < cells; k++)
                for (int c = 0; c < C; c++) {
                    double v = cl->lat[k * C + c];
                    s1[c] += v;
                    s2[c] += v * v;
                }
            n += (double)cells;
        }
    for (int c = 0; n > 0 && c < C; c++) {
        double m = s1[c] / n, var = s2[c] / n - m * m;
        mean[c] = (float)m;
        std[c] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
    }
done:
    free(s1);
    free(s2);
}

uint64_t wm_clipset_hash(const wm_clipset *cs)
{
    uint64_t h = WM_FNV1A_SEED;
    for (int s = 0; s < wm_reservoir_sources(cs->res); s++)
        for (size_t i = 0; i < wm_reservoir_size(cs->res, s); i++) {
            const cs_clip *c = clip_at(cs, s, i);
            uint32_t dims[4] = { (uint32_t)s, (uint32_t)c->n, (uint32_t)c->h, (uint32_t)c->w };
            const size_t cells = (size_t)c->n * c->h * c->w;
            h = wm_fnv1a(h, dims, sizeof dims);
            h = wm_fnv1a(h, c->lat, cells * cs->C * sizeof(float));
            if (c->obj) h = wm_fnv1a(h, c->obj, cells * K_LAB * sizeof(float));   /* the labels too */
        }
    return h;
}

/* ---- reading streams ---- */

/* One clip being read: its latents, and frames waiting to be encoded. */
typedef struct clip_reader {
    wm_clipset *cs;
    wm_tokenizer *tk;
    int source;
    char id[256];
    int open;
    float *lat;
    size_t lat_cap;            /* floats */
    int n, h, w;
    float *frames;             /* [pending, fh, fw, 3] */
    size_t frames_cap;
    int pending, fh, fw;
    float *obj;                /* [nobj][h * w * K_LAB]: the labels of each latent or frame read */
    size_t obj_cap;
    int nobj, has_obj;
    size_t added;
} clip_reader;

#define ENCODE_BATCH 16

static wm_status grow_floats(float **p, size_t *cap, size_t need, wm_error *err)
{
    if (need <= *cap) return WM_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    float *q = realloc(*p, c * sizeof(float));
    if (!q) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    *p = q;
    *cap = c;
    return WM_OK;
}

/* Appends a latent of h x w to the clip, which must keep one size. */
static wm_status append_slot(clip_reader *r, int h, int w, float **slot, wm_error *err)
{
    if (r->n && (h != r->h || w != r->w))
        return wm_error_set(err, WM_E_INPUT, "clip %s: the latent grid changes size (%dx%d, then %dx%d)", r->id, r->w,
                            r->h, w, h);
    r->h = h;
    r->w = w;
    size_t per = (size_t)h * w * r->cs->C;
    wm_status st = grow_floats(&r->lat, &r->lat_cap, (size_t)(r->n + 1) * per, err);
    if (st) return st;
    *slot = r->lat + (size_t)r->n++ * per;
    return WM_OK;
}

static wm_status encode_pending(clip_reader *r, wm_error *err)
{
    if (!r->pending) return WM_OK;
    const int P = WM_TOKENIZER_PATCH, h = r->fh / P, w = r->fw / P;
    wm_status st = WM_OK;
    for (int i = 0; st == WM_OK && i < r->pending; i++) {
        float *slot = NULL;
        st = append_slot(r, h, w, &slot, err);
    }
    if (st == WM_OK) {   /* the slots may have moved while growing: encode into their final place */
        float *first = r->lat + (size_t)(r->n - r->pending) * h * w * r->cs->C;
        st = wm_tokenizer_encode(r->tk, first, r->frames, r->pending, r->fh, r->fw, err);
    }
    r->pending = 0;
    return st;
}

static wm_status finish_clip(clip_reader *r, wm_error *err)
{
    wm_status st = encode_pending(r, err);
    if (st == WM_OK && r->open && r->n >= 2) {
        st = wm_clipset_add(r->cs, r->source, r->lat, r->has_obj && r->nobj == r->n ? r->obj : NULL, r->n, r->h,
                            r->w, err);
        r->added++;
    }
    r->open = 0;
    r->n = 0;
    r->nobj = r->has_obj = 0;
    return st;
}

static void start_clip(clip_reader *r, const char *id, size_t len)
{
    snprintf(r->id, sizeof r->id, "%.*s", (int)(len < 200 ? len : 200), id);
    r->open = 1;
    r->n = 0;
    r->pending = 0;
    r->nobj = r->has_obj = 0;
}

/* The labels of the next latent of the clip, an h x w grid, from the
 * message's "objects" labels (all zero without them): the object maps and
 * the detector's centres (wm_clipset_add).  Entries without a finite x, y
 * and positive r are skipped: labels help training, they do not stop it. */
static wm_status add_objects(clip_reader *r, const msgpack_object *root, int h, int w, wm_error *err)
{
    const size_t per = (size_t)h * w * K_LAB;
    wm_status st = grow_floats(&r->obj, &r->obj_cap, (size_t)(r->nobj + 1) * per, err);
    if (st) return st;
    float *map = r->obj + (size_t)r->nobj++ * per;
    memset(map, 0, per * sizeof(float));
    const msgpack_object *list = wm_obj_get(root, "objects");
    if (!list || list->type != MSGPACK_OBJECT_ARRAY) return WM_OK;
    r->has_obj = 1;
    const double P = WM_TOKENIZER_PATCH;
    for (uint32_t k = 0; k < list->via.array.size; k++) {
        const msgpack_object *o = &list->via.array.ptr[k];
        double x, y, rad;
        if (o->type != MSGPACK_OBJECT_MAP || wm_obj_f64(o, "x", &x) || wm_obj_f64(o, "y", &y) ||
            wm_obj_f64(o, "r", &rad) || !isfinite(x) || !isfinite(y) || !(rad > 0) || rad > 1e6)
            continue;
        const msgpack_object *vis = wm_obj_get(o, "visible");
        const int hidden = vis && vis->type == MSGPACK_OBJECT_BOOLEAN && !vis->via.boolean;
        if (!hidden) wm_detector_label(map + (size_t)h * w * K_OBJ, h, w, WM_TOKENIZER_PATCH, x, y, rad);
        /* the cells the disc meets: the nearest point of each cell's square within r */
        int i0 = (int)floor((y - rad) / P), i1 = (int)floor((y + rad) / P);
        int j0 = (int)floor((x - rad) / P), j1 = (int)floor((x + rad) / P);
        if (i0 < 0) i0 = 0;
        if (j0 < 0) j0 = 0;
        if (i1 > h - 1) i1 = h - 1;
        if (j1 > w - 1) j1 = w - 1;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++) {
                double dx = fabs(x - (j + 0.5) * P) - P / 2, dy = fabs(y - (i + 0.5) * P) - P / 2;
                dx = dx > 0 ? dx : 0;
                dy = dy > 0 ? dy : 0;
                if (dx * dx + dy * dy >= rad * rad) continue;
                float *cell = map + ((size_t)i * w + j) * K_OBJ;   /* the maps come first */
                cell[0] = 1.0f;
                if (hidden) cell[1] = 1.0f;
            }
    }
    return WM_OK;
}

/* A latent or frame of clip `id`: a clip that was never announced by a
 * `clip` message starts here. */
static wm_status ensure_clip(clip_reader *r, const char *id, size_t len, wm_error *err)
{
    if (r->open && strlen(r->id) == (len < 200 ? len : 200) && memcmp(r->id, id, strlen(r->id)) == 0) return WM_OK;
    wm_status st = finish_clip(r, err);
    if (!st) start_clip(r, id, len);
    return st;
}

static wm_status on_latent(clip_reader *r, const wm_msg *m, wm_error *err)
{
    wm_latent_view v;
    wm_status st = wm_latent_get(m, r->cs->C, &v, err);
    if (st || v.imagined) return st;   /* a rollout's dreams are not data */
    if ((st = ensure_clip(r, v.clip, v.clip_len, err)) || (st = encode_pending(r, err))) return st;
    float *slot = NULL;
    if ((st = append_slot(r, v.h, v.w, &slot, err)) || (st = add_objects(r, &m->root, v.h, v.w, err))) return st;
    if (wm_latent_to_f32(&v, slot))
        return wm_error_set(err, WM_E_INPUT, "clip %s latent %lld has NaN or Inf values", r->id, (long long)v.index);
    return WM_OK;
}

static wm_status on_frame(clip_reader *r, const wm_msg *m, wm_error *err)
{
    wm_frame_view v;
    wm_status st = wm_proto_frame_get(m, &v, err);
    if (st) return st;
    const int P = WM_TOKENIZER_PATCH;
    if (!r->tk) return wm_error_set(err, WM_E_USAGE, "frames need a tokenizer to encode them");
    if (v.width % P || v.height % P)
        return wm_error_set(err, WM_E_INPUT,
                            "clip %.*s frame %lld is %dx%d: the tokenizer needs sides that are multiples of %d",
                            (int)v.clip_len, v.clip, (long long)v.index, v.width, v.height, P);
    if ((st = ensure_clip(r, v.clip, v.clip_len, err))) return st;
    if (r->pending && (v.width != r->fw || v.height != r->fh) && (st = encode_pending(r, err))) return st;
    r->fw = v.width;
    r->fh = v.height;
    size_t per = (size_t)v.width * v.height * 3;
    if ((st = grow_floats(&r->frames, &r->frames_cap, (size_t)(r->pending + 1) * per, err))) return st;
    wm_tokenizer_pixels_to_input(r->frames + (size_t)r->pending * per, v.data, (size_t)v.width * v.height,
                                 wm_pixfmt_channels(v.format));
    if ((st = add_objects(r, &m->root, v.height / P, v.width / P, err))) return st;
    if (++r->pending >= ENCODE_BATCH) st = encode_pending(r, err);
    return st;
}

wm_status wm_clipset_read(wm_clipset *cs, const char *spec, int source, size_t max_message, wm_tokenizer *tk,
                          wm_error *err)
{
    wm_reader *rd = wm_reader_open(spec, max_message, err);
    if (!rd) return err->code;
    clip_reader r = { 0 };
    r.cs = cs;
    r.tk = tk;
    r.source = source;
    wm_status st;
    wm_msg m;
    while ((st = wm_reader_next(rd, &m, err)) == WM_OK) {
        if (wm_signal_pending()) { st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted"); break; }
        if (wm_msg_is(&m, "latent")) st = on_latent(&r, &m, err);
        else if (wm_msg_is(&m, "frame")) st = on_frame(&r, &m, err);
        else if (wm_msg_is(&m, "clip")) {
            const char *id;
            size_t n;
            wm_msg_str(&m, "id", &id, &n);
            if (!(st = finish_clip(&r, err))) start_clip(&r, id, n);
        } else if (wm_msg_is(&m, "end")) st = finish_clip(&r, err);
        if (st) break;
    }
    if (st == WM_EOF) st = finish_clip(&r, err);
    if (st == WM_OK && r.added == 0)
        st = wm_error_set(err, WM_E_INPUT, "%s: no clip with two or more latents or frames", wm_reader_name(rd));
    if (st != WM_OK && st != WM_E_INTERRUPTED && strncmp(err->msg, wm_reader_name(rd), strlen(wm_reader_name(rd))) != 0)
        wm_error_prefix(err, "%s", wm_reader_name(rd));
    free(r.lat);
    free(r.frames);
    free(r.obj);
    wm_reader_free(&rd);
    return st;
}

/* ---- minibatches ---- */

static uint64_t batch_seed(uint64_t seed, long batch)
{
    uint64_t z = (seed + 0x632be59bd9b4e019ULL) * 0xbf58476d1ce4e5b9ULL ^ (uint64_t)batch * 0x94d049bb133111ebULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A source's sampling weight: 0 without a usable clip. */
static double source_weight(const wm_clipset *cs, const wm_dynamics_train_options *o, int s)
{
    double w = o->weights ? o->weights[s] : 1.0;
    if (w <= 0) return 0;
    for (size_t i = 0; i < wm_reservoir_size(cs->res, s); i++)
        if (clip_usable(clip_at(cs, s, i), o->seq + 1, o->crop_h, o->crop_w)) return w;
    return 0;
}

/* Copies window b of a minibatch, dst[L, B, ch, cw, K], from a clip's
 * values src (src_frame floats per latent, each starting with an [h, w, K]
 * grid) at (t0, y0, x0); src NULL: zeros. */
static void copy_window(float *dst, const float *src, size_t src_frame, const cs_clip *c, int t0, int y0, int x0,
                        int L, int B, int b, int ch, int cw, int K)
{
    for (int t = 0; t < L; t++)
        for (int y = 0; y < ch; y++) {
            float *to = dst + ((((size_t)t * B + b) * ch + y) * cw) * K;
            if (src)
                memcpy(to, src + (size_t)(t0 + t) * src_frame + (((size_t)(y0 + y) * c->w) + x0) * K,
                       (size_t)cw * K * sizeof(float));
            else
                memset(to, 0, (size_t)cw * K * sizeof(float));
        }
}

/* Fills seq[L, B, ch, cw, C] (time-major) with B random windows of L
 * latents: a source by weight, a usable clip of it, an offset, a crop;
 * with obj, the same windows of the object maps [L, B, ch, cw, K_OBJ] and
 * lanes[b] = whether window b has them. */
static void sample_batch(const wm_clipset *cs, const wm_dynamics_train_options *o, long batch, float *seq, float *obj,
                         unsigned char *lanes)
{
    const int B = o->batch, L = o->seq + 1, ch = o->crop_h, cw = o->crop_w, C = cs->C;
    wm_rng rng;
    wm_rng_seed(&rng, batch_seed(o->seed, batch));
    /* sources with a usable clip, by weight (the caller checked there is one) */
    double total = 0;
    const int n_src = wm_reservoir_sources(cs->res);
    for (int s = 0; s < n_src; s++) total += source_weight(cs, o, s);
    for (int b = 0; b < B; b++) {
        double u = wm_rng_uniform(&rng) * total;
        int s = 0, last = 0;
        for (; s < n_src; s++) {
            double w = source_weight(cs, o, s);
            if (w <= 0) continue;
            last = s;
            if (u < w) break;
            u -= w;
        }
        const int src = s < n_src ? s : last;
        const cs_clip *c;
        do   /* unusable clips (too short, too small) are drawn again */
            c = clip_at(cs, src, wm_rng_below(&rng, wm_reservoir_size(cs->res, src)));
        while (!clip_usable(c, L, ch, cw));
        int t0 = (int)wm_rng_below(&rng, (uint64_t)c->n - (uint64_t)L + 1);
        int y0 = (int)wm_rng_below(&rng, (uint64_t)c->h - (uint64_t)ch + 1);
        int x0 = (int)wm_rng_below(&rng, (uint64_t)c->w - (uint64_t)cw + 1);
        copy_window(seq, c->lat, (size_t)c->h * c->w * C, c, t0, y0, x0, L, B, b, ch, cw, C);
        if (!obj) continue;
        lanes[b] = c->obj != NULL;
        copy_window(obj, c->obj, (size_t)c->h * c->w * K_LAB, c, t0, y0, x0, L, B, b, ch, cw, K_OBJ);
    }
}

/* ---- checkpoints ---- */

#define ADAM_M_PREFIX "train.adam_m." WM_DYNAMICS_PREFIX
#define ADAM_V_PREFIX "train.adam_v." WM_DYNAMICS_PREFIX
#define STATE_NAME "train.state"

static void run_signature(char *out, size_t cap, const wm_dynamics *d, const wm_dynamics_train_options *o,
                          const wm_clipset *cs, uint64_t hash)
{
    const wm_dynamics_config *c = wm_dynamics_get_config(d);
    int n = snprintf(out, cap,
                     "steps=%ld;batch=%d;seq=%d;tbptt=%d;crop=%dx%d;lr=%.9g;warmup=%ld;floor=%.9g;clip=%.9g;"
                     "beta=%.9g;rollout=%.9g;seed=%" PRIu64 ";hidden=%d;dilation=%d;data=%016" PRIx64 ";weights=",
                     o->steps, o->batch, o->seq, o->tbptt, o->crop_w, o->crop_h, (double)o->lr, o->warmup,
                     (double)o->lr_floor, (double)o->clip, (double)o->beta, (double)o->rollout_p, o->seed, c->hidden,
                     c->dilation, hash);
    for (int s = 0; s < wm_clipset_sources(cs) && n > 0 && (size_t)n < cap; s++)
        n += snprintf(out + n, cap - (size_t)n, "%s%.6g", s ? "," : "", o->weights ? o->weights[s] : 1.0);
    if (o->change_weight > 0 && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, ";change_weight=%.9g", (double)o->change_weight);
    if (o->objects > 0 && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ";objects=%.9g", (double)o->objects);
}

static wm_status save_checkpoint(wm_dynamics *d, const wm_adam *adam, long step, const float *state, size_t n_state,
                                 const char *sig, const char *path, wm_error *err)
{
    wm_safetensors_builder *b = wm_safetensors_builder_new(err);
    if (!b) return err->code;
    wm_params *p = wm_dynamics_params(d);
    char num[32];
    snprintf(num, sizeof num, "%ld", step);
    uint64_t shape[1] = { (uint64_t)n_state };
    wm_status st = wm_dynamics_add_to(d, NULL, NULL, b, err);
    if (!st) st = wm_params_add_to(p, adam->m, ADAM_M_PREFIX, b, err);
    if (!st) st = wm_params_add_to(p, adam->v, ADAM_V_PREFIX, b, err);
    if (!st) st = wm_safetensors_builder_add(b, NULL, STATE_NAME, WM_ST_F32, 1, shape, state, err);
    if (!st) st = wm_safetensors_builder_meta(b, "train.step", num, err);
    if (!st) st = wm_safetensors_builder_meta(b, "train.run", sig, err);
    if (!st) st = wm_safetensors_builder_write(b, path, err);
    wm_safetensors_builder_free(&b);
    return st;
}

static wm_status load_checkpoint(wm_dynamics *d, wm_adam *adam, long *step, float *state, size_t n_state,
                                 const char *sig, const char *path, wm_error *err)
{
    if (access(path, F_OK) != 0)
        return wm_error_set(err, WM_E_USAGE, "--resume: no checkpoint %s (nothing to resume)", path);
    wm_safetensors *st = wm_safetensors_open(path, err);
    if (!st) return wm_error_prefix(err, "--resume");
    wm_status s = WM_OK;
    const char *run = wm_safetensors_meta(st, "train.run"), *step_text = wm_safetensors_meta(st, "train.step");
    const wm_safetensors_tensor *t = wm_safetensors_find(st, STATE_NAME);
    wm_dynamics *saved = NULL;
    if (!run || !step_text || !t) {
        s = wm_error_set(err, WM_E_USAGE, "--resume: %s is not a dynamics training checkpoint", path);
    } else if (strcmp(run, sig) != 0) {
        const char *a = run, *b = sig;   /* name the first setting that differs */
        while (*a && *a == *b) a++, b++;
        while (a > run && a[-1] != ';') a--, b--;
        s = wm_error_set(err, WM_E_USAGE, "--resume: %s comes from another run (it has %.*s; now %.*s)", path,
                         (int)strcspn(a, ";"), a, (int)strcspn(b, ";"), b);
    } else if (!(saved = wm_dynamics_from_file(st, path, err))) {
        s = err->code;
    } else if (memcmp(wm_dynamics_get_config(saved), wm_dynamics_get_config(d), sizeof(wm_dynamics_config)) != 0) {
        s = wm_error_set(err, WM_E_USAGE, "--resume: %s holds a dynamics model of another architecture", path);
    } else {
        wm_params *p = wm_dynamics_params(d);
        const float *m, *sd;
        wm_dynamics_get_norm(saved, &m, &sd);
        wm_dynamics_set_norm(d, m, sd);
        s = wm_params_load(p, st, path, WM_DYNAMICS_PREFIX, err);
        if (!s) s = wm_params_load_into(p, adam->m, st, path, ADAM_M_PREFIX, err);
        if (!s) s = wm_params_load_into(p, adam->v, st, path, ADAM_V_PREFIX, err);
        if (!s) s = wm_safetensors_read_f32(t, state, n_state, err);
        *step = strtol(step_text, NULL, 10);
        adam->step = *step;
    }
    wm_dynamics_free(&saved);
    wm_safetensors_close(&st);
    return s;
}

/* ---- training on the model's own predictions ----
 * Scheduled sampling (Bengio et al. 2015), the predictions held constant:
 * in a chunk, each lane with probability p (ramped up from 0 over the
 * first 30% of the steps) is fed its own mean prediction from a random
 * step k on, as in a rollout, instead of the clip's latents; the targets
 * stay the clip's.  Without it, rollouts drift: the model never saw its
 * own errors as input.  The fed inputs come from the inference path
 * (wm_dynamics_step) from the same carried state. */

static const float *rollout_inputs(wm_dynamics *d, const wm_dynamics_train_options *o, wm_dynamics_state *roll,
                                   long step, const float *window, const float *prev, const float *hidden, int T, int B,
                                   size_t frame, int *from, float *fed)
{
    if (!roll || T < 2) return NULL;
    const double ramp = o->steps > 0 ? (double)step / (0.3 * (double)o->steps) : 1.0;
    const double p = o->rollout_p * (ramp < 1.0 ? ramp : 1.0);
    wm_rng rng;
    wm_rng_seed(&rng, batch_seed(o->seed ^ 0x5ca1ab1eULL, step));
    int any = 0;
    for (int b = 0; b < B; b++) {
        from[b] = T;
        if (wm_rng_uniform(&rng) < p) from[b] = 1 + (int)wm_rng_below(&rng, (uint64_t)(T - 1));
        any |= from[b] < T;
    }
    if (!any) return NULL;
    const size_t lane = frame / (size_t)B;
    float *mean = fed + (size_t)T * frame;
    wm_dynamics_state_load(roll, hidden, prev);
    for (int t = 0; t < T; t++) {
        float *in = fed + (size_t)t * frame;
        for (int b = 0; b < B; b++)
            memcpy(in + b * lane, t < from[b] ? window + (size_t)t * frame + b * lane : mean + b * lane,
                   lane * sizeof(float));
        if (t + 1 < T) wm_dynamics_step(d, roll, B, in, mean, NULL);
    }
    return fed;
}

/* ---- the loop ---- */

wm_status wm_dynamics_train(wm_dynamics *d, const wm_clipset *cs, const wm_dynamics_train_options *o, int resume,
                            wm_dynamics_report_fn report, wm_train_stop_fn stop, void *ctx, wm_error *err)
{
    const int B = o->batch, S = o->seq, L = o->tbptt, ch = o->crop_h, cw = o->crop_w;
    const wm_dynamics_config *cfg = wm_dynamics_get_config(d);
    if (B < 1 || S < 1 || L < 1 || L > S || ch < 1 || cw < 1 || o->steps < 0)
        return wm_error_set(err, WM_E_USAGE, "bad training options (batch %d, seq %d, tbptt %d, crop %dx%d)", B, S, L,
                            cw, ch);
    if (cfg->latent_channels != cs->C)
        return wm_error_set(err, WM_E_USAGE, "the model has %d latent channels, the clips %d", cfg->latent_channels,
                            cs->C);
    if (wm_clipset_usable(cs, S + 1, ch, cw) == 0)
        return wm_error_set(err, WM_E_INPUT,
                            "no clip has %d latents of at least %dx%d cells (of %zu clips; lower --seq or --crop)",
                            S + 1, cw, ch, wm_clipset_count(cs));
    if (resume && !o->checkpoint) return wm_error_set(err, WM_E_USAGE, "--resume needs a checkpoint path");
    if (o->objects > 0 && !cfg->objects)
        return wm_error_set(err, WM_E_USAGE, "the objects loss needs a model with an objects head");
    wm_dynamics_set_change_weight(d, o->change_weight);
    wm_params *p = wm_dynamics_params(d);
    wm_adam adam;
    wm_status st = wm_adam_init(&adam, p->total, err);
    if (st) return st;
    const int chunks = (S + L - 1) / L;
    const size_t frame = (size_t)B * ch * cw * cs->C;
    const size_t n_hidden = (size_t)WM_DYNAMICS_LAYERS * B * ch * cw * cfg->hidden;
    /* carried from chunk to chunk: the hidden state and the input fed last */
    const size_t n_state = n_hidden + frame;
    float *seq = malloc((size_t)(S + 1) * frame * sizeof(float)), *state = calloc(n_state, sizeof(float));
    float *fed = malloc(((size_t)L + 1) * frame * sizeof(float));   /* inputs fed in a chunk, + one mean */
    int *from = malloc((size_t)B * sizeof(int));
    wm_dynamics_state *roll = o->rollout_p > 0 ? wm_dynamics_state_new(d, B, ch, cw, err) : NULL;
    const size_t frame_o = (size_t)B * ch * cw * K_OBJ;
    float *obj = o->objects > 0 ? malloc((size_t)(S + 1) * frame_o * sizeof(float)) : NULL;
    unsigned char *lanes = o->objects > 0 ? malloc((size_t)B) : NULL;
    if (!seq || !state || !fed || !from || (o->rollout_p > 0 && !roll) || (o->objects > 0 && (!obj || !lanes))) {
        free(obj);
        free(lanes);
        free(seq);
        free(state);
        free(fed);
        free(from);
        wm_dynamics_state_free(&roll);
        wm_adam_free(&adam);
        return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    }
    float *fed_prev = state + n_hidden;
    if (!o->keep_norm) {
        float *mean = malloc((size_t)cs->C * 2 * sizeof(float));
        if (mean) {
            wm_clipset_stats(cs, mean, mean + cs->C);
            wm_dynamics_set_norm(d, mean, mean + cs->C);
            free(mean);
        }
    }
    char sig[1024];
    run_signature(sig, sizeof sig, d, o, cs, wm_clipset_hash(cs));
    long step = 0;
    if (resume) st = load_checkpoint(d, &adam, &step, state, n_state, sig, o->checkpoint, err);
    const long first = step;
    long loaded_batch = -1;
    double t0 = wm_now(), last_log = t0, last_ckpt = t0, acc_nll = 0, acc_mse = 0, acc_copy = 0, max_norm = 0;
    double acc_obj = 0;
    long acc_n = 0;
    for (; st == WM_OK && step < o->steps; step++) {
        if (stop && stop(ctx)) {
            if (o->checkpoint) st = save_checkpoint(d, &adam, step, state, n_state, sig, o->checkpoint, err);
            if (!st) st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted at step %ld%s%s", step,
                                       o->checkpoint ? "; checkpoint written to " : "", o->checkpoint ? o->checkpoint : "");
            break;
        }
        const long batch = step / chunks;
        const int chunk = (int)(step % chunks);
        if (batch != loaded_batch) {
            sample_batch(cs, o, batch, seq, obj, lanes);
            loaded_batch = batch;
        }
        if (chunk == 0) memset(state, 0, n_state * sizeof(float));
        const int T = chunk * L + L <= S ? L : S - chunk * L;
        const float *window = seq + (size_t)chunk * L * frame;
        const float *inputs = rollout_inputs(d, o, roll, step, window, chunk ? fed_prev : NULL, state, T, B, frame,
                                             from, fed);
        wm_dynamics_set_objects(d, obj ? obj + (size_t)chunk * L * frame_o : NULL, lanes, o->objects);
        wm_dynamics_loss loss;
        st = wm_dynamics_train_pass(d, window, inputs, inputs ? from : NULL, chunk ? fed_prev : NULL, T, B, ch, cw,
                                    state, o->beta, &loss, err);
        if (st) break;
        memcpy(fed_prev, inputs ? inputs + (size_t)(T - 1) * frame : window + (size_t)(T - 1) * frame,
               frame * sizeof(float));
        if (!isfinite(loss.nll)) {
            st = wm_error_set(err, WM_E_INPUT, "training diverged at step %ld (nll %g); try a lower --lr", step,
                              loss.nll);
            break;
        }
        double norm = wm_clip_grad_norm(p->grad, p->total, o->clip);
        if (norm > max_norm) max_norm = norm;
        float lr = wm_lr_schedule(step, o->steps, o->warmup, o->lr, o->lr_floor);
        wm_adam_update(&adam, p->data, p->grad, lr);
        p = wm_dynamics_params(d);   /* the values changed: the rollouts' Winograd filters are stale */
        acc_nll += loss.nll * T;
        acc_mse += loss.mse * T;
        acc_copy += loss.mse_copy * T;
        acc_obj += loss.objects * T;
        acc_n += T;
        double now = wm_now();
        const char *ckpt = NULL;
        if (o->checkpoint && o->checkpoint_every > 0 && now - last_ckpt >= o->checkpoint_every &&
            step + 1 < o->steps) {
            if ((st = save_checkpoint(d, &adam, step + 1, state, n_state, sig, o->checkpoint, err))) break;
            ckpt = o->checkpoint;
            last_ckpt = now;
        }
        if (report && (now - last_log >= o->log_every || step + 1 == o->steps || ckpt)) {
            wm_dynamics_progress pr = { 0 };
            double done = (double)(step + 1 - first), el = now - t0;
            pr.step = step + 1;
            pr.steps = o->steps;
            pr.nll = acc_nll / (double)acc_n;
            pr.mse_ratio = acc_copy > 0 ? acc_mse / acc_copy : 0;
            pr.objects = acc_obj / (double)acc_n;
            pr.latents_per_s = (double)acc_n * B / (now - last_log > 0 ? now - last_log : 1e-9);
            pr.elapsed = el;
            pr.eta = el / done * (double)(o->steps - step - 1);
            pr.lr = lr;
            pr.grad_norm = max_norm;
            pr.final = step + 1 == o->steps;
            pr.checkpointed = ckpt;
            report(ctx, &pr);
            last_log = now;
            acc_nll = acc_mse = acc_copy = acc_obj = max_norm = 0;
            acc_n = 0;
        }
    }
    wm_dynamics_set_objects(d, NULL, NULL, 0);   /* the maps are about to go */
    free(obj);
    free(lanes);
    free(seq);
    free(state);
    free(fed);
    free(from);
    wm_dynamics_state_free(&roll);
    wm_adam_free(&adam);
    return st;
}
