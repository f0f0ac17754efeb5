/* horizon-ceiling: how long wm-synth's own physics stays within a ball's
 * radius of the truth when it starts from the true state at the last
 * context frame but does not know the scene's hidden constants (make
 * bench-horizon; docs/benchmarks.md, "Coherence horizon").
 *
 *   horizon-ceiling SEED CLIPS BALLS [FRAMES [CONTEXT]]
 *
 * Takes the first CLIPS clips of `wm-synth --seed SEED --balls BALLS
 * --frames FRAMES --size 64x64` whose world holds exactly BALLS balls, each
 * shown in one of the CONTEXT context frames (as bench/horizon.py select
 * does), copies each clip's world as of frame CONTEXT-1 and rolls the copy
 * on with some of its constants replaced by what a model that has seen
 * only the context would assume: wm-synth's mean floor, wall and ball
 * restitution and rolling friction (the tracker's defaults), and every
 * ball of density 1 (mass r^2; wm-synth draws 0.5-2).  A frame fails when
 * a ball in view (visible, centre in the frame) is more than its radius
 * from the truth; the horizon is the count of frames before the first
 * that fails.  Prints one line per variant: the median, quartiles and
 * mean horizon over the clips. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_objects.h"
#include "wm_physics.h"
#include "wm_rng.h"
#include "wm_synth.h"

#define SIZE 64
#define MAX_FRAMES 1000
#define MAX_CLIPS 1000


enum { V_TRUE, V_FLOOR, V_WALL, V_BALL, V_FRICTION, V_MASS, V_ALL, V_ALL_NOISE, V_COUNT };
static const char *const variant_names[V_COUNT] = {
    "true constants (replay)", "floor restitution 0.625", "wall restitution 0.75", "ball restitution 0.82",
    "rolling friction 0.023 g", "density 1", "all of these", "all, and state noise 0.25 px, 0.15 px/frame",
};

typedef struct {
    wm_synth_object obj[WM_WORLD_MAX_BALLS];
    int n;
} frame_objs;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void apply(wm_world *w, int v, wm_rng *rng)
{
    const wm_objects_config guess = wm_objects_default_config(SIZE, SIZE, 25);   /* what the tracker assumes */
    const int all = v >= V_ALL;
    if (v == V_FLOOR || all) w->e_floor = guess.restitution_floor;
    if (v == V_WALL || all) w->e_wall = guess.restitution_wall;
    if (v == V_BALL || all) w->e_ball = guess.restitution_ball;
    if (v == V_FRICTION || all) w->roll_friction = guess.roll_friction * w->gravity;
    for (int i = 0; i < w->n_balls; i++) {
        wm_ball *b = &w->balls[i];
        if (v == V_MASS || all) b->m = b->r * b->r;
        if (v == V_ALL_NOISE) {   /* px and px/frame at 64 rows and 25 fps, in units */
            b->x += 0.25 / SIZE * wm_rng_normal(rng);
            b->y += 0.25 / SIZE * wm_rng_normal(rng);
            b->vx += 0.15 * 25 / SIZE * wm_rng_normal(rng);
            if (!b->resting) b->vy += 0.15 * 25 / SIZE * wm_rng_normal(rng);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: horizon-ceiling SEED CLIPS BALLS [FRAMES [CONTEXT]]\n");
        return 2;
    }
    const long long seed = atoll(argv[1]);
    const int clips = atoi(argv[2]), balls = atoi(argv[3]);
    const int frames = argc > 4 ? atoi(argv[4]) : 72, K = argc > 5 ? atoi(argv[5]) : 8;
    if (clips < 1 || clips > MAX_CLIPS || balls < 1 || balls > WM_SYNTH_MAX_BALLS || frames < 2 ||
        frames > MAX_FRAMES || K < 1 || K >= frames) {
        fprintf(stderr, "horizon-ceiling: bad arguments\n");
        return 2;
    }
    wm_error err = { 0 };
    wm_synth_opts so = { (uint64_t)seed, SIZE, SIZE, 25, 1, frames, balls, balls, 2.0, 0, 1 };
    wm_synth *s = wm_synth_new(&so, &err);
    frame_objs *truth = calloc((size_t)frames, sizeof *truth);
    int(*h)[MAX_CLIPS] = malloc(sizeof(int[V_COUNT][MAX_CLIPS]));
    int rc = 0;
    if (!s || !truth || !h) {
        fprintf(stderr, "horizon-ceiling: %s\n", s ? "out of memory" : err.msg);
        rc = 1;
        goto done;
    }
    const double dt = 1.0 / 25;
    const int substeps = 8;
    wm_rng rng;
    wm_rng_seed(&rng, (uint64_t)seed);
    int taken = 0;
    for (int64_t n = 0; taken < clips && n < 4 * (int64_t)clips + 100; n++) {
        if (wm_synth_begin_clip(s, n, &err)) {
            fprintf(stderr, "horizon-ceiling: %s\n", err.msg);
            rc = 1;
            goto done;
        }
        wm_world start = *wm_synth_world(s);
        const uint8_t *rgb;
        const wm_synth_object *objs;
        int no;
        for (int f = 0; f < frames; f++) {
            if (f == K - 1) start = *wm_synth_world(s);
            truth[f].n = 0;
            if (!wm_synth_next_frame(s, &rgb, &objs, &no)) break;
            truth[f].n = no;
            memcpy(truth[f].obj, objs, (size_t)no * sizeof *objs);
        }
        /* exactly `balls` balls over the clip, each shown in the context */
        unsigned ids = 0, shown = 0;
        for (int f = 0; f < frames; f++)
            for (int k = 0; k < truth[f].n; k++) {
                ids |= 1u << truth[f].obj[k].id;
                if (f < K && truth[f].obj[k].visible) shown |= 1u << truth[f].obj[k].id;
            }
        if (__builtin_popcount(ids) != balls || shown != ids) continue;
        for (int v = 0; v < V_COUNT; v++) {
            wm_world w = start;
            apply(&w, v, &rng);
            int fail = frames;
            for (int f = K; f < frames && fail == frames; f++) {
                wm_world_advance(&w, dt, substeps);
                for (int k = 0; k < truth[f].n; k++) {
                    const wm_synth_object *o = &truth[f].obj[k];
                    if (!o->visible || o->x < 0 || o->x > SIZE || o->y < 0 || o->y > SIZE) continue;
                    const wm_ball *b = &w.balls[o->id];
                    if (!b->alive || hypot(b->x * SIZE - o->x, b->y * SIZE - o->y) > o->r) {
                        fail = f;
                        break;
                    }
                }
            }
            h[v][taken] = fail - K;
        }
        taken++;
    }
    printf("physics ceiling, %d balls: %d clips of wm-synth --seed %lld, context %d, rollout %d\n", balls, taken,
           seed, K, frames - K);
    for (int v = 0; v < V_COUNT && taken > 0; v++) {
        qsort(h[v], (size_t)taken, sizeof(int), cmp_int);
        double mean = 0;
        int last = 0;
        for (int i = 0; i < taken; i++) mean += h[v][i], last += h[v][i] == frames - K;
        const int *x = h[v];
        const int mid = taken / 2;
        const double med = taken % 2 ? (double)x[mid] : 0.5 * ((double)x[mid - 1] + (double)x[mid]);
        printf("  %-44s median %5.1f  quartiles %d-%d  mean %5.1f  last %d\n", variant_names[v], med, x[taken / 4],
               x[(3 * taken) / 4], mean / taken, last);
    }
done:
    free(truth);
    free(h);
    wm_synth_free(&s);
    return rc;
}
