/* What the unit tests share to compare float arrays. */
#ifndef UNIT_CHECK_H
#define UNIT_CHECK_H

#include <math.h>
#include <stddef.h>

/* The largest |a - ref| over the largest |ref| (over 1 when ref is all 0). */
static inline double max_rel(const float *a, const float *ref, size_t n)
{
    double e = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - ref[i]));
        s = fmax(s, fabs((double)ref[i]));
    }
    return e / (s > 0 ? s : 1);
}

#endif
