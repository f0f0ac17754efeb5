/* wm_safetensors: the safetensors file format, read by mmap and written
 * atomically.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * ({"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]},
 *   ..., "__metadata__": {"KEY": "VALUE", ...}}), then the raw tensors,
 * offsets counted from the end of the header.  It is what PyTorch's
 * `safetensors` package writes, and numpy reads it with json + frombuffer.
 *
 * Reading trusts nothing: the header length is capped
 * (WM_SAFETENSORS_MAX_HEADER) and must fit the file, the JSON is parsed
 * by wm_jsonparse (strict, one value per key, bounded depth and size; its
 * columns count the header's first byte, byte 8 of the file, as 1), then
 * checked against the format: no unknown keys in a tensor entry, values
 * of the format's types only (metadata values are strings; shapes and
 * offsets are integers written as such, below 2^53), every dtype known,
 * every shape's product equal to its byte range, and the ranges tiling the
 * data area exactly (no overlap, no gap, nothing outside), as the
 * reference implementation demands.  Any violation is WM_E_INPUT with the
 * path and what is wrong.
 *
 * Ownership: wm_safetensors_open returns a file the caller frees with
 * wm_safetensors_close (which sets the pointer to NULL); tensor views,
 * names and metadata strings borrow it and die with it. */
#ifndef WM_SAFETENSORS_H
#define WM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"

#define WM_SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20)   /* the reference's own limit */
#define WM_SAFETENSORS_MAX_RANK 8

typedef enum wm_safetensors_dtype {
    WM_ST_BOOL, WM_ST_U8, WM_ST_I8, WM_ST_F8_E5M2, WM_ST_F8_E4M3,
    WM_ST_I16, WM_ST_U16, WM_ST_F16, WM_ST_BF16,
    WM_ST_I32, WM_ST_U32, WM_ST_F32,
    WM_ST_I64, WM_ST_U64, WM_ST_F64,
    WM_ST_DTYPE_COUNT
} wm_safetensors_dtype;

const char *wm_safetensors_dtype_name(wm_safetensors_dtype t);
size_t wm_safetensors_dtype_size(wm_safetensors_dtype t);

typedef struct wm_safetensors_tensor {
    const char *name;                 /* NUL-terminated UTF-8 */
    wm_safetensors_dtype dtype;
    int rank;
    uint64_t shape[WM_SAFETENSORS_MAX_RANK];
    uint64_t numel;
    const uint8_t *data;              /* nbytes bytes inside the mapping (unaligned) */
    size_t nbytes;
} wm_safetensors_tensor;

typedef struct wm_safetensors wm_safetensors;

/* Maps and validates path.  NULL on failure with err filled (WM_E_INPUT
 * for a bad file, WM_E_SYSTEM when it cannot be opened or mapped). */
wm_safetensors *wm_safetensors_open(const char *path, wm_error *err);
void wm_safetensors_close(wm_safetensors **st);

size_t wm_safetensors_count(const wm_safetensors *st);
const wm_safetensors_tensor *wm_safetensors_at(const wm_safetensors *st, size_t i);   /* file order */
const wm_safetensors_tensor *wm_safetensors_find(const wm_safetensors *st, const char *name);

/* The __metadata__ value for key, or NULL. */
const char *wm_safetensors_meta(const wm_safetensors *st, const char *key);
size_t wm_safetensors_meta_count(const wm_safetensors *st);
void wm_safetensors_meta_at(const wm_safetensors *st, size_t i, const char **key, const char **value);

/* Copies t into out[0..numel) as float32, converting F16 and BF16.  A
 * tensor of another dtype or another element count is WM_E_INPUT. */
wm_status wm_safetensors_read_f32(const wm_safetensors_tensor *t, float *out, uint64_t numel, wm_error *err);

/* One tensor to write: data holds numel * dtype_size bytes. */
typedef struct wm_safetensors_entry {
    const char *name;
    wm_safetensors_dtype dtype;
    int rank;
    uint64_t shape[WM_SAFETENSORS_MAX_RANK];
    const void *data;
} wm_safetensors_entry;

/* Writes the tensors (in the given order) and metadata (meta[2i] is a key,
 * meta[2i+1] its value; n_meta pairs) to path.tmp.PID, syncs it and renames
 * it to path, so path is always either the old or the complete new file.
 * The header is padded with spaces so the data starts 8-byte aligned. */
wm_status wm_safetensors_write(const char *path, const wm_safetensors_entry *tensors, size_t n,
                               const char *const *meta, size_t n_meta, wm_error *err);

/* A list of tensors and metadata being assembled for one file: names,
 * keys and values are copied; tensor data is borrowed until the write.
 * Filters that share a model file use it to keep the tensors of the other
 * parts (the tokenizer keeps the dynamics model's and vice versa). */
typedef struct wm_safetensors_builder wm_safetensors_builder;

wm_safetensors_builder *wm_safetensors_builder_new(wm_error *err);
void wm_safetensors_builder_free(wm_safetensors_builder **b);
/* Adds prefix + name (prefix may be NULL).  A name added twice replaces
 * the earlier entry; so does a metadata key. */
wm_status wm_safetensors_builder_add(wm_safetensors_builder *b, const char *prefix, const char *name,
                                     wm_safetensors_dtype dtype, int rank, const uint64_t *shape,
                                     const void *data, wm_error *err);
wm_status wm_safetensors_builder_meta(wm_safetensors_builder *b, const char *key, const char *value,
                                      wm_error *err);
/* Adds every tensor and metadata key of st whose name starts with prefix
 * (NULL or "": all), borrowing st's mapping. */
wm_status wm_safetensors_builder_add_file(wm_safetensors_builder *b, const wm_safetensors *st,
                                          const char *prefix, wm_error *err);
/* Writes everything added (wm_safetensors_write). */
wm_status wm_safetensors_builder_write(const wm_safetensors_builder *b, const char *path, wm_error *err);

/* float32 -> float16 (round to nearest even; the inverse,
 * wm_f16_to_f32, is in wm_proto.h) and bfloat16 -> float32. */
uint16_t wm_f32_to_f16(float f);
float wm_bf16_to_f32(uint16_t h);

#endif
