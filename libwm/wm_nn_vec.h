/* wm_nn_vec.h: the vectorised inner loops of wm_nn.c, written once for a
 * vector of VEC_N floats and included by wm_nn.c twice: 4 lanes (SSE2, every
 * x86-64) and 8 lanes compiled for AVX2, chosen at run time.  Not a module
 * header: it has no include guard on purpose.
 *
 * The includer defines VEC_N (lanes), VEC_FN(name) (a suffixed name) and
 * VEC_TARGET (a target attribute or nothing), and has WINO_* and
 * wino_chunk_tiles() in scope. */

typedef float VEC_FN(vf) __attribute__((vector_size(VEC_N * 4)));
typedef int32_t VEC_FN(vi) __attribute__((vector_size(VEC_N * 4)));
#define VF VEC_FN(vf)
#define VI VEC_FN(vi)

VEC_TARGET static inline VF VEC_FN(load)(const float *p) { VF v; memcpy(&v, p, sizeof v); return v; }
VEC_TARGET static inline void VEC_FN(store)(float *p, VF v) { memcpy(p, &v, sizeof v); }
VEC_TARGET static inline VF VEC_FN(splat)(float x) { return (VF){ 0 } + x; }

VEC_TARGET static inline VF VEC_FN(select)(VI mask, VF a, VF b)
{
    VI ai, bi, r;
    VF f;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    r = (mask & ai) | (~mask & bi);
    memcpy(&f, &r, sizeof f);
    return f;
}

/* exp on [-87, 88] (clamped), relative error below 3e-7: x = n ln2 + r,
 * |r| <= ln2/2, exp(r) by its Taylor polynomial, 2^n by the exponent bits */
VEC_TARGET static inline VF VEC_FN(exp)(VF x)
{
    const VF lo = VEC_FN(splat)(-87.0f), hi = VEC_FN(splat)(88.0f);
    x = VEC_FN(select)(x < lo, lo, x);
    x = VEC_FN(select)(x > hi, hi, x);
    VF n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    VF r = x - n * 0.693145752f - n * 1.42860677e-6f;
    VF p = r * (1.0f / 720) + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    VI e = (__builtin_convertvector(n, VI) + 127) << 23;
    VF s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

/* Each loop stops at the last whole vector and returns where it stopped;
 * the caller finishes the tail in scalar code. */

VEC_TARGET static size_t VEC_FN(silu_forward)(float *out, const float *inp, size_t n)
{
    size_t i = 0;
    for (; i + VEC_N <= n; i += VEC_N) {
        VF x = VEC_FN(load)(inp + i);
        VEC_FN(store)(out + i, x / (1.0f + VEC_FN(exp)(-x)));
    }
    return i;
}

VEC_TARGET static size_t VEC_FN(silu_backward)(float *dinp, const float *dout, const float *inp, size_t n)
{
    size_t i = 0;
    for (; i + VEC_N <= n; i += VEC_N) {
        VF x = VEC_FN(load)(inp + i);
        VF s = 1.0f / (1.0f + VEC_FN(exp)(-x));
        VEC_FN(store)(dinp + i, VEC_FN(load)(dinp + i) + VEC_FN(load)(dout + i) * s * (1.0f + x * (1.0f - s)));
    }
    return i;
}

VEC_TARGET static size_t VEC_FN(sigmoid_forward)(float *out, const float *inp, size_t n)
{
    size_t i = 0;
    for (; i + VEC_N <= n; i += VEC_N) VEC_FN(store)(out + i, 1.0f / (1.0f + VEC_FN(exp)(-VEC_FN(load)(inp + i))));
    return i;
}

VEC_TARGET static size_t VEC_FN(tanh_forward)(float *out, const float *inp, size_t n)
{
    /* tanh(x) = 1 - 2 / (1 + exp(2x)) saturates cleanly but cancels near
     * 0, where its Taylor series takes over */
    size_t i = 0;
    for (; i + VEC_N <= n; i += VEC_N) {
        VF x = VEC_FN(load)(inp + i), x2 = x * x;
        VF big = 1.0f - 2.0f / (1.0f + VEC_FN(exp)(2.0f * x));
        VF small = x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 + x2 * (62.0f / 2835)))));
        VEC_FN(store)(out + i, VEC_FN(select)(x2 < 0.0625f, small, big));
    }
    return i;
}

/* Winograd F(4x4, 3x3) transforms: BT and AT applied to 6 values */
VEC_TARGET static inline void VEC_FN(wino_bt)(VF *o, const VF *d)
{
    o[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    o[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    o[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    o[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
    o[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    o[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

VEC_TARGET static inline void VEC_FN(wino_at)(VF *o, const VF *m)
{
    VF a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    o[0] = m[0] + a + c;
    o[1] = b + 2.0f * d;
    o[2] = a + 4.0f * c;
    o[3] = b + 8.0f * d + m[5];
}

/* The convolution (Cin, Cout multiples of VEC_N).  The transforms work on
 * whole channel vectors in two passes (columns, then rows) through a small
 * tile buffer, so each inner loop is a straight run of vector arithmetic;
 * accumulate adds the result to out (bias ignored) instead of storing it. */
VEC_TARGET static void VEC_FN(winograd_conv)(float *out, const float *inp, const float *U, const float *bias, int B,
                                             int H, int W, int Cin, int Cout, float *scratch, int accumulate)
{
    const int tiles_y = (H + WINO_M - 1) / WINO_M, tiles_x = (W + WINO_M - 1) / WINO_M;
    const long per_image = (long)tiles_y * tiles_x, T = (long)B * per_image;
    const int tc = wino_chunk_tiles();
    const size_t cmax = (size_t)(Cin > Cout ? Cin : Cout);
    /* tile-major, so each tile's transform reads and writes one contiguous
     * block; the GEMM of point p reads its rows P*Cin floats apart */
    float *V = scratch;                                   /* [tc][P][Cin] */
    float *Mt = V + (size_t)tc * WINO_P * Cin;            /* [tc][P][Cout] */
    float *tmp = Mt + (size_t)tc * WINO_P * Cout;         /* [A][A][cmax] */
    float *zeros = tmp + (size_t)WINO_P * cmax;           /* [Cin] */
    memset(zeros, 0, (size_t)Cin * sizeof(float));
    for (long t0 = 0; t0 < T; t0 += tc) {
        int nt = (int)(T - t0 < tc ? T - t0 : tc);
        for (int t = 0; t < nt; t++) {
            long tile = t0 + t;
            int b = (int)(tile / per_image), r = (int)(tile % per_image);
            int y0 = (r / tiles_x) * WINO_M - 1, x0 = (r % tiles_x) * WINO_M - 1;
            const float *src[WINO_A][WINO_A];
            for (int i = 0; i < WINO_A; i++)
                for (int j = 0; j < WINO_A; j++) {
                    int y = y0 + i, x = x0 + j;
                    src[i][j] = y >= 0 && y < H && x >= 0 && x < W ? inp + (((size_t)b * H + y) * W + x) * Cin : zeros;
                }
            for (int j = 0; j < WINO_A; j++) {   /* columns: tmp[.][j] = BT d[.][j] */
                const float *s0 = src[0][j], *s1 = src[1][j], *s2 = src[2][j], *s3 = src[3][j], *s4 = src[4][j],
                            *s5 = src[5][j];
                float *o = tmp + (size_t)j * cmax;
                for (int c = 0; c < Cin; c += VEC_N) {
                    VF d[6] = { VEC_FN(load)(s0 + c), VEC_FN(load)(s1 + c), VEC_FN(load)(s2 + c),
                                VEC_FN(load)(s3 + c), VEC_FN(load)(s4 + c), VEC_FN(load)(s5 + c) }, e[6];
                    VEC_FN(wino_bt)(e, d);
                    for (int i = 0; i < WINO_A; i++) VEC_FN(store)(o + (size_t)i * WINO_A * cmax + c, e[i]);
                }
            }
            for (int i = 0; i < WINO_A; i++) {   /* rows: V[i][.] = tmp[i][.] BT^T */
                const float *row = tmp + (size_t)i * WINO_A * cmax;
                float *v = V + ((size_t)t * WINO_P + (size_t)i * WINO_A) * Cin;
                for (int c = 0; c < Cin; c += VEC_N) {
                    VF d[6], e[6];
                    for (int j = 0; j < WINO_A; j++) d[j] = VEC_FN(load)(row + (size_t)j * cmax + c);
                    VEC_FN(wino_bt)(e, d);
                    for (int j = 0; j < WINO_A; j++) VEC_FN(store)(v + (size_t)j * Cin + c, e[j]);
                }
            }
        }
        /* the 36 products: M[p] = V[p] x U[p]^T */
        for (int p = 0; p < WINO_P; p++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nt, Cout, Cin, 1.0f, V + (size_t)p * Cin, WINO_P * Cin,
                        U + (size_t)p * Cout * Cin, Cin, 0.0f, Mt + (size_t)p * Cout, WINO_P * Cout);
        for (int t = 0; t < nt; t++) {
            long tile = t0 + t;
            int b = (int)(tile / per_image), r = (int)(tile % per_image);
            int y0 = (r / tiles_x) * WINO_M, x0 = (r % tiles_x) * WINO_M;
            for (int j = 0; j < WINO_A; j++) {   /* columns: tmp[.][j] = AT M[.][j] */
                const float *m = Mt + ((size_t)t * WINO_P + j) * Cout;
                float *o = tmp + (size_t)j * cmax;
                for (int c = 0; c < Cout; c += VEC_N) {
                    VF d[6], e[4];
                    for (int k = 0; k < WINO_A; k++) d[k] = VEC_FN(load)(m + (size_t)k * WINO_A * Cout + c);
                    VEC_FN(wino_at)(e, d);
                    for (int i = 0; i < WINO_M; i++) VEC_FN(store)(o + (size_t)i * WINO_A * cmax + c, e[i]);
                }
            }
            const int nx = W - x0 < WINO_M ? W - x0 : WINO_M;
            for (int i = 0; i < WINO_M && y0 + i < H; i++) {   /* rows: Y[i][.] = tmp[i][.] AT^T + bias */
                const float *row = tmp + (size_t)i * WINO_A * cmax;
                float *o = out + (((size_t)b * H + y0 + i) * W + x0) * Cout;
                for (int c = 0; c < Cout; c += VEC_N) {
                    VF d[6], e[4], bv = bias ? VEC_FN(load)(bias + c) : VEC_FN(splat)(0.0f);
                    for (int j = 0; j < WINO_A; j++) d[j] = VEC_FN(load)(row + (size_t)j * cmax + c);
                    VEC_FN(wino_at)(e, d);
                    if (accumulate)
                        for (int j = 0; j < nx; j++)
                            VEC_FN(store)(o + (size_t)j * Cout + c, VEC_FN(load)(o + (size_t)j * Cout + c) + e[j]);
                    else
                        for (int j = 0; j < nx; j++) VEC_FN(store)(o + (size_t)j * Cout + c, e[j] + bv);
                }
            }
        }
    }
}

#undef VF
#undef VI
