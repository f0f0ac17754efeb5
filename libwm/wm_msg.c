#include "wm_msg.h"

#include <string.h>

static uint64_t be_read(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Header of one msgpack object: its header length, the payload bytes that
 * follow the header, and how many child objects follow the payload. */
typedef struct {
    size_t head, payload;
    uint64_t children;
} mp_head;

/* Returns 1 when the head needs more bytes than avail, 0 on success,
 * -1 for the one byte msgpack never uses (0xc1). */
static int mp_head_read(const uint8_t *p, size_t avail, mp_head *h)
{
    uint8_t t = p[0];
    h->head = 1; h->payload = 0; h->children = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 0;                                  /* fixint, nil, bool */
    if ((t & 0xf0) == 0x80) { h->children = 2u * (t & 0x0f); return 0; }
    if ((t & 0xf0) == 0x90) { h->children = t & 0x0f; return 0; }
    if ((t & 0xe0) == 0xa0) { h->payload = t & 0x1f; return 0; }
    int lenbytes = 0;   /* size of a length field that follows the type */
    switch (t) {
    case 0xcc: case 0xd0: h->head = 2; return 0;
    case 0xcd: case 0xd1: h->head = 3; return 0;
    case 0xca: case 0xce: case 0xd2: h->head = 5; return 0;
    case 0xcb: case 0xcf: case 0xd3: h->head = 9; return 0;
    case 0xd4: h->head = 2; h->payload = 1; return 0;     /* fixext */
    case 0xd5: h->head = 2; h->payload = 2; return 0;
    case 0xd6: h->head = 2; h->payload = 4; return 0;
    case 0xd7: h->head = 2; h->payload = 8; return 0;
    case 0xd8: h->head = 2; h->payload = 16; return 0;
    case 0xc4: case 0xd9: lenbytes = 1; break;            /* bin8, str8 */
    case 0xc5: case 0xda: case 0xdc: case 0xde: lenbytes = 2; break;
    case 0xc6: case 0xdb: case 0xdd: case 0xdf: lenbytes = 4; break;
    case 0xc7: lenbytes = 1; break;                       /* ext8/16/32 */
    case 0xc8: lenbytes = 2; break;
    case 0xc9: lenbytes = 4; break;
    default: return -1;
    }
    int ext = (t >= 0xc7 && t <= 0xc9);
    h->head = 1 + (size_t)lenbytes + (size_t)ext;
    if (avail < 1 + (size_t)lenbytes)
        return 1;
    uint64_t n = be_read(p + 1, lenbytes);
    if (t == 0xdc || t == 0xdd) h->children = n;
    else if (t == 0xde || t == 0xdf) h->children = 2 * n;
    else h->payload = n;
    return 0;
}

int wm_msgpack_measure(const uint8_t *buf, size_t len, size_t max_size,
                       size_t *size, const char **why)
{
    size_t pos = 0;
    uint64_t pending = 1;   /* objects still to skip */
    while (pending > 0) {
        if (pos >= len) { *size = pos + 1; return WM_MEASURE_MORE; }
        mp_head h;
        int r = mp_head_read(buf + pos, len - pos, &h);
        if (r < 0) { *why = "invalid msgpack type byte 0xc1"; return WM_MEASURE_BAD; }
        if (r > 0 || pos + h.head > len) { *size = pos + h.head; return WM_MEASURE_MORE; }
        pending--;
        /* every child takes at least one byte: bounds the count by size */
        if (h.payload > max_size || h.children > max_size ||
            pos + h.head + h.payload > max_size ||
            pending + h.children > max_size - (pos + h.head + h.payload)) {
            *why = "message larger than the size cap";
            return WM_MEASURE_BAD;
        }
        pos += h.head + h.payload;
        pending += h.children;
    }
    if (pos > len) { *size = pos; return WM_MEASURE_MORE; }
    *size = pos;
    return WM_MEASURE_COMPLETE;
}

wm_status wm_msg_parse(wm_msg *msg, const uint8_t *raw, size_t len,
                       msgpack_zone *zone, wm_error *err)
{
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack((const char *)raw, len, &off, zone, &msg->root);
    if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES)
        return wm_error_set(err, WM_E_INPUT, "undecodable msgpack (nesting too deep or corrupt)");
    if (msg->root.type != MSGPACK_OBJECT_MAP)
        return wm_error_set(err, WM_E_INPUT, "message is not a msgpack map");
    const msgpack_object *k = wm_obj_get(&msg->root, "kind");
    if (!k || k->type != MSGPACK_OBJECT_STR || k->via.str.size == 0)
        return wm_error_set(err, WM_E_INPUT, "message has no string \"kind\"");
    msg->raw = raw;
    msg->len = len;
    msg->kind = k->via.str.ptr;
    msg->kind_len = k->via.str.size;
    return WM_OK;
}

int wm_msg_is(const wm_msg *msg, const char *kind)
{
    size_t n = strlen(kind);
    return msg->kind_len == n && memcmp(msg->kind, kind, n) == 0;
}

int wm_obj_streq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

const msgpack_object *wm_obj_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (wm_obj_streq(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

int wm_obj_i64(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *o = wm_obj_get(map, key);
    if (!o) return -1;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) return -1;
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) { *out = o->via.i64; return 0; }
    return -1;
}

int wm_obj_f64(const msgpack_object *map, const char *key, double *out)
{
    const msgpack_object *o = wm_obj_get(map, key);
    if (!o) return -1;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    default: return -1;
    }
}

int wm_obj_str(const msgpack_object *map, const char *key, const char **s, size_t *n)
{
    const msgpack_object *o = wm_obj_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_STR) return -1;
    *s = o->via.str.ptr;
    *n = o->via.str.size;
    return 0;
}

int wm_obj_bin(const msgpack_object *map, const char *key, const uint8_t **p, size_t *n)
{
    const msgpack_object *o = wm_obj_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_BIN) return -1;
    *p = (const uint8_t *)o->via.bin.ptr;
    *n = o->via.bin.size;
    return 0;
}

int wm_obj_strcpy(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const char *s;
    size_t n;
    if (cap == 0 || wm_obj_str(map, key, &s, &n) != 0) return -1;
    if (n >= cap) n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

void wm_msgbuf_init(wm_msgbuf *mb)
{
    msgpack_sbuffer_init(&mb->sbuf);
    msgpack_packer_init(&mb->pk, &mb->sbuf, msgpack_sbuffer_write);
}

void wm_msgbuf_reset(wm_msgbuf *mb) { mb->sbuf.size = 0; }

void wm_msgbuf_destroy(wm_msgbuf *mb) { msgpack_sbuffer_destroy(&mb->sbuf); }

void wm_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void wm_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    wm_pack_str(pk, key);
    wm_pack_str(pk, val);
}

void wm_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t val)
{
    wm_pack_str(pk, key);
    msgpack_pack_int64(pk, val);
}

void wm_pack_kv_f64(msgpack_packer *pk, const char *key, double val)
{
    wm_pack_str(pk, key);
    msgpack_pack_double(pk, val);
}

void wm_pack_kv_bool(msgpack_packer *pk, const char *key, int val)
{
    wm_pack_str(pk, key);
    if (val) msgpack_pack_true(pk); else msgpack_pack_false(pk);
}

void wm_pack_obj(msgpack_packer *pk, const msgpack_object *o)
{
    msgpack_pack_object(pk, *o);
}

static int key_in(const msgpack_object *k, const char *const *skip)
{
    for (int i = 0; skip[i]; i++)
        if (wm_obj_streq(k, skip[i])) return 1;
    return 0;
}

int wm_obj_count_except(const msgpack_object *map, const char *const *skip)
{
    int n = 0;
    for (uint32_t i = 0; i < map->via.map.size; i++) n += !key_in(&map->via.map.ptr[i].key, skip);
    return n;
}

void wm_pack_except(msgpack_packer *pk, const msgpack_object *map, const char *const *skip)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (key_in(&kv->key, skip)) continue;
        wm_pack_obj(pk, &kv->key);
        wm_pack_obj(pk, &kv->val);
    }
}
