#include "wm_venc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

/* ---- output names ---- */

typedef struct venc_ext {
    const char *ext;
    wm_venc_codec codec;
    const char *muxer;
} venc_ext;

static const venc_ext venc_exts[] = {
    { "mp4", WM_VENC_H264, "mp4" },
    { "mov", WM_VENC_H264, "mov" },
    { "mkv", WM_VENC_FFV1, "matroska" },
    { "png", WM_VENC_PNG, "image2" },
    { "gif", WM_VENC_GIF, "gif" },
};

static const venc_ext *ext_lookup(const char *name, wm_error *err)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot)
        for (size_t i = 0; i < sizeof venc_exts / sizeof venc_exts[0]; i++)
            if (strcasecmp(dot + 1, venc_exts[i].ext) == 0) return &venc_exts[i];
    wm_error_set(err, WM_E_USAGE, "--output: '%s' has %s%s; use .mp4 or .mov (H.264), .mkv (FFV1), "
                 ".png (PNG sequence) or .gif", name, dot ? "an unknown extension " : "no extension",
                 dot ? dot : "");
    return NULL;
}

/* A printf-style number (%d, %03d) in a name: name[start..end). */
typedef struct name_number { size_t start, end; } name_number;

static wm_status name_numbers(const char *name, name_number nums[2], int *count, wm_error *err)
{
    int n = 0;
    for (size_t i = 0; name[i]; i++) {
        if (name[i] != '%') continue;
        if (name[i + 1] == '%') { i++; continue; }
        size_t j = i + 1;
        while (name[j] >= '0' && name[j] <= '9') j++;
        if (name[j] != 'd' || j - i - 1 > 2)
            return wm_error_set(err, WM_E_USAGE, "--output: '%s': after %% only d, 0Nd (e.g. %%03d) "
                                "or %% may follow", name);
        if (n == 2)
            return wm_error_set(err, WM_E_USAGE, "--output: '%s' has more than two numbers", name);
        nums[n].start = i;
        nums[n].end = j + 1;
        n++;
        i = j;
    }
    *count = n;
    return WM_OK;
}

wm_status wm_venc_target_parse(wm_venc_target *t, const char *name, wm_error *err)
{
    memset(t, 0, sizeof *t);
    if (!name || !*name) return wm_error_set(err, WM_E_USAGE, "--output: a file name is required");
    if (strlen(name) >= sizeof t->name - 64)
        return wm_error_set(err, WM_E_USAGE, "--output: the name is too long");
    const venc_ext *x = ext_lookup(name, err);
    if (!x) return WM_E_USAGE;
    name_number nums[2];
    int n = 0;
    wm_status st = name_numbers(name, nums, &n, err);
    if (st != WM_OK) return st;
    if (x->codec == WM_VENC_PNG) {
        if (n == 0)
            return wm_error_set(err, WM_E_USAGE, "--output: '%s': a PNG sequence needs a frame number in "
                                "its name, e.g. frames_%%04d.png", name);
        t->per_clip = n == 2;
    } else {
        if (n == 2)
            return wm_error_set(err, WM_E_USAGE, "--output: '%s': one number at most (the clip's, "
                                "e.g. out_%%03d%s)", name, strrchr(name, '.'));
        t->per_clip = n == 1;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->codec = x->codec;
    return WM_OK;
}

wm_status wm_venc_target_path(const wm_venc_target *t, int clip_number, char *out, size_t cap,
                              wm_error *err)
{
    name_number nums[2];
    int n = 0;
    wm_status st = name_numbers(t->name, nums, &n, err);
    if (st != WM_OK) return st;
    /* image2 reads the frame number and %% itself; other names are final */
    int keep_escapes = t->codec == WM_VENC_PNG;
    size_t o = 0;
    for (size_t i = 0; t->name[i]; ) {
        char piece[64];
        size_t len;
        if (t->per_clip && n > 0 && i == nums[0].start) {
            char spec[8];
            memcpy(spec, t->name + i, nums[0].end - i);
            spec[nums[0].end - i] = '\0';
            /* spec is a checked "%[0-9]{0,2}d" */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            snprintf(piece, sizeof piece, spec, clip_number);
#pragma GCC diagnostic pop
            len = strlen(piece);
            i = nums[0].end;
        } else if (t->name[i] == '%' && t->name[i + 1] == '%' && !keep_escapes) {
            piece[0] = '%';
            len = 1;
            i += 2;
        } else {
            piece[0] = t->name[i++];
            len = 1;
        }
        if (o + len + 1 > cap) return wm_error_set(err, WM_E_USAGE, "--output: the name is too long");
        memcpy(out + o, piece, len);
        o += len;
    }
    out[o] = '\0';
    return WM_OK;
}

/* ---- GIF palettes ---- */

/* Colours are counted in 5-5-5 bins; a palette is the mean colour of each
 * median-cut box, and every bin maps to the palette entry nearest its mean.
 * A frame of at most 256 distinct colours gets them exactly. */
enum { GIF_BINS = 1 << 15, GIF_HASH = 1024 };

typedef struct gif_box { int lo, hi; uint64_t pixels; int axis, range; } gif_box;

typedef struct gif_quant {
    uint32_t count[GIF_BINS];
    uint64_t sum[GIF_BINS][3];
    uint16_t bins[GIF_BINS], tmp[GIF_BINS];
    uint8_t map[GIF_BINS];
    uint32_t hash_key[GIF_HASH];   /* colour + 1, 0 = empty */
    uint8_t hash_val[GIF_HASH];
    gif_box boxes[256];
} gif_quant;

static int bin_of(const uint8_t *p) { return (p[0] >> 3) << 10 | (p[1] >> 3) << 5 | (p[2] >> 3); }
static int bin_axis(int bin, int axis) { return (bin >> (10 - 5 * axis)) & 31; }

/* Fills palette with at most 256 exact colours and indexes the pixels;
 * 0 when the frame has more. */
static int gif_exact(gif_quant *q, const uint8_t *rgb, size_t n, uint32_t *palette, uint8_t *out,
                     int out_stride, int width)
{
    int used = 0;
    memset(q->hash_key, 0, sizeof q->hash_key);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        uint32_t c = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        uint32_t h = (c * 2654435761u) >> 22;
        while (q->hash_key[h] && q->hash_key[h] != c + 1) h = (h + 1) & (GIF_HASH - 1);
        if (!q->hash_key[h]) {
            if (used == 256) return 0;
            q->hash_key[h] = c + 1;
            q->hash_val[h] = (uint8_t)used;
            palette[used++] = 0xff000000u | c;
        }
        out[(i / (size_t)width) * (size_t)out_stride + i % (size_t)width] = q->hash_val[h];
    }
    for (int i = used; i < 256; i++) palette[i] = palette[0];
    return 1;
}

static void gif_box_measure(gif_quant *q, gif_box *b)
{
    int lo[3] = { 31, 31, 31 }, hi[3] = { 0, 0, 0 };
    b->pixels = 0;
    for (int i = b->lo; i < b->hi; i++) {
        int bin = q->bins[i];
        b->pixels += q->count[bin];
        for (int a = 0; a < 3; a++) {
            int v = bin_axis(bin, a);
            if (v < lo[a]) lo[a] = v;
            if (v > hi[a]) hi[a] = v;
        }
    }
    b->axis = 0;
    b->range = -1;
    for (int a = 0; a < 3; a++)
        if (hi[a] - lo[a] > b->range) { b->range = hi[a] - lo[a]; b->axis = a; }
}

/* Sorts the box's bins along its longest axis (a counting sort) and splits
 * it where half of its pixels lie on each side. */
static void gif_box_split(gif_quant *q, gif_box *b, gif_box *nb)
{
    int start[33] = { 0 };
    for (int i = b->lo; i < b->hi; i++) start[bin_axis(q->bins[i], b->axis) + 1]++;
    for (int v = 0; v < 32; v++) start[v + 1] += start[v];
    for (int i = b->lo; i < b->hi; i++) q->tmp[start[bin_axis(q->bins[i], b->axis)]++] = q->bins[i];
    memcpy(q->bins + b->lo, q->tmp, (size_t)(b->hi - b->lo) * sizeof q->bins[0]);
    uint64_t acc = 0;
    int s = b->lo + 1;
    for (int i = b->lo; i < b->hi - 1; i++) {
        acc += q->count[q->bins[i]];
        s = i + 1;
        if (acc * 2 >= b->pixels) break;
    }
    /* never split inside one axis value: the boxes would overlap */
    while (s < b->hi && s > b->lo + 1 &&
           bin_axis(q->bins[s], b->axis) == bin_axis(q->bins[s - 1], b->axis)) s--;
    if (bin_axis(q->bins[s], b->axis) == bin_axis(q->bins[s - 1], b->axis))
        while (s < b->hi && bin_axis(q->bins[s], b->axis) == bin_axis(q->bins[s - 1], b->axis)) s++;
    nb->lo = s;
    nb->hi = b->hi;
    b->hi = s;
    gif_box_measure(q, b);
    gif_box_measure(q, nb);
}

static void gif_quantize(gif_quant *q, const uint8_t *rgb, int width, int height, uint32_t *palette,
                         uint8_t *out, int out_stride)
{
    size_t n = (size_t)width * (size_t)height;
    if (gif_exact(q, rgb, n, palette, out, out_stride, width)) return;
    memset(q->count, 0, sizeof q->count);
    memset(q->sum, 0, sizeof q->sum);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        int bin = bin_of(p);
        q->count[bin]++;
        for (int a = 0; a < 3; a++) q->sum[bin][a] += p[a];
    }
    int nbins = 0;
    for (int bin = 0; bin < GIF_BINS; bin++)
        if (q->count[bin]) q->bins[nbins++] = (uint16_t)bin;
    int nboxes = 1;
    q->boxes[0].lo = 0;
    q->boxes[0].hi = nbins;
    gif_box_measure(q, &q->boxes[0]);
    while (nboxes < 256) {
        int best = -1;
        uint64_t best_score = 0;
        for (int i = 0; i < nboxes; i++) {
            uint64_t score = (uint64_t)q->boxes[i].range * q->boxes[i].pixels;
            if (q->boxes[i].hi - q->boxes[i].lo >= 2 && q->boxes[i].range > 0 && score > best_score) {
                best = i;
                best_score = score;
            }
        }
        if (best < 0) break;
        gif_box_split(q, &q->boxes[best], &q->boxes[nboxes++]);
    }
    int pal[256][3];
    for (int i = 0; i < nboxes; i++) {
        uint64_t s[3] = { 0, 0, 0 };
        for (int j = q->boxes[i].lo; j < q->boxes[i].hi; j++)
            for (int a = 0; a < 3; a++) s[a] += q->sum[q->bins[j]][a];
        for (int a = 0; a < 3; a++) pal[i][a] = (int)((s[a] + q->boxes[i].pixels / 2) / q->boxes[i].pixels);
        palette[i] = 0xff000000u | (uint32_t)pal[i][0] << 16 | (uint32_t)pal[i][1] << 8 | (uint32_t)pal[i][2];
    }
    for (int i = nboxes; i < 256; i++) palette[i] = palette[0];
    for (int j = 0; j < nbins; j++) {
        int bin = q->bins[j], best = 0;
        long best_d = LONG_MAX;
        double c = q->count[bin];
        int m[3];
        for (int a = 0; a < 3; a++) m[a] = (int)lround((double)q->sum[bin][a] / c);
        for (int i = 0; i < nboxes; i++) {
            long d = 0;
            for (int a = 0; a < 3; a++) d += (long)(m[a] - pal[i][a]) * (m[a] - pal[i][a]);
            if (d < best_d) { best_d = d; best = i; }
        }
        q->map[bin] = (uint8_t)best;
    }
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            out[(size_t)y * (size_t)out_stride + (size_t)x] = q->map[bin_of(rgb + 3 * ((size_t)y * (size_t)width + (size_t)x))];
}

/* ---- the encoder ---- */

struct wm_venc {
    wm_venc_codec codec;
    char path[4096];          /* final name (PNG: the image2 pattern) */
    char tmp[4096 + 32];      /* single file written under this name first */
    int single_file;
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;   /* rgb24/gray8 to the codec's format, when they differ */
    gif_quant *quant;
    int width, height, channels;
    wm_pixfmt pixfmt;
    uint8_t *padded;          /* the input with its last column/row repeated to even sides */
    int64_t last_pts, step, duration;   /* encoder ticks */
    int64_t frames;
    int finished;
    int file_done;            /* the final name holds the complete file */
};

static wm_status av_fail(wm_error *err, wm_status code, const wm_venc *e, const char *what, int averr)
{
    char why[AV_ERROR_MAX_STRING_SIZE] = "";
    av_strerror(averr, why, sizeof why);
    return wm_error_set(err, code, "%s: %s: %s", e->path, what, why);
}

/* 1/lcm(N, 1000) for a rate N/D: both the 1/fps grid and whole
 * milliseconds are whole ticks.  1/1000 without a rate. */
static AVRational pick_time_base(wm_venc_codec codec, int fps_num, int fps_den)
{
    if (codec == WM_VENC_GIF) return (AVRational){ 1, 100 };
    if (fps_num > 0 && fps_den > 0) {
        int64_t lcm = (int64_t)fps_num / av_gcd(fps_num, 1000) * 1000;
        if (lcm <= INT_MAX) return (AVRational){ 1, (int)lcm };
    }
    return (AVRational){ 1, 1000 };
}

static enum AVPixelFormat choose_pix_fmt(wm_venc_codec codec, wm_pixfmt in, int width, int height,
                                         const wm_venc_options *opt)
{
    switch (codec) {
    case WM_VENC_H264:
        if (opt->pix == WM_VENC_PIX_YUV444P) return AV_PIX_FMT_YUV444P;
        if (opt->pix == WM_VENC_PIX_YUV420P) return AV_PIX_FMT_YUV420P;
        return (width % 2 || height % 2) ? AV_PIX_FMT_YUV444P : AV_PIX_FMT_YUV420P;
    case WM_VENC_FFV1: return in == WM_PIX_GRAY8 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_BGR0;
    case WM_VENC_PNG: return in == WM_PIX_GRAY8 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
    case WM_VENC_GIF: return in == WM_PIX_GRAY8 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_PAL8;
    }
    return AV_PIX_FMT_NONE;
}

static wm_status configure_codec(wm_venc *e, const wm_venc_options *opt, AVRational fps, wm_error *err)
{
    AVCodecContext *c = e->enc;
    char crf[16];
    switch (e->codec) {
    case WM_VENC_H264:
        snprintf(crf, sizeof crf, "%d", opt->crf >= 0 ? opt->crf : WM_VENC_DEFAULT_CRF);
        if (av_opt_set(c->priv_data, "crf", crf, 0) < 0 ||
            av_opt_set(c->priv_data, "preset", opt->preset ? opt->preset : WM_VENC_DEFAULT_PRESET, 0) < 0)
            return wm_error_set(err, WM_E_SYSTEM, "%s: libx264 refused crf %s / preset %s", e->path, crf,
                                opt->preset ? opt->preset : WM_VENC_DEFAULT_PRESET);
        /* swscale converts with BT.601 limited-range coefficients: say so */
        c->colorspace = AVCOL_SPC_SMPTE170M;
        c->color_range = AVCOL_RANGE_MPEG;
        break;
    case WM_VENC_FFV1:
        av_opt_set(c->priv_data, "slicecrc", "1", 0);
        c->level = 3;   /* slices, so frame threads have work */
        break;
    case WM_VENC_PNG:
    case WM_VENC_GIF:
        break;
    }
    if (fps.num > 0 && fps.den > 0) c->framerate = fps;
    c->sample_aspect_ratio = (AVRational){ 1, 1 };
    c->thread_count = 0;
    return WM_OK;
}

/* Opens the converter from the stream's pixels to the codec's, if needed. */
static wm_status open_converter(wm_venc *e, wm_error *err)
{
    enum AVPixelFormat in = e->pixfmt == WM_PIX_GRAY8 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
    enum AVPixelFormat out = e->enc->pix_fmt;
    if (out == in || out == AV_PIX_FMT_PAL8) return WM_OK;
    int w = e->enc->width, h = e->enc->height;
    if (w != e->width || h != e->height) {
        e->padded = malloc((size_t)w * (size_t)h * (size_t)e->channels);
        if (!e->padded) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    }
    /* same size on both sides: only colour conversion; 4:2:0 chroma is the
     * area average of full-resolution chroma (best PSNR of the flags tried) */
    e->sws = sws_getContext(w, h, in, w, h, out, SWS_AREA | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP,
                            NULL, NULL, NULL);
    if (!e->sws) return wm_error_set(err, WM_E_SYSTEM, "%s: no swscale conversion to %s", e->path,
                                     av_get_pix_fmt_name(out));
    return WM_OK;
}

static void dir_of(const char *path, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else snprintf(dir, cap, ".");
}

static wm_status cannot_write(const wm_venc *e, const char *why, wm_error *err)
{
    char dir[4096];
    dir_of(e->path, dir, sizeof dir);
    return wm_error_set(err, WM_E_OUTPUT, "%s: cannot write in directory %s: %s", e->path, dir, why);
}

static wm_status open_output(wm_venc *e, const venc_ext *x, wm_error *err)
{
    char url[4096 + 48];
    int r;
    if (!e->single_file) {
        /* image2 opens its first file only with the first frame; say now
         * that it cannot, rather than "I/O error" then */
        char dir[4096];
        dir_of(e->path, dir, sizeof dir);
        if (access(dir, W_OK | X_OK) != 0) return cannot_write(e, strerror(errno), err);
    }
    /* "file:" keeps a ':' in the name from selecting a protocol */
    snprintf(url, sizeof url, "file:%s", e->single_file ? e->tmp : e->path);
    if ((r = avformat_alloc_output_context2(&e->fmt, NULL, x->muxer, url)) < 0 || !e->fmt)
        return av_fail(err, WM_E_SYSTEM, e, "no muxer", r);
    if (!(e->st = avformat_new_stream(e->fmt, NULL)))
        return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if ((r = avcodec_parameters_from_context(e->st->codecpar, e->enc)) < 0)
        return av_fail(err, WM_E_SYSTEM, e, "stream parameters", r);
    e->st->time_base = e->enc->time_base;
    e->st->avg_frame_rate = e->enc->framerate;
    e->st->r_frame_rate = e->enc->framerate;
    if (e->single_file && (r = avio_open(&e->fmt->pb, url, AVIO_FLAG_WRITE)) < 0) {
        char why[AV_ERROR_MAX_STRING_SIZE] = "";
        av_strerror(r, why, sizeof why);
        return cannot_write(e, why, err);
    }
    AVDictionary *mo = NULL;
    if (e->codec == WM_VENC_PNG) {
        av_dict_set(&mo, "atomic_writing", "1", 0);
        av_dict_set(&mo, "start_number", "0", 0);
    }
    r = avformat_write_header(e->fmt, &mo);
    av_dict_free(&mo);
    if (r < 0) return av_fail(err, WM_E_OUTPUT, e, "cannot write the header", r);
    /* a bump must move the pts by one tick of the container too */
    e->step = av_rescale_q_rnd(1, e->st->time_base, e->enc->time_base, AV_ROUND_UP);
    if (e->step < 1) e->step = 1;
    return WM_OK;
}

wm_venc *wm_venc_open(const char *path, int width, int height, wm_pixfmt pixfmt,
                      int fps_num, int fps_den, const wm_venc_options *opt, wm_error *err)
{
    static const wm_venc_options defaults = { -1, NULL, WM_VENC_PIX_AUTO };
    if (!opt) opt = &defaults;
    if (width < 1 || height < 1 || width > WM_MAX_DIM || height > WM_MAX_DIM) {
        wm_error_set(err, WM_E_USAGE, "%s: bad frame size %dx%d", path, width, height);
        return NULL;
    }
    const venc_ext *x = ext_lookup(path, err);
    if (!x) return NULL;
    if (strlen(path) >= sizeof ((wm_venc *)0)->path) {
        wm_error_set(err, WM_E_USAGE, "--output: the name is too long");
        return NULL;
    }
    wm_venc *e = calloc(1, sizeof *e);
    if (!e) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    e->codec = x->codec;
    e->width = width;
    e->height = height;
    e->pixfmt = pixfmt;
    e->channels = wm_pixfmt_channels(pixfmt);
    e->single_file = e->codec != WM_VENC_PNG;
    snprintf(e->path, sizeof e->path, "%s", path);
    snprintf(e->tmp, sizeof e->tmp, "%s.tmp.%ld", path, (long)getpid());

    static const enum AVCodecID ids[] = { AV_CODEC_ID_H264, AV_CODEC_ID_FFV1, AV_CODEC_ID_PNG, AV_CODEC_ID_GIF };
    const AVCodec *codec = e->codec == WM_VENC_H264 ? avcodec_find_encoder_by_name("libx264")
                                                    : avcodec_find_encoder(ids[e->codec]);
    wm_status st = WM_OK;
    AVRational fps = { fps_num > 0 && fps_den > 0 ? fps_num : 0, fps_num > 0 && fps_den > 0 ? fps_den : 1 };
    int r;
    if (!codec) {
        st = wm_error_set(err, WM_E_SYSTEM, "%s: this FFmpeg has no %s encoder", path,
                          e->codec == WM_VENC_H264 ? "libx264" : avcodec_get_name(ids[e->codec]));
        goto fail;
    }
    if (!(e->enc = avcodec_alloc_context3(codec)) || !(e->frame = av_frame_alloc()) ||
        !(e->pkt = av_packet_alloc())) {
        st = wm_error_set(err, WM_E_SYSTEM, "out of memory");
        goto fail;
    }
    e->enc->pix_fmt = choose_pix_fmt(e->codec, pixfmt, width, height, opt);
    e->enc->width = width;
    e->enc->height = height;
    if (e->enc->pix_fmt == AV_PIX_FMT_YUV420P) {
        e->enc->width += width % 2;
        e->enc->height += height % 2;
    }
    e->enc->time_base = pick_time_base(e->codec, fps_num, fps_den);
    /* one frame at the clip's rate; 40 ms without one */
    e->duration = fps.num ? av_rescale_q(1, av_inv_q(fps), e->enc->time_base)
                          : av_rescale_q(40, (AVRational){ 1, 1000 }, e->enc->time_base);
    if (e->duration < 1) e->duration = 1;
    if ((st = configure_codec(e, opt, fps, err)) != WM_OK) goto fail;
    {
        const AVOutputFormat *of = av_guess_format(x->muxer, NULL, NULL);
        if (of && (of->flags & AVFMT_GLOBALHEADER)) e->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    }
    if ((r = avcodec_open2(e->enc, codec, NULL)) < 0) {
        st = av_fail(err, WM_E_SYSTEM, e, "cannot open the encoder", r);
        goto fail;
    }
    e->frame->format = e->enc->pix_fmt;
    e->frame->width = e->enc->width;
    e->frame->height = e->enc->height;
    if ((r = av_frame_get_buffer(e->frame, 0)) < 0) {
        st = av_fail(err, WM_E_SYSTEM, e, "frame buffer", r);
        goto fail;
    }
    if (e->enc->pix_fmt == AV_PIX_FMT_PAL8 && !(e->quant = malloc(sizeof *e->quant))) {
        st = wm_error_set(err, WM_E_SYSTEM, "out of memory");
        goto fail;
    }
    if ((st = open_converter(e, err)) != WM_OK || (st = open_output(e, x, err)) != WM_OK) goto fail;
    return e;
fail:
    (void)st;
    wm_venc_free(&e);
    return NULL;
}

/* Copies the input with its last column and row repeated up to the coded size. */
static const uint8_t *pad_input(wm_venc *e, const uint8_t *pixels)
{
    size_t ch = (size_t)e->channels, in_row = (size_t)e->width * ch;
    size_t out_row = (size_t)e->enc->width * ch;
    for (int y = 0; y < e->enc->height; y++) {
        const uint8_t *src = pixels + (size_t)(y < e->height ? y : e->height - 1) * in_row;
        uint8_t *dst = e->padded + (size_t)y * out_row;
        memcpy(dst, src, in_row);
        for (size_t x = in_row; x < out_row; x += ch) memcpy(dst + x, src + in_row - ch, ch);
    }
    return e->padded;
}

static wm_status drain(wm_venc *e, wm_error *err)
{
    for (;;) {
        int r = avcodec_receive_packet(e->enc, e->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return WM_OK;
        if (r < 0) return av_fail(err, WM_E_SYSTEM, e, "encoding failed", r);
        if (e->pkt->duration <= 0) e->pkt->duration = e->duration;
        av_packet_rescale_ts(e->pkt, e->enc->time_base, e->st->time_base);
        e->pkt->stream_index = e->st->index;
        r = av_interleaved_write_frame(e->fmt, e->pkt);
        if (r < 0) return av_fail(err, WM_E_OUTPUT, e, "write failed", r);
    }
}

wm_status wm_venc_write_frame(wm_venc *e, const uint8_t *pixels, double pts, wm_error *err)
{
    if (e->finished) return wm_error_set(err, WM_E_SYSTEM, "%s: write after finish", e->path);
    int r = av_frame_make_writable(e->frame);
    if (r < 0) return av_fail(err, WM_E_SYSTEM, e, "frame buffer", r);
    AVFrame *f = e->frame;
    int in_stride = e->width * e->channels;
    if (e->sws) {
        const uint8_t *src = e->padded ? pad_input(e, pixels) : pixels;
        int stride = e->enc->width * e->channels;
        sws_scale(e->sws, &src, &stride, 0, e->enc->height, f->data, f->linesize);
    } else if (f->format == AV_PIX_FMT_PAL8) {
        gif_quantize(e->quant, pixels, e->width, e->height, (uint32_t *)f->data[1], f->data[0], f->linesize[0]);
    } else {
        av_image_copy_plane(f->data[0], f->linesize[0], pixels, in_stride, in_stride, e->height);
    }
    AVRational tb = e->enc->time_base;
    int64_t p = isfinite(pts) ? llrint(pts * tb.den / tb.num) : e->last_pts + e->duration;
    if (e->frames > 0 && p < e->last_pts + e->step) p = e->last_pts + e->step;
    if (e->frames > 0 && !e->enc->framerate.num)
        e->duration = p - e->last_pts;   /* no frame rate: the last gap is the best guess */
    f->pts = p;
    e->last_pts = p;
    if ((r = avcodec_send_frame(e->enc, f)) < 0) return av_fail(err, WM_E_SYSTEM, e, "encoding failed", r);
    e->frames++;
    return drain(e, err);
}

wm_status wm_venc_finish(wm_venc *e, wm_error *err)
{
    if (e->finished) return wm_error_set(err, WM_E_SYSTEM, "%s: finished twice", e->path);
    e->finished = 1;
    int r = avcodec_send_frame(e->enc, NULL);
    if (r < 0) return av_fail(err, WM_E_SYSTEM, e, "flushing the encoder", r);
    wm_status st = drain(e, err);
    if (st != WM_OK) return st;
    if ((r = av_write_trailer(e->fmt)) < 0) return av_fail(err, WM_E_OUTPUT, e, "write failed", r);
    if (!e->single_file) { e->file_done = 1; return WM_OK; }
    if ((r = avio_closep(&e->fmt->pb)) < 0) return av_fail(err, WM_E_OUTPUT, e, "write failed", r);
    if (rename(e->tmp, e->path) != 0)
        return wm_error_set(err, WM_E_OUTPUT, "%s: cannot rename %s to it: %s", e->path, e->tmp, strerror(errno));
    e->file_done = 1;
    return WM_OK;
}

int64_t wm_venc_frames(const wm_venc *e) { return e->frames; }

const char *wm_venc_pix_name(const wm_venc *e) { return av_get_pix_fmt_name(e->enc->pix_fmt); }

void wm_venc_free(wm_venc **ep)
{
    wm_venc *e = *ep;
    if (!e) return;
    if (e->fmt) {
        if (e->single_file && e->fmt->pb) avio_closep(&e->fmt->pb);
        avformat_free_context(e->fmt);
    }
    if (e->single_file && !e->file_done) unlink(e->tmp);
    avcodec_free_context(&e->enc);
    av_frame_free(&e->frame);
    av_packet_free(&e->pkt);
    sws_freeContext(e->sws);
    free(e->quant);
    free(e->padded);
    free(e);
    *ep = NULL;
}

/* ---- one picture as a PNG in memory ---- */

wm_status wm_venc_png_memory(const uint8_t *rgb, int width, int height, uint8_t **out, size_t *len,
                             wm_error *err)
{
    *out = NULL;
    *len = 0;
    if (width < 1 || height < 1 || width > WM_MAX_DIM || height > WM_MAX_DIM)
        return wm_error_set(err, WM_E_USAGE, "png: bad size %dx%d", width, height);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    if (!codec) return wm_error_set(err, WM_E_SYSTEM, "png: FFmpeg has no PNG encoder");
    AVCodecContext *cx = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    wm_status st = WM_OK;
    int r;
    if (!cx || !f || !pkt) { st = wm_error_set(err, WM_E_SYSTEM, "png: out of memory"); goto done; }
    cx->width = width;
    cx->height = height;
    cx->pix_fmt = AV_PIX_FMT_RGB24;
    cx->time_base = (AVRational){ 1, 1 };
    if ((r = avcodec_open2(cx, codec, NULL)) < 0) {
        st = wm_error_set(err, WM_E_SYSTEM, "png: cannot open the encoder (%s)", av_err2str(r));
        goto done;
    }
    f->format = AV_PIX_FMT_RGB24;
    f->width = width;
    f->height = height;
    if (av_frame_get_buffer(f, 0) < 0) { st = wm_error_set(err, WM_E_SYSTEM, "png: out of memory"); goto done; }
    for (int y = 0; y < height; y++)
        memcpy(f->data[0] + (size_t)y * f->linesize[0], rgb + (size_t)y * width * 3, (size_t)width * 3);
    if ((r = avcodec_send_frame(cx, f)) < 0 || (r = avcodec_send_frame(cx, NULL)) < 0 ||
        (r = avcodec_receive_packet(cx, pkt)) < 0) {
        st = wm_error_set(err, WM_E_SYSTEM, "png: encoding failed (%s)", av_err2str(r));
        goto done;
    }
    if (!(*out = malloc((size_t)pkt->size))) { st = wm_error_set(err, WM_E_SYSTEM, "png: out of memory"); goto done; }
    memcpy(*out, pkt->data, (size_t)pkt->size);
    *len = (size_t)pkt->size;
done:
    av_packet_free(&pkt);
    av_frame_free(&f);
    avcodec_free_context(&cx);
    return st;
}
