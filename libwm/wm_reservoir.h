/* wm_reservoir: a uniform sample of at most max items from each of several
 * sources (streams), kept by reservoir sampling, so a training set of any
 * size fits in memory and each source's items are equally likely to stay.
 * Deterministic for a seed and the order items are offered in.
 *
 * Items are fixed-size records (item_size bytes) whose contents the caller
 * owns; free_item releases a record's contents (the sample's replaced and
 * remaining items).  Used by the tokenizer's frame set (wm_train) and the
 * dynamics model's clip set (wm_dynamics_train). */
#ifndef WM_RESERVOIR_H
#define WM_RESERVOIR_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"

typedef struct wm_reservoir wm_reservoir;
typedef void (*wm_reservoir_free_fn)(void *item);

wm_reservoir *wm_reservoir_new(size_t item_size, size_t max_per_source, uint64_t seed, wm_reservoir_free_fn free_item,
                               wm_error *err);
void wm_reservoir_free(wm_reservoir **r);

/* Offers one item to source (0..1000).  *slot is the record to fill, or
 * NULL when the sample keeps what it has.  *replaces is 1 when the record
 * holds an item being replaced: the caller makes the new contents first,
 * then releases the old ones and fills the record (so a failure leaves the
 * old item whole); else the record is new and zeroed. */
wm_status wm_reservoir_offer(wm_reservoir *r, int source, void **slot, int *replaces, wm_error *err);

int wm_reservoir_sources(const wm_reservoir *r);
size_t wm_reservoir_size(const wm_reservoir *r, int source);       /* items kept (0 for an unknown source) */
uint64_t wm_reservoir_offered(const wm_reservoir *r, int source);  /* items offered */
size_t wm_reservoir_total(const wm_reservoir *r);                  /* items kept over every source */
void *wm_reservoir_item(const wm_reservoir *r, int source, size_t i);

#endif
