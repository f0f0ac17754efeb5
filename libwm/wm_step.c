#include "wm_step.h"

#include <stdlib.h>
#include <string.h>

#include "wm_cli.h"
#include "wm_latent.h"
#include "wm_prior.h"

/* ---- the CPU backend ---- */

typedef struct cpu_backend {
    wm_dynamics *d;
    wm_dynamics_state *s;
    int cap, lanes, h, w;      /* lanes allocated, lanes in use */
} cpu_backend;

static wm_status cpu_reset(void *ctx, int lanes, int h, int w, wm_error *err)
{
    cpu_backend *c = ctx;
    c->lanes = lanes;
    if (c->s && lanes <= c->cap && h == c->h && w == c->w) {
        wm_dynamics_state_reset(c->s);
        return WM_OK;
    }
    wm_dynamics_state_free(&c->s);
    c->s = wm_dynamics_state_new(c->d, lanes, h, w, err);
    if (!c->s) return err->code;
    c->cap = lanes;
    c->h = h;
    c->w = w;
    return WM_OK;
}

static wm_status cpu_run(void *ctx, int T, const int *active, const float *x, int feed_from, float *mean, float *var,
                         wm_error *err)
{
    cpu_backend *c = ctx;
    if (!c->s) return wm_error_set(err, WM_E_SYSTEM, "wm-step backend used before reset");
    wm_dynamics_run(c->d, c->s, T, active, c->lanes, x, feed_from, mean, var);
    return WM_OK;
}

static void cpu_destroy(void *ctx)
{
    cpu_backend *c = ctx;
    wm_dynamics_state_free(&c->s);
    free(c);
}

wm_status wm_step_backend_cpu(wm_dynamics *d, wm_step_backend *out, wm_error *err)
{
    cpu_backend *c = calloc(1, sizeof *c);
    if (!c) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    c->d = d;
    out->ctx = c;
    out->name = "cpu";
    out->C = wm_dynamics_get_config(d)->latent_channels;
    out->reset = cpu_reset;
    out->run = cpu_run;
    out->destroy = cpu_destroy;
    return WM_OK;
}

/* ---- clips ---- */

typedef struct step_clip {
    char *id;
    size_t id_len;
    int h, w;                  /* grid, 0 before the first latent */
    int n;                     /* real latents taken as inputs */
    int64_t last_index;        /* index of the last of them */
    double last_pts, prev_pts; /* their pts (-1: none) */
    int fps_num, fps_den;      /* from the clip message (0: unknown) */
    char error[200];           /* the clip is an error when set */
    int imagined;              /* the rollout was emitted */
    float *lat;                /* batch mode: inputs [n][cells*C] */
    size_t lat_cap;            /* bytes; kept from clip to clip */
    size_t res, res_stride;    /* batch mode: step t's mean and var at s->mean/var + res + t * res_stride */
} step_clip;

/* A queued message (batch mode) and what it is for the stage. */
enum { Q_OTHER, Q_LATENT, Q_END };

typedef struct queued {
    size_t off, len;
    int tag, slot;
    int pos;                   /* Q_LATENT: input position in its clip, -1: not an input */
    int after_context;         /* Q_LATENT: a real latent after the rollout's context */
    int64_t index;
} queued;

struct wm_step_stage {
    wm_step_backend be;
    wm_step_options o;
    int C;
    /* streaming: the current clip; batch: the open slot is slots[n_slots-1] when open */
    step_clip *slots;
    int n_slots, open, closed;
    queued *q;
    size_t nq, q_cap;
    uint8_t *raw;
    size_t raw_len, raw_cap;
    /* work buffers */
    float *x, *mean, *var, *latent;
    size_t x_cap, mean_cap, var_cap, latent_cap;
    int *active, *order;
    size_t active_cap, order_cap;
    /* the object prior (o.prior set): lanes of a grid, and its output laid out as mean */
    wm_prior *prior;
    int prior_lanes, prior_h, prior_w;
    float *pr;
    size_t pr_cap;
    wm_msgbuf mb;
    wm_step_stats stats;
};

static wm_status reserve(void **p, size_t *cap, size_t need, wm_error *err)
{
    if (need <= *cap) return WM_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = realloc(*p, c);
    if (!q) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    *p = q;
    *cap = c;
    return WM_OK;
}

/* Empties a slot for the next clip, keeping its buffers. */
static void clip_clear(step_clip *c)
{
    step_clip keep = { 0 };
    free(c->id);
    keep.lat = c->lat, keep.lat_cap = c->lat_cap;
    *c = keep;
}

static void clip_free(step_clip *c)
{
    clip_clear(c);
    free(c->lat);
    memset(c, 0, sizeof *c);
}

wm_step_stage *wm_step_stage_new(const wm_step_backend *backend, const wm_step_options *o, wm_error *err)
{
    wm_step_stage *s = calloc(1, sizeof *s);
    int B = o->batch < 1 ? 1 : o->batch;
    if (s) s->slots = calloc((size_t)B, sizeof *s->slots);
    if (!s || !s->slots) {
        free(s);
        if (backend->destroy) backend->destroy(backend->ctx);
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    s->be = *backend;
    s->o = *o;
    s->o.batch = B;
    if (s->o.rollout > 0 && s->o.context < 1) s->o.context = 1;
    if (!s->o.prior) s->o.imagine_prior = 0;
    s->C = backend->C;
    wm_msgbuf_init(&s->mb);
    return s;
}

void wm_step_stage_free(wm_step_stage **sp)
{
    wm_step_stage *s = *sp;
    if (!s) return;
    for (int i = 0; i < s->o.batch; i++) clip_free(&s->slots[i]);
    free(s->slots);
    free(s->q);
    free(s->raw);
    free(s->x);
    free(s->mean);
    free(s->var);
    free(s->latent);
    free(s->active);
    free(s->order);
    wm_prior_free(&s->prior);
    free(s->pr);
    wm_msgbuf_destroy(&s->mb);
    if (s->be.destroy) s->be.destroy(s->be.ctx);
    free(s);
    *sp = NULL;
}

void wm_step_stage_stats(const wm_step_stage *s, wm_step_stats *out) { *out = s->stats; }

static size_t cell_floats(const wm_step_stage *s, const step_clip *c) { return (size_t)c->h * c->w * s->C; }

static wm_status clip_open(wm_step_stage *s, step_clip *c, const char *id, size_t len, const wm_msg *clip_msg,
                           wm_error *err)
{
    clip_clear(c);
    c->id = malloc(len + 1);
    if (!c->id) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    memcpy(c->id, id, len);
    c->id[len] = '\0';
    c->id_len = len;
    c->last_pts = c->prev_pts = -1;
    const msgpack_object *fps = clip_msg ? wm_msg_get(clip_msg, "fps") : NULL;
    if (fps && fps->type == MSGPACK_OBJECT_ARRAY && fps->via.array.size == 2 &&
        fps->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        fps->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && fps->via.array.ptr[0].via.u64 < 1000000 &&
        fps->via.array.ptr[1].via.u64 < 1000000) {
        c->fps_num = (int)fps->via.array.ptr[0].via.u64;
        c->fps_den = (int)fps->via.array.ptr[1].via.u64;
    }
    (void)s;
    return WM_OK;
}

static int clip_is(const step_clip *c, const char *id, size_t len)
{
    return c->id && c->id_len == len && memcmp(c->id, id, len) == 0;
}

/* pts of imagined latent j (0-based) after the context, -1 when unknown */
static double imagined_pts(const step_clip *c, int j)
{
    if (c->last_pts < 0) return -1;
    double dt = -1;
    if (c->fps_num > 0 && c->fps_den > 0) dt = (double)c->fps_den / c->fps_num;
    else if (c->prev_pts >= 0 && c->last_pts > c->prev_pts) dt = c->last_pts - c->prev_pts;
    return dt > 0 ? c->last_pts + dt * (j + 1) : -1;
}

/* ---- emitting ---- */

static wm_status emit_pred(wm_step_stage *s, const step_clip *c, int64_t index, const float *mean, const float *var,
                           const float *prior, wm_writer *out, wm_error *err)
{
    wm_msgbuf_reset(&s->mb);
    wm_latent_pack_pred(&s->mb.pk, c->id, c->id_len, index, c->h, c->w, s->C, mean, var, prior,
                        prior ? s->o.prior->var : NULL);
    s->stats.preds++;
    return wm_writer_send_buf(out, &s->mb, err);
}

/* The N imagined latents: means[j] for j < N, rows `stride` floats apart. */
static wm_status emit_imagined(wm_step_stage *s, step_clip *c, const float *means, size_t stride, wm_writer *out,
                               wm_error *err)
{
    wm_status st = WM_OK;
    for (int j = 0; st == WM_OK && j < s->o.rollout; j++) {
        wm_msgbuf_reset(&s->mb);
        wm_latent_pack_imagined(&s->mb.pk, c->id, c->id_len, c->last_index + 1 + j, imagined_pts(c, j), c->h, c->w,
                                s->C, means + (size_t)j * stride);
        s->stats.imagined++;
        st = wm_writer_send_buf(out, &s->mb, err);
    }
    c->imagined = 1;
    return st;
}

/* The clip's end, with "error" added when the clip failed. */
static wm_status emit_end(wm_step_stage *s, step_clip *c, const wm_msg *m, wm_writer *out, wm_error *err)
{
    if (!c || !c->error[0] || wm_msg_get(m, "error")) return wm_writer_forward(out, m, err);
    const msgpack_object *root = &m->root;
    wm_msgbuf_reset(&s->mb);
    msgpack_pack_map(&s->mb.pk, root->via.map.size + 1);
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        wm_pack_obj(&s->mb.pk, &root->via.map.ptr[i].key);
        wm_pack_obj(&s->mb.pk, &root->via.map.ptr[i].val);
    }
    wm_pack_kv_str(&s->mb.pk, "error", c->error);
    s->stats.clip_errors++;
    return wm_writer_send_buf(out, &s->mb, err);
}

/* ---- reading a latent for a clip ---- */

/* Checks v against c and converts it into s->latent; sets c->error (and
 * returns 0) when the clip cannot go on. */
static int take_latent(wm_step_stage *s, step_clip *c, const wm_latent_view *v, wm_error *err, wm_status *st)
{
    *st = WM_OK;
    if (c->n && (v->h != c->h || v->w != c->w)) {
        snprintf(c->error, sizeof c->error, "wm-step: latent %lld is %dx%d, the clip's grid is %dx%d",
                 (long long)v->index, v->w, v->h, c->w, c->h);
        return 0;
    }
    c->h = v->h;
    c->w = v->w;
    if ((*st = reserve((void **)&s->latent, &s->latent_cap, cell_floats(s, c) * sizeof(float), err))) return 0;
    if (wm_latent_to_f32(v, s->latent)) {
        snprintf(c->error, sizeof c->error, "wm-step: latent %lld has NaN or Inf values", (long long)v->index);
        return 0;
    }
    return 1;
}

static void note_pts(step_clip *c, const wm_msg *m, int64_t index)
{
    double pts;
    c->prev_pts = c->last_pts;
    c->last_pts = wm_msg_f64(m, "pts", &pts) == 0 && pts >= 0 ? pts : -1;
    c->last_index = index;
}

/* ---- the object prior ---- */

#define PRIOR_LANES 16   /* clips whose priors run together: the tokenizer's workspace holds 2x as many frames */

/* Lanes 0..L-1 of the stage's prior start the clips in slots lanes_of[0..L)
 * (grid h x w), the prior made anew when it has too few lanes or another grid. */
static wm_status prior_start(wm_step_stage *s, const int *lanes_of, int L, int h, int w, wm_error *err)
{
    if (!s->prior || L > s->prior_lanes || h != s->prior_h || w != s->prior_w) {
        wm_prior_free(&s->prior);
        s->prior = wm_prior_new(s->o.prior->tk, s->o.prior->det, L, h, w, 0, NULL, err);
        if (!s->prior) return err->code;
        if (s->o.rollout > 0) wm_prior_set_doubt(s->prior, 0);   /* a rollout goes on from the balls it saw */
        s->prior_lanes = L;
        s->prior_h = h;
        s->prior_w = w;
    }
    for (int b = 0; b < L; b++) {
        const step_clip *c = &s->slots[lanes_of[b]];
        wm_prior_reset(s->prior, b, c->fps_num > 0 && c->fps_den > 0 ? (double)c->fps_num / c->fps_den : 25.0);
    }
    return WM_OK;
}

/* The priors of lanes 0..n-1 from their latents z, real or imagined. */
static wm_status prior_step(wm_step_stage *s, int n, const float *z, float *out, int imagined, wm_error *err)
{
    double t0 = wm_now();
    wm_status st = imagined ? wm_prior_imagine(s->prior, n, z, out, err) : wm_prior_step(s->prior, n, z, out, err);
    s->stats.prior_seconds += wm_now() - t0;
    return st;
}

/* ---- streaming (batch 1) ---- */

static wm_status stream_imagine(wm_step_stage *s, step_clip *c, const float *mean, wm_writer *out, wm_error *err)
{
    const size_t n = cell_floats(s, c);
    const int N = s->o.rollout;
    wm_status st = reserve((void **)&s->mean, &s->mean_cap, (size_t)N * n * sizeof(float), err);
    if (!st) st = reserve((void **)&s->active, &s->active_cap, (size_t)N * sizeof(int), err);
    if (st) return st;
    if (s->o.imagine_prior) {   /* the prior of each imagined latent from the one before */
        memcpy(s->mean, s->pr, n * sizeof(float));
        for (int j = 1; st == WM_OK && j < N; j++) st = prior_step(s, 1, s->mean + (j - 1) * n, s->mean + j * n, 1, err);
        if (st) return st;
        return emit_imagined(s, c, s->mean, n, out, err);
    }
    memcpy(s->mean, mean, n * sizeof(float));
    if (N > 1) {
        for (int t = 0; t < N - 1; t++) s->active[t] = 1;
        double t0 = wm_now();
        st = s->be.run(s->be.ctx, N - 1, s->active, s->mean, 1, s->mean + n, NULL, err);
        s->stats.seconds += wm_now() - t0;
        s->stats.steps += (uint64_t)(N - 1);
        if (st) return st;
    }
    return emit_imagined(s, c, s->mean, n, out, err);
}

static wm_status stream_latent(wm_step_stage *s, const wm_msg *m, const wm_latent_view *v, wm_writer *out,
                               wm_error *err)
{
    step_clip *c = &s->slots[0];
    wm_status st;
    if (!s->open || !clip_is(c, v->clip, v->clip_len)) {
        if ((st = clip_open(s, c, v->clip, v->clip_len, NULL, err))) return st;
        s->open = 1;
    }
    const int rolling = s->o.rollout > 0;
    if (c->error[0] || (rolling && c->n >= s->o.context)) {
        if (rolling && s->o.drop_rest && !c->error[0]) return WM_OK;
        return wm_writer_forward(out, m, err);
    }
    int ok = take_latent(s, c, v, err, &st);
    if (st) return st;
    if ((st = wm_writer_forward(out, m, err)) || !ok) return st;
    if (c->n == 0 && (st = s->be.reset(s->be.ctx, 1, c->h, c->w, err))) return st;
    static const int lane0 = 0;
    if (c->n == 0 && s->o.prior && (st = prior_start(s, &lane0, 1, c->h, c->w, err))) return st;
    const size_t n = cell_floats(s, c);
    if ((st = reserve((void **)&s->x, &s->x_cap, 2 * n * sizeof(float), err)) ||
        (st = reserve((void **)&s->var, &s->var_cap, n * sizeof(float), err)) ||
        (s->o.prior && (st = reserve((void **)&s->pr, &s->pr_cap, n * sizeof(float), err))))
        return st;
    static const int one = 1;
    double t0 = wm_now();
    st = s->be.run(s->be.ctx, 1, &one, s->latent, 1, s->x, s->var, err);
    s->stats.seconds += wm_now() - t0;
    s->stats.steps++;
    if (st) return st;
    if (s->o.prior && (st = prior_step(s, 1, s->latent, s->pr, 0, err))) return st;
    c->n++;
    note_pts(c, m, v->index);
    if ((st = emit_pred(s, c, v->index + 1, s->x, s->var, s->o.prior ? s->pr : NULL, out, err))) return st;
    if (rolling && c->n == s->o.context) return stream_imagine(s, c, s->x, out, err);
    return WM_OK;
}

/* A clip that ends (or is left) before its context was complete still dreams. */
static wm_status stream_close(wm_step_stage *s, wm_writer *out, wm_error *err)
{
    step_clip *c = &s->slots[0];
    wm_status st = WM_OK;
    if (s->open && s->o.rollout > 0 && !c->imagined && !c->error[0] && c->n > 0)
        st = stream_imagine(s, c, s->x, out, err);
    s->open = 0;
    return st;
}

static wm_status stream_msg(wm_step_stage *s, const wm_msg *m, wm_writer *out, wm_error *err)
{
    wm_status st;
    if (wm_msg_is(m, "latent")) {
        wm_latent_view v;
        if ((st = wm_latent_get(m, s->C, &v, err))) return st;
        if (v.imagined) return wm_writer_forward(out, m, err);
        return stream_latent(s, m, &v, out, err);
    }
    if (wm_msg_is(m, "clip")) {
        const char *id;
        size_t len;
        wm_msg_str(m, "id", &id, &len);
        if ((st = stream_close(s, out, err)) || (st = clip_open(s, &s->slots[0], id, len, m, err))) return st;
        s->open = 1;
        return wm_writer_forward(out, m, err);
    }
    if (wm_msg_is(m, "end")) {
        const char *id;
        size_t len;
        wm_msg_str(m, "clip", &id, &len);
        step_clip *c = s->open && clip_is(&s->slots[0], id, len) ? &s->slots[0] : NULL;
        if (c && (st = stream_close(s, out, err))) return st;
        return emit_end(s, c, m, out, err);
    }
    return wm_writer_forward(out, m, err);
}

/* ---- batch mode ---- */

static wm_status enqueue(wm_step_stage *s, const wm_msg *m, queued q, wm_error *err)
{
    wm_status st = reserve((void **)&s->q, &s->q_cap, (s->nq + 1) * sizeof *s->q, err);
    if (!st) st = reserve((void **)&s->raw, &s->raw_cap, s->raw_len + m->len, err);
    if (st) return st;
    memcpy(s->raw + s->raw_len, m->raw, m->len);
    q.off = s->raw_len;
    q.len = m->len;
    s->raw_len += m->len;
    s->q[s->nq++] = q;
    return WM_OK;
}

static int steps_of(const wm_step_stage *s, const step_clip *c)
{
    if (c->n == 0) return 0;
    return s->o.rollout > 0 && !c->error[0] ? c->n + s->o.rollout - 1 : c->n;
}

/* Runs the clips of one group (same grid and feed point) in lock-step;
 * the results go to s->mean and s->var from float *at on (advanced past
 * them), where the clips find theirs (res, res_stride). */
static wm_status run_group(wm_step_stage *s, const int *lanes_of, int L, size_t *at, wm_error *err)
{
    const step_clip *c0 = &s->slots[lanes_of[0]];
    const size_t n = cell_floats(s, c0);
    int T = 0;
    for (int b = 0; b < L; b++) {
        int t = steps_of(s, &s->slots[lanes_of[b]]);
        if (t > T) T = t;
    }
    const int feed = s->o.rollout > 0 ? c0->n : T;
    const size_t plane = (size_t)L * n;
    const size_t end = *at + (size_t)T * plane;
    wm_status st = reserve((void **)&s->x, &s->x_cap, (size_t)T * plane * sizeof(float), err);
    if (!st) st = reserve((void **)&s->mean, &s->mean_cap, end * sizeof(float), err);
    if (!st) st = reserve((void **)&s->var, &s->var_cap, end * sizeof(float), err);
    if (!st) st = reserve((void **)&s->active, &s->active_cap, (size_t)T * sizeof(int), err);
    if (!st && s->o.prior) st = reserve((void **)&s->pr, &s->pr_cap, end * sizeof(float), err);
    if (st) return st;
    for (int t = 0; t < T; t++) {
        int a = 0;
        while (a < L && steps_of(s, &s->slots[lanes_of[a]]) > t) a++;
        s->active[t] = a;
        for (int b = 0; b < a && t < feed; b++) {
            const step_clip *c = &s->slots[lanes_of[b]];
            if (t < c->n) memcpy(s->x + t * plane + b * n, c->lat + (size_t)t * n, n * sizeof(float));
        }
    }
    if ((st = s->be.reset(s->be.ctx, L, c0->h, c0->w, err))) return st;
    double t0 = wm_now();
    st = s->be.run(s->be.ctx, T, s->active, s->x, feed, s->mean + *at, s->var + *at, err);
    s->stats.seconds += wm_now() - t0;
    if (st) return st;
    /* the real latents' priors, in the same lock-step (active[t] lanes have
     * latent t), PRIOR_LANES lanes at a time so its frames stay few */
    for (int b0 = 0; s->o.prior && b0 < L; b0 += PRIOR_LANES) {
        const int nb = L - b0 < PRIOR_LANES ? L - b0 : PRIOR_LANES;
        const size_t off = (size_t)b0 * n;
        st = prior_start(s, lanes_of + b0, nb, c0->h, c0->w, err);
        for (int t = 0; st == WM_OK && t < T; t++) {
            const int a = s->active[t] - b0 < 0 ? 0 : s->active[t] - b0 > nb ? nb : s->active[t] - b0;
            if (a == 0) break;
            if (t < feed) st = prior_step(s, a, s->x + t * plane + off, s->pr + *at + t * plane + off, 0, err);
            else if (s->o.imagine_prior)   /* imagining: each step's input is the prior of the step before */
                st = prior_step(s, a, s->pr + *at + (t - 1) * plane + off, s->pr + *at + t * plane + off, 1, err);
        }
        if (st) return st;
    }
    for (int b = 0; b < L; b++) {
        step_clip *c = &s->slots[lanes_of[b]];
        s->stats.steps += (uint64_t)steps_of(s, c);
        c->res = *at + b * n;
        c->res_stride = plane;
    }
    *at = end;
    return WM_OK;
}

static wm_status batch_run(wm_step_stage *s, wm_error *err)
{
    const int S = s->n_slots;
    wm_status st = reserve((void **)&s->order, &s->order_cap, (size_t)2 * S * sizeof(int), err);
    if (st) return st;
    int *done = s->order + S, *lanes = s->order;
    size_t at = 0;
    for (int i = 0; i < S; i++) done[i] = s->slots[i].n == 0;
    for (int i = 0; i < S; i++) {
        if (done[i]) continue;
        const step_clip *a = &s->slots[i];
        int L = 0;
        for (int j = i; j < S; j++) {
            const step_clip *b = &s->slots[j];
            if (done[j] || b->h != a->h || b->w != a->w) continue;
            if (s->o.rollout > 0 && (b->n != a->n || !b->error[0] != !a->error[0])) continue;
            lanes[L++] = j;
            done[j] = 1;
        }
        /* longest first, so the lanes still running are always a prefix */
        for (int x = 1; x < L; x++)
            for (int y = x; y > 0 && steps_of(s, &s->slots[lanes[y]]) > steps_of(s, &s->slots[lanes[y - 1]]); y--) {
                int t = lanes[y];
                lanes[y] = lanes[y - 1];
                lanes[y - 1] = t;
            }
        if ((st = run_group(s, lanes, L, &at, err))) return st;
    }
    return WM_OK;
}

static wm_status batch_flush(wm_step_stage *s, wm_writer *out, wm_error *err)
{
    wm_status st = batch_run(s, err);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    for (size_t i = 0; st == WM_OK && i < s->nq; i++) {
        const queued *q = &s->q[i];
        step_clip *c = q->tag != Q_OTHER ? &s->slots[q->slot] : NULL;
        wm_msg m;
        msgpack_zone_clear(&zone);
        if ((st = wm_msg_parse(&m, s->raw + q->off, q->len, &zone, err))) break;
        if (q->tag == Q_OTHER) {
            st = wm_writer_forward(out, &m, err);
        } else if (q->tag == Q_LATENT) {
            if (q->after_context && s->o.drop_rest) continue;
            if ((st = wm_writer_forward(out, &m, err)) || q->pos < 0) continue;
            const size_t r = c->res + (size_t)q->pos * c->res_stride;
            st = emit_pred(s, c, q->index + 1, s->mean + r, s->var + r, s->o.prior ? s->pr + r : NULL, out, err);
            if (!st && s->o.rollout > 0 && !c->error[0] && q->pos + 1 == s->o.context)
                st = emit_imagined(s, c, (s->o.imagine_prior ? s->pr : s->mean) + r, c->res_stride, out, err);
        } else {
            if (s->o.rollout > 0 && !c->imagined && !c->error[0] && c->n > 0)
                st = emit_imagined(s, c, (s->o.imagine_prior ? s->pr : s->mean) + c->res + (size_t)(c->n - 1) * c->res_stride,
                                   c->res_stride, out, err);
            if (!st) st = emit_end(s, c, &m, out, err);
        }
    }
    msgpack_zone_destroy(&zone);
    for (int i = 0; i < s->n_slots; i++) clip_clear(&s->slots[i]);
    s->n_slots = s->open = s->closed = 0;
    s->nq = s->raw_len = 0;
    return st;
}

static wm_status batch_open(wm_step_stage *s, const char *id, size_t len, const wm_msg *clip_msg, wm_writer *out,
                            wm_error *err)
{
    wm_status st;
    if (s->open) {   /* a clip left without its end */
        s->open = 0;
        s->closed++;
    }
    if (s->n_slots == s->o.batch && (st = batch_flush(s, out, err))) return st;
    if ((st = clip_open(s, &s->slots[s->n_slots], id, len, clip_msg, err))) return st;
    s->n_slots++;
    s->open = 1;
    return WM_OK;
}

static wm_status batch_latent(wm_step_stage *s, const wm_msg *m, const wm_latent_view *v, wm_writer *out,
                              wm_error *err)
{
    wm_status st;
    if (!s->open || !clip_is(&s->slots[s->n_slots - 1], v->clip, v->clip_len))
        if ((st = batch_open(s, v->clip, v->clip_len, NULL, out, err))) return st;
    step_clip *c = &s->slots[s->n_slots - 1];
    queued q = { 0, 0, Q_LATENT, s->n_slots - 1, -1, 0, v->index };
    const int rolling = s->o.rollout > 0;
    if (rolling && c->n >= s->o.context) q.after_context = !c->error[0];
    else if (!c->error[0]) {
        int ok = take_latent(s, c, v, err, &st);
        if (st) return st;
        if (ok) {
            const size_t n = cell_floats(s, c);
            if ((st = reserve((void **)&c->lat, &c->lat_cap, (size_t)(c->n + 1) * n * sizeof(float), err))) return st;
            memcpy(c->lat + (size_t)c->n * n, s->latent, n * sizeof(float));
            q.pos = c->n++;
            note_pts(c, m, v->index);
        }
    }
    return enqueue(s, m, q, err);
}

static wm_status batch_msg(wm_step_stage *s, const wm_msg *m, wm_writer *out, wm_error *err)
{
    wm_status st;
    queued q = { 0, 0, Q_OTHER, -1, -1, 0, 0 };
    if (wm_msg_is(m, "latent")) {
        wm_latent_view v;
        if ((st = wm_latent_get(m, s->C, &v, err))) return st;
        if (!v.imagined) return batch_latent(s, m, &v, out, err);
    } else if (wm_msg_is(m, "clip")) {
        const char *id;
        size_t len;
        wm_msg_str(m, "id", &id, &len);
        if ((st = batch_open(s, id, len, m, out, err))) return st;
    } else if (wm_msg_is(m, "end")) {
        const char *id;
        size_t len;
        wm_msg_str(m, "clip", &id, &len);
        if (s->open && clip_is(&s->slots[s->n_slots - 1], id, len)) {
            q.tag = Q_END;
            q.slot = s->n_slots - 1;
            s->open = 0;
            s->closed++;
        }
    }
    if ((st = enqueue(s, m, q, err))) return st;
    /* B clips complete: run them; with nothing held, pass at once */
    if (s->closed == s->o.batch || (s->n_slots == 0 && !s->open)) return batch_flush(s, out, err);
    return WM_OK;
}

/* ---- the stage ---- */

static wm_status stage_msg(void *ctx, const wm_msg *m, wm_writer *out, wm_error *err)
{
    wm_step_stage *s = ctx;
    return s->o.batch > 1 ? batch_msg(s, m, out, err) : stream_msg(s, m, out, err);
}

static wm_status stage_finish(void *ctx, wm_writer *out, wm_error *err)
{
    wm_step_stage *s = ctx;
    if (s->o.batch > 1) return batch_flush(s, out, err);
    return stream_close(s, out, err);
}

wm_stage wm_step_stage_get(wm_step_stage *s)
{
    wm_stage st = { s, stage_msg, stage_finish };
    return st;
}
