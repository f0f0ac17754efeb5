/* wm_objects: the tracker and painter of the object prior.
 *
 * Per clip, one frame at a time: given frame t (the tokenizer's decoding of
 * z_t) and the balls the detector found in z_t (wm_detect.h), it keeps
 *  - a background: each pixel's last value away from every ball, taken
 *    only where the pixel held still since the frame before (so a ball the
 *    detector missed is not painted in); at the first frame the pixels
 *    under the balls are filled with the median colour around them;
 *  - a floor: the strongest horizontal edge of that first background in
 *    the lower 45% of the frame (or one up to 3 rows above it at least
 *    half as strong: a floor drawn darker along its edge), moved to where
 *    a ball is then seen to rest;
 *  - pillars: bands 2 to 7 pixels wide (at 64 rows) standing from the top
 *    of that first background to the floor, whose colour, row after row,
 *    shows nowhere else in the row (a wall's pattern repeats along a row;
 *    a screen stops short of the top);
 *  - what is in front: the still pixels (not the floor's, not a pillar's)
 *    a ball was seen going behind, where its predicted disc was hidden
 *    (whole, or the part a cut find does not show), those of the same
 *    colour that go on from them, and, where a cut ball is drawn next,
 *    those past the edge of what shows of it; a pixel a ball showed in
 *    front of never is, and one that changes is forgotten (a sliding
 *    screen);
 *  - tracks: position, velocity (the last displacement), radius, a sprite
 *    cut from the frame (the ball's disc, anti-aliased) whenever the ball
 *    is seen whole (its radius near the one it had, most of its middle in
 *    its own colour) but for 4 frames after it comes out from behind a
 *    screen (it is expected as it went in), and whether it is hidden; the
 *    pixels of a disc that show the still background, in neither the
 *    ball's colour nor its hue, are no part of its colour or its sprite
 *    (a ball found half behind a screen), and well inside its rim they are
 *    in front of it.
 *    A detection whose middle is the background there is no ball; the
 *    others are matched to the tracks' predicted places, nearest first (a
 *    moving ball in plain view takes one up to twice its gate away when a
 *    contact explains the miss); a track that is not found coasts on its
 *    prediction, remembers the colours that covered it (not the ball's,
 *    not those around it when last seen whole), and is drawn again once
 *    half its predicted place shows other colours (it came out from
 *    behind the screen), when it left across the frame's edge once its
 *    predicted disc is back in, and at once when it went unseen where
 *    nothing hid it; a track found with its disc cut by the frame's edge
 *    takes its predicted place (the cut ball's centre seems pulled in);
 *    a moving ball found off its path (by three times its recent rms
 *    miss, 1 to 2 px) where nothing (floor, wall, pillar, another ball, a
 *    bounce up) explains it keeps its path for up to 4 frames; an
 *    unmatched detection starts a track, not drawn for cfg.doubt real
 *    frames when it appeared from nowhere (away from the frame's edges,
 *    after the first two frames);
 * and draws the frame it predicts for t+1: frame t with the balls taken
 * out (the background where they are; whatever is not a ball is predicted
 * not to change), then every visible or re-emerging track's sprite at the
 * place its dynamics give, behind the pixels in front (a sprite cut where
 * a screen covered part of the ball takes the ball's colour there).  A
 * track that went behind a screen bit by bit coasts at the speed it had
 * when last found full-size (what shows of a ball going in seems to
 * slow).  The dynamics are wm-synth's own (wm_physics.h,
 * one unit the frame's height): the tracks advance one frame together
 * under gravity, with exact bounces off the floor, the frame's sides, the
 * pillars and each other, at fixed restitutions; a ball lying on the
 * floor rolls with friction; a track that never moved feels no gravity.

 * The painter works in pixels because the encoder turns a moved ball into
 * its latent far better than any move of the latent itself (docs/model.md,
 * "Four further checks"); wm-step encodes the drawn frame as the prior.
 *
 * Ownership: wm_objects_new returns a scene the caller frees with
 * wm_objects_free.  Nothing here allocates after _new, fails or prints. */
#ifndef WM_OBJECTS_H
#define WM_OBJECTS_H

#include "wm_detect.h"
#include "wm_error.h"

#define WM_OBJECTS_MAX_TRACKS 32

typedef struct wm_objects_config {
    int width, height;            /* frames, pixels */
    float gravity;                /* pixels per frame squared, downwards */
    float fps;                    /* frames per second: the physics' clock */
    float restitution_floor;      /* a bounce keeps this share of the speed */
    float restitution_wall;       /* off the frame's sides and the pillars */
    float restitution_ball;       /* between balls */
    float roll_friction;          /* a ball rolling on the floor slows by this share of gravity */
    int max_hidden;               /* frames a track coasts unseen before it is dropped */
    int doubt;                    /* real frames a ball that appeared from nowhere is not drawn (0: at once) */
} wm_objects_config;

/* gravity 9.81 frame heights per s² at fps (wm-synth's world: a frame is
 * one unit high; 25 fps when fps <= 0, with no gravity), restitutions 0.6,
 * 0.75 and 0.82 (the middles of wm-synth's ranges), 60 frames of coasting,
 * 10 real frames of doubt. */
wm_objects_config wm_objects_default_config(int width, int height, double fps);
/* Sets fps and the gravity it gives, as wm_objects_default_config does. */
void wm_objects_config_fps(wm_objects_config *c, double fps);

typedef struct wm_objects wm_objects;

wm_objects *wm_objects_new(const wm_objects_config *cfg, wm_error *err);
void wm_objects_free(wm_objects **o);
/* Forgets the clip: the next step is a first frame. */
void wm_objects_reset(wm_objects *o);
/* A clip's own frame rate (and the gravity it gives), from now on. */
void wm_objects_set_fps(wm_objects *o, double fps);
/* cfg.doubt from now on (rollouts take the balls they saw: 0). */
void wm_objects_set_doubt(wm_objects *o, int frames);

/* Frame t (RGB, 0..255 as floats, [height, width, 3]) and the n balls
 * found in it; writes the predicted frame t+1 into next (the same layout). */
void wm_objects_step(wm_objects *o, const float *frame, const wm_detection *balls, int n, float *next);

/* The same for a frame the scene imagined (drawn from its last prediction):
 * no detections; each ball it drew moves on to its predicted place and
 * velocity (a bounce keeps its new velocity, which its step does not
 * show), hidden tracks coast and come out as in wm_objects_step, and the
 * sprites and background are kept.  At the first imagined frame after
 * real ones, a moving ball's place and velocity come from a least-squares
 * fit of its last finds in a row since anything but the floor it rolls on
 * touched it (at least 3 of them, up to 8), not from the filter's last
 * state; a track that never moved (a still thing, or a find that only the
 * detector's noise moves) stays where it is. */
void wm_objects_step_imagined(wm_objects *o, const float *frame, float *next);

/* What the scene holds, for tests and tracing. */
typedef struct wm_track_view {
    float x, y, r;                /* now (a hidden track: where it coasted to) */
    float px, py;                 /* predicted for the next frame */
    float moved;                  /* the farthest it has been from where it was first seen */
    int age, hidden, drawn;       /* frames seen; frames unseen; drawn in the last prediction */
} wm_track_view;

int wm_objects_tracks(const wm_objects *o, wm_track_view *out, int max);
/* The floor's row (pixels from the top), NAN when unknown. */
float wm_objects_floor(const wm_objects *o);
/* The pillars found in the first frame: each one's left and right face
 * (pixels from the left); writes at most max, returns how many there are. */
int wm_objects_pillars(const wm_objects *o, float (*faces)[2], int max);

#endif
