#include "wm_nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- threads ---- */

static int nn_threads = 1;

void wm_nn_set_threads(int n)
{
    nn_threads = n < 1 ? 1 : n;
    openblas_set_num_threads(nn_threads);
}

int wm_nn_threads(void) { return nn_threads; }

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

size_t wm_conv2d_scratch_floats(int Cin, int K)
{
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

/* ---- elementwise: a 4-wide exp in GCC vector extensions ----
 * glibc's expf does not vectorize at -O2; this one runs SiLU about three
 * times faster (relative error below 3e-7 on [-87, 88]). */

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_load(const float *p) { v4f v; memcpy(&v, p, sizeof v); return v; }
static inline void v4_store(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4_splat(float x) { return (v4f){ x, x, x, x }; }

static inline v4f v4_select(v4i mask, v4f a, v4f b)
{
    v4i ai, bi, r;
    v4f f;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    r = (mask & ai) | (~mask & bi);
    memcpy(&f, &r, sizeof f);
    return f;
}

static inline v4f v4_exp(v4f x)
{
    const v4f lo = v4_splat(-87.0f), hi = v4_splat(88.0f);
    x = v4_select(x < lo, lo, x);
    x = v4_select(x > hi, hi, x);
    /* x = n ln2 + r, |r| <= ln2/2; exp(r) by its Taylor polynomial */
    v4f n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    v4f r = x - n * 0.693145752f - n * 1.42860677e-6f;
    v4f p = r * (1.0f / 720) + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v4i e = (__builtin_convertvector(n, v4i) + 127) << 23;
    v4f s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void wm_silu_forward(float *out, const float *inp, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f x = v4_load(inp + i);
        v4_store(out + i, x / (1.0f + v4_exp(-x)));
    }
    for (; i < n; i++) out[i] = inp[i] * sigmoidf(inp[i]);
}

void wm_silu_backward(float *dinp, const float *dout, const float *inp, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f x = v4_load(inp + i);
        v4f s = 1.0f / (1.0f + v4_exp(-x));
        v4_store(dinp + i, v4_load(dinp + i) + v4_load(dout + i) * s * (1.0f + x * (1.0f - s)));
    }
    for (; i < n; i++) {
        float s = sigmoidf(inp[i]);
        dinp[i] += dout[i] * s * (1.0f + inp[i] * (1.0f - s));
    }
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

void wm_sigmoid_forward(float *out, const float *inp, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) v4_store(out + i, 1.0f / (1.0f + v4_exp(-v4_load(inp + i))));
    for (; i < n; i++) out[i] = sigmoidf(inp[i]);
}

void wm_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void wm_tanh_forward(float *out, const float *inp, size_t n)
{
    /* tanh(x) = 1 - 2 / (1 + exp(2x)) saturates cleanly but cancels near
     * 0, where its Taylor series takes over */
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f x = v4_load(inp + i), x2 = x * x;
        v4f big = 1.0f - 2.0f / (1.0f + v4_exp(2.0f * x));
        v4f small = x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 + x2 * (62.0f / 2835)))));
        v4_store(out + i, v4_select(x2 < 0.0625f, small, big));
    }
    for (; i < n; i++) out[i] = tanhf(inp[i]);
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

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void wm_rng_seed(wm_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t wm_rng_u64(wm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double wm_rng_uniform(wm_rng *r) { return (double)(wm_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t wm_rng_below(wm_rng *r, uint64_t n)
{
    /* rejection keeps it exactly uniform */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do x = wm_rng_u64(r);
    while (x >= lim);
    return x % n;
}

double wm_rng_normal(wm_rng *r)
{
    double u1 = wm_rng_uniform(r), u2 = wm_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
