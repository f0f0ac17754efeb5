/* wm_rng: a small deterministic random generator (splitmix64 seeding
 * xoshiro256**), the same sequence on every machine: training, scene
 * generation and tests all draw from it.  The state is the caller's. */
#ifndef WM_RNG_H
#define WM_RNG_H

#include <stdint.h>

typedef struct wm_rng { uint64_t s[4]; } wm_rng;

void wm_rng_seed(wm_rng *r, uint64_t seed);
uint64_t wm_rng_u64(wm_rng *r);
double wm_rng_uniform(wm_rng *r);             /* [0, 1) */
uint64_t wm_rng_below(wm_rng *r, uint64_t n); /* [0, n), n > 0 */
double wm_rng_normal(wm_rng *r);

#endif
