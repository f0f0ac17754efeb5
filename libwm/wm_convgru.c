#include "wm_convgru.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "wm_nn.h"
#include "wm_parallel.h"

/* ---- 16-wide vectors ----
 * GCC vector extensions, 16 floats: one AVX-512 register, two AVX2 ones,
 * four SSE ones.  The hot kernels are compiled once per instruction set
 * (a target attribute each) and chosen at run time. */

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

/* The helpers are macros, not inline functions: GCC lowers a function's
 * vector arithmetic for that function's own target before it inlines, so
 * a helper would run as SSE even inside the AVX-512 clone. */
#define V16_LOAD(p) ({ v16f v_; memcpy(&v_, (p), sizeof v_); v_; })
#define V16_STORE(p, v) do { v16f s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
/* exp(x) on [-87, 88] (clamped; casts between vector types reinterpret the
 * bits): x = n ln2 + r, |r| <= ln2/2, exp(r) by its Taylor polynomial */
#define V16_EXP(xin) ({                                                                                     \
    v16f x_ = (xin);                                                                                        \
    v16i lo_ = x_ < -87.0f, hi_ = x_ > 88.0f;                                                               \
    x_ = (v16f)(((v16i)x_ & ~(lo_ | hi_)) | ((v16i)(x_ * 0.0f - 87.0f) & lo_) | ((v16i)(x_ * 0.0f + 88.0f) & hi_)); \
    v16f n_ = (x_ * 1.44269504f + 12582912.0f) - 12582912.0f;                                               \
    v16f r_ = x_ - n_ * 0.693145752f - n_ * 1.42860677e-6f;                                                 \
    v16f p_ = r_ * (1.0f / 720) + 1.0f / 120;                                                               \
    p_ = p_ * r_ + 1.0f / 24;                                                                               \
    p_ = p_ * r_ + 1.0f / 6;                                                                                \
    p_ = p_ * r_ + 0.5f;                                                                                    \
    p_ = p_ * r_ + 1.0f;                                                                                    \
    p_ = p_ * r_ + 1.0f;                                                                                    \
    p_ * (v16f)((__builtin_convertvector(n_, v16i) + 127) << 23);                                           \
})


/* ---- space-to-batch ---- */

int wm_s2b_size(int n, int d) { return (n + d - 1) / d; }

void wm_space_to_batch(float *out, const float *inp, int B, int H, int W, int C, int d)
{
    const int Hs = wm_s2b_size(H, d), Ws = wm_s2b_size(W, d);
    const size_t cb = (size_t)C * sizeof(float);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                float *o = out + (size_t)((b * d + i) * d + j) * Hs * Ws * C;
                for (int ys = 0; ys < Hs; ys++)
                    for (int xs = 0; xs < Ws; xs++, o += C) {
                        int y = ys * d + i, x = xs * d + j;
                        if (y < H && x < W) memcpy(o, inp + (((size_t)b * H + y) * W + x) * C, cb);
                        else memset(o, 0, cb);
                    }
            }
}

void wm_batch_to_space(float *out, const float *inp, int B, int H, int W, int C, int d, int accumulate)
{
    const int Hs = wm_s2b_size(H, d), Ws = wm_s2b_size(W, d);
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *s = inp + (((size_t)((b * d + y % d) * d + x % d) * Hs + y / d) * Ws + x / d) * C;
                float *o = out + (((size_t)b * H + y) * W + x) * C;
                if (accumulate)
                    for (int c = 0; c < C; c++) o[c] += s[c];
                else
                    memcpy(o, s, (size_t)C * sizeof(float));
            }
}

/* ---- dilated 3x3 convolution ---- */

static size_t s2b_floats(int B, int H, int W, int C, int d)
{
    return (size_t)B * d * d * wm_s2b_size(H, d) * wm_s2b_size(W, d) * C;
}

size_t wm_dconv3x3_scratch_floats(int B, int H, int W, int Cin, int Cout, int d)
{
    size_t conv = wm_conv2d_scratch_floats(Cin, Cout, 3);
    if (d == 1) return conv;
    /* forward: inp and out rearranged; backward: inp, dout and dinp */
    return conv + 2 * s2b_floats(B, H, W, Cin, d) + s2b_floats(B, H, W, Cout, d);
}

void wm_dconv3x3_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int H, int W,
                         int Cin, int Cout, int d, float *scratch)
{
    if (d == 1) {
        wm_conv2d_forward(out, inp, weight, bias, B, H, W, Cin, Cout, 3, 1, 1, scratch);
        return;
    }
    const int Hs = wm_s2b_size(H, d), Ws = wm_s2b_size(W, d);
    float *xs = scratch, *ys = xs + s2b_floats(B, H, W, Cin, d), *conv = ys + s2b_floats(B, H, W, Cout, d);
    wm_space_to_batch(xs, inp, B, H, W, Cin, d);
    wm_conv2d_forward(ys, xs, weight, bias, B * d * d, Hs, Ws, Cin, Cout, 3, 1, 1, conv);
    wm_batch_to_space(out, ys, B, H, W, Cout, d, 0);
}

void wm_dconv3x3_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int B, int H, int W, int Cin, int Cout, int d, float *scratch)
{
    if (d == 1) {
        wm_conv2d_backward(dinp, dweight, dbias, dout, inp, weight, B, H, W, Cin, Cout, 3, 1, 1, scratch);
        return;
    }
    const int Hs = wm_s2b_size(H, d), Ws = wm_s2b_size(W, d);
    const size_t nin = s2b_floats(B, H, W, Cin, d);
    float *xs = scratch, *dxs = xs + nin, *dys = dxs + nin, *conv = dys + s2b_floats(B, H, W, Cout, d);
    if (dweight) wm_space_to_batch(xs, inp, B, H, W, Cin, d);
    /* outputs at padded positions do not exist: zero gradient there */
    wm_space_to_batch(dys, dout, B, H, W, Cout, d);
    if (dinp) memset(dxs, 0, nin * sizeof(float));
    wm_conv2d_backward(dinp ? dxs : NULL, dweight, dbias, dys, xs, weight, B * d * d, Hs, Ws, Cin, Cout, 3, 1, 1,
                       conv);
    if (dinp) wm_batch_to_space(dinp, dxs, B, H, W, Cin, d, 1);
}

/* ---- Winograd F(4x4, 3x3) sixteen channels at a time ----
 * wm_nn's Winograd (Lavin & Gray 2016) redone for this model's shapes on
 * CPUs with AVX-512: the tile transforms on 16-channel vectors, and the 36
 * products per tile by a small FMA kernel instead of 36 BLAS calls, whose
 * packing costs more than the arithmetic when the inner dimension is 32.
 * The filters are wm_nn's U, stored [36][Cin][Cout] so a product row is a
 * run of Cout/16 vectors.  Channel counts: Cin a multiple of 8, Cout of 16;
 * anything else (or no AVX-512) runs wm_nn's.  Y = AT [U . (BT d B)] A on
 * 6x6 tiles giving 4x4 outputs. */

#define W16_CHUNK 32   /* tiles transformed per round */
#define W16_MAX_THREADS 8

#define W16_BT(o, d) do {                                                                                     \
        (o)[0] = 4.0f * (d)[0] - 5.0f * (d)[2] + (d)[4];                                                             \
        (o)[1] = -4.0f * ((d)[1] + (d)[2]) + (d)[3] + (d)[4];                                                          \
        (o)[2] = 4.0f * ((d)[1] - (d)[2]) - (d)[3] + (d)[4];                                                           \
        (o)[3] = 2.0f * ((d)[3] - (d)[1]) - (d)[2] + (d)[4];                                                           \
        (o)[4] = 2.0f * ((d)[1] - (d)[3]) - (d)[2] + (d)[4];                                                           \
        (o)[5] = 4.0f * (d)[1] - 5.0f * (d)[3] + (d)[5];                                                             \
    } while (0)

#define W16_AT(o, m) do {                                                                                     \
        v16f a_ = (m)[1] + (m)[2], b_ = (m)[1] - (m)[2], c_ = (m)[3] + (m)[4], d_ = (m)[3] - (m)[4];                          \
        (o)[0] = (m)[0] + a_ + c_;                                                                                \
        (o)[1] = b_ + 2.0f * d_;                                                                                \
        (o)[2] = a_ + 4.0f * c_;                                                                                \
        (o)[3] = b_ + 8.0f * d_ + (m)[5];                                                                         \
    } while (0)

/* 16 or 8 floats (the rest zero) and back, in fixed sizes the compiler turns into one move */
#define V16_LOAD_N(p, n) ({ v16f v_ = { 0 }; if ((n) == 16) memcpy(&v_, (p), 64); else memcpy(&v_, (p), 32); v_; })
#define V16_STORE_N(p, v, n) do { v16f s_ = (v); if ((n) == 16) memcpy((p), &s_, 64); else memcpy((p), &s_, 32); } while (0)

static int wino16_usable(int Cin, int Cout)
{
#if defined(__x86_64__) || defined(__i386__)
    static int avx512 = -1;
    if (avx512 < 0) {
        __builtin_cpu_init();
        avx512 = __builtin_cpu_supports("avx512f") != 0;
    }
    return avx512 && Cin % 8 == 0 && Cout % 16 == 0 && Cout <= 1024;
#else
    (void)Cin, (void)Cout;
    return 0;
#endif
}

/* one thread's V, M and zeros */
static size_t wino16_scratch_floats(int Cin, int Cout)
{
    return (size_t)36 * W16_CHUNK * (Cin + Cout) + (size_t)Cin;
}

/* room for the most threads wino16_conv runs, whatever wm_nn_threads()
 * says later (untouched pages of it cost no memory) */
static size_t wino16_scratch_all(int Cin, int Cout)
{
    return (size_t)W16_MAX_THREADS * wino16_scratch_floats(Cin, Cout);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* M[t][Cout] = V[t][Cin] Ut[Cin][Cout] for nt rows, NB vectors of 16
 * outputs at a time (from column o) and R rows at a time, so each load of U feeds R FMAs:
 * R x NB accumulators, NB vectors of U and a broadcast fill the 32
 * registers (NB 6: R 4; narrower: up to 8 rows). */
#define W16_GEMM(NB, R)                                                                                       \
    __attribute__((target("avx512f"))) static void w16_gemm##NB(float *M, size_t m_stride, const float *V,   \
                                                                size_t v_stride, const float *Ut, int nt,     \
                                                                int Cin, int Cout, int o)                     \
    {                                                                                                         \
        int t = 0;                                                                                            \
        for (; t + (R) <= nt; t += (R)) {                                                                     \
            __m512 acc[R][NB];                                                                                \
            _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++)                                             \
                _Pragma("GCC unroll 8") for (int j = 0; j < (NB); j++) acc[r][j] = _mm512_setzero_ps();       \
            const float *v = V + (size_t)t * v_stride, *u = Ut + o;                                           \
            for (int k = 0; k < Cin; k++, u += Cout) {                                                        \
                __m512 w[NB];                                                                                 \
                _Pragma("GCC unroll 8") for (int j = 0; j < (NB); j++) w[j] = _mm512_loadu_ps(u + 16 * j);    \
                _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) {                                       \
                    __m512 a = _mm512_set1_ps(v[(size_t)r * v_stride + k]);                                   \
                    _Pragma("GCC unroll 8") for (int j = 0; j < (NB); j++)                                    \
                        acc[r][j] = _mm512_fmadd_ps(a, w[j], acc[r][j]);                                      \
                }                                                                                             \
            }                                                                                                 \
            _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++)                                             \
                _Pragma("GCC unroll 8") for (int j = 0; j < (NB); j++)                                        \
                    _mm512_storeu_ps(M + (size_t)(t + r) * m_stride + o + 16 * j, acc[r][j]);                 \
        }                                                                                                     \
        for (; t < nt; t++) {                                                                                 \
            __m512 acc[NB];                                                                                   \
            _Pragma("GCC unroll 8") for (int j = 0; j < (NB); j++) acc[j] = _mm512_setzero_ps();                \
            const float *v = V + (size_t)t * v_stride, *u = Ut + o;                                           \
            for (int k = 0; k < Cin; k++, u += Cout) {                                                        \
                __m512 a = _mm512_set1_ps(v[k]);                                                              \
                _Pragma("GCC unroll 8") for (int j = 0; j < (NB); j++)                                          \
                    acc[j] = _mm512_fmadd_ps(a, _mm512_loadu_ps(u + 16 * j), acc[j]);                         \
            }                                                                                                 \
            _Pragma("GCC unroll 8") for (int j = 0; j < (NB); j++)                                              \
                _mm512_storeu_ps(M + (size_t)t * m_stride + o + 16 * j, acc[j]);                              \
        }                                                                                                     \
    }
W16_GEMM(1, 8)
W16_GEMM(2, 8)
W16_GEMM(3, 6)
W16_GEMM(4, 4)
W16_GEMM(5, 4)
W16_GEMM(6, 4)

__attribute__((target("avx512f")))
static void w16_gemm(float *M, size_t m_stride, const float *V, size_t v_stride, const float *Ut, int nt, int Cin,
                     int Cout)
{
    static void (*const fn[7])(float *, size_t, const float *, size_t, const float *, int, int, int, int) = {
        NULL, w16_gemm1, w16_gemm2, w16_gemm3, w16_gemm4, w16_gemm5, w16_gemm6 };
    for (int o = 0; o < Cout;) {
        int nb = (Cout - o) / 16 > 6 ? 6 : (Cout - o) / 16;
        fn[nb](M, m_stride, V, v_stride, Ut, nt, Cin, Cout, o);
        o += 16 * nb;
    }
}

/* Where a tile sits: the tiles run over the d*d interleaved sub-grids of
 * each image (wm_space_to_batch's), read and written in place, so a
 * dilation costs no copy. */
typedef struct w16_grid { int H, W, d, Hs, Ws, tiles_x; long per_image; } w16_grid;
typedef struct w16_tile { int b, oy, ox, y0, x0, ny, nx; } w16_tile;

static w16_grid w16_grid_of(int H, int W, int d)
{
    w16_grid g = { H, W, d, wm_s2b_size(H, d), wm_s2b_size(W, d), 0, 0 };
    g.tiles_x = (g.Ws + 3) / 4;
    g.per_image = (long)((g.Hs + 3) / 4) * g.tiles_x;
    return g;
}

/* tile number -> image, sub-grid, first output (sub-grid coordinates) and
 * how many of its 4x4 outputs exist on the grid */
static w16_tile w16_tile_at(const w16_grid *g, long tile)
{
    const int sub = (int)(tile / g->per_image), r = (int)(tile % g->per_image), d = g->d;
    w16_tile t = { sub / (d * d), sub / d % d, sub % d, (r / g->tiles_x) * 4, (r % g->tiles_x) * 4, 0, 0 };
    const int hy = (g->H - t.oy + d - 1) / d, wx = (g->W - t.ox + d - 1) / d;   /* this sub-grid's size */
    t.ny = hy - t.y0 < 4 ? hy - t.y0 : 4;
    t.nx = wx - t.x0 < 4 ? wx - t.x0 : 4;
    return t;
}

/* the output cell (i, j) of a tile in inp/out[B, H, W, C] */
static size_t w16_cell(const w16_grid *g, const w16_tile *t, int i, int j)
{
    return ((size_t)t->b * g->H + (size_t)(t->y0 + i) * g->d + t->oy) * g->W + (size_t)(t->x0 + j) * g->d + t->ox;
}

/* V[36][Cin] = BT d B of the tile's 6x6 input window, 16 channels at a time */
__attribute__((target("avx512f")))
static void w16_input_tile(float *V, const float *inp, const w16_grid *g, const w16_tile *t, int Cin,
                           const float *zeros)
{
    const float *src[6][6];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            const int ys = t->y0 - 1 + i, xs = t->x0 - 1 + j, y = ys * g->d + t->oy, x = xs * g->d + t->ox;
            src[i][j] = ys >= 0 && ys < g->Hs && xs >= 0 && xs < g->Ws && y < g->H && x < g->W
                            ? inp + (((size_t)t->b * g->H + y) * g->W + x) * Cin : zeros;
        }
    for (int c = 0; c < Cin; c += 16) {
        const int n = Cin - c >= 16 ? 16 : 8;
        v16f col[6][6];
        for (int j = 0; j < 6; j++) {   /* columns: col[.][j] = BT d[.][j] */
            v16f in[6], e[6];
            for (int i = 0; i < 6; i++) in[i] = V16_LOAD_N(src[i][j] + c, n);
            W16_BT(e, in);
            for (int i = 0; i < 6; i++) col[i][j] = e[i];
        }
        for (int i = 0; i < 6; i++) {   /* rows: V[i][.] = col[i][.] BT^T */
            v16f e[6];
            W16_BT(e, col[i]);
            for (int j = 0; j < 6; j++) V16_STORE_N(V + (size_t)(i * 6 + j) * Cin + c, e[j], n);
        }
    }
}

/* Y[4][4] = AT M A for the 16 channels at c of a tile's M[36][ldm] */
#define W16_OUTPUT(Y, M, ldm, c) do {                                                                         \
        v16f rows_[4][6];                                                                                     \
        for (int j_ = 0; j_ < 6; j_++) {   /* columns: rows[.][j] = AT M[.][j] */                             \
            v16f m_[6], e_[4];                                                                                \
            for (int i_ = 0; i_ < 6; i_++) m_[i_] = V16_LOAD((M) + (size_t)(i_ * 6 + j_) * (ldm) + (c));      \
            W16_AT(e_, m_);                                                                                   \
            for (int i_ = 0; i_ < 4; i_++) rows_[i_][j_] = e_[i_];                                            \
        }                                                                                                     \
        for (int i_ = 0; i_ < 4; i_++) W16_AT((Y)[i_], rows_[i_]);   /* rows: Y[i][.] = rows[i][.] AT^T */    \
    } while (0)

/* One convolution's arguments, shared by the threads that run it. */
typedef struct w16_job {
    float *out;
    const float *inp, *Ut, *bias;
    w16_grid g;
    int Cin, Cout, accumulate;
    long t_begin, t_end;   /* this thread's tiles */
    float *scratch;        /* this thread's V, M and zeros */
} w16_job;

/* Transforms, products and inverse transforms, one round of tiles at a
 * time, so V and M stay in L2. */
__attribute__((target("avx512f")))
static void wino16_tiles(const w16_job *jb)
{
    const w16_grid g = jb->g;
    const int Cin = jb->Cin, Cout = jb->Cout, d = g.d, accumulate = jb->accumulate;
    const float *inp = jb->inp, *Ut = jb->Ut, *bias = jb->bias;
    float *out = jb->out;
    /* V[tile][36][Cin] and M[tile][36][Cout]: a tile's transform touches one block */
    float *V = jb->scratch, *M = V + (size_t)36 * W16_CHUNK * Cin, *zeros = M + (size_t)36 * W16_CHUNK * Cout;
    memset(zeros, 0, (size_t)Cin * sizeof(float));
    for (long t0 = jb->t_begin; t0 < jb->t_end; t0 += W16_CHUNK) {
        const int nt = (int)(jb->t_end - t0 < W16_CHUNK ? jb->t_end - t0 : W16_CHUNK);
        for (int t = 0; t < nt; t++) {
            const w16_tile tl = w16_tile_at(&g, t0 + t);
            w16_input_tile(V + (size_t)t * 36 * Cin, inp, &g, &tl, Cin, zeros);
        }
        for (int p = 0; p < 36; p++)   /* the 36 products, each U[p] staying in L1 across the round */
            w16_gemm(M + (size_t)p * Cout, 36 * (size_t)Cout, V + (size_t)p * Cin, 36 * (size_t)Cin,
                     Ut + (size_t)p * Cin * Cout, nt, Cin, Cout);
        for (int t = 0; t < nt; t++) {
            const w16_tile tl = w16_tile_at(&g, t0 + t);
            const float *Mt = M + (size_t)t * 36 * Cout;
            for (int c = 0; c < Cout; c += 16) {
                v16f Y[4][4], bv = bias ? V16_LOAD(bias + c) : (v16f){ 0 };
                W16_OUTPUT(Y, Mt, Cout, c);
                for (int i = 0; i < tl.ny; i++) {
                    float *o = out + w16_cell(&g, &tl, i, 0) * Cout + c;
                    for (int j = 0; j < tl.nx; j++) {
                        float *oj = o + (size_t)j * d * Cout;
                        V16_STORE(oj, accumulate ? V16_LOAD(oj) + Y[i][j] + bv : Y[i][j] + bv);
                    }
                }
            }
        }
    }
}

static void *wino16_thread(void *arg)
{
    wino16_tiles(arg);
    return NULL;
}

/* The tiles split between wm_nn_threads() threads (each output tile is
 * written by one). */
static void wino16_conv(float *out, const float *inp, const float *Ut, const float *bias, int B, int H, int W, int Cin,
                        int Cout, int d, int accumulate, float *scratch)
{
    const w16_grid g = w16_grid_of(H, W, d);
    const long T = (long)B * d * d * g.per_image, rounds = (T + W16_CHUNK - 1) / W16_CHUNK;
    int n = wm_nn_threads();
    if (n > W16_MAX_THREADS) n = W16_MAX_THREADS;
    if (n > rounds / 2) n = (int)(rounds / 2);   /* at least two rounds a thread */
    if (n < 1) n = 1;
    w16_job jobs[W16_MAX_THREADS];
    for (int k = 0; k < n; k++) {
        jobs[k] = (w16_job){ out, inp, Ut, bias, g, Cin, Cout, accumulate, rounds * k / n * W16_CHUNK,
                             rounds * (k + 1) / n * W16_CHUNK, scratch + (size_t)k * wino16_scratch_floats(Cin, Cout) };
        if (jobs[k].t_end > T) jobs[k].t_end = T;
    }
    wm_parallel_run(wino16_thread, jobs, sizeof jobs[0], n);
}

#else
static void wino16_conv(float *out, const float *inp, const float *Ut, const float *bias, int B, int H, int W, int Cin,
                        int Cout, int d, int accumulate, float *scratch)
{
    (void)out, (void)inp, (void)Ut, (void)bias, (void)B, (void)H, (void)W, (void)Cin, (void)Cout, (void)d,
        (void)accumulate, (void)scratch;
}
#endif

size_t wm_dconv3x3_winograd_weights_floats(int Cin, int Cout) { return wm_winograd_weights_floats(Cin, Cout); }

void wm_dconv3x3_winograd_weights(float *U, const float *weight, int Cin, int Cout, float *scratch)
{
    if (!wino16_usable(Cin, Cout)) {
        wm_winograd_weights(U, weight, Cin, Cout);
        return;
    }
    wm_winograd_weights(scratch, weight, Cin, Cout);   /* [36][Cout][Cin] -> [36][Cin][Cout] */
    for (int p = 0; p < 36; p++)
        for (int o = 0; o < Cout; o++)
            for (int i = 0; i < Cin; i++)
                U[((size_t)p * Cin + i) * Cout + o] = scratch[((size_t)p * Cout + o) * Cin + i];
}

static size_t wino_scratch(int Cin, int Cout)
{
    size_t a = wm_winograd_scratch_floats(Cin, Cout), b = wino16_scratch_all(Cin, Cout);
    return a > b ? a : b;
}

/* out (+)= the dilated convolution by Winograd: in place on the sub-grids
 * (16-channel kernel), else wm_nn's Winograd, on the space-to-batch copy
 * when d > 1.  accumulate is only asked with no bias (input gradients),
 * as wm_nn's accumulating form takes none. */
static void dwino(float *out, const float *inp, const float *U, const float *bias, int B, int H, int W, int Cin,
                  int Cout, int d, int accumulate, float *scratch)
{
    if (wino16_usable(Cin, Cout)) {
        wino16_conv(out, inp, U, bias, B, H, W, Cin, Cout, d, accumulate, scratch);
        return;
    }
    if (d == 1) {
        if (accumulate) wm_conv3x3_winograd_backward_input(out, inp, U, B, H, W, Cout, Cin, scratch);
        else wm_conv3x3_winograd_forward(out, inp, U, bias, B, H, W, Cin, Cout, scratch);
        return;
    }
    const int Hs = wm_s2b_size(H, d), Ws = wm_s2b_size(W, d);
    float *xs = scratch, *ys = xs + s2b_floats(B, H, W, Cin, d), *wino = ys + s2b_floats(B, H, W, Cout, d);
    wm_space_to_batch(xs, inp, B, H, W, Cin, d);
    wm_conv3x3_winograd_forward(ys, xs, U, bias, B * d * d, Hs, Ws, Cin, Cout, wino);
    wm_batch_to_space(out, ys, B, H, W, Cout, d, accumulate);
}

size_t wm_dconv3x3_winograd_scratch_floats(int B, int H, int W, int Cin, int Cout, int d)
{
    size_t wino = wino_scratch(Cin, Cout);
    if (d == 1) return wino;
    return wino + s2b_floats(B, H, W, Cin, d) + s2b_floats(B, H, W, Cout, d);
}

void wm_dconv3x3_winograd_forward(float *out, const float *inp, const float *U, const float *bias, int B, int H,
                                  int W, int Cin, int Cout, int d, float *scratch)
{
    dwino(out, inp, U, bias, B, H, W, Cin, Cout, d, 0, scratch);
}

/* The input gradient of a stride-1 "same" convolution is the convolution
 * of dout with the filters flipped in space and Cin/Cout swapped; on the
 * d*d sub-grids the same holds, with dout zero where an output does not
 * exist and dinp dropped where an input does not. */
size_t wm_dconv3x3_winograd_flip_scratch_floats(int Cin, int Cout)
{
    return (size_t)9 * Cin * Cout + wm_dconv3x3_winograd_weights_floats(Cout, Cin);
}

void wm_dconv3x3_winograd_flip_weights(float *Ut, const float *weight, int Cin, int Cout, float *scratch)
{
    float *wt = scratch, *tmp = scratch + (size_t)9 * Cin * Cout;
    wm_conv2d_flip_weights(wt, weight, Cin, Cout, 3);   /* [Cin][3][3][Cout]: Cout -> Cin channels */
    wm_dconv3x3_winograd_weights(Ut, wt, Cout, Cin, tmp);
}

size_t wm_dconv3x3_winograd_backward_input_scratch_floats(int B, int H, int W, int Cin, int Cout, int d)
{
    return wm_dconv3x3_winograd_scratch_floats(B, H, W, Cout, Cin, d);
}

void wm_dconv3x3_winograd_backward_input(float *dinp, const float *dout, const float *Ut, int B, int H, int W,
                                         int Cin, int Cout, int d, float *scratch)
{
    dwino(dinp, dout, Ut, NULL, B, H, W, Cout, Cin, d, 1, scratch);
}

/* ---- GRU gates ----
 * The gates are most of a step's arithmetic outside the GEMMs: sigmoid
 * and tanh of 3 x hidden values per cell.  They run 16 channels at a time
 * in GCC vector extensions, compiled for AVX-512, AVX2 and plain x86-64
 * (target_clones picks one at load time), with a polynomial exp (relative
 * error below 2e-7 on [-87, 88]). */

static inline float sigmoid1(float x) { return 1.0f / (1.0f + expf(-x)); }

/* The kernel, instantiated once per instruction set (a target attribute
 * each) and chosen at the first call; GCC's target_clones made a clone
 * four times slower than the same code under target("avx512f"). */
#define GATES_KERNEL(name, target)                                                                             \
    target static void name(float *hout, float *act, const float *gx, const float *gh, const float *h,         \
                            size_t cells, int Ch)                                                              \
    {                                                                                                          \
        const size_t G = 3 * (size_t)Ch;                                                                       \
        for (size_t i = 0; i < cells; i++) {                                                                   \
            const float *a = gx + i * G, *b = gh + i * G, *hp = h + i * (size_t)Ch;                            \
            float *g = act ? act + i * G : NULL, *ho = hout + i * (size_t)Ch;                                  \
            int c = 0;                                                                                         \
            for (; c + 16 <= Ch; c += 16) {                                                                    \
                v16f r = 1.0f / (1.0f + V16_EXP(-(V16_LOAD(a + c) + V16_LOAD(b + c))));                       \
                v16f z = 1.0f / (1.0f + V16_EXP(-(V16_LOAD(a + Ch + c) + V16_LOAD(b + Ch + c))));             \
                /* tanh(x) = 2 sigmoid(2x) - 1: absolute error below 1e-7 */                                   \
                v16f an = V16_LOAD(a + 2 * Ch + c) + r * V16_LOAD(b + 2 * Ch + c);                             \
                v16f nn = 2.0f / (1.0f + V16_EXP(-2.0f * an)) - 1.0f;                                          \
                v16f hv = V16_LOAD(hp + c);                                                                    \
                if (g) {                                                                                       \
                    V16_STORE(g + c, r);                                                                       \
                    V16_STORE(g + Ch + c, z);                                                                  \
                    V16_STORE(g + 2 * Ch + c, nn);                                                             \
                }                                                                                              \
                V16_STORE(ho + c, nn + z * (hv - nn));                                                         \
            }                                                                                                  \
            for (; c < Ch; c++) { /* widths that are not a multiple of 16 */                                   \
                float r = sigmoid1(a[c] + b[c]), z = sigmoid1(a[Ch + c] + b[Ch + c]);                          \
                float nn = 2.0f * sigmoid1(2.0f * (a[2 * Ch + c] + r * b[2 * Ch + c])) - 1.0f;                 \
                if (g) g[c] = r, g[Ch + c] = z, g[2 * Ch + c] = nn;                                            \
                ho[c] = nn + z * (hp[c] - nn);                                                                 \
            }                                                                                                  \
        }                                                                                                      \
    }

GATES_KERNEL(gates_avx512, __attribute__((target("avx512f"))))
GATES_KERNEL(gates_avx2, __attribute__((target("avx2"))))
GATES_KERNEL(gates_generic, )

typedef void (*gates_fn)(float *, float *, const float *, const float *, const float *, size_t, int);

void wm_gru_gates_forward(float *hout, float *act, const float *gx, const float *gh, const float *h, size_t cells,
                          int Ch)
{
    static gates_fn fn;   /* a race here only picks the same function twice */
    if (!fn) {
        __builtin_cpu_init();
        fn = __builtin_cpu_supports("avx512f") ? gates_avx512 : __builtin_cpu_supports("avx2") ? gates_avx2
                                                                                               : gates_generic;
    }
    fn(hout, act, gx, gh, h, cells, Ch);
}

void wm_gru_gates_backward(float *dgx, float *dgh, float *dh, const float *dhout, const float *act, const float *gh,
                           const float *h, size_t cells, int Ch)
{
    const size_t G = 3 * (size_t)Ch;
    for (size_t i = 0; i < cells; i++) {
        const float *g = act + i * G, *b = gh + i * G, *hp = h + i * (size_t)Ch, *dho = dhout + i * (size_t)Ch;
        for (int c = 0; c < Ch; c++) {
            float r = g[c], z = g[Ch + c], n = g[2 * Ch + c], d = dho[c];
            float dn = d * (1.0f - z), dz = d * (hp[c] - n);
            float dan = dn * (1.0f - n * n);                      /* through tanh */
            float dr = dan * b[2 * Ch + c];
            float dar = dr * r * (1.0f - r), daz = dz * z * (1.0f - z);
            if (dgx) {
                float *o = dgx + i * G;
                o[c] += dar;
                o[Ch + c] += daz;
                o[2 * Ch + c] += dan;
            }
            if (dgh) {
                float *o = dgh + i * G;
                o[c] += dar;
                o[Ch + c] += daz;
                o[2 * Ch + c] += dan * r;
            }
            if (dh) dh[i * (size_t)Ch + c] += d * z;
        }
    }
}

/* ---- Gaussian head and likelihood ---- */

static inline float softplusf(float u) { return u > 20.0f ? u : log1pf(expf(u)); }

void wm_gauss_head_forward(float *mean, float *logvar, const float *y, const float *x, size_t cells, int C,
                           float lv_min)
{
    for (size_t i = 0; i < cells; i++) {
        const float *yi = y + i * 2 * (size_t)C, *xi = x + i * (size_t)C;
        float *m = mean + i * (size_t)C, *lv = logvar + i * (size_t)C;
        for (int c = 0; c < C; c++) {
            m[c] = xi[c] + yi[c];
            lv[c] = lv_min + softplusf(yi[C + c] - lv_min);
        }
    }
}

/* Inference: the head straight to latent units, 16 channels at a time.
 * exp(lv_min + softplus(u)) = exp(lv_min) (1 + e^u) needs no log. */
#define HEAD_KERNEL(name, target)                                                                              \
    target static void name(float *mean, float *var, const float *y, const float *xn, size_t cells, int C,     \
                            float lv_min, const float *nmean, const float *nstd)                               \
    {                                                                                                          \
        const float floor_var = expf(lv_min);                                                                  \
        for (size_t i = 0; i < cells; i++) {                                                                   \
            const float *yi = y + i * 2 * (size_t)C, *xi = xn + i * (size_t)C;                                 \
            float *m = mean + i * (size_t)C, *v = var ? var + i * (size_t)C : NULL;                            \
            int c = 0;                                                                                         \
            for (; c + 16 <= C; c += 16) {                                                                     \
                v16f sd = V16_LOAD(nstd + c);                                                                  \
                V16_STORE(m + c, (V16_LOAD(xi + c) + V16_LOAD(yi + c)) * sd + V16_LOAD(nmean + c));            \
                if (v) V16_STORE(v + c, floor_var * (1.0f + V16_EXP(V16_LOAD(yi + C + c) - lv_min)) * sd * sd); \
            }                                                                                                  \
            for (; c < C; c++) {                                                                               \
                float u = yi[C + c] - lv_min;                                                                  \
                m[c] = (xi[c] + yi[c]) * nstd[c] + nmean[c];                                                   \
                if (v) v[c] = floor_var * (1.0f + expf(u < 80.0f ? u : 80.0f)) * nstd[c] * nstd[c];            \
            }                                                                                                  \
        }                                                                                                      \
    }

HEAD_KERNEL(head_avx512, __attribute__((target("avx512f"))))
HEAD_KERNEL(head_avx2, __attribute__((target("avx2"))))
HEAD_KERNEL(head_generic, )

typedef void (*head_fn)(float *, float *, const float *, const float *, size_t, int, float, const float *,
                        const float *);

void wm_gauss_head_infer(float *mean, float *var, const float *y, const float *xn, size_t cells, int C, float lv_min,
                         const float *norm_mean, const float *norm_std)
{
    static head_fn fn;   /* a race here only picks the same function twice */
    if (!fn) {
        __builtin_cpu_init();
        fn = __builtin_cpu_supports("avx512f") ? head_avx512 : __builtin_cpu_supports("avx2") ? head_avx2
                                                                                            : head_generic;
    }
    fn(mean, var, y, xn, cells, C, lv_min, norm_mean, norm_std);
}

void wm_gauss_head_backward(float *dy, float *dx, const float *dmean, const float *dlogvar, const float *y,
                            size_t cells, int C, float lv_min)
{
    for (size_t i = 0; i < cells; i++) {
        const float *yi = y + i * 2 * (size_t)C, *dm = dmean + i * (size_t)C, *dl = dlogvar + i * (size_t)C;
        float *o = dy + i * 2 * (size_t)C;
        for (int c = 0; c < C; c++) {
            float u = yi[C + c] - lv_min;
            o[c] += dm[c];
            o[C + c] += dl[c] / (1.0f + expf(-u));              /* softplus' = sigmoid */
            if (dx) dx[i * (size_t)C + c] += dm[c];
        }
    }
}

#define LOG_2PI 1.8378770664093453

double wm_gauss_nll_forward(const float *mean, const float *logvar, const float *target, size_t n, double *sq_err)
{
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)target[i] - mean[i];
        s += 0.5 * (logvar[i] + e * e * exp(-(double)logvar[i]) + LOG_2PI);
        q += e * e;
    }
    if (sq_err) *sq_err = q;
    return s;
}

void wm_gauss_nll_backward(float *dmean, float *dlogvar, const float *mean, const float *logvar,
                           const float *target, size_t n, float scale, float beta)
{
    for (size_t i = 0; i < n; i++) {
        float e = mean[i] - target[i], iv = expf(-logvar[i]);
        float w = scale * (beta != 0.0f ? expf(beta * logvar[i]) : 1.0f);
        dmean[i] += w * e * iv;
        dlogvar[i] += w * 0.5f * (1.0f - e * e * iv);
    }
}
