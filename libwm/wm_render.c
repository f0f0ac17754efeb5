#include "wm_render.h"

#include <stdlib.h>
#include <string.h>

/* a*b + c must round twice, as written, on every compiler (wm_physics.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>

#define NOISE_TABLE 1024          /* noise values drawn by 10 bits of a hash */

struct wm_renderer {
    int width, height;
    wm_look look;
    uint8_t *background;          /* width * height * 3 */
    uint8_t *scratch;             /* the other of the two frames drawn for visibility */
    int16_t noise[NOISE_TABLE];
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

static uint8_t to_u8(float v)
{
    v = clampf(v, 0, 255);
    return (uint8_t)(int)(v + 0.5f);
}

static double floor_pos(double v) { return (double)(int64_t)v; }   /* v >= 0 */

wm_renderer *wm_renderer_new(int width, int height, wm_error *err)
{
    if (width <= 0 || height <= 0) {
        wm_error_set(err, WM_E_USAGE, "frame size %dx%d is not positive", width, height);
        return NULL;
    }
    wm_renderer *r = calloc(1, sizeof *r);
    size_t n = (size_t)width * (size_t)height * 3;
    if (r) {
        r->background = malloc(n);
        r->scratch = malloc(n);
    }
    if (!r || !r->background || !r->scratch) {
        wm_renderer_free(&r);
        wm_error_set(err, WM_E_SYSTEM, "out of memory for %dx%d frames", width, height);
        return NULL;
    }
    r->width = width;
    r->height = height;
    return r;
}

void wm_renderer_free(wm_renderer **rp)
{
    wm_renderer *r = *rp;
    if (!r) return;
    free(r->background);
    free(r->scratch);
    free(r);
    *rp = NULL;
}

/* 0 (colour a) .. 1 (colour b) at offset (u, v) >= 0 inside a pattern. */
static float pattern_mix(int pattern, double u, double v, double period)
{
    double t, f;
    switch (pattern) {
    case WM_PATTERN_STRIPES:
        t = (u + v) / period;
        f = t - floor_pos(t);
        return clampf((float)((f < 0.5 ? 1 - 2 * f : 2 * f - 1) - 0.5) * 3 + 0.5f, 0, 1);
    case WM_PATTERN_CHECKER:
        return (float)(((int64_t)(u / period) + (int64_t)(v / period)) & 1);
    case WM_PATTERN_GRID:
        t = u / period;
        f = v / period;
        return (t - floor_pos(t) < 0.12 || f - floor_pos(f) < 0.12) ? 1.0f : 0.0f;
    default:
        return 0;
    }
}

/* The colour of a rect's surface at pixel centre (px, py). */
static void rect_color(const wm_render_rect *q, double px, double py, float out[3])
{
    double u = px - q->x0, v = py - q->y0;
    float m = pattern_mix(q->pattern, u > 0 ? u : 0, v > 0 ? v : 0, q->period);
    for (int c = 0; c < 3; c++) out[c] = q->a[c] + (q->b[c] - q->a[c]) * m;
    if (q->border > 0) {
        double e = u;
        if (q->x1 - px < e) e = q->x1 - px;
        if (v < e) e = v;
        if (q->y1 - py < e) e = q->y1 - py;
        if (e < q->border)
            for (int c = 0; c < 3; c++) out[c] *= 0.6f;
    }
}

/* Fraction of pixel [i, i+1) covered by [a, b). */
static float span_cover(int i, double a, double b)
{
    double lo = a > i ? a : i, hi = b < i + 1 ? b : i + 1;
    return hi > lo ? (float)(hi - lo) : 0;
}

/* Pixel index range [*lo, *hi) touched by [a, b), clipped to [0, n). */
static void span_pixels(double a, double b, int n, int *lo, int *hi)
{
    *lo = a <= 0 ? 0 : a >= n ? n : (int)a;
    *hi = b <= 0 ? 0 : b >= n ? n : (int)b + (b > (int)b);
}

/* Draws a rect over rgb; shade_x (pillars) lights it like a rounded column. */
static void rect_draw(const wm_renderer *r, const wm_render_rect *q, int shade_x, uint8_t *rgb)
{
    int x_lo, x_hi, y_lo, y_hi;
    span_pixels(q->x0, q->x1, r->width, &x_lo, &x_hi);
    span_pixels(q->y0, q->y1, r->height, &y_lo, &y_hi);
    for (int y = y_lo; y < y_hi; y++) {
        float cy = span_cover(y, q->y0, q->y1);
        for (int x = x_lo; x < x_hi; x++) {
            float cov = cy * span_cover(x, q->x0, q->x1);
            if (cov <= 0) continue;
            float col[3];
            rect_color(q, x + 0.5, y + 0.5, col);
            if (shade_x) {
                float s = (float)((x + 0.5 - q->x0) / (q->x1 - q->x0) * 2 - 1);
                float k = 0.7f + 0.4f * (1 - s * s);
                for (int c = 0; c < 3; c++) col[c] *= k;
            }
            uint8_t *p = rgb + ((size_t)y * r->width + x) * 3;
            for (int c = 0; c < 3; c++) p[c] = to_u8(col[c] * cov + p[c] * (1 - cov));
        }
    }
}

/* Smooth value noise in [-1, 1] on a lattice of cell-sized squares. */
static float value_noise(uint64_t seed, double x, double y, double cell)
{
    double gx = x / cell + 1024, gy = y / cell + 1024;   /* keep the lattice positive */
    int64_t ix = (int64_t)gx, iy = (int64_t)gy;
    float fx = (float)(gx - ix), fy = (float)(gy - iy);
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    float v[4];
    for (int k = 0; k < 4; k++) {
        uint64_t h = mix64(seed ^ mix64((uint64_t)(ix + (k & 1)) * 0x9e3779b97f4a7c15u + (uint64_t)(iy + (k >> 1))));
        v[k] = (float)(h >> 40) * (2.0f / 16777216.0f) - 1;
    }
    float top = v[0] + (v[1] - v[0]) * fx, bottom = v[2] + (v[3] - v[2]) * fx;
    return top + (bottom - top) * fy;
}

void wm_renderer_set_look(wm_renderer *r, const wm_look *look)
{
    r->look = *look;
    const wm_look *L = &r->look;
    double fy = L->floor_y;
    for (int y = 0; y < r->height; y++) {
        double py = y + 0.5;
        float floor_cov = span_cover(y, fy, r->height > fy ? r->height : fy);
        float tw = (float)(fy > 0 ? clampf((float)(py / fy), 0, 1) : 1);
        float tf = (float)(r->height > fy ? clampf((float)((py - fy) / (r->height - fy)), 0, 1) : 0);
        for (int x = 0; x < r->width; x++) {
            double px = x + 0.5;
            float wall[3], flo[3], col[3];
            float wm = L->wall_pattern_amp * pattern_mix(L->wall_pattern, px, py, L->wall_period);
            float fm = 0.5f * pattern_mix(L->floor_pattern, px, py > fy ? py - fy : 0, L->floor_period);
            /* a darker band just under the floor's edge: where balls touch it */
            float edge = py >= fy && py < fy + 1.5 ? 0.8f : 1.0f;
            for (int c = 0; c < 3; c++) {
                wall[c] = L->wall_top[c] + (L->wall_bottom[c] - L->wall_top[c]) * tw;
                wall[c] *= 1 - 0.3f * wm;
                flo[c] = L->floor_far[c] + (L->floor_near[c] - L->floor_far[c]) * tf;
                flo[c] *= (1 - 0.3f * fm) * edge;
                col[c] = wall[c] + (flo[c] - wall[c]) * floor_cov;
            }
            float tex = L->texture_amp * (value_noise(L->texture_seed, px, py, L->texture_cell) +
                                          0.5f * value_noise(L->texture_seed + 1, px, py, L->texture_cell / 2));
            uint8_t *p = r->background + ((size_t)y * r->width + x) * 3;
            for (int c = 0; c < 3; c++) p[c] = to_u8(col[c] + tex);
        }
    }
    for (int k = 0; k < L->n_pillars && k < WM_RENDER_MAX_PILLARS; k++)
        rect_draw(r, &L->pillars[k], 1, r->background);

    /* Approximately normal noise (a sum of 12 uniforms), from a fixed seed */
    uint64_t s = 0x5eed5eed5eedu;
    for (int i = 0; i < NOISE_TABLE; i++) {
        double z = -6;
        for (int k = 0; k < 12; k++) z += (double)(mix64(s += 0x9e3779b97f4a7c15u) >> 11) * 0x1.0p-53;
        double v = z * L->noise_sigma;
        r->noise[i] = (int16_t)(v < 0 ? -(int)(0.5 - v) : (int)(v + 0.5));
    }
}

/* Squared distance from the disc's centre to pixel (x, y)'s centre, and
 * the square of the reach inside which the disc touches a pixel: drawing
 * and the visibility test share them. */
static float disc_d2(const wm_render_disc *d, int x, int y, float *fx, float *fy)
{
    *fx = (float)(x + 0.5 - d->x);
    *fy = (float)(y + 0.5 - d->y);
    return *fx * *fx + *fy * *fy;
}

static float disc_reach2(const wm_render_disc *d)
{
    float reach = (float)(d->r + 0.5);
    return reach * reach;
}

/* Draws one shaded, anti-aliased disc over rgb. */
static void disc_draw(const wm_renderer *r, const wm_render_disc *d, uint8_t *rgb)
{
    const wm_look *L = &r->look;
    double R = d->r, reach = R + 0.5;
    if (!(R > 0)) return;
    int x_lo, x_hi, y_lo, y_hi;
    span_pixels(d->x - reach, d->x + reach, r->width, &x_lo, &x_hi);
    span_pixels(d->y - reach, d->y + reach, r->height, &y_lo, &y_hi);
    /* the half vector between the light and the viewer, for the highlight */
    float hx = L->light[0], hy = L->light[1], hz = L->light[2] + 1;
    float hn = sqrtf(hx * hx + hy * hy + hz * hz);
    hx /= hn; hy /= hn; hz /= hn;
    float inv_r = (float)(1 / R), reach2 = disc_reach2(d);
    for (int y = y_lo; y < y_hi; y++) {
        for (int x = x_lo; x < x_hi; x++) {
            float fx, fy, d2 = disc_d2(d, x, y, &fx, &fy);
            if (d2 >= reach2) continue;
            float cov = clampf((float)reach - sqrtf(d2), 0, 1);
            float nx = fx * inv_r, ny = fy * inv_r, q = nx * nx + ny * ny;
            float nz = q < 1 ? sqrtf(1 - q) : 0;
            float diff = nx * L->light[0] + ny * L->light[1] + nz * L->light[2];
            if (diff < 0) diff = 0;
            float h = nx * hx + ny * hy + nz * hz, spec = 0;
            if (h > 0) {
                spec = h * h;                     /* h^32 by squaring */
                spec *= spec; spec *= spec; spec *= spec; spec *= spec;
            }
            float shade = 0.3f + 0.7f * diff, glint = 255 * L->specular * spec;
            uint8_t *p = rgb + ((size_t)y * r->width + x) * 3;
            for (int c = 0; c < 3; c++) p[c] = to_u8((d->color[c] * shade + glint) * cov + p[c] * (1 - cov));
        }
    }
}

static void noise_add(const wm_renderer *r, uint64_t seed, uint8_t *rgb)
{
    if (r->look.noise_sigma <= 0) return;
    size_t n = (size_t)r->width * r->height;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = mix64(seed ^ (i * 0x9e3779b97f4a7c15u));
        uint8_t *p = rgb + i * 3;
        for (int c = 0; c < 3; c++) {
            int v = p[c] + r->noise[(h >> (10 * c)) & (NOISE_TABLE - 1)];
            p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

static void compose(const wm_renderer *r, const wm_render_disc *discs, int n_discs,
                    const wm_render_rect *rects, int n_rects, uint64_t noise_seed, uint8_t *rgb)
{
    memcpy(rgb, r->background, (size_t)r->width * r->height * 3);
    for (int i = 0; i < n_discs; i++) disc_draw(r, &discs[i], rgb);
    for (int i = 0; i < n_rects; i++) rect_draw(r, &rects[i], 0, rgb);
    noise_add(r, noise_seed, rgb);
}

void wm_renderer_draw(wm_renderer *r, const wm_render_disc *discs, int n_discs,
                      const wm_render_rect *rects, int n_rects, uint64_t noise_seed,
                      uint8_t *rgb, uint8_t *visible, int background_only)
{
    uint8_t *full = background_only ? r->scratch : rgb, *bare = background_only ? rgb : r->scratch;
    compose(r, discs, n_discs, rects, n_rects, noise_seed, full);
    if (!visible && !background_only) return;
    compose(r, NULL, 0, rects, n_rects, noise_seed, bare);
    if (!visible) return;
    for (int i = 0; i < n_discs; i++) {
        const wm_render_disc *d = &discs[i];
        double reach = d->r + 0.5;
        int x_lo, x_hi, y_lo, y_hi, seen = 0;
        span_pixels(d->x - reach, d->x + reach, r->width, &x_lo, &x_hi);
        span_pixels(d->y - reach, d->y + reach, r->height, &y_lo, &y_hi);
        float reach2 = disc_reach2(d);
        for (int y = y_lo; y < y_hi && !seen; y++) {
            for (int x = x_lo; x < x_hi && !seen; x++) {
                float fx, fy;
                if (disc_d2(d, x, y, &fx, &fy) >= reach2) continue;
                size_t o = ((size_t)y * r->width + x) * 3;
                seen = memcmp(full + o, bare + o, 3) != 0;
            }
        }
        visible[i] = (uint8_t)seen;
    }
}
