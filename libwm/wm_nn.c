#include "wm_nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wm_parallel.h"

/* ---- threads ---- */

static int nn_threads = 1;

void wm_nn_set_threads(int n)
{
    nn_threads = n < 1 ? 1 : n;
    openblas_set_num_threads(nn_threads);
}

int wm_nn_threads(void) { return nn_threads; }

void wm_nn_run_parts(void *(*fn)(void *), void *parts, size_t size, int n, float *const *grads, size_t total)
{
    if (n <= 1) {
        fn(parts);
        return;
    }
    int blas = nn_threads;
    wm_nn_set_threads(1);
    wm_parallel_run(fn, parts, size, n);
    wm_nn_set_threads(blas);
    for (int k = 1; grads && k < n; k++) wm_add_forward(grads[0], grads[0], grads[k], total);
}

/* ---- Winograd F(4x4, 3x3) (Lavin & Gray 2016) ----
 * Y = AT [ (G g G^T) . (BT d BT^T) ] AT^T on 6x6 input tiles giving 4x4
 * output tiles: 36 multiplications per tile and channel pair instead of
 * 144.  The 36 element-wise products over all tiles are 36 GEMMs of
 * [tiles, Cin] x [Cin, Cout].  Channels are contiguous (NHWC), so the
 * transforms run four channels at a time in vector registers. */

#define WINO_M 4
#define WINO_A 6
#define WINO_P (WINO_A * WINO_A)

static int wino_chunk_tiles(void) { return 128 * nn_threads; }

size_t wm_winograd_weights_floats(int Cin, int Cout) { return (size_t)WINO_P * Cout * Cin; }

size_t wm_winograd_scratch_floats(int Cin, int Cout)
{
    size_t tc = (size_t)wino_chunk_tiles(), cmax = (size_t)(Cin > Cout ? Cin : Cout);
    return (size_t)WINO_P * (tc * ((size_t)Cin + Cout) + cmax) + (size_t)Cin;
}

#define VEC_N 4
#define VEC_FN(name) name##_v4
#define VEC_TARGET
#include "wm_nn_vec.h"
#undef VEC_N
#undef VEC_FN
#undef VEC_TARGET

#define VEC_N 8
#define VEC_FN(name) name##_v8
#define VEC_TARGET __attribute__((target("avx2")))
#include "wm_nn_vec.h"
#undef VEC_N
#undef VEC_FN
#undef VEC_TARGET

/* AVX2 is checked once; WM_NN_NO_AVX2=1 in the environment forces the
 * 4-lane code (for comparisons). */
static int nn_avx2(void)
{
    static int have = -1;
    if (have < 0) {
        const char *off = getenv("WM_NN_NO_AVX2");
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && !(off && *off == '1');
    }
    return have;
}

/* ---- convolution: im2col over chunks of output rows + one GEMM each ----
 * A chunk of 256 output pixels keeps the im2col block in L2 (256 x 576
 * floats for a 3x3x64 patch is 590 KB) and is a GEMM large enough for
 * OpenBLAS to run at full speed; more threads get proportionally more rows
 * so each has a share. */

static int conv_chunk_rows(void) { return 256 * nn_threads; }

int wm_conv2d_out_size(int in, int K, int stride, int pad)
{
    return (in + 2 * pad - K) / stride + 1;
}

size_t wm_conv2d_scratch_floats(int Cin, int Cout, int K)
{
    (void)Cout;
    return (size_t)conv_chunk_rows() * (size_t)K * (size_t)K * (size_t)Cin;
}

static int conv_is_pointwise(int K, int stride, int pad) { return K == 1 && stride == 1 && pad == 0; }

/* Rows [m0, m0 + rows) of the im2col matrix: row m is the K x K x Cin
 * patch (ky, kx, c order, matching the weight layout) under output pixel m. */
static void im2col_rows(float *col, const float *inp, long m0, int rows, int H, int W, int Cin,
                        int Ho, int Wo, int K, int stride, int pad)
{
    const size_t cbytes = (size_t)Cin * sizeof(float);
    for (int r = 0; r < rows; r++) {
        long m = m0 + r;
        long b = m / ((long)Ho * Wo);
        int rem = (int)(m % ((long)Ho * Wo));
        int oy = rem / Wo, ox = rem % Wo;
        float *dst = col + (size_t)r * K * K * Cin;
        for (int ky = 0; ky < K; ky++) {
            int iy = oy * stride - pad + ky;
            for (int kx = 0; kx < K; kx++, dst += Cin) {
                int ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                    memset(dst, 0, cbytes);
                else
                    memcpy(dst, inp + (((size_t)b * H + iy) * W + ix) * Cin, cbytes);
            }
        }
    }
}

/* The adjoint of im2col_rows: adds each patch back where it came from. */
static void col2im_rows_add(float *dinp, const float *col, long m0, int rows, int H, int W, int Cin,
                            int Ho, int Wo, int K, int stride, int pad)
{
    for (int r = 0; r < rows; r++) {
        long m = m0 + r;
        long b = m / ((long)Ho * Wo);
        int rem = (int)(m % ((long)Ho * Wo));
        int oy = rem / Wo, ox = rem % Wo;
        const float *src = col + (size_t)r * K * K * Cin;
        for (int ky = 0; ky < K; ky++) {
            int iy = oy * stride - pad + ky;
            for (int kx = 0; kx < K; kx++, src += Cin) {
                int ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                float *d = dinp + (((size_t)b * H + iy) * W + ix) * Cin;
                for (int c = 0; c < Cin; c++) d[c] += src[c];
            }
        }
    }
}

void wm_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int B, int H, int W, int Cin, int Cout, int K, int stride, int pad,
                       float *scratch)
{
    const int Ho = wm_conv2d_out_size(H, K, stride, pad), Wo = wm_conv2d_out_size(W, K, stride, pad);
    const long M = (long)B * Ho * Wo;
    const int KKC = K * K * Cin, chunk = conv_chunk_rows();
    const int pointwise = conv_is_pointwise(K, stride, pad);
    for (long m0 = 0; m0 < M; m0 += chunk) {
        int rows = (int)(M - m0 < chunk ? M - m0 : chunk);
        float *o = out + (size_t)m0 * Cout;
        if (bias)
            for (int r = 0; r < rows; r++) memcpy(o + (size_t)r * Cout, bias, (size_t)Cout * sizeof(float));
        const float *a = inp + (size_t)m0 * Cin;
        if (!pointwise) {
            im2col_rows(scratch, inp, m0, rows, H, W, Cin, Ho, Wo, K, stride, pad);
            a = scratch;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, Cout, KKC, 1.0f, a, KKC,
                    weight, KKC, bias ? 1.0f : 0.0f, o, Cout);
    }
}

void wm_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight,
                        int B, int H, int W, int Cin, int Cout, int K, int stride, int pad,
                        float *scratch)
{
    const int Ho = wm_conv2d_out_size(H, K, stride, pad), Wo = wm_conv2d_out_size(W, K, stride, pad);
    const long M = (long)B * Ho * Wo;
    const int KKC = K * K * Cin, chunk = conv_chunk_rows();
    const int pointwise = conv_is_pointwise(K, stride, pad);
    for (long m0 = 0; m0 < M; m0 += chunk) {
        int rows = (int)(M - m0 < chunk ? M - m0 : chunk);
        const float *d = dout + (size_t)m0 * Cout;
        if (dbias)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < Cout; c++) dbias[c] += d[(size_t)r * Cout + c];
        if (dweight) {
            const float *a = inp + (size_t)m0 * Cin;
            if (!pointwise) {
                im2col_rows(scratch, inp, m0, rows, H, W, Cin, Ho, Wo, K, stride, pad);
                a = scratch;
            }
            /* dW[Cout, KKC] += dout^T[Cout, rows] x col[rows, KKC] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cout, KKC, rows, 1.0f, d, Cout,
                        a, KKC, 1.0f, dweight, KKC);
        }
        if (dinp) {
            /* dcol[rows, KKC] = dout[rows, Cout] x W[Cout, KKC], then scattered back */
            if (pointwise) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, KKC, Cout, 1.0f, d, Cout,
                            weight, KKC, 1.0f, dinp + (size_t)m0 * Cin, KKC);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, KKC, Cout, 1.0f, d, Cout,
                            weight, KKC, 0.0f, scratch, KKC);
                col2im_rows_add(dinp, scratch, m0, rows, H, W, Cin, Ho, Wo, K, stride, pad);
            }
        }
    }
}

/* ---- vectorised loops: 4 lanes everywhere, 8 with AVX2 (wm_nn_vec.h) ----
 * glibc's expf does not vectorise at -O2, so SiLU, sigmoid and tanh use
 * their own exp (relative error below 3e-7 on [-87, 88]). */

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void wm_silu_forward(float *out, const float *inp, size_t n)
{
    size_t i = nn_avx2() ? silu_forward_v8(out, inp, n) : silu_forward_v4(out, inp, n);
    for (; i < n; i++) out[i] = inp[i] * sigmoidf(inp[i]);
}

void wm_silu_backward(float *dinp, const float *dout, const float *inp, size_t n)
{
    size_t i = nn_avx2() ? silu_backward_v8(dinp, dout, inp, n) : silu_backward_v4(dinp, dout, inp, n);
    for (; i < n; i++) {
        float s = sigmoidf(inp[i]);
        dinp[i] += dout[i] * s * (1.0f + inp[i] * (1.0f - s));
    }
}

void wm_sigmoid_forward(float *out, const float *inp, size_t n)
{
    size_t i = nn_avx2() ? sigmoid_forward_v8(out, inp, n) : sigmoid_forward_v4(out, inp, n);
    for (; i < n; i++) out[i] = sigmoidf(inp[i]);
}

void wm_tanh_forward(float *out, const float *inp, size_t n)
{
    size_t i = nn_avx2() ? tanh_forward_v8(out, inp, n) : tanh_forward_v4(out, inp, n);
    for (; i < n; i++) out[i] = tanhf(inp[i]);
}

void wm_relu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void wm_relu_backward(float *dinp, const float *dout, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (inp[i] > 0.0f) dinp[i] += dout[i];
}

void wm_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void wm_tanh_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void wm_add_forward(float *out, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void wm_add_backward(float *da, float *db, const float *dout, size_t n)
{
    if (da)
        for (size_t i = 0; i < n; i++) da[i] += dout[i];
    if (db)
        for (size_t i = 0; i < n; i++) db[i] += dout[i];
}

/* ---- space <-> depth ---- */

void wm_space_to_depth_forward(float *out, const float *inp, int B, int H, int W, int C, int r)
{
    const int Ho = H / r, Wo = W / r;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                float *o = out + (((size_t)b * Ho + y) * Wo + x) * C * r * r;
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        const float *p = inp + (((size_t)b * H + y * r + i) * W + x * r + j) * C;
                        for (int c = 0; c < C; c++) o[c * r * r + i * r + j] = p[c];
                    }
            }
}

void wm_space_to_depth_backward(float *dinp, const float *dout, int B, int H, int W, int C, int r)
{
    const int Ho = H / r, Wo = W / r;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                const float *o = dout + (((size_t)b * Ho + y) * Wo + x) * C * r * r;
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        float *p = dinp + (((size_t)b * H + y * r + i) * W + x * r + j) * C;
                        for (int c = 0; c < C; c++) p[c] += o[c * r * r + i * r + j];
                    }
            }
}

void wm_depth_to_space_forward(float *out, const float *inp, int B, int H, int W, int C, int r)
{
    const int Ho = H * r, Wo = W * r;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *p = inp + (((size_t)b * H + y) * W + x) * C * r * r;
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        float *o = out + (((size_t)b * Ho + y * r + i) * Wo + x * r + j) * C;
                        for (int c = 0; c < C; c++) o[c] = p[c * r * r + i * r + j];
                    }
            }
}

void wm_depth_to_space_backward(float *dinp, const float *dout, int B, int H, int W, int C, int r)
{
    const int Ho = H * r, Wo = W * r;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float *p = dinp + (((size_t)b * H + y) * W + x) * C * r * r;
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        const float *o = dout + (((size_t)b * Ho + y * r + i) * Wo + x * r + j) * C;
                        for (int c = 0; c < C; c++) p[c * r * r + i * r + j] += o[c];
                    }
            }
}

/* ---- loss ---- */

double wm_mse_forward(const float *pred, const float *target, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)target[i];
        s += d * d;
    }
    return n ? s / (double)n : 0.0;
}

void wm_mse_backward(float *dpred, const float *pred, const float *target, size_t n, float scale)
{
    const float k = 2.0f * scale / (float)n;
    for (size_t i = 0; i < n; i++) dpred[i] += k * (pred[i] - target[i]);
}

/* ---- symmetric eigen-decomposition (cyclic Jacobi) ---- */

int wm_symmetric_eigen(double *a, int n, double *evals, double *evecs)
{
    int *order = malloc((size_t)n * sizeof *order);
    double *tmp = malloc((size_t)n * n * sizeof *tmp);
    if (!order || !tmp) {
        free(order);
        free(tmp);
        return -1;
    }
    double *v = evecs;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) v[i * n + j] = i == j;   /* columns of v: eigenvectors so far */
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0.0, diag = 0.0;
        for (int i = 0; i < n; i++) {
            diag += a[i * n + i] * a[i * n + i];
            for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
        }
        if (off <= 1e-30 * (diag + 1e-300)) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0.0) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < n; k++) {   /* a = J^T a J */
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = v[k * n + p], vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    /* sort descending and turn the eigenvector columns into rows */
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && a[order[j] * n + order[j]] > a[order[j - 1] * n + order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    memcpy(tmp, v, (size_t)n * n * sizeof *tmp);
    for (int r = 0; r < n; r++) {
        evals[r] = a[order[r] * n + order[r]];
        for (int k = 0; k < n; k++) evecs[r * n + k] = tmp[k * n + order[r]];
    }
    free(order);
    free(tmp);
    return 0;
}

typedef vf_v4 v4f;

/* Up to 4 floats (n < 4: the rest zero) and back. */
static inline v4f v4_load_n(const float *p, int n)
{
    if (n >= 4) return load_v4(p);
    v4f v = splat_v4(0.0f);
    for (int i = 0; i < n; i++) v[i] = p[i];
    return v;
}

static inline void v4_store_n(float *p, v4f v, int n)
{
    if (n >= 4) { store_v4(p, v); return; }
    for (int i = 0; i < n; i++) p[i] = v[i];
}

/* G applied to 3 values: (G g), 6 results */
static inline void wino_g(v4f *o, const v4f *g)
{
    o[0] = 0.25f * g[0];
    o[1] = (-1.0f / 6) * (g[0] + g[1] + g[2]);
    o[2] = (-1.0f / 6) * (g[0] - g[1] + g[2]);
    o[3] = (1.0f / 24) * g[0] + (1.0f / 12) * g[1] + (1.0f / 6) * g[2];
    o[4] = (1.0f / 24) * g[0] - (1.0f / 12) * g[1] + (1.0f / 6) * g[2];
    o[5] = g[2];
}

void wm_winograd_weights(float *U, const float *weight, int Cin, int Cout)
{
    for (int co = 0; co < Cout; co++) {
        const float *g = weight + (size_t)co * 9 * Cin;   /* [ky][kx][ci] */
        for (int c = 0; c < Cin; c += 4) {
            int n = Cin - c;
            v4f k[3][3], t[WINO_A][3], col[3], r[WINO_A];
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) k[y][x] = v4_load_n(g + (y * 3 + x) * Cin + c, n);
            for (int x = 0; x < 3; x++) {   /* columns: t[.][x] = G k[.][x] */
                col[0] = k[0][x]; col[1] = k[1][x]; col[2] = k[2][x];
                wino_g(r, col);
                for (int i = 0; i < WINO_A; i++) t[i][x] = r[i];
            }
            for (int i = 0; i < WINO_A; i++) {   /* rows: U[i][.] = t[i] G^T */
                wino_g(r, t[i]);
                for (int j = 0; j < WINO_A; j++)
                    v4_store_n(U + ((size_t)(i * WINO_A + j) * Cout + co) * Cin + c, r[j], n);
            }
        }
    }
}

int wm_winograd_supported(int Cin, int Cout) { return Cin % 4 == 0 && Cout % 4 == 0; }

/* The 8-lane code needs both channel counts to be multiples of 8. */
static void winograd_conv(float *out, const float *inp, const float *U, const float *bias, int B, int H, int W,
                          int Cin, int Cout, float *scratch, int accumulate)
{
    if (nn_avx2() && Cin % 8 == 0 && Cout % 8 == 0)
        winograd_conv_v8(out, inp, U, bias, B, H, W, Cin, Cout, scratch, accumulate);
    else
        winograd_conv_v4(out, inp, U, bias, B, H, W, Cin, Cout, scratch, accumulate);
}

void wm_conv3x3_winograd_forward(float *out, const float *inp, const float *U, const float *bias, int B, int H,
                                 int W, int Cin, int Cout, float *scratch)
{
    winograd_conv(out, inp, U, bias, B, H, W, Cin, Cout, scratch, 0);
}

void wm_conv2d_flip_weights(float *wt, const float *w, int Cin, int Cout, int K)
{
    for (int co = 0; co < Cout; co++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++)
                for (int ci = 0; ci < Cin; ci++)
                    wt[(((size_t)ci * K + (K - 1 - ky)) * K + (K - 1 - kx)) * Cout + co] =
                        w[(((size_t)co * K + ky) * K + kx) * Cin + ci];
}

void wm_conv3x3_winograd_backward_input(float *dinp, const float *dout, const float *Ut, int B, int H, int W,
                                        int Cin, int Cout, float *scratch)
{
    /* the gradient of a stride-1 "same" convolution is the convolution of
     * dout with the flipped, transposed filters */
    winograd_conv(dinp, dout, Ut, NULL, B, H, W, Cout, Cin, scratch, 1);
}
