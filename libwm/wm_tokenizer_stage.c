#include "wm_tokenizer_stage.h"

#include <stdlib.h>
#include <string.h>

#include "wm_cli.h"
#include "wm_model.h"
#include "wm_proto.h"

struct wm_tokenizer_stage {
    wm_tokenizer *tk;
    wm_tokenizer_direction dir;
    int keep, batch, C;
    /* the pending batch: raw copies of its messages and their inputs */
    uint8_t *raw;
    size_t raw_len, raw_cap;
    size_t *raw_off;                 /* batch + 1 offsets */
    int n, in_h, in_w;               /* items pending; their input size (frame or grid) */
    float *in, *out;
    size_t in_cap, out_cap;
    uint8_t *pixels;
    size_t pixels_cap;
    wm_msgbuf mb;
    /* the current clip's frame rate, for latents that carry no pts */
    char *fps_clip;
    int fps_num, fps_den;
    uint64_t items;
    double seconds;
};

wm_tokenizer_stage *wm_tokenizer_stage_new(wm_tokenizer *tk, wm_tokenizer_direction dir, int keep, int batch,
                                           wm_error *err)
{
    wm_tokenizer_stage *s = calloc(1, sizeof *s);
    if (s) s->raw_off = calloc((size_t)(batch < 1 ? 1 : batch) + 1, sizeof *s->raw_off);
    if (!s || !s->raw_off) {
        free(s);
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    s->tk = tk;
    s->dir = dir;
    s->keep = keep;
    s->batch = batch < 1 ? 1 : batch;
    s->C = wm_tokenizer_get_config(tk)->latent_channels;
    wm_msgbuf_init(&s->mb);
    return s;
}

void wm_tokenizer_stage_free(wm_tokenizer_stage **sp)
{
    wm_tokenizer_stage *s = *sp;
    if (!s) return;
    free(s->raw);
    free(s->raw_off);
    free(s->in);
    free(s->out);
    free(s->pixels);
    free(s->fps_clip);
    wm_msgbuf_destroy(&s->mb);
    free(s);
    *sp = NULL;
}

uint64_t wm_tokenizer_stage_items(const wm_tokenizer_stage *s) { return s->items; }
double wm_tokenizer_stage_seconds(const wm_tokenizer_stage *s) { return s->seconds; }

static wm_status reserve(void **p, size_t *cap, size_t need, wm_error *err)
{
    if (need <= *cap) return WM_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = realloc(*p, c);
    if (!q) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    *p = q;
    *cap = c;
    return WM_OK;
}

/* Sizes in floats of one item's input and output. */
static size_t in_floats(const wm_tokenizer_stage *s)
{
    return s->dir == WM_TOKENIZER_ENCODE ? (size_t)s->in_h * s->in_w * 3 : (size_t)s->in_h * s->in_w * s->C;
}

static size_t out_floats(const wm_tokenizer_stage *s)
{
    const int P = WM_TOKENIZER_PATCH;
    return s->dir == WM_TOKENIZER_ENCODE ? (size_t)(s->in_h / P) * (s->in_w / P) * s->C
                                         : (size_t)(s->in_h * P) * (s->in_w * P) * 3;
}

static const char *const frame_keys[] = { "kind", "clip", "index", "pts", "width", "height", "format", "data", NULL };
static const char *const latent_keys[] = { "kind", "clip", "index", "pts", "shape", "dtype", "data", NULL };

static void pack_str_n(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* The latent made from frame message m and its code z. */
static wm_status emit_latent(wm_tokenizer_stage *s, const wm_msg *m, const float *z, wm_writer *out, wm_error *err)
{
    const int P = WM_TOKENIZER_PATCH;
    const char *clip;
    size_t clip_len;
    int64_t index = 0;
    double pts = 0;
    wm_msg_str(m, "clip", &clip, &clip_len);
    wm_msg_i64(m, "index", &index);
    wm_msg_f64(m, "pts", &pts);
    msgpack_packer *pk = &s->mb.pk;
    wm_msgbuf_reset(&s->mb);
    msgpack_pack_map(pk, 7 + (uint32_t)wm_obj_count_except(&m->root, frame_keys));
    wm_pack_kv_str(pk, "kind", "latent");
    wm_pack_str(pk, "clip");
    pack_str_n(pk, clip, clip_len);
    wm_pack_kv_i64(pk, "index", index);
    wm_pack_kv_f64(pk, "pts", pts);
    wm_pack_str(pk, "shape");
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, s->in_h / P);
    msgpack_pack_int(pk, s->in_w / P);
    msgpack_pack_int(pk, s->C);
    wm_pack_kv_str(pk, "dtype", "f32");
    wm_pack_except(pk, &m->root, frame_keys);
    size_t n = out_floats(s) * sizeof(float);   /* little-endian f32, as the protocol */
    wm_proto_pack_data_header(pk, n);
    wm_status st = wm_writer_send(out, s->mb.sbuf.data, s->mb.sbuf.size, z, n, err);
    wm_msgbuf_reset(&s->mb);
    return st;
}

/* The frame made from latent message m and its decoded image y. */
static wm_status emit_frame(wm_tokenizer_stage *s, const wm_msg *m, const float *y, wm_writer *out, wm_error *err)
{
    const int P = WM_TOKENIZER_PATCH;
    const char *clip;
    size_t clip_len;
    int64_t index = 0;
    double pts;
    wm_msg_str(m, "clip", &clip, &clip_len);
    wm_msg_i64(m, "index", &index);
    if (wm_msg_f64(m, "pts", &pts) != 0) {
        pts = 0;
        if (s->fps_clip && s->fps_num > 0 && s->fps_den > 0 && strlen(s->fps_clip) == clip_len &&
            memcmp(s->fps_clip, clip, clip_len) == 0)
            pts = (double)index * s->fps_den / s->fps_num;
    }
    int W = s->in_w * P, H = s->in_h * P;
    size_t npix = (size_t)W * H;
    wm_status st = reserve((void **)&s->pixels, &s->pixels_cap, 3 * npix, err);
    if (st) return st;
    wm_tokenizer_output_to_pixels(s->pixels, y, npix);
    msgpack_packer *pk = &s->mb.pk;
    wm_msgbuf_reset(&s->mb);
    msgpack_pack_map(pk, 8 + (uint32_t)wm_obj_count_except(&m->root, latent_keys));
    wm_pack_kv_str(pk, "kind", "frame");
    wm_pack_str(pk, "clip");
    pack_str_n(pk, clip, clip_len);
    wm_pack_kv_i64(pk, "index", index);
    wm_pack_kv_f64(pk, "pts", pts);
    wm_pack_kv_i64(pk, "width", W);
    wm_pack_kv_i64(pk, "height", H);
    wm_pack_kv_str(pk, "format", "rgb24");
    wm_pack_except(pk, &m->root, latent_keys);
    wm_proto_pack_data_header(pk, 3 * npix);
    st = wm_writer_send(out, s->mb.sbuf.data, s->mb.sbuf.size, s->pixels, 3 * npix, err);
    wm_msgbuf_reset(&s->mb);
    return st;
}

/* Runs the network over the pending items and emits them in order. */
static wm_status flush(wm_tokenizer_stage *s, wm_writer *out, wm_error *err)
{
    if (s->n == 0) return WM_OK;
    wm_status st = reserve((void **)&s->out, &s->out_cap, (size_t)s->n * out_floats(s) * sizeof(float), err);
    if (st) return st;
    double t0 = wm_now();
    if (s->dir == WM_TOKENIZER_ENCODE)
        st = wm_tokenizer_encode(s->tk, s->out, s->in, s->n, s->in_h, s->in_w, err);
    else
        st = wm_tokenizer_decode(s->tk, s->out, s->in, s->n, s->in_h, s->in_w, err);
    s->seconds += wm_now() - t0;
    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    for (int i = 0; st == WM_OK && i < s->n; i++) {
        wm_msg m;
        const uint8_t *raw = s->raw + s->raw_off[i];
        size_t len = s->raw_off[i + 1] - s->raw_off[i];
        msgpack_zone_clear(&zone);
        if ((st = wm_msg_parse(&m, raw, len, &zone, err))) break;
        if (s->keep && (st = wm_writer_send(out, raw, len, NULL, 0, err))) break;
        const float *o = s->out + (size_t)i * out_floats(s);
        st = s->dir == WM_TOKENIZER_ENCODE ? emit_latent(s, &m, o, out, err) : emit_frame(s, &m, o, out, err);
        s->items++;
    }
    msgpack_zone_destroy(&zone);
    s->n = 0;
    s->raw_len = 0;
    return st;
}

/* Queues m with its input (in_h x in_w), flushing first when the size changes. */
static wm_status queue(wm_tokenizer_stage *s, const wm_msg *m, int in_h, int in_w, float **slot, wm_writer *out,
                       wm_error *err)
{
    wm_status st;
    if (s->n && (in_h != s->in_h || in_w != s->in_w) && (st = flush(s, out, err))) return st;
    s->in_h = in_h;
    s->in_w = in_w;
    if ((st = reserve((void **)&s->raw, &s->raw_cap, s->raw_len + m->len, err)) ||
        (st = reserve((void **)&s->in, &s->in_cap, (size_t)(s->n + 1) * in_floats(s) * sizeof(float), err)))
        return st;
    memcpy(s->raw + s->raw_len, m->raw, m->len);
    s->raw_off[s->n] = s->raw_len;
    s->raw_len += m->len;
    s->raw_off[s->n + 1] = s->raw_len;
    *slot = s->in + (size_t)s->n * in_floats(s);
    s->n++;
    return WM_OK;
}

static wm_status on_frame(wm_tokenizer_stage *s, const wm_msg *m, wm_writer *out, wm_error *err)
{
    wm_frame_view v;
    wm_status st = wm_proto_frame_get(m, &v, err);
    if (st) return st;
    const int P = WM_TOKENIZER_PATCH;
    if (v.width % P || v.height % P)
        return wm_error_set(err, WM_E_INPUT,
                            "clip %.*s frame %lld is %dx%d: the tokenizer needs sides that are multiples of %d "
                            "(scale or crop it, e.g. wm-decode --size 64x64)",
                            (int)v.clip_len, v.clip, (long long)v.index, v.width, v.height, P);
    float *slot;
    if ((st = queue(s, m, v.height, v.width, &slot, out, err))) return st;
    wm_tokenizer_pixels_to_input(slot, v.data, (size_t)v.width * v.height, wm_pixfmt_channels(v.format));
    return s->n >= s->batch ? flush(s, out, err) : WM_OK;
}

static wm_status on_latent(wm_tokenizer_stage *s, const wm_msg *m, wm_writer *out, wm_error *err)
{
    /* the reader validated shape, dtype and the data size */
    const msgpack_object *shape = wm_msg_get(m, "shape");
    const char *clip;
    size_t clip_len;
    int64_t index = 0;
    wm_msg_str(m, "clip", &clip, &clip_len);
    wm_msg_i64(m, "index", &index);
    if (shape->via.array.size != 3 || shape->via.array.ptr[2].via.u64 != (uint64_t)s->C ||
        shape->via.array.ptr[0].via.u64 > WM_MAX_DIM / WM_TOKENIZER_PATCH ||
        shape->via.array.ptr[1].via.u64 > WM_MAX_DIM / WM_TOKENIZER_PATCH)
        return wm_error_set(err, WM_E_INPUT,
                            "clip %.*s latent %lld: shape must be [h, w, %d] for this model's tokenizer "
                            "(a latent from another model?)",
                            (int)clip_len, clip, (long long)index, s->C);
    int h = (int)shape->via.array.ptr[0].via.u64, w = (int)shape->via.array.ptr[1].via.u64;
    const uint8_t *data;
    size_t n;
    wm_msg_bin(m, "data", &data, &n);
    int f16 = wm_obj_streq(wm_msg_get(m, "dtype"), "f16");
    float *slot;
    wm_status st = queue(s, m, h, w, &slot, out, err);
    if (st) return st;
    size_t count = (size_t)h * w * s->C;
    if (f16)
        for (size_t i = 0; i < count; i++) slot[i] = wm_f16_to_f32((uint16_t)(data[2 * i] | data[2 * i + 1] << 8));
    else
        memcpy(slot, data, count * sizeof(float));
    return s->n >= s->batch ? flush(s, out, err) : WM_OK;
}

static void note_clip(wm_tokenizer_stage *s, const wm_msg *m)
{
    const char *id;
    size_t n;
    const msgpack_object *fps = wm_msg_get(m, "fps");
    if (wm_msg_str(m, "id", &id, &n) != 0) return;
    char *copy = malloc(n + 1);
    if (!copy) return;
    memcpy(copy, id, n);
    copy[n] = '\0';
    free(s->fps_clip);
    s->fps_clip = copy;
    s->fps_num = s->fps_den = 0;
    if (fps && fps->type == MSGPACK_OBJECT_ARRAY && fps->via.array.size == 2 &&
        fps->via.array.ptr[0].via.u64 < 1000000 && fps->via.array.ptr[1].via.u64 < 1000000) {
        s->fps_num = (int)fps->via.array.ptr[0].via.u64;
        s->fps_den = (int)fps->via.array.ptr[1].via.u64;
    }
}

static wm_status stage_msg(void *ctx, const wm_msg *m, wm_writer *out, wm_error *err)
{
    wm_tokenizer_stage *s = ctx;
    if (s->dir == WM_TOKENIZER_ENCODE && wm_msg_is(m, "frame")) return on_frame(s, m, out, err);
    if (s->dir == WM_TOKENIZER_DECODE && wm_msg_is(m, "latent")) return on_latent(s, m, out, err);
    wm_status st = flush(s, out, err);
    if (st) return st;
    if (wm_msg_is(m, "clip")) note_clip(s, m);
    return wm_writer_forward(out, m, err);
}

static wm_status stage_finish(void *ctx, wm_writer *out, wm_error *err)
{
    return flush(ctx, out, err);
}

wm_stage wm_tokenizer_stage_get(wm_tokenizer_stage *s)
{
    wm_stage st = { s, stage_msg, stage_finish };
    return st;
}

wm_status wm_tokenizer_stage_run(const char *model_opt, wm_tokenizer_direction dir, int keep, int batch,
                                 const char *const *inputs, int n, const char *out_spec,
                                 size_t max_message, wm_tokenizer_report *report, wm_error *err)
{
    memset(report, 0, sizeof *report);
    wm_status st = wm_model_resolve(model_opt, report->model, sizeof report->model, err);
    if (st != WM_OK) return st;
    wm_tokenizer *tk = wm_tokenizer_load(report->model, err);
    if (!tk) {   /* a model file named on the command line that will not load is a usage error */
        if (err->code == WM_E_INPUT) err->code = WM_E_USAGE;
        return err->code;
    }
    wm_tokenizer_stage *stage = wm_tokenizer_stage_new(tk, dir, keep, batch, err);
    wm_writer *out = stage ? wm_writer_open(out_spec, err) : NULL;
    if (!out) {
        st = err->code;
    } else {
        wm_stage s = wm_tokenizer_stage_get(stage);
        st = wm_loop_run(inputs, n, max_message, out, &s, err);
        if (st == WM_OK) st = wm_writer_close(out, err);
        report->items = wm_tokenizer_stage_items(stage);
        report->seconds = wm_tokenizer_stage_seconds(stage);
    }
    wm_writer_free(&out);
    wm_tokenizer_stage_free(&stage);
    wm_tokenizer_free(&tk);
    return st;
}
