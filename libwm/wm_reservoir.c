#include "wm_reservoir.h"

#include <stdlib.h>
#include <string.h>

#include "wm_rng.h"

typedef struct res_source {
    unsigned char *items;
    size_t n, cap;
    uint64_t offered;
} res_source;

struct wm_reservoir {
    size_t item_size, max;
    res_source *src;
    int n_src;
    wm_reservoir_free_fn free_item;
    wm_rng rng;
};

wm_reservoir *wm_reservoir_new(size_t item_size, size_t max_per_source, uint64_t seed, wm_reservoir_free_fn free_item,
                               wm_error *err)
{
    wm_reservoir *r = calloc(1, sizeof *r);
    if (!r) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    r->item_size = item_size;
    r->max = max_per_source ? max_per_source : 1;
    r->free_item = free_item;
    wm_rng_seed(&r->rng, seed);
    return r;
}

void wm_reservoir_free(wm_reservoir **rp)
{
    wm_reservoir *r = *rp;
    if (!r) return;
    for (int s = 0; s < r->n_src; s++) {
        for (size_t i = 0; i < r->src[s].n && r->free_item; i++) r->free_item(r->src[s].items + i * r->item_size);
        free(r->src[s].items);
    }
    free(r->src);
    free(r);
    *rp = NULL;
}

wm_status wm_reservoir_offer(wm_reservoir *r, int source, void **slot, int *replaces, wm_error *err)
{
    *slot = NULL;
    *replaces = 0;
    if (source < 0 || source > 1000) return wm_error_set(err, WM_E_SYSTEM, "bad source %d", source);
    if (source >= r->n_src) {
        res_source *s = realloc(r->src, (size_t)(source + 1) * sizeof *s);
        if (!s) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        memset(s + r->n_src, 0, (size_t)(source + 1 - r->n_src) * sizeof *s);
        r->src = s;
        r->n_src = source + 1;
    }
    res_source *src = &r->src[source];
    src->offered++;
    if (src->n >= r->max) {   /* every item offered stays with the same chance */
        uint64_t j = wm_rng_below(&r->rng, src->offered);
        if (j >= r->max) return WM_OK;
        *slot = src->items + (size_t)j * r->item_size;
        *replaces = 1;
        return WM_OK;
    }
    if (src->n == src->cap) {
        size_t cap = src->cap ? 2 * src->cap : 64;
        unsigned char *p = realloc(src->items, cap * r->item_size);
        if (!p) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        src->items = p;
        src->cap = cap;
    }
    *slot = src->items + src->n * r->item_size;
    memset(*slot, 0, r->item_size);
    src->n++;
    return WM_OK;
}

int wm_reservoir_sources(const wm_reservoir *r) { return r->n_src; }

size_t wm_reservoir_size(const wm_reservoir *r, int source)
{
    return source >= 0 && source < r->n_src ? r->src[source].n : 0;
}

uint64_t wm_reservoir_offered(const wm_reservoir *r, int source)
{
    return source >= 0 && source < r->n_src ? r->src[source].offered : 0;
}

size_t wm_reservoir_total(const wm_reservoir *r)
{
    size_t n = 0;
    for (int s = 0; s < r->n_src; s++) n += r->src[s].n;
    return n;
}

void *wm_reservoir_item(const wm_reservoir *r, int source, size_t i) { return r->src[source].items + i * r->item_size; }
