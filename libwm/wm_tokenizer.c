#include "wm_tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_model.h"
#include "wm_nn.h"

/* The network is a short list of ops over numbered activation buffers, so
 * one forward loop and one backward loop serve the encoder, the decoder
 * and training alike. */
typedef enum tk_op_kind { OP_S2D, OP_D2S, OP_CONV, OP_SILU, OP_ADD } tk_op_kind;

typedef struct tk_op {
    tk_op_kind kind;
    int in, in2, out;      /* buffers */
    int weight, bias, K;   /* OP_CONV: parameter entries and kernel size */
    long wino;             /* OP_CONV: offset of its Winograd filters in tk->wino, -1: im2col */
    long wino_t;           /* OP_CONV: offset of the filters of its input gradient */
} tk_op;

typedef struct tk_buf {
    int div;               /* 1: frame resolution, 4: grid resolution */
    int channels;
} tk_buf;

#define TK_MAX_OPS 128
#define TK_MAX_BUFS 128
#define TK_MAX_PARTS 8   /* a training pass's images run in up to this many threads */

/* Where one pass (or one part of a training pass) keeps its activations. */
typedef struct tk_run {
    float *ptr[TK_MAX_BUFS], *dptr[TK_MAX_BUFS];
    float *work, *dwork, *scratch, *grad;
    size_t work_cap, dwork_cap, scratch_cap, grad_cap;
    int B, H, W;                     /* shape of its last pass */
    double loss;
} tk_run;

struct wm_tokenizer {
    wm_tokenizer_config cfg;
    wm_params params;
    tk_op ops[TK_MAX_OPS];
    int n_ops, n_enc_ops;
    tk_buf bufs[TK_MAX_BUFS];
    int n_bufs, buf_z, buf_y;        /* buffer 0 is the input frame */
    tk_run run[TK_MAX_PARTS];        /* run[0] serves every pass; the rest, a training pass's parts */
    float *last;                     /* z and y of a training pass run in parts */
    size_t last_cap;
    const float *last_z, *last_y;
    float *wino;                     /* Winograd-transformed filters of the 3x3 convolutions */
    size_t wino_total;
    float *flip;                     /* room for one layer's flipped filters */
    size_t flip_floats;
    int wino_valid;                  /* they match the parameters */
};

wm_tokenizer_config wm_tokenizer_default_config(void)
{
    wm_tokenizer_config c = { 8, 64, 2 };
    return c;
}

static wm_status check_config(const wm_tokenizer_config *c, wm_error *err)
{
    if (c->latent_channels < 4 || c->latent_channels > 16)
        return wm_error_set(err, WM_E_USAGE, "latent channels must be 4 to 16, not %d", c->latent_channels);
    if (c->hidden < 8 || c->hidden > 256)
        return wm_error_set(err, WM_E_USAGE, "hidden channels must be 8 to 256, not %d", c->hidden);
    if (c->blocks < 0 || c->blocks > 8)
        return wm_error_set(err, WM_E_USAGE, "residual blocks must be 0 to 8, not %d", c->blocks);
    return WM_OK;
}

static int add_buf(wm_tokenizer *tk, int div, int channels)
{
    tk->bufs[tk->n_bufs].div = div;
    tk->bufs[tk->n_bufs].channels = channels;
    return tk->n_bufs++;
}

static int add_op(wm_tokenizer *tk, tk_op_kind kind, int in, int in2, int out)
{
    tk_op *op = &tk->ops[tk->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->in = in;
    op->in2 = in2;
    op->out = out;
    return out;
}

static int add_conv(wm_tokenizer *tk, int in, int cout, int K, const char *name)
{
    int cin = tk->bufs[in].channels;
    int wshape[4] = { cout, K, K, cin }, bshape[1] = { cout };
    int out = add_buf(tk, tk->bufs[in].div, cout);
    add_op(tk, OP_CONV, in, -1, out);
    tk_op *op = &tk->ops[tk->n_ops - 1];
    op->weight = wm_params_add(&tk->params, 4, wshape, "%s.weight", name);
    op->bias = wm_params_add(&tk->params, 1, bshape, "%s.bias", name);
    op->K = K;
    op->wino = op->wino_t = -1;
    if (K == 3 && wm_winograd_supported(cin, cout)) {
        op->wino = (long)tk->wino_total;
        tk->wino_total += wm_winograd_weights_floats(cin, cout);
        op->wino_t = (long)tk->wino_total;
        tk->wino_total += wm_winograd_weights_floats(cout, cin);
    }
    if ((size_t)9 * cin * cout > tk->flip_floats) tk->flip_floats = (size_t)9 * cin * cout;
    return out;
}

static int add_silu(wm_tokenizer *tk, int in)
{
    return add_op(tk, OP_SILU, in, -1, add_buf(tk, tk->bufs[in].div, tk->bufs[in].channels));
}

/* hidden -> `blocks` residual blocks, named prefix.blockI.conv1/conv2 */
static int add_blocks(wm_tokenizer *tk, int h, const char *side)
{
    char name[48];
    for (int i = 0; i < tk->cfg.blocks; i++) {
        int a = add_silu(tk, h);
        snprintf(name, sizeof name, "%s.block%d.conv1", side, i);
        int c = add_conv(tk, a, tk->cfg.hidden, 3, name);
        int a2 = add_silu(tk, c);
        snprintf(name, sizeof name, "%s.block%d.conv2", side, i);
        int d = add_conv(tk, a2, tk->cfg.hidden, 3, name);
        h = add_op(tk, OP_ADD, h, d, add_buf(tk, tk->bufs[h].div, tk->bufs[h].channels));
    }
    return h;
}

static void build(wm_tokenizer *tk)
{
    const int P = WM_TOKENIZER_PATCH, C = tk->cfg.latent_channels, hidden = tk->cfg.hidden;
    int x = add_buf(tk, 1, 3);
    int s = add_op(tk, OP_S2D, x, -1, add_buf(tk, P, 3 * P * P));
    int h = add_conv(tk, s, hidden, 3, "enc.in");
    h = add_blocks(tk, h, "enc");
    tk->buf_z = add_conv(tk, h, C, 3, "enc.out");
    tk->n_enc_ops = tk->n_ops;
    h = add_conv(tk, tk->buf_z, hidden, 3, "dec.in");
    h = add_blocks(tk, h, "dec");
    int o = add_conv(tk, h, 3 * P * P, 3, "dec.out");
    tk->buf_y = add_op(tk, OP_D2S, o, -1, add_buf(tk, 1, 3));
}

static wm_tokenizer *tokenizer_alloc(const wm_tokenizer_config *cfg, wm_error *err)
{
    if (check_config(cfg, err) != WM_OK) return NULL;
    wm_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    tk->cfg = *cfg;
    build(tk);
    int bad = 0;
    for (int i = 0; i < tk->n_ops; i++)
        if (tk->ops[i].kind == OP_CONV && (tk->ops[i].weight < 0 || tk->ops[i].bias < 0)) bad = 1;
    tk->wino = malloc((tk->wino_total ? tk->wino_total : 1) * sizeof(float));
    tk->flip = malloc((tk->flip_floats ? tk->flip_floats : 1) * sizeof(float));
    if (!tk->wino || !tk->flip) bad = 1;
    if (bad) wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (bad || wm_params_alloc(&tk->params, err) != WM_OK) {
        wm_tokenizer_free(&tk);
        return NULL;
    }
    return tk;
}

wm_tokenizer *wm_tokenizer_new(const wm_tokenizer_config *cfg, uint64_t seed, wm_error *err)
{
    wm_tokenizer *tk = tokenizer_alloc(cfg, err);
    if (!tk) return NULL;
    wm_rng rng;
    wm_rng_seed(&rng, seed);
    for (int i = 0; i < tk->n_ops; i++) {
        const tk_op *op = &tk->ops[i];
        if (op->kind != OP_CONV) continue;
        const wm_param *w = &tk->params.items[op->weight];
        int fan_in = w->shape[1] * w->shape[2] * w->shape[3];
        float bound = 1.0f / sqrtf((float)fan_in);
        if (strstr(w->name, ".conv2.")) bound *= 0.1f;
        float *pw = wm_params_value(&tk->params, op->weight), *pb = wm_params_value(&tk->params, op->bias);
        for (size_t k = 0; k < w->numel; k++) pw[k] = bound * (float)(2.0 * wm_rng_uniform(&rng) - 1.0);
        for (int k = 0; k < w->shape[0]; k++) pb[k] = bound * (float)(2.0 * wm_rng_uniform(&rng) - 1.0);
    }
    return tk;
}

static wm_status check_size(int B, int H, int W, wm_error *err);

/* The conv op whose weight is named name. */
static const tk_op *find_conv(const wm_tokenizer *tk, const char *name)
{
    char full[64];
    snprintf(full, sizeof full, "%s.weight", name);
    int w = wm_params_find(&tk->params, full);
    for (int i = 0; i < tk->n_ops; i++)
        if (tk->ops[i].kind == OP_CONV && tk->ops[i].weight == w) return &tk->ops[i];
    return NULL;
}

wm_status wm_tokenizer_init_pca(wm_tokenizer *tk, const float *x, int B, int H, int W, wm_error *err)
{
    const int P = WM_TOKENIZER_PATCH, D = 3 * P * P, C = tk->cfg.latent_channels, hidden = tk->cfg.hidden;
    if (hidden < C) return wm_error_set(err, WM_E_USAGE, "PCA initialisation needs hidden >= latent channels");
    wm_status st = check_size(B, H, W, err);
    if (st) return st;
    size_t rows = (size_t)B * (H / P) * (W / P);
    float *patches = malloc(rows * D * sizeof *patches);
    double *mean = calloc(D, sizeof *mean), *cov = calloc((size_t)D * D, sizeof *cov);
    double *evals = malloc(D * sizeof *evals), *evecs = malloc((size_t)D * D * sizeof *evecs);
    if (!patches || !mean || !cov || !evals || !evecs) {
        st = wm_error_set(err, WM_E_SYSTEM, "out of memory");
        goto done;
    }
    wm_space_to_depth_forward(patches, x, B, H, W, 3, P);   /* rows of D values, as enc.in sees them */
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < D; k++) mean[k] += patches[r * D + k];
    for (int k = 0; k < D; k++) mean[k] /= (double)rows;
    for (size_t r = 0; r < rows; r++) {
        const float *p = patches + r * D;
        for (int i = 0; i < D; i++)
            for (int j = i; j < D; j++) cov[i * D + j] += (p[i] - mean[i]) * (p[j] - mean[j]);
    }
    for (int i = 0; i < D; i++)
        for (int j = i; j < D; j++) cov[j * D + i] = cov[i * D + j] /= (double)rows;
    if (wm_symmetric_eigen(cov, D, evals, evecs) != 0) {
        st = wm_error_set(err, WM_E_SYSTEM, "out of memory");
        goto done;
    }
    const tk_op *ein = find_conv(tk, "enc.in"), *eout = find_conv(tk, "enc.out");
    const tk_op *din = find_conv(tk, "dec.in"), *dout = find_conv(tk, "dec.out");
    float *w = wm_params_value(&tk->params, ein->weight), *b = wm_params_value(&tk->params, ein->bias);
    const size_t center = 1 * 3 + 1;   /* tap (1, 1) of a 3x3 kernel */
    for (int c = 0; c < C; c++) {       /* enc.in: z_c = e_c . (patch - mean) */
        memset(w + (size_t)c * 9 * D, 0, (size_t)9 * D * sizeof *w);
        double bias = 0;
        for (int k = 0; k < D; k++) {
            w[((size_t)c * 9 + center) * D + k] = (float)evecs[c * D + k];
            bias -= evecs[c * D + k] * mean[k];
        }
        b[c] = (float)bias;
    }
    w = wm_params_value(&tk->params, eout->weight);   /* enc.out: the first C channels */
    memset(w, 0, (size_t)C * 9 * hidden * sizeof *w);
    memset(wm_params_value(&tk->params, eout->bias), 0, (size_t)C * sizeof *w);
    for (int c = 0; c < C; c++) w[((size_t)c * 9 + center) * hidden + c] = 1.0f;
    w = wm_params_value(&tk->params, din->weight);    /* dec.in: into the first C channels */
    b = wm_params_value(&tk->params, din->bias);
    for (int c = 0; c < C; c++) {
        memset(w + (size_t)c * 9 * C, 0, (size_t)9 * C * sizeof *w);
        w[((size_t)c * 9 + center) * C + c] = 1.0f;
        b[c] = 0.0f;
    }
    w = wm_params_value(&tk->params, dout->weight);   /* dec.out: patch = mean + sum_c z_c e_c */
    b = wm_params_value(&tk->params, dout->bias);
    memset(w, 0, (size_t)D * 9 * hidden * sizeof *w);
    for (int k = 0; k < D; k++) {
        for (int c = 0; c < C; c++) w[((size_t)k * 9 + center) * hidden + c] = (float)evecs[c * D + k];
        b[k] = (float)mean[k];
    }
    for (int i = 0; i < tk->params.count; i++)   /* residual blocks start as the identity */
        if (strstr(tk->params.items[i].name, ".conv2."))
            memset(wm_params_value(&tk->params, i), 0, tk->params.items[i].numel * sizeof(float));
    tk->wino_valid = 0;
done:
    free(patches);
    free(mean);
    free(cov);
    free(evals);
    free(evecs);
    return st;
}

/* A metadata integer in [lo, hi]. */
static wm_status meta_int(const wm_safetensors *st, const char *path, const char *key, int lo, int hi, int *out,
                          wm_error *err)
{
    const char *v = wm_safetensors_meta(st, key);
    if (!v) return wm_error_set(err, WM_E_INPUT, "%s: metadata \"%s\" is missing", path, key);
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return wm_error_set(err, WM_E_INPUT, "%s: metadata \"%s\" = \"%.40s\" is not an integer in [%d, %d]", path,
                            key, v, lo, hi);
    *out = (int)n;
    return WM_OK;
}

wm_tokenizer *wm_tokenizer_from_file(const wm_safetensors *st, const char *path, wm_error *err)
{
    if (wm_model_check_arch(st, path, WM_TOKENIZER_PREFIX, WM_TOKENIZER_ARCH, "tokenizer", "tokenizer", "", err))
        return NULL;
    wm_tokenizer_config cfg;
    if (meta_int(st, path, WM_TOKENIZER_PREFIX "latent_channels", 4, 16, &cfg.latent_channels, err) ||
        meta_int(st, path, WM_TOKENIZER_PREFIX "hidden", 8, 256, &cfg.hidden, err) ||
        meta_int(st, path, WM_TOKENIZER_PREFIX "blocks", 0, 8, &cfg.blocks, err))
        return NULL;
    wm_tokenizer *tk = tokenizer_alloc(&cfg, err);
    if (!tk) return NULL;
    if (wm_params_load(&tk->params, st, path, WM_TOKENIZER_PREFIX, err) != WM_OK) {
        wm_tokenizer_free(&tk);
        return NULL;
    }
    return tk;
}

wm_tokenizer *wm_tokenizer_load(const char *path, wm_error *err)
{
    wm_safetensors *st = wm_safetensors_open(path, err);
    if (!st) return NULL;
    wm_tokenizer *tk = wm_tokenizer_from_file(st, path, err);
    wm_safetensors_close(&st);
    return tk;
}

void wm_tokenizer_free(wm_tokenizer **tkp)
{
    wm_tokenizer *tk = *tkp;
    if (!tk) return;
    wm_params_free(&tk->params);
    for (int k = 0; k < TK_MAX_PARTS; k++) {
        tk_run *r = &tk->run[k];
        free(r->work), free(r->dwork), free(r->scratch), free(r->grad);
    }
    free(tk->last);
    free(tk->wino);
    free(tk->flip);
    free(tk);
    *tkp = NULL;
}

const wm_tokenizer_config *wm_tokenizer_get_config(const wm_tokenizer *tk) { return &tk->cfg; }

wm_params *wm_tokenizer_params(wm_tokenizer *tk)
{
    tk->wino_valid = 0;   /* the caller may change them */
    return &tk->params;
}

/* Transforms the 3x3 filters for Winograd after the parameters changed. */
static void refresh_winograd(wm_tokenizer *tk)
{
    if (tk->wino_valid) return;
    for (int i = 0; i < tk->n_ops; i++) {
        const tk_op *op = &tk->ops[i];
        if (op->kind != OP_CONV || op->wino < 0) continue;
        int cin = tk->bufs[op->in].channels, cout = tk->bufs[op->out].channels;
        const float *w = wm_params_value(&tk->params, op->weight);
        wm_winograd_weights(tk->wino + op->wino, w, cin, cout);
        wm_conv2d_flip_weights(tk->flip, w, cin, cout, 3);
        wm_winograd_weights(tk->wino + op->wino_t, tk->flip, cout, cin);
    }
    tk->wino_valid = 1;
}

wm_status wm_tokenizer_add_to(const wm_tokenizer *tk, const float *buf, const char *prefix,
                              wm_safetensors_builder *b, wm_error *err)
{
    char full[96], num[3][16];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", WM_TOKENIZER_PREFIX);
    wm_status s = wm_params_add_to(&tk->params, buf ? buf : tk->params.data, full, b, err);
    snprintf(num[0], sizeof num[0], "%d", tk->cfg.latent_channels);
    snprintf(num[1], sizeof num[1], "%d", tk->cfg.hidden);
    snprintf(num[2], sizeof num[2], "%d", tk->cfg.blocks);
    const char *meta[] = {
        "arch", WM_TOKENIZER_ARCH,
        "latent_channels", num[0],
        "hidden", num[1],
        "blocks", num[2],
        "patch", "4",
        "activation", "silu",
        "layout", "activations NHWC; latent [H/4, W/4, C]; conv weight [out, kh, kw, in]",
        "input", "rgb / 127.5 - 1",
    };
    for (size_t i = 0; s == WM_OK && i < sizeof meta / sizeof meta[0]; i += 2) {
        snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", WM_TOKENIZER_PREFIX, meta[i]);
        s = wm_safetensors_builder_meta(b, full, meta[i + 1], err);
    }
    return s;
}

/* ---- passes ---- */

static size_t buf_floats(const wm_tokenizer *tk, int i, int B, int H, int W)
{
    const tk_buf *b = &tk->bufs[i];
    return (size_t)B * (size_t)(H / b->div) * (size_t)(W / b->div) * (size_t)b->channels;
}

static wm_status grow(float **p, size_t *cap, size_t need, wm_error *err)
{
    if (need <= *cap) return WM_OK;
    free(*p);
    *p = malloc(need * sizeof(float));
    if (!*p) {
        *cap = 0;
        return wm_error_set(err, WM_E_SYSTEM, "out of memory for the tokenizer's activations (%zu MB)",
                            need * sizeof(float) >> 20);
    }
    *cap = need;
    return WM_OK;
}

/* Places every buffer not in `external` inside the workspace (and, with
 * grads, its gradient in the gradient workspace). */
static wm_status layout(const wm_tokenizer *tk, tk_run *r, int B, int H, int W, const int *external, int grads,
                        wm_error *err)
{
    size_t need = 0, scratch = 0;
    for (int i = 0; i < tk->n_bufs; i++)
        if (!external[i]) need += buf_floats(tk, i, B, H, W);
    for (int i = 0; i < tk->n_ops; i++)
        if (tk->ops[i].kind == OP_CONV) {
            int cin = tk->bufs[tk->ops[i].in].channels, cout = tk->bufs[tk->ops[i].out].channels;
            size_t s = wm_conv2d_scratch_floats(cin, cout, tk->ops[i].K);
            if (s > scratch) scratch = s;
            s = wm_winograd_scratch_floats(cin, cout);
            if (tk->ops[i].wino >= 0 && s > scratch) scratch = s;
            s = wm_winograd_scratch_floats(cout, cin);
            if (tk->ops[i].wino_t >= 0 && s > scratch) scratch = s;
        }
    wm_status st;
    if ((st = grow(&r->work, &r->work_cap, need, err)) || (st = grow(&r->scratch, &r->scratch_cap, scratch, err)))
        return st;
    size_t at = 0;
    for (int i = 0; i < tk->n_bufs; i++)
        if (!external[i]) {
            r->ptr[i] = r->work + at;
            at += buf_floats(tk, i, B, H, W);
        }
    if (grads) {
        size_t dneed = 0;
        for (int i = 1; i < tk->n_bufs; i++) dneed += buf_floats(tk, i, B, H, W);
        if ((st = grow(&r->dwork, &r->dwork_cap, dneed, err))) return st;
        memset(r->dwork, 0, dneed * sizeof(float));
        at = 0;
        r->dptr[0] = NULL;   /* nobody needs the gradient of the frame */
        for (int i = 1; i < tk->n_bufs; i++) {
            r->dptr[i] = r->dwork + at;
            at += buf_floats(tk, i, B, H, W);
        }
    }
    r->B = B;
    r->H = H;
    r->W = W;
    return WM_OK;
}

/* The ops from..to-1 on r's buffers (the Winograd filters must be fresh). */
static void run_forward(const wm_tokenizer *tk, tk_run *r, int from, int to)
{
    const int B = r->B, P = WM_TOKENIZER_PATCH;
    float *const *ptr = r->ptr;
    for (int i = from; i < to; i++) {
        const tk_op *op = &tk->ops[i];
        const tk_buf *bi = &tk->bufs[op->in], *bo = &tk->bufs[op->out];
        int h = r->H / bi->div, w = r->W / bi->div;
        size_t n = buf_floats(tk, op->out, B, r->H, r->W);
        switch (op->kind) {
        case OP_S2D: wm_space_to_depth_forward(ptr[op->out], ptr[op->in], B, h, w, bi->channels, P); break;
        case OP_D2S: wm_depth_to_space_forward(ptr[op->out], ptr[op->in], B, h, w, bo->channels, P); break;
        case OP_SILU: wm_silu_forward(ptr[op->out], ptr[op->in], n); break;
        case OP_ADD: wm_add_forward(ptr[op->out], ptr[op->in], ptr[op->in2], n); break;
        case OP_CONV:
            if (op->wino >= 0)
                wm_conv3x3_winograd_forward(ptr[op->out], ptr[op->in], tk->wino + op->wino,
                                            wm_params_value(&tk->params, op->bias), B, h, w, bi->channels,
                                            bo->channels, r->scratch);
            else
                wm_conv2d_forward(ptr[op->out], ptr[op->in], wm_params_value(&tk->params, op->weight),
                                  wm_params_value(&tk->params, op->bias), B, h, w, bi->channels, bo->channels, op->K,
                                  1, op->K / 2, r->scratch);
            break;
        }
    }
}

/* The backward pass of those ops, parameter gradients into grad (laid
 * out as the parameters). */
static void run_backward(const wm_tokenizer *tk, tk_run *r, float *grad, int from, int to)
{
    const int B = r->B, P = WM_TOKENIZER_PATCH;
    for (int i = to - 1; i >= from; i--) {
        const tk_op *op = &tk->ops[i];
        const tk_buf *bi = &tk->bufs[op->in], *bo = &tk->bufs[op->out];
        int h = r->H / bi->div, w = r->W / bi->div;
        size_t n = buf_floats(tk, op->out, B, r->H, r->W);
        float *din = r->dptr[op->in];
        const float *dout = r->dptr[op->out];
        switch (op->kind) {
        case OP_S2D:
            if (din) wm_space_to_depth_backward(din, dout, B, h, w, bi->channels, P);
            break;
        case OP_D2S: wm_depth_to_space_backward(din, dout, B, h, w, bo->channels, P); break;
        case OP_SILU: wm_silu_backward(din, dout, r->ptr[op->in], n); break;
        case OP_ADD: wm_add_backward(din, r->dptr[op->in2], dout, n); break;
        case OP_CONV:
            wm_conv2d_backward(op->wino_t >= 0 ? NULL : din, grad + tk->params.items[op->weight].offset,
                               grad + tk->params.items[op->bias].offset, dout, r->ptr[op->in],
                               wm_params_value(&tk->params, op->weight), B, h, w, bi->channels, bo->channels, op->K,
                               1, op->K / 2, r->scratch);
            if (op->wino_t >= 0 && din)
                wm_conv3x3_winograd_backward_input(din, dout, tk->wino + op->wino_t, B, h, w, bi->channels,
                                                   bo->channels, r->scratch);
            break;
        }
    }
}

static wm_status check_size(int B, int H, int W, wm_error *err)
{
    if (B < 1 || H < WM_TOKENIZER_PATCH || W < WM_TOKENIZER_PATCH || H % WM_TOKENIZER_PATCH || W % WM_TOKENIZER_PATCH)
        return wm_error_set(err, WM_E_INPUT, "the tokenizer needs frames whose sides are multiples of %d, not %dx%d",
                            WM_TOKENIZER_PATCH, W, H);
    return WM_OK;
}

wm_status wm_tokenizer_encode(wm_tokenizer *tk, float *z, const float *x, int B, int H, int W, wm_error *err)
{
    wm_status st;
    tk_run *r = &tk->run[0];
    int external[TK_MAX_BUFS] = { 0 };
    external[0] = external[tk->buf_z] = 1;
    if ((st = check_size(B, H, W, err)) || (st = layout(tk, r, B, H, W, external, 0, err))) return st;
    r->ptr[0] = (float *)x;   /* read only: no op writes buffer 0 */
    r->ptr[tk->buf_z] = z;
    refresh_winograd(tk);
    run_forward(tk, r, 0, tk->n_enc_ops);
    tk->last_z = z;
    tk->last_y = NULL;
    return WM_OK;
}

wm_status wm_tokenizer_decode(wm_tokenizer *tk, float *y, const float *z, int B, int h, int w, wm_error *err)
{
    const int P = WM_TOKENIZER_PATCH;
    wm_status st;
    tk_run *r = &tk->run[0];
    int external[TK_MAX_BUFS] = { 0 };
    external[tk->buf_z] = external[tk->buf_y] = 1;
    for (int i = 0; i < tk->n_bufs; i++)   /* the encoder's buffers are not needed */
        if (i < tk->buf_z) external[i] = 1;
    if ((st = check_size(B, h * P, w * P, err)) || (st = layout(tk, r, B, h * P, w * P, external, 0, err))) return st;
    r->ptr[tk->buf_z] = (float *)z;   /* read only */
    r->ptr[tk->buf_y] = y;
    refresh_winograd(tk);
    run_forward(tk, r, tk->n_enc_ops, tk->n_ops);
    tk->last_z = z;
    tk->last_y = y;
    return WM_OK;
}

/* One part of a training pass: its images (x, r->B of them) forward and
 * back, gradients into grad (overwritten), the loss's gradient scaled by
 * the part's share of the pass so the parts add up to the whole. */
typedef struct tk_part {
    const wm_tokenizer *tk;
    tk_run *r;
    const float *x;
    float *grad;
    float share;
} tk_part;

static void *tk_part_run(void *arg)
{
    const tk_part *pt = arg;
    const wm_tokenizer *tk = pt->tk;
    tk_run *r = pt->r;
    r->ptr[0] = (float *)pt->x;
    run_forward(tk, r, 0, tk->n_ops);
    size_t n = buf_floats(tk, 0, r->B, r->H, r->W);
    r->loss = wm_mse_forward(r->ptr[tk->buf_y], pt->x, n);
    memset(pt->grad, 0, tk->params.total * sizeof(float));
    wm_mse_backward(r->dptr[tk->buf_y], r->ptr[tk->buf_y], pt->x, n, pt->share);
    run_backward(tk, r, pt->grad, 0, tk->n_ops);
    return NULL;
}

/* The images split into up to wm_nn_threads() parts run side by side,
 * each single-threaded inside; their gradients are summed in part order
 * (the same threads give the same bits). */
wm_status wm_tokenizer_train_pass(wm_tokenizer *tk, const float *x, int B, int H, int W, double *loss,
                                  wm_error *err)
{
    wm_status st;
    int external[TK_MAX_BUFS] = { 0 };
    external[0] = 1;
    if ((st = check_size(B, H, W, err)) || (st = wm_params_alloc_grad(&tk->params, err))) return st;
    int parts = wm_nn_threads();
    if (parts > B) parts = B;
    if (parts > TK_MAX_PARTS) parts = TK_MAX_PARTS;
    if (parts < 1) parts = 1;
    const size_t img = buf_floats(tk, 0, 1, H, W);
    tk_part pt[TK_MAX_PARTS] = { 0 };
    int b0[TK_MAX_PARTS + 1];
    for (int k = 0; k <= parts; k++) b0[k] = (int)((long)B * k / parts);
    for (int k = 0; k < parts; k++) {
        tk_run *r = &tk->run[k];
        if ((st = layout(tk, r, b0[k + 1] - b0[k], H, W, external, 1, err))) return st;
        if (k && (st = grow(&r->grad, &r->grad_cap, tk->params.total, err))) return st;
        pt[k] = (tk_part){ tk, r, x + b0[k] * img, k ? r->grad : tk->params.grad,
                           (float)(b0[k + 1] - b0[k]) / (float)B };
    }
    tk->wino_valid = 0;   /* training changes the parameters between passes */
    refresh_winograd(tk);
    float *grads[TK_MAX_PARTS];
    for (int k = 0; k < parts; k++) grads[k] = pt[k].grad;
    wm_nn_run_parts(tk_part_run, pt, sizeof pt[0], parts, grads, tk->params.total);
    tk->wino_valid = 0;
    double sum = 0.0;
    for (int k = 0; k < parts; k++) sum += tk->run[k].loss * (double)(b0[k + 1] - b0[k]);
    *loss = sum / (double)B;
    if (parts == 1) {
        tk->last_z = tk->run[0].ptr[tk->buf_z];
        tk->last_y = tk->run[0].ptr[tk->buf_y];
        return WM_OK;
    }
    /* z and y of the whole batch, for wm_tokenizer_last: the parts' images in order */
    const size_t nz = buf_floats(tk, tk->buf_z, B, H, W), ny = buf_floats(tk, tk->buf_y, B, H, W);
    if ((st = grow(&tk->last, &tk->last_cap, nz + ny, err))) return st;
    for (int k = 0; k < parts; k++) {
        const int Bp = b0[k + 1] - b0[k];
        const size_t zi = buf_floats(tk, tk->buf_z, 1, H, W), yi = buf_floats(tk, tk->buf_y, 1, H, W);
        memcpy(tk->last + b0[k] * zi, tk->run[k].ptr[tk->buf_z], Bp * zi * sizeof(float));
        memcpy(tk->last + nz + b0[k] * yi, tk->run[k].ptr[tk->buf_y], Bp * yi * sizeof(float));
    }
    tk->last_z = tk->last;
    tk->last_y = tk->last + nz;
    return WM_OK;
}

void wm_tokenizer_last(const wm_tokenizer *tk, const float **z, const float **y)
{
    if (z) *z = tk->last_z;
    if (y) *y = tk->last_y;
}

void wm_tokenizer_pixels_to_input(float *x, const uint8_t *pixels, size_t n_pixels, int channels)
{
    const float k = 1.0f / 127.5f;
    if (channels == 3) {
        for (size_t i = 0; i < 3 * n_pixels; i++) x[i] = (float)pixels[i] * k - 1.0f;
    } else {
        for (size_t i = 0; i < n_pixels; i++) x[3 * i] = x[3 * i + 1] = x[3 * i + 2] = (float)pixels[i] * k - 1.0f;
    }
}

void wm_tokenizer_output_to_pixels(uint8_t *rgb, const float *y, size_t n_pixels)
{
    for (size_t i = 0; i < 3 * n_pixels; i++) {
        float v = (y[i] + 1.0f) * 127.5f + 0.5f;
        rgb[i] = v >= 255.0f ? 255 : v > 0.0f ? (uint8_t)v : 0;   /* NaN -> 0 */
    }
}
