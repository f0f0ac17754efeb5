/* wm_params: all parameters of a model in one contiguous float buffer
 * with a table of named views (llm.c's layout).  The buffer is what the
 * optimizer updates in one loop, what the gradient buffer mirrors, and
 * what the safetensors file maps tensor by tensor.
 *
 * Build the table with wm_params_add, then wm_params_alloc allocates the
 * value buffer (and, on demand, the gradient buffer) for every entry.
 * Ownership: the caller owns the struct; wm_params_free releases it. */
#ifndef WM_PARAMS_H
#define WM_PARAMS_H

#include <stddef.h>

#include "wm_error.h"
#include "wm_safetensors.h"

#define WM_PARAM_NAME_MAX 64
#define WM_PARAM_MAX_RANK 4

typedef struct wm_param {
    char name[WM_PARAM_NAME_MAX];
    int rank;
    int shape[WM_PARAM_MAX_RANK];
    size_t offset, numel;         /* floats into the buffer */
} wm_param;

typedef struct wm_params {
    wm_param *items;
    int count, cap;
    size_t total;                 /* floats in all */
    float *data;                  /* total values */
    float *grad;                  /* total gradients, NULL until wm_params_alloc_grad */
} wm_params;

/* Appends an entry (before wm_params_alloc); returns its index or -1 when
 * out of memory.  name is printf-style. */
int wm_params_add(wm_params *p, int rank, const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

wm_status wm_params_alloc(wm_params *p, wm_error *err);
wm_status wm_params_alloc_grad(wm_params *p, wm_error *err);
void wm_params_free(wm_params *p);

/* Views into the value / gradient buffer of entry i. */
float *wm_params_value(const wm_params *p, int i);
float *wm_params_gradient(const wm_params *p, int i);
int wm_params_find(const wm_params *p, const char *name);

/* Fills every entry from st's tensor prefix + name, which must exist with
 * exactly the entry's shape (F32, F16 or BF16).  Errors name the file,
 * the tensor and the mismatch. */
wm_status wm_params_load(wm_params *p, const wm_safetensors *st, const char *path, const char *prefix,
                         wm_error *err);
/* The same into buf (laid out like p->data: gradients, optimizer moments). */
wm_status wm_params_load_into(const wm_params *p, float *buf, const wm_safetensors *st, const char *path,
                              const char *prefix, wm_error *err);

/* Adds every entry as prefix + name to b, taking values from buf (a
 * buffer laid out like p->data: the values, gradients or optimizer
 * moments). */
wm_status wm_params_add_to(const wm_params *p, const float *buf, const char *prefix,
                           wm_safetensors_builder *b, wm_error *err);

#endif
