#include "wm_report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wm_jsonparse.h"

typedef struct report_row {
    wm_jnode *obj;       /* the line's object, owned */
    size_t order;        /* position in the input: ties keep it */
    int failed;          /* has an "error" */
    int scored;          /* has a plausibility */
    double plausibility;
} report_row;

struct wm_report {
    char *title;
    report_row *rows;
    size_t n, cap;
};

/* Fields of the contract; any other top-level key is shown as a label. */
static const char *const known_fields[] = {
    "source", "clip", "frames", "size", "surprise", "surprise_mean", "surprise_max", "surprise_clip", "peak_frame",
    "peak_xy", "plausibility", "flicker", "smoothness", "consistency", "synth", "error", "thumbs", "thumbs_frames",
    NULL };
static const char *const number_fields[] = {
    "frames", "peak_frame", "surprise_mean", "surprise_max", "surprise_clip", "plausibility", "flicker", "smoothness",
    "consistency", NULL };

wm_report *wm_report_new(const char *title, wm_error *err)
{
    wm_report *r = calloc(1, sizeof *r);
    if (r) r->title = strdup(title ? title : "wm report");
    if (!r || !r->title) {
        free(r);
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    return r;
}

void wm_report_free(wm_report **rp)
{
    wm_report *r = *rp;
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) wm_jsonparse_free(&r->rows[i].obj);
    free(r->rows);
    free(r->title);
    free(r);
    *rp = NULL;
}

size_t wm_report_count(const wm_report *r) { return r->n; }

/* ---- reading and checking rows ---- */

static const wm_jnode *get_present(const wm_jnode *obj, const char *key)
{
    const wm_jnode *v = wm_jsonparse_get(obj, key);
    return v && v->type != WM_JNULL ? v : NULL;
}

static int is_number_pair(const wm_jnode *v)
{
    return v->type == WM_JARR && v->len == 2 && v->u.items[0].type == WM_JNUM && v->u.items[1].type == WM_JNUM;
}

static int is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '=';
}

/* The thumbnails go into an <img src>, so only a base64 image data URI is
 * let through: nothing else can load from the network or run script. */
static int is_image_data_uri(const wm_jnode *v)
{
    static const char *const prefixes[] = { "data:image/png;base64,", "data:image/jpeg;base64,",
                                            "data:image/gif;base64,", "data:image/webp;base64,", NULL };
    for (int i = 0; prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (v->len <= n || strncmp(v->u.str, prefixes[i], n) != 0) continue;
        for (size_t j = n; j < v->len; j++)
            if (!is_base64_char(v->u.str[j])) return 0;
        return 1;
    }
    return 0;
}

/* Returns the name of the first field that breaks the contract and what it
 * should have been, or NULL. */
static const char *check_row(const wm_jnode *obj, const char **want)
{
    const wm_jnode *v;
    static const char *const strings[] = { "source", "clip", "error", NULL };
    for (int i = 0; strings[i]; i++)
        if ((v = get_present(obj, strings[i])) && v->type != WM_JSTR) { *want = "a string"; return strings[i]; }
    for (int i = 0; number_fields[i]; i++)
        if ((v = get_present(obj, number_fields[i])) && v->type != WM_JNUM) {
            *want = "a number or null";
            return number_fields[i];
        }
    static const char *const pairs[] = { "size", "peak_xy", "thumbs_frames", NULL };
    for (int i = 0; pairs[i]; i++)
        if ((v = get_present(obj, pairs[i])) && !is_number_pair(v)) { *want = "[number, number]"; return pairs[i]; }
    if ((v = get_present(obj, "surprise"))) {
        *want = "an array of numbers and nulls";
        if (v->type != WM_JARR) return "surprise";
        for (size_t i = 0; i < v->len; i++)
            if (v->u.items[i].type != WM_JNUM && v->u.items[i].type != WM_JNULL) return "surprise";
    }
    if ((v = get_present(obj, "thumbs")) && (v->type != WM_JSTR || !is_image_data_uri(v))) {
        *want = "a data:image/png;base64,... URI";
        return "thumbs";
    }
    if ((v = get_present(obj, "synth"))) {
        if (v->type != WM_JOBJ) { *want = "an object"; return "synth"; }
        const wm_jnode *s;
        if ((s = get_present(v, "possible")) && s->type != WM_JBOOL) { *want = "true or false"; return "synth.possible"; }
        if ((s = get_present(v, "violation_frame")) && s->type != WM_JNUM) { *want = "a number"; return "synth.violation_frame"; }
        if ((s = get_present(v, "category")) && s->type != WM_JSTR) { *want = "a string"; return "synth.category"; }
    }
    return NULL;
}

wm_status wm_report_add_line(wm_report *r, const char *line, size_t n, const char *name, long lineno,
                             wm_error *err)
{
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == n) return WM_OK;
    wm_jnode *obj = wm_jsonparse_new(line, n, err);
    if (!obj) return wm_error_prefix(err, "%s:%ld", name, lineno);
    const char *field = NULL, *want = NULL;
    if (obj->type != WM_JOBJ) {
        wm_jsonparse_free(&obj);
        return wm_error_set(err, WM_E_INPUT, "%s:%ld: expected a JSON object (one clip per line)", name, lineno);
    }
    if ((field = check_row(obj, &want))) {
        wm_jsonparse_free(&obj);
        return wm_error_set(err, WM_E_INPUT, "%s:%ld: %s: expected %s", name, lineno, field, want);
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        report_row *rows = realloc(r->rows, cap * sizeof *rows);
        if (!rows) { wm_jsonparse_free(&obj); return wm_error_set(err, WM_E_SYSTEM, "out of memory"); }
        r->rows = rows;
        r->cap = cap;
    }
    report_row *row = &r->rows[r->n];
    memset(row, 0, sizeof *row);
    row->obj = obj;
    row->order = r->n++;
    row->failed = get_present(obj, "error") != NULL;
    const wm_jnode *p = get_present(obj, "plausibility");
    row->scored = p != NULL;
    row->plausibility = p ? p->u.num : 0;
    return WM_OK;
}

wm_status wm_report_read(wm_report *r, FILE *f, const char *name, wm_error *err)
{
    char chunk[1 << 16];
    wm_strbuf line;
    wm_strbuf_init(&line);
    long lineno = 1;
    wm_status st = WM_OK;
    size_t got;
    while (st == WM_OK && (got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        size_t off = 0;
        while (st == WM_OK && off < got) {
            const char *nl = memchr(chunk + off, '\n', got - off);
            size_t seg = nl ? (size_t)(nl - (chunk + off)) : got - off;
            if (line.len + seg > WM_REPORT_MAX_LINE) {
                st = wm_error_set(err, WM_E_INPUT, "%s:%ld: line longer than %zu MiB", name, lineno,
                                  WM_REPORT_MAX_LINE >> 20);
                break;
            }
            wm_strbuf_add(&line, chunk + off, seg);
            if (line.oom) { st = wm_error_set(err, WM_E_SYSTEM, "%s:%ld: out of memory", name, lineno); break; }
            off += seg;
            if (nl) {
                st = wm_report_add_line(r, line.s, line.len, name, lineno, err);
                wm_strbuf_reset(&line);
                lineno++;
                off++;
            }
        }
    }
    if (st == WM_OK && ferror(f)) st = wm_error_set(err, WM_E_INPUT, "%s: read error: %s", name, strerror(errno));
    if (st == WM_OK && line.len) st = wm_report_add_line(r, line.s, line.len, name, lineno, err);
    wm_strbuf_free(&line);
    return st;
}

/* ---- the page ---- */

static void put(wm_strbuf *b, const char *s) { wm_strbuf_add(b, s, strlen(s)); }

static void html_text(wm_strbuf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        wm_strbuf_add(b, s + start, i - start);
        wm_strbuf_add(b, rep, strlen(rep));
        start = i + 1;
    }
    wm_strbuf_add(b, s + start, n - start);
}

static void html_cstr(wm_strbuf *b, const char *s) { html_text(b, s, strlen(s)); }

/* Any value as escaped compact JSON (strings without their quotes),
 * shortened to max bytes at a UTF-8 boundary. */
static void html_value(wm_strbuf *b, const wm_jnode *v, size_t max)
{
    wm_strbuf t;
    wm_strbuf_init(&t);
    if (v->type == WM_JSTR) wm_strbuf_add(&t, v->u.str, v->len);
    else wm_jsonparse_write(&t, v);
    size_t n = t.len;
    if (n > max) {
        n = max;
        while (n > 0 && (t.s[n] & 0xc0) == 0x80) n--;
    }
    if (t.s) html_text(b, t.s, n);
    if (n < t.len) put(b, "\xe2\x80\xa6");
    wm_strbuf_free(&t);
}

static const wm_jnode *num_field(const wm_jnode *obj, const char *key)
{
    const wm_jnode *v = get_present(obj, key);
    return v && v->type == WM_JNUM ? v : NULL;
}

/* A number for people: integers as such, others with 4 significant digits. */
static void put_num(wm_strbuf *b, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) wm_strbuf_addf(b, "%.0f", v);
    else wm_strbuf_addf(b, "%.4g", v);
}

/* The two numbers of a checked [a, b] pair, sep between them. */
static void put_num_pair(wm_strbuf *b, const wm_jnode *pair, const char *sep)
{
    put_num(b, pair->u.items[0].u.num);
    put(b, sep);
    put_num(b, pair->u.items[1].u.num);
}

static void put_field(wm_strbuf *b, const wm_jnode *obj, const char *key)
{
    const wm_jnode *v = num_field(obj, key);
    if (v) put_num(b, v->u.num);
    else put(b, "&#8212;");
}

static void put_str_field(wm_strbuf *b, const wm_jnode *obj, const char *key, const char *fallback)
{
    const wm_jnode *v = get_present(obj, key);
    if (v) html_text(b, v->u.str, v->len);
    else html_cstr(b, fallback);
}

static int row_cmp(const void *a, const void *b)
{
    const report_row *x = *(const report_row *const *)a, *y = *(const report_row *const *)b;
    int gx = x->failed ? 0 : x->scored ? 1 : 2, gy = y->failed ? 0 : y->scored ? 1 : 2;
    if (gx != gy) return gx < gy ? -1 : 1;
    if (gx == 1 && x->plausibility != y->plausibility) return x->plausibility < y->plausibility ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int synth_possible(const report_row *row)
{
    const wm_jnode *p = get_present(get_present(row->obj, "synth"), "possible");
    return p ? p->u.boolean : -1;
}

typedef struct pair_member {
    char *key;           /* "seed|category|pair|" as JSON texts */
    int possible;
    size_t order;
    double plausibility;
} pair_member;

/* The row's pair name, or NULL when it is not part of a pair (training
 * clips have pair -1) or memory ran out (*oom). */
static char *pair_key(const report_row *row, int *oom)
{
    const wm_jnode *synth = get_present(row->obj, "synth"), *pair = get_present(synth, "pair");
    if (!pair || (pair->type == WM_JNUM && pair->u.num < 0)) return NULL;
    static const char *const parts[] = { "seed", "category", "pair", NULL };
    wm_strbuf key;
    wm_strbuf_init(&key);
    for (int i = 0; parts[i]; i++) {
        const wm_jnode *v = wm_jsonparse_get(synth, parts[i]);
        if (v) wm_jsonparse_write(&key, v);
        wm_strbuf_add(&key, "|", 1);
    }
    if (key.oom) { wm_strbuf_free(&key); *oom = 1; return NULL; }
    return key.s;
}

static int member_cmp(const void *a, const void *b)
{
    const pair_member *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c) return c;
    if (x->possible != y->possible) return x->possible - y->possible;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Matched pairs, named by (seed, category, pair) as wm-synth labels them:
 * the model is right on a pair when it finds the impossible clip less
 * plausible than its possible twin.  Sorting by name keeps a batch of many
 * thousand clips from costing quadratic time.  Returns 0 when memory ran out. */
static int pairs_ranked(const wm_report *r, size_t *pairs, size_t *right)
{
    pair_member *m = malloc((r->n ? r->n : 1) * sizeof *m);
    if (!m) return 0;
    size_t n = 0;
    int oom = 0;
    for (size_t i = 0; i < r->n && !oom; i++) {
        const report_row *row = &r->rows[i];
        int possible = synth_possible(row);
        if (!row->scored || possible < 0) continue;
        char *key = pair_key(row, &oom);
        if (!key) continue;
        m[n++] = (pair_member){ key, possible, row->order, row->plausibility };
    }
    if (!oom) {
        qsort(m, n, sizeof *m, member_cmp);
        /* in each name's group the impossible clip sorts first */
        for (size_t i = 0; i + 1 < n; i++) {
            if (m[i].possible != 0 || (i > 0 && strcmp(m[i - 1].key, m[i].key) == 0)) continue;
            size_t j = i + 1;
            while (j < n && strcmp(m[j].key, m[i].key) == 0 && m[j].possible == 0) j++;
            if (j == n || strcmp(m[j].key, m[i].key) != 0) continue;
            (*pairs)++;
            *right += m[i].plausibility < m[j].plausibility;
        }
    }
    for (size_t i = 0; i < n; i++) free(m[i].key);
    free(m);
    return !oom;
}

static void summary(const wm_report *r, wm_strbuf *b)
{
    size_t failed = 0, scored = 0, n_by[2] = { 0, 0 };
    double sum = 0, sum_by[2] = { 0, 0 };
    for (size_t i = 0; i < r->n; i++) {
        const report_row *row = &r->rows[i];
        failed += (size_t)row->failed;
        if (!row->scored) continue;
        scored++;
        sum += row->plausibility;
        int possible = synth_possible(row);
        if (possible >= 0) { n_by[possible]++; sum_by[possible] += row->plausibility; }
    }
    wm_strbuf_addf(b, "<dl id=\"summary\">\n<div><dt>clips</dt><dd id=\"n-clips\">%zu</dd></div>\n", r->n);
    wm_strbuf_addf(b, "<div%s><dt>failures</dt><dd id=\"n-failed\">%zu</dd></div>\n", failed ? " class=\"bad\"" : "",
                   failed);
    put(b, "<div><dt>mean plausibility</dt><dd id=\"mean-plausibility\">");
    if (scored) wm_strbuf_addf(b, "%.3f <small>over %zu scored</small>", sum / (double)scored, scored);
    else put(b, "&#8212;");
    put(b, "</dd></div>\n");
    for (int possible = 1; possible >= 0; possible--) {
        if (!n_by[possible]) continue;
        wm_strbuf_addf(b, "<div><dt>%s clips</dt><dd>%.3f <small>mean over %zu</small></dd></div>\n",
                       possible ? "possible" : "impossible", sum_by[possible] / (double)n_by[possible], n_by[possible]);
    }
    size_t pairs = 0, right = 0;
    if (!pairs_ranked(r, &pairs, &right)) b->oom = 1;
    if (pairs)
        wm_strbuf_addf(b, "<div><dt>pairs ranked right</dt><dd id=\"pairs-right\">%zu of %zu "
                          "<small>impossible less plausible</small></dd></div>\n", right, pairs);
    put(b, "</dl>\n");
}

/* The surprise curve: one path, broken where a frame has no prediction;
 * the strip's frames shaded, the peak in red, the violation dashed. */
#define SVG_W 360
#define SVG_H 90
#define SVG_PAD 6

static double svg_x(double frame, size_t n)
{
    return SVG_PAD + (n > 1 ? frame * (SVG_W - 2 * SVG_PAD) / (double)(n - 1) : (SVG_W - 2 * SVG_PAD) / 2.0);
}

/* A frame number that lies on the curve's x axis (markers outside it are
 * not drawn, so a wild number cannot stretch the picture). */
static int on_axis(const wm_jnode *frame, size_t n)
{
    return frame && frame->u.num >= 0 && frame->u.num <= (double)(n - 1);
}

static void curve(wm_strbuf *b, const wm_jnode *obj)
{
    const wm_jnode *s = get_present(obj, "surprise");
    if (!s || s->len == 0) { put(b, "<p class=\"muted\">no surprise curve</p>"); return; }
    size_t n = s->len;
    double lo = 0, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (s->u.items[i].type == WM_JNUM) {
            double v = s->u.items[i].u.num;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    if (!(hi > lo)) hi = lo + 1;
    const double top = SVG_PAD + 10, bottom = SVG_H - SVG_PAD - 10;
#define SVG_Y(v) (bottom - ((v) - lo) * (bottom - top) / (hi - lo))
    const wm_jnode *peak = num_field(obj, "peak_frame");
    const wm_jnode *viol = num_field(get_present(obj, "synth"), "violation_frame");
    const wm_jnode *range = get_present(obj, "thumbs_frames");
    wm_strbuf_addf(b, "<svg class=\"curve\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">"
                      "<title>surprise per frame", SVG_W, SVG_H, SVG_W, SVG_H);
    if (peak) { put(b, "; peak at frame "); put_num(b, peak->u.num); }
    if (viol && viol->u.num >= 0) { put(b, "; violation at frame "); put_num(b, viol->u.num); }
    put(b, "</title>");
    if (range && get_present(obj, "thumbs") && on_axis(&range->u.items[0], n) && on_axis(&range->u.items[1], n))
        wm_strbuf_addf(b, "<rect class=\"strip\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\"/>",
                       svg_x(range->u.items[0].u.num, n), SVG_PAD,
                       fmax(1, svg_x(range->u.items[1].u.num, n) - svg_x(range->u.items[0].u.num, n)),
                       SVG_H - 2 * SVG_PAD);
    wm_strbuf_addf(b, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>", SVG_PAD, SVG_Y(0.0),
                   SVG_W - SVG_PAD, SVG_Y(0.0));
    if (on_axis(viol, n)) {
        double x = svg_x(viol->u.num, n);
        wm_strbuf_addf(b, "<line class=\"violation\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
                          "<text class=\"violation\" x=\"%.1f\" y=\"%d\">violation</text>",
                       x, SVG_PAD, x, SVG_H - SVG_PAD, x + 3, SVG_H - SVG_PAD - 1);
    }
    put(b, "<path class=\"surprise\" d=\"");
    int pen_down = 0;
    for (size_t i = 0; i < n; i++) {
        const wm_jnode *v = &s->u.items[i];
        if (v->type != WM_JNUM) { pen_down = 0; continue; }
        int alone = !pen_down && (i + 1 >= n || s->u.items[i + 1].type != WM_JNUM);
        wm_strbuf_addf(b, "%s%.1f %.1f%s", pen_down ? "L" : "M", svg_x((double)i, n), SVG_Y(v->u.num),
                       alone ? "h0" : "");   /* a lone point shows as a dot (round caps) */
        pen_down = 1;
    }
    put(b, "\"/>");
    if (on_axis(peak, n)) {
        double x = svg_x(peak->u.num, n);
        wm_strbuf_addf(b, "<line class=\"peak\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>", x, SVG_PAD, x,
                       SVG_H - SVG_PAD);
        double pf = peak->u.num;
        if (pf == floor(pf) && s->u.items[(size_t)pf].type == WM_JNUM)
            wm_strbuf_addf(b, "<circle class=\"peak\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"/>", x,
                           SVG_Y(s->u.items[(size_t)pf].u.num));
    }
    wm_strbuf_addf(b, "<text x=\"%d\" y=\"%d\">", SVG_PAD + 2, SVG_PAD + 8);
    put_num(b, hi);
    wm_strbuf_addf(b, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">frame %zu</text></svg>", SVG_W - SVG_PAD,
                   SVG_H - 1, n - 1);
#undef SVG_Y
}

static void labels(wm_strbuf *b, const wm_jnode *obj)
{
    const wm_jnode *synth = get_present(obj, "synth");
    if (synth) {
        const wm_jnode *v;
        if ((v = get_present(synth, "possible")))
            wm_strbuf_addf(b, "<span class=\"badge %s\">%s</span> ", v->u.boolean ? "possible" : "impossible",
                           v->u.boolean ? "possible" : "impossible");
        if ((v = get_present(synth, "category"))) {
            put(b, "<span class=\"category\">");
            html_text(b, v->u.str, v->len);
            put(b, "</span> ");
        }
        if ((v = get_present(synth, "violation_frame")) && v->u.num >= 0) {
            put(b, "<span>violation at frame ");
            put_num(b, v->u.num);
            put(b, "</span> ");
        }
        for (size_t i = 0; i < synth->len; i++) {
            const wm_jnode *k = wm_jsonparse_key(synth, i);
            if (!strcmp(k->u.str, "possible") || !strcmp(k->u.str, "category") || !strcmp(k->u.str, "violation_frame"))
                continue;
            put(b, "<span class=\"kv\">");
            html_text(b, k->u.str, k->len);
            put(b, " ");
            html_value(b, wm_jsonparse_value(synth, i), 80);
            put(b, "</span> ");
        }
    }
    for (size_t i = 0; i < obj->len; i++) {
        const wm_jnode *k = wm_jsonparse_key(obj, i);
        int known = 0;
        for (int j = 0; known_fields[j] && !known; j++) known = !strcmp(k->u.str, known_fields[j]);
        if (known) continue;
        put(b, "<span class=\"kv\">");
        html_text(b, k->u.str, k->len);
        put(b, " ");
        html_value(b, wm_jsonparse_value(obj, i), 120);
        put(b, "</span> ");
    }
}

static void plausibility_cell(wm_strbuf *b, const report_row *row)
{
    put(b, "<td class=\"plausibility\">");
    if (!row->scored) { put(b, "&#8212;</td>"); return; }
    double p = row->plausibility, w = fmin(1, fmax(0, p));
    /* tiny values keep their digits, so the order on the page can be seen */
    wm_strbuf_addf(b, fabs(p) >= 0.001 || p == 0 ? "%.3f" : "%.1e", p);
    wm_strbuf_addf(b, "<div class=\"bar\"><div style=\"width:%.0f%%;background:hsl(%.0f,65%%,45%%)\"></div></div></td>",
                   100 * w, 120 * w);
}

static void clip_rows(wm_strbuf *b, const report_row *row, size_t rank)
{
    const wm_jnode *obj = row->obj;
    const wm_jnode *clip = get_present(obj, "clip");
    wm_strbuf_addf(b, "<tbody class=\"clip%s\" data-rank=\"%zu\" data-clip=\"", row->failed ? " failed" : "", rank);
    if (clip) html_text(b, clip->u.str, clip->len);
    put(b, "\">\n<tr class=\"scores\"><td class=\"rank\">");
    wm_strbuf_addf(b, "%zu</td><td class=\"name\"><b>", rank);
    put_str_field(b, obj, "clip", "(no clip id)");
    put(b, "</b><br><span class=\"source\">");
    put_str_field(b, obj, "source", "");
    put(b, "</span>");
    const wm_jnode *frames = num_field(obj, "frames"), *size = get_present(obj, "size");
    if (frames || size) {
        put(b, "<br><small>");
        if (frames) { put_num(b, frames->u.num); put(b, " frames"); }
        if (size) {
            if (frames) put(b, ", ");
            put_num(b, size->u.items[0].u.num);
            put(b, "&#215;");
            put_num(b, size->u.items[1].u.num);
        }
        put(b, "</small>");
    }
    put(b, "</td>");
    if (row->failed) {
        const wm_jnode *e = get_present(obj, "error");
        put(b, "<td class=\"error\" colspan=\"4\">failed: ");
        html_text(b, e->u.str, e->len);
        put(b, "</td><td class=\"labels\">");
        labels(b, obj);
        put(b, "</td></tr>\n</tbody>\n");
        return;
    }
    plausibility_cell(b, row);
    put(b, "<td>");
    put_field(b, obj, "surprise_mean");
    put(b, " / ");
    put_field(b, obj, "surprise_max");
    put(b, "</td><td>");
    put_field(b, obj, "peak_frame");
    const wm_jnode *xy = get_present(obj, "peak_xy");
    if (xy) {
        put(b, "<br><small>at (");
        put_num_pair(b, xy, ", ");
        put(b, ")</small>");
    }
    put(b, "</td><td class=\"sub\">");
    static const char *const subs[] = { "flicker", "smoothness", "consistency", NULL };
    for (int i = 0; subs[i]; i++) {
        wm_strbuf_addf(b, "%s%s ", i ? "<br>" : "", subs[i]);
        put_field(b, obj, subs[i]);
    }
    put(b, "</td><td class=\"labels\">");
    labels(b, obj);
    put(b, "</td></tr>\n<tr class=\"visuals\"><td></td><td colspan=\"6\"><div class=\"visuals\">");
    curve(b, obj);
    const wm_jnode *thumbs = get_present(obj, "thumbs"), *range = get_present(obj, "thumbs_frames");
    if (thumbs) {
        put(b, "<figure><img class=\"thumbs\" alt=\"thumbnails around the peak\" src=\"");
        html_text(b, thumbs->u.str, thumbs->len);
        put(b, "\">");
        if (range) {
            put(b, "<figcaption>frames ");
            put_num_pair(b, range, "&#8211;");
            put(b, ", heatmap on the peak frame</figcaption>");
        }
        put(b, "</figure>");
    }
    put(b, "</div></td></tr>\n</tbody>\n");
}

static const char page_style[] =
    "<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\n"
    "h1{font-size:1.4em;margin:0 0 .5em}\n"
    "#summary{display:flex;flex-wrap:wrap;gap:.5em 2em;margin:0 0 1em}\n"
    "#summary div{background:#f3f4f6;padding:.4em .8em;border-radius:6px}\n"
    "#summary dt{font-size:.8em;color:#555}#summary dd{margin:0;font-size:1.3em;font-weight:600}\n"
    "#summary .bad dd{color:#b91c1c}small{color:#666;font-weight:normal}\n"
    "#filter{font-size:1em;padding:.3em .5em;width:24em}#shown{color:#555;margin-left:1em}\n"
    "table{border-collapse:collapse;margin-top:.8em;width:100%}\n"
    "th{text-align:left;font-size:.85em;color:#555;border-bottom:2px solid #ccc;padding:.3em .5em}\n"
    "td{vertical-align:top;padding:.3em .5em}\n"
    "tbody.clip{border-bottom:1px solid #ddd}tbody.clip:nth-of-type(even){background:#fafafa}\n"
    "tbody.failed{background:#fef2f2!important}td.error{color:#b91c1c;font-weight:600}\n"
    "td.rank{color:#888}.source{color:#555;font-size:.9em;word-break:break-all}\n"
    "td.plausibility{font-weight:600;width:7em}.bar{height:5px;background:#e5e7eb;margin-top:3px}.bar div{height:5px}\n"
    "td.sub{font-size:.9em;white-space:nowrap}\n"
    ".badge{display:inline-block;padding:0 .4em;border-radius:4px;color:#fff;font-size:.85em}\n"
    ".badge.possible{background:#15803d}.badge.impossible{background:#b91c1c}\n"
    ".category{font-weight:600}.kv{color:#555;font-size:.85em;margin-right:.3em}\n"
    "div.visuals{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}\n"
    "svg.curve{background:#fff;border:1px solid #e5e7eb}svg.curve text{font-size:9px;fill:#666}\n"
    "svg .surprise{fill:none;stroke:#1d4ed8;stroke-width:1.5;stroke-linecap:round;stroke-linejoin:round}\n"
    "svg .axis{stroke:#ccc}svg rect.strip{fill:#fde68a;opacity:.45}\n"
    "svg line.peak{stroke:#dc2626;stroke-width:1}svg circle.peak{fill:#dc2626}\n"
    "svg line.violation{stroke:#7c3aed;stroke-dasharray:4 3;stroke-width:1.5}svg text.violation{fill:#7c3aed}\n"
    "figure{margin:0}img.thumbs{height:96px;image-rendering:pixelated;border:1px solid #e5e7eb}\n"
    "figcaption{font-size:.8em;color:#666}.muted{color:#888}\n"
    "footer{margin-top:1.5em;font-size:.8em;color:#777}\n"
    "</style>\n";

/* Every term typed must occur in a clip's text (case-insensitive), and
 * none prefixed with '-' ("gravity -impossible").  The
 * filter lives in the address too (report.html#q=impossible), so a
 * filtered view can be bookmarked or sent. */
static const char page_script[] =
    "<script>\n"
    "(function(){\n"
    "var box=document.getElementById('filter'),shown=document.getElementById('shown'),\n"
    "    clips=Array.prototype.slice.call(document.querySelectorAll('tbody.clip')),\n"
    "    texts=clips.map(function(c){return c.textContent.toLowerCase();});\n"
    "function apply(){\n"
    "  var terms=box.value.toLowerCase().split(/\\s+/).filter(Boolean),n=0;\n"
    "  clips.forEach(function(c,i){\n"
    "    var hit=terms.every(function(t){\n"
    "      return t.length>1&&t[0]==='-'?texts[i].indexOf(t.slice(1))<0:texts[i].indexOf(t)>=0;});\n"
    "    c.hidden=!hit;n+=hit;});\n"
    "  shown.textContent=n+' of '+clips.length+' shown';}\n"
    "if(location.hash.indexOf('#q=')===0)\n"
    "  try{box.value=decodeURIComponent(location.hash.slice(3));}catch(e){}\n"
    "box.addEventListener('input',function(){apply();\n"
    "  try{history.replaceState(null,'',box.value?'#q='+encodeURIComponent(box.value):location.pathname);}catch(e){}});\n"
    "apply();\n"
    "})();\n"
    "</script>\n";

wm_status wm_report_render(const wm_report *r, wm_strbuf *b, wm_error *err)
{
    const report_row **order = malloc((r->n ? r->n : 1) * sizeof(const report_row *));
    if (!order) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) order[i] = &r->rows[i];
    qsort(order, r->n, sizeof(const report_row *), row_cmp);

    put(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    html_cstr(b, r->title);
    put(b, "</title>\n");
    wm_strbuf_add(b, page_style, sizeof page_style - 1);
    put(b, "</head>\n<body>\n<h1>");
    html_cstr(b, r->title);
    put(b, "</h1>\n");
    summary(r, b);
    put(b, "<p><input id=\"filter\" type=\"search\" placeholder=\"filter, e.g. gravity impossible "
           "-solidity\" aria-label=\"filter clips\"><span id=\"shown\"></span></p>\n");
    put(b, "<table id=\"clips\">\n<thead><tr><th>#</th><th>clip / source</th><th>plausibility</th>"
           "<th>surprise mean / max</th><th>peak frame</th><th>sub-scores</th><th>labels</th></tr></thead>\n");
    for (size_t i = 0; i < r->n; i++) clip_rows(b, order[i], i + 1);
    put(b, "</table>\n<footer>Failed clips first, then the least plausible first. The surprise curve: "
           "red the peak frame, dashed violet the frame a wm-synth violation happens, "
           "yellow the frames of the thumbnail strip. The filter shows the clips whose text holds every word typed "
           "and no word typed with a leading - (gravity -impossible). Made by wm-report.</footer>\n");
    wm_strbuf_add(b, page_script, sizeof page_script - 1);
    put(b, "</body>\n</html>\n");
    free(order);
    if (b->oom) return wm_error_set(err, WM_E_SYSTEM, "out of memory writing the page");
    return WM_OK;
}
