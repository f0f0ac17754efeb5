/* libFuzzer target: arbitrary bytes as a model file, through the
 * safetensors loader (header length, strict JSON, dtypes, shapes,
 * offsets), the float conversion, and the tokenizer and dynamics loaders
 * that sit on it.  A file that opens is written back with the builder
 * and must read back the same (names, dtypes, shapes, bytes, metadata). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wm_dynamics.h"
#include "wm_safetensors.h"
#include "wm_tokenizer.h"

static char tmpdir[64], rt_path[96];

static void remove_tmp(void)
{
    unlink(rt_path);
    rmdir(tmpdir);
}

static void check_same(const wm_safetensors *a, const wm_safetensors *b)
{
    if (wm_safetensors_count(a) != wm_safetensors_count(b) ||
        wm_safetensors_meta_count(a) != wm_safetensors_meta_count(b)) abort();
    for (size_t i = 0; i < wm_safetensors_count(a); i++) {
        const wm_safetensors_tensor *x = wm_safetensors_at(a, i), *y = wm_safetensors_find(b, x->name);
        if (!y || y->dtype != x->dtype || y->rank != x->rank || y->nbytes != x->nbytes ||
            memcmp(y->shape, x->shape, sizeof x->shape[0] * (size_t)x->rank) ||
            (x->nbytes && memcmp(y->data, x->data, x->nbytes))) abort();
    }
    for (size_t i = 0; i < wm_safetensors_meta_count(a); i++) {
        const char *k, *v, *w;
        wm_safetensors_meta_at(a, i, &k, &v);
        if (!(w = wm_safetensors_meta(b, k)) || strcmp(v, w)) abort();
    }
}

static void round_trip(const wm_safetensors *st)
{
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "%s/wm-fuzz-st.XXXXXX", access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
        if (!mkdtemp(tmpdir)) abort();
        snprintf(rt_path, sizeof rt_path, "%s/rt.safetensors", tmpdir);
        atexit(remove_tmp);
    }
    const char *path = rt_path;
    wm_error err;
    wm_safetensors_builder *b = wm_safetensors_builder_new(&err);
    if (!b) return;
    if (wm_safetensors_builder_add_file(b, st, NULL, &err) == WM_OK &&
        wm_safetensors_builder_write(b, path, &err) == WM_OK) {
        wm_safetensors *back = wm_safetensors_open(path, &err);
        if (!back) { fprintf(stderr, "round trip: %s\n", err.msg); abort(); }
        check_same(st, back);
        wm_safetensors_close(&back);
    }
    wm_safetensors_builder_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("wm-fuzz-st", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) { close(fd); return 0; }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    wm_error err;
    wm_safetensors *st = wm_safetensors_open(path, &err);
    if (st) {
        for (size_t i = 0; i < wm_safetensors_count(st); i++) {
            const wm_safetensors_tensor *t = wm_safetensors_at(st, i);
            if (t->numel > (1u << 16)) continue;
            float *f = malloc((t->numel ? t->numel : 1) * sizeof *f);
            if (f) wm_safetensors_read_f32(t, f, t->numel, &err);
            free(f);
        }
        round_trip(st);
        wm_tokenizer *tk = wm_tokenizer_from_file(st, path, &err);
        wm_tokenizer_free(&tk);
        wm_dynamics *d = wm_dynamics_from_file(st, path, &err);
        wm_dynamics_free(&d);
        wm_safetensors_close(&st);
    }
    close(fd);
    return 0;
}
