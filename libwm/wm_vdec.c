#include "wm_vdec.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/cpu.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "wm_signal.h"

const char *const wm_vdec_fit_names[] = { "crop", "pad", "stretch", NULL };
const char *const wm_vdec_scaler_names[] = {
    "fast_bilinear", "bilinear", "bicubic", "experimental", "neighbor", "area",
    "bicublin", "gauss", "sinc", "lanczos", "spline", NULL };
static const int wm_vdec_scaler_flags[] = {
    SWS_FAST_BILINEAR, SWS_BILINEAR, SWS_BICUBIC, SWS_X, SWS_POINT, SWS_AREA,
    SWS_BICUBLIN, SWS_GAUSS, SWS_SINC, SWS_LANCZOS, SWS_SPLINE };

/* Start and end positions tolerate this much float error (seconds). */
#define WM_VDEC_EPS 1e-6

struct wm_vdec {
    char *path;                  /* as given, for messages */
    wm_vdec_opts opts;
    wm_vdec_info info;
    int channels;

    AVFormatContext *fmt;
    AVStream *st;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;              /* newest decoded frame; its pts is made relative */
    AVFrame *held;               /* --fps: the frame filling the current slot */
    AVFrame *cropped;            /* --fit crop: a reference with the crop applied */
    int draining;                /* the NULL packet has been sent */
    int finished;                /* the clip is complete: only WM_EOF from now on */
    wm_error damage;             /* first read or decode error, reported after the drain */
    int64_t decoded, emitted;

    /* timestamps, in stream time base units relative to the stream start */
    int64_t start_ts;            /* the stream's start time (absolute) */
    int64_t skip_before;         /* --start */
    int64_t seek_back;           /* how far before --start the last seek aimed; -1: no check due */
    int64_t default_dur;         /* one frame at the stream's average rate, or 0 */
    int64_t last_ts, last_dur;   /* the newest decoded frame */
    int have_last;
    int have_first;              /* first_t: the clip's first frame, in seconds */
    double first_t;

    /* --fps resampling (FFmpeg's fps filter): slot k takes the newest frame
     * whose rounded position is <= k; positions are relative to the first */
    AVRational out_tb;           /* 1 / fps */
    AVRational sar;              /* the source's sample aspect ratio (1:1 when unknown) */
    int64_t first_pos, slot, pending_pos, eof_pos;
    int have_held, held_converted, have_pending, at_eof;

    /* scaling plan for the current source size and format */
    struct SwsContext *sws;
    int plan_w, plan_h, plan_fmt;
    int cs_space, cs_range;      /* colorspace details last given to sws */
    int crop_x, crop_y, crop_w, crop_h;   /* source rectangle */
    int fit_w, fit_h, off_x, off_y;       /* its place on the canvas */
    int canvas_w, canvas_h;               /* output size before rotation */
    int direct;                  /* sws writes the output buffer itself */
    int dst_fmt;
    AVBufferRef *scratch_buf;    /* sws output when not direct */
    uint8_t *scratch;
    int scratch_stride;
    AVBufferRef *out_buf;        /* the output frame, width*height*channels */
    uint8_t *out;
    AVFrame *dst;                /* sws_scale_frame's view of out or scratch */
    size_t out_size;
};

void wm_vdec_opts_init(wm_vdec_opts *o)
{
    memset(o, 0, sizeof *o);
    o->fit = WM_VDEC_FIT_CROP;
    o->format = WM_PIX_RGB24;
    o->scaler = WM_VDEC_SCALER_DEFAULT;
}

const wm_vdec_info *wm_vdec_get_info(const wm_vdec *d) { return &d->info; }

int64_t wm_vdec_count(const wm_vdec *d) { return d->emitted; }

static int vdec_interrupted(void *opaque) { (void)opaque; return wm_signal_pending(); }

static wm_status vdec_av_error(wm_vdec *d, int ret, const char *what, wm_error *err)
{
    if (ret == AVERROR_EXIT && wm_signal_pending())
        return wm_error_set(err, WM_E_INTERRUPTED, "%s: interrupted", d->path);
    if (ret == AVERROR(ENOMEM))
        return wm_error_set(err, WM_E_SYSTEM, "%s: out of memory", d->path);
    return wm_error_set(err, WM_E_INPUT, "%s: %s: %s", d->path, what, av_err2str(ret));
}

/* Clockwise degrees the picture must turn to be upright, as the ffmpeg
 * CLI's autorotate computes them from the display matrix. */
static int vdec_stream_rotation(const AVStream *st)
{
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)   /* FFmpeg 6.1 moved it */
    const AVPacketSideData *psd = av_packet_side_data_get(st->codecpar->coded_side_data,
                                                          st->codecpar->nb_coded_side_data,
                                                          AV_PKT_DATA_DISPLAYMATRIX);
    const uint8_t *sd = psd ? psd->data : NULL;
    size_t size = psd ? psd->size : 0;
#else
    size_t size = 0;
    const uint8_t *sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
#endif
    if (!sd || size < 9 * sizeof(int32_t)) return 0;
    double theta = -round(av_display_rotation_get((const int32_t *)sd));
    theta -= 360 * floor(theta / 360 + 0.9 / 360);
    if (fabs(theta - 90) < 1.0) return 90;
    if (fabs(theta - 180) < 1.0) return 180;
    if (fabs(theta - 270) < 1.0) return 270;
    return 0;
}

static int64_t vdec_frame_duration(const AVFrame *f)
{
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
    return f->duration;
#else
    return f->pkt_duration;
#endif
}

static wm_status vdec_open_input(wm_vdec *d, wm_error *err)
{
    char *url = NULL;
    if (strcmp(d->path, "-") != 0) {
        struct stat sb;
        if (stat(d->path, &sb) != 0)
            return wm_error_set(err, WM_E_INPUT, "%s: cannot open: %s", d->path, strerror(errno));
        if (S_ISDIR(sb.st_mode))
            return wm_error_set(err, WM_E_INPUT, "%s: is a directory", d->path);
        if (S_ISREG(sb.st_mode) && sb.st_size == 0)
            return wm_error_set(err, WM_E_INPUT, "%s: empty file", d->path);
        /* "file:" so a path with a colon is not taken for a protocol */
        url = av_asprintf("file:%s", d->path);
        if (!url) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    }
    d->fmt = avformat_alloc_context();
    if (!d->fmt) { av_free(url); return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }
    d->fmt->interrupt_callback.callback = vdec_interrupted;
    int ret = avformat_open_input(&d->fmt, url ? url : "pipe:0", NULL, NULL);
    av_free(url);
    if (ret < 0) return vdec_av_error(d, ret, "cannot open", err);
    if ((ret = avformat_find_stream_info(d->fmt, NULL)) < 0)
        return vdec_av_error(d, ret, "cannot read the stream parameters", err);

    ret = av_find_best_stream(d->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (ret < 0 || (d->fmt->streams[ret]->disposition & AV_DISPOSITION_ATTACHED_PIC))
        return wm_error_set(err, WM_E_INPUT, "%s: no video stream", d->path);
    d->st = d->fmt->streams[ret];
    for (unsigned i = 0; i < d->fmt->nb_streams; i++)
        if (d->fmt->streams[i] != d->st) d->fmt->streams[i]->discard = AVDISCARD_ALL;
    return WM_OK;
}

static wm_status vdec_open_decoder(wm_vdec *d, wm_error *err)
{
    const AVCodecParameters *par = d->st->codecpar;
    /* FFmpeg leaves the size 0x0 when it refused the first picture (a
     * damaged header, or a picture over its own limit, e.g. 20000x20000) */
    if (par->width == 0 || par->height == 0)
        return wm_error_set(err, WM_E_INPUT, "%s: the video size is unknown (FFmpeg could not read a first "
                            "picture: damaged, or larger than it accepts)", d->path);
    if (par->width < 0 || par->height < 0 || par->width > WM_VDEC_MAX_SIDE || par->height > WM_VDEC_MAX_SIDE)
        return wm_error_set(err, WM_E_INPUT, "%s: video size %dx%d is outside 1x1..%dx%d",
                            d->path, par->width, par->height, WM_VDEC_MAX_SIDE, WM_VDEC_MAX_SIDE);
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        return wm_error_set(err, WM_E_INPUT, "%s: no decoder for %s video", d->path, avcodec_get_name(par->codec_id));
    d->dec = avcodec_alloc_context3(codec);
    if (!d->dec) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    int ret = avcodec_parameters_to_context(d->dec, par);
    if (ret < 0) return vdec_av_error(d, ret, "bad codec parameters", err);
    d->dec->pkt_timebase = d->st->time_base;
    d->dec->thread_count = d->opts.threads;
    d->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    d->dec->max_pixels = (int64_t)WM_VDEC_MAX_SIDE * WM_VDEC_MAX_SIDE;
    if ((ret = avcodec_open2(d->dec, codec, NULL)) < 0)
        return vdec_av_error(d, ret, "cannot open the decoder", err);
    d->info.codec = codec->name;
    return WM_OK;
}

/* Seeks to `back` (time base units) before --start.  Demuxers that
 * seek by timestamp search (MPEG-PS, TS) can land after the last keyframe
 * before the target, so the first frame decoded after a seek is checked
 * (vdec_source_next) and the seek retried further back until it starts
 * early enough, or at the start of the file. */
static void vdec_seek(wm_vdec *d, int64_t back)
{
    int64_t target = d->skip_before - back;
    d->seek_back = target > 0 ? back : -1;
    if (target <= 0) target = 0;
    if (av_seek_frame(d->fmt, d->st->index, d->start_ts + target, AVSEEK_FLAG_BACKWARD) < 0) {
        if (target > 0) return vdec_seek(d, d->skip_before);   /* try the start */
        d->seek_back = -1;
    }
    avcodec_flush_buffers(d->dec);
    d->draining = 0;
}

/* A side of x pixels rounded to the nearest multiple of n (n at least),
 * kept within what a frame may be. */
static int vdec_side(double x, int n)
{
    const double k = floor(x / n + 0.5), most = WM_VDEC_MAX_SIDE + 1.0;
    return k < 1 ? n : k * n > most ? (int)most : (int)k * n;
}

/* Output size, rate, timestamps origin and the --start seek. */
static wm_status vdec_setup(wm_vdec *d, wm_error *err)
{
    const AVCodecParameters *par = d->st->codecpar;
    wm_vdec_info *in = &d->info;
    in->src_width = par->width;
    in->src_height = par->height;
    in->rotation = vdec_stream_rotation(d->st);
    int turned = in->rotation == 90 || in->rotation == 270;
    /* the pixels' shape: a width of w pixels shows as w * num / den (DV, anamorphic DVD, some phones) */
    d->sar = av_guess_sample_aspect_ratio(d->fmt, d->st, NULL);
    if (d->sar.num <= 0 || d->sar.den <= 0 || av_cmp_q(d->sar, (AVRational){ 1, 16 }) < 0 ||
        av_cmp_q(d->sar, (AVRational){ 16, 1 }) > 0)
        d->sar = (AVRational){ 1, 1 };
    av_reduce(&d->sar.num, &d->sar.den, d->sar.num, d->sar.den, 1 << 16);
    const int sw = turned ? par->height : par->width, sh = turned ? par->width : par->height;
    double aspect = (double)par->width * d->sar.num / ((double)par->height * d->sar.den);   /* as shown */
    if (turned) aspect = 1 / aspect;
    in->width = d->opts.width > 0 ? d->opts.width : sw;
    in->height = d->opts.height > 0 ? d->opts.height : sh;
    if (d->opts.width < 0) in->width = vdec_side((double)in->height * aspect, -d->opts.width);
    if (d->opts.height < 0) in->height = vdec_side((double)in->width / aspect, -d->opts.height);
    if (!d->opts.width && !d->opts.height) d->sar = (AVRational){ 1, 1 };   /* its own pixels, as they are */
    if (in->width > WM_VDEC_MAX_SIDE || in->height > WM_VDEC_MAX_SIDE)
        return wm_error_set(err, WM_E_INPUT, "%s: output size %dx%d is over %dx%d",
                            d->path, in->width, in->height, WM_VDEC_MAX_SIDE, WM_VDEC_MAX_SIDE);
    d->channels = wm_pixfmt_channels(d->opts.format);
    d->out_size = (size_t)in->width * (size_t)in->height * (size_t)d->channels;
    if (d->opts.max_bytes && d->out_size > d->opts.max_bytes)
        return wm_error_set(err, WM_E_INPUT, "%s: %dx%d %s frames of %zu bytes do not fit a message "
                            "(at most %zu bytes of pixels; see --max-message)",
                            d->path, in->width, in->height, wm_pixfmt_name(d->opts.format),
                            d->out_size, d->opts.max_bytes);
    d->out_buf = av_buffer_allocz(d->out_size);   /* zero: --fit pad's bars are black */
    if (!d->out_buf) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    d->out = d->out_buf->data;

    AVRational avg = d->st->avg_frame_rate, rate = avg;
    if (rate.num <= 0 || rate.den <= 0) rate = d->st->r_frame_rate;
    if (d->opts.near_fps > 0 && !(d->opts.fps_num > 0 && d->opts.fps_den > 0) && rate.num > 0 && rate.den > 0) {
        /* every k-th frame, as the resampler below picks them at rate / k:
         * steps stay even, where resampling to near_fps itself would drop
         * one frame in six of a 30 frames/s video */
        const double k = floor(av_q2d(rate) / d->opts.near_fps + 0.5);
        if (k >= 2 && k <= 1e6)
            av_reduce(&d->opts.fps_num, &d->opts.fps_den, rate.num, (int64_t)rate.den * (int64_t)k, INT32_MAX);
    }
    if (d->opts.fps_num > 0 && d->opts.fps_den > 0) {
        in->fps_num = d->opts.fps_num;
        in->fps_den = d->opts.fps_den;
        d->out_tb = (AVRational){ d->opts.fps_den, d->opts.fps_num };
    } else if (rate.num > 0 && rate.den > 0) {
        av_reduce(&in->fps_num, &in->fps_den, rate.num, rate.den, INT32_MAX);
    }
    AVRational tb = d->st->time_base;
    if (avg.num > 0 && avg.den > 0)
        d->default_dur = av_rescale_q(1, av_inv_q(avg), tb);

    d->start_ts = d->st->start_time != AV_NOPTS_VALUE ? d->st->start_time : 0;
    if (d->opts.start > 0) {
        int64_t start_us = llrint(d->opts.start * 1e6);
        d->skip_before = av_rescale_q_rnd(start_us, (AVRational){ 1, 1000000 }, tb, AV_ROUND_UP);
        /* on a pipe, decoding from the beginning and dropping is the only way */
        d->seek_back = -1;
        if (d->fmt->pb && (d->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL))
            vdec_seek(d, 0);
    } else {
        d->skip_before = INT64_MIN;
    }
    return WM_OK;
}

wm_vdec *wm_vdec_open(const char *path, const wm_vdec_opts *opts, wm_error *err)
{
    wm_vdec *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    d->opts = *opts;
    d->plan_fmt = AV_PIX_FMT_NONE;
    d->seek_back = -1;
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    d->held = av_frame_alloc();
    d->cropped = av_frame_alloc();
    d->dst = av_frame_alloc();
    wm_status st = WM_OK;
    if (!d->pkt || !d->frame || !d->held || !d->cropped || !d->dst)
        st = wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (st == WM_OK) st = vdec_open_input(d, err);
    if (st == WM_OK) st = vdec_open_decoder(d, err);
    if (st == WM_OK) st = vdec_setup(d, err);
    if (st != WM_OK) wm_vdec_free(&d);
    return d;
}

void wm_vdec_free(wm_vdec **pd)
{
    wm_vdec *d = *pd;
    if (!d) return;
    sws_freeContext(d->sws);
    av_frame_free(&d->cropped);
    av_frame_free(&d->held);
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    av_frame_free(&d->dst);
    av_buffer_unref(&d->scratch_buf);
    av_buffer_unref(&d->out_buf);
    free(d->path);
    free(d);
    *pd = NULL;
}

/* Reads packets until one of our stream: 0, AVERROR_EOF or an error. */
static int vdec_read_packet(wm_vdec *d)
{
    for (;;) {
        int ret = av_read_frame(d->fmt, d->pkt);
        if (ret < 0 || d->pkt->stream_index == d->st->index) return ret;
        av_packet_unref(d->pkt);
    }
}

/* At the end of the data: a demuxer that read an index (MP4, AVI) ends
 * quietly when the samples it lists lie past the end of a cut file, so the
 * index is checked against the file size. */
static void vdec_check_truncated(wm_vdec *d)
{
    int64_t size = d->fmt->pb ? avio_size(d->fmt->pb) : -1, need = 0;
    int n = avformat_index_get_entries_count(d->st);
    for (int i = 0; i < n; i++) {
        const AVIndexEntry *e = avformat_index_get_entry(d->st, i);
        if (e && e->pos + e->size > need) need = e->pos + e->size;
    }
    if (size > 0 && need > size && !d->damage.code)
        wm_error_set(&d->damage, WM_E_INPUT, "%s: truncated: the index lists frame data up to byte %lld, the file "
                     "ends at %lld", d->path, (long long)need, (long long)size);
}

/* Records the first error of the file and drains the decoder, so the
 * frames it already holds still come out; the error is returned after
 * them, in place of the end of the file. */
static void vdec_damage(wm_vdec *d, int ret, const char *what)
{
    vdec_av_error(d, ret, what, &d->damage);
    d->draining = 1;
    avcodec_send_packet(d->dec, NULL);
}

/* The decoder's next frame into d->frame (send/receive; at the end of the
 * file a NULL packet drains the frames still inside the decoder). */
static wm_status vdec_decode(wm_vdec *d, wm_error *err)
{
    char what[96];
    for (;;) {
        int ret = avcodec_receive_frame(d->dec, d->frame);
        if (ret >= 0) {
            d->decoded++;
            return WM_OK;
        }
        if (ret != AVERROR_EOF && ret != AVERROR(EAGAIN) && !d->damage.code) {
            snprintf(what, sizeof what, "frame %lld: decode error", (long long)d->decoded);
            vdec_damage(d, ret, what);
            continue;
        }
        if (ret != AVERROR(EAGAIN) || d->draining) {
            if (!d->damage.code) return WM_EOF;
            *err = d->damage;
            return err->code;
        }
        ret = vdec_read_packet(d);
        if (ret == AVERROR_EOF) {
            vdec_check_truncated(d);
            d->draining = 1;
            avcodec_send_packet(d->dec, NULL);
            continue;
        }
        if (ret < 0) {
            snprintf(what, sizeof what, "byte offset %lld: read error", (long long)avio_tell(d->fmt->pb));
            vdec_damage(d, ret, what);
            continue;
        }
        int64_t pos = d->pkt->pos;
        ret = avcodec_send_packet(d->dec, d->pkt);
        av_packet_unref(d->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN)) {
            snprintf(what, sizeof what, "frame %lld (byte offset %lld): decode error",
                     (long long)d->decoded, (long long)pos);
            vdec_damage(d, ret, what);
        }
    }
}

/* The next decoded frame at or after --start, its pts made relative to the
 * stream start (best_effort_timestamp, so variable rates keep their times). */
static wm_status vdec_source_next(wm_vdec *d, wm_error *err)
{
    for (;;) {
        wm_status st = vdec_decode(d, err);
        if (st != WM_OK) return st;
        AVFrame *f = d->frame;
        int64_t ts = f->best_effort_timestamp, dur = vdec_frame_duration(f);
        int64_t rel = ts != AV_NOPTS_VALUE ? ts - d->start_ts
                      : d->have_last ? d->last_ts + d->last_dur : 0;
        if (dur <= 0) dur = d->default_dur > 0 ? d->default_dur : d->have_last ? rel - d->last_ts : 0;
        d->last_ts = rel;
        d->last_dur = dur > 0 ? dur : 0;
        d->have_last = 1;
        if (d->seek_back >= 0) {
            int64_t back = d->seek_back;
            if (rel > d->skip_before) {   /* landed too late: aim a second, then twice as far, earlier */
                av_frame_unref(f);
                vdec_seek(d, FFMAX(2 * back, av_rescale_q(1, (AVRational){ 1, 1 }, d->st->time_base)));
                d->have_last = 0;
                continue;
            }
            d->seek_back = -1;
        }
        if (rel < d->skip_before) {
            av_frame_unref(f);
            continue;
        }
        f->pts = rel;
        if (!d->have_first) {
            d->have_first = 1;
            d->first_t = (double)rel * av_q2d(d->st->time_base);
            if (d->out_tb.num)
                d->first_pos = av_rescale_q_rnd(rel, d->st->time_base, d->out_tb,
                                                AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
        }
        return WM_OK;
    }
}

static int64_t vdec_fps_pos(const wm_vdec *d, int64_t rel)
{
    return av_rescale_q_rnd(rel, d->st->time_base, d->out_tb, AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX)
           - d->first_pos;
}

static int64_t vdec_round_div(int64_t a, int64_t b, int64_t c) { return (a * b + c / 2) / c; }

/* Works out, for a source of w x h, the rectangle to take, the size to
 * scale it to and where it goes, then gets a scaler for that. */
static wm_status vdec_plan(wm_vdec *d, const AVFrame *src, wm_error *err)
{
    int sw = src->width, sh = src->height;
    int turned = d->info.rotation == 90 || d->info.rotation == 270;
    int tw = turned ? d->info.height : d->info.width, th = turned ? d->info.width : d->info.height;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(src->format);
    if (!desc || (desc->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)))
        return wm_error_set(err, WM_E_INPUT, "%s: frame %lld: unsupported pixel format %s", d->path,
                            (long long)d->decoded, desc ? desc->name : "none");
    d->canvas_w = tw;
    d->canvas_h = th;
    d->crop_x = d->crop_y = d->off_x = d->off_y = 0;
    d->crop_w = sw;
    d->crop_h = sh;
    d->fit_w = tw;
    d->fit_h = th;
    /* shapes compared as shown: a source pixel is sar wide */
    const int64_t an = d->sar.num, ad = d->sar.den;
    int wider = (int64_t)sw * an * th > (int64_t)sh * ad * tw;
    if (d->opts.fit == WM_VDEC_FIT_CROP) {
        if (wider) d->crop_w = (int)FFMIN(sw, FFMAX(1, vdec_round_div(sh * ad, tw, th * an)));
        else d->crop_h = (int)FFMIN(sh, FFMAX(1, vdec_round_div(sw * an, th, tw * ad)));
        /* offsets on chroma sample boundaries so chroma stays sited */
        d->crop_x = ((sw - d->crop_w) / 2) & ~((1 << desc->log2_chroma_w) - 1);
        d->crop_y = ((sh - d->crop_h) / 2) & ~((1 << desc->log2_chroma_h) - 1);
    } else if (d->opts.fit == WM_VDEC_FIT_PAD) {
        if (wider) d->fit_h = (int)FFMIN(th, FFMAX(1, vdec_round_div(sh * ad, tw, sw * an)));
        else d->fit_w = (int)FFMIN(tw, FFMAX(1, vdec_round_div(sw * an, th, sh * ad)));
        d->off_x = (tw - d->fit_w) / 2;
        d->off_y = (th - d->fit_h) / 2;
        memset(d->out, 0, d->out_size);
    }
    enum AVPixelFormat dst_fmt = d->opts.format == WM_PIX_GRAY8 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
    /* slice threads, as the ffmpeg CLI's scale filter gives its scaler:
     * the output bytes do not depend on them */
    sws_freeContext(d->sws);
    d->sws = sws_alloc_context();
    if (!d->sws) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    av_opt_set_int(d->sws, "srcw", d->crop_w, 0);
    av_opt_set_int(d->sws, "srch", d->crop_h, 0);
    av_opt_set_int(d->sws, "src_format", src->format, 0);
    av_opt_set_int(d->sws, "dstw", d->fit_w, 0);
    av_opt_set_int(d->sws, "dsth", d->fit_h, 0);
    av_opt_set_int(d->sws, "dst_format", dst_fmt, 0);
    av_opt_set_int(d->sws, "sws_flags", wm_vdec_scaler_flags[d->opts.scaler], 0);
    av_opt_set_int(d->sws, "threads", d->opts.threads ? d->opts.threads : av_cpu_count(), 0);
    if (sws_init_context(d->sws, NULL, NULL) < 0)
        return wm_error_set(err, WM_E_INPUT, "%s: cannot convert %dx%d %s frames", d->path, sw, sh, desc->name);
    d->cs_space = d->cs_range = -1;

    /* sws writes packed rows in blocks of up to 8 pixels (the unscaled
     * yuv2rgb paths) and wants aligned rows: it writes a padded scratch
     * unless the output rows happen to be aligned and nothing moves. */
    d->scratch_stride = FFALIGN(FFALIGN(d->fit_w, 16) * d->channels, 64);
    d->direct = d->info.rotation == 0 && d->fit_w == tw && d->fit_h == th &&
                (size_t)d->scratch_stride == (size_t)tw * d->channels;
    size_t need = (size_t)d->scratch_stride * (size_t)d->fit_h + 64;
    if (!d->direct && (!d->scratch_buf || need > (size_t)d->scratch_buf->size)) {
        av_buffer_unref(&d->scratch_buf);
        if (!(d->scratch_buf = av_buffer_alloc(need))) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        d->scratch = d->scratch_buf->data;
    }
    d->dst_fmt = dst_fmt;
    d->plan_w = sw;
    d->plan_h = sh;
    d->plan_fmt = src->format;
    return WM_OK;
}

/* The colorspace details the ffmpeg CLI's scale filter gives libswscale
 * for each frame: the frame's matrix (unknown ones as BT.601) both ways,
 * and its range when it has one. */
static void vdec_set_colorspace(wm_vdec *d, const AVFrame *f)
{
    if ((int)f->colorspace == d->cs_space && (int)f->color_range == d->cs_range) return;
    int *inv_table, *table, in_full, out_full, brightness, contrast, saturation;
    sws_getColorspaceDetails(d->sws, &inv_table, &in_full, &table, &out_full, &brightness, &contrast,
                             &saturation);
    int space = f->colorspace;
    if (space < 1 || space > 10 || space == 8) space = AVCOL_SPC_BT470BG;
    const int *coeffs = sws_getCoefficients(space);
    if (f->color_range != AVCOL_RANGE_UNSPECIFIED) in_full = f->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(d->sws, coeffs, in_full, coeffs, out_full, brightness, contrast, saturation);
    d->cs_space = f->colorspace;
    d->cs_range = f->color_range;
}

/* Copies the scaled picture from scratch to its place in the output,
 * turning it upright on the way. */
static void vdec_place(wm_vdec *d)
{
    const int c = d->channels, w = d->info.width, tw = d->canvas_w, th = d->canvas_h;
    for (int y = 0; y < d->fit_h; y++) {
        const uint8_t *row = d->scratch + (size_t)y * d->scratch_stride;
        int cy = d->off_y + y;
        if (d->info.rotation == 0) {
            memcpy(d->out + ((size_t)cy * w + d->off_x) * c, row, (size_t)d->fit_w * c);
            continue;
        }
        for (int x = 0; x < d->fit_w; x++) {
            int cx = d->off_x + x, r, col;
            switch (d->info.rotation) {
            case 90: r = cx; col = th - 1 - cy; break;
            case 180: r = th - 1 - cy; col = tw - 1 - cx; break;
            default: r = tw - 1 - cx; col = cy; break;   /* 270 */
            }
            uint8_t *px = d->out + ((size_t)r * w + col) * c;
            for (int k = 0; k < c; k++) px[k] = row[(size_t)x * c + k];
        }
    }
}

/* Scales (and crops, pads, rotates) src into d->out. */
static wm_status vdec_convert(wm_vdec *d, AVFrame *src, wm_error *err)
{
    wm_status st;
    if (src->width <= 0 || src->height <= 0 || src->width > WM_VDEC_MAX_SIDE || src->height > WM_VDEC_MAX_SIDE)
        return wm_error_set(err, WM_E_INPUT, "%s: frame %lld: size %dx%d is outside 1x1..%dx%d", d->path,
                            (long long)d->decoded, src->width, src->height, WM_VDEC_MAX_SIDE, WM_VDEC_MAX_SIDE);
    if (src->width != d->plan_w || src->height != d->plan_h || src->format != d->plan_fmt)
        if ((st = vdec_plan(d, src, err)) != WM_OK) return st;
    AVFrame *in = src;
    if (d->crop_w != src->width || d->crop_h != src->height) {
        in = d->cropped;
        if (av_frame_ref(in, src) < 0) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        in->crop_left = (size_t)d->crop_x;
        in->crop_top = (size_t)d->crop_y;
        in->crop_right = (size_t)(src->width - d->crop_x - d->crop_w);
        in->crop_bottom = (size_t)(src->height - d->crop_y - d->crop_h);
        if (av_frame_apply_cropping(in, AV_FRAME_CROP_UNALIGNED) < 0) {
            av_frame_unref(in);
            return wm_error_set(err, WM_E_INPUT, "%s: frame %lld: cannot crop", d->path, (long long)d->decoded);
        }
    }
    vdec_set_colorspace(d, src);
    /* sws_scale_frame, not sws_scale: only the frame API uses the
     * scaler's slice threads (it wants reference-counted frames) */
    AVFrame *dst = d->dst;
    dst->buf[0] = av_buffer_ref(d->direct ? d->out_buf : d->scratch_buf);
    int ret = AVERROR(ENOMEM);
    if (dst->buf[0]) {
        dst->data[0] = dst->buf[0]->data;
        dst->linesize[0] = d->direct ? d->canvas_w * d->channels : d->scratch_stride;
        dst->width = d->fit_w;
        dst->height = d->fit_h;
        dst->format = d->dst_fmt;
        ret = sws_scale_frame(d->sws, dst, in);
    }
    av_frame_unref(dst);
    if (in == d->cropped) av_frame_unref(in);
    if (ret == AVERROR(ENOMEM)) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (ret < 0)
        return wm_error_set(err, WM_E_INPUT, "%s: frame %lld: scaling failed", d->path, (long long)d->decoded);
    if (!d->direct) vdec_place(d);
    return WM_OK;
}

static wm_status vdec_emit(wm_vdec *d, wm_vdec_frame *f, double t)
{
    f->data = d->out;
    f->size = d->out_size;
    f->width = d->info.width;
    f->height = d->info.height;
    f->format = d->opts.format;
    f->index = d->emitted++;
    f->pts = t;
    return WM_OK;
}

static int vdec_past_duration(const wm_vdec *d, double t)
{
    return d->opts.duration > 0 && t - d->first_t >= d->opts.duration - WM_VDEC_EPS;
}

static wm_status vdec_finish(wm_vdec *d)
{
    d->finished = 1;
    return WM_EOF;
}

/* --fps, as FFmpeg's fps filter: output slot k (at first + k / fps) shows
 * the newest frame whose rounded position is <= k, so frames are dropped
 * or repeated; the last one lasts until the end of its duration. */
static wm_status vdec_next_resampled(wm_vdec *d, wm_vdec_frame *f, wm_error *err)
{
    wm_status st;
    for (;;) {
        if (d->have_held) {
            int have_limit = d->have_pending || d->at_eof;
            int64_t limit = d->have_pending ? d->pending_pos : d->eof_pos;
            if (have_limit && d->slot < limit) {
                double t = d->first_t + (double)d->slot * d->opts.fps_den / d->opts.fps_num;
                if (vdec_past_duration(d, t)) return vdec_finish(d);
                if (!d->held_converted) {
                    if ((st = vdec_convert(d, d->held, err)) != WM_OK) return st;
                    d->held_converted = 1;
                }
                d->slot++;
                return vdec_emit(d, f, t);
            }
        }
        if (d->have_pending) {   /* the held frame is done: the newer one takes over */
            av_frame_unref(d->held);
            av_frame_move_ref(d->held, d->frame);
            d->have_held = 1;
            d->held_converted = 0;
            d->have_pending = 0;
            continue;
        }
        if (d->at_eof) return vdec_finish(d);
        st = vdec_source_next(d, err);
        if (st == WM_EOF) {
            d->at_eof = 1;
            d->eof_pos = d->have_held ? vdec_fps_pos(d, d->last_ts + d->last_dur) : 0;
            continue;
        }
        if (st != WM_OK) return st;
        d->have_pending = 1;
        d->pending_pos = vdec_fps_pos(d, d->frame->pts);
    }
}

wm_status wm_vdec_next(wm_vdec *d, wm_vdec_frame *f, wm_error *err)
{
    if (d->finished || (d->opts.max_frames > 0 && d->emitted >= d->opts.max_frames))
        return vdec_finish(d);
    if (d->out_tb.num) return vdec_next_resampled(d, f, err);
    wm_status st = vdec_source_next(d, err);
    if (st == WM_EOF) return vdec_finish(d);
    if (st != WM_OK) return st;
    double t = (double)d->frame->pts * av_q2d(d->st->time_base);
    if (vdec_past_duration(d, t)) {
        av_frame_unref(d->frame);
        return vdec_finish(d);
    }
    st = vdec_convert(d, d->frame, err);
    av_frame_unref(d->frame);
    return st != WM_OK ? st : vdec_emit(d, f, t);
}
