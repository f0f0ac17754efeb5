/* Layers of wm_nn: forward against naive reference code, backward against
 * central finite differences of L = sum(out * g) for a random g, on tiny
 * shapes (some larger than one im2col chunk, to cross chunk edges). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_nn.h"

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

/* One layer under test: forward fills out from the arrays in the context. */
typedef struct layer_case {
    void (*forward)(struct layer_case *lc);
    int B, H, W, Cin, Cout, K, stride, pad, r;
    float *inp, *weight, *bias, *out, *scratch;
    size_t n_out;
} layer_case;

static double loss_of(layer_case *lc, const float *g)
{
    lc->forward(lc);
    double s = 0.0;
    for (size_t i = 0; i < lc->n_out; i++) s += (double)lc->out[i] * g[i];
    return s;
}

/* Compares analytic[i] with the finite difference of L in x[i], on up to
 * 40 indices spread over x. */
static void check_grad(const char *what, layer_case *lc, float *x, size_t n, const float *analytic,
                       const float *g)
{
    const float eps = 1e-2f;
    double worst = 0.0;
    size_t step = n > 40 ? n / 40 : 1;
    for (size_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = loss_of(lc, g);
        x[i] = keep - eps;
        double lm = loss_of(lc, g);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * eps);
        double err = fabs(num - analytic[i]) / (1e-2 + fabs(num));
        if (err > worst) worst = err;
        CHECK(err < 2e-2, "%s[%zu]: analytic %g, numeric %g", what, i, analytic[i], num);
    }
    printf("ok - %s gradient (worst relative error %.2g)\n", what, worst);
}

/* ---- convolution ---- */

static void conv_fwd(layer_case *lc)
{
    wm_conv2d_forward(lc->out, lc->inp, lc->weight, lc->bias, lc->B, lc->H, lc->W, lc->Cin, lc->Cout,
                      lc->K, lc->stride, lc->pad, lc->scratch);
}

static void conv_naive(float *out, const layer_case *lc)
{
    int Ho = wm_conv2d_out_size(lc->H, lc->K, lc->stride, lc->pad);
    int Wo = wm_conv2d_out_size(lc->W, lc->K, lc->stride, lc->pad);
    for (int b = 0; b < lc->B; b++)
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int co = 0; co < lc->Cout; co++) {
                    double s = lc->bias ? lc->bias[co] : 0.0;
                    for (int ky = 0; ky < lc->K; ky++)
                        for (int kx = 0; kx < lc->K; kx++) {
                            int iy = oy * lc->stride - lc->pad + ky, ix = ox * lc->stride - lc->pad + kx;
                            if (iy < 0 || iy >= lc->H || ix < 0 || ix >= lc->W) continue;
                            for (int ci = 0; ci < lc->Cin; ci++)
                                s += (double)lc->weight[((co * lc->K + ky) * lc->K + kx) * lc->Cin + ci] *
                                     lc->inp[(((size_t)b * lc->H + iy) * lc->W + ix) * lc->Cin + ci];
                        }
                    out[(((size_t)b * Ho + oy) * Wo + ox) * lc->Cout + co] = (float)s;
                }
}

static void test_conv(int B, int H, int W, int Cin, int Cout, int K, int stride, int pad, int with_bias, int grads)
{
    layer_case lc = { conv_fwd, B, H, W, Cin, Cout, K, stride, pad, 0, NULL, NULL, NULL, NULL, NULL, 0 };
    int Ho = wm_conv2d_out_size(H, K, stride, pad), Wo = wm_conv2d_out_size(W, K, stride, pad);
    size_t n_in = (size_t)B * H * W * Cin, n_w = (size_t)Cout * K * K * Cin;
    lc.n_out = (size_t)B * Ho * Wo * Cout;
    lc.inp = randn(n_in, 1.0f);
    lc.weight = randn(n_w, 0.3f);
    lc.bias = with_bias ? randn((size_t)Cout, 0.5f) : NULL;
    lc.out = zeros(lc.n_out);
    lc.scratch = zeros(wm_conv2d_scratch_floats(Cin, Cout, K));
    char name[128];
    snprintf(name, sizeof name, "conv2d B%d %dx%d %d->%d K%d s%d p%d%s", B, H, W, Cin, Cout, K, stride, pad,
             with_bias ? "" : " nobias");

    float *ref = zeros(lc.n_out);
    conv_fwd(&lc);
    conv_naive(ref, &lc);
    /* max |ours - naive| / max |naive|: Winograd's error is absolute, near 1e-7 of the scale */
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < lc.n_out; i++) {
        double e = fabs((double)lc.out[i] - ref[i]);
        if (e > worst) worst = e;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    }
    worst /= scale;
    CHECK(worst < 1e-5, "%s forward: relative error %g against the naive convolution", name, worst);
    printf("ok - %s forward (relative error %.2g)\n", name, worst);
    if (K == 3 && stride == 1 && pad == 1 && wm_winograd_supported(Cin, Cout)) {
        float *U = zeros(wm_winograd_weights_floats(Cin, Cout)), *ws = zeros(wm_winograd_scratch_floats(Cin, Cout));
        float *wout = zeros(lc.n_out);
        wm_winograd_weights(U, lc.weight, Cin, Cout);
        wm_conv3x3_winograd_forward(wout, lc.inp, U, lc.bias, B, H, W, Cin, Cout, ws);
        double we = 0.0, wscale = 0.0;
        for (size_t i = 0; i < lc.n_out; i++) {
            if (fabs((double)wout[i] - ref[i]) > we) we = fabs((double)wout[i] - ref[i]);
            if (fabs(ref[i]) > wscale) wscale = fabs(ref[i]);
        }
        we /= wscale;
        CHECK(we < 2e-5, "%s Winograd forward: relative error %g against the naive convolution", name, we);
        printf("ok - %s Winograd F(4x4,3x3) forward (relative error %.2g)\n", name, we);
        /* the input gradient by Winograd on flipped filters, against im2col's */
        float *g2 = randn(lc.n_out, 1.0f), *d1 = zeros(n_in), *d2 = zeros(n_in);
        float *wt = zeros(n_w), *Ut = zeros(wm_winograd_weights_floats(Cout, Cin));
        float *ws2 = zeros(wm_winograd_scratch_floats(Cout, Cin));
        for (size_t i = 0; i < n_in; i++) d2[i] = d1[i] = 0.5f;   /* it accumulates */
        wm_conv2d_backward(d1, NULL, NULL, g2, lc.inp, lc.weight, B, H, W, Cin, Cout, K, 1, 1, lc.scratch);
        wm_conv2d_flip_weights(wt, lc.weight, Cin, Cout, 3);
        wm_winograd_weights(Ut, wt, Cout, Cin);
        wm_conv3x3_winograd_backward_input(d2, g2, Ut, B, H, W, Cin, Cout, ws2);
        double be = 0.0, bscale = 0.0;
        for (size_t i = 0; i < n_in; i++) {
            if (fabs((double)d1[i] - d2[i]) > be) be = fabs((double)d1[i] - d2[i]);
            if (fabs(d1[i]) > bscale) bscale = fabs(d1[i]);
        }
        be /= bscale;
        CHECK(be < 2e-5, "%s Winograd input gradient: relative error %g against im2col", name, be);
        printf("ok - %s Winograd input gradient (relative error %.2g)\n", name, be);
        free(U); free(ws); free(wout); free(g2); free(d1); free(d2); free(wt); free(Ut); free(ws2);
    }

    float *g = randn(lc.n_out, 1.0f);
    float *dinp = zeros(n_in), *dw = zeros(n_w), *db = zeros((size_t)Cout);
    if (!grads) goto done;   /* on large shapes float noise swamps finite differences */
    /* accumulation: a second backward over the same g must double the gradients */
    wm_conv2d_backward(dinp, dw, with_bias ? db : NULL, g, lc.inp, lc.weight, B, H, W, Cin, Cout, K, stride, pad,
                       lc.scratch);
    char what[160];
    snprintf(what, sizeof what, "%s dinp", name);
    check_grad(what, &lc, lc.inp, n_in, dinp, g);
    snprintf(what, sizeof what, "%s dweight", name);
    check_grad(what, &lc, lc.weight, n_w, dw, g);
    if (with_bias) {
        snprintf(what, sizeof what, "%s dbias", name);
        check_grad(what, &lc, lc.bias, (size_t)Cout, db, g);
    }
    float w0 = dw[0];
    wm_conv2d_backward(NULL, dw, NULL, g, lc.inp, lc.weight, B, H, W, Cin, Cout, K, stride, pad, lc.scratch);
    CHECK(fabsf(dw[0] - 2 * w0) <= 1e-4f * (1 + fabsf(w0)), "%s: backward does not accumulate", name);
done:
    free(ref); free(g); free(dinp); free(dw); free(db);
    free(lc.inp); free(lc.weight); free(lc.bias); free(lc.out); free(lc.scratch);
}

/* ---- elementwise ---- */

typedef void (*ew_fwd)(float *, const float *, size_t);
typedef void (*ew_bwd)(float *, const float *, const float *, size_t);
static ew_fwd ew_current;

static void ew_forward(layer_case *lc) { ew_current(lc->out, lc->inp, lc->n_out); }

/* backward_takes_output: sigmoid and tanh differentiate from their output */
static void test_elementwise(const char *name, ew_fwd fwd, ew_bwd bwd, int backward_takes_output,
                             double (*exact)(double))
{
    size_t n = 203;   /* not a multiple of the vector width */
    layer_case lc = { 0 };
    lc.forward = ew_forward;
    lc.n_out = n;
    lc.inp = randn(n, 3.0f);
    lc.inp[0] = 0.0f; lc.inp[1] = 40.0f; lc.inp[2] = -40.0f; lc.inp[3] = 1e-4f;
    lc.out = zeros(n);
    ew_current = fwd;
    fwd(lc.out, lc.inp, n);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double want = exact(lc.inp[i]);
        double e = fabs(lc.out[i] - want) / (1e-6 + fabs(want));
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-5, "%s forward: relative error %g", name, worst);
    printf("ok - %s forward (relative error %.2g)\n", name, worst);
    float *g = randn(n, 1.0f), *dinp = zeros(n);
    bwd(dinp, g, backward_takes_output ? lc.out : lc.inp, n);
    if (fwd == wm_relu_forward)   /* the kink at 0 has no finite difference */
        for (size_t i = 0; i < n; i++)
            if (fabsf(lc.inp[i]) < 0.05f) lc.inp[i] = 0.5f, dinp[i] = g[i];
    char what[64];
    snprintf(what, sizeof what, "%s", name);
    check_grad(what, &lc, lc.inp, n, dinp, g);
    free(g); free(dinp); free(lc.inp); free(lc.out);
}

static double silu_exact(double x) { return x / (1.0 + exp(-x)); }
static double relu_exact(double x) { return x > 0 ? x : 0; }
static double sigmoid_exact(double x) { return 1.0 / (1.0 + exp(-x)); }
static double tanh_exact(double x) { return tanh(x); }

/* ---- space/depth ---- */

static void s2d_fwd(layer_case *lc) { wm_space_to_depth_forward(lc->out, lc->inp, lc->B, lc->H, lc->W, lc->Cin, lc->r); }
static void d2s_fwd(layer_case *lc) { wm_depth_to_space_forward(lc->out, lc->inp, lc->B, lc->H, lc->W, lc->Cin, lc->r); }

static void test_space_depth(void)
{
    const int B = 2, H = 8, W = 12, C = 3, r = 4;
    size_t n = (size_t)B * H * W * C;
    layer_case lc = { s2d_fwd, B, H, W, C, 0, 0, 0, 0, r, NULL, NULL, NULL, NULL, NULL, n };
    lc.inp = randn(n, 1.0f);
    lc.out = zeros(n);
    s2d_fwd(&lc);
    /* PyTorch's pixel_unshuffle order: channel c*r*r + i*r + j */
    int b = 1, y = 1, x = 2, c = 2, i = 3, j = 1;
    float want = lc.inp[(((size_t)b * H + y * r + i) * W + x * r + j) * C + c];
    float got = lc.out[(((size_t)b * (H / r) + y) * (W / r) + x) * C * r * r + c * r * r + i * r + j];
    CHECK(want == got, "space_to_depth puts an element in the wrong place");
    float *back = zeros(n);
    wm_depth_to_space_forward(back, lc.out, B, H / r, W / r, C, r);
    CHECK(memcmp(back, lc.inp, n * sizeof(float)) == 0, "depth_to_space is not the inverse of space_to_depth");
    printf("ok - space_to_depth/depth_to_space layout and inverse\n");

    float *g = randn(n, 1.0f), *dinp = zeros(n);
    wm_space_to_depth_backward(dinp, g, B, H, W, C, r);
    check_grad("space_to_depth", &lc, lc.inp, n, dinp, g);

    layer_case ld = { d2s_fwd, B, H / r, W / r, C, 0, 0, 0, 0, r, NULL, NULL, NULL, NULL, NULL, n };
    ld.inp = randn(n, 1.0f);
    ld.out = zeros(n);
    memset(dinp, 0, n * sizeof(float));
    wm_depth_to_space_backward(dinp, g, B, H / r, W / r, C, r);
    check_grad("depth_to_space", &ld, ld.inp, n, dinp, g);
    free(g); free(dinp); free(back); free(lc.inp); free(lc.out); free(ld.inp); free(ld.out);
}

/* ---- loss and residual ---- */

static void test_mse_add(void)
{
    size_t n = 37;
    float *p = randn(n, 1.0f), *t = randn(n, 1.0f), *d = zeros(n);
    double l = wm_mse_forward(p, t, n);
    wm_mse_backward(d, p, t, n, 1.0f);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + 1e-2f;
        double lp = wm_mse_forward(p, t, n);
        p[i] = keep - 1e-2f;
        double lm = wm_mse_forward(p, t, n);
        p[i] = keep;
        double num = (lp - lm) / 2e-2, e = fabs(num - d[i]) / (1e-3 + fabs(num));
        if (e > worst) worst = e;
    }
    CHECK(l > 0 && worst < 1e-3, "mse gradient: relative error %g", worst);
    printf("ok - mse gradient (worst relative error %.2g)\n", worst);

    float *a = zeros(n), *b = zeros(n);
    wm_add_backward(a, b, t, n);
    wm_add_backward(a, NULL, t, n);
    CHECK(a[3] == 2 * t[3] && b[3] == t[3], "add backward does not accumulate into both inputs");
    printf("ok - add backward\n");
    free(p); free(t); free(d); free(a); free(b);
}

static void test_eigen(void)
{
    enum { N = 7 };
    double a[N * N], m[N * N], vals[N], vecs[N * N];
    for (int i = 0; i < N; i++)   /* symmetric: m = r r^T */
        for (int j = 0; j < N; j++) m[i * N + j] = 0;
    for (int k = 0; k < N; k++) {
        double r[N];
        for (int i = 0; i < N; i++) r[i] = wm_rng_normal(&rng);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) m[i * N + j] += r[i] * r[j];
    }
    memcpy(a, m, sizeof a);
    CHECK(wm_symmetric_eigen(a, N, vals, vecs) == 0, "eigen failed");
    double worst = 0;
    for (int e = 0; e < N; e++) {
        for (int i = 0; i < N; i++) {   /* m v = lambda v */
            double s = 0;
            for (int j = 0; j < N; j++) s += m[i * N + j] * vecs[e * N + j];
            if (fabs(s - vals[e] * vecs[e * N + i]) > worst) worst = fabs(s - vals[e] * vecs[e * N + i]);
        }
        CHECK(e == 0 || vals[e] <= vals[e - 1], "eigenvalues not descending");
    }
    CHECK(worst < 1e-9, "m v != lambda v: %g", worst);
    printf("ok - symmetric eigen-decomposition (residual %.1g)\n", worst);
}

static void test_rng(void)
{
    wm_rng a, b;
    wm_rng_seed(&a, 42);
    wm_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= wm_rng_u64(&a) == wm_rng_u64(&b);
    wm_rng_seed(&a, 42);
    CHECK(same, "the generator is not deterministic");
    double m = 0;
    for (int i = 0; i < 10000; i++) m += wm_rng_uniform(&a);
    CHECK(fabs(m / 10000 - 0.5) < 0.02, "uniform mean %g", m / 10000);
    printf("ok - rng deterministic, uniform mean %.3f\n", m / 10000);
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *narrow = getenv("WM_NN_NO_AVX2");
    printf("# %s vector code\n", narrow && *narrow == '1' ? "4-lane" : "the widest");
    wm_rng_seed(&rng, 1);
    wm_nn_set_threads(1);
    test_conv(1, 5, 6, 3, 4, 3, 1, 1, 1, 1);
    test_conv(2, 6, 7, 4, 8, 3, 1, 1, 1, 1);      /* Winograd-sized channels, with gradients */
    test_conv(2, 7, 5, 2, 3, 3, 2, 1, 1, 1);
    test_conv(2, 6, 6, 4, 5, 4, 2, 1, 0, 1);
    test_conv(2, 4, 3, 5, 3, 1, 1, 0, 1, 1);      /* pointwise: no im2col */
    test_conv(3, 12, 10, 3, 4, 3, 1, 1, 1, 1);    /* 360 rows: crosses a 256-row chunk */
    test_conv(2, 16, 16, 64, 64, 3, 1, 1, 1, 0);  /* Winograd at the tokenizer's width: 32 tiles */
    test_conv(5, 17, 18, 8, 16, 3, 1, 1, 1, 0);   /* 5*5*5 = 125 tiles, ragged edges */
    test_conv(40, 8, 12, 4, 8, 3, 1, 1, 0, 0);    /* 240 tiles cross a 128-tile chunk */
    test_elementwise("silu", wm_silu_forward, wm_silu_backward, 0, silu_exact);
    test_elementwise("relu", wm_relu_forward, wm_relu_backward, 0, relu_exact);
    test_elementwise("sigmoid", wm_sigmoid_forward, wm_sigmoid_backward, 1, sigmoid_exact);
    test_elementwise("tanh", wm_tanh_forward, wm_tanh_backward, 1, tanh_exact);
    test_space_depth();
    test_mse_add();
    test_eigen();
    test_rng();
    if (failures) fprintf(stderr, "%d failures\n", failures);
    if (!failures && !(narrow && *narrow == '1')) {   /* again on the 4-lane code */
        fflush(stdout);
        setenv("WM_NN_NO_AVX2", "1", 1);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 1;
    }
    return failures ? 1 : 0;
}
