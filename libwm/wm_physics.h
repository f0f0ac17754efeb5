/* wm_physics: a 2D world of rigid balls under gravity, for wm-synth.
 *
 * The world is a side view: x to the right, y DOWN (as in images), in
 * world units (wm-synth makes the frame height one unit).  Solid walls
 * stand at x = 0 and x = width, a floor at y = floor_y, and optional
 * pillars (full-height vertical slabs) in between; the top is open.
 *
 * Integrator: each substep moves every ball along its exact constant-
 * acceleration path (x += v t + a t^2 / 2), so free fall is exact, and
 * finds the first contact with the floor, a wall or a pillar inside the
 * substep by solving for its time (continuous collision detection): the
 * ball stops exactly on the plane, bounces with restitution, and goes on
 * for the rest of the substep.  Balls then collide pairwise: an impulse
 * along the normal with restitution (only while they approach) and a
 * mass-weighted separation that keeps the pair's centre of mass, so it
 * adds no potential energy (a ball the floor holds up gives way like the
 * floor).  A ball whose bounce is slower than WM_REST_SPEED rests on the
 * floor and rolls with friction; a ball that lies still in a groove (held
 * from both sides by walls, pillars or still balls below it) falls asleep
 * and wakes when hit or when its support moves, so piles neither sink
 * into each other nor jitter.  Energy never grows: bounces and impulses
 * lose energy, and whatever a position correction lifts is paid from the
 * touching balls' motion (or, when they have too little, the correction
 * goes only as far as they can pay).
 *
 * Determinism: only + - * / and sqrt (correctly rounded by IEEE 754), in
 * double precision, in a fixed order; the same inputs give the same bits
 * on every x86-64 and arm64 machine.  FMA contraction would change the
 * rounding: GCC keeps it off in -std=c11 mode and the file turns it off
 * for clang.
 *
 * Ownership: a wm_world is a plain value (no heap); copy it freely. */
#ifndef WM_PHYSICS_H
#define WM_PHYSICS_H

#include <stdint.h>

#define WM_WORLD_MAX_BALLS 32
#define WM_WORLD_MAX_PILLARS 2
#define WM_REST_SPEED 0.15        /* units/s: slower floor bounces come to rest */

/* What a ball collides with (wm_ball.collide). */
enum {
    WM_COLLIDE_FLOOR = 1,
    WM_COLLIDE_WALLS = 2,         /* the side walls at 0 and width */
    WM_COLLIDE_PILLARS = 4,
    WM_COLLIDE_BALLS = 8,
    WM_COLLIDE_ALL = 15
};

/* Contacts since the last wm_world_clear_contacts (wm_ball.contacts). */
enum {
    WM_HIT_FLOOR = 1,
    WM_HIT_WALL = 2,
    WM_HIT_PILLAR = 4,
    WM_HIT_BALL = 8
};

typedef struct wm_ball {
    double x, y, vx, vy;          /* centre and velocity, units and units/s */
    double r, m;                  /* radius and mass */
    double gscale;                /* gravity multiplier: 1 normally */
    int alive;                    /* 0: not in the world (not yet, or no more) */
    int resting;                  /* lying on the floor, rolling */
    int asleep;                   /* wedged still in a pile: frozen until woken */
    double still_time;            /* seconds spent slow and wedged */
    unsigned collide;             /* WM_COLLIDE_* */
    uint32_t ghost;               /* bit j: passes through ball j */
    unsigned contacts;            /* WM_HIT_* */
    uint32_t hit_balls;           /* bit j: touched ball j */
    double hit_speed;             /* largest normal speed of those contacts */
} wm_ball;

typedef struct wm_pillar { double x0, x1; } wm_pillar;

typedef struct wm_world {
    double width, floor_y;
    double gravity;               /* units/s^2, downward */
    double e_floor, e_wall, e_ball;   /* restitution coefficients in [0, 1] */
    double roll_friction;         /* deceleration of a rolling ball, units/s^2 */
    int n_balls;
    wm_ball balls[WM_WORLD_MAX_BALLS];
    int n_pillars;
    wm_pillar pillars[WM_WORLD_MAX_PILLARS];
} wm_world;

/* An empty world with typical restitution and friction. */
void wm_world_init(wm_world *w, double width, double floor_y, double gravity);

/* Adds an alive ball (mass m, colliding with everything) and returns its
 * index, or -1 when the world is full.  A ball placed on the floor with
 * no vertical speed starts resting. */
int wm_world_add_ball(wm_world *w, double x, double y, double vx, double vy, double r, double m);

/* Wakes ball i after changing it by hand (position, velocity, gravity
 * scale, collision switches): it rests again only if it lies on the
 * floor without vertical speed. */
void wm_world_wake(wm_world *w, int i);

/* Adds a pillar spanning [x0, x1]; -1 when full. */
int wm_world_add_pillar(wm_world *w, double x0, double x1);

/* Advances the world by dt seconds (one substep; keep v * dt well under
 * the smallest radius, e.g. dt <= 1/200 s). */
void wm_world_step(wm_world *w, double dt);

/* Advances by frame_dt in n equal substeps. */
void wm_world_advance(wm_world *w, double frame_dt, int substeps);

void wm_world_clear_contacts(wm_world *w);

/* Total kinetic plus potential energy (potential measured from the floor,
 * with each ball's own gravity scale). */
double wm_world_energy(const wm_world *w);

/* Deepest overlap of two balls, or of a ball into the floor, a wall or a
 * pillar it collides with (0 when none). */
double wm_world_max_penetration(const wm_world *w);

#endif
