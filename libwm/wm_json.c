#include "wm_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wm_strbuf_init(wm_strbuf *b) { memset(b, 0, sizeof *b); }

void wm_strbuf_free(wm_strbuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

void wm_strbuf_reset(wm_strbuf *b)
{
    b->len = 0;
    if (b->s) b->s[0] = '\0';
}

static int strbuf_reserve(wm_strbuf *b, size_t n)
{
    if (b->oom) return -1;
    if (b->len + n + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) { b->oom = 1; return -1; }
    b->s = s;
    b->cap = cap;
    return 0;
}

void wm_strbuf_add(wm_strbuf *b, const char *s, size_t n)
{
    if (strbuf_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void wm_strbuf_addf(wm_strbuf *b, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n >= 0 && strbuf_reserve(b, (size_t)n) == 0) {
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned min;
    unsigned cp;
    if (p[0] < 0x80) return 1;
    if ((p[0] & 0xe0) == 0xc0) { len = 2; cp = p[0] & 0x1f; min = 0x80; }
    else if ((p[0] & 0xf0) == 0xe0) { len = 3; cp = p[0] & 0x0f; min = 0x800; }
    else if ((p[0] & 0xf8) == 0xf0) { len = 4; cp = p[0] & 0x07; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

void wm_json_str(wm_strbuf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    wm_strbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') { char e[2] = { '\\', (char)c }; wm_strbuf_add(b, e, 2); i++; }
        else if (c == '\n') { wm_strbuf_add(b, "\\n", 2); i++; }
        else if (c == '\t') { wm_strbuf_add(b, "\\t", 2); i++; }
        else if (c == '\r') { wm_strbuf_add(b, "\\r", 2); i++; }
        else if (c < 0x20 || c == 0x7f) { wm_strbuf_addf(b, "\\u%04x", c); i++; }
        else {
            size_t l = utf8_len(p + i, n - i);
            if (l == 0) { wm_strbuf_add(b, "\xef\xbf\xbd", 3); i++; }
            else { wm_strbuf_add(b, s + i, l); i += l; }
        }
    }
    wm_strbuf_add(b, "\"", 1);
}

void wm_json_num(wm_strbuf *b, double v)
{
    if (!isfinite(v)) { wm_strbuf_add(b, "null", 4); return; }
    if (v == floor(v) && fabs(v) < 1e15) { wm_strbuf_addf(b, "%.0f", v); return; }
    wm_strbuf_addf(b, "%.10g", v);
}

void wm_json_base64(wm_strbuf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    wm_strbuf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n) v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        char q[4] = { tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                      i + 1 < n ? tab[(v >> 6) & 63] : '=', i + 2 < n ? tab[v & 63] : '=' };
        wm_strbuf_add(b, q, 4);
    }
    wm_strbuf_add(b, "\"", 1);
}

/* A non-string map key is written as a string holding its JSON, cut at
 * this many bytes: a key inside such a key is escaped once more at every
 * level, so uncut, a 200-byte message of map keys nested 40 deep would need
 * 2^40 bytes (found by fuzz_stream). */
#define JSON_KEY_MAX 256

static void json_obj(wm_strbuf *b, const msgpack_object *o, const char *key, size_t key_len,
                     wm_json_bin_fn bin_fn, void *ctx)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: wm_strbuf_add(b, "null", 4); break;
    case MSGPACK_OBJECT_BOOLEAN: wm_strbuf_addf(b, "%s", o->via.boolean ? "true" : "false"); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: wm_strbuf_addf(b, "%llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: wm_strbuf_addf(b, "%lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: wm_json_num(b, o->via.f64); break;
    case MSGPACK_OBJECT_STR: wm_json_str(b, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN:
        if (bin_fn) bin_fn(ctx, b, key, key_len, o);
        else wm_strbuf_addf(b, "{\"bytes\":%u}", o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        wm_strbuf_addf(b, "{\"ext\":%d,\"bytes\":%u}", o->via.ext.type, o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        wm_strbuf_add(b, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) wm_strbuf_add(b, ",", 1);
            json_obj(b, &o->via.array.ptr[i], NULL, 0, bin_fn, ctx);
        }
        wm_strbuf_add(b, "]", 1);
        break;
    case MSGPACK_OBJECT_MAP:
        wm_strbuf_add(b, "{", 1);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i) wm_strbuf_add(b, ",", 1);
            if (k->type == MSGPACK_OBJECT_STR) {
                wm_json_str(b, k->via.str.ptr, k->via.str.size);
            } else {   /* JSON keys are strings: write the key's JSON as a string */
                wm_strbuf kb;
                wm_strbuf_init(&kb);
                json_obj(&kb, k, NULL, 0, NULL, NULL);
                wm_json_str(b, kb.s ? kb.s : "", kb.len < JSON_KEY_MAX ? kb.len : JSON_KEY_MAX);
                wm_strbuf_free(&kb);
            }
            wm_strbuf_add(b, ":", 1);
            json_obj(b, &o->via.map.ptr[i].val,
                     k->type == MSGPACK_OBJECT_STR ? k->via.str.ptr : NULL,
                     k->type == MSGPACK_OBJECT_STR ? k->via.str.size : 0, bin_fn, ctx);
        }
        wm_strbuf_add(b, "}", 1);
        break;
    }
}

void wm_json_obj(wm_strbuf *b, const msgpack_object *o, wm_json_bin_fn bin_fn, void *ctx)
{
    json_obj(b, o, NULL, 0, bin_fn, ctx);
}
