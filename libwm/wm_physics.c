#include "wm_physics.h"

#include <math.h>
#include <stddef.h>

/* a*b + c must round twice, as written, on every compiler (see header). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define MAX_EVENTS_PER_STEP 8     /* plane contacts resolved inside one substep */
#define BALL_PASSES 8             /* most ball-ball sweeps per substep (clusters) */
#define SLOP 1e-9                 /* overlap (units) a later sweep leaves alone */
#define SLEEP_SPEED 0.05          /* units/s: a wedged ball this slow ... */
#define SLEEP_TIME 0.1            /* ... for this long (s) falls asleep */
#define WAKE_SPEED 0.2            /* units/s: a contact this fast wakes a sleeper */
#define CONTACT_TOL 1e-4          /* units: gap still counted as touching */

void wm_world_init(wm_world *w, double width, double floor_y, double gravity)
{
    *w = (wm_world){ 0 };
    w->width = width;
    w->floor_y = floor_y;
    w->gravity = gravity;
    w->e_floor = 0.7;
    w->e_wall = 0.8;
    w->e_ball = 0.9;
    w->roll_friction = 0.2;
}

static void ball_settle_on_floor(const wm_world *w, wm_ball *b)
{
    b->resting = b->vy == 0 && b->gscale > 0 && (b->collide & WM_COLLIDE_FLOOR) &&
                 fabs(b->y + b->r - w->floor_y) < 1e-9;
    if (b->resting) b->y = w->floor_y - b->r;
}

int wm_world_add_ball(wm_world *w, double x, double y, double vx, double vy, double r, double m)
{
    if (w->n_balls >= WM_WORLD_MAX_BALLS) return -1;
    wm_ball *b = &w->balls[w->n_balls];
    *b = (wm_ball){ .x = x, .y = y, .vx = vx, .vy = vy, .r = r, .m = m, .gscale = 1,
                    .alive = 1, .collide = WM_COLLIDE_ALL };
    ball_settle_on_floor(w, b);
    return w->n_balls++;
}

int wm_world_add_pillar(wm_world *w, double x0, double x1)
{
    if (w->n_pillars >= WM_WORLD_MAX_PILLARS) return -1;
    w->pillars[w->n_pillars] = (wm_pillar){ x0, x1 };
    return w->n_pillars++;
}

void wm_world_wake(wm_world *w, int i)
{
    wm_ball *b = &w->balls[i];
    b->asleep = 0;
    b->still_time = 0;
    ball_settle_on_floor(w, b);
}

void wm_world_clear_contacts(wm_world *w)
{
    for (int i = 0; i < w->n_balls; i++) {
        w->balls[i].contacts = 0;
        w->balls[i].hit_balls = 0;
        w->balls[i].hit_speed = 0;
    }
}

static double ball_accel(const wm_world *w, const wm_ball *b)
{
    return b->resting ? 0 : w->gravity * b->gscale;
}

static void ball_record(wm_ball *b, unsigned hit, double speed)
{
    b->contacts |= hit;
    if (speed > b->hit_speed) b->hit_speed = speed;
}

/* Time until a ball at height gap D >= 0 above its contact plane, with
 * downward speed v and downward acceleration a, reaches it; -1: never.
 * The roots are taken in the form that avoids cancellation. */
static double time_to_floor(double gap, double v, double a)
{
    if (a > 0) {
        double s = sqrt(v * v + 2 * a * gap);
        return v > 0 ? 2 * gap / (v + s) : (s - v) / a;
    }
    if (v <= 0) return -1;
    double disc = v * v + 2 * a * gap;
    if (disc < 0) return -1;
    return 2 * gap / (v + sqrt(disc));
}

/* Time until a ball at x with speed v reaches the plane x = p (the plane
 * being ahead in the direction of v); clamped at 0 when already past. */
static double time_to_plane(double x, double v, double p)
{
    double t = (p - x) / v;
    return t > 0 ? t : 0;
}

/* The side-wall and pillar faces a ball moving at vx would meet first:
 * sets *plane and returns the time (or -1), and the WM_HIT_ kind. */
static double next_side_contact(const wm_world *w, const wm_ball *b, double *plane, unsigned *hit)
{
    double best = -1;
    if (b->vx == 0) return -1;
    if (b->collide & WM_COLLIDE_WALLS) {
        double p = b->vx < 0 ? b->r : w->width - b->r;
        best = time_to_plane(b->x, b->vx, p);
        *plane = p;
        *hit = WM_HIT_WALL;
    }
    if (b->collide & WM_COLLIDE_PILLARS) {
        for (int k = 0; k < w->n_pillars; k++) {
            const wm_pillar *pl = &w->pillars[k];
            int left_of = b->x < 0.5 * (pl->x0 + pl->x1);
            if (left_of != (b->vx > 0)) continue;       /* moving away from it */
            double p = left_of ? pl->x0 - b->r : pl->x1 + b->r;
            double t = time_to_plane(b->x, b->vx, p);
            if (best < 0 || t < best) { best = t; *plane = p; *hit = WM_HIT_PILLAR; }
        }
    }
    return best;
}

static void ball_move(wm_ball *b, double t, double a)
{
    b->x += b->vx * t;
    b->y += b->vy * t + 0.5 * a * t * t;
    b->vy += a * t;
}

/* Moves one ball through a substep, bouncing off planes on the way. */
static void ball_fly(const wm_world *w, wm_ball *b, double dt)
{
    if (b->resting && w->gravity * b->gscale <= 0) b->resting = 0;
    double left = dt;
    for (int ev = 0; ev < MAX_EVENTS_PER_STEP && left > 0; ev++) {
        double a = ball_accel(w, b);
        double t_hit = left, plane = 0;
        unsigned hit = 0;
        if (!b->resting && (b->collide & WM_COLLIDE_FLOOR)) {
            double gap = w->floor_y - b->r - b->y;
            double t = time_to_floor(gap > 0 ? gap : 0, b->vy, a);
            if (t >= 0 && t < t_hit) { t_hit = t; hit = WM_HIT_FLOOR; }
        }
        double side_plane = 0;
        unsigned side_hit = 0;
        double t = next_side_contact(w, b, &side_plane, &side_hit);
        if (t >= 0 && t < t_hit) { t_hit = t; hit = side_hit; plane = side_plane; }
        ball_move(b, t_hit, a);
        left -= t_hit;
        if (!hit) return;
        if (hit == WM_HIT_FLOOR) {
            double vin = b->vy > 0 ? b->vy : 0;
            b->y = w->floor_y - b->r;
            b->vy = -w->e_floor * vin;
            if (-b->vy < WM_REST_SPEED && a > 0) {
                b->vy = 0;
                b->resting = 1;
            }
            ball_record(b, WM_HIT_FLOOR, vin);
        } else {
            double vin = fabs(b->vx);
            b->x = plane;
            b->vx = -w->e_wall * b->vx;
            ball_record(b, hit, vin);
        }
    }
    if (left > 0) ball_move(b, left, ball_accel(w, b));
}

static void ball_roll_friction(const wm_world *w, wm_ball *b, double dt)
{
    if (!b->resting) return;
    double dv = w->roll_friction * dt;
    if (b->vx > dv) b->vx -= dv;
    else if (b->vx < -dv) b->vx += dv;
    else b->vx = 0;
}

static double ball_potential(const wm_world *w, const wm_ball *b)
{
    return b->m * w->gravity * b->gscale * (w->floor_y - b->y);
}

static double ball_energy(const wm_world *w, const wm_ball *b)
{
    return 0.5 * b->m * (b->vx * b->vx + b->vy * b->vy) + ball_potential(w, b);
}

/* Pushes a ball back out of the floor, the walls and the pillars. */
static void ball_clamp(const wm_world *w, wm_ball *b)
{
    if (b->collide & WM_COLLIDE_FLOOR) {
        if (b->y + b->r > w->floor_y) {
            b->y = w->floor_y - b->r;
            if (b->vy > 0) b->vy = b->resting ? 0 : -w->e_floor * b->vy;
        }
    }
    if (b->collide & WM_COLLIDE_WALLS) {
        if (b->x < b->r) { b->x = b->r; if (b->vx < 0) b->vx = -w->e_wall * b->vx; }
        if (b->x > w->width - b->r) { b->x = w->width - b->r; if (b->vx > 0) b->vx = -w->e_wall * b->vx; }
    }
    if (b->collide & WM_COLLIDE_PILLARS) {
        for (int k = 0; k < w->n_pillars; k++) {
            const wm_pillar *pl = &w->pillars[k];
            if (b->x < 0.5 * (pl->x0 + pl->x1)) {
                if (b->x > pl->x0 - b->r) { b->x = pl->x0 - b->r; if (b->vx > 0) b->vx = -w->e_wall * b->vx; }
            } else if (b->x < pl->x1 + b->r) {
                b->x = pl->x1 + b->r;
                if (b->vx < 0) b->vx = -w->e_wall * b->vx;
            }
        }
    }
}

/* 1 when the floor keeps the ball from being pushed further down. */
static int ball_on_floor(const wm_world *w, const wm_ball *b)
{
    return (b->collide & WM_COLLIDE_FLOOR) && b->gscale > 0 && b->y + b->r >= w->floor_y - 1e-9;
}

static int balls_interact(const wm_ball *a, const wm_ball *b, int i, int j)
{
    return a->alive && b->alive && (a->collide & WM_COLLIDE_BALLS) && (b->collide & WM_COLLIDE_BALLS) &&
           !(a->ghost >> j & 1u) && !(b->ghost >> i & 1u);
}

/* Resolves the contact of balls i and j, if they overlap (returns 1). */
static int balls_collide(wm_world *w, int i, int j, int pass)
{
    wm_ball *a = &w->balls[i], *b = &w->balls[j];
    if (a->asleep && b->asleep) return 0;
    double dx = b->x - a->x, dy = b->y - a->y;
    double rs = a->r + b->r, d2 = dx * dx + dy * dy;
    if (d2 >= rs * rs) return 0;
    double d = sqrt(d2), nx = 1, ny = 0;
    if (rs - d < SLOP && pass > 0) return 0;          /* touching, already resolved */
    if (d > 0) { nx = dx / d; ny = dy / d; }
    double vrel = (b->vx - a->vx) * nx + (b->vy - a->vy) * ny;
    if (-vrel > WAKE_SPEED) {
        if (a->asleep) wm_world_wake(w, i);
        if (b->asleep) wm_world_wake(w, j);
    }

    /* Each ball gives way in proportion to its inverse mass (which keeps the
     * centre of mass); a sleeping ball does not give way, and a ball on the
     * floor only slides along it.  jy_a, jy_b: how much of the normal's
     * vertical part each ball may follow. */
    int floor_a = ball_on_floor(w, a), floor_b = ball_on_floor(w, b);
    double inv_a = a->asleep ? 0 : 1 / a->m, inv_b = b->asleep ? 0 : 1 / b->m;
    double jy_a = floor_a ? 0 : 1, jy_b = floor_b ? 0 : 1;
    double w_a = inv_a * (nx * nx + jy_a * ny * ny), w_b = inv_b * (nx * nx + jy_b * ny * ny);
    if (!(w_a + w_b > 1e-6 * (inv_a + inv_b))) return 0;   /* neither can give way */
    double lambda = (rs - d) / (w_a + w_b);
    a->x -= lambda * inv_a * nx;
    a->y -= lambda * inv_a * jy_a * ny;
    b->x += lambda * inv_b * nx;
    b->y += lambda * inv_b * jy_b * ny;
    ball_clamp(w, a);
    ball_clamp(w, b);

    /* The impulse: a ball on the floor pushed down takes only the
     * horizontal part (the floor takes the rest); pushed up it may hop. */
    if (vrel < 0) {
        double e = -vrel < WM_REST_SPEED ? 0 : w->e_ball;     /* resting contacts do not bounce */
        double ky_a = floor_a && ny < 0 ? 0 : 1, ky_b = floor_b && ny > 0 ? 0 : 1;
        double k_a = inv_a * (nx * nx + ky_a * ny * ny), k_b = inv_b * (nx * nx + ky_b * ny * ny);
        if (k_a + k_b > 0) {
            double jimp = -(1 + e) * vrel / (k_a + k_b);
            a->vx -= jimp * inv_a * nx;
            a->vy -= jimp * inv_a * ky_a * ny;
            b->vx += jimp * inv_b * nx;
            b->vy += jimp * inv_b * ky_b * ny;
        }
    }
    ball_record(a, WM_HIT_BALL, vrel < 0 ? -vrel : 0);
    ball_record(b, WM_HIT_BALL, vrel < 0 ? -vrel : 0);
    a->hit_balls |= 1u << j;
    b->hit_balls |= 1u << i;
    for (int k = 0; k < 2; k++) {
        wm_ball *c = k ? b : a;
        if (!c->resting) continue;
        if (c->vy < -WM_REST_SPEED || c->y + c->r < w->floor_y - 1e-9) c->resting = 0;   /* knocked up */
        else c->vy = 0;                                 /* the floor takes the push */
    }
    return 1;
}

/* A ball holds still without help: it sleeps, or lies on the floor
 * slower than SLEEP_SPEED. */
static int ball_is_static(const wm_world *w, const wm_ball *b)
{
    return b->asleep || (ball_on_floor(w, b) && b->vx * b->vx + b->vy * b->vy < SLEEP_SPEED * SLEEP_SPEED);
}

/* 1 when ball i sits in a groove: held from the left and from the right
 * by walls, pillars or still balls below its centre (or one right below). */
static int ball_is_wedged(const wm_world *w, int i)
{
    const wm_ball *b = &w->balls[i];
    int left = 0, right = 0;
    if (b->collide & WM_COLLIDE_WALLS) {
        left |= b->x - b->r <= CONTACT_TOL;
        right |= b->x + b->r >= w->width - CONTACT_TOL;
    }
    if (b->collide & WM_COLLIDE_PILLARS)
        for (int k = 0; k < w->n_pillars; k++) {
            const wm_pillar *pl = &w->pillars[k];
            if (b->x < 0.5 * (pl->x0 + pl->x1)) right |= b->x + b->r >= pl->x0 - CONTACT_TOL;
            else left |= b->x - b->r <= pl->x1 + CONTACT_TOL;
        }
    for (int j = 0; j < w->n_balls; j++) {
        const wm_ball *c = &w->balls[j];
        if (j == i || !balls_interact(b, c, i, j) || !ball_is_static(w, c)) continue;
        double dx = c->x - b->x, dy = c->y - b->y, rs = b->r + c->r + CONTACT_TOL;
        if (dy <= 0 || dx * dx + dy * dy > rs * rs) continue;    /* not below, or apart */
        if (dx <= 0) left = 1;
        if (dx >= 0) right = 1;
    }
    return left && right;
}

/* Balls wedged in a groove fall asleep and wake when their support goes.
 * Asleep they neither sink into their supports nor jitter: position
 * corrections in a pile would otherwise pump energy into it. */
static void balls_update_sleep(wm_world *w, double dt)
{
    for (int i = 0; i < w->n_balls; i++) {
        wm_ball *b = &w->balls[i];
        if (!b->alive) continue;
        if (b->asleep) {
            if (!ball_is_wedged(w, i)) wm_world_wake(w, i);
            continue;
        }
        if (b->resting || b->gscale <= 0 || b->vx * b->vx + b->vy * b->vy > SLEEP_SPEED * SLEEP_SPEED ||
            !ball_is_wedged(w, i)) {
            b->still_time = 0;
            continue;
        }
        b->still_time += dt;
        if (b->still_time >= SLEEP_TIME) {
            b->asleep = 1;
            b->vx = b->vy = 0;
        }
    }
}

/* Position corrections can lift a cluster (a ball wedged between others,
 * a wall and the floor).  The lift is paid from the cluster's motion; if
 * the motion cannot pay for it, the cluster moves only as far towards the
 * corrected positions as its energy after the flight allows.  So energy
 * never grows. */
static void balls_keep_energy(wm_world *w, uint32_t touched, const double *x0, const double *y0,
                              double e0)
{
    double ke = 0, pe = 0, pe0 = 0;
    for (int i = 0; i < w->n_balls; i++) {
        if (!(touched >> i & 1u)) continue;
        wm_ball *b = &w->balls[i];
        ke += 0.5 * b->m * (b->vx * b->vx + b->vy * b->vy);
        pe += ball_potential(w, b);
        pe0 += b->m * w->gravity * b->gscale * (w->floor_y - y0[i]);
    }
    double gain = ke + pe - e0;
    if (!(gain > 0)) return;
    double k = ke > gain ? sqrt((ke - gain) / ke) : 0;
    double lambda = ke > gain || !(pe > pe0) ? 1 : (e0 - pe0) / (pe - pe0);
    if (lambda < 0) lambda = 0;
    for (int i = 0; i < w->n_balls; i++) {
        if (!(touched >> i & 1u)) continue;
        wm_ball *b = &w->balls[i];
        b->vx *= k;
        b->vy *= k;
        if (lambda < 1) {
            b->x = x0[i] + lambda * (b->x - x0[i]);
            b->y = y0[i] + lambda * (b->y - y0[i]);
        }
    }
}

void wm_world_step(wm_world *w, double dt)
{
    double x0[WM_WORLD_MAX_BALLS], y0[WM_WORLD_MAX_BALLS], e0[WM_WORLD_MAX_BALLS];
    for (int i = 0; i < w->n_balls; i++) {
        wm_ball *b = &w->balls[i];
        if (!b->alive) continue;
        if (!b->asleep) {
            ball_fly(w, b, dt);
            ball_roll_friction(w, b, dt);
        }
        x0[i] = b->x;
        y0[i] = b->y;
        e0[i] = ball_energy(w, b);
    }
    uint32_t touched = 0;
    for (int pass = 0; pass < BALL_PASSES; pass++) {
        int overlaps = 0;
        for (int i = 0; i < w->n_balls; i++)
            for (int j = i + 1; j < w->n_balls; j++)
                if (balls_interact(&w->balls[i], &w->balls[j], i, j) && balls_collide(w, i, j, pass)) {
                    touched |= 1u << i | 1u << j;
                    overlaps++;
                }
        if (!overlaps) break;
        for (int i = 0; i < w->n_balls; i++)
            if (w->balls[i].alive && !w->balls[i].asleep) ball_clamp(w, &w->balls[i]);
    }
    if (touched) {
        double e = 0;
        for (int i = 0; i < w->n_balls; i++)
            if (touched >> i & 1u) e += e0[i];
        balls_keep_energy(w, touched, x0, y0, e);
    }
    balls_update_sleep(w, dt);
}

void wm_world_advance(wm_world *w, double frame_dt, int substeps)
{
    double dt = frame_dt / substeps;
    for (int s = 0; s < substeps; s++) wm_world_step(w, dt);
}

double wm_world_energy(const wm_world *w)
{
    double e = 0;
    for (int i = 0; i < w->n_balls; i++) {
        const wm_ball *b = &w->balls[i];
        if (!b->alive) continue;
        e += 0.5 * b->m * (b->vx * b->vx + b->vy * b->vy);
        e += b->m * w->gravity * b->gscale * (w->floor_y - b->y);
    }
    return e;
}

double wm_world_max_penetration(const wm_world *w)
{
    double worst = 0;
    for (int i = 0; i < w->n_balls; i++) {
        const wm_ball *b = &w->balls[i];
        if (!b->alive) continue;
        double p[5] = { 0, 0, 0, 0, 0 };
        if (b->collide & WM_COLLIDE_FLOOR) p[0] = b->y + b->r - w->floor_y;
        if (b->collide & WM_COLLIDE_WALLS) { p[1] = b->r - b->x; p[2] = b->x + b->r - w->width; }
        if (b->collide & WM_COLLIDE_PILLARS)
            for (int k = 0; k < w->n_pillars; k++) {
                const wm_pillar *pl = &w->pillars[k];
                double q = b->x < 0.5 * (pl->x0 + pl->x1) ? b->x + b->r - pl->x0 : pl->x1 - (b->x - b->r);
                if (q > p[3]) p[3] = q;
            }
        for (int j = i + 1; j < w->n_balls; j++) {
            const wm_ball *c = &w->balls[j];
            if (!balls_interact(b, c, i, j)) continue;
            double dx = c->x - b->x, dy = c->y - b->y;
            double q = b->r + c->r - sqrt(dx * dx + dy * dy);
            if (q > p[4]) p[4] = q;
        }
        for (int k = 0; k < 5; k++)
            if (p[k] > worst) worst = p[k];
    }
    return worst;
}
