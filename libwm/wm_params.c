#include "wm_params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wm_params_add(wm_params *p, int rank, const int *shape, const char *fmt, ...)
{
    if (rank < 1 || rank > WM_PARAM_MAX_RANK) return -1;
    if (p->count == p->cap) {
        int cap = p->cap ? 2 * p->cap : 32;
        wm_param *items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items) return -1;
        p->items = items;
        p->cap = cap;
    }
    wm_param *e = &p->items[p->count];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->rank = rank;
    e->numel = 1;
    for (int d = 0; d < rank; d++) {
        e->shape[d] = shape[d];
        e->numel *= (size_t)shape[d];
    }
    e->offset = p->total;
    p->total += e->numel;
    return p->count++;
}

wm_status wm_params_alloc(wm_params *p, wm_error *err)
{
    free(p->data);
    p->data = calloc(p->total ? p->total : 1, sizeof(float));
    if (!p->data) return wm_error_set(err, WM_E_SYSTEM, "out of memory for %zu parameters", p->total);
    return WM_OK;
}

wm_status wm_params_alloc_grad(wm_params *p, wm_error *err)
{
    if (p->grad) return WM_OK;
    p->grad = calloc(p->total ? p->total : 1, sizeof(float));
    if (!p->grad) return wm_error_set(err, WM_E_SYSTEM, "out of memory for %zu gradients", p->total);
    return WM_OK;
}

void wm_params_free(wm_params *p)
{
    free(p->items);
    free(p->data);
    free(p->grad);
    memset(p, 0, sizeof *p);
}

float *wm_params_value(const wm_params *p, int i) { return p->data + p->items[i].offset; }
float *wm_params_gradient(const wm_params *p, int i) { return p->grad + p->items[i].offset; }

int wm_params_find(const wm_params *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].name, name) == 0) return i;
    return -1;
}

static void shape_text(char *out, size_t cap, int rank, const uint64_t *shape)
{
    size_t n = 0;
    out[0] = '\0';
    for (int d = 0; d < rank && n + 24 < cap; d++)
        n += (size_t)snprintf(out + n, cap - n, "%s%llu", d ? "x" : "", (unsigned long long)shape[d]);
    if (rank == 0) snprintf(out, cap, "scalar");
}

wm_status wm_params_load(wm_params *p, const wm_safetensors *st, const char *path, const char *prefix,
                         wm_error *err)
{
    return wm_params_load_into(p, p->data, st, path, prefix, err);
}

wm_status wm_params_load_into(const wm_params *p, float *buf, const wm_safetensors *st, const char *path,
                              const char *prefix, wm_error *err)
{
    for (int i = 0; i < p->count; i++) {
        const wm_param *e = &p->items[i];
        char name[WM_PARAM_NAME_MAX + 64];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", e->name);
        const wm_safetensors_tensor *t = wm_safetensors_find(st, name);
        if (!t) return wm_error_set(err, WM_E_INPUT, "%s: no tensor \"%s\"", path, name);
        uint64_t shape[WM_PARAM_MAX_RANK];
        int same = t->rank == e->rank;
        for (int d = 0; d < e->rank; d++) {
            shape[d] = (uint64_t)e->shape[d];
            same = same && t->shape[d] == shape[d];
        }
        if (!same) {
            char want[96], got[96];
            shape_text(want, sizeof want, e->rank, shape);
            shape_text(got, sizeof got, t->rank, t->shape);
            return wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\" is %s, the architecture needs %s", path, name,
                                got, want);
        }
        if (wm_safetensors_read_f32(t, buf + e->offset, e->numel, err) != WM_OK)
            return wm_error_prefix(err, "%s", path);
    }
    return WM_OK;
}

wm_status wm_params_add_to(const wm_params *p, const float *buf, const char *prefix,
                           wm_safetensors_builder *b, wm_error *err)
{
    for (int i = 0; i < p->count; i++) {
        const wm_param *e = &p->items[i];
        uint64_t shape[WM_PARAM_MAX_RANK];
        for (int d = 0; d < e->rank; d++) shape[d] = (uint64_t)e->shape[d];
        wm_status s = wm_safetensors_builder_add(b, prefix, e->name, WM_ST_F32, e->rank, shape, buf + e->offset, err);
        if (s != WM_OK) return s;
    }
    return WM_OK;
}
