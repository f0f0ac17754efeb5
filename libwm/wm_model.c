#include "wm_model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_hash.h"

static int copy_path(char *out, size_t cap, const char *path)
{
    return snprintf(out, cap, "%s", path) < (int)cap;
}

wm_status wm_model_resolve(const char *option, char *out, size_t cap, wm_error *err)
{
    if (option) {
        if (!copy_path(out, cap, option)) return wm_error_set(err, WM_E_USAGE, "--model: path too long");
        return WM_OK;
    }
    const char *env = getenv("WM_MODEL");
    if (env && *env) {
        if (!copy_path(out, cap, env)) return wm_error_set(err, WM_E_USAGE, "WM_MODEL: path too long");
        return WM_OK;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            static const char *const rel[] = { "../models/", "../share/wm/" };
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                if (snprintf(out, cap, "%s/%s%s", exe, rel[i], WM_MODEL_DEFAULT_NAME) >= (int)cap) continue;
                if (access(out, R_OK) == 0) return WM_OK;
            }
            return wm_error_set(err, WM_E_USAGE,
                                "no model: give --model PATH or set WM_MODEL (no " WM_MODEL_DEFAULT_NAME
                                " in %s/../models or %s/../share/wm)", exe, exe);
        }
    }
    return wm_error_set(err, WM_E_USAGE, "no model: give --model PATH or set WM_MODEL");
}

wm_status wm_model_keep_others(wm_safetensors_builder *b, const char *path, const char *prefix, wm_safetensors **old,
                               size_t *kept, wm_error *err)
{
    *old = NULL;
    if (kept) *kept = 0;
    if (access(path, F_OK) != 0) return WM_OK;
    *old = wm_safetensors_open(path, err);
    if (!*old) return wm_error_prefix(err, "will not replace an unreadable model file");
    const size_t np = strlen(prefix);
    wm_status st = WM_OK;
    for (size_t i = 0; st == WM_OK && i < wm_safetensors_count(*old); i++) {
        const wm_safetensors_tensor *t = wm_safetensors_at(*old, i);
        if (strncmp(t->name, prefix, np) == 0) continue;
        st = wm_safetensors_builder_add(b, NULL, t->name, t->dtype, t->rank, t->shape, t->data, err);
        if (kept) (*kept)++;
    }
    for (size_t i = 0; st == WM_OK && i < wm_safetensors_meta_count(*old); i++) {
        const char *k, *v;
        wm_safetensors_meta_at(*old, i, &k, &v);
        if (strncmp(k, prefix, np) != 0) st = wm_safetensors_builder_meta(b, k, v, err);
    }
    return st;
}

wm_status wm_model_meta_int(const wm_safetensors *st, const char *path, const char *key, int lo, int hi, int *out,
                            wm_error *err)
{
    const char *v = wm_safetensors_meta(st, key);
    char *end = NULL;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || n < lo || n > hi)
        return wm_error_set(err, WM_E_INPUT, "%s: metadata \"%s\" %s (an integer in [%d, %d])", path, key,
                            v ? "is not valid" : "is missing", lo, hi);
    *out = (int)n;
    return WM_OK;
}

uint64_t wm_model_tokenizer_fingerprint(const wm_safetensors *st)
{
    uint64_t h = WM_FNV1A_SEED;
    int any = 0;
    for (size_t i = 0; i < wm_safetensors_count(st); i++) {
        const wm_safetensors_tensor *t = wm_safetensors_at(st, i);
        if (strncmp(t->name, "tokenizer.", 10) != 0) continue;
        any = 1;
        h = wm_fnv1a(h, t->name, strlen(t->name));
        h = wm_fnv1a(h, t->data, t->nbytes);
    }
    return any ? h : 0;
}

wm_status wm_model_read_vector(const wm_safetensors *st, const char *path, const char *name, int C, float *out,
                               wm_error *err)
{
    const wm_safetensors_tensor *t = wm_safetensors_find(st, name);
    if (!t || t->rank != 1 || t->shape[0] != (uint64_t)C)
        return wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\" [%d] is missing or of another shape", path, name, C);
    if (wm_safetensors_read_f32(t, out, (uint64_t)C, err) != WM_OK) return wm_error_prefix(err, "%s", path);
    return WM_OK;
}

wm_status wm_model_read_norm(const wm_safetensors *st, const char *path, const char *prefix, int C, float *mean,
                             float *std, wm_error *err)
{
    float *dst[2] = { mean, std };
    for (int k = 0; k < 2; k++) {
        char name[128];
        snprintf(name, sizeof name, "%snorm.%s", prefix, k ? "std" : "mean");
        wm_status s = wm_model_read_vector(st, path, name, C, dst[k], err);
        if (s) return s;
    }
    for (int c = 0; c < C; c++)
        if (!(std[c] > 0.0f) || !isfinite(std[c]) || !isfinite(mean[c]))
            return wm_error_set(err, WM_E_INPUT, "%s: %snorm.std[%d] = %g is not a positive number", path, prefix, c,
                                (double)std[c]);
    return WM_OK;
}

wm_status wm_model_check_arch(const wm_safetensors *st, const char *path, const char *prefix, const char *want,
                              const char *what, const char *kind, const char *hint, wm_error *err)
{
    char key[128];
    snprintf(key, sizeof key, "%sarch", prefix);
    const char *arch = wm_safetensors_meta(st, key);
    if (!arch) return wm_error_set(err, WM_E_INPUT, "%s: holds no %s (no \"%s\" metadata%s)", path, what, key, hint);
    if (strcmp(arch, want) != 0)
        return wm_error_set(err, WM_E_INPUT, "%s: %s architecture \"%.60s\" is not supported (this wm reads \"%s\")",
                            path, kind, arch, want);
    return WM_OK;
}

wm_status wm_model_add_meta(wm_safetensors_builder *b, const char *prefix, const char *const *fixed, size_t n_fixed,
                            const wm_safetensors *old, const char *const *kv, size_t n, wm_error *err)
{
    char fp[32] = "";
    const uint64_t h = old ? wm_model_tokenizer_fingerprint(old) : 0;
    if (h) snprintf(fp, sizeof fp, "%016llx", (unsigned long long)h);
    const char *tok[2] = { "tokenizer", fp };
    wm_status st = WM_OK;
    for (size_t i = 0; st == WM_OK && i < n_fixed + 1 + n; i++) {
        const char *const *p = i < n_fixed ? fixed + 2 * i : i == n_fixed ? tok : kv + 2 * (i - n_fixed - 1);
        if (p == tok && !h) continue;
        char key[128];
        snprintf(key, sizeof key, "%s%s", prefix, p[0]);
        st = wm_safetensors_builder_meta(b, key, p[1], err);
    }
    return st;
}
