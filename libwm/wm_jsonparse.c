#include "wm_jsonparse.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *start, *p, *end;
    size_t nodes;
    wm_error *err;
} parser;

static wm_status parse_value(parser *ps, wm_jnode *out, int depth);

static wm_status fail(parser *ps, const unsigned char *at, const char *what)
{
    return wm_error_set(ps->err, WM_E_INPUT, "column %zu: %s", (size_t)(at - ps->start) + 1, what);
}

static wm_status nomem(parser *ps) { return wm_error_set(ps->err, WM_E_SYSTEM, "out of memory parsing JSON"); }

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static void node_clear(wm_jnode *v)
{
    if (v->type == WM_JSTR) {
        free(v->u.str);
    } else if (v->type == WM_JARR || v->type == WM_JOBJ) {
        size_t n = v->type == WM_JOBJ ? 2 * v->len : v->len;
        for (size_t i = 0; i < n; i++) node_clear(&v->u.items[i]);
        free(v->u.items);
    }
    v->type = WM_JNULL;
    v->len = 0;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp, min;
    if (p[0] < 0x80) return 1;
    if ((p[0] & 0xe0) == 0xc0) { len = 2; cp = p[0] & 0x1fu; min = 0x80; }
    else if ((p[0] & 0xf0) == 0xe0) { len = 3; cp = p[0] & 0x0fu; min = 0x800; }
    else if ((p[0] & 0xf8) == 0xf0) { len = 4; cp = p[0] & 0x07u; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xc0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string at ps->p (the opening quote).  The decoded text is never longer
 * than the source, so one allocation of the source length suffices. */
static wm_status parse_string(parser *ps, wm_jnode *out)
{
    const unsigned char *q = ps->p + 1;
    const unsigned char *close = q;
    while (close < ps->end && *close != '"') close += (*close == '\\' && close + 1 < ps->end) ? 2 : 1;
    if (close >= ps->end) return fail(ps, ps->p, "unterminated string");
    unsigned char *s = malloc((size_t)(close - q) + 1), *o = s;
    if (!s) return nomem(ps);
    while (q < close) {
        unsigned c = *q;
        if (c < 0x20) { free(s); return fail(ps, q, "control character in a string (escape it)"); }
        if (c != '\\') {
            size_t l = utf8_len(q, (size_t)(close - q));
            if (!l) { free(s); return fail(ps, q, "invalid UTF-8 in a string"); }
            memcpy(o, q, l);
            o += l;
            q += l;
            continue;
        }
        const unsigned char *esc = q;
        q++;
        switch (*q++) {
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
            if (hex4(q, close, &cp)) { free(s); return fail(ps, esc, "bad \\u escape"); }
            q += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff) { free(s); return fail(ps, esc, "lone low surrogate in a string"); }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (close - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, close, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    free(s);
                    return fail(ps, esc, "lone high surrogate in a string");
                }
                q += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) { free(s); return fail(ps, esc, "\\u0000 in a string"); }
            o += utf8_put(o, cp);
            break;
        }
        default: free(s); return fail(ps, esc, "bad escape in a string");
        }
    }
    *o = '\0';
    out->type = WM_JSTR;
    out->len = (size_t)(o - s);
    out->u.str = (char *)s;
    ps->p = close + 1;
    return WM_OK;
}

static int is_digit(const unsigned char *p, const unsigned char *end) { return p < end && *p >= '0' && *p <= '9'; }

static wm_status parse_number(parser *ps, wm_jnode *out)
{
    const unsigned char *p = ps->p, *end = ps->end, *start = p;
    if (p < end && *p == '-') p++;
    if (!is_digit(p, end)) return fail(ps, start, "expected a value");
    if (*p == '0' && is_digit(p + 1, end)) return fail(ps, start, "leading zero in a number");
    while (is_digit(p, end)) p++;
    int integer = !(p < end && (*p == '.' || *p == 'e' || *p == 'E'));
    if (p < end && *p == '.') {
        p++;
        if (!is_digit(p, end)) return fail(ps, start, "expected digits after the decimal point");
        while (is_digit(p, end)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (!is_digit(p, end)) return fail(ps, start, "expected digits in the exponent");
        while (is_digit(p, end)) p++;
    }
    char buf[400];
    size_t n = (size_t)(p - start);
    if (n >= sizeof buf) return fail(ps, start, "number too long");
    memcpy(buf, start, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v)) return fail(ps, start, "number out of range");
    out->type = WM_JNUM;
    out->integer = integer;
    out->u.num = v;
    ps->p = p;
    return WM_OK;
}

static int literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return 0;
    ps->p += n;
    return 1;
}

static int key_cmp(const void *a, const void *b)
{
    const wm_jnode *x = *(const wm_jnode *const *)a, *y = *(const wm_jnode *const *)b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->u.str, y->u.str, x->len);
}

/* The first duplicate key of an object, or NULL.  Sorting keeps large
 * objects from costing quadratic time. */
static const wm_jnode *duplicate_key(const wm_jnode *obj, int *oom)
{
    *oom = 0;
    if (obj->len < 2) return NULL;
    const wm_jnode **keys = malloc(obj->len * sizeof(const wm_jnode *));
    if (!keys) { *oom = 1; return NULL; }
    for (size_t i = 0; i < obj->len; i++) keys[i] = &obj->u.items[2 * i];
    qsort(keys, obj->len, sizeof(const wm_jnode *), key_cmp);
    const wm_jnode *dup = NULL;
    for (size_t i = 1; i < obj->len && !dup; i++)
        if (key_cmp(&keys[i - 1], &keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
}

/* An array or object at ps->p.  Children go into a buffer that doubles,
 * then is trimmed to fit. */
static wm_status parse_container(parser *ps, wm_jnode *out, int depth)
{
    int is_obj = *ps->p == '{';
    const unsigned char *open = ps->p;
    unsigned char close = is_obj ? '}' : ']';
    if (depth >= WM_JSONPARSE_MAX_DEPTH) return fail(ps, open, "nested deeper than 64 levels");
    ps->p++;
    out->type = is_obj ? WM_JOBJ : WM_JARR;
    out->len = 0;
    out->u.items = NULL;
    size_t used = 0, cap = 0;
    wm_status st = WM_OK;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return WM_OK; }
    for (;;) {
        size_t need = used + (is_obj ? 2 : 1);
        if (need > cap) {
            size_t ncap = cap ? 2 * cap : 8;
            wm_jnode *items = realloc(out->u.items, ncap * sizeof *items);
            if (!items) { st = nomem(ps); break; }
            memset(items + cap, 0, (ncap - cap) * sizeof *items);   /* every slot a valid null */
            out->u.items = items;
            cap = ncap;
        }
        skip_ws(ps);
        if (is_obj) {
            if (ps->p >= ps->end || *ps->p != '"') { st = fail(ps, ps->p, "expected a string key"); break; }
            if ((st = parse_string(ps, &out->u.items[used]))) break;
            used++;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') { st = fail(ps, ps->p, "expected ':' after a key"); break; }
            ps->p++;
        }
        st = parse_value(ps, &out->u.items[used], depth + 1);
        used++;    /* a failed value is left cleared, so counting it is safe */
        if (st) break;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == close) { ps->p++; break; }
        st = fail(ps, ps->p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    out->len = is_obj ? used / 2 : used;
    if (st == WM_OK && is_obj) {
        int oom;
        const wm_jnode *dup = duplicate_key(out, &oom);
        if (oom) st = nomem(ps);
        else if (dup) {
            char msg[160];
            snprintf(msg, sizeof msg, "duplicate key \"%.100s\"", dup->u.str);
            st = fail(ps, open, msg);
        }
    }
    if (st) {
        for (size_t i = 0; i < used; i++) node_clear(&out->u.items[i]);
        free(out->u.items);
        out->type = WM_JNULL;
        out->len = 0;
        return st;
    }
    if (used < cap && used > 0) {
        wm_jnode *items = realloc(out->u.items, used * sizeof *items);
        if (items) out->u.items = items;
    }
    return WM_OK;
}

static wm_status parse_value(parser *ps, wm_jnode *out, int depth)
{
    skip_ws(ps);
    memset(out, 0, sizeof *out);
    if (++ps->nodes > WM_JSONPARSE_MAX_NODES) return fail(ps, ps->p, "more than 4194304 values");
    if (ps->p >= ps->end) return fail(ps, ps->p, "expected a value, found the end of the line");
    switch (*ps->p) {
    case '{': case '[': return parse_container(ps, out, depth);
    case '"': return parse_string(ps, out);
    case 't': if (literal(ps, "true")) { out->type = WM_JBOOL; out->u.boolean = 1; return WM_OK; } break;
    case 'f': if (literal(ps, "false")) { out->type = WM_JBOOL; out->u.boolean = 0; return WM_OK; } break;
    case 'n': if (literal(ps, "null")) { out->type = WM_JNULL; return WM_OK; } break;
    default: return parse_number(ps, out);
    }
    return fail(ps, ps->p, "expected a value");
}

wm_jnode *wm_jsonparse_new(const char *text, size_t n, wm_error *err)
{
    parser ps = { (const unsigned char *)text, (const unsigned char *)text, (const unsigned char *)text + n, 0, err };
    wm_jnode *root = calloc(1, sizeof *root);
    if (!root) { nomem(&ps); return NULL; }
    if (parse_value(&ps, root, 0) != WM_OK) { free(root); return NULL; }
    skip_ws(&ps);
    if (ps.p < ps.end) {
        fail(&ps, ps.p, "unexpected text after the value");
        wm_jsonparse_free(&root);
        return NULL;
    }
    return root;
}

void wm_jsonparse_free(wm_jnode **root)
{
    if (!*root) return;
    node_clear(*root);
    free(*root);
    *root = NULL;
}

const wm_jnode *wm_jsonparse_get(const wm_jnode *obj, const char *key)
{
    if (!obj || obj->type != WM_JOBJ) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->len; i++) {
        const wm_jnode *k = &obj->u.items[2 * i];
        if (k->len == n && memcmp(k->u.str, key, n) == 0) return &obj->u.items[2 * i + 1];
    }
    return NULL;
}

const wm_jnode *wm_jsonparse_key(const wm_jnode *obj, size_t i) { return &obj->u.items[2 * i]; }
const wm_jnode *wm_jsonparse_value(const wm_jnode *obj, size_t i) { return &obj->u.items[2 * i + 1]; }

void wm_jsonparse_write(wm_strbuf *b, const wm_jnode *v)
{
    switch (v->type) {
    case WM_JNULL: wm_strbuf_add(b, "null", 4); break;
    case WM_JBOOL: wm_strbuf_addf(b, "%s", v->u.boolean ? "true" : "false"); break;
    case WM_JNUM: wm_json_num(b, v->u.num); break;
    case WM_JSTR: wm_json_str(b, v->u.str, v->len); break;
    case WM_JARR:
        wm_strbuf_add(b, "[", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i) wm_strbuf_add(b, ",", 1);
            wm_jsonparse_write(b, &v->u.items[i]);
        }
        wm_strbuf_add(b, "]", 1);
        break;
    case WM_JOBJ:
        wm_strbuf_add(b, "{", 1);
        for (size_t i = 0; i < v->len; i++) {
            if (i) wm_strbuf_add(b, ",", 1);
            wm_jsonparse_write(b, wm_jsonparse_key(v, i));
            wm_strbuf_add(b, ":", 1);
            wm_jsonparse_write(b, wm_jsonparse_value(v, i));
        }
        wm_strbuf_add(b, "}", 1);
        break;
    }
}
