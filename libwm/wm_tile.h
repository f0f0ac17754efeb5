/* wm_tile: consecutive clips of a stream tiled side by side into one clip
 * (the stage behind wm-tile; pipelines/dream shows the real continuation
 * left and the model's dream right with it).
 *
 * Clips are taken in stream order, `across` at a time (a group).  Row i of
 * the tiled clip is frame i of each clip of the group, left to right, top
 * aligned, on black: the frames are taken in their order in the clip (not
 * by their index key), a clip with fewer frames leaves its place black,
 * and the tiled clip has as many frames as the longest.  The canvas is
 * rgb24 (gray8 frames are expanded), or gray8 when every frame is.  A
 * last group with fewer clips (end of stream) is tiled as it is.
 *
 * Messages: the tiled clip takes the first clip's id, its labels and its
 * pts, plus "tiles": the ids of the clips it holds, in order; its end
 * carries the first "error" of the group's ends.  The group's other clip
 * and end messages are consumed.  Every other message passes: those
 * naming a clip of the group (latents, preds, scores) right after the
 * tiled clip message, the others (stream, unknown kinds) right before it.
 * A frame of a clip that has no clip message begins a clip of the group.
 *
 * Memory: the frames of one group are held until its last clip ends.
 *
 * Errors: WM_E_INPUT for a clip that begins inside another, a frame after
 * its clip's end or of another size than the clip's first, or a tiled
 * width over WM_MAX_DIM; WM_E_SYSTEM for memory.  Ownership: the caller
 * owns the wm_tile and frees it with wm_tile_free (sets it to NULL). */
#ifndef WM_TILE_H
#define WM_TILE_H

#include "wm_error.h"
#include "wm_io.h"
#include "wm_msg.h"

#define WM_TILE_MAX_ACROSS 64

typedef struct wm_tile wm_tile;

/* A tiler of `across` clips (2..WM_TILE_MAX_ACROSS) per tiled clip. */
wm_tile *wm_tile_new(int across, wm_error *err);
void wm_tile_free(wm_tile **t);

/* The stage callbacks (wm_loop.h) with a wm_tile as ctx. */
wm_status wm_tile_on_msg(void *ctx, const wm_msg *msg, wm_writer *out, wm_error *err);
wm_status wm_tile_on_finish(void *ctx, wm_writer *out, wm_error *err);

/* Tiled clips and frames written so far. */
int64_t wm_tile_clips(const wm_tile *t);
int64_t wm_tile_frames(const wm_tile *t);

#endif
