/* The ball detector (wm_detect): its loss gradient against central finite
 * differences, the labels and the reading of the maps into balls, the
 * model file round trip that keeps the other parts, and a short training
 * run on drawn blobs that learns to find them.
 *
 * Also the C side of tests/test_detect_torch.py:
 *   unit_detect oracle MODEL INPUT OUT
 * loads the detector in MODEL and from INPUT the tensors "z" [B, H, W, C]
 * and "labels" [B, H, W, 4] (metadata "pos_weight"), and writes to OUT:
 * "maps" [B, H, W, 4], "loss" [4] (total, centre, offset, radius) and
 * "grad.<param>" (the loss's gradients). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_adam.h"
#include "wm_detect.h"
#include "wm_nn.h"
#include "wm_rng.h"

static int failures;
static wm_rng rng;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* a latent grid with one ball labelled per listed centre */
static void put_ball(float *z, float *lab, int H, int W, int C, double x, double y, double r)
{
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            double d2 = ((j + 0.5) * 4 - x) * ((j + 0.5) * 4 - x) + ((i + 0.5) * 4 - y) * ((i + 0.5) * 4 - y);
            float v = (float)exp(-d2 / (2 * r * r));
            for (int c = 0; c < C; c++) z[((size_t)i * W + j) * C + c] += v * (float)((c % 3) - 1 + 0.5 * (c == 0));
        }
    wm_detector_label(lab, H, W, 4, x, y, r);
}

static void test_gradient(void)
{
    const int B = 2, H = 5, W = 6, C = 3;
    wm_detect_config cfg = { C, 4 };
    wm_error err = { 0 };
    wm_detector *d = wm_detector_new(&cfg, 7, &err);
    wm_params *p = wm_detector_params(d);
    wm_params_alloc_grad(p, &err);
    const size_t N = (size_t)B * H * W;
    float *z = malloc(N * C * sizeof(float)), *lab = calloc(N * WM_DETECT_LABELS, sizeof(float));
    for (size_t i = 0; i < N * C; i++) z[i] = (float)wm_rng_normal(&rng);
    wm_detector_label(lab, H, W, 4, 9.3, 6.1, 3.0);
    wm_detector_label(lab + (size_t)H * W * WM_DETECT_LABELS, H, W, 4, 17.8, 13.5, 4.2);
    wm_detector_label(lab + (size_t)H * W * WM_DETECT_LABELS, H, W, 4, 3.1, 17.9, 2.6);
    memset(p->grad, 0, p->total * sizeof(float));
    wm_detector_forward(d, z, B, H, W, NULL, &err);
    wm_detect_loss l0 = wm_detector_loss(d, lab, 3.0f, 1);
    CHECK(l0.labelled == 3, "3 labelled cells, got %ld", l0.labelled);
    double worst = 0;
    for (size_t k = 0; k < p->total; k += 7) {
        const float keep = p->data[k], h = 2e-3f;
        p->data[k] = keep + h;
        wm_detector_forward(d, z, B, H, W, NULL, &err);
        double up = wm_detector_loss(d, lab, 3.0f, 0).total;
        p->data[k] = keep - h;
        wm_detector_forward(d, z, B, H, W, NULL, &err);
        double down = wm_detector_loss(d, lab, 3.0f, 0).total;
        p->data[k] = keep;
        /* float32 differences of a loss of about 1, across ReLU and L1 kinks: relative to the
         * gradient, with an absolute floor; tests/test_detect_torch.py checks to 1e-4 in float64 */
        double fd = (up - down) / (2 * h), e = fabs(fd - p->grad[k]) / (fabs(fd) + 2e-3);
        if (e > worst) worst = e;
    }
    CHECK(worst < 0.1, "gradient against finite differences: worst relative error %g", worst);
    printf("ok - loss gradient against central differences (worst relative error %.2g)\n", worst);
    free(z);
    free(lab);
    wm_detector_free(&d);
}

static void test_balls_and_labels(void)
{
    const int H = 4, W = 5;
    float maps[4 * 5 * WM_DETECT_MAPS], lab[4 * 5 * WM_DETECT_LABELS] = { 0 };
    for (int k = 0; k < H * W; k++) maps[k * 4] = -5, maps[k * 4 + 1] = maps[k * 4 + 2] = 0, maps[k * 4 + 3] = 1;
    maps[(1 * W + 2) * 4] = 3;      /* a peak at row 1, column 2 */
    maps[(1 * W + 3) * 4] = 2;      /* its lower neighbour: not a peak */
    maps[(3 * W + 0) * 4] = 0.5;    /* a second peak, probability 0.62 */
    wm_detection b[4];
    int n = wm_detector_balls(maps, H, W, 4, 0.5f, b, 4);
    CHECK(n == 2, "two peaks, got %d", n);
    CHECK(fabsf(b[0].x - 10) < 1e-5 && fabsf(b[0].y - 6) < 1e-5 && fabsf(b[0].r - 4) < 1e-5,
          "the first ball at the cell centre (10, 6) r 4, got (%g, %g) r %g", b[0].x, b[0].y, b[0].r);
    CHECK(wm_detector_balls(maps, H, W, 4, 0.7f, b, 4) == 1, "a higher threshold keeps one");
    CHECK(wm_detector_balls(maps, H, W, 4, 0.5f, b, 1) == 2, "the count is of all found");
    wm_detector_label(lab, H, W, 4, 9.0, 6.5, 2.0);
    CHECK(lab[(1 * W + 2) * 4] == 1 && fabsf(lab[(1 * W + 2) * 4 + 1] - 0.25f) < 1e-6 &&
          fabsf(lab[(1 * W + 2) * 4 + 2] - 0.625f) < 1e-6 && fabsf(lab[(1 * W + 2) * 4 + 3] - 0.5f) < 1e-6,
          "label at the cell of (9, 6.5)");
    wm_detector_label(lab, H, W, 4, 10.0, 7.0, 1.0);   /* smaller ball in the same cell: ignored */
    CHECK(fabsf(lab[(1 * W + 2) * 4 + 3] - 0.5f) < 1e-6, "the larger ball keeps the cell");
    wm_detector_label(lab, H, W, 4, -1.0, 3.0, 2.0);
    wm_detector_label(lab, H, W, 4, 20.0, 3.0, 2.0);   /* x = 20 is the grid's right edge: outside */
    wm_detector_label(lab, H, W, 4, 5.0, 5.0, NAN);
    int set = 0;
    for (int k = 0; k < H * W; k++) set += lab[k * 4] > 0;
    CHECK(set == 1, "centres outside the grid or without a radius are not labelled (%d set)", set);
    printf("ok - maps to balls (peaks, threshold, count) and labels (cell, offsets, larger ball kept, outside)\n");
}

static void test_file(void)
{
    char path[] = "/tmp/wm-unit-detect-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    wm_error err = { 0 };
    /* another part of the file, kept by the save */
    wm_safetensors_builder *b = wm_safetensors_builder_new(&err);
    float other[3] = { 1, 2, 3 };
    uint64_t shape[1] = { 3 };
    wm_safetensors_builder_add(b, NULL, "tokenizer.x", WM_ST_F32, 1, shape, other, &err);
    wm_safetensors_builder_meta(b, "tokenizer.arch", "x", &err);
    wm_safetensors_builder_write(b, path, &err);
    wm_safetensors_builder_free(&b);
    wm_detect_config cfg = { 5, 8 };
    wm_detector *d = wm_detector_new(&cfg, 3, &err);
    float mean[5] = { 1, 2, 3, 4, 5 }, sd[5] = { 1, 1, 2, 2, 3 };
    wm_detector_set_norm(d, mean, sd);
    const char *meta[] = { "train.steps", "12" };
    CHECK(wm_detector_save(d, path, meta, 1, &err) == WM_OK, "save: %s", err.msg);
    wm_detector *e = wm_detector_load(path, &err);
    CHECK(e != NULL, "load: %s", err.msg);
    if (e) {
        wm_params *p = wm_detector_params(d), *q = wm_detector_params(e);
        CHECK(p->total == q->total && memcmp(p->data, q->data, p->total * sizeof(float)) == 0, "weights round trip");
        float z[2 * 3 * 5], m1[2 * 3 * 4], m2[2 * 3 * 4];
        for (int k = 0; k < 30; k++) z[k] = (float)wm_rng_normal(&rng);
        wm_detector_forward(d, z, 1, 2, 3, m1, &err);
        wm_detector_forward(e, z, 1, 2, 3, m2, &err);
        CHECK(memcmp(m1, m2, sizeof m1) == 0, "same maps after the round trip (normalisation kept)");
    }
    wm_safetensors *st = wm_safetensors_open(path, &err);
    CHECK(st && wm_safetensors_find(st, "tokenizer.x") && wm_safetensors_meta(st, "tokenizer.arch") &&
              wm_safetensors_meta(st, "detector.train.steps"),
          "the tokenizer and the extra metadata are in the file");
    wm_safetensors_close(&st);
    wm_detector_free(&e);
    /* a file without a detector says so */
    b = wm_safetensors_builder_new(&err);
    wm_safetensors_builder_add(b, NULL, "tokenizer.x", WM_ST_F32, 1, shape, other, &err);
    wm_safetensors_builder_write(b, path, &err);
    wm_safetensors_builder_free(&b);
    err = (wm_error){ 0 };
    e = wm_detector_load(path, &err);
    CHECK(!e && err.code == WM_E_INPUT && strstr(err.msg, "no ball detector"), "no detector: %s", err.msg);
    wm_detector_free(&d);
    unlink(path);
    printf("ok - model file round trip keeps the other parts; a file without a detector is a clear error\n");
}

static void test_learns(void)
{
    const int B = 16, H = 8, W = 8, C = 4;
    wm_detect_config cfg = { C, 16 };
    wm_error err = { 0 };
    wm_detector *d = wm_detector_new(&cfg, 1, &err);
    wm_params *p = wm_detector_params(d);
    wm_params_alloc_grad(p, &err);
    wm_adam adam;
    wm_adam_init(&adam, p->total, &err);
    const size_t N = (size_t)B * H * W;
    float *z = malloc(N * C * sizeof(float)), *lab = malloc(N * WM_DETECT_LABELS * sizeof(float));
    wm_detect_loss first = { 0 }, last = { 0 };
    for (int step = 0; step < 400; step++) {
        memset(z, 0, N * C * sizeof(float));
        memset(lab, 0, N * WM_DETECT_LABELS * sizeof(float));
        for (int b = 0; b < B; b++) {
            float *zb = z + (size_t)b * H * W * C, *lb = lab + (size_t)b * H * W * WM_DETECT_LABELS;
            for (size_t k = 0; k < (size_t)H * W * C; k++) zb[k] = 0.05f * (float)wm_rng_normal(&rng);
            put_ball(zb, lb, H, W, C, 4 + 24 * wm_rng_uniform(&rng), 4 + 24 * wm_rng_uniform(&rng),
                     2.5 + 2 * wm_rng_uniform(&rng));
        }
        memset(p->grad, 0, p->total * sizeof(float));
        wm_detector_forward(d, z, B, H, W, NULL, &err);
        wm_detect_loss l = wm_detector_loss(d, lab, 4.0f, 1);
        wm_adam_update(&adam, p->data, p->grad, 1e-2f);
        if (step == 0) first = l;
        last = l;
    }
    /* a held-out scene: the ball is found near its centre */
    memset(z, 0, (size_t)H * W * C * sizeof(float));
    memset(lab, 0, (size_t)H * W * WM_DETECT_LABELS * sizeof(float));
    put_ball(z, lab, H, W, C, 13.7, 18.2, 3.5);
    float maps[8 * 8 * 4];
    wm_detector_forward(d, z, 1, H, W, maps, &err);
    wm_detection balls[4];
    int n = wm_detector_balls(maps, H, W, 4, 0.5f, balls, 4);
    CHECK(last.total < 0.3 * first.total, "400 steps: loss %g -> %g", first.total, last.total);
    CHECK(n == 1 && fabs(balls[0].x - 13.7) < 1.0 && fabs(balls[0].y - 18.2) < 1.0,
          "one ball near (13.7, 18.2): %d found, first at (%g, %g)", n, n ? balls[0].x : 0, n ? balls[0].y : 0);
    printf("ok - learns to find a blob in 400 steps: loss %.3f -> %.3f; found at (%.2f, %.2f) for (13.7, 18.2)\n",
           first.total, last.total, n ? balls[0].x : 0, n ? balls[0].y : 0);
    free(z);
    free(lab);
    wm_adam_free(&adam);
    wm_detector_free(&d);
}

/* ---- oracle for tests/test_detect_torch.py ---- */

static int oracle(const char *model, const char *input, const char *out)
{
    wm_error err = { 0 };
    wm_nn_set_threads(1);
    wm_detector *d = wm_detector_load(model, &err);
    wm_safetensors *in = d ? wm_safetensors_open(input, &err) : NULL;
    const wm_safetensors_tensor *zt = in ? wm_safetensors_find(in, "z") : NULL, *lt = in ? wm_safetensors_find(in, "labels") : NULL;
    const char *pw = in ? wm_safetensors_meta(in, "pos_weight") : NULL;
    if (!d || !in || !zt || !lt || zt->rank != 4 || lt->numel != zt->numel / zt->shape[3] * WM_DETECT_LABELS || !pw) {
        fprintf(stderr, "oracle: %s\n", err.msg[0] ? err.msg : "INPUT needs z [B,H,W,C], labels [B,H,W,4], pos_weight");
        return 2;
    }
    const int B = (int)zt->shape[0], H = (int)zt->shape[1], W = (int)zt->shape[2];
    float *z = malloc(zt->numel * sizeof(float)), *lab = malloc(lt->numel * sizeof(float));
    float *maps = malloc((size_t)B * H * W * WM_DETECT_MAPS * sizeof(float));
    wm_safetensors_read_f32(zt, z, zt->numel, &err);
    wm_safetensors_read_f32(lt, lab, lt->numel, &err);
    wm_params *p = wm_detector_params(d);
    wm_status st = wm_params_alloc_grad(p, &err);
    if (!st) memset(p->grad, 0, p->total * sizeof(float));
    if (!st) st = wm_detector_forward(d, z, B, H, W, maps, &err);
    wm_detect_loss l = { 0 };
    if (!st) l = wm_detector_loss(d, lab, (float)atof(pw), 1);
    float loss[4] = { (float)l.total, (float)l.centre, (float)l.offset, (float)l.radius };
    wm_safetensors_builder *b = st ? NULL : wm_safetensors_builder_new(&err);
    uint64_t ms[4] = { (uint64_t)B, (uint64_t)H, (uint64_t)W, WM_DETECT_MAPS }, ls[1] = { 4 };
    if (b) {
        wm_safetensors_builder_add(b, NULL, "maps", WM_ST_F32, 4, ms, maps, &err);
        wm_safetensors_builder_add(b, NULL, "loss", WM_ST_F32, 1, ls, loss, &err);
        wm_params_add_to(p, p->grad, "grad.", b, &err);
        st = wm_safetensors_builder_write(b, out, &err);
    }
    if (st) fprintf(stderr, "oracle: %s\n", err.msg);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&in);
    wm_detector_free(&d);
    free(z);
    free(lab);
    free(maps);
    return st ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "oracle") == 0) return oracle(argv[2], argv[3], argv[4]);
    wm_rng_seed(&rng, 1);
    wm_nn_set_threads(1);
    test_gradient();
    test_balls_and_labels();
    test_file();
    test_learns();
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
