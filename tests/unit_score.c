/* wm_score's pieces (issue 7): the element surprise is the NLL's excess
 * over its expectation, the frame's is the mean of its k worst cells, k
 * scales with the grid; bad values are counted, not averaged in.  The whole
 * filter is checked against numpy in tests/test_score_oracle.py. */
#include <math.h>
#include <stdio.h>

#include "wm_score.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

int main(void)
{
    /* 2 cells of 2 channels: ((z - mu)^2 / var - 1) / 2 averaged per cell */
    const float z[4] = { 1, 3, 0, 0 }, mu[4] = { 0, 1, 0, 0 }, var[4] = { 1, 4, 1, 1 };
    float out[2];
    CHECK(wm_score_cells(z, mu, var, 2, 2, out) == 0, "no bad values");
    CHECK(fabsf(out[0] - 0.0f) < 1e-6f, "cell 0: (0 + 0) / 2 = 0, got %g", out[0]);
    CHECK(fabsf(out[1] + 0.5f) < 1e-6f, "cell 1: exactly predicted, -1/2, got %g", out[1]);
    /* without a variance: unit variance */
    CHECK(wm_score_cells(z, mu, NULL, 2, 2, out) == 0 && fabsf(out[0] - 0.75f) < 1e-6f,
          "unit variance: ((1 - 1) + (4 - 1)) / 2 / 2 = 0.75, got %g", out[0]);
    /* a calibrated model averages 0: z ~ N(mu, var) */
    double sum = 0;
    unsigned s = 12345;
    enum { N = 200000 };
    static float zz[N], mm[N], vv[N], cc[N];
    for (int i = 0; i < N; i++) {
        double u1, u2;
        s = s * 1103515245u + 12345u; u1 = ((s >> 8) + 0.5) / 16777216.0;
        s = s * 1103515245u + 12345u; u2 = ((s >> 8) + 0.5) / 16777216.0;
        vv[i] = 0.1f + (float)(i % 7);
        mm[i] = (float)(i % 3);
        zz[i] = mm[i] + sqrtf(vv[i]) * (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2));
    }
    wm_score_cells(zz, mm, vv, N, 1, cc);
    for (int i = 0; i < N; i++) sum += cc[i];
    CHECK(fabs(sum / N) < 0.01, "a calibrated model's mean surprise is %g, not ~0", sum / N);
    /* NaN, Inf and var <= 0 are counted */
    const float zb[3] = { NAN, 1, 1 }, vb[3] = { 1, 0, INFINITY }, mb[3] = { 0, 0, 0 };
    float ob[3];
    CHECK(wm_score_cells(zb, mb, vb, 3, 1, ob) == 3, "three bad values");
    /* top-k */
    const float v[6] = { 1, 9, 3, 7, 5, 2 };
    float scratch[6];
    size_t am;
    CHECK(wm_score_topk(v, 6, 1, scratch, &am) == 9 && am == 1, "top-1 is the max at index 1");
    CHECK(fabs(wm_score_topk(v, 6, 3, scratch, &am) - 7.0) < 1e-9, "top-3 mean (9 + 7 + 5) / 3");
    CHECK(fabs(wm_score_topk(v, 6, 100, scratch, &am) - 27.0 / 6) < 1e-9, "k clamped to n");
    CHECK(wm_score_k(256) == 8 && wm_score_k(1024) == 32 && wm_score_k(1) == 1 && wm_score_k(64 * 64) == 128,
          "k = round(cells / 32), at least 1");
    if (failures) return 1;
    printf("ok unit_score\n");
    return 0;
}
