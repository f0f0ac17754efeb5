/* wm-mux: a frame stream into video files.  The encoding is wm_venc's; this
 * file keeps track of clips (which file each goes to) and maps errors to
 * exit codes.  It is a sink: nothing is written to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/log.h>

#include "wm_cli.h"
#include "wm_loop.h"
#include "wm_proto.h"
#include "wm_venc.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static const wm_tool tool = {
    "wm-mux", "write a frame stream to video files", "[options] -o FILE [STREAM...]",
    "Reads frames (stdin by default) and encodes them into FILE; the codec follows its\n"
    "extension: .mp4/.mov H.264 (libx264, yuv420p, odd sizes yuv444p), .mkv lossless\n"
    "FFV1, .png a PNG sequence (the name holds a frame number: frames_%04d.png),\n"
    ".gif GIF with a palette made for each frame.  A name with a number\n"
    "(out_%03d.mp4) gets one file per clip, numbered in stream order from 0; a name\n"
    "without one takes a single clip (pick it with --clip if the stream has more).\n"
    "Timestamps come from the frames' pts; each file is written under a temporary\n"
    "name and renamed when complete, also when the input breaks off.",
    "  wm-decode in.mp4 --size 64x64 | wm-mux -o out.mkv\n"
    "  wm-synth --pairs 2 | wm-mux -o pairs_%03d.mp4\n"
    "  wm-decode in.mp4 --size 128x128 | wm-mux -o preview.gif"
};

typedef struct mux_clip {
    char *id;
    int number;              /* order in the stream: names per-clip files */
    int fps_num, fps_den;
    wm_venc *venc;           /* open from its first frame until its end */
    char path[4096];
    int width, height;       /* of the first frame */
    wm_pixfmt format;
    int done;
} mux_clip;

typedef struct mux_ctx {
    wm_venc_target target;
    wm_venc_options opt;
    const char *only_clip;   /* --clip */
    int verbose;
    mux_clip *clips;
    int nclips, cap;
    int taken;               /* clips written or being written */
    int64_t frames;
    wm_progress progress;
} mux_ctx;

static mux_clip *clip_find(mux_ctx *m, const char *id, size_t n)
{
    for (int i = m->nclips - 1; i >= 0; i--)
        if (strlen(m->clips[i].id) == n && memcmp(m->clips[i].id, id, n) == 0) return &m->clips[i];
    return NULL;
}

static int clip_selected(const mux_ctx *m, const mux_clip *c)
{
    return !m->only_clip || strcmp(m->only_clip, c->id) == 0;
}

/* A single-file name for a multi-clip stream is a usage error; the
 * message shows the per-clip name to use instead. */
static wm_status second_clip(mux_ctx *m, const mux_clip *c, const wm_msg *msg, wm_error *err)
{
    const char *name = m->target.name, *dot = strrchr(name, '.');
    int stem = (int)(dot - name);
    return wm_error_set(err, WM_E_USAGE,
                        "--output: '%s' takes one clip, but the stream has a second, '%s' (byte offset %llu); "
                        "use -o %.*s_%%03d%s for one file per clip, or --clip ID",
                        name, c->id, (unsigned long long)msg->offset, stem, name, dot);
}

static wm_status clip_add(mux_ctx *m, const char *id, size_t n, const wm_msg *msg, mux_clip **out, wm_error *err)
{
    if (m->nclips == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        mux_clip *nc = realloc(m->clips, (size_t)cap * sizeof *nc);
        if (!nc) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        m->clips = nc;
        m->cap = cap;
    }
    mux_clip *c = &m->clips[m->nclips];
    memset(c, 0, sizeof *c);
    if (!(c->id = strndup(id, n))) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    c->number = m->nclips++;
    *out = c;
    if (!clip_selected(m, c)) return WM_OK;
    if (!m->target.per_clip && m->taken++ == 1) return second_clip(m, c, msg, err);
    return wm_venc_target_path(&m->target, c->number, c->path, sizeof c->path, err);
}

static wm_status clip_finish(mux_ctx *m, mux_clip *c, wm_error *err)
{
    c->done = 1;
    if (!c->venc) return WM_OK;
    wm_status st = wm_venc_finish(c->venc, err);
    if (st == WM_OK && m->verbose)
        fprintf(stderr, "wm-mux: %s: %lld frames, %dx%d %s\n", c->path, (long long)wm_venc_frames(c->venc),
                c->width, c->height, wm_venc_pix_name(c->venc));
    wm_venc_free(&c->venc);
    return st;
}

static wm_status on_clip(mux_ctx *m, const wm_msg *msg, wm_error *err)
{
    const char *id;
    size_t n;
    wm_msg_str(msg, "id", &id, &n);
    mux_clip *c = clip_find(m, id, n);
    wm_status st;
    /* an id seen before is a new clip only after its end */
    if ((!c || c->done) && (st = clip_add(m, id, n, msg, &c, err)) != WM_OK) return st;
    const msgpack_object *fps = wm_msg_get(msg, "fps");
    if (fps && !c->venc && fps->via.array.ptr[0].via.u64 <= 1000000 && fps->via.array.ptr[1].via.u64 <= 1000000) {
        c->fps_num = (int)fps->via.array.ptr[0].via.u64;
        c->fps_den = (int)fps->via.array.ptr[1].via.u64;
    }
    return WM_OK;
}

static wm_status on_frame(mux_ctx *m, const wm_msg *msg, wm_error *err)
{
    wm_frame_view f;
    wm_status st = wm_proto_frame_get(msg, &f, err);
    if (st != WM_OK) return st;
    mux_clip *c = clip_find(m, f.clip, f.clip_len);
    if (!c && (st = clip_add(m, f.clip, f.clip_len, msg, &c, err)) != WM_OK) return st;   /* no clip message */
    if (!clip_selected(m, c)) return WM_OK;
    if (c->done)
        return wm_error_set(err, WM_E_INPUT, "clip '%s' frame %lld (byte offset %llu): after the end of its clip",
                            c->id, (long long)f.index, (unsigned long long)msg->offset);
    if (!c->venc) {
        c->width = f.width;
        c->height = f.height;
        c->format = f.format;
        if (!(c->venc = wm_venc_open(c->path, f.width, f.height, f.format, c->fps_num, c->fps_den, &m->opt, err))) {
            c->done = 1;
            return err->code;
        }
    } else if (f.width != c->width || f.height != c->height || f.format != c->format) {
        return wm_error_set(err, WM_E_INPUT, "clip '%s' frame %lld (byte offset %llu): %dx%d %s, but the clip's "
                            "first frame is %dx%d %s", c->id, (long long)f.index, (unsigned long long)msg->offset,
                            f.width, f.height, wm_pixfmt_name(f.format), c->width, c->height,
                            wm_pixfmt_name(c->format));
    }
    if ((st = wm_venc_write_frame(c->venc, f.data, f.pts, err)) != WM_OK) {
        wm_venc_free(&c->venc);   /* a broken file is not renamed into place */
        c->done = 1;
        return st;
    }
    m->frames++;
    wm_progress_update(&m->progress, "%lld frames", (long long)m->frames);
    return WM_OK;
}

static wm_status on_msg(void *ctx, const wm_msg *msg, wm_writer *out, wm_error *err)
{
    (void)out;
    mux_ctx *m = ctx;
    if (wm_msg_is(msg, "clip")) return on_clip(m, msg, err);
    if (wm_msg_is(msg, "frame")) return on_frame(m, msg, err);
    if (wm_msg_is(msg, "end")) {
        const char *id;
        size_t n;
        wm_msg_str(msg, "clip", &id, &n);
        mux_clip *c = clip_find(m, id, n);
        return c ? clip_finish(m, c, err) : WM_OK;
    }
    return WM_OK;   /* a sink: other kinds have nowhere to go */
}

/* Finishes every open file (also when the input broke off), then checks
 * that something was written at all. */
static wm_status on_finish(void *ctx, wm_writer *out, wm_error *err)
{
    (void)out;
    mux_ctx *m = ctx;
    wm_status first = WM_OK;
    wm_error e;
    for (int i = 0; i < m->nclips; i++) {
        wm_status st = clip_finish(m, &m->clips[i], &e);
        if (st != WM_OK && first == WM_OK) { first = st; *err = e; }
    }
    wm_progress_done(&m->progress);
    if (first != WM_OK) return first;
    if (m->frames == 0) {
        if (m->only_clip && m->taken == 0)
            return wm_error_set(err, WM_E_INPUT, "--clip: no clip '%s' in the stream", m->only_clip);
        return wm_error_set(err, WM_E_INPUT, "no frames in the stream: nothing written to %s", m->target.name);
    }
    return WM_OK;
}

int main(int argc, char **argv)
{
    static const char *const presets[] = { "ultrafast", "superfast", "veryfast", "faster", "fast", "medium",
                                           "slow", "slower", "veryslow", "placebo", NULL };
    static const char *const pix_fmts[] = { "yuv420p", "yuv444p", NULL };
    wm_common common = { 0 };
    wm_error err = { 0 };
    mux_ctx m = { 0 };
    const char *output = NULL;
    int crf = -1, preset = -1, pix = -1, first = 0;
    const wm_opt opts[] = {
        { "output", 'o', WM_OPT_STRING, &output, "FILE", "write the video to FILE (a %03d in it: one file per clip)", NULL, 0, 0 },
        { "clip", 0, WM_OPT_STRING, &m.only_clip, "ID", "write only the clip with this id", NULL, 0, 0 },
        { "crf", 0, WM_OPT_INT, &crf, "N", "H.264 quality, 0 (lossless) to 51 (default " STR(WM_VENC_DEFAULT_CRF) ")",
          NULL, 0, 51 },
        { "preset", 0, WM_OPT_CHOICE, &preset, "NAME", "x264 speed preset (default " WM_VENC_DEFAULT_PRESET ")",
          presets, 0, 0 },
        { "pix-fmt", 0, WM_OPT_CHOICE, &pix, "FMT", "H.264 pixel format (default yuv420p, and yuv444p for odd sizes, "
          "which yuv420p pads to even)",
          pix_fmts, 0, 0 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK && common.out)
        st = wm_error_set(&err, WM_E_USAGE, "--out: wm-mux writes no stream; name the video file with -o FILE");
    if (st == WM_OK && !output)
        st = wm_error_set(&err, WM_E_USAGE, "--output: missing; say where to write, e.g. -o out.mp4 (see --help)");
    if (st == WM_OK) st = wm_venc_target_parse(&m.target, output, &err);
    if (st == WM_OK && m.target.codec != WM_VENC_H264 && (crf >= 0 || preset >= 0 || pix >= 0))
        st = wm_error_set(&err, WM_E_USAGE, "--%s: only for H.264 (.mp4, .mov) output",
                          crf >= 0 ? "crf" : preset >= 0 ? "preset" : "pix-fmt");
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);

    av_log_set_level(common.verbose ? AV_LOG_WARNING : AV_LOG_QUIET);   /* libav* would print */
    m.opt.crf = crf;
    m.opt.preset = preset >= 0 ? presets[preset] : NULL;
    m.opt.pix = pix < 0 ? WM_VENC_PIX_AUTO : pix == 0 ? WM_VENC_PIX_YUV420P : WM_VENC_PIX_YUV444P;
    m.verbose = common.verbose;
    wm_progress_init(&m.progress, &tool, &common);

    wm_writer *out = wm_writer_open("-", &err);   /* the loop wants one; nothing goes to it */
    if (!out) return wm_cli_exit(&tool, err.code, &err);
    const char *const *specs = (const char *const *)argv + first;
    int nspecs = argc - first;
    if (nspecs == 0 && common.in) { specs = &common.in; nspecs = 1; }
    wm_stage stage = { &m, on_msg, on_finish };
    st = wm_loop_run(specs, nspecs, common.max_message, out, &stage, &err);
    wm_writer_free(&out);
    for (int i = 0; i < m.nclips; i++) {
        wm_venc_free(&m.clips[i].venc);
        free(m.clips[i].id);
    }
    free(m.clips);
    return wm_cli_exit(&tool, st, &err);
}
