/* wm_model: finding the model file every model-using filter reads.
 *
 * One safetensors file holds the tokenizer ("tokenizer.*") and the
 * dynamics model ("dynamics.*").  Filters take --model PATH; without it
 * the file is, in order: $WM_MODEL, then wm-default.safetensors in
 * EXEDIR/../models/ (a source tree: bin/wm-*), then in
 * EXEDIR/../share/wm/ (an installed prefix). */
#ifndef WM_MODEL_H
#define WM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"
#include "wm_safetensors.h"

#define WM_MODEL_DEFAULT_NAME "wm-default.safetensors"

/* Writes the model path to use into out (cap bytes): option when not
 * NULL, else the search above.  WM_E_USAGE when nothing is found, with a
 * message saying where it looked. */
wm_status wm_model_resolve(const char *option, char *out, size_t cap, wm_error *err);

/* Writing one part of the model file keeps the others: adds to b every
 * tensor and metadata key of the file at path (when there is one) whose
 * name does not start with prefix ("tokenizer.", "dynamics.").  The data
 * are borrowed from the file, which *old receives: close it with
 * wm_safetensors_close after the write.  *kept (may be NULL) counts the
 * tensors kept.  A file there that cannot be read is not replaced:
 * WM_E_INPUT. */
wm_status wm_model_keep_others(wm_safetensors_builder *b, const char *path, const char *prefix, wm_safetensors **old,
                               size_t *kept, wm_error *err);

/* Checks that an open model file holds a part (metadata prefix + "arch")
 * of architecture want.  WM_E_INPUT naming path otherwise: "holds no
 * <what> (no "<prefix>arch" metadata<hint>)" when it is missing, "<kind>
 * architecture "..." is not supported (this wm reads "<want>")" when it is
 * another. */
wm_status wm_model_check_arch(const wm_safetensors *st, const char *path, const char *prefix, const char *want,
                              const char *what, const char *kind, const char *hint, wm_error *err);

/* The integer metadata value key of an open model file, in [lo, hi];
 * WM_E_INPUT naming path and key when it is missing or not such a number. */
wm_status wm_model_meta_int(const wm_safetensors *st, const char *path, const char *key, int lo, int hi, int *out,
                            wm_error *err);

/* Reads the tensor name [C] of an open model file into out: WM_E_INPUT
 * naming path and the tensor when it is missing or of another shape. */
wm_status wm_model_read_vector(const wm_safetensors *st, const char *path, const char *name, int C, float *out,
                               wm_error *err);
/* Reads a part's normalisation, prefix + "norm.mean" and "norm.std" [C],
 * into mean and std: WM_E_INPUT naming path and the tensor when either is
 * missing, of another shape, or a std is not a positive number. */
wm_status wm_model_read_norm(const wm_safetensors *st, const char *path, const char *prefix, int C, float *mean,
                             float *std, wm_error *err);

/* Adds a part's metadata, each key prefixed: the pairs fixed[0..2n_fixed),
 * then "tokenizer" = the fingerprint of old's tokenizer tensors (when old
 * is not NULL and has them: which tokenizer the part was made with), then
 * the pairs kv[0..2n). */
wm_status wm_model_add_meta(wm_safetensors_builder *b, const char *prefix, const char *const *fixed, size_t n_fixed,
                            const wm_safetensors *old, const char *const *kv, size_t n, wm_error *err);

/* FNV-1a over the names and bytes of the file's tokenizer tensors: which
 * tokenizer a part of the model was trained on.  0 when there is none. */
uint64_t wm_model_tokenizer_fingerprint(const wm_safetensors *st);

#endif
