/* Physics checks for wm_physics, the world of wm-synth (issue 4): exact free fall, no
 * interpenetration beyond a tolerance, energy that never grows,
 * restitution, momentum, resting and rolling, collision switches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "wm_physics.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } } while (0)

#define G 9.81
#define PX 64.0                 /* pixels per unit at the default 64x64 */
#define FPS 25.0
#define SUBSTEPS 8

static uint64_t rng_state;

static double urand(double lo, double hi)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return lo + (hi - lo) * (double)(z >> 11) * 0x1.0p-53;
}

static void test_free_fall(void)
{
    wm_world w;
    wm_world_init(&w, 10, 100, G);  /* floor and walls far away: a pure fall */
    double y0 = 0.3, v0 = -2.5, x0 = 0.5;
    wm_world_add_ball(&w, x0, y0, 0.3, v0, 0.08, 1);
    double worst = 0;
    for (int f = 1; f <= 50; f++) {
        wm_world_advance(&w, 1 / FPS, SUBSTEPS);
        double t = f / FPS;
        double want = y0 + v0 * t + G * t * t / 2;
        double err = fabs(w.balls[0].y - want) * PX;
        if (err > worst) worst = err;
        CHECK(fabs(w.balls[0].x - (x0 + 0.3 * t)) * PX < 1e-6, "free fall x drifts at frame %d", f);
    }
    CHECK(worst < 1.0, "free fall is %.3g px off y0 + v0 t + g t^2/2", worst);
    CHECK(worst < 1e-6, "free fall should be exact, is %.3g px off", worst);
    printf("ok - free fall matches y0 + v0 t + g t^2/2 (worst %.2g px)\n", worst);
}

static void test_bounce_height(void)
{
    wm_world w;
    wm_world_init(&w, 1, 0.9, G);
    w.e_floor = 0.8;
    double r = 0.05, h0 = 0.6;
    wm_world_add_ball(&w, 0.5, w.floor_y - r - h0, 0, 0, r, 1);
    double apex = 1e9;
    int bounced = 0;
    for (int s = 0; s < 4000; s++) {
        wm_world_step(&w, 1 / 1000.0);
        if (w.balls[0].contacts & WM_HIT_FLOOR) bounced = 1;
        if (bounced && w.balls[0].vy >= 0 && w.balls[0].y < apex) apex = w.balls[0].y;
        if (bounced && w.balls[0].vy > 0 && apex < 1e9) break;
    }
    double h1 = w.floor_y - r - apex;
    CHECK(fabs(h1 - 0.64 * h0) < 0.01 * h0, "bounce apex %.4f, wanted e^2 h0 = %.4f", h1, 0.64 * h0);
    printf("ok - a bounce keeps e^2 of the height (%.4f for %.4f)\n", h1, 0.64 * h0);
}

static void test_momentum(void)
{
    wm_world w;
    wm_world_init(&w, 4, 100, 0);
    w.e_ball = 1;
    wm_world_add_ball(&w, 1.0, 1.0, 1.5, 0.2, 0.1, 2);
    wm_world_add_ball(&w, 2.0, 1.05, -1.0, 0, 0.07, 0.7);
    double p0x = 2 * 1.5 + 0.7 * -1.0, p0y = 2 * 0.2, e0 = wm_world_energy(&w);
    int hit = 0;
    for (int f = 0; f < 25; f++) {
        wm_world_advance(&w, 1 / FPS, SUBSTEPS);
        hit |= (w.balls[0].contacts & WM_HIT_BALL) != 0;
    }
    double px = 2 * w.balls[0].vx + 0.7 * w.balls[1].vx, py = 2 * w.balls[0].vy + 0.7 * w.balls[1].vy;
    CHECK(hit, "the balls never met");
    CHECK(fabs(px - p0x) < 1e-12 && fabs(py - p0y) < 1e-12, "momentum (%g, %g) became (%g, %g)", p0x, p0y, px, py);
    CHECK(wm_world_energy(&w) <= e0 * (1 + 1e-12), "an elastic collision made energy");
    CHECK(wm_world_energy(&w) > e0 * (1 - 1e-9), "an elastic collision lost energy");
    printf("ok - ball collisions keep momentum, elastic ones keep energy\n");
}

static void test_rest_and_roll(void)
{
    wm_world w;
    wm_world_init(&w, 3, 0.85, G);
    wm_world_add_ball(&w, 0.5, 0.3, 0, 0, 0.06, 1);                 /* dropped */
    wm_world_add_ball(&w, 1.2, 0.85 - 0.07, 0.8, 0, 0.07, 1);       /* rolling */
    CHECK(w.balls[1].resting, "a ball placed on the floor should rest");
    for (int f = 0; f < 200; f++) wm_world_advance(&w, 1 / FPS, SUBSTEPS);
    CHECK(w.balls[0].resting && w.balls[0].y == w.floor_y - w.balls[0].r && w.balls[0].vy == 0,
          "a dropped ball should come to rest on the floor (y %.6f, vy %g)", w.balls[0].y, w.balls[0].vy);
    double travelled = w.balls[1].x - 1.2, want = 0.8 * 0.8 / (2 * w.roll_friction);
    CHECK(w.balls[1].vx == 0 && fabs(travelled - want) < 0.01, "rolling ball went %.4f, wanted %.4f", travelled, want);
    double y = w.balls[0].y;
    for (int f = 0; f < 50; f++) wm_world_advance(&w, 1 / FPS, SUBSTEPS);
    CHECK(w.balls[0].y == y, "a resting ball moved");
    printf("ok - balls come to rest and roll to a stop\n");
}

static void test_switches(void)
{
    wm_world w;
    wm_world_init(&w, 1, 0.8, G);
    wm_world_add_pillar(&w, 0.6, 0.65);
    int a = wm_world_add_ball(&w, 0.3, 0.2, 0, 0, 0.05, 1);
    int b = wm_world_add_ball(&w, 0.3, 0.8 - 0.05, 1.0, 0, 0.05, 1);
    w.balls[a].collide &= ~(unsigned)WM_COLLIDE_FLOOR;
    w.balls[b].collide &= ~(unsigned)WM_COLLIDE_PILLARS;
    for (int f = 0; f < 25; f++) wm_world_advance(&w, 1 / FPS, SUBSTEPS);
    CHECK(w.balls[a].y > 1.0, "a ball without floor collision should fall through (y %.3f)", w.balls[a].y);
    CHECK(w.balls[b].x > 0.65, "a ball without pillar collision should pass it (x %.3f)", w.balls[b].x);

    wm_world_init(&w, 1, 0.8, G);
    wm_world_add_pillar(&w, 0.6, 0.65);
    b = wm_world_add_ball(&w, 0.3, 0.8 - 0.05, 1.0, 0, 0.05, 1);
    for (int f = 0; f < 12; f++) wm_world_advance(&w, 1 / FPS, SUBSTEPS);
    CHECK(w.balls[b].x <= 0.6 - 0.05 && w.balls[b].vx < 0, "a pillar should stop a ball (x %.3f)", w.balls[b].x);
    printf("ok - collision switches let a ball pass the floor or a pillar\n");
}

/* Many random scenes, from one ball to crowded piles of eight in narrow
 * boxes with pillars: energy never grows and nothing interpenetrates by
 * more than half a pixel at 64 pixels per unit. */
static void test_random_scenes(void)
{
    double worst_pen = 0, worst_gain = 0;
    int scenes = 300, frames = 400;
    rng_state = 12345;
    for (int s = 0; s < scenes; s++) {
        wm_world w;
        double width = urand(0.8, 2.0);
        wm_world_init(&w, width, urand(0.75, 0.9), G);
        w.e_floor = urand(0.3, 1.0);
        w.e_wall = urand(0.3, 1.0);
        w.e_ball = urand(0.3, 1.0);
        if (s % 3 == 0) { double px = urand(0.3, width - 0.3); wm_world_add_pillar(&w, px, px + urand(0.03, 0.1)); }
        int n = 1 + s % 8;
        for (int k = 0; k < n; k++) {
            double r = urand(0.04, 0.12);
            for (int tries = 0; tries < 50; tries++) {
                double x = urand(r, width - r), y = k % 3 == 2 ? w.floor_y - r : urand(0.05, w.floor_y - r);
                int ok = 1;
                for (int j = 0; j < w.n_balls; j++) {
                    double dx = w.balls[j].x - x, dy = w.balls[j].y - y, rr = w.balls[j].r + r + 0.01;
                    if (dx * dx + dy * dy < rr * rr) ok = 0;
                }
                for (int p = 0; p < w.n_pillars; p++)
                    if (x + r > w.pillars[p].x0 - 0.01 && x - r < w.pillars[p].x1 + 0.01) ok = 0;
                if (!ok) continue;
                wm_world_add_ball(&w, x, y, urand(-2, 2), k % 3 == 2 ? 0 : urand(-3, 2), r, r * r * urand(0.5, 2));
                break;
            }
        }
        double e_prev = wm_world_energy(&w), scale = 1 + fabs(e_prev);
        for (int f = 0; f < frames; f++) {
            wm_world_advance(&w, 1 / FPS, SUBSTEPS);
            double e = wm_world_energy(&w), pen = wm_world_max_penetration(&w);
            double gain = (e - e_prev) / scale;
            if (gain > worst_gain) worst_gain = gain;
            if (pen > worst_pen) worst_pen = pen;
            CHECK(gain <= 1e-9, "scene %d frame %d: energy grew by %.3g (relative)", s, f, gain);
            CHECK(pen * PX <= 0.5, "scene %d frame %d: %.3g px interpenetration", s, f, pen * PX);
            e_prev = e;
            if (failures > 10) return;
        }
    }
    printf("ok - %d random scenes x %d frames: energy never grows (worst %.2g), "
           "interpenetration at most %.3f px\n", scenes, frames, worst_gain, worst_pen * PX);
}

/* A ball wedged between two floor balls held by a wall and a pillar falls
 * asleep; when the pillar goes and one support rolls away, it wakes and
 * falls. */
static void test_pile_sleeps_and_wakes(void)
{
    wm_world w;
    wm_world_init(&w, 2, 0.8, G);
    wm_world_add_pillar(&w, 0.4, 0.45);
    wm_world_add_ball(&w, 0.1, 0.8 - 0.1, 0, 0, 0.1, 1);
    int b = wm_world_add_ball(&w, 0.3, 0.8 - 0.1, 0, 0, 0.1, 1);
    int c = wm_world_add_ball(&w, 0.21, 0.45, 0, 0, 0.08, 0.5);
    for (int f = 0; f < 50; f++) wm_world_advance(&w, 1 / FPS, SUBSTEPS);
    CHECK(w.balls[c].asleep, "a ball in a groove should fall asleep");
    double y = w.balls[c].y, e = wm_world_energy(&w);
    for (int f = 0; f < 100; f++) wm_world_advance(&w, 1 / FPS, SUBSTEPS);
    CHECK(w.balls[c].y == y && wm_world_energy(&w) <= e, "a sleeping pile moved or gained energy");
    CHECK(wm_world_max_penetration(&w) * PX < 0.05, "a sleeping pile sinks (%.3g px)", wm_world_max_penetration(&w) * PX);
    w.n_pillars = 0;
    w.balls[b].vx = 1.5;                      /* kick one support away */
    wm_world_wake(&w, b);
    for (int f = 0; f < 25; f++) wm_world_advance(&w, 1 / FPS, SUBSTEPS);
    CHECK(!w.balls[c].asleep && w.balls[c].y > y + 0.03, "the ball should wake and fall (y %.3f, was %.3f)",
          w.balls[c].y, y);
    printf("ok - a ball in a groove sleeps without sinking and wakes when its support goes\n");
}

int main(void)
{
    test_free_fall();
    test_bounce_height();
    test_momentum();
    test_rest_and_roll();
    test_switches();
    test_pile_sleeps_and_wakes();
    test_random_scenes();
    if (failures) printf("%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
