/* wm-tile: consecutive clips side by side in one clip.  The tiling is
 * wm_tile's; this file parses the options and runs the loop. */
#include <stdio.h>

#include "wm_cli.h"
#include "wm_loop.h"
#include "wm_tile.h"

static const wm_tool tool = {
    "wm-tile", "tile consecutive clips side by side into one clip", "[options] [STREAM...]",
    "Takes the clips of the stream in order, N at a time (--across, default 2),\n"
    "and writes each group as one clip whose frame i is frame i of each clip,\n"
    "left to right, top aligned on black (a shorter clip leaves its place black).\n"
    "The tiled clip keeps the first clip's id, labels and timestamps and lists\n"
    "the clips it holds in \"tiles\".  Other messages pass through.  Compare a\n"
    "real continuation with the model's dream, or a clip with its heatmap.\n"
    "The frames of one group are held in memory until its last clip ends.",
    "  wm-synth --pairs 1 --category gravity | wm-tile | wm-mux -o pair.mp4\n"
    "  cat real.wms dreamed.wms | wm-tile | wm-mux -o side_by_side.mp4"
};

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    int across = 2, first = 0;
    const wm_opt opts[] = {
        { "across", 'n', WM_OPT_INT, &across, "N", "clips per tiled clip (default 2)", NULL, 2, WM_TILE_MAX_ACROSS },
        { 0 } };
    const char *const *inputs;
    int ninputs;
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &ninputs, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);

    wm_tile *t = wm_tile_new(across, &err);
    if (!t) return wm_cli_exit(&tool, err.code, &err);
    wm_writer *out = wm_writer_open(common.out, &err);
    if (!out) {
        wm_tile_free(&t);
        return wm_cli_exit(&tool, err.code, &err);
    }
    wm_stage stage = { t, wm_tile_on_msg, wm_tile_on_finish };
    st = wm_loop_run(inputs, ninputs, common.max_message, out, &stage, &err);
    if (st == WM_OK) st = wm_writer_close(out, &err);
    if (common.verbose && !common.quiet)
        fprintf(stderr, "wm-tile: %lld clips, %lld frames\n", (long long)wm_tile_clips(t), (long long)wm_tile_frames(t));
    wm_writer_free(&out);
    wm_tile_free(&t);
    return wm_cli_exit(&tool, st, &err);
}
