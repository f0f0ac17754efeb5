#include "wm_latent.h"

#include <math.h>
#include <string.h>

#include "wm_proto.h"

#define LATENT_MAX_SIDE 16384

wm_status wm_latent_get(const wm_msg *m, int want_C, wm_latent_view *v, wm_error *err)
{
    memset(v, 0, sizeof *v);
    wm_msg_str(m, "clip", &v->clip, &v->clip_len);
    wm_msg_i64(m, "index", &v->index);
    const msgpack_object *shape = wm_msg_get(m, "shape"), *im = wm_msg_get(m, "imagined");
    const msgpack_object *d = shape->via.array.ptr;
    if (shape->via.array.size != 3 || d[0].via.u64 > LATENT_MAX_SIDE || d[1].via.u64 > LATENT_MAX_SIDE ||
        (want_C && d[2].via.u64 != (uint64_t)want_C) || d[2].via.u64 > 4096) {
        if (want_C)
            return wm_error_set(err, WM_E_INPUT,
                                "clip %.*s latent %lld: shape must be [h, w, %d] for this model (a latent from "
                                "another tokenizer?)", (int)v->clip_len, v->clip, (long long)v->index, want_C);
        return wm_error_set(err, WM_E_INPUT, "clip %.*s latent %lld: shape must be [h, w, C]", (int)v->clip_len,
                            v->clip, (long long)v->index);
    }
    v->h = (int)d[0].via.u64;
    v->w = (int)d[1].via.u64;
    v->C = (int)d[2].via.u64;
    v->f16 = wm_obj_streq(wm_msg_get(m, "dtype"), "f16");
    size_t n;
    wm_msg_bin(m, "data", &v->data, &n);
    v->imagined = im && im->type == MSGPACK_OBJECT_BOOLEAN && im->via.boolean;
    return WM_OK;
}

size_t wm_latent_to_f32(const wm_latent_view *v, float *out)
{
    const size_t count = (size_t)v->h * v->w * v->C;
    if (v->f16)
        for (size_t i = 0; i < count; i++)
            out[i] = wm_f16_to_f32((uint16_t)(v->data[2 * i] | v->data[2 * i + 1] << 8));
    else
        memcpy(out, v->data, count * sizeof(float));   /* little-endian f32, as the protocol */
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) bad += !isfinite(out[i]);
    return bad;
}

static void pack_head(msgpack_packer *pk, const char *kind, const char *clip, size_t clip_len, int64_t index,
                      int h, int w, int C)
{
    wm_pack_kv_str(pk, "kind", kind);
    wm_pack_str(pk, "clip");
    msgpack_pack_str(pk, clip_len);
    msgpack_pack_str_body(pk, clip, clip_len);
    wm_pack_kv_i64(pk, "index", index);
    wm_pack_str(pk, "shape");
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, h);
    msgpack_pack_int(pk, w);
    msgpack_pack_int(pk, C);
    wm_pack_kv_str(pk, "dtype", "f32");
}

static void pack_bin(msgpack_packer *pk, const char *key, const float *p, size_t n)
{
    wm_pack_str(pk, key);
    msgpack_pack_bin(pk, n * sizeof(float));
    msgpack_pack_bin_body(pk, p, n * sizeof(float));
}

void wm_latent_pack_pred(msgpack_packer *pk, const char *clip, size_t clip_len, int64_t index, int h, int w, int C,
                         const float *mean, const float *var, const float *prior, const float *prior_var)
{
    const size_t n = (size_t)h * w * C;
    msgpack_pack_map(pk, 6 + (var != NULL) + 2 * (prior != NULL));
    pack_head(pk, "pred", clip, clip_len, index, h, w, C);
    pack_bin(pk, "data", mean, n);
    if (var) pack_bin(pk, "var", var, n);
    if (prior) {
        pack_bin(pk, "prior", prior, n);
        pack_bin(pk, "prior_var", prior_var, (size_t)C);
    }
}

void wm_latent_pack_imagined(msgpack_packer *pk, const char *clip, size_t clip_len, int64_t index, double pts, int h,
                             int w, int C, const float *data)
{
    msgpack_pack_map(pk, pts >= 0 ? 8 : 7);
    pack_head(pk, "latent", clip, clip_len, index, h, w, C);
    if (pts >= 0) wm_pack_kv_f64(pk, "pts", pts);
    wm_pack_kv_bool(pk, "imagined", 1);
    pack_bin(pk, "data", data, (size_t)h * w * C);
}
