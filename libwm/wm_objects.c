#include "wm_objects.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPRITE_HALF 14                  /* a sprite holds a disc of radius up to 12 + its rim */
#define SPRITE_SIDE (2 * SPRITE_HALF + 1)
#define HIST 4                          /* displacements kept per track */
#define STILL 0.35f                     /* a displacement this small is no motion */
#define ROLL_FRICTION 0.02f             /* a ball rolling on the floor slows by this share of g (wm-synth: 0.01-0.036) */
#define FIRST_STEP 12.0f                /* px: the farthest a ball seen once is looked for the next frame */
#define CONFIRMED 1.5f                  /* px: a ball found this near its prediction confirms it */
#define BETA 0.5f                       /* share of that miss taken into the velocity, once established */
#define ESTABLISHED 4                   /* frames seen before the filter smooths (until then: the whole miss) */
#define STABLE 12.0f                    /* levels a background pixel may change by between frames */
#define EMERGED 30.0f                   /* levels away from the colour that hid a track: it is out */
#define UNLIKE 40.0f                    /* levels away from a ball's colour: not the ball */

typedef struct track {
    float x, y, r, vx, vy;
    float x0, y0, moved;                /* where it was first seen, and the farthest it went from there */
    float dx[HIST], dy[HIST];           /* the last displacements seen, newest last */
    int ndx, ndy;
    int age, hidden, drawn;
    float px, py, pvx, pvy;             /* the prediction for the next frame */
    float colour[3];                    /* the ball's own colour (the median of its disc's middle) */
    int has_occ;
    float occ[3];                       /* the colour that covered it when it went unseen */
    int left_frame;                     /* it went unseen across an edge of the frame */
    float sprite[SPRITE_SIDE * SPRITE_SIDE * 4];   /* premultiplied RGB and alpha */
    int sx0, sy0;                       /* the frame pixel of the sprite's corner */
    float sx, sy;                       /* the ball's centre when the sprite was cut */
} track;

struct wm_objects {
    wm_objects_config cfg;
    int started;
    float floor;                        /* NAN: unknown */
    float *bg, *prev;                   /* [h, w, 3] */
    unsigned char *cover;               /* [h, w] */
    float *scratch;                     /* h * w values, for medians */
    track *tracks;                      /* WM_OBJECTS_MAX_TRACKS */
    int ntracks;
    track *spare;                       /* room to rebuild the list */
};

wm_objects_config wm_objects_default_config(int width, int height, double fps)
{
    wm_objects_config c = { width, height, 0, 0.6f, 0.75f, 30 };
    c.gravity = fps > 0 ? (float)(9.81 * height / (fps * fps)) : 0.0f;
    return c;
}

wm_objects *wm_objects_new(const wm_objects_config *cfg, wm_error *err)
{
    if (cfg->width < 1 || cfg->height < 1 || cfg->width > 16384 || cfg->height > 16384) {
        wm_error_set(err, WM_E_USAGE, "objects: a frame of %dx%d", cfg->width, cfg->height);
        return NULL;
    }
    wm_objects *o = calloc(1, sizeof *o);
    const size_t px = (size_t)cfg->width * cfg->height;
    if (o) {
        o->cfg = *cfg;
        o->bg = malloc(px * 3 * sizeof(float));
        o->prev = malloc(px * 3 * sizeof(float));
        o->cover = malloc(px);
        o->scratch = malloc(px * sizeof(float));
        o->tracks = malloc(WM_OBJECTS_MAX_TRACKS * sizeof(track));
        o->spare = malloc(WM_OBJECTS_MAX_TRACKS * sizeof(track));
    }
    if (!o || !o->bg || !o->prev || !o->cover || !o->scratch || !o->tracks || !o->spare) {
        wm_objects_free(&o);
        wm_error_set(err, WM_E_SYSTEM, "out of memory for a %dx%d scene", cfg->width, cfg->height);
        return NULL;
    }
    wm_objects_reset(o);
    return o;
}

void wm_objects_free(wm_objects **op)
{
    wm_objects *o = *op;
    if (!o) return;
    free(o->bg);
    free(o->prev);
    free(o->cover);
    free(o->scratch);
    free(o->tracks);
    free(o->spare);
    free(o);
    *op = NULL;
}

void wm_objects_reset(wm_objects *o)
{
    o->started = 0;
    o->ntracks = 0;
    o->floor = NAN;
}

void wm_objects_set_gravity(wm_objects *o, float gravity) { o->cfg.gravity = gravity; }

float wm_objects_floor(const wm_objects *o) { return o->floor; }

int wm_objects_tracks(const wm_objects *o, wm_track_view *out, int max)
{
    for (int i = 0; i < o->ntracks && i < max; i++) {
        const track *t = &o->tracks[i];
        out[i] = (wm_track_view){ t->x, t->y, t->r, t->px, t->py, t->moved, t->age, t->hidden, t->drawn };
    }
    return o->ntracks;
}

/* a detected ball's radius as the scene uses it: 2 to 12 pixels */
static float ball_radius(const wm_ball *b) { return b->r < 2 ? 2 : b->r > 12 ? 12 : b->r; }

/* ---- pixels ---- */

/* whether pixel (i, j)'s centre lies within r of (x, y) */
static int in_disc(int i, int j, float x, float y, float r)
{
    const float dx = j + 0.5f - x, dy = i + 0.5f - y;
    return dx * dx + dy * dy <= r * r;
}

static int like(const float *p, const float *colour)
{
    return fabsf(p[0] - colour[0]) <= UNLIKE && fabsf(p[1] - colour[1]) <= UNLIKE && fabsf(p[2] - colour[2]) <= UNLIKE;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float median(float *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_float);
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

/* The per-channel median of the frame over the pixels within r of (x, y)
 * that are not in the disc of radius inner (inner < 0: none excluded),
 * with skip not covered, and with unlike not within UNLIKE levels of that
 * colour in every channel; 0 when there are none, else 1. */
static int disc_median(wm_objects *o, const float *frame, float x, float y, float r, float inner, int skip,
                       const float *unlike, float out[3])
{
    const int W = o->cfg.width, H = o->cfg.height;
    int i0 = (int)floorf(y - r) - 1, i1 = (int)ceilf(y + r) + 1, j0 = (int)floorf(x - r) - 1, j1 = (int)ceilf(x + r) + 1;
    if (i0 < 0) i0 = 0;
    if (j0 < 0) j0 = 0;
    if (i1 > H - 1) i1 = H - 1;
    if (j1 > W - 1) j1 = W - 1;
    for (int c = 0; c < 3; c++) {
        size_t n = 0;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++)
                if (in_disc(i, j, x, y, r) && !(inner >= 0 && in_disc(i, j, x, y, inner)) &&
                    !(skip && o->cover[(size_t)i * W + j]) && !(unlike && like(frame + ((size_t)i * W + j) * 3, unlike)))
                    o->scratch[n++] = frame[((size_t)i * W + j) * 3 + c];
        if (!n) return 0;
        out[c] = median(o->scratch, n);
    }
    return 1;
}

/* The floor: the row below the strongest horizontal edge of the background
 * in the lower part of the frame. */
static float floor_from_edges(const wm_objects *o)
{
    const int W = o->cfg.width, H = o->cfg.height, lo = (int)(0.55 * H);
    float best = -1, row = NAN;
    for (int y = lo; y < H - 2; y++) {
        double e = 0;
        for (int j = 0; j < W; j++)
            for (int c = 0; c < 3; c++)
                e += fabsf(o->bg[((size_t)(y + 1) * W + j) * 3 + c] - o->bg[((size_t)y * W + j) * 3 + c]);
        if (e / W > best) best = (float)(e / W), row = (float)(y + 1);
    }
    return row;
}

/* Cuts a track's sprite: the frame inside the ball's anti-aliased disc;
 * and notes the ball's colour. */
static void cut_sprite(wm_objects *o, track *t, const float *frame)
{
    const int W = o->cfg.width, H = o->cfg.height;
    if (!disc_median(o, frame, t->x, t->y, 0.7f * t->r, -1, 0, NULL, t->colour))
        t->colour[0] = t->colour[1] = t->colour[2] = -1000;
    t->sx = t->x;
    t->sy = t->y;
    t->sx0 = (int)floorf(t->x) - SPRITE_HALF;
    t->sy0 = (int)floorf(t->y) - SPRITE_HALF;
    for (int a = 0; a < SPRITE_SIDE; a++)
        for (int b = 0; b < SPRITE_SIDE; b++) {
            const int i = t->sy0 + a, j = t->sx0 + b;
            float *s = t->sprite + ((size_t)a * SPRITE_SIDE + b) * 4;
            float al = 0;
            if (i >= 0 && i < H && j >= 0 && j < W) {
                const float dx = j + 0.5f - t->x, dy = i + 0.5f - t->y;
                al = t->r + 1.0f - sqrtf(dx * dx + dy * dy);   /* the disc of radius r + 0.5, a pixel of rim */
                al = al < 0 ? 0 : al > 1 ? 1 : al;
            }
            for (int c = 0; c < 3; c++) s[c] = al > 0 ? frame[((size_t)i * W + j) * 3 + c] * al : 0.0f;
            s[3] = al;
        }
}

/* the sprite's premultiplied value at continuous pixel index (u, v) of the frame, bilinear, zero outside */
static void sprite_sample(const track *t, float u, float v, float out[4])
{
    const float pu = u - (float)t->sx0, pv = v - (float)t->sy0;
    const int a0 = (int)floorf(pv), b0 = (int)floorf(pu);
    const float fa = pv - (float)a0, fb = pu - (float)b0;
    out[0] = out[1] = out[2] = out[3] = 0;
    for (int da = 0; da <= 1; da++)
        for (int db = 0; db <= 1; db++) {
            const int a = a0 + da, b = b0 + db;
            if (a < 0 || a >= SPRITE_SIDE || b < 0 || b >= SPRITE_SIDE) continue;
            const float w = (da ? fa : 1 - fa) * (db ? fb : 1 - fb);
            const float *s = t->sprite + ((size_t)a * SPRITE_SIDE + b) * 4;
            for (int c = 0; c < 4; c++) out[c] += w * s[c];
        }
}

/* Draws a track's sprite onto img with its centre at (x, y). */
static void paste(const track *t, float *img, float x, float y, int W, int H)
{
    const float dx = x - t->sx, dy = y - t->sy;
    int i0 = (int)floorf((float)t->sy0 + dy) - 1, i1 = (int)ceilf((float)t->sy0 + dy) + SPRITE_SIDE + 1;
    int j0 = (int)floorf((float)t->sx0 + dx) - 1, j1 = (int)ceilf((float)t->sx0 + dx) + SPRITE_SIDE + 1;
    if (i0 < 0) i0 = 0;
    if (j0 < 0) j0 = 0;
    if (i1 > H - 1) i1 = H - 1;
    if (j1 > W - 1) j1 = W - 1;
    for (int i = i0; i <= i1; i++)
        for (int j = j0; j <= j1; j++) {
            float s[4];
            sprite_sample(t, (float)j - dx, (float)i - dy, s);
            if (!(s[3] > 0)) continue;
            const float al = s[3] > 1 ? 1 : s[3];
            float *p = img + ((size_t)i * W + j) * 3;
            for (int c = 0; c < 3; c++) p[c] = p[c] * (1 - al) + s[c];
        }
}

/* ---- dynamics ---- */

static void push(float *hist, int *n, float v)
{
    if (*n == HIST) {
        memmove(hist, hist + 1, (HIST - 1) * sizeof *hist);
        (*n)--;
    }
    hist[(*n)++] = v;
}

/* The track's place and velocity at the next frame. */
static void predict(const wm_objects *o, track *t)
{
    const float W = (float)o->cfg.width;
    if (t->age < 2 && !t->hidden) {
        t->px = t->x, t->py = t->y, t->pvx = t->vx, t->pvy = t->vy;
        return;
    }
    const int resting = t->ndy >= 2 && fabsf(t->dy[t->ndy - 1]) < STILL && fabsf(t->dy[t->ndy - 2]) < STILL &&
                        (isnan(o->floor) || t->y + t->r > o->floor - 4);
    const float g = resting || t->moved < 0.6f ? 0.0f : o->cfg.gravity;
    float vx = t->vx;
    if (t->hidden && t->ndx >= 3) {   /* coasting: the typical step, not the last (a ball going behind a
                                       * screen shows less of itself, and its centre seems to slow) */
        float tmp[HIST];
        memcpy(tmp, t->dx, (size_t)t->ndx * sizeof *tmp);
        vx = median(tmp, (size_t)t->ndx);
    }
    if (resting && !t->hidden) {   /* rolling: friction takes speed off */
        const float f = ROLL_FRICTION * o->cfg.gravity;
        vx = fabsf(vx) > f ? vx - copysignf(f, vx) : 0.0f;
    }
    float vy = t->vy + g, nx = t->x + vx, ny = t->y + vy;
    if (!isnan(o->floor) && ny + t->r > o->floor && vy > 0) {
        const float e = o->cfg.restitution_floor, over = ny + t->r - o->floor;
        ny = o->floor - t->r - e * over;
        vy = -e * vy;
        if (fabsf(vy) < 1.0f) ny = o->floor - t->r, vy = 0;
    }
    if (nx - t->r < 0 && vx < 0) nx = 2 * t->r - nx, vx = -o->cfg.restitution_wall * vx;
    if (nx + t->r > W && vx > 0) nx = 2 * (W - t->r) - nx, vx = -o->cfg.restitution_wall * vx;
    t->px = nx, t->py = ny, t->pvx = vx, t->pvy = vy;
}

static void matched(wm_objects *o, track *t, const wm_ball *b, const float *frame)
{
    const float r = ball_radius(b);
    /* a hidden track coasted to (x, y) frame by frame: the step is from there */
    float nvx = b->x - t->x, nvy = b->y - t->y;
    /* found where the prediction put it: the predicted velocity, which knows
     * the bounce the step went through, corrected by part of the miss (an
     * alpha-beta filter); otherwise the step it made */
    const float ex = b->x - t->px, ey = b->y - t->py;
    const float beta = t->age >= ESTABLISHED ? BETA : 1.0f;
    if (!t->hidden && t->age >= 2 && hypotf(ex, ey) < CONFIRMED) nvx = t->pvx + beta * ex, nvy = t->pvy + beta * ey;
    const float far = hypotf(b->x - t->x0, b->y - t->y0);
    if (far > t->moved) t->moved = far;
    if (!t->hidden) {
        push(t->dy, &t->ndy, b->y - t->y);
        push(t->dx, &t->ndx, b->x - t->x);
        if (t->age >= 2 && t->vy > 0.8f && nvy < -0.3f)   /* it bounced: the floor is under it */
            o->floor = isnan(o->floor) ? b->y + r + 0.5f * fabsf(nvy) : fmaxf(o->floor, b->y + r);
        if (t->ndy >= 3 && fabsf(t->dy[t->ndy - 1]) < STILL && fabsf(t->dy[t->ndy - 2]) < STILL &&
            fabsf(t->dy[t->ndy - 3]) < STILL && b->y + r > 0.6f * o->cfg.height && t->moved > 1.0f &&
            (isnan(o->floor) || b->y + r > o->floor - 6))   /* it came to rest: on the floor */
            o->floor = b->y + r;
    }
    t->x = b->x, t->y = b->y, t->r = r, t->vx = nvx, t->vy = nvy;
    t->age++;
    t->hidden = 0;
    t->left_frame = 0;
    t->has_occ = 0;
    cut_sprite(o, t, frame);
}

/* The pixels near a ball. */
static void mark_cover(wm_objects *o, const wm_ball *balls, int n)
{
    const int W = o->cfg.width, H = o->cfg.height;
    memset(o->cover, 0, (size_t)W * H);
    for (int k = 0; k < n; k++) {
        const float r = ball_radius(&balls[k]) + 2.5f;
        for (int i = (int)floorf(balls[k].y - r) - 1; i <= (int)ceilf(balls[k].y + r); i++)
            for (int j = (int)floorf(balls[k].x - r) - 1; j <= (int)ceilf(balls[k].x + r); j++)
                if (i >= 0 && i < H && j >= 0 && j < W && in_disc(i, j, balls[k].x, balls[k].y, r))
                    o->cover[(size_t)i * W + j] = 1;
    }
}

/* A track not seen this frame coasts to its predicted state; 0 when it is
 * to be dropped (gone too long, never established, or out of the frame). */
static int coast(wm_objects *o, track *t, const float *frame)
{
    t->x = t->px, t->y = t->py, t->vx = t->pvx, t->vy = t->pvy;
    t->hidden++;
    t->ndy = 0;
    if (t->hidden == 1)   /* unseen across an edge of the frame */
        t->left_frame = t->y < t->r || t->x < t->r || t->x > (float)o->cfg.width - t->r;
    if (!t->has_occ)   /* what shows where it went: the pixels of its disc that are not the ball */
        t->has_occ = disc_median(o, frame, t->x, t->y, t->r - 0.5f > 1 ? t->r - 0.5f : 1.0f, -1, 0, t->colour, t->occ);
    return !(t->hidden > o->cfg.max_hidden || t->age < 2 || t->x <= -t->r || t->x >= o->cfg.width + t->r ||
             t->y >= o->cfg.height + t->r);
}

static void draw_next(wm_objects *o, const float *frame, float *next);

void wm_objects_step(wm_objects *o, const float *frame, const wm_ball *balls, int n, float *next)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const size_t npx = (size_t)W * H;
    if (n > WM_OBJECTS_MAX_TRACKS) n = WM_OBJECTS_MAX_TRACKS;
    mark_cover(o, balls, n);
    /* the background */
    if (!o->started) {
        memcpy(o->bg, frame, npx * 3 * sizeof(float));
        o->floor = floor_from_edges(o);
        for (int k = 0; k < n; k++) {   /* under each ball: the colour around it */
            const float r = ball_radius(&balls[k]) + 2.5f;
            float ring[3];
            if (!disc_median(o, frame, balls[k].x, balls[k].y, r + 3.5f, r, 1, NULL, ring)) continue;
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                    if (in_disc(i, j, balls[k].x, balls[k].y, r))
                        memcpy(o->bg + ((size_t)i * W + j) * 3, ring, sizeof ring);
        }
        o->started = 1;
    } else {
        for (size_t p = 0; p < npx; p++) {
            if (o->cover[p]) continue;
            const float *f = frame + p * 3, *q = o->prev + p * 3;
            if (fabsf(f[0] - q[0]) < STABLE && fabsf(f[1] - q[1]) < STABLE && fabsf(f[2] - q[2]) < STABLE)
                memcpy(o->bg + p * 3, f, 3 * sizeof(float));
        }
    }
    /* detections to tracks, nearest first */
    enum { MAX_PAIRS = WM_OBJECTS_MAX_TRACKS * WM_OBJECTS_MAX_TRACKS };
    int pair_t[MAX_PAIRS], pair_d[MAX_PAIRS], order[MAX_PAIRS], np = 0;
    float pair_dist[MAX_PAIRS];
    for (int i = 0; i < o->ntracks; i++)
        for (int k = 0; k < n; k++) {
            const track *t = &o->tracks[i];
            const float d = hypotf(t->px - balls[k].x, t->py - balls[k].y);
            /* a track seen once has no velocity yet: any step a thrown ball makes */
            const float gate = t->age < 2 ? FIRST_STEP : 5 + 0.5f * hypotf(t->vx, t->vy) + 3.0f * (float)t->hidden;
            if (d < gate) {
                pair_t[np] = i;
                pair_d[np] = k;
                pair_dist[np] = d;
                np++;
            }
        }
    for (int k = 0; k < np; k++) {   /* by distance, then track, then ball: a stable insertion sort */
        int q = k;
        for (; q > 0 && pair_dist[order[q - 1]] > pair_dist[k]; q--) order[q] = order[q - 1];
        order[q] = k;
    }
    unsigned char t_used[WM_OBJECTS_MAX_TRACKS] = { 0 }, d_used[WM_OBJECTS_MAX_TRACKS] = { 0 };
    for (int q = 0; q < np; q++) {
        const int i = pair_t[order[q]], k = pair_d[order[q]];
        if (t_used[i] || d_used[k]) continue;
        t_used[i] = d_used[k] = 1;
        matched(o, &o->tracks[i], &balls[k], frame);
    }
    /* the tracks not found coast; those gone too long or out of the frame are dropped */
    int kept = 0;
    for (int i = 0; i < o->ntracks; i++) {
        track *t = &o->tracks[i];
        if (!t_used[i] && !coast(o, t, frame)) continue;
        o->spare[kept++] = *t;
    }
    /* new tracks for the balls no track claimed */
    for (int k = 0; k < n && kept < WM_OBJECTS_MAX_TRACKS; k++) {
        if (d_used[k]) continue;
        track *t = &o->spare[kept++];
        memset(t, 0, sizeof *t);
        t->x = t->x0 = balls[k].x;
        t->y = t->y0 = balls[k].y;
        t->r = ball_radius(&balls[k]);
        t->age = 1;
        cut_sprite(o, t, frame);
    }
    track *swap = o->tracks;
    o->tracks = o->spare;
    o->spare = swap;
    o->ntracks = kept;
    draw_next(o, frame, next);
}

void wm_objects_step_imagined(wm_objects *o, const float *frame, float *next)
{
    /* the balls are where the last prediction drew them */
    wm_ball drawn[WM_OBJECTS_MAX_TRACKS];
    int n = 0;
    for (int i = 0; i < o->ntracks; i++)
        if (o->tracks[i].drawn) drawn[n++] = (wm_ball){ o->tracks[i].px, o->tracks[i].py, o->tracks[i].r, 1.0f };
    mark_cover(o, drawn, n);
    int kept = 0;
    for (int i = 0; i < o->ntracks; i++) {
        track *t = &o->tracks[i];
        if (t->drawn) {   /* on to its predicted state, velocity included (a bounce's is not its step) */
            push(t->dy, &t->ndy, t->py - t->y);
            push(t->dx, &t->ndx, t->px - t->x);
            t->x = t->px, t->y = t->py, t->vx = t->pvx, t->vy = t->pvy;
            const float far = hypotf(t->x - t->x0, t->y - t->y0);
            if (far > t->moved) t->moved = far;
            t->age++;
            t->hidden = 0;
            t->left_frame = 0;
            t->has_occ = 0;
        } else if (!coast(o, t, frame)) {
            continue;
        }
        o->tracks[kept++] = *t;
    }
    o->ntracks = kept;
    draw_next(o, frame, next);
}

/* The next frame: this one with the balls taken out (the background where
 * they are), then the tracks that will show; what is not a ball (a sliding
 * screen, a real scene) is predicted not to change. */
static void draw_next(wm_objects *o, const float *frame, float *next)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const size_t npx = (size_t)W * H;
    memcpy(next, frame, npx * 3 * sizeof(float));
    for (size_t p = 0; p < npx; p++)
        if (o->cover[p]) memcpy(next + p * 3, o->bg + p * 3, 3 * sizeof(float));
    for (int i = 0; i < o->ntracks; i++) {
        track *t = &o->tracks[i];
        predict(o, t);
        t->drawn = !t->hidden;
        if (t->hidden && t->left_frame) {   /* nothing hid it: it comes back when its centre is back in */
            t->drawn = t->py >= 0 && t->px >= 0 && t->px < (float)W;
        } else if (t->hidden && t->has_occ) {
            float here[3];
            if (disc_median(o, frame, t->px, t->py, t->r - 0.5f > 1 ? t->r - 0.5f : 1.0f, -1, 0, NULL, here))
                t->drawn = fabsf(here[0] - t->occ[0]) > EMERGED || fabsf(here[1] - t->occ[1]) > EMERGED ||
                           fabsf(here[2] - t->occ[2]) > EMERGED;
        }
        if (t->drawn) paste(t, next, t->px, t->py, W, H);
    }
    for (size_t p = 0; p < npx * 3; p++) next[p] = next[p] < 0 ? 0 : next[p] > 255 ? 255 : next[p];
    memcpy(o->prev, frame, npx * 3 * sizeof(float));
}
