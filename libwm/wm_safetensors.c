#include "wm_safetensors.h"

#include "wm_proto.h"   /* wm_f16_to_f32 */

#include <errno.h>
#include <fcntl.h>
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
    const char *path_copy;
    uint8_t *map;
    size_t map_len;
    const uint8_t *data;               /* start of the data area */
    uint64_t data_len;
    st_tensor_entry *tensors;
    size_t n_tensors, cap_tensors;
    char **meta;                       /* key, value, key, value, ... */
    size_t n_meta, cap_meta;
};

/* ---- a strict JSON reader for exactly the safetensors header ---- */

typedef struct json_in {
    const char *p, *start, *end;
    const char *path;
    wm_error *err;
} json_in;

static wm_status json_fail(json_in *j, const char *what)
{
    return wm_error_set(j->err, WM_E_INPUT, "%s: bad safetensors header: %s at byte %ld", j->path, what,
                        (long)(j->p - j->start) + 8);
}

static void json_ws(json_in *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static wm_status json_expect(json_in *j, char c)
{
    json_ws(j);
    if (j->p >= j->end || *j->p != c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        return json_fail(j, what);
    }
    j->p++;
    return WM_OK;
}

/* 1 and consumes c when it comes next (after whitespace). */
static int json_accept(json_in *j, char c)
{
    json_ws(j);
    if (j->p < j->end && *j->p == c) { j->p++; return 1; }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (0: invalid). */
static size_t utf8_valid(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { n = 2; min = 0x80; c &= 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; min = 0x800; c &= 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; min = 0x10000; c &= 0x07; }
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    return n;
}

/* Reads a JSON string into a new NUL-terminated buffer (*out, caller
 * frees).  Escapes are decoded; \u0000, raw control characters and
 * invalid UTF-8 are refused (names are C strings). */
static wm_status json_string(json_in *j, char **out)
{
    *out = NULL;
    json_ws(j);
    if (j->p >= j->end || *j->p != '"') return json_fail(j, "expected a string");
    j->p++;
    /* the decoded string is never longer than its encoding */
    const char *q = j->p;
    while (q < j->end && *q != '"') q += (*q == '\\' && q + 1 < j->end) ? 2 : 1;
    if (q >= j->end) return json_fail(j, "unterminated string");
    char *s = malloc((size_t)(q - j->p) + 1), *o = s;
    if (!s) return wm_error_set(j->err, WM_E_SYSTEM, "out of memory");
    for (;;) {
        if (j->p >= j->end) { free(s); return json_fail(j, "unterminated string"); }
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') { j->p++; break; }
        if (c < 0x20) { free(s); return json_fail(j, "control character in a string"); }
        if (c != '\\') {
            size_t n = utf8_valid((const unsigned char *)j->p, (const unsigned char *)j->end);
            if (!n) { free(s); return json_fail(j, "invalid UTF-8 in a string"); }
            memcpy(o, j->p, n);
            o += n;
            j->p += n;
            continue;
        }
        if (j->p + 1 >= j->end) { free(s); return json_fail(j, "unterminated string"); }
        char e = j->p[1];
        j->p += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (read_hex4(j->p, j->end, &cp)) { free(s); return json_fail(j, "bad \\u escape"); }
            j->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || read_hex4(j->p + 2, j->end, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    free(s);
                    return json_fail(j, "unpaired surrogate in a string");
                }
                j->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(s);
                return json_fail(j, "unpaired surrogate in a string");
            }
            if (cp == 0) { free(s); return json_fail(j, "NUL character in a string"); }
            /* an escape is 6 or 12 bytes and decodes to at most 4 */
            o += utf8_put(o, cp);
            break;
        }
        default: free(s); return json_fail(j, "bad escape in a string");
        }
    }
    *o = '\0';
    *out = s;
    return WM_OK;
}

/* A non-negative integer without sign, fraction or exponent, below 2^62. */
static wm_status json_uint(json_in *j, uint64_t *out)
{
    json_ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return json_fail(j, "expected a non-negative integer");
    if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
        return json_fail(j, "leading zero in a number");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        v = v * 10 + (uint64_t)(*j->p - '0');
        if (v >= (UINT64_C(1) << 62)) return json_fail(j, "number too large");
        j->p++;
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return json_fail(j, "expected an integer");
    *out = v;
    return WM_OK;
}

/* [u, u, ...] with at most max items; *n receives the count. */
static wm_status json_uint_array(json_in *j, uint64_t *items, int max, int *n, const char *what)
{
    wm_status st;
    *n = 0;
    if ((st = json_expect(j, '['))) return st;
    if (json_accept(j, ']')) return WM_OK;
    do {
        if (*n >= max) {
            char msg[64];
            snprintf(msg, sizeof msg, "\"%s\" has more than %d items", what, max);
            return json_fail(j, msg);
        }
        if ((st = json_uint(j, &items[(*n)++]))) return st;
    } while (json_accept(j, ','));
    return json_expect(j, ']');
}

static wm_status st_add_meta(wm_safetensors *st, char *key, char *val, json_in *j)
{
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) {
            free(key);
            free(val);
            return json_fail(j, "duplicate metadata key");
        }
    if (st->n_meta == st->cap_meta) {
        size_t cap = st->cap_meta ? 2 * st->cap_meta : 8;
        char **m = realloc(st->meta, 2 * cap * sizeof *m);
        if (!m) { free(key); free(val); return wm_error_set(j->err, WM_E_SYSTEM, "out of memory"); }
        st->meta = m;
        st->cap_meta = cap;
    }
    st->meta[2 * st->n_meta] = key;
    st->meta[2 * st->n_meta + 1] = val;
    st->n_meta++;
    return WM_OK;
}

static wm_status json_metadata(json_in *j, wm_safetensors *st)
{
    wm_status s;
    if ((s = json_expect(j, '{'))) return s;
    if (json_accept(j, '}')) return WM_OK;
    do {
        char *key, *val;
        if ((s = json_string(j, &key))) return s;
        if ((s = json_expect(j, ':'))) { free(key); return s; }
        json_ws(j);
        if (j->p < j->end && *j->p != '"') { free(key); return json_fail(j, "metadata values must be strings"); }
        if ((s = json_string(j, &val))) { free(key); return s; }
        if ((s = st_add_meta(st, key, val, j))) return s;
    } while (json_accept(j, ','));
    return json_expect(j, '}');
}

static wm_status json_tensor(json_in *j, st_tensor_entry *e)
{
    wm_status s;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if ((s = json_expect(j, '{'))) return s;
    if (!json_accept(j, '}')) {
        do {
            char *key;
            if ((s = json_string(j, &key))) return s;
            if ((s = json_expect(j, ':'))) { free(key); return s; }
            if (strcmp(key, "dtype") == 0 && !have_dtype) {
                char *name;
                have_dtype = 1;
                if ((s = json_string(j, &name))) { free(key); return s; }
                int found = -1;
                for (int i = 0; i < WM_ST_DTYPE_COUNT; i++)
                    if (strcmp(name, dtypes[i].name) == 0) found = i;
                if (found < 0) {
                    wm_error_set(j->err, WM_E_INPUT, "%s: tensor \"%s\" has unknown dtype \"%.32s\"", j->path,
                                 e->t.name, name);
                    free(name);
                    free(key);
                    return WM_E_INPUT;
                }
                free(name);
                e->t.dtype = (wm_safetensors_dtype)found;
            } else if (strcmp(key, "shape") == 0 && !have_shape) {
                have_shape = 1;
                if ((s = json_uint_array(j, e->t.shape, WM_SAFETENSORS_MAX_RANK, &e->t.rank, "shape"))) {
                    free(key);
                    return s;
                }
            } else if (strcmp(key, "data_offsets") == 0 && !have_offsets) {
                uint64_t off[2];
                int n;
                have_offsets = 1;
                if ((s = json_uint_array(j, off, 2, &n, "data_offsets"))) { free(key); return s; }
                if (n != 2) { free(key); return json_fail(j, "\"data_offsets\" must have two items"); }
                e->begin = off[0];
                e->end = off[1];
            } else {
                int dup = !strcmp(key, "dtype") || !strcmp(key, "shape") || !strcmp(key, "data_offsets");
                free(key);
                return json_fail(j, dup ? "duplicate key in a tensor entry" : "unknown key in a tensor entry");
            }
            free(key);
        } while (json_accept(j, ','));
        if ((s = json_expect(j, '}'))) return s;
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return wm_error_set(j->err, WM_E_INPUT, "%s: tensor \"%s\" lacks %s", j->path, e->t.name,
                            !have_dtype ? "\"dtype\"" : !have_shape ? "\"shape\"" : "\"data_offsets\"");
    return WM_OK;
}

static wm_status parse_header(wm_safetensors *st, const char *hdr, size_t len, const char *path, wm_error *err)
{
    json_in j = { hdr, hdr, hdr + len, path, err };
    wm_status s;
    int have_meta = 0;
    if ((s = json_expect(&j, '{'))) return s;
    if (!json_accept(&j, '}')) {
        do {
            char *key;
            if ((s = json_string(&j, &key))) return s;
            if ((s = json_expect(&j, ':'))) { free(key); return s; }
            if (strcmp(key, "__metadata__") == 0) {
                free(key);
                if (have_meta) return json_fail(&j, "duplicate \"__metadata__\"");
                have_meta = 1;
                if ((s = json_metadata(&j, st))) return s;
                continue;
            }
            for (size_t i = 0; i < st->n_tensors; i++)
                if (strcmp(st->tensors[i].t.name, key) == 0) {
                    free(key);
                    return json_fail(&j, "duplicate tensor name");
                }
            if (st->n_tensors == st->cap_tensors) {
                size_t cap = st->cap_tensors ? 2 * st->cap_tensors : 16;
                st_tensor_entry *t = realloc(st->tensors, cap * sizeof *t);
                if (!t) { free(key); return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }
                st->tensors = t;
                st->cap_tensors = cap;
            }
            st_tensor_entry *e = &st->tensors[st->n_tensors++];
            memset(e, 0, sizeof *e);
            e->t.name = key;
            if ((s = json_tensor(&j, e))) return s;
        } while (json_accept(&j, ','));
        if ((s = json_expect(&j, '}'))) return s;
    }
    json_ws(&j);
    if (j.p != j.end) return json_fail(&j, "trailing bytes after the header object");
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
    for (size_t i = 0; i < st->n_tensors; i++) free((char *)st->tensors[i].t.name);
    free(st->tensors);
    for (size_t i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
    free(st->meta);
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
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

size_t wm_safetensors_meta_count(const wm_safetensors *st) { return st->n_meta; }

void wm_safetensors_meta_at(const wm_safetensors *st, size_t i, const char **key, const char **value)
{
    *key = i < st->n_meta ? st->meta[2 * i] : NULL;
    *value = i < st->n_meta ? st->meta[2 * i + 1] : NULL;
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
    for (size_t i = 0; i < st->n_meta && s == WM_OK; i++)
        if (strncmp(st->meta[2 * i], prefix ? prefix : "", np) == 0)
            s = wm_safetensors_builder_meta(b, st->meta[2 * i], st->meta[2 * i + 1], err);
    return s;
}

wm_status wm_safetensors_builder_write(const wm_safetensors_builder *b, const char *path, wm_error *err)
{
    return wm_safetensors_write(path, b->e, b->n, (const char *const *)b->meta, b->n_meta, err);
}
