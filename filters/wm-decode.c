/* wm-decode: video files -> a wm stream of frames (one clip per input).
 * The decoding is libwm/wm_vdec; this file is options, messages and the
 * exit code.  A bad input gets a clip and an end carrying "error", one
 * line on stderr, and decoding goes on with the next input (exit 2). */
#include <stdio.h>

#include <libavutil/log.h>

#include "wm_cli.h"
#include "wm_io.h"
#include "wm_proto.h"
#include "wm_signal.h"
#include "wm_vdec.h"

static const wm_tool tool = {
    "wm-decode",
    "decode video files into a stream of frames",
    "[options] FILE... | -",
    "Each input becomes one clip (id = its index, after --id-prefix): a clip\n"
    "message, its frames (rgb24 or gray8, pts in seconds from the stream start)\n"
    "and an end message.  Rotation metadata is honoured.  An input that cannot\n"
    "be decoded gets a clip and an end with an \"error\" field and the others\n"
    "are still decoded; the exit status is then 2.",
    "  wm-decode clips/*.mp4 --size 64x64 | wm-cat\n"
    "  wm-decode talk.mov --fps 10 --start 5 --duration 2 --gray > talk.wms",
};

/* The clip of an input that could not be opened: it has no size. */
static void pack_failed_clip(msgpack_packer *pk, const char *id, const char *source, const char *why)
{
    msgpack_pack_map(pk, 4);
    wm_pack_kv_str(pk, "kind", "clip");
    wm_pack_kv_str(pk, "id", id);
    wm_pack_kv_str(pk, "source", source);
    wm_pack_kv_str(pk, "error", why);
}

static void pack_failed_end(msgpack_packer *pk, const char *id, int64_t frames, const char *why)
{
    msgpack_pack_map(pk, 4);
    wm_pack_kv_str(pk, "kind", "end");
    wm_pack_kv_str(pk, "clip", id);
    wm_pack_kv_i64(pk, "frames", frames);
    wm_pack_kv_str(pk, "error", why);
}

/* Decodes one input into one clip.  Returns WM_OK, WM_E_INPUT (in err,
 * after the clip was closed with its error), or a status that stops the
 * run (output error, EPIPE, interrupt). */
static wm_status decode_input(const char *path, const char *id, const wm_vdec_opts *vo, wm_writer *out,
                              wm_msgbuf *mb, wm_progress *prog, int64_t *total, wm_error *err)
{
    wm_error werr = { 0 };
    wm_status st, wst;
    wm_vdec *d = wm_vdec_open(path, vo, err);
    if (!d) {
        if (err->code != WM_E_INPUT) return err->code;
        pack_failed_clip(&mb->pk, id, path, err->msg);
        if ((wst = wm_writer_send_buf(out, mb, &werr)) != WM_OK) { *err = werr; return wst; }
        pack_failed_end(&mb->pk, id, 0, err->msg);
        if ((wst = wm_writer_send_buf(out, mb, &werr)) != WM_OK) { *err = werr; return wst; }
        return WM_E_INPUT;
    }
    const wm_vdec_info *info = wm_vdec_get_info(d);
    wm_clip_info clip = { id, path, info->fps_num, info->fps_den, info->width, info->height };
    wm_proto_pack_clip(&mb->pk, &clip, 0);
    st = wm_writer_send_buf(out, mb, err);

    wm_vdec_frame f;
    while (st == WM_OK) {
        if (wm_signal_pending()) { st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted"); break; }
        if ((st = wm_vdec_next(d, &f, err)) != WM_OK) break;
        wm_frame_info fi = { id, f.index, f.pts, f.width, f.height, f.format };
        wm_proto_pack_frame(&mb->pk, &fi, 0);
        wm_proto_pack_data_header(&mb->pk, f.size);
        st = wm_writer_send(out, mb->sbuf.data, mb->sbuf.size, f.data, f.size, err);
        wm_msgbuf_reset(mb);
        ++*total;
        wm_progress_update(prog, "%s: frame %lld, %.0f frames/s", path, (long long)f.index + 1,
                           (double)*total / wm_progress_elapsed(prog));
    }
    if (st == WM_EOF) st = WM_OK;
    /* close the clip unless the output itself is gone */
    if (st == WM_OK || st == WM_E_INTERRUPTED || st == WM_E_INPUT) {
        if (st == WM_E_INPUT) pack_failed_end(&mb->pk, id, wm_vdec_count(d), err->msg);
        else wm_proto_pack_end(&mb->pk, id, wm_vdec_count(d));
        if ((wst = wm_writer_send_buf(out, mb, &werr)) != WM_OK) { *err = werr; st = wst; }
    }
    wm_vdec_free(&d);
    return st;
}

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    wm_size size = { 0, 0 };
    wm_rational fps = { 0, 0 };
    int fit = WM_VDEC_FIT_CROP, scaler = WM_VDEC_SCALER_DEFAULT, gray = 0, frames = 0, threads = 0, first = 0;
    double start = 0, duration = 0, near_fps = 0;
    const char *id_prefix = "";
    const wm_opt opts[] = {
        { "size", 0, WM_OPT_SIZE, &size, "WxH", "output frame size (default: the source's, after rotation); W or H may be -n: from the other and the video's aspect ratio as shown, a multiple of n (-4x64: 64 rows, 84 columns from 4:3)", NULL, -256, 0 },
        { "fit", 0, WM_OPT_CHOICE, &fit, "MODE", "how --size meets another aspect ratio: cover and crop the centre, pad with black, or stretch",
          wm_vdec_fit_names, 0, 0 },
        { "fps", 0, WM_OPT_RATIONAL, &fps, "R", "resample to R frames/s by timestamps (frames dropped or repeated)", NULL, 0, 0 },
        { "near-fps", 0, WM_OPT_DOUBLE, &near_fps, "R", "keep every k-th frame, k the whole number that brings the video's rate nearest R (a 50 or 60 frames/s video at 25: every 2nd; at 30 or less: every frame)", NULL, 1e-3, 1e6 },
        { "start", 0, WM_OPT_DOUBLE, &start, "T", "skip to T seconds from the start", NULL, 0, 1e9 },
        { "frames", 0, WM_OPT_INT, &frames, "N", "at most N frames per clip", NULL, 1, 2147483647 },
        { "duration", 0, WM_OPT_DOUBLE, &duration, "T", "at most T seconds per clip", NULL, 1e-6, 1e9 },
        { "gray", 0, WM_OPT_FLAG, &gray, NULL, "gray8 frames instead of rgb24", NULL, 0, 0 },
        { "scaler", 0, WM_OPT_CHOICE, &scaler, "ALG", "libswscale algorithm (default bicubic, as ffmpeg -vf scale)",
          wm_vdec_scaler_names, 0, 0 },
        { "threads", 0, WM_OPT_INT, &threads, "N", "decoder threads (default 0: one per core)", NULL, 0, 64 },
        { "id-prefix", 0, WM_OPT_STRING, &id_prefix, "P", "prefix for clip ids (P0, P1, ...)", NULL, 0, 0 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    if (common.in)
        return wm_cli_exit(&tool, wm_error_set(&err, WM_E_USAGE, "--in: wm-decode reads video files; give them as arguments"), &err);
    if (first == argc)
        return wm_cli_exit(&tool, wm_error_set(&err, WM_E_USAGE, "no input (give FILE... or - for stdin)"), &err);
    if (size.w > WM_VDEC_MAX_SIDE || size.h > WM_VDEC_MAX_SIDE)
        return wm_cli_exit(&tool, wm_error_set(&err, WM_E_USAGE, "--size: %dx%d is over %dx%d", size.w, size.h,
                                               WM_VDEC_MAX_SIDE, WM_VDEC_MAX_SIDE), &err);
    /* FFmpeg's own messages would be a second, differently worded report */
    av_log_set_level(common.verbose ? AV_LOG_WARNING : AV_LOG_QUIET);

    wm_vdec_opts vo;
    wm_vdec_opts_init(&vo);
    vo.width = size.w;
    vo.height = size.h;
    vo.fit = (wm_vdec_fit)fit;
    vo.fps_num = fps.num;
    vo.fps_den = fps.den;
    vo.near_fps = near_fps;
    vo.start = start;
    vo.max_frames = frames;
    vo.duration = duration;
    vo.format = gray ? WM_PIX_GRAY8 : WM_PIX_RGB24;
    vo.scaler = scaler;
    vo.threads = threads;
    size_t cap = common.max_message ? common.max_message : WM_DEFAULT_MAX_MESSAGE;
    vo.max_bytes = cap > 4096 ? cap - 4096 : cap;   /* room for the frame header */

    wm_writer *out = wm_writer_open(common.out, &err);
    if (!out) return wm_cli_exit(&tool, err.code, &err);
    wm_msgbuf mb;
    wm_msgbuf_init(&mb);
    wm_progress prog;
    wm_progress_init(&prog, &tool, &common);
    wm_proto_pack_stream(&mb.pk, "wm-decode " WM_VERSION);
    st = wm_writer_send_buf(out, &mb, &err);

    int input_rc = 0;   /* exit code owed to bad inputs, already reported */
    int64_t total = 0;
    for (int i = first; i < argc && st == WM_OK; i++) {
        char id[256];
        snprintf(id, sizeof id, "%s%d", id_prefix, i - first);
        st = decode_input(argv[i], id, &vo, out, &mb, &prog, &total, &err);
        if (st == WM_E_INPUT) {
            input_rc = wm_cli_exit(&tool, st, &err);   /* prints the one line */
            st = WM_OK;
        }
    }
    if (st == WM_OK) st = wm_writer_close(out, &err);
    else if (st == WM_E_INTERRUPTED) wm_writer_flush(out, NULL);
    wm_progress_done(&prog);
    wm_writer_free(&out);
    wm_msgbuf_destroy(&mb);
    if (st == WM_OK && input_rc) return input_rc;
    return wm_cli_exit(&tool, st, &err);
}
