/* wm_render: draws wm-synth's world into rgb24 frames.
 *
 * Layers, back to front: the background (a wall with a colour gradient,
 * soft texture and an optional pattern; a textured floor below floor_y;
 * pillars), precomputed once per scene by wm_renderer_set_look; then the
 * balls (anti-aliased discs, shaded by one light with a specular
 * highlight); then the occluders (textured rectangles with anti-aliased
 * edges, in front of the balls); then sensor noise, drawn from a hash of
 * the noise seed and the pixel index, so every pixel's noise is known
 * without drawing the others.
 *
 * Visibility is exact: a ball is visible in a frame when some pixel it
 * covers differs from the frame drawn without balls (background,
 * occluders and the same noise).  wm_renderer_draw can also write that
 * ball-less frame (background_only), which is what tests compare with.
 *
 * Everything is in pixel coordinates of the output frame: x right, y down,
 * the pixel (i, j) covering [i, i+1) x [j, j+1).  Colours are 0..255.
 * Only + - * / and sqrt are used, so frames are the same bytes on every
 * machine (see wm_physics.h).
 *
 * Ownership: the caller owns the renderer (wm_renderer_new/free) and every
 * buffer it passes in. */
#ifndef WM_RENDER_H
#define WM_RENDER_H

#include <stdint.h>

#include "wm_error.h"

#define WM_RENDER_MAX_PILLARS 2

enum wm_pattern {
    WM_PATTERN_PLAIN = 0,
    WM_PATTERN_STRIPES,           /* soft diagonal stripes */
    WM_PATTERN_CHECKER,
    WM_PATTERN_GRID,              /* lines of colour b on colour a */
    WM_PATTERN_COUNT
};

typedef struct wm_render_rect {
    double x0, y0, x1, y1;        /* x0 < x1, y0 < y1 */
    float a[3], b[3];             /* pattern colours */
    int pattern;                  /* enum wm_pattern */
    double period;                /* pattern period, pixels */
    float border;                 /* border width in pixels (darker), 0: none */
} wm_render_rect;

typedef struct wm_render_disc {
    double x, y, r;               /* centre and radius, pixels */
    float color[3];               /* base colour before shading */
} wm_render_disc;

typedef struct wm_look {
    float wall_top[3], wall_bottom[3];   /* background gradient */
    int wall_pattern;                    /* enum wm_pattern (faint) */
    double wall_period;
    float wall_pattern_amp;              /* 0..1: how strongly the pattern shows */
    float floor_far[3], floor_near[3];   /* floor gradient, top edge to bottom */
    int floor_pattern;
    double floor_period;
    double floor_y;                      /* pixels; the floor fills [floor_y, height) */
    float texture_amp;                   /* soft value-noise texture, levels */
    double texture_cell;                 /* its cell size, pixels */
    uint64_t texture_seed;
    int n_pillars;
    wm_render_rect pillars[WM_RENDER_MAX_PILLARS];   /* drawn into the background */
    float light[3];                      /* unit vector towards the light (z: to the viewer) */
    float specular;                      /* highlight strength, 0..1 */
    float noise_sigma;                   /* sensor noise, levels (0: none) */
} wm_look;

typedef struct wm_renderer wm_renderer;

/* A renderer for width x height frames; NULL with err set on failure. */
wm_renderer *wm_renderer_new(int width, int height, wm_error *err);
void wm_renderer_free(wm_renderer **r);

/* Sets the scene's look and draws its background. */
void wm_renderer_set_look(wm_renderer *r, const wm_look *look);

/* Draws one frame into rgb (width * height * 3 bytes): the background,
 * discs[0..n_discs) in order, rects[0..n_rects) in front, and noise from
 * noise_seed.  visible[i] (when visible is not NULL) is set to 1 when disc
 * i changes a pixel of the frame, else 0.  With background_only the discs
 * are left out of rgb (visible is still computed as for the full frame). */
void wm_renderer_draw(wm_renderer *r, const wm_render_disc *discs, int n_discs,
                      const wm_render_rect *rects, int n_rects, uint64_t noise_seed,
                      uint8_t *rgb, uint8_t *visible, int background_only);

#endif
