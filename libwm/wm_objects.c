#include "wm_objects.h"
#include "wm_physics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPRITE_HALF 14                  /* a sprite holds a disc of radius up to 12 + its rim */
#define SPRITE_SIDE (2 * SPRITE_HALF + 1)
#define HIST 4                          /* displacements kept per track */
#define STILL 0.35f                     /* a displacement this small is no motion */
#define FIRST_STEP 12.0f                /* px: the farthest a ball seen once is looked for the next frame */
#define CONFIRMED 1.5f                  /* px: a ball found this near its prediction confirms it */
#define BETA 0.5f                       /* share of that miss taken into the velocity, once established */
#define ESTABLISHED 4                   /* frames seen before the filter smooths (until then: the whole miss) */
#define STABLE 12.0f                    /* levels a background pixel may change by between frames */
#define EMERGED 25.0f                   /* levels away from the colours that hid a track: not the screen */
#define OCC_COLOURS 8                   /* colours kept of what hid a track */
#define OCC_SHARE 0.2f                  /* share of that disc a colour covers to be one of them */
#define OCC_MATCH 18.0f                 /* levels from one of those colours (a mean): still the screen's */
#define COVER_FIND 1                    /* cover: a find, to its rim */
#define COVER_KEPT 2                    /* cover: where a track is believed to be (the background's update only) */
#define COVER_NEAR 3                    /* cover: just around a find (drawn from the background, which is updated) */
#define RIM 1.0f                        /* px: a ball's blurred rim, past its found radius */
#define BG_FIND 0.9f                    /* share of a find's middle that is the background there: not a ball */
#define COVERED 0.65f                   /* share of a hidden track's disc in those colours: still hidden */
#define AROUND 0.4f                     /* share of the ring around a ball in one colour: what is around it */
#define PLAIN 0.25f                     /* share of it in other colours than around the ball: below, nothing hid it */
#define SHOWS 4                         /* pixels of a ball that show, to take its colour from them alone */
#define UNLIKE 40.0f                    /* levels away from a ball's colour: not the ball */
#define NEVER_MOVED 0.6f                /* px: a track that never went this far from where it was first seen */
#define MOVED 2.0f                      /* px a ball of the world has gone in its last 3 steps */
#define KEEP 2                          /* frames a ball out from behind a screen keeps the sprite it went in with */
#define RESIZE 4                        /* finds in a row not whole, after which that is a ball's size */
#define PART 0.85f                      /* a ball found smaller than this share of its whole radius is partly hidden */
#define FULL 0.95f                      /* a ball found at least this share of its whole radius: none of it is cut */
#define WHOLE 0.8f                      /* share of a ball's disc in its hue when nothing cuts it */
#define CLEAN_LOOK 0.95f                /* share of it in its hue for its look to be taken again */
#define SAME_HUE 0.06f                  /* chromaticity (a channel's share of the sum) off a ball's: still its hue */
#define OTHER_HUE 0.2f                  /* chromaticity this far off a ball's (in some channel): another thing */
#define RING_IN 1.15f                   /* the ring around a find, in its radii: from */
#define RING_OUT 1.5f                   /* to */
#define ROUND 0.1f                      /* share of that ring in the find's hue, below which it is round */
#define MEASURE 0.25f                   /* px: the error of the step between two finds */
#define FLOOR_BAND 3                    /* rows above a floor's strongest edge its upper edge may lie */
#define PLACE 1.0f                      /* px: how far off the floor's row may be */
#define E_FLOOR_SD 0.1f                 /* the spread of a scene's floor restitution (wm-synth's: 0.45-0.8) */
#define MIN_BOUNCE 3.0f                 /* px/frame: a bounce this fast measures the restitution */
#define STEADY 1.5f                     /* px: two steps in a row this alike (but for gravity) are a ball's motion */
#define DEFY 2.0f                       /* px off its path, with nothing that could have pushed it: not how a ball moves */
#define DEFY_MIN 1.0f                   /* px: that, for a ball whose finds keep to its predictions */
#define DEFY_MISSES 3.0f                /* that, in its finds' rms misses */
#define MISS_ALPHA 0.3f                 /* weight of the newest squared miss in that mean */
#define DEFY_FRAMES 4                   /* frames a ball found so stays on its path in the prediction */
#define DRIFT_FRAMES 4                  /* frames back to the path its finds in the open are held to, DEFY px */
#define EDGE 2.0f                       /* px: a ball born this near the frame's edges came in across it */
#define HUE_SWAP 4.0f                   /* px: a find of clearly another hue is that much farther from a ball just out */
#define SIZE_COST 2.0f                  /* px farther a find is from a track for each px its radius is off */
#define STILL_LAST 4.0f                 /* px farther a find is from a hidden track that never moved */
#define TOUCH 3.0f                      /* px between two balls' rims within which they may touch */
#define WIDE 2.0f                       /* a ball lost in plain view takes a find this many gates away, if it can */
#define FRONT_IN 1.5f                   /* px inside a hidden ball's rim: the pixels that surely hid it */
#define FRONT_SAME 12.0f                /* levels: a pixel this near a neighbour in front is the same screen */
#define EDGE_SHOWS 3                    /* pixels of a cut ball in its hue, and of the still background */
#define EDGE_HIDDEN 6                   /*   hiding it, to place the edge of what hides it */
#define SUBSTEP_HZ 200.0                /* physics substeps per second (as wm-synth) */
#define MAX_PILLARS WM_WORLD_MAX_PILLARS
#define FIT_CAP (3.0f * 30.0f * 30.0f)  /* squared RGB distance a pixel of a sprite's fit costs at most */
#define FIT_SHARE 0.25f                 /* share of its disc the sprite matches (within a quarter of that): placed by it */
#define FIT_STEP 0.25f                  /* px: the fit's finest step */
#define FIT_REACH_X 5                   /* px it looks across from the find */
#define FIT_REACH_Y 2                   /* and down */
#define FIT_DETAIL 8.0f                 /* levels a sprite's inside varies by at least, to be fitted (a flat disc fits anywhere along what shows) */
#define RUN 8                           /* a track's last finds in a row kept, for the rollout's start */
#define RUN_MIN 3                       /* finds in a row that place a track better than its filter */
_Static_assert(WM_OBJECTS_MAX_TRACKS <= WM_WORLD_MAX_BALLS, "every track must fit in the physics' world");
#define PILLAR_APART 6                  /* px (at 64 rows; scaled with the height): columns this far apart */
#define PILLAR_UNIQUE 10.0f             /* levels from every pixel of its row PILLAR_APART away: a colour of its own */
#define PILLAR_COLUMN 0.35f             /* share of rows in which a column of a pillar has its own colour */
#define PILLAR_ROWS 0.9f                /* share of rows in which some column of the band has */
#define PILLAR_SAMPLES 128              /* rows looked at, and pixels of a row each is compared with, at most */

/* A bounce off the floor the tracker predicted, to be measured by the two
 * finds after it. */
typedef struct bounce_probe {
    int phase;                          /* 1: the last prediction bounced the track; 2: found once since; else 0 */
    float tau, speed;                   /* when in that step (0..1), at what speed down (px/frame) */
    float first;                        /* the row of the first find after it */
} bounce_probe;

/* The restitution this clip's bounces showed, with the default as one more
 * measure: the sums of the measures and of their weights (1 / variance). */
typedef struct restitution { float sum, weight; } restitution;

typedef struct track {
    float x, y, r, vx, vy;
    float x0, y0, moved;                /* where it was first seen, and the farthest it went from there */
    float fx, fy;                       /* where it was last found (or placed) */
    float dx[HIST], dy[HIST];           /* the last displacements seen, newest last */
    int ndx, ndy;
    int age, hidden, drawn;
    int moving;                         /* it moved off, in steady steps: a ball of the world, not a stray find */
    int keep;                           /* frames its sprite is kept before it is cut again */
    int out;                            /* it came out from behind a screen, and was not cut since */
    float rfull;                        /* its radius when seen whole */
    int cut_frames;                     /* finds in a row not whole: smaller than that, or its middle not its hue */
    int small_frames;                   /* finds in a row smaller than PART of that */
    float wvx;                          /* its horizontal velocity when last found full-size (NAN: never) */
    int unwhole;                        /* finds since then (smaller) */
    int has_edge;                       /* found cut: what hides it goes on past n . p > c (next frame only) */
    float edge_n[2], edge_c;
    float ring;                         /* share of the ring just around its last find in its hue (1: unknown) */
    unsigned contacts;                  /* WM_HIT_* of the last prediction's step (WM_HIT_FLOOR too when it rolls) */
    unsigned was_contacts;              /* those of the step before */
    int defy;                           /* frames in a row found off its path with nothing to push it */
    float miss2x, miss2y;               /* the mean squared miss of its recent finds across and down, px^2 */
    float path[DRIFT_FRAMES][2];        /* x, vx after its last finds with nothing to push it across, oldest first */
    int path_n, path_frame;             /* how many (of frames in a row), and the frame of the newest */
    int doubt;                          /* real frames it is not drawn yet: it appeared from nowhere */
    float dfx, dfy;                     /* the last of those finds */
    bounce_probe floor_bounce;
    float px, py, pvx, pvy;             /* the prediction for the next frame */
    float colour[3];                    /* the ball's own colour (the median of its disc's middle) */
    int has_occ;                        /* colours in occ */
    float occ[OCC_COLOURS][3];          /* the colours that covered it when it went unseen (a screen's pattern) */
    int has_around;
    float around[3];                    /* the colour around it when last seen whole */
    int plain;                          /* unseen where nothing hid it: what shows there is what was around it */
    int left_frame;                     /* it went unseen across an edge of the frame */
    float sprite[SPRITE_SIDE * SPRITE_SIDE * 4];   /* premultiplied RGB and alpha */
    int sx0, sy0;                       /* the frame pixel of the sprite's corner */
    float sx, sy;                       /* the ball's centre when the sprite was cut */
    float detail;                       /* the sprite's inside: mean distance of its pixels from their mean colour */
    float run[RUN][2];                  /* its last finds in a row, near full-size and untouched, oldest first */
    int run_n, run_frame;               /* how many, and the frame of the newest */
} track;

struct wm_objects {
    wm_objects_config cfg;
    int started;
    int frame_no;                       /* real frames seen */
    float floor;                        /* NAN: unknown */
    float *bg, *prev;                   /* [h, w, 3] */
    unsigned char *cover;               /* [h, w]: near a find (COVER_FIND), or a track's place (COVER_KEPT) */
    unsigned char *front;               /* [h, w]: seen to hide a ball (a screen's): balls are drawn behind it */
    unsigned char *behind;              /* [h, w]: a ball was seen in front of it: never in front */
    float *scratch;                     /* h * w values, for medians */
    track *tracks;                      /* WM_OBJECTS_MAX_TRACKS */
    int ntracks;
    track *spare;                       /* room to rebuild the list */
    int npillars;
    float pillar[MAX_PILLARS][2];       /* solid columns, floor to top: left and right face, px */
    float *column;                      /* w values */
    restitution e_floor;                /* the floor's, measured in this clip */
};

wm_objects_config wm_objects_default_config(int width, int height, double fps)
{
    /* near the means of wm-synth's ranges: floor 0.45-0.8, walls 0.6-0.9, balls 0.7-0.95, rolling 0.010-0.036 g */
    wm_objects_config c = { .width = width, .height = height, .restitution_floor = 0.625f, .restitution_wall = 0.75f,
                            .restitution_ball = 0.82f, .roll_friction = 0.023f, .max_hidden = 60, .doubt = 10 };
    wm_objects_config_fps(&c, fps);
    return c;
}

void wm_objects_config_fps(wm_objects_config *c, double fps)
{
    c->fps = fps > 0 ? (float)fps : 25.0f;
    c->gravity = fps > 0 ? (float)(9.81 * c->height / (fps * fps)) : 0.0f;
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
        o->front = malloc(px);
        o->behind = malloc(px);
        o->scratch = malloc(px * sizeof(float));
        o->column = malloc((size_t)cfg->width * sizeof(float));
        o->tracks = malloc(WM_OBJECTS_MAX_TRACKS * sizeof(track));
        o->spare = malloc(WM_OBJECTS_MAX_TRACKS * sizeof(track));
    }
    if (!o || !o->bg || !o->prev || !o->cover || !o->front || !o->behind || !o->scratch || !o->column || !o->tracks ||
        !o->spare) {
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
    free(o->front);
    free(o->behind);
    free(o->scratch);
    free(o->column);
    free(o->tracks);
    free(o->spare);
    free(o);
    *op = NULL;
}

void wm_objects_reset(wm_objects *o)
{
    o->started = 0;
    o->frame_no = 0;
    o->ntracks = 0;
    o->floor = NAN;
    o->npillars = 0;
    o->e_floor = (restitution){ o->cfg.restitution_floor / (E_FLOOR_SD * E_FLOOR_SD), 1 / (E_FLOOR_SD * E_FLOOR_SD) };
}

void wm_objects_set_fps(wm_objects *o, double fps) { wm_objects_config_fps(&o->cfg, fps); }

void wm_objects_set_doubt(wm_objects *o, int frames) { o->cfg.doubt = frames > 0 ? frames : 0; }

float wm_objects_floor(const wm_objects *o) { return o->floor; }

int wm_objects_pillars(const wm_objects *o, float (*faces)[2], int max)
{
    for (int k = 0; k < o->npillars && k < max; k++) faces[k][0] = o->pillar[k][0], faces[k][1] = o->pillar[k][1];
    return o->npillars;
}

int wm_objects_tracks(const wm_objects *o, wm_track_view *out, int max)
{
    for (int i = 0; i < o->ntracks && i < max; i++) {
        const track *t = &o->tracks[i];
        out[i] = (wm_track_view){ t->x, t->y, t->r, t->px, t->py, t->moved, t->age, t->hidden, t->drawn };
    }
    return o->ntracks;
}

/* a detected ball's radius as the scene uses it: 2 to 12 pixels */
static float ball_radius(const wm_detection *b) { return b->r < 2 ? 2 : b->r > 12 ? 12 : b->r; }

/* ---- pixels ---- */

/* whether pixel (i, j)'s centre lies within r of (x, y) */
static int in_disc(int i, int j, float x, float y, float r)
{
    const float dx = j + 0.5f - x, dy = i + 0.5f - y;
    return dx * dx + dy * dy <= r * r;
}

/* whether p is within tol levels of q in every channel */
static int within(const float *p, const float *q, float tol)
{
    return fabsf(p[0] - q[0]) <= tol && fabsf(p[1] - q[1]) <= tol && fabsf(p[2] - q[2]) <= tol;
}

static int like(const float *p, const float *colour) { return within(p, colour, UNLIKE); }

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

/* whether a pixel's chromaticity (each channel's share of the sum) is
 * within tol of colour's in every channel */
static int near_hue(const float *p, const float *colour, float tol)
{
    const float sp = p[0] + p[1] + p[2] + 1, sc = colour[0] + colour[1] + colour[2] + 1;
    return fabsf(p[0] / sp - colour[0] / sc) <= tol && fabsf(p[1] / sp - colour[1] / sc) <= tol &&
           fabsf(p[2] / sp - colour[2] / sc) <= tol;
}

/* whether a pixel has colour's hue: within SAME_HUE (a ball's shading
 * darkens it, most of its highlight aside, and keeps its hue; a screen's
 * pattern does not) */
static int same_hue(const float *p, const float *colour) { return near_hue(p, colour, SAME_HUE); }

/* whether pixel p (its index in the frame) passes a test, given ctx */
typedef int (*pixel_test)(const wm_objects *o, const float *frame, size_t p, const void *ctx);

/* The share of the frame's pixels within r of (x, y), and not within inner
 * (inner < 0: none excluded), that pass test (-1 when there are none). */
static float disc_share(const wm_objects *o, const float *frame, float x, float y, float r, float inner,
                        pixel_test test, const void *ctx)
{
    const int W = o->cfg.width, H = o->cfg.height;
    int n = 0, yes = 0;
    for (int i = (int)floorf(y - r) - 1; i <= (int)ceilf(y + r); i++)
        for (int j = (int)floorf(x - r) - 1; j <= (int)ceilf(x + r); j++)
            if (i >= 0 && i < H && j >= 0 && j < W && in_disc(i, j, x, y, r) &&
                !(inner >= 0 && in_disc(i, j, x, y, inner))) {
                n++;
                yes += test(o, frame, (size_t)i * W + j, ctx);
            }
    return n ? (float)yes / (float)n : -1.0f;
}

/* whether pixel p shows the still background there */
static int is_background(const wm_objects *o, const float *frame, size_t p, const void *ctx)
{
    (void)ctx;
    return within(frame + p * 3, o->bg + p * 3, STABLE);
}

/* whether pixel p shows something other than the still background there */
static int not_background(const wm_objects *o, const float *frame, size_t p, const void *ctx)
{
    return !is_background(o, frame, p, ctx);
}

/* whether pixel p is not covered by a find or a track (o->cover) */
static int uncovered(const wm_objects *o, const float *frame, size_t p, const void *ctx)
{
    (void)frame, (void)ctx;
    return !o->cover[p];
}

static int has_hue(const wm_objects *o, const float *frame, size_t p, const void *colour)
{
    (void)o;
    return same_hue(frame + p * 3, colour);
}

/* the share of the pixels within r of (x, y), not within inner, that
 * have colour's hue (0 when there are none) */
static float hue_share(const wm_objects *o, const float *frame, float x, float y, float r, float inner,
                       const float *colour)
{
    return fmaxf(0.0f, disc_share(o, frame, x, y, r, inner, has_hue, colour));
}

/* The per-channel median of the frame over the pixels within r of (x, y)
 * that are not in the disc of radius inner (inner < 0: none excluded) and
 * pass test (NULL: every one); returns how many those are (0: out is not
 * set). */
static size_t disc_median(wm_objects *o, const float *frame, float x, float y, float r, float inner, pixel_test test,
                          const void *ctx, float out[3])
{
    const int W = o->cfg.width, H = o->cfg.height;
    int i0 = (int)floorf(y - r) - 1, i1 = (int)ceilf(y + r) + 1, j0 = (int)floorf(x - r) - 1, j1 = (int)ceilf(x + r) + 1;
    if (i0 < 0) i0 = 0;
    if (j0 < 0) j0 = 0;
    if (i1 > H - 1) i1 = H - 1;
    if (j1 > W - 1) j1 = W - 1;
    size_t n = 0;
    for (int c = 0; c < 3; c++) {
        n = 0;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++)
                if (in_disc(i, j, x, y, r) && !(inner >= 0 && in_disc(i, j, x, y, inner)) &&
                    (!test || test(o, frame, (size_t)i * W + j, ctx)))
                    o->scratch[n++] = frame[((size_t)i * W + j) * 3 + c];
        if (!n) return 0;
        out[c] = median(o->scratch, n);
    }
    return n;
}

/* The colours of the frame's pixels within r of (x, y), not within inner
 * (inner < 0: none excluded) and not like ball's: grouped into up to
 * max_groups colours (a pixel joins the first group whose mean so far is
 * within EMERGED levels, else starts one; each group's colour is the mean
 * of its pixels, not one noisy pixel), leaving out those within EMERGED of
 * skip (NULL: none).  Returns the pixels not like ball's; *grouped: those in a
 * group, count[k]: in group k. */
static int colour_groups(const wm_objects *o, const float *frame, float x, float y, float r, float inner,
                         const float *ball, const float *skip, float (*groups)[3], int *count, int max_groups,
                         int *ngroups, int *grouped)
{
    const int W = o->cfg.width, H = o->cfg.height;
    int n = 0, k;
    *ngroups = *grouped = 0;
    for (int i = (int)floorf(y - r) - 1; i <= (int)ceilf(y + r); i++)
        for (int j = (int)floorf(x - r) - 1; j <= (int)ceilf(x + r); j++) {
            if (i < 0 || i >= H || j < 0 || j >= W || !in_disc(i, j, x, y, r) || (inner >= 0 && in_disc(i, j, x, y, inner)))
                continue;
            const float *p = frame + ((size_t)i * W + j) * 3;
            if (like(p, ball)) continue;
            n++;
            if (skip && within(p, skip, EMERGED)) continue;
            ++*grouped;
            for (k = 0; k < *ngroups && !within(p, groups[k], EMERGED); k++) {}
            if (k < *ngroups) {
                count[k]++;
                for (int c = 0; c < 3; c++) groups[k][c] += (p[c] - groups[k][c]) / (float)count[k];
            } else if (*ngroups < max_groups) {
                count[k] = 1, memcpy(groups[(*ngroups)++], p, sizeof groups[0]);
            }
        }
    return n;
}

/* A ball's own colour: the median of its disc's middle (within 0.7 r of
 * (x, y)); -1000 in every channel when no pixel of it is in the frame. */
static void ball_colour(wm_objects *o, const float *frame, float x, float y, float r, float out[3])
{
    if (!disc_median(o, frame, x, y, 0.7f * r, -1, NULL, NULL, out)) out[0] = out[1] = out[2] = -1000;
}

/* A track's colour, taken with its sprite: when part of its disc (inside
 * the rim) shows the still background, a screen it is behind or came out
 * from, and at least SHOWS pixels do not, the median of those; else
 * ball_colour's.  The middle of a ball found mostly hidden is the screen's
 * colour, not its own. */
static void track_colour(wm_objects *o, const float *frame, float x, float y, float r, float out[3])
{
    const float in = r - 0.5f;
    if (disc_share(o, frame, x, y, in, -1, is_background, NULL) > 0 &&
        disc_median(o, frame, x, y, in, -1, not_background, NULL, out) >= SHOWS)
        return;
    ball_colour(o, frame, x, y, r, out);
}

/* the mean change of the background from row y to row y + 1 */
static float row_edge(const wm_objects *o, int y)
{
    const int W = o->cfg.width;
    double e = 0;
    for (int j = 0; j < W; j++)
        for (int c = 0; c < 3; c++)
            e += fabsf(o->bg[((size_t)(y + 1) * W + j) * 3 + c] - o->bg[((size_t)y * W + j) * 3 + c]);
    return (float)(e / W);
}

/* The floor: the row below the strongest horizontal edge of the background
 * in the lower part of the frame, or below one up to FLOOR_BAND rows above
 * it that is at least half as strong: a floor drawn darker along its edge
 * (where balls touch it) has two, and begins at the upper. */
static float floor_from_edges(const wm_objects *o)
{
    const int H = o->cfg.height, lo = (int)(0.55 * H);
    float best = -1;
    int strongest = -1;
    for (int y = lo; y < H - 2; y++) {
        const float e = row_edge(o, y);
        if (e > best) best = e, strongest = y;
    }
    if (strongest < 0) return NAN;
    int edge = strongest;
    for (int y = strongest - 1; y >= strongest - FLOOR_BAND && y >= lo; y--)
        if (row_edge(o, y) >= 0.5f * best) edge = y;
    return (float)(edge + 1);
}

/* Pillars: bands 2 to 7 pixels wide (at 64 rows) standing from the top of
 * the frame to the floor whose colour, row after row, is found nowhere
 * PILLAR_APART or more pixels away in the row (a wall's pattern repeats
 * along the row; a screen stops short of the top).  The background's
 * pixels near a ball count as unknown. */
static void find_pillars(wm_objects *o)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const float scale = (float)H / 64.0f;
    const int apart = (int)fmaxf(PILLAR_APART, roundf(PILLAR_APART * scale));
    const int wmin = (int)fmaxf(2, roundf(2 * scale)), wmax = (int)fmaxf(7, roundf(7 * scale));
    const int bottom = isnan(o->floor) ? H : (int)o->floor - 2;
    const int rstep = bottom > PILLAR_SAMPLES ? (bottom + PILLAR_SAMPLES - 1) / PILLAR_SAMPLES : 1;
    const int kstep = W > PILLAR_SAMPLES ? (W + PILLAR_SAMPLES - 1) / PILLAR_SAMPLES : 1;
    float *own = o->scratch;   /* per sampled row and column: 1 its own colour, 0 not, -1 unknown */
    int nrows = 0;
    o->npillars = 0;
    for (int i = 1; i < bottom; i += rstep, nrows++) {
        const float *row = o->bg + (size_t)i * W * 3;
        for (int j = 0; j < W; j++) {
            float *u = own + (size_t)nrows * W + j;
            if (o->cover[(size_t)i * W + j]) { *u = -1; continue; }
            *u = 1;
            for (int k = 0; k < W && *u > 0; k += kstep) {
                if (abs(k - j) < apart || o->cover[(size_t)i * W + k]) continue;
                const float *a = row + (size_t)j * 3, *b = row + (size_t)k * 3;
                if (fabsf(a[0] - b[0]) <= PILLAR_UNIQUE && fabsf(a[1] - b[1]) <= PILLAR_UNIQUE &&
                    fabsf(a[2] - b[2]) <= PILLAR_UNIQUE)
                    *u = 0;
            }
        }
    }
    if (nrows < 8) return;
    for (int j = 0; j < W; j++) {
        int n = 0, yes = 0;
        for (int r = 0; r < nrows; r++) {
            const float u = own[(size_t)r * W + j];
            n += u >= 0, yes += u > 0;
        }
        o->column[j] = n ? (float)yes / (float)n : 0;
    }
    for (int j = 0; j < W && o->npillars < MAX_PILLARS;) {
        if (o->column[j] < PILLAR_COLUMN) { j++; continue; }
        int k = j;
        while (k < W && o->column[k] >= PILLAR_COLUMN) k++;
        if (k - j >= wmin && k - j <= wmax && j > 0 && k < W) {   /* [j, k): not cut by the frame's edge */
            int n = 0, yes = 0;
            for (int r = 0; r < nrows; r++) {
                int known = 0, any = 0;
                for (int c = j; c < k; c++) {
                    const float u = own[(size_t)r * W + c];
                    known |= u >= 0, any |= u > 0;
                }
                n += known, yes += any;
            }
            if (2 * n >= nrows && (float)yes >= PILLAR_ROWS * (float)n) {
                o->pillar[o->npillars][0] = (float)j;
                o->pillar[o->npillars][1] = (float)k;
                o->npillars++;
            }
        }
        j = k;
    }
}

static int solid(const wm_objects *o, int i, int j);

/* Where a pixel in front (a screen's) covered the ball when its sprite was
 * cut, the sprite shows the screen: there it takes the ball's own colour. */
static void sprite_unscreen(const wm_objects *o, track *t)
{
    const int W = o->cfg.width, H = o->cfg.height;
    if (t->colour[0] < -999) return;
    for (int a = 0; a < SPRITE_SIDE; a++)
        for (int b = 0; b < SPRITE_SIDE; b++) {
            const int i = t->sy0 + a, j = t->sx0 + b;
            float *sp = t->sprite + ((size_t)a * SPRITE_SIDE + b) * 4;
            if (i >= 0 && i < H && j >= 0 && j < W && sp[3] > 0 && o->front[(size_t)i * W + j])
                for (int c = 0; c < 3; c++) sp[c] = t->colour[c] * sp[3];
        }
}

/* Cuts a track's sprite: the frame inside the ball's anti-aliased disc
 * (the ball's colour where a screen covers it); and notes the ball's
 * colour.  A pixel of the disc that shows the still background, in neither
 * the ball's colour nor its hue, is not the ball either: a screen it is
 * found partly behind (coming out from it, or lying by it) or the wall
 * past a rim found a little wide.  The sprite takes the ball's colour
 * there too, and such a pixel well inside the rim is in front of the ball
 * (drawn over it, as a screen seen hiding a ball is). */
static void cut_sprite(wm_objects *o, track *t, const float *frame)
{
    const int W = o->cfg.width, H = o->cfg.height;
    track_colour(o, frame, t->x, t->y, t->r, t->colour);
    t->has_around = 0;
    if (t->colour[0] > -999) {   /* what is around it: the colour of most of a ring just outside it */
        float groups[OCC_COLOURS][3];
        int count[OCC_COLOURS], ng, grouped, best = 0;
        colour_groups(o, frame, t->x, t->y, t->r + 4.0f, t->r + 1.0f, t->colour, NULL, groups, count, OCC_COLOURS, &ng,
                      &grouped);
        for (int k = 1; k < ng; k++) best = count[k] > count[best] ? k : best;
        if (ng && (float)count[best] >= AROUND * (float)grouped) {
            memcpy(t->around, groups[best], sizeof t->around);
            t->has_around = 1;
        }
    }
    t->out = 0;
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
            if (!(al > 0) || t->colour[0] < -999) continue;
            const size_t p = (size_t)i * W + j;
            const float *f = frame + p * 3;
            if (!is_background(o, frame, p, NULL) || same_hue(f, t->colour) || like(f, t->colour)) continue;
            for (int c = 0; c < 3; c++) s[c] = t->colour[c] * al;
            if (in_disc(i, j, t->x, t->y, t->r - 1.0f) && !solid(o, i, j) && !o->behind[p]) o->front[p] = 1;
        }
    sprite_unscreen(o, t);
    /* how much its inside varies (shading): a flat disc fits anywhere
     * along the part of it that shows, and is not placed by its look */
    float mean[3] = { 0, 0, 0 }, dev = 0;
    int n = 0;
    for (int k = 0; k < SPRITE_SIDE * SPRITE_SIDE; k++)
        if (t->sprite[(size_t)k * 4 + 3] >= 1) {
            for (int c = 0; c < 3; c++) mean[c] += t->sprite[(size_t)k * 4 + c];
            n++;
        }
    for (int c = 0; c < 3 && n; c++) mean[c] /= (float)n;
    for (int k = 0; k < SPRITE_SIDE * SPRITE_SIDE; k++) {
        const float *sp = t->sprite + (size_t)k * 4;
        if (sp[3] >= 1) dev += (fabsf(sp[0] - mean[0]) + fabsf(sp[1] - mean[1]) + fabsf(sp[2] - mean[2])) / 3;
    }
    t->detail = n ? dev / (float)n : 0;
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

static int hid_by(const wm_objects *o, const float *frame, size_t p, const void *track_);

/* The cost of the track's sprite centred at (cx, cy) in the frame: each
 * pixel inside its disc costs its squared colour distance from the sprite,
 * at most FIT_CAP, so a pixel of what hides the ball costs the same
 * wherever the ball is and the part of it that shows places it; *share:
 * the share of the disc that matched (within a quarter of the cap). */
static float sprite_cost(const wm_objects *o, const track *t, const float *frame, float cx, float cy, float *share)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const float r = t->rfull - 0.5f;
    float cost = 0;
    int n = 0, good = 0;
    for (int i = (int)floorf(cy - r); i <= (int)ceilf(cy + r); i++)
        for (int j = (int)floorf(cx - r); j <= (int)ceilf(cx + r); j++) {
            if (!in_disc(i, j, cx, cy, r)) continue;
            n++;
            if (i < 0 || i >= H || j < 0 || j >= W) {
                cost += FIT_CAP;
                continue;
            }
            float sp[4], d2 = 0;
            sprite_sample(t, (float)j - (cx - t->sx), (float)i - (cy - t->sy), sp);
            const float *f = frame + ((size_t)i * W + j) * 3;
            for (int c = 0; c < 3; c++) {
                const float v = sp[3] > 0.5f ? sp[c] / sp[3] : -1e3f;   /* off the sprite: no match */
                d2 += (f[c] - v) * (f[c] - v);
            }
            good += d2 < 0.25f * FIT_CAP;
            cost += d2 < FIT_CAP ? d2 : FIT_CAP;
        }
    *share = n ? (float)good / (float)n : 0;
    return n ? cost : INFINITY;
}

/* Where the track's sprite fits the frame best near (x, y): on a grid of
 * whole pixels FIT_REACH_X across and FIT_REACH_Y down, then to FIT_STEP
 * around the best of those.  Returns the share of the disc that matched
 * there. */
static float sprite_fit(const wm_objects *o, const track *t, const float *frame, float *x, float *y)
{
    float best = INFINITY, bx = *x, by = *y, share = 0, sh;
    for (int sy = -FIT_REACH_Y; sy <= FIT_REACH_Y; sy++)
        for (int sx = -FIT_REACH_X; sx <= FIT_REACH_X; sx++) {
            const float c = sprite_cost(o, t, frame, *x + (float)sx, *y + (float)sy, &sh);
            if (c < best) best = c, bx = *x + (float)sx, by = *y + (float)sy, share = sh;
        }
    const float cx = bx, cy = by;
    const int fine = (int)(1.0f / FIT_STEP);
    for (int sy = -fine; sy <= fine; sy++)
        for (int sx = -fine; sx <= fine; sx++) {
            if (!sx && !sy) continue;
            const float c = sprite_cost(o, t, frame, cx + FIT_STEP * (float)sx, cy + FIT_STEP * (float)sy, &sh);
            if (c < best) best = c, bx = cx + FIT_STEP * (float)sx, by = cy + FIT_STEP * (float)sy, share = sh;
        }
    *x = bx, *y = by;
    return share;
}

/* Draws a track's sprite onto img with its centre at (x, y), behind what
 * was seen in front of balls, and, with hid_in, not over the pixels of
 * frame hid_in in the colours that hid the track (a ball still behind a
 * screen shows only where it comes out beside it). */
static void paste(const wm_objects *o, const track *t, float *img, float x, float y, const float *hid_in)
{
    const int W = o->cfg.width, H = o->cfg.height;
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
            if (!(s[3] > 0) || o->front[(size_t)i * W + j]) continue;   /* behind a screen */
            if (hid_in && hid_by(o, hid_in, (size_t)i * W + j, t)) continue;
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

/* whether the track's last steps were still up and down: it rolls (or lies) on the floor */
static int rolling(const track *t)
{
    return t->ndy >= 2 && fabsf(t->dy[t->ndy - 1]) < STILL && fabsf(t->dy[t->ndy - 2]) < STILL;
}

/* what touched the track in its last predicted step (WM_HIT_*), but the floor it rolls on */
static unsigned touched(const track *t)
{
    return t->contacts & ~(rolling(t) ? (unsigned)WM_HIT_FLOOR : 0u);
}

/* The tracks' places and velocities at the next frame: wm_physics (the
 * world wm-synth draws) advances them one frame together, so they bounce
 * off the floor, the frame's sides, the pillars and each other.  One unit
 * is the frame's height.  A track seen once (no velocity yet) stays where
 * it is, out of the world.  One that has not yet gone MOVED pixels in
 * three steady steps knocks no ball and no ball knocks it (it may be no
 * ball at all: a screen's pattern) unless it lies on the floor, whole and
 * round (then it is hit, and moves on), and one that never moved feels no
 * gravity (it stands on something the scene does not know).  One lying
 * still on the floor rests there and rolls with friction.  A hidden one
 * coasts on its typical step, not its last (a ball going behind a screen
 * shows less of itself, and its centre seems to slow).  Each track moves
 * by what the world moved it, from where it is. */
static void predict_tracks(wm_objects *o)
{
    const double H = o->cfg.height, fps = o->cfg.fps, k = fps / H;   /* px per frame -> units per s */
    const double g = (double)o->cfg.gravity * fps * k;
    wm_world w;
    wm_world_init(&w, o->cfg.width / H, isnan(o->floor) ? 1e3 : o->floor / H, g);
    w.e_floor = o->e_floor.sum / o->e_floor.weight;   /* the default, moved by what this clip's bounces showed */
    w.e_wall = o->cfg.restitution_wall;
    w.e_ball = o->cfg.restitution_ball;
    w.roll_friction = o->cfg.roll_friction * g;
    for (int p = 0; p < o->npillars; p++) wm_world_add_pillar(&w, o->pillar[p][0] / H, o->pillar[p][1] / H);
    int in_world[WM_OBJECTS_MAX_TRACKS];
    float from[WM_OBJECTS_MAX_TRACKS][2];
    int lying[WM_OBJECTS_MAX_TRACKS];
    for (int i = 0; i < o->ntracks; i++) {
        track *t = &o->tracks[i];
        in_world[i] = -1, lying[i] = 0;
        t->px = t->x, t->py = t->y, t->pvx = t->vx, t->pvy = t->vy;
        if (t->age < 2 && !t->hidden) continue;
        const int resting = rolling(t) && !isnan(o->floor) && t->y + t->r > o->floor - 4;
        float vx = t->vx, vy = t->vy, y = t->y;
        if (t->hidden && t->ndx >= 3) {
            float tmp[HIST];
            memcpy(tmp, t->dx, (size_t)t->ndx * sizeof *tmp);
            vx = median(tmp, (size_t)t->ndx);
            /* it went in bit by bit, and what showed of it seemed to slow:
             * it goes on as it went when last seen whole */
            if (t->unwhole > 0 && !isnan(t->wvx) && t->wvx * vx > 0 && fabsf(t->wvx) > fabsf(vx)) vx = t->wvx;
        }
        /* inside the walls and above the floor (a radius or a place a
         * little off would have the world push it out) */
        const float r = t->r, W = (float)o->cfg.width;
        float x = t->x < r ? r : t->x > W - r ? W - r : t->x;
        if (!isnan(o->floor) && (resting || y > o->floor - r)) y = o->floor - r;
        if (resting) vy = 0;
        else if (t->moving || t->moved >= NEVER_MOVED)   /* the last step is the velocity half a frame ago */
            vy += 0.5f * o->cfg.gravity;
        const int b = wm_world_add_ball(&w, x / H, y / H, vx * k, vy * k, r / H, (double)t->r * t->r);
        if (b < 0) continue;
        in_world[i] = b;
        w.balls[b].resting = resting;
        /* seen whole, lying still on the floor, and round (nothing of its hue
         * just around it): a ball no one has pushed yet, which a ball hits */
        lying[i] = !t->moving && t->age >= 3 && !t->hidden && t->cut_frames == 0 && resting && t->ring < ROUND;
        if (!t->moving) {   /* no ball of the world yet: it knocks none, and falls only once it moved */
            if (!lying[i]) w.balls[b].collide &= ~(unsigned)WM_COLLIDE_BALLS;
            if (t->moved < NEVER_MOVED) w.balls[b].gscale = 0, w.balls[b].resting = 0;
        }
        from[i][0] = x, from[i][1] = y;
        /* a bounce off the floor inside the step: when, and how fast */
        bounce_probe *fb = &t->floor_bounce;
        if (fb->phase == 1 || t->hidden) fb->phase = 0;
        if (t->moving && !t->hidden && !resting && !isnan(o->floor) && fb->phase == 0) {
            const float gp = o->cfg.gravity, d = o->floor - r - y, disc = vy * vy + 2 * gp * d;
            const float tau = gp > 0 && d >= 0 && disc >= 0 ? (-vy + sqrtf(disc)) / gp : -1;
            if (tau >= 0 && tau < 1) *fb = (bounce_probe){ 1, tau, vy + gp * tau, 0 };
        }
    }
    wm_world_advance(&w, 1 / fps, (int)ceil(SUBSTEP_HZ / fps));
    for (int i = 0; i < o->ntracks; i++) {
        if (in_world[i] < 0) continue;
        const wm_ball *b = &w.balls[in_world[i]];
        track *t = &o->tracks[i];
        /* the world's move, from where the track is */
        t->px = t->x + ((float)(b->x * H) - from[i][0]), t->py = t->y + ((float)(b->y * H) - from[i][1]);
        t->pvx = (float)(b->vx / k), t->pvy = (float)(b->vy / k);
        if (!b->resting && b->gscale > 0) t->pvy -= 0.5f * o->cfg.gravity;   /* back to a step's velocity */
        if (lying[i] && (b->contacts & WM_HIT_BALL) && b->hit_speed / k > STILL) t->moving = 1;   /* knocked */
        t->was_contacts = t->contacts;
        t->contacts = b->contacts | (b->resting ? (unsigned)WM_HIT_FLOOR : 0u);
    }
}

/* whether a disc reaches a pixel or more past the frame's top or sides (a
 * ball against a side wall touches the edge, and its radius is a little
 * uncertain) */
static int cut_by_edge(const wm_objects *o, float x, float y, float r)
{
    return y - r < -1.0f || x - r < -1.0f || x + r > (float)o->cfg.width + 1.0f;
}

/* The track is seen at (x, y), moving at (vx, vy). */
static void found_at(track *t, float x, float y, float vx, float vy)
{
    const float far = hypotf(x - t->x0, y - t->y0);
    if (far > t->moved) t->moved = far;
    t->x = x, t->y = y, t->vx = vx, t->vy = vy;
    t->fx = x, t->fy = y;
    t->age++;
    t->hidden = 0;
    t->left_frame = 0;
    t->has_occ = 0;
    t->plain = 0;
}

/* The track is where it was predicted, at the predicted velocity (the step
 * it made goes into its history when step is set). */
static void take_prediction(track *t, int step)
{
    if (step) {
        push(t->dy, &t->ndy, t->py - t->y);
        push(t->dx, &t->ndx, t->px - t->x);
    }
    found_at(t, t->px, t->py, t->pvx, t->pvy);
}

/* The two finds after a bounce off the floor measure its restitution:
 * between them the ball rose for (1 - tau) and (2 - tau) frames since the
 * bounce, y2 - y1 = -e speed + g (1.5 - tau).  Each measure weighs as the
 * inverse square of its error: MEASURE / speed, and tau's from a floor
 * PLACE px off. */
static void measure_bounce(bounce_probe *p, float y, float g, restitution *e)
{
    if (p->phase == 1) {
        p->phase = 2, p->first = y;
        return;
    }
    if (p->phase != 2) return;
    p->phase = 0;
    const float sp = p->speed, m = (g * (1.5f - p->tau) - (y - p->first)) / sp;
    if (sp < MIN_BOUNCE || !(m > 0.3f && m < 0.95f)) return;   /* too slow to tell, or something else happened */
    const float err = MEASURE + g * PLACE / sp, w = sp * sp / (err * err);
    e->sum += w * m;
    e->weight += w;
}

/* What could have changed the motion of a track found at b, across and
 * down: a ball changes its vertical motion only at the floor (or one the
 * tracker has not placed: the lower part of the frame, or a bounce up with
 * its horizontal motion kept, off a floor placed too low) and its
 * horizontal motion only at a wall or a pillar (the tracker knows those),
 * either by touching another ball. */
static void pushed(const wm_objects *o, const track *t, const wm_detection *b, int *across, int *down)
{
    const float W = (float)o->cfg.width, rr = t->r + 2.0f, sx = b->x - t->x, sy = b->y - t->y;
    /* a knock from another ball (its mass and restitution guessed) and a
     * bounce off the floor (its restitution guessed) still show in the
     * step after them */
    const unsigned c = t->contacts | (t->was_contacts & (unsigned)(WM_HIT_BALL | WM_HIT_FLOOR));
    int vert = (c & (WM_HIT_FLOOR | WM_HIT_BALL)) != 0, horiz = (c & ~(unsigned)WM_HIT_FLOOR) != 0;
    vert |= isnan(o->floor) ? t->py + t->r > 0.6f * (float)o->cfg.height : t->py + rr > o->floor;
    vert |= t->pvy > -0.5f && sy < -0.3f && fabsf(sx - t->pvx) < 1.0f;   /* a bounce up */
    horiz |= t->px - rr < 0 || t->px + rr > W;
    for (int p = 0; p < o->npillars; p++) horiz |= t->px + rr > o->pillar[p][0] && t->px - rr < o->pillar[p][1];
    for (int j = 0; j < o->ntracks; j++) {
        const track *u = &o->tracks[j];
        if (u != t && hypotf(u->px - t->px, u->py - t->py) < t->r + u->r + TOUCH) vert = horiz = 1;
    }
    *across = horiz, *down = vert;
}

/* The part of a miss (ex, ey) of a track found at b that nothing explains. */
static float unexplained(const wm_objects *o, const track *t, const wm_detection *b, float ex, float ey)
{
    int across, down;
    pushed(o, t, b, &across, &down);
    return hypotf(across ? 0 : ex, down ? 0 : ey);
}

/* A ball's path across, to hold its finds to: the place and velocity
 * after its last DRIFT_FRAMES finds in a row that were clean (whole,
 * moving, with nothing that could push it sideways), oldest first. */
static void path_push(const wm_objects *o, track *t, int clean)
{
    if (!clean) {
        t->path_n = 0;
        return;
    }
    if (t->path_n == DRIFT_FRAMES) memmove(t->path[0], t->path[1], (DRIFT_FRAMES - 1) * sizeof t->path[0]);
    else t->path_n++;
    t->path[t->path_n - 1][0] = t->x, t->path[t->path_n - 1][1] = t->vx;
    t->path_frame = o->frame_no;
}

/* Whether clean find b is more than DEFY px across off the path its track
 * was on DRIFT_FRAMES frames ago (nothing pushed it sideways since, so it
 * kept its velocity): a ball that slows, reverses or turns by a little
 * each frame, which the filter follows, adds up to that.  (Down, the same
 * test lost pairs: a bounce's restitution is a guess.)  If so, the track's
 * prediction goes back onto that path, with the same correction for what
 * the tracker's physics adds. */
static int drifted(const wm_objects *o, track *t, const wm_detection *b, int clean)
{
    if (!clean || t->path_frame != o->frame_no - 1) t->path_n = 0;
    if (t->path_n < DRIFT_FRAMES) return 0;
    const float *a = t->path[0], *z = t->path[DRIFT_FRAMES - 1];
    const float want = a[0] + (float)DRIFT_FRAMES * a[1];
    if (!(fabsf(b->x - want) > DEFY)) return 0;
    t->px += want - (z[0] + z[1]), t->pvx = a[1];
    t->path_n = 0;
    return 1;
}

/* The track's run: its finds in a row (where it is now, after this
 * frame's find) since anything last touched it but the floor it rolls
 * on; ok: this find is seen, near its whole size, else the run ends.
 * Nor does a find within TOUCH of another ball's rim (a touch the
 * physics may not have predicted) go on with one. */
static void run_push(wm_objects *o, track *t, int ok)
{
    for (int j = 0; j < o->ntracks && ok; j++) {
        const track *u = &o->tracks[j];
        ok = u == t || u->hidden || !(hypotf(u->x - t->x, u->y - t->y) < t->r + u->r + TOUCH);
    }
    if (!ok || touched(t) || t->run_frame != o->frame_no - 1) t->run_n = 0;
    if (!ok) return;
    if (t->run_n == RUN) memmove(t->run[0], t->run[1], (RUN - 1) * sizeof t->run[0]), t->run_n--;
    t->run[t->run_n][0] = t->x, t->run[t->run_n][1] = t->y;
    t->run_n++;
    t->run_frame = o->frame_no;
}

static void matched(wm_objects *o, track *t, const wm_detection *b, const float *frame)
{
    const int was_hidden = t->hidden;
    if (t->age >= 2 && (cut_by_edge(o, t->px, t->py, t->r) || cut_by_edge(o, b->x, b->y, t->r))) {
        /* the frame's edge cuts it: it shows part of itself, and its centre
         * seems pulled inwards; a track that knows its velocity takes its
         * predicted place and keeps its whole sprite */
        take_prediction(t, !t->hidden);
        run_push(o, t, 0);
        return;
    }
    /* a ball found in part (going behind a screen or out from behind it)
     * is found off its centre, towards the part that shows, by up to its
     * radius: its steps seem to slow, and it goes behind the screen late
     * and too slowly.  Where its own look (with some detail: shading)
     * still fits a quarter of its disc, that places it (a ball out in
     * another colour fits nowhere and keeps its find); its size stays the
     * find's.  A ball coming out from behind a screen shows a sliver that
     * its look fits on 5-35% of its disc, and the fit is then as often
     * nearer than the sliver's middle as not: it is placed between the
     * two, the nearer the fit the more of the disc it matched */
    wm_detection fit;
    if (t->moving && t->age >= ESTABLISHED && t->colour[0] > -999 && t->detail >= FIT_DETAIL &&
        (ball_radius(b) < FULL * t->rfull || t->cut_frames > 0 || t->hidden)) {
        fit = *b;
        const float share = sprite_fit(o, t, frame, &fit.x, &fit.y);
        if (share < FIT_SHARE && t->hidden) {   /* a sliver coming out: between the two, by the share */
            const float w = share / FIT_SHARE;
            fit.x = b->x + w * (fit.x - b->x), fit.y = b->y + w * (fit.y - b->y);
        }
        if (share >= FIT_SHARE || t->hidden) b = &fit;
    }
    const float r = ball_radius(b);
    if (r < PART * t->rfull || t->hidden) t->floor_bounce.phase = 0;
    measure_bounce(&t->floor_bounce, b->y, o->cfg.gravity, &o->e_floor);
    /* A hidden track coasted frame by frame: the miss built up over the
     * frames it was unseen, and only that share of it is this step's (a
     * whole miss taken as one step throws a ball found again off at the
     * speed of the gap).  One found where the prediction put it: the
     * predicted velocity, which knows the bounce the step went through,
     * corrected by part of the miss (an alpha-beta filter); otherwise the
     * step it made. */
    const float ex = b->x - t->px, ey = b->y - t->py;
    /* off its path by more than its finds have missed lately, each way
     * on its own (3 times their rms across and down, 1 to 2 px each; an
     * ellipse): a ball rolling steadily in the open that stops dead, at
     * 1.6 px a frame, is off by less than 2 px, and one that hops a little
     * as it rolls misses up and down, not across.  Asked of
     * a find of (nearly) the ball's whole size, whatever its middle's hue:
     * a shaded ball in the open fails the hue test one frame in three, and
     * how the picture was made (resized, noise) decides which frames */
    const int in_open = t->moving && !t->hidden && t->age >= ESTABLISHED && !t->out && r >= PART * t->rfull;
    int across = 1, down = 1;
    if (in_open) pushed(o, t, b, &across, &down);
    int off = 0;
    if (in_open && t->defy < DEFY_FRAMES) {
        const float defy_x = fminf(DEFY, fmaxf(DEFY_MIN, DEFY_MISSES * sqrtf(t->miss2x)));
        const float defy_y = fminf(DEFY, fmaxf(DEFY_MIN, DEFY_MISSES * sqrtf(t->miss2y)));
        off = hypotf((across ? 0 : ex) / defy_x, (down ? 0 : ey) / defy_y) > 1;
    }
    /* nor does it drift off its path across, a little each frame */
    const int clean = in_open && t->defy == 0 && t->cut_frames == 0 && !across;
    if (drifted(o, t, b, clean)) {
        t->defy++;
        t->dfx = b->x, t->dfy = b->y;
        take_prediction(t, 1);
        run_push(o, t, 0);
        return;
    }
    if (off) {
        /* off its path, and nothing pushed it: a ball does not do that (a
         * find of something else, or a world that breaks inertia); for a
         * while the track keeps its path, so the frames that show otherwise
         * are surprising, and a find that strays once does not derail it */
        t->defy++;
        t->dfx = b->x, t->dfy = b->y;
        take_prediction(t, 1);
        run_push(o, t, 0);
        return;
    }
    const float beta = t->age >= ESTABLISHED ? BETA : 1.0f;
    float nvx = b->x - t->x, nvy = b->y - t->y;
    if (!t->hidden && t->age >= 2 && t->cut_frames == 0 && r >= PART * t->rfull)
        t->miss2x += MISS_ALPHA * (ex * ex - t->miss2x), t->miss2y += MISS_ALPHA * (ey * ey - t->miss2y);
    if (t->defy > 0 && hypotf(ex, ey) > DEFY)   /* it went its own way: its step between the last finds */
        nvx = b->x - t->dfx, nvy = b->y - t->dfy;
    t->defy = 0;
    if (t->hidden) nvx = t->pvx + ex / (float)(t->hidden + 1), nvy = t->pvy + ey / (float)(t->hidden + 1);
    else if (t->age >= 2 && hypotf(ex, ey) < CONFIRMED) nvx = t->pvx + beta * ex, nvy = t->pvy + beta * ey;
    const int missed_once = t->hidden == 1;
    if (missed_once)   /* the detector missed it for a frame: its two steps, evened out */
        for (int k = 0; k < 2; k++) {
            push(t->dy, &t->ndy, 0.5f * (b->y - t->fy));
            push(t->dx, &t->ndx, 0.5f * (b->x - t->fx));
        }
    if (!t->hidden) {
        push(t->dy, &t->ndy, b->y - t->y);
        push(t->dx, &t->ndx, b->x - t->x);
    }
    if (!t->hidden || missed_once) {
        if (!t->moving && t->ndx >= 3 && t->ndy >= 3) {   /* falling, or rolling, MOVED px in 3 steady steps */
            int steady = 1;
            float sx = t->dx[t->ndx - 1], sy = t->dy[t->ndy - 1];
            for (int k = 2; k <= 3; k++) {
                const float ddx = t->dx[t->ndx - k + 1] - t->dx[t->ndx - k];
                const float ddy = t->dy[t->ndy - k + 1] - t->dy[t->ndy - k];
                steady &= fabsf(ddx) < STEADY && fminf(fabsf(ddy - o->cfg.gravity), fabsf(ddy)) < STEADY;
                sx += t->dx[t->ndx - k], sy += t->dy[t->ndy - k];
            }
            t->moving = steady && hypotf(sx, sy) >= MOVED;
        }
    }
    if (!t->hidden) {
        if (t->moving && t->vy > 0.8f && nvy < -0.3f)   /* it bounced: the floor is under it */
            o->floor = isnan(o->floor) ? b->y + r + 0.5f * fabsf(nvy) : fmaxf(o->floor, b->y + r);
        if (t->ndy >= 3 && fabsf(t->dy[t->ndy - 1]) < STILL && fabsf(t->dy[t->ndy - 2]) < STILL &&
            fabsf(t->dy[t->ndy - 3]) < STILL && b->y + r > 0.6f * o->cfg.height && t->moving &&
            (isnan(o->floor) || b->y + r > o->floor - 6))   /* it came to rest: on the floor */
            o->floor = b->y + r;
    }
    if (t->hidden && t->has_occ)   /* out from behind a screen: drawn as it went in for a while */
        t->keep = KEEP, t->out = 1;
    found_at(t, b->x, b->y, nvx, nvy);
    t->r = r;
    /* smaller than when seen whole, or its middle not mostly its hue: a
     * screen or the edge cuts it, and its sprite would be cut too; found so
     * for longer than RESIZE finds, that is its size now */
    const float in_hue = t->colour[0] < -999 ? 1.0f : hue_share(o, frame, b->x, b->y, 0.8f * r, -1, t->colour);
    int whole = r >= PART * t->rfull && in_hue >= WHOLE;
    /* a ball stands out from what is around it; a screen found as a ball
     * goes on past the disc found in it (asked only of a still track) */
    if (!t->moving)
        t->ring = t->colour[0] < -999 ? 1 : hue_share(o, frame, b->x, b->y, RING_OUT * r, RING_IN * r, t->colour);
    t->cut_frames = whole ? 0 : t->cut_frames + 1;
    const int full = whole && r >= FULL * t->rfull;   /* no part of it cut at all */
    t->unwhole = full ? 0 : t->unwhole + 1;
    if (full && t->moving) t->wvx = nvx;
    /* not whole for longer than RESIZE finds: that is its size now (a
     * ball that changed behind a screen), but a find of it smaller than
     * its whole size gives it its radius only when its finds have been so
     * small that long (a ball going behind a screen is found smaller for
     * the frames it goes in, and a shaded one may have failed the hue test
     * just before) */
    t->small_frames = r < PART * t->rfull ? t->small_frames + 1 : 0;
    if (t->cut_frames > RESIZE && (r >= PART * t->rfull || t->small_frames > RESIZE))
        whole = 1, t->cut_frames = 0, t->small_frames = 0, t->rfull = r;
    if (whole) t->rfull += 0.3f * (r - t->rfull);
    /* its look (sprite and colour) is taken again only from a find nearly
     * all in its hue: a ball keeps its look, so a screen's line across it
     * or a ball touching it does not become part of it, and one that came
     * out from behind a screen in another colour stays a surprise for as
     * long as it shows (a new size is still taken, as above); nor from a
     * find its look placed (part of it was hidden) */
    if (t->keep > 0) t->keep--;
    else if (whole && in_hue >= CLEAN_LOOK && b != &fit) cut_sprite(o, t, frame);
    path_push(o, t, clean);
    run_push(o, t, !was_hidden && r >= PART * t->rfull);
}

/* Marks the pixels within r of (x, y) that are not marked yet. */
static void mark_disc(wm_objects *o, float x, float y, float r, unsigned char value)
{
    const int W = o->cfg.width, H = o->cfg.height;
    for (int i = (int)floorf(y - r) - 1; i <= (int)ceilf(y + r); i++)
        for (int j = (int)floorf(x - r) - 1; j <= (int)ceilf(x + r); j++)
            if (i >= 0 && i < H && j >= 0 && j < W && in_disc(i, j, x, y, r) && !o->cover[(size_t)i * W + j])
                o->cover[(size_t)i * W + j] = value;
}

/* A track that never moved, whose hue goes on past its disc (not round):
 * a screen's pattern the detector takes for a ball, not a ball.  It is
 * the background: it is not covered, so the background learns its look
 * (the first frame's guess under every find is the colour around it) and
 * the prediction shows it as it is. */
static int screen_like(const track *t)
{
    return !t->moving && !t->hidden && t->age >= 3 && t->colour[0] > -999 && t->ring >= ROUND;
}

/* The pixels near a find that is not a screen's pattern: within its rim
 * (COVER_FIND: the background is not updated there, so a ball at rest
 * does not become part of it), and a little beyond (COVER_NEAR: where it
 * may have been; what shows there is the background, and is learnt). */
static void mark_cover(wm_objects *o, const wm_detection *balls, int n)
{
    int screen[WM_OBJECTS_MAX_TRACKS];
    memset(o->cover, 0, (size_t)o->cfg.width * o->cfg.height);
    for (int k = 0; k < n; k++) {
        screen[k] = 0;
        for (int i = 0; i < o->ntracks && !screen[k]; i++)
            screen[k] = screen_like(&o->tracks[i]) &&
                        hypotf(o->tracks[i].x - balls[k].x, o->tracks[i].y - balls[k].y) < CONFIRMED;
        if (!screen[k]) mark_disc(o, balls[k].x, balls[k].y, ball_radius(&balls[k]) + RIM, COVER_FIND);
    }
    for (int k = 0; k < n; k++)
        if (!screen[k]) mark_disc(o, balls[k].x, balls[k].y, ball_radius(&balls[k]) + 2.5f, COVER_NEAR);
}

/* Where the last prediction drew a track, and where one unseen in plain
 * view was last found: a ball is believed to be there.  Kept out of the
 * background's update, so a ball that stops where the detector misses it
 * for a frame or two (two balls touching) does not become the background,
 * whose look would then drop every later find of it. */
static void mark_tracks(wm_objects *o)
{
    for (int i = 0; i < o->ntracks; i++) {
        const track *t = &o->tracks[i];
        if (t->drawn && !screen_like(t)) mark_disc(o, t->px, t->py, t->r + 2.5f, COVER_KEPT);
        if (t->hidden > 0 && t->plain) mark_disc(o, t->fx, t->fy, t->r + 2.5f, COVER_KEPT);
    }
}

/* the disc of a hidden track's pixels, a little inside its rim */
static float hidden_radius(const track *t) { return t->r - 0.5f > 1 ? t->r - 0.5f : 1.0f; }

/* What hid a track where it went unseen: the colours of a share of the
 * frame's pixels in its disc that are neither the ball's nor what was
 * around it (the stripes of a patterned screen, not one median); or, when
 * hardly any pixel is other than what was around it, nothing: it went
 * unseen in plain view. */
static void occ_colours(wm_objects *o, const float *frame, track *t)
{
    int count[OCC_COLOURS], kept = 0, grouped;
    const int n = colour_groups(o, frame, t->x, t->y, hidden_radius(t), -1, t->colour, t->has_around ? t->around : NULL,
                                t->occ, count, OCC_COLOURS, &t->has_occ, &grouped);
    /* it went unseen at once, not bit by bit, and what shows is what was around it: nothing hid it (yet) */
    t->plain = t->cut_frames == 0 && (float)grouped < PLAIN * (float)n;
    if (t->plain) {
        t->has_occ = 0;
        return;
    }
    for (int k = 0; k < t->has_occ; k++)   /* those of a share of the disc; a sliver beside the screen is not it */
        if ((float)count[k] >= OCC_SHARE * (float)grouped) memmove(t->occ[kept++], t->occ[k], sizeof t->occ[0]);
    t->has_occ = kept;
}

static int hid_by(const wm_objects *o, const float *frame, size_t p, const void *track_)
{
    (void)o;
    const track *t = track_;
    for (int k = 0; k < t->has_occ; k++)
        if (within(frame + p * 3, t->occ[k], OCC_MATCH)) return 1;
    return 0;
}

/* The share of the pixels of a hidden track's predicted disc in the
 * colours that hid it (-1: none of the disc is in the frame). */
static float occ_share(const wm_objects *o, const float *frame, const track *t)
{
    return disc_share(o, frame, t->px, t->py, hidden_radius(t), -1, hid_by, t);
}

/* The share of a find's disc (its middle) whose pixels are the background's. */
static float bg_share(const wm_objects *o, const float *frame, const wm_detection *b)
{
    return fmaxf(0.0f, disc_share(o, frame, b->x, b->y, 0.8f * ball_radius(b), -1, is_background, NULL));
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
    if (!t->has_occ)   /* what shows where it went: the colours of its disc that are not the ball */
        occ_colours(o, frame, t);
    return !(t->hidden > o->cfg.max_hidden || t->age < 2 || t->x <= -t->r || t->x >= o->cfg.width + t->r ||
             t->y >= o->cfg.height + t->r);
}

/* ---- what is in front ---- */

/* whether pixel (i, j) is of the floor or a pillar: solid, which no ball
 * goes behind (one that seems to is going through it) */
static int solid(const wm_objects *o, int i, int j)
{
    if (!isnan(o->floor) && (float)i + 0.5f >= o->floor) return 1;
    for (int p = 0; p < o->npillars; p++)
        if ((float)j + 0.5f >= o->pillar[p][0] && (float)j + 0.5f <= o->pillar[p][1]) return 1;
    return 0;
}

/* whether pixel (i, j) of frame shows the still background there and not
 * the ball of colour (nor its hue), and is not solid: what may hide it */
static int still_not_ball(const wm_objects *o, const float *frame, int i, int j, const float *colour)
{
    const size_t p = (size_t)i * o->cfg.width + j;
    const float *f = frame + p * 3;
    return !solid(o, i, j) && within(f, o->bg + p * 3, STABLE) && !like(f, colour) && !same_hue(f, colour);
}

/* The pixels of a track's predicted disc that go on from a pixel in front
 * (4-neighbours, of the same still colour, not what was around the ball)
 * are in front too: the rest of the screen a hidden ball is behind, and
 * the screen's next pixels where a ball is drawn going behind it. */
static void grow_front(wm_objects *o, const float *frame, const track *t)
{
    static const int di[4] = { -1, 1, 0, 0 }, dj[4] = { 0, 0, -1, 1 };
    const int W = o->cfg.width, H = o->cfg.height;
    const float x = t->px, y = t->py, r = t->r + 1.0f;
    int i0 = (int)floorf(y - r) - 1, i1 = (int)ceilf(y + r) + 1, j0 = (int)floorf(x - r) - 1, j1 = (int)ceilf(x + r) + 1;
    if (i0 < 0) i0 = 0;
    if (j0 < 0) j0 = 0;
    if (i1 > H - 1) i1 = H - 1;
    if (j1 > W - 1) j1 = W - 1;
    for (int grew = 1, pass = 0; grew && pass <= 2 * (int)ceilf(r); pass++) {
        grew = 0;
        for (int i = i0; i <= i1; i++)
            for (int j = j0; j <= j1; j++) {
                const size_t p = (size_t)i * W + j;
                const float *f = frame + p * 3;
                if (o->front[p] || o->behind[p] || !in_disc(i, j, x, y, r) || solid(o, i, j) ||
                    !within(f, o->bg + p * 3, STABLE) || (t->has_around && within(f, t->around, EMERGED)))
                    continue;
                for (int d = 0; d < 4; d++) {
                    const int a = i + di[d], b = j + dj[d];
                    const size_t q = (size_t)a * W + b;
                    if (a >= 0 && a < H && b >= 0 && b < W && o->front[q] &&
                        within(o->bg + p * 3, o->bg + q * 3, FRONT_SAME)) {
                        o->front[p] = 1, grew = 1;
                        break;
                    }
                }
            }
    }
}

/* The edge of what hides a ball found cut, for drawing it next frame:
 * from the middle of what shows of it (its hue, within its predicted disc)
 * toward the middle of what hides it (still background there, neither the
 * ball nor the floor or a pillar), just past the farthest pixel of it that
 * shows.  A screen's edge is straight, and the screen goes on past it
 * where the ball goes next. */
static void find_edge(const wm_objects *o, const float *frame, track *t)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const float R = t->rfull;
    float sx = 0, sy = 0, hx = 0, hy = 0;
    int ns = 0, nh = 0;
    t->has_edge = 0;
    for (int i = (int)floorf(t->py - R) - 1; i <= (int)ceilf(t->py + R); i++)
        for (int j = (int)floorf(t->px - R) - 1; j <= (int)ceilf(t->px + R); j++) {
            if (i < 0 || i >= H || j < 0 || j >= W || !in_disc(i, j, t->px, t->py, R - 1.0f)) continue;
            if (same_hue(frame + ((size_t)i * W + j) * 3, t->colour)) sx += (float)j, sy += (float)i, ns++;
            else if (still_not_ball(o, frame, i, j, t->colour)) hx += (float)j, hy += (float)i, nh++;
        }
    if (ns < EDGE_SHOWS || nh < EDGE_HIDDEN) return;
    float nx = hx / (float)nh - sx / (float)ns, ny = hy / (float)nh - sy / (float)ns;
    const float len = hypotf(nx, ny);
    if (!(len > 0.5f)) return;
    nx /= len, ny /= len;
    float c = -INFINITY;
    for (int i = (int)floorf(t->py - R) - 1; i <= (int)ceilf(t->py + R); i++)
        for (int j = (int)floorf(t->px - R) - 1; j <= (int)ceilf(t->px + R); j++)
            if (i >= 0 && i < H && j >= 0 && j < W && in_disc(i, j, t->px, t->py, R) &&
                same_hue(frame + ((size_t)i * W + j) * 3, t->colour))
                c = fmaxf(c, nx * ((float)j + 0.5f) + ny * ((float)i + 0.5f));
    t->has_edge = 1, t->edge_n[0] = nx, t->edge_n[1] = ny, t->edge_c = c + 0.5f;
}

/* The pixels of a track's predicted disc past the edge of what hid it
 * (find_edge) that show the still background, not the ball: in front of
 * it, and kept so as the others are. */
static void mask_past_edge(wm_objects *o, const float *frame, const track *t)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const float R = t->r + 1.0f;
    for (int i = (int)floorf(t->py - R) - 1; i <= (int)ceilf(t->py + R); i++)
        for (int j = (int)floorf(t->px - R) - 1; j <= (int)ceilf(t->px + R); j++) {
            if (i < 0 || i >= H || j < 0 || j >= W || !in_disc(i, j, t->px, t->py, R)) continue;
            const size_t p = (size_t)i * W + j;
            if (t->edge_n[0] * ((float)j + 0.5f) + t->edge_n[1] * ((float)i + 0.5f) > t->edge_c && !o->behind[p] &&
                still_not_ball(o, frame, i, j, t->colour))
                o->front[p] = 1;
        }
}

/* What a real frame shows of depth.  Where a ball shows, nothing is in
 * front of it; a still find whose hue goes on around it (or not yet
 * asked) may be a screen's pattern found as a ball, and shows nothing of
 * depth: a ball going behind that screen is hidden by those pixels too.
 * Where a ball established on its path is hidden, in part
 * (found cut, not by the frame's edge) or whole (coasting behind colours
 * that hid it), the pixels of its predicted disc, well inside its rim,
 * that show the still background (neither the ball nor what was around
 * it) are in front of it: a screen's. */
static void mark_front(wm_objects *o, const float *frame)
{
    const int W = o->cfg.width, H = o->cfg.height;
    for (int k = 0; k < o->ntracks; k++) {
        const track *t = &o->tracks[k];
        if (t->hidden || t->colour[0] < -999 || (!t->moving && t->ring >= ROUND)) continue;
        const float r = t->r - 1.0f;
        for (int i = (int)floorf(t->y - r) - 1; i <= (int)ceilf(t->y + r); i++)
            for (int j = (int)floorf(t->x - r) - 1; j <= (int)ceilf(t->x + r); j++) {
                if (i < 0 || i >= H || j < 0 || j >= W || !in_disc(i, j, t->x, t->y, r)) continue;
                const size_t p = (size_t)i * W + j;
                if (same_hue(frame + p * 3, t->colour)) o->behind[p] = 1, o->front[p] = 0;
            }
    }
    for (int k = 0; k < o->ntracks; k++) {
        track *t = &o->tracks[k];
        const int part = !t->hidden && t->cut_frames > 0, whole = t->hidden > 0 && t->has_occ;
        if (!t->moving || t->age < ESTABLISHED || !(part || whole) || t->colour[0] < -999 ||
            cut_by_edge(o, t->px, t->py, t->rfull))
            continue;
        if (part) find_edge(o, frame, t);
        const float r = t->rfull - FRONT_IN;
        for (int i = (int)floorf(t->py - r) - 1; i <= (int)ceilf(t->py + r); i++)
            for (int j = (int)floorf(t->px - r) - 1; j <= (int)ceilf(t->px + r); j++) {
                if (i < 0 || i >= H || j < 0 || j >= W || !in_disc(i, j, t->px, t->py, r)) continue;
                const size_t p = (size_t)i * W + j;
                const float *f = frame + p * 3;
                if (!o->behind[p] && still_not_ball(o, frame, i, j, t->colour) &&
                    !(t->has_around && within(f, t->around, EMERGED)) && (!whole || hid_by(o, frame, p, t)))
                    o->front[p] = 1;
            }
        grow_front(o, frame, t);
    }
    for (int k = 0; k < o->ntracks; k++) sprite_unscreen(o, &o->tracks[k]);
}

static void draw_next(wm_objects *o, const float *frame, float *next, int seen);

void wm_objects_step(wm_objects *o, const float *frame, const wm_detection *balls, int n, float *next)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const size_t npx = (size_t)W * H;
    if (n > WM_OBJECTS_MAX_TRACKS) n = WM_OBJECTS_MAX_TRACKS;
    wm_detection kept_finds[WM_OBJECTS_MAX_TRACKS];
    if (o->started) {   /* a find that looks like the background there is part of it */
        int m = 0;
        for (int k = 0; k < n; k++)
            if (bg_share(o, frame, &balls[k]) < BG_FIND) kept_finds[m++] = balls[k];
        balls = kept_finds, n = m;
    }
    mark_cover(o, balls, n);
    /* the background */
    if (!o->started) {
        memcpy(o->bg, frame, npx * 3 * sizeof(float));
        memset(o->front, 0, npx);
        memset(o->behind, 0, npx);
        o->floor = floor_from_edges(o);
        for (int k = 0; k < n; k++) {   /* under each ball: the colour around it */
            const float r = ball_radius(&balls[k]) + 2.5f;
            float ring[3];
            if (!disc_median(o, frame, balls[k].x, balls[k].y, r + 3.5f, r, uncovered, NULL, ring)) continue;
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                    if (in_disc(i, j, balls[k].x, balls[k].y, r))
                        memcpy(o->bg + ((size_t)i * W + j) * 3, ring, sizeof ring);
        }
        find_pillars(o);
        o->started = 1;
    } else {
        mark_tracks(o);
        for (size_t p = 0; p < npx; p++) {
            if (o->cover[p] == COVER_FIND || o->cover[p] == COVER_KEPT) {   /* a find, or a track's place */
                if (o->cover[p] == COVER_KEPT) o->cover[p] = 0;
                continue;
            }
            const float *f = frame + p * 3, *q = o->prev + p * 3;
            if (fabsf(f[0] - q[0]) < STABLE && fabsf(f[1] - q[1]) < STABLE && fabsf(f[2] - q[2]) < STABLE)
                memcpy(o->bg + p * 3, f, 3 * sizeof(float));
            else   /* what was in front there moved (a sliding screen), or was never there */
                o->front[p] = o->behind[p] = 0;
        }
    }
    float found[WM_OBJECTS_MAX_TRACKS][3];   /* each find's colour */
    for (int k = 0; k < n; k++) ball_colour(o, frame, balls[k].x, balls[k].y, ball_radius(&balls[k]), found[k]);
    /* detections to tracks, nearest first */
    enum { MAX_PAIRS = WM_OBJECTS_MAX_TRACKS * WM_OBJECTS_MAX_TRACKS };
    int pair_t[MAX_PAIRS], pair_d[MAX_PAIRS], order[MAX_PAIRS], np = 0;
    float pair_dist[MAX_PAIRS];
    for (int i = 0; i < o->ntracks; i++)
        for (int k = 0; k < n; k++) {
            const track *t = &o->tracks[i];
            const float d = hypotf(t->px - balls[k].x, t->py - balls[k].y);
            /* a track seen once has no velocity yet: any step a thrown ball
             * makes; one hidden or seen in part was last placed by a part of
             * itself, off by up to its radius, and a find in its hue is
             * looked for that much farther */
            float gate = t->age < 2 ? FIRST_STEP : 5 + 0.5f * hypotf(t->vx, t->vy) + 3.0f * (float)t->hidden;
            const int hues = t->age >= 2 && t->colour[0] > -999 && found[k][0] > -999;   /* both colours known */
            if (hues && (t->hidden || t->cut_frames > 0) && same_hue(found[k], t->colour)) gate += t->rfull;
            /* a ball in plain view keeps its hue: a find of a clearly other
             * one is not it (a screen's pattern where it goes in); one out
             * from behind a screen may have changed, until it is cut again,
             * and takes such a find only after the finds of its own hue */
            const int unlike = hues && !t->hidden && t->moving && !near_hue(found[k], t->colour, OTHER_HUE);
            const int other = unlike && !t->out;
            /* a ball in plain view lost by its gate (a bounce off a floor
             * placed a little low) takes a find of its hue a little
             * farther, once no track claims it within its gate */
            const int wide = d >= gate && d < WIDE * gate && hues && t->moving &&
                             !t->hidden && t->age >= ESTABLISHED && same_hue(found[k], t->colour) &&
                             unexplained(o, t, &balls[k], balls[k].x - t->px, balls[k].y - t->py) <= DEFY;
            if ((d < gate || wide) && !other) {
                pair_t[np] = i;
                pair_d[np] = k;
                /* an unlike find reaches here only for a ball out from
                 * behind a screen: two balls that touched are found as
                 * one, then apart, and each takes its own again.  A
                 * find is compared with the ball's size in full and with
                 * the part of it last seen (one going behind a screen);
                 * a track unseen that never moved (a ball lying behind a
                 * screen, or a screen's blob found a few times) claims a
                 * find after the moving ones: a ball rolling past keeps
                 * its own */
                const float r = ball_radius(&balls[k]);
                pair_dist[np] = d + (wide ? 1e4f : 0.0f) + (unlike ? HUE_SWAP : 0.0f) +
                                SIZE_COST * fminf(fabsf(r - t->rfull), fabsf(r - t->r)) +
                                (t->hidden && !t->moving && t->age >= 2 ? STILL_LAST : 0.0f);
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
        t->r = t->rfull = ball_radius(&balls[k]);
        t->age = 1;
        t->ring = 1;
        t->miss2x = t->miss2y = DEFY * DEFY;
        t->wvx = NAN;
        /* one that shows from the third frame on, away from the frame's
         * edges, and that no hidden track took came from nowhere a ball
         * could have been: a ball does not appear, and the prior does not
         * draw it for a while */
        if (o->frame_no >= 2 && balls[k].x - t->r > EDGE && balls[k].x + t->r < (float)W - EDGE &&
            balls[k].y - t->r > EDGE)
            t->doubt = o->cfg.doubt;
        cut_sprite(o, t, frame);
    }
    track *swap = o->tracks;
    o->tracks = o->spare;
    o->spare = swap;
    o->ntracks = kept;
    o->frame_no++;
    mark_front(o, frame);
    draw_next(o, frame, next, 1);
}

/* A rollout starts from the context as a whole: a moving track's run of
 * finds since anything last touched it, fitted by least squares (across,
 * a steady step less the rolling friction; down, with gravity unless it
 * rolls), places it and gives its velocity better than the filter's last
 * state (that follows each find by half its miss: 0.08 px/frame off
 * against 0.04, the medians on make bench-horizon's single balls), and
 * better than its step after a bounce, which the filter takes frames to
 * learn.  t is at the first imagined frame, one past the run's newest. */
static void settle(const wm_objects *o, track *t)
{
    const int n = t->run_n, roll = rolling(t);
    const double g = o->cfg.gravity, f = roll ? (double)o->cfg.roll_friction * g : 0, dir = t->vx > 0 ? 1 : -1;
    double st = 0, stt = 0, sx = 0, stx = 0, sy = 0, sty = 0;
    for (int i = 0; i < n; i++) {   /* x + f dir t^2 / 2 and y - g t^2 / 2 are straight lines in t */
        const double ti = i, xi = t->run[i][0] + 0.5 * f * dir * ti * ti, yi = t->run[i][1] - 0.5 * g * ti * ti;
        st += ti, stt += ti * ti, sx += xi, stx += ti * xi, sy += yi, sty += ti * yi;
    }
    const double den = n * stt - st * st, tn = n;
    if (!(den > 0)) return;
    const double vx = (n * stx - st * sx) / den, x0 = (sx - vx * st) / n;
    const double nvx = vx - f * dir * (tn - 0.5);   /* the step into frame n */
    if (nvx * t->vx > 0) {   /* a ball coming to rest keeps the filter's (the fit knows no stop) */
        t->x = (float)(x0 + vx * tn - 0.5 * f * dir * tn * tn);
        t->vx = (float)nvx;
    }
    if (!roll) {
        const double vy = (n * sty - st * sy) / den, y0 = (sy - vy * st) / n;
        t->y = (float)(y0 + vy * tn + 0.5 * g * tn * tn);
        t->vy = (float)(vy + g * (tn - 0.5));
    }
}

void wm_objects_step_imagined(wm_objects *o, const float *frame, float *next)
{
    /* the balls are where the last prediction drew them (one the prior
     * doubted, as it appeared from nowhere, is there all the same) */
    wm_detection drawn[WM_OBJECTS_MAX_TRACKS];
    int n = 0;
    for (int i = 0; i < o->ntracks; i++)
        if (o->tracks[i].doubt > 0) o->tracks[i].doubt = 0, o->tracks[i].drawn = !o->tracks[i].hidden;
    for (int i = 0; i < o->ntracks; i++)
        if (o->tracks[i].drawn) drawn[n++] = (wm_detection){ o->tracks[i].px, o->tracks[i].py, o->tracks[i].r, 1.0f };
    mark_cover(o, drawn, n);
    int kept = 0;
    for (int i = 0; i < o->ntracks; i++) {
        track *t = &o->tracks[i];
        if (!t->moving && t->moved < NEVER_MOVED)   /* a still thing (or a find the detector's noise moves): it stays */
            t->px = t->x, t->py = t->y, t->pvx = t->pvy = 0;
        if (t->drawn) {   /* on to its predicted state, velocity included (a bounce's is not its step) */
            take_prediction(t, 1);
            if (t->moving && t->run_n >= RUN_MIN && t->run_frame == o->frame_no - 1 &&
                !touched(t))   /* nothing touched it since */
                settle(o, t);
        } else if (!coast(o, t, frame)) {
            continue;
        }
        t->run_n = 0;   /* an imagined frame is no find: only the first after real ones starts from a run */
        o->tracks[kept++] = *t;
    }
    o->ntracks = kept;
    draw_next(o, frame, next, 0);
}

/* The next frame: this one with the balls taken out (the background where
 * they are), then the tracks that will show; what is not a ball (a sliding
 * screen, a real scene) is predicted not to change.  seen: the frame is a
 * real one, whose balls the detector found. */
static void draw_next(wm_objects *o, const float *frame, float *next, int seen)
{
    const int W = o->cfg.width, H = o->cfg.height;
    const size_t npx = (size_t)W * H;
    memcpy(next, frame, npx * 3 * sizeof(float));
    for (size_t p = 0; p < npx; p++)
        if (o->cover[p]) memcpy(next + p * 3, o->bg + p * 3, 3 * sizeof(float));
    predict_tracks(o);
    for (int i = 0; i < o->ntracks; i++) {
        track *t = &o->tracks[i];
        t->drawn = !t->hidden;
        const int edge = t->has_edge;
        t->has_edge = 0;   /* for the drawing after the frame it was found in only */
        if (seen && t->doubt > 0) {
            t->doubt--;
            t->drawn = 0;
            continue;
        }
        if (seen && t->hidden && !t->moving) {   /* it cannot come out by moving: the detector finds it if it shows */
            t->drawn = 0;
        } else if (t->hidden && t->left_frame) {   /* nothing hid it: it comes back as soon as it shows */
            t->drawn = t->py + t->r > 1 && t->px + t->r > 1 && t->px - t->r < (float)W - 1;
        } else if (t->hidden && t->plain) {   /* nothing hid it, and a ball does not vanish: where it went */
            t->drawn = 1;
        } else if (t->hidden && t->has_occ) {
            const float share = occ_share(o, frame, t);
            if (share >= 0) t->drawn = share < COVERED;
            if (!t->drawn && share >= 0) {   /* still behind it: what of it comes out beside it, if any */
                paste(o, t, next, t->px, t->py, frame);
                continue;
            }
        }
        if (t->drawn && edge && !t->hidden) mask_past_edge(o, frame, t);
        if (t->drawn) {
            grow_front(o, frame, t);
            paste(o, t, next, t->px, t->py, NULL);
        }
    }
    for (size_t p = 0; p < npx * 3; p++) next[p] = next[p] < 0 ? 0 : next[p] > 255 ? 255 : next[p];
    memcpy(o->prev, frame, npx * 3 * sizeof(float));
}
