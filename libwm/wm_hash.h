/* wm_hash: FNV-1a (64 bit), the fingerprint of training data and of a
 * model file's tokenizer: a checkpoint remembers what it was trained on,
 * a dynamics model which tokenizer it expects.  Not for security. */
#ifndef WM_HASH_H
#define WM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define WM_FNV1A_SEED 0xcbf29ce484222325ULL

/* h continued over the n bytes at p (start from WM_FNV1A_SEED). */
uint64_t wm_fnv1a(uint64_t h, const void *p, size_t n);

#endif
