#include "wm_proto.h"

#include <string.h>

const char *wm_pixfmt_name(wm_pixfmt f) { return f == WM_PIX_GRAY8 ? "gray8" : "rgb24"; }

float wm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {   /* subnormal: normalise */
        exp = 113;
        while (!(man & 0x400)) { man <<= 1; exp--; }
        bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int wm_pixfmt_channels(wm_pixfmt f) { return f == WM_PIX_GRAY8 ? 1 : 3; }

static wm_status need_str(const wm_msg *m, const char *key, wm_error *err)
{
    const char *s;
    size_t n;
    if (wm_msg_str(m, key, &s, &n) != 0)
        return wm_error_set(err, WM_E_INPUT, "%.*s: missing string \"%s\"",
                            (int)m->kind_len, m->kind, key);
    return WM_OK;
}

static wm_status need_int(const wm_msg *m, const char *key, int64_t lo, int64_t hi,
                          int optional, int64_t *out, wm_error *err)
{
    int64_t v = 0;
    if (!wm_msg_get(m, key)) {
        if (optional) return WM_OK;
        return wm_error_set(err, WM_E_INPUT, "%.*s: missing integer \"%s\"",
                            (int)m->kind_len, m->kind, key);
    }
    if (wm_msg_i64(m, key, &v) != 0 || v < lo || v > hi)
        return wm_error_set(err, WM_E_INPUT, "%.*s: \"%s\" must be an integer in [%lld, %lld]",
                            (int)m->kind_len, m->kind, key, (long long)lo, (long long)hi);
    if (out) *out = v;
    return WM_OK;
}

static wm_status validate_frame(const wm_msg *m, wm_error *err)
{
    wm_frame_view v;
    return wm_proto_frame_get(m, &v, err);
}

/* Validates shape (array of positive ints), dtype and the data keys of a
 * tensor-carrying message (latent, pred). */
static wm_status validate_tensor(const wm_msg *m, const char *const *data_keys, wm_error *err)
{
    const msgpack_object *shape = wm_msg_get(m, "shape");
    if (!shape || shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size == 0 ||
        shape->via.array.size > WM_MAX_RANK)
        return wm_error_set(err, WM_E_INPUT, "%.*s: \"shape\" must be an array of 1 to %d integers",
                            (int)m->kind_len, m->kind, WM_MAX_RANK);
    uint64_t count = 1;
    for (uint32_t i = 0; i < shape->via.array.size; i++) {
        const msgpack_object *d = &shape->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER || d->via.u64 == 0 || d->via.u64 > (1u << 30))
            return wm_error_set(err, WM_E_INPUT, "%.*s: shape[%u] must be an integer in [1, %u]",
                                (int)m->kind_len, m->kind, i, 1u << 30);
        if (count > (UINT64_C(1) << 40) / d->via.u64)
            return wm_error_set(err, WM_E_INPUT, "%.*s: shape product overflows", (int)m->kind_len, m->kind);
        count *= d->via.u64;
    }
    const msgpack_object *dt = wm_msg_get(m, "dtype");
    uint64_t esize;
    if (wm_obj_streq(dt, "f32")) esize = 4;
    else if (wm_obj_streq(dt, "f16")) esize = 2;
    else return wm_error_set(err, WM_E_INPUT, "%.*s: \"dtype\" must be \"f32\" or \"f16\"",
                             (int)m->kind_len, m->kind);
    for (int i = 0; data_keys[i]; i++) {
        const uint8_t *p;
        size_t n;
        if (!wm_msg_get(m, data_keys[i]) && i > 0) continue;   /* keys after the first are optional */
        if (wm_msg_bin(m, data_keys[i], &p, &n) != 0)
            return wm_error_set(err, WM_E_INPUT, "%.*s: missing bin \"%s\"",
                                (int)m->kind_len, m->kind, data_keys[i]);
        if ((uint64_t)n != count * esize)
            return wm_error_set(err, WM_E_INPUT, "%.*s: \"%s\" is %zu bytes, shape and dtype need %llu",
                                (int)m->kind_len, m->kind, data_keys[i], n,
                                (unsigned long long)count * esize);
    }
    return WM_OK;
}

wm_status wm_proto_validate(const wm_msg *m, wm_error *err)
{
    wm_status st = WM_OK;
    if (wm_msg_is(m, "frame"))
        return validate_frame(m, err);
    if (wm_msg_is(m, "latent") || wm_msg_is(m, "pred")) {
        static const char *const latent_keys[] = { "data", NULL };
        static const char *const pred_keys[] = { "data", "var", NULL };
        if ((st = need_str(m, "clip", err)) || (st = need_int(m, "index", 0, INT64_MAX, 0, NULL, err)))
            return st;
        return validate_tensor(m, wm_msg_is(m, "pred") ? pred_keys : latent_keys, err);
    }
    if (wm_msg_is(m, "clip")) {
        if ((st = need_str(m, "id", err)) ||
            (st = need_int(m, "width", 1, WM_MAX_DIM, 1, NULL, err)) ||
            (st = need_int(m, "height", 1, WM_MAX_DIM, 1, NULL, err)))
            return st;
        const msgpack_object *fps = wm_msg_get(m, "fps");
        if (fps && !(fps->type == MSGPACK_OBJECT_ARRAY && fps->via.array.size == 2 &&
                     fps->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                     fps->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER))
            return wm_error_set(err, WM_E_INPUT, "clip: \"fps\" must be [num, den] of non-negative integers");
        return WM_OK;
    }
    if (wm_msg_is(m, "end")) {
        if ((st = need_str(m, "clip", err))) return st;
        return need_int(m, "frames", 0, INT64_MAX, 0, NULL, err);
    }
    if (wm_msg_is(m, "score"))
        return need_str(m, "clip", err);
    if (wm_msg_is(m, "stream")) {
        int64_t v = 0;
        if ((st = need_int(m, "version", 1, INT64_MAX, 0, &v, err))) return st;
        if (v > WM_PROTOCOL_VERSION)
            return wm_error_set(err, WM_E_INPUT, "stream: protocol version %lld is newer than this wm (%d)",
                                (long long)v, WM_PROTOCOL_VERSION);
    }
    return WM_OK;
}

wm_status wm_proto_frame_get(const wm_msg *m, wm_frame_view *v, wm_error *err)
{
    int64_t w = 0, h = 0;
    wm_status st;
    memset(v, 0, sizeof *v);
    if ((st = need_str(m, "clip", err)) || (st = need_int(m, "index", 0, INT64_MAX, 0, &v->index, err)) ||
        (st = need_int(m, "width", 1, WM_MAX_DIM, 0, &w, err)) ||
        (st = need_int(m, "height", 1, WM_MAX_DIM, 0, &h, err)))
        return st;
    wm_msg_str(m, "clip", &v->clip, &v->clip_len);
    if (wm_msg_f64(m, "pts", &v->pts) != 0)
        return wm_error_set(err, WM_E_INPUT, "frame: missing number \"pts\"");
    const msgpack_object *f = wm_msg_get(m, "format");
    if (wm_obj_streq(f, "rgb24")) v->format = WM_PIX_RGB24;
    else if (wm_obj_streq(f, "gray8")) v->format = WM_PIX_GRAY8;
    else return wm_error_set(err, WM_E_INPUT, "frame: \"format\" must be \"rgb24\" or \"gray8\"");
    if (wm_msg_bin(m, "data", &v->data, &v->size) != 0)
        return wm_error_set(err, WM_E_INPUT, "frame: missing bin \"data\"");
    uint64_t need = (uint64_t)w * (uint64_t)h * (uint64_t)wm_pixfmt_channels(v->format);
    if ((uint64_t)v->size != need)
        return wm_error_set(err, WM_E_INPUT, "frame %.*s/%lld: data is %zu bytes, %lldx%lld %s needs %llu",
                            (int)v->clip_len, v->clip, (long long)v->index, v->size, (long long)w,
                            (long long)h, wm_pixfmt_name(v->format), (unsigned long long)need);
    v->width = (int)w;
    v->height = (int)h;
    return WM_OK;
}

void wm_proto_pack_stream(msgpack_packer *pk, const char *producer)
{
    msgpack_pack_map(pk, 3);
    wm_pack_kv_str(pk, "kind", "stream");
    wm_pack_kv_i64(pk, "version", WM_PROTOCOL_VERSION);
    wm_pack_kv_str(pk, "producer", producer);
}

void wm_proto_pack_clip(msgpack_packer *pk, const wm_clip_info *c, int n_extra)
{
    msgpack_pack_map(pk, 6 + (uint32_t)n_extra);
    wm_pack_kv_str(pk, "kind", "clip");
    wm_pack_kv_str(pk, "id", c->id);
    wm_pack_kv_str(pk, "source", c->source ? c->source : "");
    wm_pack_str(pk, "fps");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, c->fps_num);
    msgpack_pack_int(pk, c->fps_den);
    wm_pack_kv_i64(pk, "width", c->width);
    wm_pack_kv_i64(pk, "height", c->height);
}

void wm_proto_pack_frame(msgpack_packer *pk, const wm_frame_info *f, int n_extra)
{
    msgpack_pack_map(pk, 8 + (uint32_t)n_extra);
    wm_pack_kv_str(pk, "kind", "frame");
    wm_pack_kv_str(pk, "clip", f->clip);
    wm_pack_kv_i64(pk, "index", f->index);
    wm_pack_kv_f64(pk, "pts", f->pts);
    wm_pack_kv_i64(pk, "width", f->width);
    wm_pack_kv_i64(pk, "height", f->height);
    wm_pack_kv_str(pk, "format", wm_pixfmt_name(f->format));
}

void wm_proto_pack_data_header(msgpack_packer *pk, size_t n)
{
    wm_pack_str(pk, "data");
    msgpack_pack_bin(pk, n);
}

void wm_proto_pack_end(msgpack_packer *pk, const char *clip, int64_t frames)
{
    msgpack_pack_map(pk, 3);
    wm_pack_kv_str(pk, "kind", "end");
    wm_pack_kv_str(pk, "clip", clip);
    wm_pack_kv_i64(pk, "frames", frames);
}
