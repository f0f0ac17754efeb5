/* wm_tokenizer on a tiny network: shapes, encode+decode against the
 * training pass, end-to-end finite-difference gradients, save/load round
 * trip, refusal of foreign files, and a few Adam steps lowering the loss.
 *
 * Also the C side of tests/test_tokenizer_torch.py:
 *   unit_tokenizer oracle MODEL INPUT OUT
 * loads the tokenizer in MODEL and the tensor "x" [B, H, W, 3] from INPUT
 * (with metadata "lr"), and writes to OUT: "z" (encoder output), "y"
 * (decoder output of z), "loss", "grad.<param>" (one training pass) and
 * "updated.<param>" (after one Adam step). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_adam.h"
#include "wm_nn.h"
#include "wm_tokenizer.h"
#include "unit_check.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static int oracle(const char *model, const char *input, const char *out)
{
    wm_error err = { 0 };
    wm_nn_set_threads(1);
    wm_tokenizer *tk = wm_tokenizer_load(model, &err);
    wm_safetensors *in = tk ? wm_safetensors_open(input, &err) : NULL;
    const wm_safetensors_tensor *xt = in ? wm_safetensors_find(in, "x") : NULL;
    const char *lr_text = in ? wm_safetensors_meta(in, "lr") : NULL;
    if (!tk || !in || !xt || xt->rank != 4 || xt->shape[3] != 3 || !lr_text) {
        fprintf(stderr, "oracle: %s\n", err.msg[0] ? err.msg : "INPUT needs x [B, H, W, 3] and metadata lr");
        return 2;
    }
    int B = (int)xt->shape[0], H = (int)xt->shape[1], W = (int)xt->shape[2];
    int C = wm_tokenizer_get_config(tk)->latent_channels, h = H / 4, w = W / 4;
    size_t nx = xt->numel, nz = (size_t)B * h * w * C;
    float *x = malloc(nx * sizeof *x), *z = malloc(nz * sizeof *z), *y = malloc(nx * sizeof *y);
    wm_safetensors_read_f32(xt, x, nx, &err);
    double loss = 0;
    wm_params *p = wm_tokenizer_params(tk);
    wm_adam adam;
    if (wm_tokenizer_encode(tk, z, x, B, H, W, &err) || wm_tokenizer_decode(tk, y, z, B, h, w, &err) ||
        wm_tokenizer_train_pass(tk, x, B, H, W, &loss, &err) || wm_adam_init(&adam, p->total, &err)) {
        fprintf(stderr, "oracle: %s\n", err.msg);
        return 3;
    }
    float *before = malloc(p->total * sizeof *before);
    memcpy(before, p->data, p->total * sizeof *before);
    wm_adam_update(&adam, p->data, p->grad, (float)atof(lr_text));
    float loss_f = (float)loss;
    wm_safetensors_builder *b = wm_safetensors_builder_new(&err);
    uint64_t zs[4] = { (uint64_t)B, (uint64_t)h, (uint64_t)w, (uint64_t)C };
    wm_safetensors_builder_add(b, NULL, "z", WM_ST_F32, 4, zs, z, &err);
    wm_safetensors_builder_add(b, NULL, "y", WM_ST_F32, 4, xt->shape, y, &err);
    wm_safetensors_builder_add(b, NULL, "loss", WM_ST_F32, 0, NULL, &loss_f, &err);
    wm_params_add_to(p, p->grad, "grad.", b, &err);
    wm_params_add_to(p, p->data, "updated.", b, &err);
    wm_status st = wm_safetensors_builder_write(b, out, &err);
    if (st) fprintf(stderr, "oracle: %s\n", err.msg);
    wm_safetensors_builder_free(&b);
    wm_safetensors_close(&in);
    wm_tokenizer_free(&tk);
    wm_adam_free(&adam);
    free(x); free(y); free(z); free(before);
    return st ? 3 : 0;
}

static float *random_frames(wm_rng *rng, size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * wm_rng_uniform(rng) - 1);
    return x;
}

static void test_passes(void)
{
    wm_error err = { 0 };
    wm_tokenizer_config cfg = { 4, 8, 1 };
    wm_tokenizer *tk = wm_tokenizer_new(&cfg, 5, &err);
    CHECK(tk != NULL, "new: %s", err.msg);
    if (!tk) return;
    wm_rng rng;
    wm_rng_seed(&rng, 3);
    const int B = 2, H = 8, W = 12;
    size_t nx = (size_t)B * H * W * 3, nz = (size_t)B * (H / 4) * (W / 4) * 4;
    float *x = random_frames(&rng, nx), *z = malloc(nz * sizeof *z), *y = malloc(nx * sizeof *y);
    CHECK(wm_tokenizer_encode(tk, z, x, B, H, W, &err) == WM_OK, "encode: %s", err.msg);
    CHECK(wm_tokenizer_decode(tk, y, z, B, H / 4, W / 4, &err) == WM_OK, "decode: %s", err.msg);
    double loss;
    CHECK(wm_tokenizer_train_pass(tk, x, B, H, W, &loss, &err) == WM_OK, "train pass: %s", err.msg);
    const float *tz, *ty;
    wm_tokenizer_last(tk, &tz, &ty);
    CHECK(!memcmp(tz, z, nz * sizeof *z) && !memcmp(ty, y, nx * sizeof *y),
          "encode+decode differ from the training pass");
    CHECK(fabs(loss - wm_mse_forward(y, x, nx)) < 1e-9, "loss is not the MSE of the reconstruction");
    printf("ok - encode, decode and the training pass agree (loss %.4f)\n", loss);

    CHECK(wm_tokenizer_encode(tk, z, x, 1, 6, 8, &err) == WM_E_INPUT && strstr(err.msg, "multiples of 4"),
          "a 8x6 frame was accepted: %s", err.msg);

    /* end-to-end gradient against finite differences of the loss */
    wm_params *p = wm_tokenizer_params(tk);
    float *grad = malloc(p->total * sizeof *grad);
    memcpy(grad, p->grad, p->total * sizeof *grad);
    double worst = 0;
    int checked = 0;
    for (int e = 0; e < p->count; e++) {
        float *v = wm_params_value(p, e);
        for (size_t k = 0; k < p->items[e].numel; k += 1 + p->items[e].numel / 3) {
            float keep = v[k];
            double lp, lm;
            v[k] = keep + 1e-2f;
            wm_tokenizer_train_pass(tk, x, B, H, W, &lp, &err);
            v[k] = keep - 1e-2f;
            wm_tokenizer_train_pass(tk, x, B, H, W, &lm, &err);
            v[k] = keep;
            double num = (lp - lm) / 2e-2, ana = grad[p->items[e].offset + k];
            double rel = fabs(num - ana) / (1e-4 + fabs(num));
            if (rel > worst) worst = rel;
            checked++;
            CHECK(rel < 3e-2, "%s[%zu]: analytic %g, numeric %g", p->items[e].name, k, ana, num);
        }
    }
    printf("ok - end-to-end gradient of %d parameters (worst relative error %.2g)\n", checked, worst);

    /* save, load, same outputs; a file without a tokenizer is refused */
    char path[] = "/tmp/wm_unit_tk_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    wm_safetensors_builder *b = wm_safetensors_builder_new(&err);
    CHECK(wm_tokenizer_add_to(tk, NULL, NULL, b, &err) == WM_OK && wm_safetensors_builder_write(b, path, &err) == WM_OK,
          "save: %s", err.msg);
    wm_safetensors_builder_free(&b);
    wm_tokenizer *tk2 = wm_tokenizer_load(path, &err);
    CHECK(tk2 != NULL, "load: %s", err.msg);
    if (tk2) {
        float *z2 = malloc(nz * sizeof *z2);
        wm_tokenizer_encode(tk2, z2, x, B, H, W, &err);
        wm_tokenizer_encode(tk, z, x, B, H, W, &err);
        CHECK(!memcmp(z, z2, nz * sizeof *z), "a loaded tokenizer encodes differently");
        CHECK(wm_tokenizer_get_config(tk2)->hidden == 8, "config lost");
        free(z2);
        wm_tokenizer_free(&tk2);
        printf("ok - save and load round trip\n");
    }
    b = wm_safetensors_builder_new(&err);
    float one = 1;
    uint64_t shape1[1] = { 1 };
    wm_safetensors_builder_add(b, NULL, "dynamics.x", WM_ST_F32, 1, shape1, &one, &err);
    wm_safetensors_builder_write(b, path, &err);
    wm_safetensors_builder_free(&b);
    tk2 = wm_tokenizer_load(path, &err);
    CHECK(!tk2 && err.code == WM_E_INPUT && strstr(err.msg, "no tokenizer"), "a file without a tokenizer: %s", err.msg);
    /* a tokenizer whose tensors do not fit its metadata */
    b = wm_safetensors_builder_new(&err);
    wm_tokenizer_add_to(tk, NULL, NULL, b, &err);
    wm_safetensors_builder_meta(b, "tokenizer.hidden", "16", &err);
    wm_safetensors_builder_write(b, path, &err);
    wm_safetensors_builder_free(&b);
    tk2 = wm_tokenizer_load(path, &err);
    CHECK(!tk2 && strstr(err.msg, "architecture needs"), "a shape mismatch: %s", err.msg);
    printf("ok - refused: %s\n", err.msg);
    unlink(path);

    /* a few Adam steps on one batch lower the loss */
    wm_adam adam;
    wm_adam_init(&adam, p->total, &err);
    double first = 0, last = 0;
    for (int s = 0; s < 60; s++) {
        wm_tokenizer_train_pass(tk, x, B, H, W, &last, &err);
        if (s == 0) first = last;
        wm_adam_update(&adam, p->data, p->grad, 1e-2f);
    }
    CHECK(last < 0.5 * first, "60 Adam steps: loss %g -> %g", first, last);
    printf("ok - 60 Adam steps on one batch: loss %.4f -> %.4f\n", first, last);
    wm_adam_free(&adam);
    free(grad); free(x); free(y); free(z);
    wm_tokenizer_free(&tk);
}

/* After PCA initialisation the network is a projection onto the top C
 * components: applying it twice changes nothing, and it beats random
 * weights by far. */
static void test_pca_init(void)
{
    wm_error err = { 0 };
    wm_tokenizer_config cfg = { 6, 12, 1 };
    wm_tokenizer *tk = wm_tokenizer_new(&cfg, 9, &err);
    wm_rng rng;
    wm_rng_seed(&rng, 4);
    const int B = 8, H = 16, W = 16;
    size_t nx = (size_t)B * H * W * 3, nz = (size_t)B * (H / 4) * (W / 4) * 6;
    float *x = malloc(nx * sizeof *x), *z = malloc(nz * sizeof *z), *y = malloc(nx * sizeof *y);
    float *y2 = malloc(nx * sizeof *y2);
    for (int b = 0; b < B; b++)   /* smooth frames: gradients plus noise */
        for (int i = 0; i < H * W; i++)
            for (int c = 0; c < 3; c++)
                x[((size_t)b * H * W + i) * 3 + c] = (float)(0.1 * b - 0.5 + 0.05 * (i % W) * (c + 1) +
                                                             0.1 * wm_rng_normal(&rng));
    double before, after;
    wm_tokenizer_train_pass(tk, x, B, H, W, &before, &err);
    CHECK(wm_tokenizer_init_pca(tk, x, B, H, W, &err) == WM_OK, "init_pca: %s", err.msg);
    wm_tokenizer_train_pass(tk, x, B, H, W, &after, &err);
    wm_tokenizer_encode(tk, z, x, B, H, W, &err);
    wm_tokenizer_decode(tk, y, z, B, H / 4, W / 4, &err);
    wm_tokenizer_encode(tk, z, y, B, H, W, &err);
    wm_tokenizer_decode(tk, y2, z, B, H / 4, W / 4, &err);
    double worst = 0;
    for (size_t i = 0; i < nx; i++)
        if (fabs(y2[i] - y[i]) > worst) worst = fabs(y2[i] - y[i]);
    CHECK(worst < 1e-4, "the PCA start is not a projection: %g", worst);
    CHECK(after < before / 10, "PCA start loss %g, random %g", after, before);
    printf("ok - PCA initialisation: a projection (twice = once within %.1g), loss %.4f vs random %.4f\n", worst,
           after, before);
    free(x); free(z); free(y); free(y2);
    wm_tokenizer_free(&tk);
}

static void test_pixels(void)
{
    uint8_t px[6] = { 0, 127, 255, 1, 254, 128 }, back[6];
    float x[6];
    wm_tokenizer_pixels_to_input(x, px, 2, 3);
    wm_tokenizer_output_to_pixels(back, x, 2);
    CHECK(!memcmp(px, back, 6) && x[0] == -1.0f && x[2] == 1.0f, "pixel conversion does not round-trip");
    float wild[3] = { 5.0f, -5.0f, NAN };
    wm_tokenizer_output_to_pixels(back, wild, 1);
    CHECK(back[0] == 255 && back[1] == 0 && back[2] == 0, "out-of-range outputs are not clamped");
    uint8_t g[2] = { 0, 255 };
    wm_tokenizer_pixels_to_input(x, g, 2, 1);
    CHECK(x[0] == -1 && x[1] == -1 && x[2] == -1 && x[3] == 1, "gray8 is not replicated");
    printf("ok - pixel conversions\n");
}

/* A training pass whose images run in parts on threads gives what one
 * thread gives: loss, gradients, z and y. */
static void test_parts(void)
{
    wm_error err = { 0 };
    wm_tokenizer_config cfg = { 8, 16, 1 };
    wm_tokenizer *tk = wm_tokenizer_new(&cfg, 7, &err);
    CHECK(tk != NULL, "new: %s", err.msg);
    if (!tk) return;
    wm_rng rng;
    wm_rng_seed(&rng, 5);
    const int B = 5, H = 16, W = 12;
    const size_t nx = (size_t)B * H * W * 3, nz = (size_t)B * (H / 4) * (W / 4) * 8;
    float *x = random_frames(&rng, nx);
    wm_params *p = wm_tokenizer_params(tk);
    float *grad[2], *z[2], *y[2];
    double loss[2];
    for (int r = 0; r < 2; r++) {
        wm_nn_set_threads(r ? 3 : 1);
        CHECK(wm_tokenizer_train_pass(tk, x, B, H, W, &loss[r], &err) == WM_OK, "train pass: %s", err.msg);
        grad[r] = malloc(p->total * sizeof(float));
        memcpy(grad[r], p->grad, p->total * sizeof(float));
        const float *tz, *ty;
        wm_tokenizer_last(tk, &tz, &ty);
        z[r] = malloc(nz * sizeof(float));
        y[r] = malloc(nx * sizeof(float));
        memcpy(z[r], tz, nz * sizeof(float));
        memcpy(y[r], ty, nx * sizeof(float));
    }
    wm_nn_set_threads(1);
    const double eg = max_rel(grad[1], grad[0], p->total);
    /* Each part's convolutions are GEMMs of fewer rows; OpenBLAS may sum a
     * row in another order for another row count (its small-matrix kernels
     * on AVX-512 machines do), so the parts agree to rounding, not always
     * to the bit.  A given thread count gives the same bits every run. */
    double ez = max_rel(z[1], z[0], nz), ey = max_rel(y[1], y[0], nx);
    CHECK(eg < 1e-5 && ez < 1e-5 && ey < 1e-5 && fabs(loss[1] - loss[0]) < 1e-6 * fabs(loss[0]),
          "3 threads against 1: gradients %g, z %g, y %g, loss %.9g against %.9g", eg, ez, ey, loss[1], loss[0]);
    printf("ok - a training pass in 3 parts on threads matches one thread (gradients %.1g, z %.1g, y %.1g; loss "
           "%.1g relative)\n", eg, ez, ey, fabs(loss[1] - loss[0]) / fabs(loss[0]));
    for (int r = 0; r < 2; r++) free(grad[r]), free(z[r]), free(y[r]);
    free(x);
    wm_tokenizer_free(&tk);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "oracle") == 0) return oracle(argv[2], argv[3], argv[4]);
    wm_nn_set_threads(1);
    test_passes();
    test_parts();
    test_pca_init();
    test_pixels();
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
