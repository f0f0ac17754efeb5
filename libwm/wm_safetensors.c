#include "wm_safetensors.h"

#include "wm_jsonparse.h"
#include "wm_proto.h"   /* wm_f16_to_f32 */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; size_t size; } dtypes[WM_ST_DTYPE_COUNT] = {
    [WM_ST_BOOL] = { "BOOL", 1 },       [WM_ST_U8] = { "U8", 1 },     [WM_ST_I8] = { "I8", 1 },
    [WM_ST_F8_E5M2] = { "F8_E5M2", 1 }, [WM_ST_F8_E4M3] = { "F8_E4M3", 1 },
    [WM_ST_I16] = { "I16", 2 },         [WM_ST_U16] = { "U16", 2 },   [WM_ST_F16] = { "F16", 2 },
    [WM_ST_BF16] = { "BF16", 2 },       [WM_ST_I32] = { "I32", 4 },   [WM_ST_U32] = { "U32", 4 },
    [WM_ST_F32] = { "F32", 4 },         [WM_ST_I64] = { "I64", 8 },   [WM_ST_U64] = { "U64", 8 },
    [WM_ST_F64] = { "F64", 8 },
};

const char *wm_safetensors_dtype_name(wm_safetensors_dtype t)
{
    return (unsigned)t < WM_ST_DTYPE_COUNT ? dtypes[t].name : "?";
}

size_t wm_safetensors_dtype_size(wm_safetensors_dtype t)
{
    return (unsigned)t < WM_ST_DTYPE_COUNT ? dtypes[t].size : 0;
}

typedef struct st_tensor_entry {
    wm_safetensors_tensor t;
    uint64_t begin, end;               /* data_offsets as read */
} st_tensor_entry;

struct wm_safetensors {
    uint8_t *map;
    size_t map_len;
    const uint8_t *data;               /* start of the data area */
    uint64_t data_len;
    wm_jnode *header;                  /* the parsed header: names and metadata point into it */
    const wm_jnode *meta;              /* its "__metadata__" object, or NULL */
    st_tensor_entry *tensors;
    size_t n_tensors;
};

/* ---- the header: JSON by wm_jsonparse, then the format's rules ---- */

static wm_status bad_header(wm_error *err, const char *path, const char *tensor, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static wm_status bad_header(wm_error *err, const char *path, const char *tensor, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (tensor) return wm_error_set(err, WM_E_INPUT, "%s: bad safetensors header: tensor \"%s\": %s", path, tensor, what);
    return wm_error_set(err, WM_E_INPUT, "%s: bad safetensors header: %s", path, what);
}

/* [u, u, ...] of at most max exact non-negative integers, *n of them: each
 * written without sign, fraction or exponent, and below 2^53, so that the
 * parser's double holds it exactly.  NULL, or what is wrong. */
static const char *header_uints(const wm_jnode *v, uint64_t *items, int max, int *n, char *why, size_t cap,
                                const char *key)
{
    if (v->type != WM_JARR) {
        snprintf(why, cap, "\"%s\": expected an array", key);
        return why;
    }
    if (v->len > (size_t)max) {
        snprintf(why, cap, "\"%s\" has more than %d items", key, max);
        return why;
    }
    for (size_t i = 0; i < v->len; i++) {
        const wm_jnode *x = &v->u.items[i];
        if (x->type != WM_JNUM || signbit(x->u.num)) return "expected a non-negative integer";
        if (!x->integer) return "expected an integer";
        if (x->u.num >= 9007199254740992.0) return "number too large";
        items[i] = (uint64_t)x->u.num;
    }
    *n = (int)v->len;
    return NULL;
}

/* One tensor entry; its keys are checked in the order they come. */
static wm_status header_tensor(const wm_jnode *v, st_tensor_entry *e, const char *path, wm_error *err)
{
    const char *name = e->t.name, *bad;
    char why[96];
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (v->type != WM_JOBJ) return bad_header(err, path, name, "expected an object");
    for (size_t i = 0; i < v->len; i++) {
        const char *key = wm_jsonparse_key(v, i)->u.str;
        const wm_jnode *x = wm_jsonparse_value(v, i);
        if (strcmp(key, "dtype") == 0) {
            have_dtype = 1;
            if (x->type != WM_JSTR) return bad_header(err, path, name, "\"dtype\": expected a string");
            int found = -1;
            for (int d = 0; d < WM_ST_DTYPE_COUNT; d++)
                if (strcmp(x->u.str, dtypes[d].name) == 0) found = d;
            if (found < 0)
                return wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\" has unknown dtype \"%.32s\"", path, name, x->u.str);
            e->t.dtype = (wm_safetensors_dtype)found;
        } else if (strcmp(key, "shape") == 0) {
            have_shape = 1;
            if ((bad = header_uints(x, e->t.shape, WM_SAFETENSORS_MAX_RANK, &e->t.rank, why, sizeof why, key)))
                return bad_header(err, path, name, "%s", bad);
        } else if (strcmp(key, "data_offsets") == 0) {
            uint64_t off[2];
            int n = 0;
            have_offsets = 1;
            if ((bad = header_uints(x, off, 2, &n, why, sizeof why, key))) return bad_header(err, path, name, "%s", bad);
            if (n != 2) return bad_header(err, path, name, "\"data_offsets\" must have two items");
            e->begin = off[0];
            e->end = off[1];
        } else {
            return bad_header(err, path, name, "unknown key \"%.64s\" in a tensor entry", key);
        }
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\" lacks %s", path, name,
                            !have_dtype ? "\"dtype\"" : !have_shape ? "\"shape\"" : "\"data_offsets\"");
    return WM_OK;
}

static wm_status parse_header(wm_safetensors *st, const char *hdr, size_t len, const char *path, wm_error *err)
{
    /* the JSON's rules (strict, one value per key, bounded) are wm_jsonparse's */
    if (!(st->header = wm_jsonparse_new(hdr, len, err)))
        return err->code == WM_E_INPUT ? wm_error_prefix(err, "%s: bad safetensors header", path)
                                       : wm_error_prefix(err, "%s", path);
    const wm_jnode *root = st->header;
    if (root->type != WM_JOBJ) return bad_header(err, path, NULL, "not a JSON object");   /* (its first byte was '{') */
    st->meta = wm_jsonparse_get(root, "__metadata__");
    if (st->meta) {
        if (st->meta->type != WM_JOBJ) return bad_header(err, path, NULL, "\"__metadata__\": expected an object");
        for (size_t i = 0; i < st->meta->len; i++)
            if (wm_jsonparse_value(st->meta, i)->type != WM_JSTR)
                return bad_header(err, path, NULL, "metadata values must be strings (\"%.64s\" is not)",
                                  wm_jsonparse_key(st->meta, i)->u.str);
    }
    size_t n = root->len - (st->meta != NULL);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    if (!st->tensors) return wm_error_set(err, WM_E_SYSTEM, "%s: out of memory", path);
    for (size_t i = 0; i < root->len; i++) {
        const wm_jnode *v = wm_jsonparse_value(root, i);
        if (v == st->meta) continue;
        st_tensor_entry *e = &st->tensors[st->n_tensors++];
        e->t.name = wm_jsonparse_key(root, i)->u.str;
        wm_status s = header_tensor(v, e, path, err);
        if (s != WM_OK) return s;
    }
    return WM_OK;
}

static int cmp_by_begin(const void *a, const void *b)
{
    const st_tensor_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Shapes against byte ranges, and the ranges against the data area. */
static wm_status validate_tensors(wm_safetensors *st, const char *path, wm_error *err)
{
    for (size_t i = 0; i < st->n_tensors; i++) {
        st_tensor_entry *e = &st->tensors[i];
        uint64_t numel = 1;
        for (int d = 0; d < e->t.rank; d++) {
            uint64_t n = e->t.shape[d];
            if (n && numel > (UINT64_C(1) << 62) / n)
                return wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\": shape product overflows", path, e->t.name);
            numel *= n;
        }
        uint64_t esize = dtypes[e->t.dtype].size;
        if (numel > (UINT64_C(1) << 62) / esize)
            return wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\": shape product overflows", path, e->t.name);
        if (e->end < e->begin)
            return wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\": data_offsets [%llu, %llu] end before they begin",
                                path, e->t.name, (unsigned long long)e->begin, (unsigned long long)e->end);
        if (e->end > st->data_len)
            return wm_error_set(err, WM_E_INPUT,
                                "%s: tensor \"%s\": data_offsets [%llu, %llu] lie outside the %llu data bytes of the file",
                                path, e->t.name, (unsigned long long)e->begin, (unsigned long long)e->end,
                                (unsigned long long)st->data_len);
        if (e->end - e->begin != numel * esize)
            return wm_error_set(err, WM_E_INPUT,
                                "%s: tensor \"%s\": shape and dtype %s need %llu bytes, data_offsets give %llu", path,
                                e->t.name, dtypes[e->t.dtype].name, (unsigned long long)(numel * esize),
                                (unsigned long long)(e->end - e->begin));
        e->t.numel = numel;
        e->t.nbytes = (size_t)(e->end - e->begin);
        e->t.data = st->data + e->begin;
    }
    /* the ranges must tile [0, data_len) exactly */
    st_tensor_entry *order = malloc((st->n_tensors ? st->n_tensors : 1) * sizeof *order);   /* sorted copies */
    if (!order) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (st->n_tensors) memcpy(order, st->tensors, st->n_tensors * sizeof *order);
    qsort(order, st->n_tensors, sizeof *order, cmp_by_begin);
    uint64_t at = 0;
    wm_status s = WM_OK;
    for (size_t i = 0; i < st->n_tensors && s == WM_OK; i++) {
        if (order[i].begin < at)
            s = wm_error_set(err, WM_E_INPUT, "%s: tensor \"%s\" overlaps another tensor", path, order[i].t.name);
        else if (order[i].begin > at)
            s = wm_error_set(err, WM_E_INPUT, "%s: %llu unused bytes before tensor \"%s\"", path,
                             (unsigned long long)(order[i].begin - at), order[i].t.name);
        at = order[i].end;
    }
    free(order);
    if (s == WM_OK && at != st->data_len)
        s = wm_error_set(err, WM_E_INPUT, "%s: the tensors cover %llu of the %llu data bytes", path,
                         (unsigned long long)at, (unsigned long long)st->data_len);
    return s;
}

wm_safetensors *wm_safetensors_open(const char *path, wm_error *err)
{
    wm_safetensors *st = calloc(1, sizeof *st);
    if (!st) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        wm_error_set(err, errno == ENOENT ? WM_E_INPUT : WM_E_SYSTEM, "%s: %s", path, strerror(errno));
        free(st);
        return NULL;
    }
    struct stat sb;
    wm_status s = WM_OK;
    if (fstat(fd, &sb) != 0) s = wm_error_set(err, WM_E_SYSTEM, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode)) s = wm_error_set(err, WM_E_INPUT, "%s: not a regular file", path);
    else if (sb.st_size < 8)
        s = wm_error_set(err, WM_E_INPUT, "%s: %lld bytes is too short for a safetensors file", path,
                         (long long)sb.st_size);
    if (s == WM_OK) {
        st->map_len = (size_t)sb.st_size;
        st->map = mmap(NULL, st->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (st->map == MAP_FAILED) {
            st->map = NULL;
            s = wm_error_set(err, WM_E_SYSTEM, "%s: mmap: %s", path, strerror(errno));
        }
    }
    close(fd);
    if (s == WM_OK) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | st->map[i];
        if (n > WM_SAFETENSORS_MAX_HEADER)
            s = wm_error_set(err, WM_E_INPUT, "%s: header length %llu is over the %llu-byte limit (not a safetensors file?)",
                             path, (unsigned long long)n, (unsigned long long)WM_SAFETENSORS_MAX_HEADER);
        else if (n > st->map_len - 8)
            s = wm_error_set(err, WM_E_INPUT, "%s: header length %llu runs past the end of the %zu-byte file (truncated?)",
                             path, (unsigned long long)n, st->map_len);
        else if (n < 2 || st->map[8] != '{')
            s = wm_error_set(err, WM_E_INPUT, "%s: the header is not a JSON object (not a safetensors file?)", path);
        else {
            st->data = st->map + 8 + n;
            st->data_len = st->map_len - 8 - n;
            s = parse_header(st, (const char *)st->map + 8, (size_t)n, path, err);
            if (s == WM_OK) s = validate_tensors(st, path, err);
        }
    }
    if (s != WM_OK) {
        wm_safetensors_close(&st);
        return NULL;
    }
    return st;
}

void wm_safetensors_close(wm_safetensors **stp)
{
    wm_safetensors *st = *stp;
    if (!st) return;
    if (st->map) munmap(st->map, st->map_len);
    free(st->tensors);
    wm_jsonparse_free(&st->header);
    free(st);
    *stp = NULL;
}

size_t wm_safetensors_count(const wm_safetensors *st) { return st->n_tensors; }

const wm_safetensors_tensor *wm_safetensors_at(const wm_safetensors *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i].t : NULL;
}

const wm_safetensors_tensor *wm_safetensors_find(const wm_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].t.name, name) == 0) return &st->tensors[i].t;
    return NULL;
}

const char *wm_safetensors_meta(const wm_safetensors *st, const char *key)
{
    const wm_jnode *v = wm_jsonparse_get(st->meta, key);
    return v ? v->u.str : NULL;
}

size_t wm_safetensors_meta_count(const wm_safetensors *st) { return st->meta ? st->meta->len : 0; }

void wm_safetensors_meta_at(const wm_safetensors *st, size_t i, const char **key, const char **value)
{
    int in = i < wm_safetensors_meta_count(st);
    *key = in ? wm_jsonparse_key(st->meta, i)->u.str : NULL;
    *value = in ? wm_jsonparse_value(st->meta, i)->u.str : NULL;
}

/* ---- half precision ---- */

uint16_t wm_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0));
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00);             /* rounds past 65504 */
    if (ax < 0x38800000u) {                                                /* subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ax >> 23, man = (ax & 0x7FFFFF) | 0x800000;
        int shift = 126 - (int)e;                                          /* 14..24 */
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t r = ax - 0x38000000u;                                         /* rebias 127 -> 15 */
    uint32_t half = r >> 13, rem = r & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)(sign | half);
}

float wm_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

wm_status wm_safetensors_read_f32(const wm_safetensors_tensor *t, float *out, uint64_t numel, wm_error *err)
{
    if (t->numel != numel)
        return wm_error_set(err, WM_E_INPUT, "tensor \"%s\" has %llu elements, %llu expected", t->name,
                            (unsigned long long)t->numel, (unsigned long long)numel);
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case WM_ST_F32:
        memcpy(out, p, (size_t)numel * 4);   /* little-endian host, as the format */
        return WM_OK;
    case WM_ST_F16:
    case WM_ST_BF16:
        for (uint64_t i = 0; i < numel; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = t->dtype == WM_ST_F16 ? wm_f16_to_f32(h) : wm_bf16_to_f32(h);
        }
        return WM_OK;
    default:
        return wm_error_set(err, WM_E_INPUT, "tensor \"%s\" has dtype %s; F32, F16 or BF16 expected", t->name,
                            dtypes[t->dtype].name);
    }
}

/* ---- writing ---- */

typedef struct text {
    char *s;
    size_t len, cap;
    int oom;
} text;

static void text_add(text *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void text_addf(text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_addf(text *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) text_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void text_json_str(text *b, const char *s)
{
    text_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { text_add(b, "\\", 1); text_add(b, s, 1); }
        else if (c < 0x20) text_addf(b, "\\u%04x", c);
        else text_add(b, s, 1);
    }
    text_add(b, "\"", 1);
}

wm_status wm_safetensors_write(const char *path, const wm_safetensors_entry *tensors, size_t n,
                               const char *const *meta, size_t n_meta, wm_error *err)
{
    text h = { 0 };
    uint64_t offset = 0;
    text_add(&h, "{", 1);
    if (n_meta) {
        text_add(&h, "\"__metadata__\":{", 16);
        for (size_t i = 0; i < n_meta; i++) {
            if (i) text_add(&h, ",", 1);
            text_json_str(&h, meta[2 * i]);
            text_add(&h, ":", 1);
            text_json_str(&h, meta[2 * i + 1]);
        }
        text_add(&h, "}", 1);
    }
    for (size_t i = 0; i < n; i++) {
        const wm_safetensors_entry *t = &tensors[i];
        if ((unsigned)t->dtype >= WM_ST_DTYPE_COUNT || t->rank < 0 || t->rank > WM_SAFETENSORS_MAX_RANK) {
            free(h.s);
            return wm_error_set(err, WM_E_SYSTEM, "%s: tensor \"%s\": bad dtype or rank", path, t->name);
        }
        uint64_t numel = 1;
        for (int d = 0; d < t->rank; d++) numel *= t->shape[d];
        uint64_t nbytes = numel * dtypes[t->dtype].size;
        if (n_meta || i) text_add(&h, ",", 1);
        text_json_str(&h, t->name);
        text_addf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[t->dtype].name);
        for (int d = 0; d < t->rank; d++) text_addf(&h, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        uint64_t end = offset + nbytes;
        text_addf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset, (unsigned long long)end);
        offset = end;
    }
    text_add(&h, "}", 1);
    while (!h.oom && (8 + h.len) % 8) text_add(&h, " ", 1);
    if (h.oom) { free(h.s); return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(h.s);
        return wm_error_set(err, WM_E_OUTPUT, "%s: path too long", path);
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(h.s);
        return wm_error_set(err, WM_E_OUTPUT, "%s: %s", tmp, strerror(errno));
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.s, 1, h.len, f) == h.len;
    free(h.s);
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < tensors[i].rank; d++) numel *= tensors[i].shape[d];
        size_t nbytes = (size_t)(numel * dtypes[tensors[i].dtype].size);
        ok = nbytes == 0 || fwrite(tensors[i].data, 1, nbytes, f) == nbytes;
    }
    int saved = errno;
    if (ok && fflush(f) != 0) { ok = 0; saved = errno; }
    if (ok && fsync(fileno(f)) != 0) { ok = 0; saved = errno; }
    if (fclose(f) != 0 && ok) { ok = 0; saved = errno; }
    if (ok && rename(tmp, path) != 0) { ok = 0; saved = errno; }
    if (!ok) {
        unlink(tmp);
        return wm_error_set(err, WM_E_OUTPUT, "%s: %s", path, strerror(saved));
    }
    return WM_OK;
}

/* ---- builder ---- */

struct wm_safetensors_builder {
    wm_safetensors_entry *e;
    size_t n, cap;
    char **meta;          /* key, value, ... */
    size_t n_meta, cap_meta;
};

wm_safetensors_builder *wm_safetensors_builder_new(wm_error *err)
{
    wm_safetensors_builder *b = calloc(1, sizeof *b);
    if (!b) wm_error_set(err, WM_E_SYSTEM, "out of memory");
    return b;
}

void wm_safetensors_builder_free(wm_safetensors_builder **bp)
{
    wm_safetensors_builder *b = *bp;
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) free((char *)b->e[i].name);
    free(b->e);
    for (size_t i = 0; i < 2 * b->n_meta; i++) free(b->meta[i]);
    free(b->meta);
    free(b);
    *bp = NULL;
}

static char *concat(const char *a, const char *b)
{
    size_t na = a ? strlen(a) : 0, nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) snprintf(s, na + nb + 1, "%s%s", na ? a : "", b);
    return s;
}

wm_status wm_safetensors_builder_add(wm_safetensors_builder *b, const char *prefix, const char *name,
                                     wm_safetensors_dtype dtype, int rank, const uint64_t *shape,
                                     const void *data, wm_error *err)
{
    if (rank < 0 || rank > WM_SAFETENSORS_MAX_RANK || (unsigned)dtype >= WM_ST_DTYPE_COUNT)
        return wm_error_set(err, WM_E_SYSTEM, "tensor \"%s\": bad rank or dtype", name);
    char *full = concat(prefix, name);
    if (!full) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    size_t at = b->n;
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->e[i].name, full) == 0) at = i;
    if (at == b->n) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? 2 * b->cap : 32;
            wm_safetensors_entry *e = realloc(b->e, cap * sizeof *e);
            if (!e) { free(full); return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }
            b->e = e;
            b->cap = cap;
        }
        b->n++;
    } else {
        free((char *)b->e[at].name);
    }
    wm_safetensors_entry *e = &b->e[at];
    memset(e, 0, sizeof *e);
    e->name = full;
    e->dtype = dtype;
    e->rank = rank;
    for (int d = 0; d < rank; d++) e->shape[d] = shape[d];
    e->data = data;
    return WM_OK;
}

wm_status wm_safetensors_builder_meta(wm_safetensors_builder *b, const char *key, const char *value,
                                      wm_error *err)
{
    char *v = concat(NULL, value);
    if (!v) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    for (size_t i = 0; i < b->n_meta; i++)
        if (strcmp(b->meta[2 * i], key) == 0) {
            free(b->meta[2 * i + 1]);
            b->meta[2 * i + 1] = v;
            return WM_OK;
        }
    char *k = concat(NULL, key);
    if (!k) { free(v); return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }
    if (b->n_meta == b->cap_meta) {
        size_t cap = b->cap_meta ? 2 * b->cap_meta : 16;
        char **m = realloc(b->meta, 2 * cap * sizeof *m);
        if (!m) { free(k); free(v); return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }
        b->meta = m;
        b->cap_meta = cap;
    }
    b->meta[2 * b->n_meta] = k;
    b->meta[2 * b->n_meta + 1] = v;
    b->n_meta++;
    return WM_OK;
}

wm_status wm_safetensors_builder_add_file(wm_safetensors_builder *b, const wm_safetensors *st,
                                          const char *prefix, wm_error *err)
{
    size_t np = prefix ? strlen(prefix) : 0;
    wm_status s = WM_OK;
    for (size_t i = 0; i < st->n_tensors && s == WM_OK; i++) {
        const wm_safetensors_tensor *t = &st->tensors[i].t;
        if (strncmp(t->name, prefix ? prefix : "", np) == 0)
            s = wm_safetensors_builder_add(b, NULL, t->name, t->dtype, t->rank, t->shape, t->data, err);
    }
    for (size_t i = 0; i < wm_safetensors_meta_count(st) && s == WM_OK; i++) {
        const char *key, *value;
        wm_safetensors_meta_at(st, i, &key, &value);
        if (strncmp(key, prefix ? prefix : "", np) == 0) s = wm_safetensors_builder_meta(b, key, value, err);
    }
    return s;
}

wm_status wm_safetensors_builder_write(const wm_safetensors_builder *b, const char *path, wm_error *err)
{
    return wm_safetensors_write(path, b->e, b->n, (const char *const *)b->meta, b->n_meta, err);
}
