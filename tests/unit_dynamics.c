/* The dynamics model's layers (wm_convgru) and the model (wm_dynamics):
 * dilated convolution against naive code, every backward against central
 * finite differences on tiny shapes, the whole training pass through time
 * against finite differences of its loss, the inference step against the
 * training pass, lanes independent of each other, state reset, and the
 * model file round trip that keeps the tokenizer.
 *
 * Also the C side of tests/test_dynamics_torch.py:
 *   unit_dynamics oracle MODEL INPUT OUT
 * loads the dynamics model in MODEL and from INPUT the tensors "seq"
 * [T+1, B, H, W, C], "state" [2, B, H, W, hidden] and optionally "prev"
 * [B, H, W, C] (the input before the window), "inputs" [T, B, H, W, C]
 * (what the window is fed) and "fed_from" (I32 [B]: from which step a lane
 * was fed its own predictions; metadata "beta", "lr"), and writes to OUT: "mean", "logvar" [T, B, H, W, C] (normalised
 * units), "nll", "state" (after the window), "grad.<param>" (one training
 * pass), "updated.<param>" (after one Adam step), and "step.mean",
 * "step.var" [T, B, H, W, C] from the inference path (latent units,
 * starting from a zero state). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_adam.h"
#include "wm_convgru.h"
#include "wm_dynamics.h"
#include "wm_nn.h"
#include "unit_check.h"

static int failures;
static wm_rng rng;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static float *randn(size_t n, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)wm_rng_normal(&rng) * scale;
    return p;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }


/* ---- finite differences of L = sum(out * g) ---- */

typedef struct fd_case {
    void (*forward)(struct fd_case *c);
    float *out, *g;
    size_t n_out;
    /* layer arguments */
    int B, H, W, Cin, Cout, d;
    float *inp, *inp2, *inp3, *weight, *bias, *scratch, *out2;
} fd_case;

static double fd_loss(fd_case *c)
{
    c->forward(c);
    double s = 0;
    for (size_t i = 0; i < c->n_out; i++) s += (double)c->out[i] * c->g[i];
    return s;
}

static void check_grad(const char *what, fd_case *c, float *x, size_t n, const float *analytic)
{
    const float eps = 1e-2f;
    double worst = 0;
    size_t step = n > 40 ? n / 40 : 1;
    for (size_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = fd_loss(c);
        x[i] = keep - eps;
        double lm = fd_loss(c);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * eps), e = fabs(num - analytic[i]) / (1e-2 + fabs(num));
        if (e > worst) worst = e;
        CHECK(e < 2e-2, "%s[%zu]: analytic %g, numeric %g", what, i, analytic[i], num);
    }
    printf("ok - %s gradient (worst relative error %.2g)\n", what, worst);
}

/* ---- dilated convolution ---- */

static void dconv_fwd(fd_case *c)
{
    wm_dconv3x3_forward(c->out, c->inp, c->weight, c->bias, c->B, c->H, c->W, c->Cin, c->Cout, c->d, c->scratch);
}

static void dconv_naive(float *out, const fd_case *c)
{
    for (int b = 0; b < c->B; b++)
        for (int y = 0; y < c->H; y++)
            for (int x = 0; x < c->W; x++)
                for (int co = 0; co < c->Cout; co++) {
                    double s = c->bias[co];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int iy = y + (ky - 1) * c->d, ix = x + (kx - 1) * c->d;
                            if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                            for (int ci = 0; ci < c->Cin; ci++)
                                s += (double)c->weight[((co * 3 + ky) * 3 + kx) * c->Cin + ci] *
                                     c->inp[(((size_t)b * c->H + iy) * c->W + ix) * c->Cin + ci];
                        }
                    out[(((size_t)b * c->H + y) * c->W + x) * c->Cout + co] = (float)s;
                }
}

static void test_dconv(int B, int H, int W, int Cin, int Cout, int d, int grads)
{
    fd_case c = { dconv_fwd, NULL, NULL, 0, B, H, W, Cin, Cout, d, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    size_t n_in = (size_t)B * H * W * Cin, n_w = (size_t)Cout * 9 * Cin;
    c.n_out = (size_t)B * H * W * Cout;
    c.inp = randn(n_in, 1.0f);
    c.weight = randn(n_w, 0.3f);
    c.bias = randn((size_t)Cout, 0.5f);
    c.out = zeros(c.n_out);
    c.scratch = zeros(wm_dconv3x3_scratch_floats(B, H, W, Cin, Cout, d));
    float *ref = zeros(c.n_out);
    char name[96];
    snprintf(name, sizeof name, "dconv3x3 B%d %dx%d %d->%d dilation %d", B, H, W, Cin, Cout, d);
    dconv_fwd(&c);
    dconv_naive(ref, &c);
    double e = max_rel(c.out, ref, c.n_out);
    CHECK(e < 1e-5, "%s forward: relative error %g against the naive convolution", name, e);
    printf("ok - %s forward (relative error %.2g)\n", name, e);
    if (wm_winograd_supported(Cin, Cout)) {
        float *U = zeros(wm_dconv3x3_winograd_weights_floats(Cin, Cout)), *o2 = zeros(c.n_out);
        float *tmp = zeros(wm_dconv3x3_winograd_weights_floats(Cin, Cout));
        float *ws = zeros(wm_dconv3x3_winograd_scratch_floats(B, H, W, Cin, Cout, d));
        wm_dconv3x3_winograd_weights(U, c.weight, Cin, Cout, tmp);
        wm_dconv3x3_winograd_forward(o2, c.inp, U, c.bias, B, H, W, Cin, Cout, d, ws);
        e = max_rel(o2, ref, c.n_out);
        CHECK(e < 2e-5, "%s Winograd: relative error %g", name, e);
        printf("ok - %s Winograd forward (relative error %.2g)\n", name, e);
        /* the input gradient by Winograd on the flipped filters, accumulated */
        size_t n_in2 = (size_t)B * H * W * Cin;
        float *g = randn(c.n_out, 1.0f), *dref = zeros(n_in2), *dwin = zeros(n_in2);
        float *Ut = zeros(wm_dconv3x3_winograd_weights_floats(Cout, Cin));
        float *ftmp = zeros(wm_dconv3x3_winograd_flip_scratch_floats(Cin, Cout));
        float *bws = zeros(wm_dconv3x3_winograd_backward_input_scratch_floats(B, H, W, Cin, Cout, d));
        for (size_t i = 0; i < n_in2; i++) dref[i] = dwin[i] = 0.5f;
        wm_dconv3x3_backward(dref, NULL, NULL, g, c.inp, c.weight, B, H, W, Cin, Cout, d, c.scratch);
        wm_dconv3x3_winograd_flip_weights(Ut, c.weight, Cin, Cout, ftmp);
        wm_dconv3x3_winograd_backward_input(dwin, g, Ut, B, H, W, Cin, Cout, d, bws);
        e = max_rel(dwin, dref, n_in2);
        CHECK(e < 2e-5, "%s Winograd input gradient: relative error %g", name, e);
        printf("ok - %s Winograd input gradient, accumulated (relative error %.2g)\n", name, e);
        free(g); free(dref); free(dwin); free(Ut); free(ftmp); free(bws);
        free(U); free(o2); free(ws); free(tmp);
    }
    if (grads) {
        c.g = randn(c.n_out, 1.0f);
        float *dinp = zeros(n_in), *dw = zeros(n_w), *db = zeros((size_t)Cout);
        wm_dconv3x3_backward(dinp, dw, db, c.g, c.inp, c.weight, B, H, W, Cin, Cout, d, c.scratch);
        char what[128];
        snprintf(what, sizeof what, "%s dinp", name);
        check_grad(what, &c, c.inp, n_in, dinp);
        snprintf(what, sizeof what, "%s dweight", name);
        check_grad(what, &c, c.weight, n_w, dw);
        snprintf(what, sizeof what, "%s dbias", name);
        check_grad(what, &c, c.bias, (size_t)Cout, db);
        /* it accumulates, and the input gradient alone is the same */
        float *dinp2 = zeros(n_in);
        for (size_t i = 0; i < n_in; i++) dinp2[i] = 1.0f;
        wm_dconv3x3_backward(dinp2, NULL, NULL, c.g, c.inp, c.weight, B, H, W, Cin, Cout, d, c.scratch);
        for (size_t i = 0; i < n_in; i++) dinp2[i] -= 1.0f;
        CHECK(max_rel(dinp2, dinp, n_in) < 1e-5, "%s: the input gradient alone differs", name);
        free(c.g); free(dinp); free(dw); free(db); free(dinp2);
    }
    free(ref); free(c.inp); free(c.weight); free(c.bias); free(c.out); free(c.scratch);
}

static void test_space_to_batch(void)
{
    const int B = 2, H = 5, W = 7, C = 3, d = 2;
    size_t n = (size_t)B * H * W * C;
    float *x = randn(n, 1.0f), *s = zeros((size_t)B * d * d * 3 * 4 * C), *back = zeros(n);
    wm_space_to_batch(s, x, B, H, W, C, d);
    /* element (b=1, y=3, x=4, c=2) is in sub-grid i=1, j=0 at (1, 2) */
    float got = s[((((size_t)(1 * d + 1) * d + 0) * 3 + 1) * 4 + 2) * C + 2];
    CHECK(got == x[(((size_t)1 * H + 3) * W + 4) * C + 2], "space_to_batch puts an element in the wrong place");
    CHECK(s[((((size_t)0 * d + 1) * d + 1) * 3 + 2) * 4 * C + 3 * C] == 0.0f, "the padding is not zero");
    wm_batch_to_space(back, s, B, H, W, C, d, 0);
    CHECK(memcmp(back, x, n * sizeof(float)) == 0, "batch_to_space is not the inverse of space_to_batch");
    printf("ok - space_to_batch/batch_to_space layout, zero padding and inverse\n");
    free(x); free(s); free(back);
}

/* ---- GRU gates ---- */

static void gates_fwd(fd_case *c)
{
    /* inp: gx, inp2: gh, inp3: h; out2: act */
    wm_gru_gates_forward(c->out, c->out2, c->inp, c->inp2, c->inp3, (size_t)c->B, c->Cout);
}

static void test_gates(void)
{
    const int cells = 7, Ch = 5;
    fd_case c = { gates_fwd, NULL, NULL, 0, cells, 0, 0, 0, Ch, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    size_t ng = (size_t)cells * 3 * Ch, nh = (size_t)cells * Ch;
    c.n_out = nh;
    c.inp = randn(ng, 1.0f);
    c.inp2 = randn(ng, 1.0f);
    c.inp3 = randn(nh, 1.0f);
    c.out = zeros(nh);
    c.out2 = zeros(ng);
    c.g = randn(nh, 1.0f);
    gates_fwd(&c);
    /* one cell by hand: the nn.GRU equations */
    int i = 3, k = 2;
    double r = 1 / (1 + exp(-(c.inp[i * 3 * Ch + k] + c.inp2[i * 3 * Ch + k])));
    double z = 1 / (1 + exp(-(c.inp[i * 3 * Ch + Ch + k] + c.inp2[i * 3 * Ch + Ch + k])));
    double nn = tanh(c.inp[i * 3 * Ch + 2 * Ch + k] + r * c.inp2[i * 3 * Ch + 2 * Ch + k]);
    double want = (1 - z) * nn + z * c.inp3[i * Ch + k];
    CHECK(fabs(c.out[i * Ch + k] - want) < 1e-5, "gates: %g, the GRU equations give %g", c.out[i * Ch + k], want);
    float *dgx = zeros(ng), *dgh = zeros(ng), *dh = zeros(nh);
    wm_gru_gates_backward(dgx, dgh, dh, c.g, c.out2, c.inp2, c.inp3, (size_t)cells, Ch);
    check_grad("gru gates dgx", &c, c.inp, ng, dgx);
    check_grad("gru gates dgh", &c, c.inp2, ng, dgh);
    check_grad("gru gates dh", &c, c.inp3, nh, dh);
    free(dgx); free(dgh); free(dh); free(c.inp); free(c.inp2); free(c.inp3); free(c.out); free(c.out2); free(c.g);
}

/* ---- Gaussian head and NLL: L = nll(head(y, x), target) ---- */

static float *head_target;

static void head_fwd(fd_case *c)
{
    /* inp: y [cells, 2C], inp2: x [cells, C]; out: mean | logvar; the
     * "loss" is the NLL, so g is all ones over one value */
    size_t n = (size_t)c->B * c->Cout;
    wm_gauss_head_forward(c->out2, c->out2 + n, c->inp, c->inp2, (size_t)c->B, c->Cout, -3.0f);
    c->out[0] = (float)wm_gauss_nll_forward(c->out2, c->out2 + n, head_target, n, NULL);
}

static void test_head(void)
{
    const int cells = 6, C = 3;
    size_t n = (size_t)cells * C;
    fd_case c = { head_fwd, NULL, NULL, 1, cells, 0, 0, 0, C, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    c.inp = randn(2 * n, 1.0f);
    c.inp2 = randn(n, 1.0f);
    c.inp[C + 1] = -8.0f;   /* a log variance deep in the floor's soft region */
    head_target = randn(n, 1.0f);
    c.out = zeros(1);
    c.out2 = zeros(2 * n);
    float one = 1.0f;
    c.g = &one;
    head_fwd(&c);
    for (size_t i = 0; i < n; i++) CHECK(c.out2[n + i] > -3.0f, "logvar %g under its floor", c.out2[n + i]);
    float *dm = zeros(n), *dl = zeros(n), *dy = zeros(2 * n), *dx = zeros(n);
    wm_gauss_nll_backward(dm, dl, c.out2, c.out2 + n, head_target, n, 1.0f, 0.0f);
    wm_gauss_head_backward(dy, dx, dm, dl, c.inp, (size_t)cells, C, -3.0f);
    check_grad("gaussian head + nll dy", &c, c.inp, 2 * n, dy);
    check_grad("gaussian head + nll dx", &c, c.inp2, n, dx);
    /* beta-NLL: the same gradient, each value weighted by exp(beta logvar) */
    head_fwd(&c);   /* check_grad left the last perturbed values */
    float *dm2 = zeros(n), *dl2 = zeros(n);
    wm_gauss_nll_backward(dm2, dl2, c.out2, c.out2 + n, head_target, n, 1.0f, 0.5f);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double w = exp(0.5 * c.out2[n + i]);
        worst = fmax(worst, fabs(dm2[i] - w * dm[i]) + fabs(dl2[i] - w * dl[i]));
    }
    CHECK(worst < 1e-5, "beta-NLL gradient is not the weighted NLL gradient (%g)", worst);
    printf("ok - beta-NLL weights each value's gradient by exp(beta logvar)\n");
    free(dm); free(dl); free(dy); free(dx); free(dm2); free(dl2);
    free(c.inp); free(c.inp2); free(c.out); free(c.out2); free(head_target);
}

/* ---- the model ---- */

static wm_dynamics *tiny_model_with(int C, int hidden, int dilation, int objects, uint64_t seed)
{
    wm_error err = { 0 };
    wm_dynamics_config cfg = { C, hidden, dilation, objects };
    wm_dynamics *d = wm_dynamics_new(&cfg, seed, &err);
    CHECK(d != NULL, "new: %s", err.msg);
    if (!d) exit(1);
    /* a non-trivial normalisation, so it is part of what is checked */
    float mean[64], std[64];
    for (int c = 0; c < C; c++) mean[c] = 0.1f * (float)c - 0.2f, std[c] = 0.5f + 0.25f * (float)c;
    wm_dynamics_set_norm(d, mean, std);
    /* livelier weights than the init, so every path carries gradient */
    wm_params *p = wm_dynamics_params(d);
    for (size_t i = 0; i < p->total; i++) p->data[i] += 0.05f * (float)wm_rng_normal(&rng);
    return d;
}

static wm_dynamics *tiny_model(int C, int hidden, int dilation, uint64_t seed)
{
    return tiny_model_with(C, hidden, dilation, 0, seed);
}

/* inputs: the window is fed other latents than its own (as in training on
 * the model's predictions) */
static void test_train_pass_gradient(int dilation, int with_inputs)
{
    wm_error err = { 0 };
    const int C = 4, Ch = 4, T = 3, B = 2, H = 5, W = 6;
    wm_dynamics *d = tiny_model(C, Ch, dilation, 7);
    size_t nseq = (size_t)(T + 1) * B * H * W * C, nstate = (size_t)2 * B * H * W * Ch;
    float *seq = randn(nseq, 0.7f), *state0 = randn(nstate, 0.3f), *state = zeros(nstate);
    float *prev = randn((size_t)B * H * W * C, 0.7f);   /* the window continues a clip */
    float *inputs = with_inputs ? randn((size_t)T * B * H * W * C, 0.7f) : NULL;
    wm_dynamics_loss loss;
    memcpy(state, state0, nstate * sizeof(float));
    CHECK(wm_dynamics_train_pass(d, seq, inputs, NULL, prev, T, B, H, W, state, 0.0f, &loss, &err) == WM_OK, "pass: %s", err.msg);
    wm_params *p = wm_dynamics_params(d);
    float *grad = malloc(p->total * sizeof(float));
    memcpy(grad, p->grad, p->total * sizeof(float));
    double worst = 0;
    int checked = 0;
    for (int e = 0; e < p->count; e++) {
        float *v = wm_params_value(p, e);
        double worst_e = 0, gmax = 0;
        for (size_t k = 0; k < p->items[e].numel; k++) gmax = fmax(gmax, fabs(grad[p->items[e].offset + k]));
        for (size_t k = 0; k < p->items[e].numel; k += 1 + p->items[e].numel / 5) {
            float keep = v[k];
            /* the loss is a mean over 720 values in float: rounding swamps
             * a small step, curvature a large one, so the better of two
             * steps counts, with a floor of 1e-2 of the tensor's largest
             * gradient and of the float rounding of the loss difference,
             * about 1e-6 of the loss over the step (a wrong gradient is off
             * at both) */
            double ana = grad[p->items[e].offset + k], num = 0, rel = 1e9;
            for (int pass = 0; pass < 2; pass++) {
                const float eps = pass ? 3e-2f : 1e-1f;
                wm_dynamics_loss lp, lm;
                v[k] = keep + eps;
                memcpy(state, state0, nstate * sizeof(float));
                wm_dynamics_train_pass(d, seq, inputs, NULL, prev, T, B, H, W, state, 0.0f, &lp, &err);
                v[k] = keep - eps;
                memcpy(state, state0, nstate * sizeof(float));
                wm_dynamics_train_pass(d, seq, inputs, NULL, prev, T, B, H, W, state, 0.0f, &lm, &err);
                v[k] = keep;
                double n_eps = (lp.nll - lm.nll) / (2.0 * eps);
                double r = fabs(n_eps - ana) / (1e-2 * gmax + 1e-6 * fabs(lp.nll) / eps + fabs(n_eps));
                if (r < rel) rel = r, num = n_eps;
            }
            worst_e = fmax(worst_e, rel);
            CHECK(rel < 5e-2, "dilation %d: d loss / d %s[%zu]: analytic %g, numeric %g", dilation,
                  p->items[e].name, k, ana, num);
            checked++;
        }
        worst = fmax(worst, worst_e);
    }
    printf("ok - training pass through %d steps, dilation %d, state carried in%s: %d parameter gradients match "
           "finite differences (worst relative error %.2g; nll %.4f, mse %.4f, no-change mse %.4f)\n",
           T, dilation, with_inputs ? ", fed other inputs" : "", checked, worst, loss.nll, loss.mse, loss.mse_copy);
    free(grad); free(seq); free(state0); free(state); free(prev); free(inputs);
    wm_dynamics_free(&d);
}

/* A pass whose lanes run in parts on threads gives what one thread gives:
 * gradients, loss, carried state and predictions, with rollout lanes. */
static void test_train_parts(void)
{
    wm_error err = { 0 };
    const int C = 16, Ch = 16, T = 4, B = 5, H = 7, W = 6;   /* 16 channels: the AVX-512 Winograd too */
    wm_dynamics *d = tiny_model(C, Ch, 2, 11);
    const size_t lane = (size_t)H * W * C, nstate = (size_t)2 * B * H * W * Ch;
    float *seq = randn((size_t)(T + 1) * B * lane, 0.7f), *inputs = randn((size_t)T * B * lane, 0.7f);
    float *prev = randn((size_t)B * lane, 0.7f), *state0 = randn(nstate, 0.3f), *state[2];
    const int fed_from[5] = { 4, 1, 2, 4, 3 };
    float *grad[2], *mean[2], *lv[2];
    wm_dynamics_loss loss[2];
    wm_params *p = wm_dynamics_params(d);
    for (int r = 0; r < 2; r++) {
        wm_nn_set_threads(r ? 3 : 1);
        state[r] = zeros(nstate);
        memcpy(state[r], state0, nstate * sizeof(float));
        CHECK(wm_dynamics_train_pass(d, seq, inputs, fed_from, prev, T, B, H, W, state[r], 1.0f, &loss[r], &err) == WM_OK,
              "pass: %s", err.msg);
        grad[r] = zeros(p->total);
        memcpy(grad[r], p->grad, p->total * sizeof(float));
        const float *m, *l;
        wm_dynamics_last(d, &m, &l);
        mean[r] = zeros((size_t)T * B * lane);
        lv[r] = zeros((size_t)T * B * lane);
        memcpy(mean[r], m, (size_t)T * B * lane * sizeof(float));
        memcpy(lv[r], l, (size_t)T * B * lane * sizeof(float));
    }
    wm_nn_set_threads(1);
    double eg = max_rel(grad[1], grad[0], p->total), es = max_rel(state[1], state[0], nstate);
    double em = max_rel(mean[1], mean[0], (size_t)T * B * lane), el = max_rel(lv[1], lv[0], (size_t)T * B * lane);
    double en = fabs(loss[1].nll - loss[0].nll) / fabs(loss[0].nll);
    CHECK(eg < 1e-5 && es < 1e-6 && em < 1e-6 && el < 1e-6 && en < 1e-6,
          "3 threads against 1: gradients %g, state %g, means %g, log variances %g, nll %g", eg, es, em, el, en);
    printf("ok - a pass in 3 parts on threads matches one thread (gradients %.1g, state %.1g, means %.1g, nll %.1g)\n",
           eg, es, em, en);
    for (int r = 0; r < 2; r++) free(state[r]), free(grad[r]), free(mean[r]), free(lv[r]);
    free(seq); free(inputs); free(prev); free(state0);
    wm_dynamics_free(&d);
}

/* --change-weight: on a clip that does not change it changes nothing (every
 * weight is 1); on one that changes it changes the gradient */
static void test_change_weight(void)
{
    wm_error err = { 0 };
    const int C = 8, Ch = 16, T = 3, B = 2, H = 5, W = 6;
    wm_dynamics *d = tiny_model(C, Ch, 2, 13);
    const size_t lane = (size_t)H * W * C, frame = (size_t)B * lane;
    wm_params *p = wm_dynamics_params(d);
    float *still = randn(frame * (T + 1), 0.7f), *moving = randn(frame * (T + 1), 0.7f), *g[2];
    for (int t = 1; t <= T; t++) memcpy(still + t * frame, still, frame * sizeof(float));
    for (int clip = 0; clip < 2; clip++) {
        wm_dynamics_loss loss;
        for (int r = 0; r < 2; r++) {
            wm_dynamics_set_change_weight(d, r ? 4.0f : 0.0f);
            CHECK(wm_dynamics_train_pass(d, clip ? moving : still, NULL, NULL, NULL, T, B, H, W, NULL, 1.0f, &loss,
                                         &err) == WM_OK, "pass: %s", err.msg);
            g[r] = zeros(p->total);
            memcpy(g[r], p->grad, p->total * sizeof(float));
        }
        int same = memcmp(g[0], g[1], p->total * sizeof(float)) == 0;
        CHECK(clip ? !same : same, "change weight 4 %s the gradient of a %s clip", same ? "keeps" : "changes",
              clip ? "moving" : "still");
        free(g[0]), free(g[1]);
    }
    wm_dynamics_set_change_weight(d, 0);
    printf("ok - the change weight leaves a still clip's gradient alone and reweighs a moving one's\n");
    free(still); free(moving);
    wm_dynamics_free(&d);
}

/* The objects head (wm-train --objects): the gradient of nll + weight *
 * cross-entropy against finite differences, an unlabelled lane adding
 * nothing, 3 threads as 1, and the head surviving the model file. */
static void test_objects(void)
{
    wm_error err = { 0 };
    const int C = 4, Ch = 8, T = 3, B = 3, H = 5, W = 6, K = WM_DYNAMICS_OBJECT_MAPS;
    const float weight = 0.7f;
    wm_dynamics *d = tiny_model_with(C, Ch, 2, K, 17);
    const size_t lane = (size_t)H * W * C, nmaps = (size_t)(T + 1) * B * H * W * K;
    float *seq = randn((size_t)(T + 1) * B * lane, 0.7f), *maps = zeros(nmaps);
    for (size_t i = 0; i < nmaps; i++) maps[i] = wm_rng_uniform(&rng) < 0.3 ? 1.0f : 0.0f;
    const unsigned char lanes[3] = { 1, 0, 1 };
    wm_params *p = wm_dynamics_params(d);
    wm_dynamics_loss loss, lp, lm;
    wm_dynamics_set_objects(d, maps, lanes, weight);
    CHECK(wm_dynamics_train_pass(d, seq, NULL, NULL, NULL, T, B, H, W, NULL, 0.0f, &loss, &err) == WM_OK, "pass: %s",
          err.msg);
    CHECK(loss.objects > 0.3 && loss.objects < 2.0, "objects loss %g", loss.objects);
    float *grad = zeros(p->total);
    memcpy(grad, p->grad, p->total * sizeof(float));
    double worst = 0;
    int checked = 0;
    for (int e = 0; e < p->count; e++) {
        float *v = wm_params_value(p, e);
        for (size_t k = 0; k < p->items[e].numel; k += 1 + p->items[e].numel / 4) {
            const float keep = v[k], eps = 3e-2f;
            v[k] = keep + eps;
            wm_dynamics_train_pass(d, seq, NULL, NULL, NULL, T, B, H, W, NULL, 0.0f, &lp, &err);
            v[k] = keep - eps;
            wm_dynamics_train_pass(d, seq, NULL, NULL, NULL, T, B, H, W, NULL, 0.0f, &lm, &err);
            v[k] = keep;
            double num = ((lp.nll + weight * lp.objects) - (lm.nll + weight * lm.objects)) / (2.0 * eps);
            double ana = grad[p->items[e].offset + k], r = fabs(num - ana) / (1e-3 + fabs(num));
            worst = fmax(worst, r);
            CHECK(r < 5e-2, "d loss / d %s[%zu]: analytic %g, numeric %g", p->items[e].name, k, ana, num);
            checked++;
        }
    }
    /* the unlabelled lane: its maps change nothing */
    for (size_t i = 0; i < (size_t)H * W * K; i++) maps[((size_t)2 * B + 1) * H * W * K + i] = 1.0f;
    wm_dynamics_train_pass(d, seq, NULL, NULL, NULL, T, B, H, W, NULL, 0.0f, &lp, &err);
    CHECK(memcmp(p->grad, grad, p->total * sizeof(float)) == 0 && lp.objects == loss.objects,
          "an unlabelled lane's maps changed the pass");
    wm_nn_set_threads(3);
    wm_dynamics_train_pass(d, seq, NULL, NULL, NULL, T, B, H, W, NULL, 0.0f, &lp, &err);
    wm_nn_set_threads(1);
    double eg = max_rel(p->grad, grad, p->total);
    CHECK(eg < 1e-5 && fabs(lp.objects - loss.objects) < 1e-6 * loss.objects, "3 threads: gradients %g, loss %g vs %g",
          eg, lp.objects, loss.objects);
    wm_dynamics_set_objects(d, NULL, NULL, 0);
    /* the file keeps the head; inference ignores it */
    char path[] = "/tmp/wm-unit-dyn-objects-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    unlink(path);
    CHECK(wm_dynamics_save(d, path, NULL, 0, &err) == WM_OK, "save: %s", err.msg);
    wm_dynamics *back = wm_dynamics_load(path, &err);
    CHECK(back && wm_dynamics_get_config(back)->objects == K, "load: %s", err.msg);
    if (back) {
        wm_params *q = wm_dynamics_params(back);
        CHECK(q->total == p->total && memcmp(q->data, p->data, p->total * sizeof(float)) == 0, "values differ");
    }
    wm_dynamics_free(&back);
    unlink(path);
    printf("ok - objects head: %d gradients of nll + %.1f x cross-entropy match finite differences (worst %.2g), an "
           "unlabelled lane adds nothing, 3 threads as 1 (%.1g), the file keeps it\n", checked, (double)weight, worst,
           eg);
    free(grad); free(seq); free(maps);
    wm_dynamics_free(&d);
}

/* the inference step, T times from a zero state, against the training
 * pass; lanes stepped together against lanes stepped alone; reset */
static void test_step(void)
{
    wm_error err = { 0 };
    const int C = 8, Ch = 16, T = 4, B = 3, H = 7, W = 9;   /* widths the 16-channel Winograd takes */
    wm_dynamics *d = tiny_model(C, Ch, 2, 9);
    const size_t frame = (size_t)B * H * W * C, one = (size_t)H * W * C;
    float *seq = randn((size_t)(T + 1) * frame, 0.8f);
    wm_dynamics_loss loss;
    CHECK(wm_dynamics_train_pass(d, seq, NULL, NULL, NULL, T, B, H, W, NULL, 0.5f, &loss, &err) == WM_OK, "pass: %s", err.msg);
    const float *tmean, *tlv;
    wm_dynamics_last(d, &tmean, &tlv);
    const float *nm, *ns;
    wm_dynamics_get_norm(d, &nm, &ns);
    wm_dynamics_state *s = wm_dynamics_state_new(d, B, H, W, &err);
    float *mean = zeros(frame), *var = zeros(frame), *want_m = zeros(frame), *want_v = zeros(frame);
    double worst_m = 0, worst_v = 0;
    float *all_mean = zeros((size_t)T * frame), *all_var = zeros((size_t)T * frame);
    for (int t = 0; t < T; t++) {
        wm_dynamics_step(d, s, B, seq + t * frame, mean, var);
        memcpy(all_mean + t * frame, mean, frame * sizeof(float));
        memcpy(all_var + t * frame, var, frame * sizeof(float));
        for (size_t i = 0; i < frame; i++) {
            int c = (int)(i % C);
            want_m[i] = tmean[t * frame + i] * ns[c] + nm[c];
            want_v[i] = expf(tlv[t * frame + i]) * ns[c] * ns[c];
        }
        worst_m = fmax(worst_m, max_rel(mean, want_m, frame));
        worst_v = fmax(worst_v, max_rel(var, want_v, frame));
    }
    CHECK(worst_m < 1e-4 && worst_v < 1e-4, "step against the training pass: mean %g, var %g", worst_m, worst_v);
    printf("ok - inference steps (Winograd) match the training pass over %d steps (mean %.2g, var %.2g)\n", T,
           worst_m, worst_v);

    /* lane 1 alone, in a one-lane state, gives what it gave among three */
    wm_dynamics_state *s1 = wm_dynamics_state_new(d, 1, H, W, &err);
    double worst_l = 0;
    for (int t = 0; t < T; t++) {
        wm_dynamics_step(d, s1, 1, seq + t * frame + one, mean, var);
        worst_l = fmax(worst_l, max_rel(mean, all_mean + t * frame + one, one));
        worst_l = fmax(worst_l, max_rel(var, all_var + t * frame + one, one));
    }
    CHECK(worst_l < 1e-5, "a lane stepped alone differs from the same lane in a batch (%g)", worst_l);
    /* after a reset the first step is again the first step of a clip */
    wm_dynamics_state_reset(s1);
    wm_dynamics_step(d, s1, 1, seq + one, mean, var);
    CHECK(max_rel(mean, all_mean + one, one) < 1e-5, "the state does not reset");
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++) {
        float *h = wm_dynamics_state_hidden(s1, l);
        double norm = 0;
        for (size_t i = 0; i < (size_t)H * W * Ch; i++) norm += fabs(h[i]);
        CHECK(norm > 0, "layer %d has no state after a step", l);
    }
    /* fewer active lanes: the prefix runs, the rest keep their state */
    wm_dynamics_state_reset(s);
    float *h1_before = zeros((size_t)B * H * W * Ch);
    wm_dynamics_step(d, s, B, seq, mean, var);
    memcpy(h1_before, wm_dynamics_state_hidden(s, 1), (size_t)B * H * W * Ch * sizeof(float));
    wm_dynamics_step(d, s, 2, seq + frame, mean, var);
    CHECK(max_rel(mean, all_mean + frame, 2 * one) < 1e-5, "two active lanes of three differ");
    CHECK(memcmp(h1_before + (size_t)2 * H * W * Ch, wm_dynamics_state_hidden(s, 1) + (size_t)2 * H * W * Ch,
                 (size_t)H * W * Ch * sizeof(float)) == 0, "an inactive lane's state changed");
    printf("ok - lanes are independent (%.2g), a reset starts a clip afresh, inactive lanes keep their state\n",
           worst_l);
    free(h1_before);
    wm_dynamics_state_free(&s1);
    wm_dynamics_state_free(&s);
    free(seq); free(mean); free(var); free(want_m); free(want_v); free(all_mean); free(all_var);
    wm_dynamics_free(&d);
}

/* T steps at once (wm_dynamics_run) on two threads, with lanes ending at
 * different steps and the means fed back from step 3 on: the same bytes
 * and the same final state as step by step */
static void test_run(void)
{
    wm_error err = { 0 };
    enum { T = 6, B = 9 };
    const int C = 8, Ch = 16, H = 7, W = 9, feed = 3;   /* 63 cells: groups of 4 lanes, 3 groups */
    const int active[T] = { 9, 9, 7, 7, 2, 1 };
    wm_dynamics *d = tiny_model(C, Ch, 2, 9);
    const size_t frame = (size_t)B * H * W * C, hid = (size_t)B * H * W * Ch;
    float *x = randn((size_t)T * frame, 0.8f);
    float *m1 = zeros((size_t)T * frame), *v1 = zeros((size_t)T * frame);
    float *m2 = zeros((size_t)T * frame), *v2 = zeros((size_t)T * frame);
    wm_nn_set_threads(2);
    wm_dynamics_state *run = wm_dynamics_state_new(d, B, H, W, &err), *step = wm_dynamics_state_new(d, B, H, W, &err);
    CHECK(run && step, "state: %s", err.msg);
    wm_dynamics_run(d, run, T, active, B, x, feed, m1, v1);
    for (int t = 0; t < T; t++)
        wm_dynamics_step(d, step, active[t], t < feed ? x + t * frame : m2 + (t - 1) * frame, m2 + t * frame,
                         v2 + t * frame);
    CHECK(memcmp(m1, m2, (size_t)T * frame * sizeof(float)) == 0, "run and steps differ in the means");
    CHECK(memcmp(v1, v2, (size_t)T * frame * sizeof(float)) == 0, "run and steps differ in the variances");
    for (int l = 0; l < WM_DYNAMICS_LAYERS; l++)
        CHECK(memcmp(wm_dynamics_state_hidden(run, l), wm_dynamics_state_hidden(step, l), hid * sizeof(float)) == 0,
              "run and steps leave layer %d in different states", l);
    printf("ok - %d steps at once on 2 threads = step by step, bytes and state (lanes ending early, fed back)\n", T);
    wm_nn_set_threads(1);
    wm_dynamics_state_free(&run);
    wm_dynamics_state_free(&step);
    free(x); free(m1); free(v1); free(m2); free(v2);
    wm_dynamics_free(&d);
}

static void test_file(void)
{
    wm_error err = { 0 };
    char path[] = "/tmp/unit_dynamics_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    unlink(path);
    /* a file with a (fake) tokenizer part first */
    float tok[3] = { 1, 2, 3 };
    uint64_t shape[1] = { 3 };
    wm_safetensors_entry e = { "tokenizer.w", WM_ST_F32, 1, { 3 }, tok };
    (void)shape;
    const char *meta[] = { "tokenizer.arch", "fake" };
    CHECK(wm_safetensors_write(path, &e, 1, meta, 1, &err) == WM_OK, "write: %s", err.msg);
    wm_dynamics *d = tiny_model(8, 16, 2, 3);
    const char *extra[] = { "train.steps", "5" };
    CHECK(wm_dynamics_save(d, path, extra, 1, &err) == WM_OK, "save: %s", err.msg);
    wm_safetensors *st = wm_safetensors_open(path, &err);
    CHECK(st && wm_safetensors_find(st, "tokenizer.w") && wm_safetensors_meta(st, "tokenizer.arch") &&
          wm_safetensors_meta(st, "dynamics.train.steps"), "the tokenizer part or the metadata was not kept");
    wm_dynamics *r = st ? wm_dynamics_from_file(st, path, &err) : NULL;
    CHECK(r != NULL, "load: %s", err.msg);
    if (r) {
        wm_params *a = wm_dynamics_params(d), *b = wm_dynamics_params(r);
        CHECK(a->total == b->total && !memcmp(a->data, b->data, a->total * sizeof(float)), "weights changed");
        const float *m1, *s1, *m2, *s2;
        wm_dynamics_get_norm(d, &m1, &s1);
        wm_dynamics_get_norm(r, &m2, &s2);
        CHECK(!memcmp(m1, m2, 8 * sizeof(float)) && !memcmp(s1, s2, 8 * sizeof(float)), "normalisation changed");
        CHECK(wm_dynamics_tokenizer_matches(r) == 1, "the tokenizer fingerprint does not match");
    }
    wm_safetensors_close(&st);
    wm_dynamics_free(&r);
    /* another tokenizer in the file: the fingerprint says so */
    wm_safetensors_builder *b = wm_safetensors_builder_new(&err);
    st = wm_safetensors_open(path, &err);
    tok[1] = 5;
    wm_safetensors_builder_add_file(b, st, NULL, &err);
    wm_safetensors_builder_add(b, NULL, "tokenizer.w", WM_ST_F32, 1, e.shape, tok, &err);
    CHECK(wm_safetensors_builder_write(b, path, &err) == WM_OK, "rewrite: %s", err.msg);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&st);
    r = wm_dynamics_load(path, &err);
    CHECK(r && wm_dynamics_tokenizer_matches(r) == 0, "a changed tokenizer is not noticed");
    wm_dynamics_free(&r);
    /* a file without a dynamics part is refused with a clear message */
    CHECK(wm_safetensors_write(path, &e, 1, meta, 1, &err) == WM_OK, "write: %s", err.msg);
    r = wm_dynamics_load(path, &err);
    CHECK(!r && err.code == WM_E_INPUT && strstr(err.msg, "holds no dynamics model"), "got: %s", err.msg);
    printf("ok - model file: dynamics saved beside the tokenizer, loaded back, tokenizer fingerprint checked\n");
    unlink(path);
    wm_dynamics_free(&d);
}

static void test_learns(void)
{
    /* a blob moving one cell right per step on a 8x8 grid: a few hundred
     * Adam steps must beat "no change" by a wide margin */
    wm_error err = { 0 };
    const int C = 4, T = 6, B = 4, H = 8, W = 8;
    wm_dynamics_config cfg = { C, 8, 2, 0 };
    wm_dynamics *d = wm_dynamics_new(&cfg, 1, &err);
    wm_params *p = wm_dynamics_params(d);
    wm_adam adam;
    wm_adam_init(&adam, p->total, &err);
    size_t frame = (size_t)B * H * W * C;
    float *seq = zeros((size_t)(T + 1) * frame);
    wm_dynamics_loss first = { 0 }, last = { 0 };
    for (int step = 0; step < 300; step++) {
        memset(seq, 0, (size_t)(T + 1) * frame * sizeof(float));
        for (int b = 0; b < B; b++) {
            int y = (int)wm_rng_below(&rng, H), x0 = (int)wm_rng_below(&rng, 2);
            for (int t = 0; t <= T; t++)
                for (int c = 0; c < C; c++)
                    seq[(size_t)t * frame + (((size_t)b * H + y) * W + x0 + t) * C + c] = 1.0f + 0.25f * (float)c;
        }
        wm_dynamics_loss l;
        wm_dynamics_train_pass(d, seq, NULL, NULL, NULL, T, B, H, W, NULL, 0.5f, &l, &err);
        wm_clip_grad_norm(p->grad, p->total, 1.0);
        wm_adam_update(&adam, p->data, p->grad, 1e-2f);
        if (step == 0) first = l;
        last = l;
    }
    CHECK(last.mse < 0.25 * last.mse_copy && last.nll < first.nll - 1.0,
          "300 steps on a moving blob: mse %g (no change %g), nll %g -> %g", last.mse, last.mse_copy, first.nll,
          last.nll);
    printf("ok - learns a moving blob in 300 steps: mse %.4f against %.4f for no change; nll %.3f -> %.3f\n",
           last.mse, last.mse_copy, first.nll, last.nll);
    free(seq);
    wm_adam_free(&adam);
    wm_dynamics_free(&d);
}

/* ---- oracle for tests/test_dynamics_torch.py ---- */

static int oracle(const char *model, const char *input, const char *out)
{
    wm_error err = { 0 };
    wm_nn_set_threads(1);
    wm_dynamics *d = wm_dynamics_load(model, &err);
    wm_safetensors *in = d ? wm_safetensors_open(input, &err) : NULL;
    const wm_safetensors_tensor *qt = in ? wm_safetensors_find(in, "seq") : NULL;
    const wm_safetensors_tensor *st0 = in ? wm_safetensors_find(in, "state") : NULL;
    const char *beta_text = in ? wm_safetensors_meta(in, "beta") : NULL, *lr_text = in ? wm_safetensors_meta(in, "lr") : NULL;
    if (!d || !in || !qt || !st0 || qt->rank != 5 || !beta_text || !lr_text) {
        fprintf(stderr, "oracle: %s\n", err.msg[0] ? err.msg : "INPUT needs seq, state and metadata beta, lr");
        return 2;
    }
    const int T = (int)qt->shape[0] - 1, B = (int)qt->shape[1], H = (int)qt->shape[2], W = (int)qt->shape[3];
    const int C = (int)qt->shape[4], Ch = wm_dynamics_get_config(d)->hidden;
    size_t frame = (size_t)B * H * W * C, nstate = (size_t)WM_DYNAMICS_LAYERS * B * H * W * Ch;
    float *seq = malloc(qt->numel * sizeof(float)), *state = malloc(nstate * sizeof(float));
    wm_safetensors_read_f32(qt, seq, qt->numel, &err);
    wm_safetensors_read_f32(st0, state, nstate, &err);
    wm_dynamics_loss loss;
    wm_params *p = wm_dynamics_params(d);
    wm_adam adam;
    const wm_safetensors_tensor *pt = wm_safetensors_find(in, "prev");
    float *prev = NULL;
    if (pt) {
        prev = malloc(frame * sizeof(float));
        wm_safetensors_read_f32(pt, prev, frame, &err);
    }
    const wm_safetensors_tensor *it = wm_safetensors_find(in, "inputs");
    float *inputs = NULL;
    if (it) {
        inputs = malloc((size_t)T * frame * sizeof(float));
        wm_safetensors_read_f32(it, inputs, (uint64_t)T * frame, &err);
    }
    const wm_safetensors_tensor *ft = wm_safetensors_find(in, "fed_from");
    int fed_from[64];
    if (ft && (ft->dtype != WM_ST_I32 || ft->numel != (uint64_t)B || B > 64)) {
        fprintf(stderr, "oracle: fed_from must be I32 [B]\n");
        return 2;
    }
    for (int b = 0; ft && b < B; b++) memcpy(&fed_from[b], ft->data + 4 * b, 4);
    if (wm_dynamics_train_pass(d, seq, inputs, ft ? fed_from : NULL, prev, T, B, H, W, state, (float)atof(beta_text),
                               &loss, &err) ||
        wm_adam_init(&adam, p->total, &err)) {
        fprintf(stderr, "oracle: %s\n", err.msg);
        return 3;
    }
    const float *mean, *lv;
    wm_dynamics_last(d, &mean, &lv);
    float *step_mean = malloc((size_t)T * frame * sizeof(float)), *step_var = malloc((size_t)T * frame * sizeof(float));
    wm_dynamics_state *s = wm_dynamics_state_new(d, B, H, W, &err);
    for (int t = 0; t < T; t++) wm_dynamics_step(d, s, B, seq + t * frame, step_mean + t * frame, step_var + t * frame);
    wm_dynamics_state_free(&s);
    float nll = (float)loss.nll;
    float *grad = malloc(p->total * sizeof(float));
    memcpy(grad, p->grad, p->total * sizeof(float));
    wm_adam_update(&adam, p->data, p->grad, (float)atof(lr_text));
    wm_safetensors_builder *b = wm_safetensors_builder_new(&err);
    uint64_t ms[5] = { (uint64_t)T, (uint64_t)B, (uint64_t)H, (uint64_t)W, (uint64_t)C };
    uint64_t ss[5] = { WM_DYNAMICS_LAYERS, (uint64_t)B, (uint64_t)H, (uint64_t)W, (uint64_t)Ch };
    wm_safetensors_builder_add(b, NULL, "mean", WM_ST_F32, 5, ms, mean, &err);
    wm_safetensors_builder_add(b, NULL, "logvar", WM_ST_F32, 5, ms, lv, &err);
    wm_safetensors_builder_add(b, NULL, "step.mean", WM_ST_F32, 5, ms, step_mean, &err);
    wm_safetensors_builder_add(b, NULL, "step.var", WM_ST_F32, 5, ms, step_var, &err);
    wm_safetensors_builder_add(b, NULL, "state", WM_ST_F32, 5, ss, state, &err);
    wm_safetensors_builder_add(b, NULL, "nll", WM_ST_F32, 0, NULL, &nll, &err);
    wm_params_add_to(p, grad, "grad.", b, &err);
    wm_params_add_to(p, p->data, "updated.", b, &err);
    wm_status st = wm_safetensors_builder_write(b, out, &err);
    if (st) fprintf(stderr, "oracle: %s\n", err.msg);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&in);
    wm_dynamics_free(&d);
    wm_adam_free(&adam);
    free(seq); free(state); free(step_mean); free(step_var); free(grad); free(prev); free(inputs);
    return st ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "oracle") == 0) return oracle(argv[2], argv[3], argv[4]);
    wm_rng_seed(&rng, 1);
    wm_nn_set_threads(1);
    test_space_to_batch();
    test_dconv(1, 5, 6, 3, 4, 1, 1);
    test_dconv(2, 5, 7, 3, 5, 2, 1);     /* odd sizes: padded sub-grids */
    test_dconv(1, 7, 6, 2, 3, 3, 1);
    test_dconv(2, 16, 16, 8, 12, 2, 0);  /* Winograd on the sub-grids */
    test_dconv(3, 9, 11, 4, 8, 2, 0);
    test_dconv(3, 16, 16, 8, 96, 1, 0);  /* the model's widths: 16-channel Winograd under AVX-512 */
    test_dconv(2, 13, 11, 32, 96, 2, 0);
    test_dconv(70, 5, 7, 32, 16, 1, 0);  /* 140 tiles: more than one round of 64 */
    test_dconv(2, 10, 7, 16, 32, 3, 0);  /* dilation 3 on sub-grids of unequal sizes, in place */
    test_gates();
    test_head();
    test_train_pass_gradient(1, 0);
    test_train_pass_gradient(2, 1);
    test_train_parts();
    test_change_weight();
    test_objects();
    test_step();
    test_run();
    test_file();
    test_learns();
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
