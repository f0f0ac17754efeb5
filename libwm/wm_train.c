#include "wm_train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_cli.h"
#include "wm_hash.h"
#include "wm_io.h"
#include "wm_model.h"
#include "wm_signal.h"
#include "wm_nn.h"
#include "wm_reservoir.h"
#include "wm_safetensors.h"

/* ---- frame set: a reservoir of frames per source ---- */

typedef struct fs_frame {
    uint8_t *rgb;
    int w, h;
} fs_frame;

struct wm_frameset {
    wm_reservoir *res;         /* of fs_frame */
};

static void frame_release(void *item) { free(((fs_frame *)item)->rgb); }

static const fs_frame *frame_at(const wm_frameset *fs, int s, size_t i) { return wm_reservoir_item(fs->res, s, i); }

wm_frameset *wm_frameset_new(size_t max_frames, uint64_t seed, wm_error *err)
{
    wm_frameset *fs = calloc(1, sizeof *fs);
    if (!fs) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    fs->res = wm_reservoir_new(sizeof(fs_frame), max_frames, seed ^ 0x5eed5eed5eedULL, frame_release, err);
    if (!fs->res) { free(fs); return NULL; }
    return fs;
}

void wm_frameset_free(wm_frameset **fsp)
{
    wm_frameset *fs = *fsp;
    if (!fs) return;
    wm_reservoir_free(&fs->res);
    free(fs);
    *fsp = NULL;
}

wm_status wm_frameset_add(wm_frameset *fs, int source, const wm_frame_view *v, int min_w, int min_h, wm_error *err)
{
    if (v->width < min_w || v->height < min_h)
        return wm_error_set(err, WM_E_INPUT, "clip %.*s frame %lld is %dx%d, smaller than the %dx%d training crop",
                            (int)v->clip_len, v->clip, (long long)v->index, v->width, v->height, min_w, min_h);
    void *slot;
    int replaces;
    wm_status st = wm_reservoir_offer(fs->res, source, &slot, &replaces, err);
    if (st || !slot) return st;
    size_t npix = (size_t)v->width * v->height;
    uint8_t *rgb = malloc(3 * npix);
    if (!rgb) return wm_error_set(err, WM_E_SYSTEM, "out of memory for %zu training frames", wm_frameset_count(fs));
    if (v->format == WM_PIX_RGB24) memcpy(rgb, v->data, 3 * npix);
    else
        for (size_t i = 0; i < npix; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v->data[i];
    if (replaces) frame_release(slot);
    *(fs_frame *)slot = (fs_frame){ rgb, v->width, v->height };
    return WM_OK;
}

wm_status wm_frameset_read(wm_frameset *fs, const char *spec, int source, size_t max_message, int min_w, int min_h,
                           wm_error *err)
{
    wm_reader *r = wm_reader_open(spec, max_message, err);
    if (!r) return err->code;
    wm_status st;
    wm_msg m;
    uint64_t offered = wm_reservoir_offered(fs->res, source);
    while ((st = wm_reader_next(r, &m, err)) == WM_OK) {
        if (wm_signal_pending()) { st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted"); break; }
        if (!wm_msg_is(&m, "frame")) continue;
        wm_frame_view v;
        if ((st = wm_proto_frame_get(&m, &v, err)) || (st = wm_frameset_add(fs, source, &v, min_w, min_h, err))) break;
    }
    if (st == WM_EOF) {
        st = WM_OK;
        if (wm_reservoir_offered(fs->res, source) == offered)
            st = wm_error_set(err, WM_E_INPUT, "%s: no frames", wm_reader_name(r));
    }
    wm_reader_free(&r);
    return st;
}

size_t wm_frameset_count(const wm_frameset *fs) { return wm_reservoir_total(fs->res); }

int wm_frameset_sources(const wm_frameset *fs) { return wm_reservoir_sources(fs->res); }

size_t wm_frameset_source_count(const wm_frameset *fs, int source) { return wm_reservoir_size(fs->res, source); }

uint64_t wm_frameset_hash(const wm_frameset *fs)
{
    uint64_t h = WM_FNV1A_SEED;
    for (int s = 0; s < wm_reservoir_sources(fs->res); s++)
        for (size_t i = 0; i < wm_reservoir_size(fs->res, s); i++) {
            const fs_frame *f = frame_at(fs, s, i);
            const uint32_t dims[3] = { (uint32_t)s, (uint32_t)f->w, (uint32_t)f->h };
            uint8_t le[sizeof dims];   /* little-endian on every host, as this hash always was */
            for (size_t k = 0; k < sizeof le; k++) le[k] = (uint8_t)(dims[k / 4] >> (8 * (k % 4)));
            h = wm_fnv1a(h, le, sizeof le);
            h = wm_fnv1a(h, f->rgb, 3 * (size_t)f->w * f->h);
        }
    return h;
}

static int pick_source(const wm_frameset *fs, wm_rng *rng, const double *weights)
{
    double total = 0;
    const int n_src = wm_reservoir_sources(fs->res);
    for (int s = 0; s < n_src; s++)
        if (wm_reservoir_size(fs->res, s)) total += weights ? weights[s] : 1.0;
    double u = wm_rng_uniform(rng) * total;
    int last = 0;
    for (int s = 0; s < n_src; s++) {
        if (!wm_reservoir_size(fs->res, s)) continue;
        double w = weights ? weights[s] : 1.0;
        if (w <= 0) continue;
        last = s;
        if (u < w) return s;
        u -= w;
    }
    return last;
}

void wm_frameset_sample(const wm_frameset *fs, wm_rng *rng, const double *weights, int B, int h, int w, int flip,
                        float *x)
{
    const float k = 1.0f / 127.5f;
    for (int b = 0; b < B; b++) {
        const int src = pick_source(fs, rng, weights);
        const fs_frame *f = frame_at(fs, src, wm_rng_below(rng, wm_reservoir_size(fs->res, src)));
        const int rows = f->h - h + 1, cols = f->w - w + 1;   /* crop positions */
        int y0 = (int)wm_rng_below(rng, (uint64_t)rows);
        int x0 = (int)wm_rng_below(rng, (uint64_t)cols);
        int mirror = flip && wm_rng_below(rng, 2);
        float *o = x + (size_t)b * h * w * 3;
        for (int yy = 0; yy < h; yy++)
            for (int xx = 0; xx < w; xx++) {
                int sx = x0 + (mirror ? w - 1 - xx : xx);
                const uint8_t *p = f->rgb + ((size_t)(y0 + yy) * f->w + sx) * 3;
                float *q = o + ((size_t)yy * w + xx) * 3;
                q[0] = p[0] * k - 1.0f;
                q[1] = p[1] * k - 1.0f;
                q[2] = p[2] * k - 1.0f;
            }
    }
}

/* ---- checkpoints ---- */

double wm_train_psnr(double mse) { return mse > 0 ? 10.0 * log10(4.0 / mse) : 99.0; }

#define ADAM_M_PREFIX "train.adam_m." WM_TOKENIZER_PREFIX
#define ADAM_V_PREFIX "train.adam_v." WM_TOKENIZER_PREFIX

/* Everything that must match for a resumed run to be the same run. */
static void run_signature(char *out, size_t cap, const wm_train_options *o, const wm_frameset *fs, uint64_t hash)
{
    int n = snprintf(out, cap, "steps=%ld;batch=%d;crop=%dx%d;lr=%.9g;warmup=%ld;floor=%.9g;clip=%.9g;seed=%" PRIu64
                     ";flip=%d;pca=%d;data=%016" PRIx64 ";weights=", o->steps, o->batch, o->crop_w, o->crop_h,
                     (double)o->lr, o->warmup, (double)o->lr_floor, (double)o->clip, o->seed, o->flip, o->pca_init, hash);
    for (int s = 0; s < wm_frameset_sources(fs) && n > 0 && (size_t)n < cap; s++)
        n += snprintf(out + n, cap - (size_t)n, "%s%.6g", s ? "," : "", o->weights ? o->weights[s] : 1.0);
}

static wm_status save_checkpoint(wm_tokenizer *tk, const wm_adam *adam, long step, const char *sig, const char *path,
                                 wm_error *err)
{
    wm_safetensors_builder *b = wm_safetensors_builder_new(err);
    if (!b) return err->code;
    wm_params *p = wm_tokenizer_params(tk);
    char num[32];
    snprintf(num, sizeof num, "%ld", step);
    wm_status st = wm_tokenizer_add_to(tk, NULL, NULL, b, err);
    if (!st) st = wm_params_add_to(p, adam->m, ADAM_M_PREFIX, b, err);
    if (!st) st = wm_params_add_to(p, adam->v, ADAM_V_PREFIX, b, err);
    if (!st) st = wm_safetensors_builder_meta(b, "train.step", num, err);
    if (!st) st = wm_safetensors_builder_meta(b, "train.run", sig, err);
    if (!st) st = wm_safetensors_builder_write(b, path, err);
    wm_safetensors_builder_free(&b);
    return st;
}

static wm_status load_checkpoint(wm_tokenizer *tk, wm_adam *adam, long *step, const char *sig, const char *path,
                                 wm_error *err)
{
    if (access(path, F_OK) != 0)
        return wm_error_set(err, WM_E_USAGE, "--resume: no checkpoint %s (nothing to resume)", path);
    wm_safetensors *st = wm_safetensors_open(path, err);
    if (!st) return wm_error_prefix(err, "--resume");
    wm_status s = WM_OK;
    const char *run = wm_safetensors_meta(st, "train.run"), *step_text = wm_safetensors_meta(st, "train.step");
    wm_tokenizer *saved = NULL;
    if (!run || !step_text) {
        s = wm_error_set(err, WM_E_USAGE, "--resume: %s is not a training checkpoint", path);
    } else if (strcmp(run, sig) != 0) {
        /* name the first setting that differs */
        const char *a = run, *b = sig;
        while (*a && *a == *b) a++, b++;
        while (a > run && a[-1] != ';') a--, b--;
        s = wm_error_set(err, WM_E_USAGE, "--resume: %s comes from another run (it has %.*s; now %.*s)", path,
                         (int)strcspn(a, ";"), a, (int)strcspn(b, ";"), b);
    } else if (!(saved = wm_tokenizer_from_file(st, path, err))) {
        s = err->code;
    } else if (memcmp(wm_tokenizer_get_config(saved), wm_tokenizer_get_config(tk), sizeof(wm_tokenizer_config)) != 0) {
        s = wm_error_set(err, WM_E_USAGE, "--resume: %s holds a tokenizer of another architecture", path);
    } else {
        wm_params *p = wm_tokenizer_params(tk);
        s = wm_params_load(p, st, path, WM_TOKENIZER_PREFIX, err);
        if (!s) s = wm_params_load_into(p, adam->m, st, path, ADAM_M_PREFIX, err);
        if (!s) s = wm_params_load_into(p, adam->v, st, path, ADAM_V_PREFIX, err);
        *step = strtol(step_text, NULL, 10);
        adam->step = *step;
    }
    wm_tokenizer_free(&saved);
    wm_safetensors_close(&st);
    return s;
}

/* ---- the loop ---- */

static uint64_t step_seed(uint64_t seed, long step)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)step * 0xd1b54a32d192ed03ULL + 0x2545f4914f6cdd1dULL;
    z = (z ^ (z >> 31)) * 0x7fb5d329728ea185ULL;
    return z ^ (z >> 27);
}

wm_status wm_train_tokenizer(wm_tokenizer *tk, const wm_frameset *fs, const wm_train_options *o, int resume,
                             wm_train_report_fn report, wm_train_stop_fn stop, void *ctx, wm_error *err)
{
    const int B = o->batch, H = o->crop_h, W = o->crop_w;
    if (B < 1 || o->steps < 0 || H % WM_TOKENIZER_PATCH || W % WM_TOKENIZER_PATCH || H <= 0 || W <= 0)
        return wm_error_set(err, WM_E_USAGE, "bad training options (batch %d, crop %dx%d)", B, W, H);
    if (wm_frameset_count(fs) == 0) return wm_error_set(err, WM_E_INPUT, "no frames to train on");
    if (resume && !o->checkpoint) return wm_error_set(err, WM_E_USAGE, "--resume needs a checkpoint path");
    wm_params *p = wm_tokenizer_params(tk);
    wm_adam adam;
    wm_status st = wm_adam_init(&adam, p->total, err);
    if (st) return st;
    char sig[1024];
    run_signature(sig, sizeof sig, o, fs, wm_frameset_hash(fs));
    long step = 0;
    if (resume && (st = load_checkpoint(tk, &adam, &step, sig, o->checkpoint, err))) {
        wm_adam_free(&adam);
        return st;
    }
    float *x = malloc((size_t)B * H * W * 3 * sizeof *x);
    if (!x) {
        wm_adam_free(&adam);
        return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    }
    if (!resume && o->pca_init) {
        /* 256 crops drawn like training batches, from their own stream of random numbers */
        enum { PCA_FRAMES = 256 };
        float *px = malloc((size_t)PCA_FRAMES * H * W * 3 * sizeof *px);
        wm_rng rng;
        wm_rng_seed(&rng, step_seed(o->seed, -1));
        if (!px) st = wm_error_set(err, WM_E_SYSTEM, "out of memory");
        else {
            wm_frameset_sample(fs, &rng, o->weights, PCA_FRAMES, H, W, o->flip, px);
            st = wm_tokenizer_init_pca(tk, px, PCA_FRAMES, H, W, err);
            free(px);
        }
        if (st) {
            free(x);
            wm_adam_free(&adam);
            return st;
        }
    }
    const long first = step;
    double t0 = wm_now(), last_log = t0, last_ckpt = t0, acc = 0, max_norm = 0;
    long acc_n = 0;
    for (; step < o->steps; step++) {
        if (stop && stop(ctx)) {
            if (o->checkpoint) st = save_checkpoint(tk, &adam, step, sig, o->checkpoint, err);
            if (!st) st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted at step %ld%s%s", step,
                                       o->checkpoint ? "; checkpoint written to " : "", o->checkpoint ? o->checkpoint : "");
            break;
        }
        wm_rng rng;
        wm_rng_seed(&rng, step_seed(o->seed, step));
        wm_frameset_sample(fs, &rng, o->weights, B, H, W, o->flip, x);
        double loss;
        if ((st = wm_tokenizer_train_pass(tk, x, B, H, W, &loss, err))) break;
        if (!isfinite(loss)) {
            st = wm_error_set(err, WM_E_INPUT, "training diverged at step %ld (loss %g); try a lower --lr", step, loss);
            break;
        }
        double norm = wm_clip_grad_norm(p->grad, p->total, o->clip);
        if (norm > max_norm) max_norm = norm;
        float lr = wm_lr_schedule(step, o->steps, o->warmup, o->lr, o->lr_floor);
        wm_adam_update(&adam, p->data, p->grad, lr);
        acc += loss;
        acc_n++;
        double now = wm_now();
        const char *ckpt = NULL;
        if (o->checkpoint && o->checkpoint_every > 0 && now - last_ckpt >= o->checkpoint_every &&
            step + 1 < o->steps) {
            if ((st = save_checkpoint(tk, &adam, step + 1, sig, o->checkpoint, err))) break;
            ckpt = o->checkpoint;
            last_ckpt = now;
        }
        if (report && (now - last_log >= o->log_every || step + 1 == o->steps || ckpt)) {
            wm_train_progress pr = { 0 };
            double done = (double)(step + 1 - first), el = now - t0;
            pr.step = step + 1;
            pr.steps = o->steps;
            pr.loss = acc / (double)acc_n;
            pr.psnr = wm_train_psnr(pr.loss);
            pr.frames_per_s = done * B / (el > 0 ? el : 1e-9);
            pr.elapsed = el;
            pr.eta = el / done * (double)(o->steps - step - 1);
            pr.lr = lr;
            pr.grad_norm = max_norm;
            pr.final = step + 1 == o->steps;
            pr.checkpointed = ckpt;
            report(ctx, &pr);
            last_log = now;
            acc = 0;
            acc_n = 0;
            max_norm = 0;
        }
    }
    free(x);
    wm_adam_free(&adam);
    return st;
}

wm_status wm_train_save_tokenizer(const wm_tokenizer *tk, const char *path, const char *const *meta, size_t n_meta,
                                  size_t *kept, wm_error *err)
{
    wm_safetensors *old = NULL;
    *kept = 0;
    wm_safetensors_builder *b = wm_safetensors_builder_new(err);
    wm_status st = b ? wm_model_keep_others(b, path, WM_TOKENIZER_PREFIX, &old, kept, err) : err->code;
    if (!st) st = wm_tokenizer_add_to(tk, NULL, NULL, b, err);
    for (size_t i = 0; st == WM_OK && i < n_meta; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s%s", WM_TOKENIZER_PREFIX, meta[2 * i]);
        st = wm_safetensors_builder_meta(b, key, meta[2 * i + 1], err);
    }
    if (!st) st = wm_safetensors_builder_write(b, path, err);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&old);
    return st;
}
