#include "wm_synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_msg.h"
#include "wm_rng.h"
#include "wm_physics.h"
#include "wm_proto.h"
#include "wm_render.h"
#include "wm_signal.h"

/* a*b + c must round twice, as written, on every compiler (wm_physics.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>                 /* sqrt and fabs only: both exact */

#define GRAVITY 9.81              /* units/s^2; the frame is one unit high */
#define SUBSTEP_HZ 200            /* physics substeps per second, at least */
#define MAX_OCCLUDERS 3
#define PAIR_ATTEMPTS 600         /* scenes drawn for one pair before giving up */
#define STRONG_DIFF 24            /* a pixel differs "strongly" by this many levels */
#define STRONG_AFTER 3            /* frames after the violation by which it must show strongly */

/* ------------------------------------------------------------------ rng */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The seed of thing number b of kind a, made from seed. */
static uint64_t seed_derive(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0xd1342543de82ef95u);
    h = splitmix64(&x);
    x = h ^ (b * 0xaf251af3b0f025b5u);
    return splitmix64(&x);
}

/* Draws are separate statements (or separate declarators) throughout: C
 * leaves the order of a call's arguments and of an operator's operands
 * unspecified, and compilers differ, so two draws in one expression would
 * give different scenes on different machines. */
static double urand(wm_rng *r, double lo, double hi) { return lo + (hi - lo) * wm_rng_uniform(r); }

static int below(wm_rng *r, int n) { return n <= 1 ? 0 : (int)wm_rng_below(r, (uint64_t)n); }

static double rng_sign(wm_rng *r) { return below(r, 2) ? 1 : -1; }

/* ------------------------------------------------------------ categories */

static const char *const category_names[WM_SYNTH_CATEGORIES] = {
    "permanence", "continuity", "gravity", "solidity", "inertia", "constancy"
};

const char *wm_synth_category_name(int c)
{
    return c >= 0 && c < WM_SYNTH_CATEGORIES ? category_names[c] : "none";
}

wm_status wm_synth_parse_categories(const char *option, const char *list, unsigned *mask, wm_error *err)
{
    unsigned m = 0;
    const char *p = list;
    while (1) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int found = n == 3 && strncmp(p, "all", 3) == 0;
        if (found) m |= (1u << WM_SYNTH_CATEGORIES) - 1;
        for (int c = 0; c < WM_SYNTH_CATEGORIES && !found; c++)
            if (strlen(category_names[c]) == n && strncmp(p, category_names[c], n) == 0) {
                m |= 1u << c;
                found = 1;
            }
        if (!found)
            return wm_error_set(err, WM_E_USAGE, "--%s: unknown category '%.*s' (one of permanence, continuity, "
                                "gravity, solidity, inertia, constancy, all)", option, (int)n, p);
        if (!comma) break;
        p = comma + 1;
    }
    *mask = m;
    return WM_OK;
}

wm_status wm_synth_parse_range(const char *option, const char *text, int lo, int hi, int *min, int *max,
                               wm_error *err)
{
    char *end;
    long a = strtol(text, &end, 10), b = a;
    if (end == text) goto bad;
    if (*end == '-') {
        const char *q = end + 1;
        b = strtol(q, &end, 10);
        if (end == q) goto bad;
    }
    if (*end) goto bad;
    if (a < lo || b > hi || a > b)
        return wm_error_set(err, WM_E_USAGE, "--%s: '%s' must lie within %d-%d, smallest first", option, text, lo, hi);
    *min = (int)a;
    *max = (int)b;
    return WM_OK;
bad:
    return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not N or MIN-MAX", option, text);
}

/* ---------------------------------------------------------------- scenes */

enum variant {
    V_NONE, V_VANISH, V_APPEAR, V_TELEPORT, V_FALL_UP, V_HOVER, V_THROUGH_FLOOR, V_THROUGH_WALL,
    V_THROUGH_BALL, V_REVERSE, V_STOP, V_SPEED_UP, V_TURN, V_COLOR, V_SIZE, V_COUNT
};

static const char *const variant_names[V_COUNT] = {
    "none", "vanish", "appear", "teleport", "falls-up", "hover", "through-floor", "through-wall",
    "through-ball", "reverse", "stop", "speed-up", "turn", "colour", "size"
};

/* The variants of each category, taken in turn by pair number. */
static const int category_variants[WM_SYNTH_CATEGORIES][5] = {
    { V_VANISH, V_APPEAR, 0 },
    { V_TELEPORT, 0 },
    { V_FALL_UP, V_HOVER, 0 },
    { V_THROUGH_FLOOR, V_THROUGH_WALL, V_THROUGH_BALL, 0 },
    { V_REVERSE, V_STOP, V_SPEED_UP, V_TURN, 0 },
    { V_COLOR, V_SIZE, 0 },
};

static int variant_is_hidden(int v) { return v == V_VANISH || v == V_APPEAR || v == V_COLOR || v == V_SIZE; }

/* A screen in front of the balls; it may slide by dx and change height
 * (lift: fraction of h shown) between two frames. */
typedef struct occluder {
    double x0, w, bottom, h;       /* at rest: left edge, width, bottom edge, full height */
    double dx;
    int move_f0, move_f1;
    double lift_from, lift_to;
    int lift_f0, lift_f1;
    wm_render_rect look;
} occluder;

typedef struct scene {
    wm_world world;                /* at frame 0; a ball not yet in the scene has alive 0 */
    float color[WM_WORLD_MAX_BALLS][3];
    int n_occ;
    occluder occ[MAX_OCCLUDERS];
    wm_look look;
    uint64_t noise_seed;
} scene;

typedef struct violation {
    int kind;                      /* enum variant */
    int frame;                     /* applied just before this frame is drawn */
    int ball, other;
    double x, y, vx, vy, r;
    float color[3];
} violation;

/* A scene being played: its world moves on, colours may change. */
typedef struct run {
    wm_world world;
    float color[WM_WORLD_MAX_BALLS][3];
    const scene *sc;
    const violation *v;            /* NULL: the possible clip */
    int frame;
} run;

/* Where each ball was at a frame of the possible run, as the planners see it. */
typedef struct track {
    double x, y, vx, vy, r;
    uint8_t alive, resting, clear, hidden;
    unsigned contacts;             /* during the step to the next frame */
    uint32_t hit_balls;
    double hit_speed;
} track;

struct wm_synth {
    wm_synth_opts o;
    double scale;                  /* pixels per world unit (the frame height) */
    double world_w;                /* world width in units */
    double frame_dt;
    int substeps;
    double r_lo, r_hi;             /* ball radii, units */
    wm_renderer *renderer;
    uint8_t *frame_a, *frame_b;
    track *tracks;                 /* frames x WM_WORLD_MAX_BALLS */

    scene sc;                      /* the clip being written */
    violation v;
    int has_v;
    run rn;
    wm_synth_labels labels;
    wm_synth_object objects[WM_WORLD_MAX_BALLS];
    int n_objects;

    int plan_valid, plan_category, plan_vf;   /* the last pair planned */
    int64_t plan_k;
    scene plan_sc;
    violation plan_v;
    wm_msgbuf mb;
};

static double dmin(double a, double b) { return a < b ? a : b; }
static double dmax(double a, double b) { return a > b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

static void hsv_to_rgb(double h, double s, double v, float out[3])
{
    h -= 360 * (double)(int64_t)(h / 360);
    if (h < 0) h += 360;
    double c = v * s, hp = h / 60, m = v - c;
    double x = c * (1 - fabs(hp - 2 * (double)(int64_t)(hp / 2) - 1));
    double rgb[3] = { 0, 0, 0 };
    int sector = (int)hp;
    switch (sector) {
    case 0: rgb[0] = c; rgb[1] = x; break;
    case 1: rgb[0] = x; rgb[1] = c; break;
    case 2: rgb[1] = c; rgb[2] = x; break;
    case 3: rgb[1] = x; rgb[2] = c; break;
    case 4: rgb[0] = x; rgb[2] = c; break;
    default: rgb[0] = c; rgb[2] = x; break;
    }
    for (int i = 0; i < 3; i++) out[i] = (float)((rgb[i] + m) * 255);
}

static float color_distance(const float a[3], const float b[3])
{
    float d = 0;
    for (int i = 0; i < 3; i++) {
        float e = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (e > d) d = e;
    }
    return d;
}

static void sample_pattern_rect(wm_synth *s, wm_rng *rng, wm_render_rect *q, int pillar)
{
    double hue = urand(rng, 0, 360);
    double sat = pillar ? urand(rng, 0.05, 0.3) : urand(rng, 0.15, 0.6);
    double val = urand(rng, 0.35, 0.85);
    hsv_to_rgb(hue, sat, val, q->a);
    if (below(rng, 2)) {
        double dh = urand(rng, 20, 60), dv = urand(rng, 0.6, 0.85);
        hsv_to_rgb(hue + dh, sat, val * dv, q->b);
    } else {
        hsv_to_rgb(hue, sat * 0.7, dmin(1, val * urand(rng, 1.1, 1.3)), q->b);
    }
    q->pattern = below(rng, WM_PATTERN_COUNT);
    q->period = s->scale * urand(rng, 0.04, 0.12);
    q->border = pillar ? 0 : (float)(s->scale * urand(rng, 0.015, 0.03));
}

/* The world box, its physics constants and the look: a new empty scene. */
static void scene_base(wm_synth *s, wm_rng *rng, scene *sc)
{
    memset(sc, 0, sizeof *sc);
    wm_world_init(&sc->world, s->world_w, urand(rng, 0.78, 0.9), GRAVITY);
    sc->world.e_floor = urand(rng, 0.45, 0.8);
    sc->world.e_wall = urand(rng, 0.6, 0.9);
    sc->world.e_ball = urand(rng, 0.7, 0.95);
    sc->world.roll_friction = urand(rng, 0.1, 0.35);

    wm_look *L = &sc->look;
    double hue = urand(rng, 0, 360), sat = urand(rng, 0.03, 0.35);
    double val = urand(rng, 0.45, 0.95);
    hsv_to_rgb(hue, sat, val, L->wall_top);
    double dh = urand(rng, -25, 25), dv = urand(rng, 0.65, 1.0);
    hsv_to_rgb(hue + dh, sat, val * dv, L->wall_bottom);
    static const int wall_patterns[] = { WM_PATTERN_PLAIN, WM_PATTERN_PLAIN, WM_PATTERN_STRIPES,
                                         WM_PATTERN_CHECKER, WM_PATTERN_GRID };
    L->wall_pattern = wall_patterns[below(rng, 5)];
    L->wall_period = s->scale * urand(rng, 0.08, 0.25);
    L->wall_pattern_amp = (float)urand(rng, 0.2, 0.6);
    double fhue = urand(rng, 0, 360), fsat = urand(rng, 0.1, 0.45);
    double fval = urand(rng, 0.25, 0.65);
    hsv_to_rgb(fhue, fsat, fval * 0.85, L->floor_far);
    hsv_to_rgb(fhue, fsat, dmin(1, fval * 1.15), L->floor_near);
    L->floor_pattern = below(rng, WM_PATTERN_COUNT);
    L->floor_period = s->scale * urand(rng, 0.05, 0.15);
    L->floor_y = sc->world.floor_y * s->scale;
    L->texture_amp = (float)urand(rng, 3, 14);
    L->texture_cell = s->scale * urand(rng, 0.08, 0.3);
    L->texture_seed = wm_rng_u64(rng);
    double lx = rng_sign(rng), ly = -urand(rng, 0.3, 0.7);
    lx *= urand(rng, 0.2, 0.6);
    L->light[0] = (float)lx;
    L->light[1] = (float)ly;
    L->light[2] = (float)sqrt(1 - lx * lx - ly * ly);
    L->specular = (float)urand(rng, 0.2, 0.7);
    L->noise_sigma = (float)s->o.noise;
    sc->noise_seed = wm_rng_u64(rng);
}

static void scene_add_pillar(wm_synth *s, wm_rng *rng, scene *sc, double x0, double w)
{
    if (wm_world_add_pillar(&sc->world, x0, x0 + w) < 0) return;
    wm_render_rect *q = &sc->look.pillars[sc->look.n_pillars++];
    sample_pattern_rect(s, rng, q, 1);
    q->x0 = x0 * s->scale;
    q->x1 = (x0 + w) * s->scale;
    q->y0 = -1;
    q->y1 = sc->world.floor_y * s->scale;
}

static void scene_add_occluder(wm_synth *s, wm_rng *rng, scene *sc, double x0, double w, double bottom, double h)
{
    if (sc->n_occ >= MAX_OCCLUDERS) return;
    occluder *o = &sc->occ[sc->n_occ++];
    *o = (occluder){ .x0 = x0, .w = w, .bottom = bottom, .h = h, .lift_from = 1, .lift_to = 1 };
    sample_pattern_rect(s, rng, &o->look, 0);
}

static double hue_of(const float c[3])
{
    float mx = c[0] > c[1] ? c[0] : c[1], mn = c[0] < c[1] ? c[0] : c[1];
    if (c[2] > mx) mx = c[2];
    if (c[2] < mn) mn = c[2];
    double d = mx - mn, h;
    if (d <= 0) return 0;
    if (mx == c[0]) h = 60 * (c[1] - c[2]) / d;
    else if (mx == c[1]) h = 60 * (c[2] - c[0]) / d + 120;
    else h = 60 * (c[0] - c[1]) / d + 240;
    return h < 0 ? h + 360 : h;
}

/* Degrees between two colours' hues, around the circle. */
static double hue_gap(const float a[3], const float b[3])
{
    double d = fabs(hue_of(a) - hue_of(b));
    return d > 180 ? 360 - d : d;
}

static void random_saturated(wm_rng *rng, float out[3])
{
    double h = urand(rng, 0, 360), sat = urand(rng, 0.6, 0.95), val = urand(rng, 0.6, 1.0);
    hsv_to_rgb(h, sat, val, out);
}

/* A saturated colour that stands out from the wall and the floor, of a
 * hue well apart from the other balls'. */
static void sample_ball_color(wm_rng *rng, const scene *sc, int n_balls, float out[3])
{
    float wall_mid[3], floor_mid[3];
    for (int c = 0; c < 3; c++) {
        wall_mid[c] = 0.5f * (sc->look.wall_top[c] + sc->look.wall_bottom[c]);
        floor_mid[c] = 0.5f * (sc->look.floor_far[c] + sc->look.floor_near[c]);
    }
    for (int tries = 0; tries < 40; tries++) {
        random_saturated(rng, out);
        int ok = color_distance(out, wall_mid) > 70 && color_distance(out, floor_mid) > 70;
        for (int i = 0; i < n_balls && ok; i++) ok = hue_gap(out, sc->color[i]) > 50;
        if (ok) return;
    }
}

static double sample_radius(wm_synth *s, wm_rng *rng) { return urand(rng, s->r_lo, s->r_hi); }

static int scene_add_ball(wm_rng *rng, scene *sc, double x, double y, double vx, double vy, double r)
{
    int i = wm_world_add_ball(&sc->world, x, y, vx, vy, r, r * r * urand(rng, 0.5, 2.0));
    if (i >= 0) sample_ball_color(rng, sc, i, sc->color[i]);
    return i;
}

/* 1 when a ball of radius r at (x, y) would touch no ball, pillar or wall. */
static int scene_has_room(const scene *sc, double x, double y, double r, double gap)
{
    const wm_world *w = &sc->world;
    if (x - r < gap || x + r > w->width - gap || y + r > w->floor_y + 1e-9) return 0;
    for (int i = 0; i < w->n_balls; i++) {
        const wm_ball *b = &w->balls[i];
        double dx = b->x - x, dy = b->y - y, rr = b->r + r + gap;
        if (b->alive && dx * dx + dy * dy < rr * rr) return 0;
    }
    for (int k = 0; k < w->n_pillars; k++)
        if (x + r > w->pillars[k].x0 - gap && x - r < w->pillars[k].x1 + gap) return 0;
    return 1;
}

/* Adds up to n balls thrown, dropped or rolling, outside [avoid0, avoid1]. */
static void scene_add_extras(wm_synth *s, wm_rng *rng, scene *sc, int n, double avoid0, double avoid1)
{
    for (int k = 0; k < n; k++) {
        double r = sample_radius(s, rng);
        for (int tries = 0; tries < 30; tries++) {
            double x = urand(rng, r, s->world_w - r);
            if (x + r > avoid0 && x - r < avoid1) continue;
            int on_floor = below(rng, 2);
            double y = on_floor ? sc->world.floor_y - r : urand(rng, 0.12, sc->world.floor_y - r - 0.05);
            if (!scene_has_room(sc, x, y, r, 0.02)) continue;
            double vx = urand(rng, -0.9, 0.9), vy = on_floor ? 0 : urand(rng, -2.0, 0.5);
            scene_add_ball(rng, sc, x, y, vx, vy, r);
            break;
        }
    }
}

static int sample_ball_count(wm_synth *s, wm_rng *rng)
{
    return s->o.balls_min + below(rng, s->o.balls_max - s->o.balls_min + 1);
}

/* ------------------------------------------------------------ playing */

static double ramp(int f, int f0, int f1)
{
    if (f1 <= f0) return f >= f0 ? 1 : 0;
    if (f <= f0) return 0;
    if (f >= f1) return 1;
    return (double)(f - f0) / (f1 - f0);
}

static void occluder_rect(const wm_synth *s, const occluder *o, int f, wm_render_rect *q)
{
    double x0 = o->x0 + o->dx * ramp(f, o->move_f0, o->move_f1);
    double lift = o->lift_from + (o->lift_to - o->lift_from) * ramp(f, o->lift_f0, o->lift_f1);
    *q = o->look;
    q->x0 = x0 * s->scale;
    q->x1 = (x0 + o->w) * s->scale;
    q->y1 = o->bottom * s->scale;
    q->y0 = (o->bottom - o->h * lift) * s->scale;
}

static void run_start(run *rn, const scene *sc, const violation *v)
{
    rn->world = sc->world;
    memcpy(rn->color, sc->color, sizeof rn->color);
    rn->sc = sc;
    rn->v = v;
    rn->frame = 0;
}

static void violation_apply(run *rn, const violation *v)
{
    wm_world *w = &rn->world;
    wm_ball *b = &w->balls[v->ball];
    switch (v->kind) {
    case V_VANISH: b->alive = 0; return;
    case V_APPEAR: b->alive = 1; b->x = v->x; b->y = v->y; b->vx = v->vx; b->vy = v->vy; break;
    case V_TELEPORT: b->x = v->x; b->y = v->y; break;
    case V_FALL_UP: b->gscale = -1; b->resting = 0; break;
    case V_HOVER: b->gscale = 0; b->vy = 0; break;
    case V_THROUGH_FLOOR: b->collide &= ~(unsigned)WM_COLLIDE_FLOOR; b->resting = 0; break;
    case V_THROUGH_WALL: b->collide &= ~(unsigned)WM_COLLIDE_PILLARS; break;
    case V_THROUGH_BALL:
        b->ghost |= 1u << v->other;
        w->balls[v->other].ghost |= 1u << v->ball;
        wm_world_wake(w, v->other);
        break;
    case V_REVERSE: case V_STOP: case V_SPEED_UP: case V_TURN: b->vx = v->vx; b->vy = v->vy; break;
    case V_COLOR: memcpy(rn->color[v->ball], v->color, sizeof v->color); return;
    case V_SIZE: b->r = v->r; b->y = v->y; break;
    default: return;
    }
    wm_world_wake(w, v->ball);
    if (v->kind == V_FALL_UP || v->kind == V_THROUGH_FLOOR) b->resting = 0;
}

/* Draws the run's current frame into rgb (and objects, when not NULL);
 * bare: without the balls. */
static void run_draw(wm_synth *s, run *rn, uint8_t *rgb, wm_synth_object *objects, int *n_objects, int bare)
{
    if (rn->v && rn->frame == rn->v->frame) violation_apply(rn, rn->v);
    wm_render_disc discs[WM_WORLD_MAX_BALLS];
    int ids[WM_WORLD_MAX_BALLS], n = 0;
    for (int i = 0; i < rn->world.n_balls; i++) {
        const wm_ball *b = &rn->world.balls[i];
        if (!b->alive) continue;
        discs[n] = (wm_render_disc){ b->x * s->scale, b->y * s->scale, b->r * s->scale, { 0, 0, 0 } };
        memcpy(discs[n].color, rn->color[i], sizeof discs[n].color);
        ids[n++] = i;
    }
    wm_render_rect rects[MAX_OCCLUDERS];
    for (int k = 0; k < rn->sc->n_occ; k++) occluder_rect(s, &rn->sc->occ[k], rn->frame, &rects[k]);
    uint8_t visible[WM_WORLD_MAX_BALLS];
    wm_renderer_draw(s->renderer, discs, n, rects, rn->sc->n_occ, seed_derive(rn->sc->noise_seed, 1, (uint64_t)rn->frame),
                     rgb, objects ? visible : NULL, bare);
    if (!objects) return;
    for (int k = 0; k < n; k++)
        objects[k] = (wm_synth_object){ .x = discs[k].x, .y = discs[k].y, .r = discs[k].r, .id = ids[k],
                                        .visible = visible[k] };
    *n_objects = n;
}

static void run_step(wm_synth *s, run *rn)
{
    wm_world_clear_contacts(&rn->world);
    wm_world_advance(&rn->world, s->frame_dt, s->substeps);
    rn->frame++;
}

/* Circle against an axis-aligned rect, in pixels. */
static int disc_touches_rect(double x, double y, double r, const wm_render_rect *q)
{
    double nx = dmax(q->x0, dmin(x, q->x1)), ny = dmax(q->y0, dmin(y, q->y1));
    return (nx - x) * (nx - x) + (ny - y) * (ny - y) < r * r;
}

static int disc_inside_rect(double x, double y, double r, const wm_render_rect *q)
{
    return x - r >= q->x0 && x + r <= q->x1 && y - r >= q->y0 && y + r <= q->y1;
}

/* Ball of world radius r at world (x, y), frame f: 1 when fully on screen
 * and clear of every screen (with a margin). */
static int ball_clear_at(const wm_synth *s, const scene *sc, int f, double x, double y, double r)
{
    double px = x * s->scale, py = y * s->scale, pr = r * s->scale + 1.5;
    if (px - pr < 0 || px + pr > s->o.width || py - pr < 0 || py + pr > s->o.height) return 0;
    for (int k = 0; k < sc->n_occ; k++) {
        wm_render_rect q;
        occluder_rect(s, &sc->occ[k], f, &q);
        if (disc_touches_rect(px, py, pr, &q)) return 0;
    }
    return 1;
}

static int ball_hidden_at(const wm_synth *s, const scene *sc, int f, double x, double y, double r)
{
    double px = x * s->scale, py = y * s->scale, pr = r * s->scale + 1;
    for (int k = 0; k < sc->n_occ; k++) {
        wm_render_rect q;
        occluder_rect(s, &sc->occ[k], f, &q);
        if (disc_inside_rect(px, py, pr, &q)) return 1;
    }
    return 0;
}

static track *track_at(wm_synth *s, int f, int i) { return &s->tracks[(size_t)f * WM_WORLD_MAX_BALLS + i]; }

/* Plays the possible run of a scene without drawing, recording tracks. */
static void scene_simulate(wm_synth *s, const scene *sc)
{
    run rn;
    run_start(&rn, sc, NULL);
    for (int f = 0; f < s->o.frames; f++) {
        for (int i = 0; i < rn.world.n_balls; i++) {
            const wm_ball *b = &rn.world.balls[i];
            track *t = track_at(s, f, i);
            *t = (track){ b->x, b->y, b->vx, b->vy, b->r, (uint8_t)b->alive, (uint8_t)b->resting, 0, 0, 0, 0, 0 };
            if (b->alive) {
                t->clear = (uint8_t)ball_clear_at(s, sc, f, b->x, b->y, b->r);
                t->hidden = (uint8_t)ball_hidden_at(s, sc, f, b->x, b->y, b->r);
            }
        }
        run_step(s, &rn);
        for (int i = 0; i < rn.world.n_balls; i++) {
            track *t = track_at(s, f, i);
            t->contacts = rn.world.balls[i].contacts;
            t->hit_balls = rn.world.balls[i].hit_balls;
            t->hit_speed = rn.world.balls[i].hit_speed;
        }
    }
}

/* ------------------------------------------------------------ planning */

/* Frames where a violation may first show: after some context, before
 * the end. */
static void pair_window(const wm_synth *s, int *lo, int *hi)
{
    int n = s->o.frames;
    *lo = imax(3, 3 * n / 10);
    *hi = n - imax(4, n / 4);
}

/* A frame in the first half of the window for an event to happen at. */
static int event_frame(wm_synth *s, wm_rng *rng)
{
    int lo, hi;
    pair_window(s, &lo, &hi);
    return lo + below(rng, imax(1, (hi - lo) / 2));
}

static double speed_of(const track *t) { return sqrt(t->vx * t->vx + t->vy * t->vy); }

/* A ball rolls (or hops) behind a standing screen.  Violations: it vanishes
 * there, or changes colour or size while hidden. */
static int plan_roll_behind(wm_synth *s, wm_rng *rng, scene *sc, violation *v, int kind)
{
    scene_base(s, rng, sc);
    wm_world *w = &sc->world;
    double r = sample_radius(s, rng), W = s->world_w;
    double ow = 2 * r + urand(rng, 0.08, 0.22);
    double oh = dmin(urand(rng, 2 * r + 0.08, dmax(2 * r + 0.1, 0.55)), w->floor_y - 0.05);
    double xo = urand(rng, 0.38, 0.62) * W;
    scene_add_occluder(s, rng, sc, xo - ow / 2, ow, w->floor_y + urand(rng, 0.02, 0.06), oh);
    double dir = rng_sign(rng), te = event_frame(s, rng) * s->frame_dt;
    double room = dir > 0 ? xo - r - 0.01 : W - xo - r - 0.01, near = ow / 2 + r + 0.04;
    if (room < near) return 0;
    double dist = urand(rng, near, room);
    int hop = below(rng, 10) < 3;
    double speed = hop ? dist / te : (dist + 0.5 * w->roll_friction * te * te) / te;
    if (speed > 2.4) return 0;
    if (speed < 0.25 || (!hop && speed < w->roll_friction * te))
        speed = urand(rng, 0.4, 1.4);   /* a long clip: it may come round later */
    double x = xo - dir * dist, y = w->floor_y - r, vy = 0;
    if (hop) { y -= urand(rng, 0, 0.15); vy = -urand(rng, 1.0, 2.2); }
    int actor = scene_add_ball(rng, sc, x, y, dir * speed, vy, r);
    scene_add_extras(s, rng, sc, sample_ball_count(s, rng) - 1, dmin(x, xo) - ow / 2 - 2 * r, dmax(x, xo) + ow / 2 + 2 * r);
    if (kind == V_NONE) return 1;

    int lo, hi, n = s->o.frames;
    pair_window(s, &lo, &hi);
    scene_simulate(s, sc);
    for (int f = 2; f < n; f++) {
        const track *t = track_at(s, f, actor);
        if (!t->hidden || track_at(s, f - 1, actor)->hidden) continue;
        int back = -1, again = 0;           /* the frame it shows again, had nothing happened */
        for (int g = f + 1; g < n && back < 0; g++)
            if (!track_at(s, g, actor)->hidden) back = g;
        for (int g = back + 1; back > 0 && g < n && !again; g++) again = track_at(s, g, actor)->hidden;
        if (back < lo || back > hi || again) continue;   /* hidden again later: the clips would agree there */
        *v = (violation){ .kind = kind, .frame = f, .ball = actor, .other = -1 };
        if (kind == V_COLOR) {
            float c[3];
            for (int tries = 0; tries < 20; tries++) {
                random_saturated(rng, c);
                if (hue_gap(c, sc->color[actor]) > 100) break;
            }
            memcpy(v->color, c, sizeof c);
        } else if (kind == V_SIZE) {
            int grow = below(rng, 2);
            for (int k = 0; k < 2; k++, grow = !grow) {
                v->r = r * (grow ? urand(rng, 1.45, 1.7) : urand(rng, 0.55, 0.65));
                v->y = t->resting ? w->floor_y - v->r : t->y;
                if (ball_hidden_at(s, sc, f, t->x, v->y, v->r)) break;
            }
            if (!ball_hidden_at(s, sc, f, t->x, v->y, v->r)) continue;
        }
        return 1;
    }
    return 0;
}

/* A screen rises or slides into place, showing first that nothing is
 * behind it; then a ball rolls out from behind it. */
static int plan_appear(wm_synth *s, wm_rng *rng, scene *sc, violation *v, int kind)
{
    scene_base(s, rng, sc);
    wm_world *w = &sc->world;
    int lo, hi;
    pair_window(s, &lo, &hi);
    double r = sample_radius(s, rng), W = s->world_w;
    double ow = 2 * r + urand(rng, 0.1, 0.24);
    double oh = dmin(urand(rng, 2 * r + 0.08, dmax(2 * r + 0.1, 0.5)), w->floor_y - 0.05);
    double xo = urand(rng, 0.35, 0.65) * W;
    scene_add_occluder(s, rng, sc, xo - ow / 2, ow, w->floor_y + urand(rng, 0.02, 0.06), oh);
    occluder *o = &sc->occ[0];
    int f0 = 1 + below(rng, imax(1, lo / 3)), f1 = f0 + 3 + below(rng, imax(1, lo / 3));
    double avoid0 = xo - ow / 2 - 3 * r, avoid1 = xo + ow / 2 + 3 * r;
    if (below(rng, 2)) {             /* rises from the floor */
        o->lift_from = 0.06;
        o->lift_f0 = f0;
        o->lift_f1 = f1;
    } else {                                /* slides in from one side */
        double side = rng_sign(rng), start = side < 0 ? urand(rng, -0.6 * ow, 0.05) :
                                                        urand(rng, W - ow - 0.05, W - 0.4 * ow);
        if (fabs(start - o->x0) < ow + 2 * r + 0.05) return 0;
        o->dx = o->x0 - start;
        o->x0 = start;
        o->move_f0 = f0;
        o->move_f1 = f1;
        avoid0 = dmin(avoid0, start - 2 * r);
        avoid1 = dmax(avoid1, start + ow + 2 * r);
    }
    scene_add_extras(s, rng, sc, sample_ball_count(s, rng) - 1, avoid0, avoid1);
    double dir = rng_sign(rng), speed = urand(rng, 0.5, 1.2), y = w->floor_y - r;
    int actor = scene_add_ball(rng, sc, xo, y, 0, 0, r);
    if (actor < 0) return 0;
    w->balls[actor].alive = 0;              /* not there, unless the violation puts it there */
    if (kind == V_NONE) return 1;

    int emerge = event_frame(s, rng);
    int spawn = emerge - (int)((ow / 2 - r) / speed / s->frame_dt + 1);
    if (spawn <= f1 || spawn >= hi) return 0;
    scene_simulate(s, sc);
    if (!ball_hidden_at(s, sc, spawn, xo, y, r)) return 0;
    for (int i = 0; i < w->n_balls; i++) {
        const track *t = track_at(s, spawn, i);
        double dx = t->x - xo, dy = t->y - y, rr = t->r + r + 0.03;
        if (i != actor && t->alive && dx * dx + dy * dy < rr * rr) return 0;
    }
    *v = (violation){ .kind = V_APPEAR, .frame = spawn, .ball = actor, .other = -1,
                      .x = xo, .y = y, .vx = dir * speed, .vy = 0 };
    return 1;
}

/* Balls in open view, thrown, dropped or rolling.  Violations: teleport,
 * falling up, hovering, and the inertia ones. */
static int plan_open(wm_synth *s, wm_rng *rng, scene *sc, violation *v, int kind)
{
    scene_base(s, rng, sc);
    wm_world *w = &sc->world;
    double r = sample_radius(s, rng), W = s->world_w;
    if (below(rng, 10) < 4) {        /* a screen somewhere, for variety */
        double ow = urand(rng, 0.12, 0.3), xo = urand(rng, 0.05, W - ow - 0.05);
        double bottom = w->floor_y + urand(rng, 0.02, 0.06), h = urand(rng, 0.15, 0.45);
        scene_add_occluder(s, rng, sc, xo, ow, bottom, h);
    }
    int motion = below(rng, 3);     /* 0 thrown, 1 rolling, 2 dropped */
    if (kind == V_HOVER || kind == V_TURN) motion = motion == 1 ? 0 : motion;
    double x = urand(rng, 0.2, 0.8) * W, y, vx, vy;
    if (motion == 1) {
        y = w->floor_y - r;
        vx = rng_sign(rng);
        vx *= urand(rng, 0.5, 1.4);
        vy = 0;
    } else {
        y = urand(rng, 0.3, w->floor_y - r - 0.05);
        vx = rng_sign(rng);
        vx *= urand(rng, 0.2, 1.2);
        vy = motion == 0 ? -urand(rng, 1.0, 3.0) : urand(rng, -0.5, 0.5);
    }
    int lo, hi, n = s->o.frames;
    pair_window(s, &lo, &hi);
    if (kind == V_HOVER && lo * s->frame_dt > 1.0) {   /* a long clip: keep it bouncing till then */
        w->e_floor = urand(rng, 0.86, 0.93);
        vy = -urand(rng, 3.0, 4.5);
    }
    int actor = scene_add_ball(rng, sc, x, y, vx, vy, r);
    scene_add_extras(s, rng, sc, sample_ball_count(s, rng) - 1, x - 3 * r, x + 3 * r);
    if (kind == V_NONE) return 1;

    scene_simulate(s, sc);
    int span = hi - lo + 1, start = below(rng, span);
    for (int k = 0; k < span; k++) {
        int f = lo + (start + k) % span;
        if (f < 1 || f + 3 >= n) continue;
        const track *t = track_at(s, f, actor);
        if (!t->clear || !track_at(s, f - 1, actor)->clear || !track_at(s, f + 1, actor)->clear) continue;
        *v = (violation){ .kind = kind, .frame = f, .ball = actor, .other = -1, .vx = t->vx, .vy = t->vy };
        double speed = speed_of(t), gap = w->floor_y - t->y - t->r;
        if (kind == V_TELEPORT) {
            double d = urand(rng, dmax(3 * t->r, 0.15), dmax(5 * t->r, 0.26)), ux, uy;
            if (speed > 0.2 && below(rng, 3)) {
                ux = t->vx / speed * rng_sign(rng);
                uy = t->vy / speed * (ux * t->vx >= 0 ? 1 : -1);
            } else {
                ux = rng_sign(rng);
                uy = 0;
            }
            if (t->resting) uy = 0, ux = ux < 0 ? -1 : 1;
            double len = sqrt(ux * ux + uy * uy);
            v->x = t->x + d * ux / len;
            v->y = t->y + d * uy / len;
            if (v->y > w->floor_y - t->r) v->y = w->floor_y - t->r;
            int ok = v->y - t->r > 0.02 && v->x - t->r > 0.02 && v->x + t->r < W - 0.02;
            for (int g = f; g < f + 3 && ok; g++) ok = ball_clear_at(s, sc, g, v->x, v->y, t->r);
            for (int k2 = 0; k2 < w->n_pillars && ok; k2++)
                ok = v->x + t->r < w->pillars[k2].x0 - 0.02 || v->x - t->r > w->pillars[k2].x1 + 0.02;
            for (int i = 0; i < w->n_balls && ok; i++) {
                const track *u = track_at(s, f, i);
                double dx = u->x - v->x, dy = u->y - v->y, rr = u->r + t->r + 0.03;
                if (i != actor && u->alive && dx * dx + dy * dy < rr * rr) ok = 0;
            }
            if (ok) return 1;
            continue;
        }
        if (kind == V_FALL_UP) {
            if (t->y * s->scale < 2.5 * t->r * s->scale + 2) continue;    /* room to rise in view */
            return 1;
        }
        if (kind == V_HOVER) {
            if (t->resting || gap < dmax(1.5 * t->r, 0.1) || fabs(t->vy) > 0.7) continue;
            return 1;
        }
        /* inertia: moving, with nothing near, and nothing hit around it */
        if (speed < 0.6 || t->x - t->r < 0.12 || t->x + t->r > W - 0.12) continue;
        int quiet = 1;
        for (int g = f - 2; g <= f + 3 && quiet; g++)
            if (g >= 0 && g < n && (track_at(s, g, actor)->contacts & (WM_HIT_BALL | WM_HIT_WALL | WM_HIT_PILLAR))) quiet = 0;
        for (int k2 = 0; k2 < w->n_pillars && quiet; k2++)
            quiet = fabs(t->x - 0.5 * (w->pillars[k2].x0 + w->pillars[k2].x1)) > t->r + 0.15;
        for (int i = 0; i < w->n_balls && quiet; i++) {
            const track *u = track_at(s, f, i);
            double dx = u->x - t->x, dy = u->y - t->y, rr = u->r + t->r + 0.12;
            if (i != actor && u->alive && dx * dx + dy * dy < rr * rr) quiet = 0;
        }
        if (!quiet) continue;
        if (kind == V_REVERSE) { v->vx = -t->vx; v->vy = -t->vy; }
        else if (kind == V_STOP) { v->vx = 0; v->vy = 0; }
        else if (kind == V_SPEED_UP) { v->vx = 2.2 * t->vx; v->vy = 2.2 * t->vy; }
        else {
            if (t->resting) continue;
            double sgn = rng_sign(rng);
            v->vx = -sgn * t->vy;
            v->vy = sgn * t->vx;
            if (v->vy > 0 && gap < 0.2) { v->vx = -v->vx; v->vy = -v->vy; }   /* not straight into the floor */
        }
        return 1;
    }
    return 0;
}

/* A ball lands on the floor in view; the violation lets it through. */
static int plan_floor_hit(wm_synth *s, wm_rng *rng, scene *sc, violation *v, int kind)
{
    scene_base(s, rng, sc);
    wm_world *w = &sc->world;
    double r = sample_radius(s, rng), W = s->world_w;
    double te = event_frame(s, rng) * s->frame_dt;
    te += urand(rng, 0, s->frame_dt);
    double y0 = urand(rng, 0.12, w->floor_y - r - 0.15);
    double vy = (w->floor_y - r - y0 - 0.5 * GRAVITY * te * te) / te;
    if (vy < -4.5 || vy > 1.5) {            /* too late for one throw: a bouncier ball, thrown high */
        vy = -urand(rng, 2.5, 4.5);
        w->e_floor = urand(rng, 0.75, 0.88);
    }
    double x = urand(rng, 0.2, 0.8) * W;
    int actor = scene_add_ball(rng, sc, x, y0, urand(rng, -0.6, 0.6), vy, r);
    scene_add_extras(s, rng, sc, sample_ball_count(s, rng) - 1, x - 3 * r, x + 3 * r);
    if (kind == V_NONE) return 1;
    int lo, hi;
    pair_window(s, &lo, &hi);
    scene_simulate(s, sc);
    for (int f = imax(1, lo - 1); f < hi; f++) {
        const track *t = track_at(s, f, actor);
        if (!(t->contacts & WM_HIT_FLOOR)) continue;
        if (t->hit_speed < 1.0 || !t->clear || !track_at(s, f + 1, actor)->clear) continue;
        *v = (violation){ .kind = V_THROUGH_FLOOR, .frame = f, .ball = actor, .other = -1 };
        return 1;
    }
    return 0;
}

/* A ball runs into a pillar in view; the violation lets it through. */
static int plan_wall_hit(wm_synth *s, wm_rng *rng, scene *sc, violation *v, int kind)
{
    scene_base(s, rng, sc);
    wm_world *w = &sc->world;
    double r = sample_radius(s, rng), W = s->world_w;
    double pw = urand(rng, 0.04, 0.08), px = urand(rng, 0.4, 0.6) * W - pw / 2;
    scene_add_pillar(s, rng, sc, px, pw);
    double dir = rng_sign(rng), te = event_frame(s, rng) * s->frame_dt;
    te += urand(rng, 0, s->frame_dt);
    double face = dir > 0 ? px : px + pw, room = dir > 0 ? face - 2 * r - 0.02 : W - face - 2 * r - 0.02;
    if (room < 0.05) return 0;
    double dist = urand(rng, 0.05, room);   /* from the ball's edge to the face */
    int fly = below(rng, 10) < 4;
    double speed = fly ? dist / te : (dist + 0.5 * w->roll_friction * te * te) / te;
    if (speed > 2.4) return 0;
    double heading = dir;
    if (speed < 0.4) {                      /* a long clip: off a side wall first, or later */
        speed = urand(rng, 0.6, 1.6);
        heading = rng_sign(rng);
    }
    double x = face - dir * (dist + r), y = w->floor_y - r, vy = 0;
    if (fly) { y = urand(rng, 0.3, w->floor_y - r - 0.05); vy = -urand(rng, 0.5, 2.0); }
    int actor = scene_add_ball(rng, sc, x, y, heading * speed, vy, r);
    scene_add_extras(s, rng, sc, sample_ball_count(s, rng) - 1, dmin(x, face) - 2 * r, dmax(x, face) + 2 * r);
    if (kind == V_NONE) return 1;
    int lo, hi;
    pair_window(s, &lo, &hi);
    scene_simulate(s, sc);
    for (int f = imax(1, lo - 1); f < hi; f++) {
        const track *t = track_at(s, f, actor);
        if (!(t->contacts & WM_HIT_PILLAR)) continue;
        if (t->hit_speed < 0.4 || !t->clear) continue;
        *v = (violation){ .kind = V_THROUGH_WALL, .frame = f, .ball = actor, .other = -1 };
        return 1;
    }
    return 0;
}

/* Two balls meet in view; the violation lets them pass through each other. */
static int plan_ball_hit(wm_synth *s, wm_rng *rng, scene *sc, violation *v, int kind)
{
    scene_base(s, rng, sc);
    wm_world *w = &sc->world;
    double W = s->world_w, r1 = sample_radius(s, rng), r2 = sample_radius(s, rng);
    double te = event_frame(s, rng) * s->frame_dt;
    te += urand(rng, 0, s->frame_dt);
    double v1 = urand(rng, 0.4, 1.3), v2 = below(rng, 3) ? urand(rng, 0.3, 1.2) : 0;
    double mu = w->roll_friction, t1 = dmin(te, v1 / mu), t2 = dmin(te, v2 / mu);
    double d1 = v1 * t1 - 0.5 * mu * t1 * t1, d2 = v2 * t2 - 0.5 * mu * t2 * t2;
    double xm = urand(rng, 0.35, 0.65) * W;
    double x1 = xm - r1 - d1, x2 = xm + r2 + d2;
    if (x1 - r1 < 0.02 || x2 + r2 > W - 0.02) {   /* a long clip: anywhere, and wait for them to meet */
        x1 = urand(rng, r1 + 0.02, xm - r1 - 0.02);
        x2 = urand(rng, xm + r2 + 0.02, W - r2 - 0.02);
        v1 = rng_sign(rng) * v1;
    }
    int a = scene_add_ball(rng, sc, x1, w->floor_y - r1, v1, 0, r1);
    int b = scene_add_ball(rng, sc, x2, w->floor_y - r2, -v2, 0, r2);
    if (below(rng, 2)) {             /* mirror, so the mover comes from either side */
        w->balls[a].x = W - x1; w->balls[a].vx = -v1;
        w->balls[b].x = W - x2; w->balls[b].vx = v2;
    }
    scene_add_extras(s, rng, sc, sample_ball_count(s, rng) - 2, dmin(w->balls[a].x, w->balls[b].x) - 3 * r1,
                     dmax(w->balls[a].x, w->balls[b].x) + 3 * r2);
    if (kind == V_NONE) return 1;
    int lo, hi;
    pair_window(s, &lo, &hi);
    scene_simulate(s, sc);
    for (int f = imax(1, lo - 1); f < hi; f++) {
        const track *t = track_at(s, f, a);
        if (!(t->hit_balls >> b & 1u)) continue;
        if (t->hit_speed < 0.3 || !t->clear || !track_at(s, f, b)->clear) continue;
        *v = (violation){ .kind = V_THROUGH_BALL, .frame = f, .ball = a, .other = b };
        return 1;
    }
    return 0;
}

/* A training scene: balls anywhere, screens that stand, float, slide or
 * rise, sometimes a pillar. */
static void plan_free(wm_synth *s, wm_rng *rng, scene *sc)
{
    scene_base(s, rng, sc);
    wm_world *w = &sc->world;
    double W = s->world_w;
    if (below(rng, 4) == 0) {
        double pw = urand(rng, 0.04, 0.08);
        scene_add_pillar(s, rng, sc, urand(rng, 0.3, 0.7) * W - pw / 2, pw);
    }
    int n_occ = below(rng, 3), n = s->o.frames;
    for (int k = 0; k < n_occ; k++) {
        double ow = urand(rng, 0.12, 0.35), x0 = urand(rng, -0.05, W - ow + 0.05);
        int floating = below(rng, 4) == 0;
        double bottom = floating ? urand(rng, 0.3, w->floor_y - 0.2) : w->floor_y + urand(rng, 0.02, 0.06);
        double h = floating ? urand(rng, 0.12, 0.28) : urand(rng, 0.15, 0.55);
        scene_add_occluder(s, rng, sc, x0, ow, bottom, h);
        occluder *o = &sc->occ[sc->n_occ - 1];
        int f0 = below(rng, n), f1 = f0 + 2 + below(rng, imax(1, n / 3));
        switch (below(rng, 4)) {
        case 1: o->dx = urand(rng, -0.5, 0.5) * W; o->move_f0 = f0; o->move_f1 = f1; break;
        case 2: if (!floating) { o->lift_from = 0.06; o->lift_f0 = f0; o->lift_f1 = f1; } break;
        case 3: if (!floating) { o->lift_to = 0.06; o->lift_f0 = f0; o->lift_f1 = f1; } break;
        default: break;
        }
    }
    scene_add_extras(s, rng, sc, sample_ball_count(s, rng), 1, 0);
}

static int plan_variant(wm_synth *s, wm_rng *rng, scene *sc, violation *v, int kind)
{
    switch (kind) {
    case V_VANISH: case V_COLOR: case V_SIZE: return plan_roll_behind(s, rng, sc, v, kind);
    case V_APPEAR: return plan_appear(s, rng, sc, v, kind);
    case V_THROUGH_FLOOR: return plan_floor_hit(s, rng, sc, v, kind);
    case V_THROUGH_WALL: return plan_wall_hit(s, rng, sc, v, kind);
    case V_THROUGH_BALL: return plan_ball_hit(s, rng, sc, v, kind);
    default: return plan_open(s, rng, sc, v, kind);
    }
}

/* Plays both clips of a pair side by side.  Returns the first differing
 * frame if the pair is good (see the header), else -1. */
static int pair_check(wm_synth *s, const scene *sc, const violation *v)
{
    int lo, hi, n = s->o.frames, vf = -1;
    pair_window(s, &lo, &hi);
    run a, b;
    run_start(&a, sc, NULL);
    run_start(&b, sc, v);
    wm_synth_object oa[WM_WORLD_MAX_BALLS], ob[WM_WORLD_MAX_BALLS];
    int na = 0, nb = 0;
    size_t pixels = (size_t)s->o.width * s->o.height;
    double r = (v->kind == V_SIZE ? dmin(v->r, sc->world.balls[v->ball].r) : sc->world.balls[v->ball].r) * s->scale;
    int min_strong = imax(3, (int)(0.5 * r * r));
    for (int f = 0; f < n; f++) {
        run_draw(s, &a, s->frame_a, oa, &na, 0);
        run_draw(s, &b, s->frame_b, ob, &nb, 0);
        int differs = memcmp(s->frame_a, s->frame_b, pixels * 3) != 0;
        if (vf < 0 && differs) {
            vf = f;
            if (vf < lo || vf > hi) return -1;
            if (variant_is_hidden(v->kind) ? vf <= v->frame : vf > v->frame + 2) return -1;
            /* the ball the violation is about is in view in one of the
             * clips where they part (a vanished ball: where it comes back) */
            int seen = 0;
            for (int i = 0; i < na; i++) seen |= oa[i].id == v->ball && oa[i].visible;
            for (int i = 0; i < nb; i++) seen |= ob[i].id == v->ball && ob[i].visible;
            if (!seen) return -1;
        } else if (vf >= 0) {
            if (!differs) return -1;
            if (f >= vf + STRONG_AFTER) {
                int strong = 0;
                for (size_t p = 0; p < pixels && strong < min_strong; p++)
                    for (int c = 0; c < 3; c++) {
                        int d = s->frame_a[p * 3 + c] - s->frame_b[p * 3 + c];
                        if (d >= STRONG_DIFF || d <= -STRONG_DIFF) { strong++; break; }
                    }
                if (strong < min_strong) return -1;
            }
        }
        run_step(s, &a);
        run_step(s, &b);
    }
    return vf;
}

/* --------------------------------------------------------------- public */

wm_synth *wm_synth_new(const wm_synth_opts *opts, wm_error *err)
{
    const wm_synth_opts *o = opts;
    if (o->width <= 0 || o->height <= 0 || o->width > WM_MAX_DIM || o->height > WM_MAX_DIM) {
        wm_error_set(err, WM_E_USAGE, "--size: %dx%d: sides must lie within 1-%d", o->width, o->height, WM_MAX_DIM);
        return NULL;
    }
    if (o->frames <= 0) { wm_error_set(err, WM_E_USAGE, "--frames: %d is not a positive frame count", o->frames); return NULL; }
    if (o->fps_num <= 0 || o->fps_den <= 0) { wm_error_set(err, WM_E_USAGE, "--fps: the rate must be positive"); return NULL; }
    if (o->balls_min < 1 || o->balls_max > WM_SYNTH_MAX_BALLS || o->balls_min > o->balls_max) {
        wm_error_set(err, WM_E_USAGE, "--balls: %d-%d must lie within 1-%d", o->balls_min, o->balls_max, WM_SYNTH_MAX_BALLS);
        return NULL;
    }
    if (!(o->noise >= 0 && o->noise <= 64)) { wm_error_set(err, WM_E_USAGE, "--noise: %g must lie within 0-64", o->noise); return NULL; }
    if (!(o->ball_scale >= 0.5 && o->ball_scale <= 2)) {
        wm_error_set(err, WM_E_USAGE, "--ball-scale: %g must lie within 0.5-2", o->ball_scale);
        return NULL;
    }
    wm_synth *s = calloc(1, sizeof *s);
    if (!s) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    s->o = *o;
    s->scale = o->height;
    s->world_w = (double)o->width / o->height;
    s->frame_dt = (double)o->fps_den / o->fps_num;
    s->substeps = (int)(((int64_t)SUBSTEP_HZ * o->fps_den + o->fps_num - 1) / o->fps_num);
    if (s->substeps < 1) s->substeps = 1;
    /* balls at least 2.5 pixels across in radius, and fewer, smaller ones when many */
    s->r_lo = dmax(0.055, 2.5 / s->scale);
    s->r_hi = dmax(0.105, 1.5 * s->r_lo);
    double crowd = 0.35 * s->world_w / o->balls_max;
    if (s->r_hi > crowd) s->r_hi = dmax(crowd, s->r_lo);
    s->r_lo *= o->ball_scale;      /* another look: the same scenes with bigger or smaller balls */
    s->r_hi *= o->ball_scale;
    size_t pixels = (size_t)o->width * o->height * 3;
    s->renderer = wm_renderer_new(o->width, o->height, err);
    s->frame_a = malloc(pixels);
    s->frame_b = malloc(pixels);
    s->tracks = calloc((size_t)o->frames * WM_WORLD_MAX_BALLS, sizeof *s->tracks);
    if (!s->renderer || !s->frame_a || !s->frame_b || !s->tracks) {
        if (s->renderer) wm_error_set(err, WM_E_SYSTEM, "out of memory for %d frames of %dx%d", o->frames, o->width, o->height);
        wm_synth_free(&s);
        return NULL;
    }
    wm_msgbuf_init(&s->mb);
    return s;
}

void wm_synth_free(wm_synth **sp)
{
    wm_synth *s = *sp;
    if (!s) return;
    wm_renderer_free(&s->renderer);
    free(s->frame_a);
    free(s->frame_b);
    free(s->tracks);
    wm_msgbuf_destroy(&s->mb);
    free(s);
    *sp = NULL;
}

static void clip_start(wm_synth *s)
{
    wm_renderer_set_look(s->renderer, &s->sc.look);
    run_start(&s->rn, &s->sc, s->has_v ? &s->v : NULL);
}

wm_status wm_synth_begin_clip(wm_synth *s, int64_t n, wm_error *err)
{
    wm_rng rng;
    wm_rng_seed(&rng, seed_derive(s->o.seed, 0xc11b, (uint64_t)n));
    violation none = { 0 };
    switch (below(&rng, 10)) {
    case 4: plan_roll_behind(s, &rng, &s->sc, &none, V_NONE); break;
    case 5: plan_appear(s, &rng, &s->sc, &none, V_NONE); break;
    case 6: plan_open(s, &rng, &s->sc, &none, V_NONE); break;
    case 7: plan_floor_hit(s, &rng, &s->sc, &none, V_NONE); break;
    case 8: plan_wall_hit(s, &rng, &s->sc, &none, V_NONE); break;
    case 9: plan_ball_hit(s, &rng, &s->sc, &none, V_NONE); break;
    default: plan_free(s, &rng, &s->sc); break;
    }
    s->has_v = 0;
    s->labels = (wm_synth_labels){ .seed = s->o.seed, .category = WM_SYNTH_NONE, .possible = 1,
                                   .violation_frame = -1, .pair = -1, .variant = variant_names[V_NONE],
                                   .ball = -1, .diverge_frame = -1 };
    snprintf(s->labels.id, sizeof s->labels.id, "synth-%llu-%lld", (unsigned long long)s->o.seed, (long long)n);
    clip_start(s);
    (void)err;
    return WM_OK;
}

wm_status wm_synth_check_pair_opts(const wm_synth_opts *o, wm_error *err)
{
    if (o->frames < WM_SYNTH_PAIR_MIN_FRAMES)
        return wm_error_set(err, WM_E_USAGE, "--frames: pairs need at least %d frames per clip", WM_SYNTH_PAIR_MIN_FRAMES);
    if (o->width < WM_SYNTH_PAIR_MIN_SIDE || o->height < WM_SYNTH_PAIR_MIN_SIDE)
        return wm_error_set(err, WM_E_USAGE, "--size: pairs need frames of at least %dx%d",
                            WM_SYNTH_PAIR_MIN_SIDE, WM_SYNTH_PAIR_MIN_SIDE);
    return WM_OK;
}

wm_status wm_synth_begin_pair(wm_synth *s, wm_synth_category c, int64_t k, int impossible, wm_error *err)
{
    wm_status st;
    if (c < 0 || c >= WM_SYNTH_CATEGORIES) return wm_error_set(err, WM_E_USAGE, "no category %d", (int)c);
    if ((st = wm_synth_check_pair_opts(&s->o, err)) != WM_OK) return st;
    if (!s->plan_valid || s->plan_category != (int)c || s->plan_k != k) {
        const int *variants = category_variants[c];
        int n_variants = 0;
        while (variants[n_variants]) n_variants++;
        int kind = variants[k % n_variants];
        s->plan_valid = 0;
        for (int attempt = 0; attempt < PAIR_ATTEMPTS && !s->plan_valid; attempt++) {
            wm_rng rng;
            wm_rng_seed(&rng, seed_derive(seed_derive(s->o.seed, 0x9a1 + (uint64_t)c, (uint64_t)k), 0xa7, (uint64_t)attempt));
            if (!plan_variant(s, &rng, &s->plan_sc, &s->plan_v, kind)) continue;
            wm_renderer_set_look(s->renderer, &s->plan_sc.look);
            int vf = pair_check(s, &s->plan_sc, &s->plan_v);
            if (vf < 0) continue;
            s->plan_valid = 1;
            s->plan_category = c;
            s->plan_k = k;
            s->plan_vf = vf;
        }
        if (!s->plan_valid)
            return wm_error_set(err, WM_E_SYSTEM, "cannot make a visible %s pair (%s) at %dx%d with %d frames; "
                                "try a larger --size or more --frames", category_names[c], variant_names[kind],
                                s->o.width, s->o.height, s->o.frames);
    }
    s->sc = s->plan_sc;
    s->v = s->plan_v;
    s->has_v = impossible != 0;
    s->labels = (wm_synth_labels){ .seed = s->o.seed, .category = c, .possible = !impossible,
                                   .violation_frame = impossible ? s->plan_vf : -1, .pair = k,
                                   .variant = variant_names[s->v.kind], .ball = s->v.ball,
                                   .diverge_frame = s->plan_vf };
    snprintf(s->labels.id, sizeof s->labels.id, "pair-%llu-%s-%lld-%s", (unsigned long long)s->o.seed,
             category_names[c], (long long)k, impossible ? "impossible" : "possible");
    clip_start(s);
    return WM_OK;
}

const wm_synth_labels *wm_synth_get_labels(const wm_synth *s) { return &s->labels; }

const wm_world *wm_synth_world(const wm_synth *s) { return &s->rn.world; }

int wm_synth_next_frame(wm_synth *s, const uint8_t **rgb, const wm_synth_object **objects, int *n_objects)
{
    if (s->rn.frame >= s->o.frames) return 0;
    run_draw(s, &s->rn, s->frame_a, s->objects, &s->n_objects, s->o.background_only);
    run_step(s, &s->rn);
    *rgb = s->frame_a;
    *objects = s->objects;
    *n_objects = s->n_objects;
    return 1;
}

static void pack_labels(msgpack_packer *pk, const wm_synth_labels *l)
{
    wm_pack_str(pk, "synth");
    msgpack_pack_map(pk, 8);
    wm_pack_kv_i64(pk, "seed", (int64_t)l->seed);
    wm_pack_kv_str(pk, "category", wm_synth_category_name(l->category));
    wm_pack_kv_bool(pk, "possible", l->possible);
    wm_pack_kv_i64(pk, "violation_frame", l->violation_frame);
    wm_pack_kv_i64(pk, "pair", l->pair);
    wm_pack_kv_str(pk, "variant", l->variant);
    wm_pack_kv_i64(pk, "ball", l->ball);
    wm_pack_kv_i64(pk, "diverge_frame", l->diverge_frame);
}

wm_status wm_synth_write_clip(wm_synth *s, wm_writer *w, wm_error *err)
{
    wm_msgbuf *mb = &s->mb;
    msgpack_packer *pk = &mb->pk;
    const wm_synth_labels *l = &s->labels;
    wm_clip_info ci = { l->id, "wm-synth", s->o.fps_num, s->o.fps_den, s->o.width, s->o.height };
    wm_msgbuf_reset(mb);
    wm_proto_pack_clip(pk, &ci, 1);
    pack_labels(pk, l);
    wm_status st = wm_writer_send_buf(w, mb, err);
    const uint8_t *rgb;
    const wm_synth_object *objs;
    int n_objs;
    size_t bytes = (size_t)s->o.width * s->o.height * 3;
    int64_t index = 0;
    int interrupted = 0;
    while (st == WM_OK && !(interrupted = wm_signal_pending()) && wm_synth_next_frame(s, &rgb, &objs, &n_objs)) {
        wm_frame_info fi = { l->id, index, (double)index * s->o.fps_den / s->o.fps_num, s->o.width, s->o.height,
                             WM_PIX_RGB24 };
        wm_msgbuf_reset(mb);
        wm_proto_pack_frame(pk, &fi, 1);
        wm_pack_str(pk, "objects");
        msgpack_pack_array(pk, (uint32_t)n_objs);
        for (int i = 0; i < n_objs; i++) {
            msgpack_pack_map(pk, 5);
            wm_pack_kv_i64(pk, "id", objs[i].id);
            wm_pack_kv_f64(pk, "x", objs[i].x);
            wm_pack_kv_f64(pk, "y", objs[i].y);
            wm_pack_kv_f64(pk, "r", objs[i].r);
            wm_pack_kv_bool(pk, "visible", objs[i].visible);
        }
        wm_proto_pack_data_header(pk, bytes);
        st = wm_writer_send(w, mb->sbuf.data, mb->sbuf.size, rgb, bytes, err);
        index++;
    }
    if (st != WM_OK) return st;
    /* an interrupted clip still ends, with the frames it has */
    wm_msgbuf_reset(mb);
    wm_proto_pack_end(pk, l->id, index);
    st = wm_writer_send_buf(w, mb, err);
    if (st == WM_OK && interrupted) st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted");
    return st;
}
