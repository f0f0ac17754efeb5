#include "wm_convgru.h"

#include <math.h>
#include <string.h>

#include "wm_nn.h"

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

size_t wm_dconv3x3_winograd_scratch_floats(int B, int H, int W, int Cin, int Cout, int d)
{
    size_t wino = wm_winograd_scratch_floats(Cin, Cout);
    if (d == 1) return wino;
    return wino + s2b_floats(B, H, W, Cin, d) + s2b_floats(B, H, W, Cout, d);
}

void wm_dconv3x3_winograd_forward(float *out, const float *inp, const float *U, const float *bias, int B, int H,
                                  int W, int Cin, int Cout, int d, float *scratch)
{
    if (d == 1) {
        wm_conv3x3_winograd_forward(out, inp, U, bias, B, H, W, Cin, Cout, scratch);
        return;
    }
    const int Hs = wm_s2b_size(H, d), Ws = wm_s2b_size(W, d);
    float *xs = scratch, *ys = xs + s2b_floats(B, H, W, Cin, d), *wino = ys + s2b_floats(B, H, W, Cout, d);
    wm_space_to_batch(xs, inp, B, H, W, Cin, d);
    wm_conv3x3_winograd_forward(ys, xs, U, bias, B * d * d, Hs, Ws, Cin, Cout, wino);
    wm_batch_to_space(out, ys, B, H, W, Cout, d, 0);
}

/* ---- GRU gates ---- */

void wm_gru_gates_forward(float *hout, float *act, const float *gx, const float *gh, const float *h, size_t cells,
                          int Ch)
{
    const size_t G = 3 * (size_t)Ch;
    for (size_t i = 0; i < cells; i++) {
        const float *a = gx + i * G, *b = gh + i * G, *hp = h + i * (size_t)Ch;
        float *g = act + i * G, *ho = hout + i * (size_t)Ch;
        for (int c = 0; c < 2 * Ch; c++) g[c] = a[c] + b[c];
        wm_sigmoid_forward(g, g, 2 * (size_t)Ch);                 /* r | z */
        for (int c = 0; c < Ch; c++) g[2 * Ch + c] = a[2 * Ch + c] + g[c] * b[2 * Ch + c];
        wm_tanh_forward(g + 2 * Ch, g + 2 * Ch, (size_t)Ch);      /* n */
        for (int c = 0; c < Ch; c++) {
            float z = g[Ch + c], n = g[2 * Ch + c];
            ho[c] = n + z * (hp[c] - n);
        }
    }
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
