/* wm_synth: scenes of balls for wm-synth, as training clips and as
 * matched possible/impossible pairs (a plausibility benchmark in the
 * spirit of IntPhys).
 *
 * A scene is a wm_world (wm_physics.h), a look (wm_render.h), ball colours
 * and kinematic occluders (screens that may slide or rise).  Every random
 * choice comes from libwm's xoshiro256** generator (wm_rng.h)
 * seeded from (--seed, what is made, its number), so a clip depends only
 * on those: `--seed 7 --pairs 3`
 * and `--seed 7 --pairs 3 --category gravity` make the same gravity pairs,
 * and output is the same bytes on every run and machine.
 *
 * A pair is one scene run twice.  The impossible run applies a violation
 * to the world at one frame (a ball removed, created, moved, its gravity,
 * collisions, velocity, colour or size changed); everything else, noise
 * included, is shared.  The pair is drawn side by side while it is made:
 * violation_frame is the first frame whose pixels differ, every later
 * frame differs, and the difference is large within three frames; scenes
 * that fail this (a violation nobody could see) are drawn again.
 *
 * Ownership: the caller owns a wm_synth (wm_synth_new/free).  Pointers it
 * hands out (labels, frame pixels, objects) stay valid until the next call
 * that starts a clip or draws a frame. */
#ifndef WM_SYNTH_H
#define WM_SYNTH_H

#include <stdint.h>

#include "wm_error.h"
#include "wm_io.h"
#include "wm_physics.h"

/* ---- categories of violation */
typedef enum wm_synth_category {
    WM_SYNTH_NONE = -1,            /* a training clip: nothing is violated */
    WM_SYNTH_PERMANENCE = 0,       /* vanishes behind a screen; appears from behind one */
    WM_SYNTH_CONTINUITY,           /* teleports in open view */
    WM_SYNTH_GRAVITY,              /* falls up; hovers */
    WM_SYNTH_SOLIDITY,             /* passes through the floor, a wall or a ball */
    WM_SYNTH_INERTIA,              /* reverses, stops, speeds up or turns with nothing hit */
    WM_SYNTH_CONSTANCY,            /* changes colour or size while hidden */
    WM_SYNTH_CATEGORIES
} wm_synth_category;

/* "permanence", ..., or "none" for WM_SYNTH_NONE. */
const char *wm_synth_category_name(int category);

/* Parses a comma list of category names ("all" for every one) into a bit
 * mask (bit c for category c).  An unknown name gives WM_E_USAGE with a
 * message naming option and name. */
wm_status wm_synth_parse_categories(const char *option, const char *list, unsigned *mask, wm_error *err);

/* Parses "N" or "MIN-MAX" with lo <= MIN <= MAX <= hi. */
wm_status wm_synth_parse_range(const char *option, const char *text, int lo, int hi,
                               int *min, int *max, wm_error *err);

/* ---- the generator */
#define WM_SYNTH_MAX_BALLS 8       /* most balls --balls allows */
#define WM_SYNTH_PAIR_MIN_FRAMES 16
#define WM_SYNTH_PAIR_MIN_SIDE 16

typedef struct wm_synth_opts {
    uint64_t seed;
    int width, height;             /* pixels */
    int fps_num, fps_den;
    int frames;                    /* per clip */
    int balls_min, balls_max;      /* balls per scene */
    double noise;                  /* sensor noise sigma, levels */
    int background_only;           /* draw every frame without its balls (for tests) */
    double ball_scale;             /* every ball's radius times this (0.5-2; 1: wm-synth's sizes) */
} wm_synth_opts;

typedef struct wm_synth_labels {
    char id[96];                   /* clip id */
    uint64_t seed;                 /* --seed */
    int category;                  /* wm_synth_category */
    int possible;
    int violation_frame;           /* first frame differing from its pair; -1: none */
    int64_t pair;                  /* pair number within its category; -1: none */
    const char *variant;           /* e.g. "vanish", "hover"; "none" */
    int ball;                      /* id of the ball the violation is about; -1 */
    int diverge_frame;             /* both clips of a pair: where they first differ; -1 */
} wm_synth_labels;

typedef struct wm_synth_object {
    double x, y, r;                /* pixels of the output frame */
    int id;
    int visible;                   /* on screen and not fully hidden by a screen */
} wm_synth_object;

typedef struct wm_synth wm_synth;

/* Checks the options (WM_E_USAGE naming the option) and allocates. */
wm_synth *wm_synth_new(const wm_synth_opts *opts, wm_error *err);
void wm_synth_free(wm_synth **s);

/* Starts training clip n. */
wm_status wm_synth_begin_clip(wm_synth *s, int64_t n, wm_error *err);

/* WM_OK when pairs can be made with these options (frames and size large
 * enough), else WM_E_USAGE naming the option. */
wm_status wm_synth_check_pair_opts(const wm_synth_opts *opts, wm_error *err);

/* Starts the possible (impossible = 0) or impossible clip of pair k of a
 * category.  Planning a pair draws scenes until one passes the checks
 * above; WM_E_SYSTEM if none does (a frame too small to show it). */
wm_status wm_synth_begin_pair(wm_synth *s, wm_synth_category category, int64_t k, int impossible,
                              wm_error *err);

const wm_synth_labels *wm_synth_get_labels(const wm_synth *s);

/* The world of the clip being written, as the next frame will draw it
 * (after wm_synth_next_frame has drawn frames 0..k-1: frame k's), for
 * benchmarks that replay its physics. */
const wm_world *wm_synth_world(const wm_synth *s);

/* Draws the next frame of the clip: returns 1 and sets *rgb (width *
 * height * 3 bytes) and the objects, or 0 after the last frame. */
int wm_synth_next_frame(wm_synth *s, const uint8_t **rgb, const wm_synth_object **objects, int *n_objects);

/* Writes the started clip to w as clip, frame... and end messages
 * (docs/synth.md).  On SIGINT/SIGTERM it ends the clip where it is and
 * returns WM_E_INTERRUPTED. */
wm_status wm_synth_write_clip(wm_synth *s, wm_writer *w, wm_error *err);

#endif
