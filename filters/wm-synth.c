/* wm-synth: writes simulated scenes of balls as a wm stream: training clips
 * (--clips) and matched possible/impossible pairs (--pairs).  The
 * physics, drawing and scene making live in libwm (wm_physics, wm_render,
 * wm_synth); this file parses options and writes the stream. */
#include <stdio.h>

#include "wm_cli.h"
#include "wm_io.h"
#include "wm_proto.h"
#include "wm_signal.h"
#include "wm_synth.h"

static const wm_tool tool = {
    "wm-synth", "simulated balls: training clips and possible/impossible pairs",
    "[options]",
    "Writes clips of balls under gravity (bouncing, rolling, colliding, passing\n"
    "behind screens) as a frame stream, the same bytes for the same --seed on\n"
    "every run and machine.  --clips N writes N training clips.  --pairs N\n"
    "writes, for each category, N pairs of clips identical up to a violation\n"
    "frame, the second impossible from there: permanence, continuity, gravity,\n"
    "solidity, inertia, constancy.  Labels travel in the stream: each clip's\n"
    "\"synth\" map (seed, category, possible, violation_frame, pair) and each\n"
    "frame's \"objects\" (id, x, y, r, visible).  See docs/synth.md.",
    "  wm-synth --clips 100 > train.wms\n"
    "  wm-synth --pairs 2 | wm-mux -o pairs_%03d.mp4\n"
    "  wm-synth --pairs 10 --category gravity,solidity --size 128x96 --frames 48"
};

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    int seed = 1, clips = -1, pairs = 0, frames = 32, first = 0, background_only = 0;
    const char *categories = NULL, *balls = "1-3";
    wm_size size = { 64, 64 };
    wm_rational fps = { 25, 1 };
    double noise = 2, ball_scale = 1;
    const wm_opt opts[] = {
        { "seed", 0, WM_OPT_INT, &seed, "N", "random seed (default 1)", NULL, 0, 2147483647 },
        { "clips", 0, WM_OPT_INT, &clips, "N", "write N training clips (default 1 without --pairs)", NULL, 0, 1000000000 },
        { "pairs", 0, WM_OPT_INT, &pairs, "N", "write N possible/impossible pairs per category", NULL, 0, 1000000 },
        { "category", 0, WM_OPT_STRING, &categories, "LIST", "pairs of these categories only (comma list)", NULL, 0, 0 },
        { "size", 0, WM_OPT_SIZE, &size, "WxH", "frame size (default 64x64)", NULL, 0, 0 },
        { "fps", 0, WM_OPT_RATIONAL, &fps, "R", "frame rate (default 25)", NULL, 0, 0 },
        { "frames", 0, WM_OPT_INT, &frames, "N", "frames per clip (default 32)", NULL, 1, 1000000 },
        { "balls", 0, WM_OPT_STRING, &balls, "MIN-MAX", "balls per scene, or N (default 1-3)", NULL, 0, 0 },
        { "noise", 0, WM_OPT_DOUBLE, &noise, "SIGMA", "sensor noise in levels (default 2)", NULL, 0, 64 },
        { "ball-scale", 0, WM_OPT_DOUBLE, &ball_scale, "F",
          "every ball's radius times F (0.5-2; default 1)", NULL, 0.5, 2 },
        { "background-only", 0, WM_OPT_FLAG, &background_only, NULL,
          "draw the frames without their balls (labels unchanged; for tests)", NULL, 0, 0 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    if (first < argc) {
        wm_error_set(&err, WM_E_USAGE, "unexpected argument '%s' (wm-synth reads no input)", argv[first]);
        return wm_cli_exit(&tool, WM_E_USAGE, &err);
    }
    if (common.in) {
        wm_error_set(&err, WM_E_USAGE, "--in: wm-synth reads no input");
        return wm_cli_exit(&tool, WM_E_USAGE, &err);
    }
    unsigned mask = (1u << WM_SYNTH_CATEGORIES) - 1;
    if (categories && (st = wm_synth_parse_categories("category", categories, &mask, &err)) != WM_OK)
        return wm_cli_exit(&tool, st, &err);
    if (categories && pairs == 0) {
        wm_error_set(&err, WM_E_USAGE, "--category: only applies to --pairs");
        return wm_cli_exit(&tool, WM_E_USAGE, &err);
    }
    wm_synth_opts so = { (uint64_t)seed, size.w, size.h, fps.num, fps.den, frames, 0, 0, noise, background_only, ball_scale };
    if ((st = wm_synth_parse_range("balls", balls, 1, WM_SYNTH_MAX_BALLS, &so.balls_min, &so.balls_max, &err)) != WM_OK)
        return wm_cli_exit(&tool, st, &err);
    if (clips < 0) clips = pairs > 0 ? 0 : 1;

    if (pairs > 0 && (st = wm_synth_check_pair_opts(&so, &err)) != WM_OK) return wm_cli_exit(&tool, st, &err);
    wm_synth *synth = wm_synth_new(&so, &err);
    if (!synth) return wm_cli_exit(&tool, err.code, &err);
    wm_writer *out = wm_writer_open(common.out, &err);
    if (!out) { wm_synth_free(&synth); return wm_cli_exit(&tool, err.code, &err); }
    wm_progress progress;
    wm_progress_init(&progress, &tool, &common);
    wm_msgbuf mb;
    wm_msgbuf_init(&mb);
    wm_proto_pack_stream(&mb.pk, "wm-synth " WM_VERSION);
    st = wm_writer_send_buf(out, &mb, &err);
    wm_msgbuf_destroy(&mb);

    int64_t total = (int64_t)clips + 2 * (int64_t)pairs * __builtin_popcount(mask), done = 0;
    for (int64_t n = 0; n < clips && st == WM_OK; n++) {
        if ((st = wm_synth_begin_clip(synth, n, &err)) == WM_OK) st = wm_synth_write_clip(synth, out, &err);
        if (st == WM_OK) st = wm_writer_flush(out, &err);
        wm_progress_update(&progress, "clip %lld of %lld", (long long)++done, (long long)total);
    }
    for (int c = 0; c < WM_SYNTH_CATEGORIES && st == WM_OK; c++) {
        if (!(mask >> c & 1u)) continue;
        for (int64_t k = 0; k < pairs && st == WM_OK; k++)
            for (int impossible = 0; impossible < 2 && st == WM_OK; impossible++) {
                if ((st = wm_synth_begin_pair(synth, (wm_synth_category)c, k, impossible, &err)) == WM_OK)
                    st = wm_synth_write_clip(synth, out, &err);
                if (st == WM_OK) st = wm_writer_flush(out, &err);
                wm_progress_update(&progress, "clip %lld of %lld", (long long)++done, (long long)total);
            }
    }
    wm_progress_done(&progress);
    if (st == WM_OK) st = wm_writer_close(out, &err);
    else if (st == WM_E_INTERRUPTED) {          /* what is complete still goes out */
        wm_error flush_err;
        wm_writer_flush(out, &flush_err);
    }
    wm_writer_free(&out);
    wm_synth_free(&synth);
    return wm_cli_exit(&tool, st, &err);
}
