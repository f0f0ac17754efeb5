#include "wm_hash.h"

uint64_t wm_fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): callers pass n readable bytes */
    for (size_t k = 0; k < n; k++) h = (h ^ b[k]) * 0x100000001b3ULL;
    return h;
}
