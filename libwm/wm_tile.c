/* wm_tile: see wm_tile.h. */
#include "wm_tile.h"

#include <stdlib.h>
#include <string.h>

#include "wm_proto.h"

typedef struct tile_frame {
    double pts;
    int width, height;
    wm_pixfmt format;
    uint8_t *data;
} tile_frame;

typedef struct tile_column {
    char *id;
    msgpack_sbuffer labels;    /* the clip message's other pairs, packed */
    int nlabels;
    tile_frame *frames;
    int nframes, cap;
    int ended;
    char *error;               /* its end's "error" */
} tile_column;

/* A message kept until its group is written. */
typedef struct tile_held {
    uint8_t *raw;
    size_t len;
    int inside;                /* names a clip of the group */
} tile_held;

struct wm_tile {
    int across;
    tile_column cols[WM_TILE_MAX_ACROSS];
    int ncols;                 /* clips begun in the current group */
    tile_held *held;
    int nheld, cap;
    wm_msgbuf mb;
    uint8_t *canvas;
    size_t canvas_cap;
    int64_t clips_out, frames_out;
};

/* Keys the tiled clip message sets itself. */
static const char *const clip_keys[] = { "kind", "id", "width", "height", "tiles", NULL };

wm_tile *wm_tile_new(int across, wm_error *err)
{
    if (across < 2 || across > WM_TILE_MAX_ACROSS) {
        wm_error_set(err, WM_E_USAGE, "tiles across: %d is not in 2..%d", across, WM_TILE_MAX_ACROSS);
        return NULL;
    }
    wm_tile *t = calloc(1, sizeof *t);
    if (!t) {
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    t->across = across;
    wm_msgbuf_init(&t->mb);
    return t;
}

static void column_clear(tile_column *c)
{
    free(c->id);
    if (c->labels.data) msgpack_sbuffer_destroy(&c->labels);
    for (int i = 0; i < c->nframes; i++) free(c->frames[i].data);
    free(c->frames);
    free(c->error);
    memset(c, 0, sizeof *c);
}

static void group_clear(wm_tile *t)
{
    for (int i = 0; i < t->ncols; i++) column_clear(&t->cols[i]);
    t->ncols = 0;
    for (int i = 0; i < t->nheld; i++) free(t->held[i].raw);
    t->nheld = 0;
}

void wm_tile_free(wm_tile **tp)
{
    if (!tp || !*tp) return;
    wm_tile *t = *tp;
    group_clear(t);
    free(t->held);
    free(t->canvas);
    wm_msgbuf_destroy(&t->mb);
    free(t);
    *tp = NULL;
}

int64_t wm_tile_clips(const wm_tile *t) { return t->clips_out; }
int64_t wm_tile_frames(const wm_tile *t) { return t->frames_out; }

static tile_column *column_find(wm_tile *t, const char *id, size_t n)
{
    for (int i = t->ncols - 1; i >= 0; i--)
        if (strlen(t->cols[i].id) == n && memcmp(t->cols[i].id, id, n) == 0) return &t->cols[i];
    return NULL;
}

/* The column of a message naming its clip with key, or NULL. */
static tile_column *column_of(wm_tile *t, const wm_msg *msg, const char *key)
{
    const char *id;
    size_t n;
    if (wm_msg_str(msg, key, &id, &n) != 0) return NULL;
    return column_find(t, id, n);
}

static wm_status column_begin(wm_tile *t, const char *id, size_t n, const msgpack_object *clip_map,
                              const wm_msg *msg, tile_column **out, wm_error *err)
{
    if (t->ncols > 0 && !t->cols[t->ncols - 1].ended)
        return wm_error_set(err, WM_E_INPUT, "clip '%.*s' (byte offset %llu) begins before clip '%s' ended", (int)n,
                            id, (unsigned long long)msg->offset, t->cols[t->ncols - 1].id);
    tile_column *c = &t->cols[t->ncols++];
    if (!(c->id = strndup(id, n))) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (clip_map) {
        msgpack_sbuffer_init(&c->labels);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &c->labels, msgpack_sbuffer_write);
        c->nlabels = wm_obj_count_except(clip_map, clip_keys);
        wm_pack_except(&pk, clip_map, clip_keys);
    }
    *out = c;
    return WM_OK;
}

static wm_status hold(wm_tile *t, const wm_msg *msg, int inside, wm_error *err)
{
    if (t->nheld == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        tile_held *h = realloc(t->held, (size_t)cap * sizeof *h);
        if (!h) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        t->held = h;
        t->cap = cap;
    }
    tile_held *h = &t->held[t->nheld];
    if (!(h->raw = malloc(msg->len))) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    memcpy(h->raw, msg->raw, msg->len);
    h->len = msg->len;
    h->inside = inside;
    t->nheld++;
    return WM_OK;
}

static wm_status add_frame(tile_column *c, const wm_frame_view *f, const wm_msg *msg, wm_error *err)
{
    if (c->ended)
        return wm_error_set(err, WM_E_INPUT, "clip '%s' frame %lld (byte offset %llu): after the end of its clip",
                            c->id, (long long)f->index, (unsigned long long)msg->offset);
    if (c->nframes > 0) {
        const tile_frame *first = &c->frames[0];
        if (f->width != first->width || f->height != first->height)
            return wm_error_set(err, WM_E_INPUT, "clip '%s' frame %lld (byte offset %llu): %dx%d, but the clip's "
                                "first frame is %dx%d", c->id, (long long)f->index, (unsigned long long)msg->offset,
                                f->width, f->height, first->width, first->height);
    }
    if (c->nframes == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        tile_frame *nf = realloc(c->frames, (size_t)cap * sizeof *nf);
        if (!nf) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        c->frames = nf;
        c->cap = cap;
    }
    tile_frame *fr = &c->frames[c->nframes];
    if (!(fr->data = malloc(f->size))) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    memcpy(fr->data, f->data, f->size);
    fr->pts = f->pts;
    fr->width = f->width;
    fr->height = f->height;
    fr->format = f->format;
    c->nframes++;
    return WM_OK;
}

/* Paints row r of the group onto the canvas (w x h, fmt): each column's
 * frame r at its x offset, black where it has none. */
static void paint_row(const wm_tile *t, int r, uint8_t *canvas, int w, int h, wm_pixfmt fmt)
{
    const int cch = wm_pixfmt_channels(fmt);
    memset(canvas, 0, (size_t)w * h * cch);
    int x0 = 0;
    for (int i = 0; i < t->ncols; i++) {
        const tile_column *c = &t->cols[i];
        if (c->nframes == 0) continue;
        const int fw = c->frames[0].width;
        if (r < c->nframes) {
            const tile_frame *f = &c->frames[r];
            const int fch = wm_pixfmt_channels(f->format);
            for (int y = 0; y < f->height; y++) {
                const uint8_t *src = f->data + (size_t)y * f->width * fch;
                uint8_t *dst = canvas + ((size_t)y * w + x0) * cch;
                if (fch == cch) {
                    memcpy(dst, src, (size_t)f->width * fch);
                } else {   /* gray8 onto rgb24 */
                    for (int x = 0; x < f->width; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x];
                }
            }
        }
        x0 += fw;
    }
}

static wm_status send_pairs_header(wm_tile *t, wm_writer *out, const uint8_t *payload, size_t n, wm_error *err)
{
    wm_status st = wm_writer_send(out, t->mb.sbuf.data, t->mb.sbuf.size, payload, n, err);
    wm_msgbuf_reset(&t->mb);
    return st;
}

static wm_status emit_held(wm_tile *t, int inside, wm_writer *out, wm_error *err)
{
    for (int i = 0; i < t->nheld; i++) {
        if (t->held[i].inside != inside) continue;
        wm_status st = wm_writer_send(out, t->held[i].raw, t->held[i].len, NULL, 0, err);
        if (st != WM_OK) return st;
    }
    return WM_OK;
}

/* Writes the group as one clip and forgets it. */
static wm_status emit_group(wm_tile *t, wm_writer *out, wm_error *err)
{
    int w = 0, h = 0, rows = 0, all_gray = 1;
    for (int i = 0; i < t->ncols; i++) {
        const tile_column *c = &t->cols[i];
        if (c->nframes == 0) continue;
        w += c->frames[0].width;
        if (c->frames[0].height > h) h = c->frames[0].height;
        if (c->nframes > rows) rows = c->nframes;
        for (int k = 0; k < c->nframes; k++) all_gray &= c->frames[k].format == WM_PIX_GRAY8;
    }
    if (w > WM_MAX_DIM)
        return wm_error_set(err, WM_E_INPUT, "clip '%s': the tiled picture would be %d pixels wide, over %d",
                            t->cols[0].id, w, WM_MAX_DIM);
    const wm_pixfmt fmt = all_gray ? WM_PIX_GRAY8 : WM_PIX_RGB24;
    const size_t size = (size_t)w * h * wm_pixfmt_channels(fmt);
    if (size > t->canvas_cap) {
        uint8_t *nc = realloc(t->canvas, size);
        if (!nc) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        t->canvas = nc;
        t->canvas_cap = size;
    }
    const tile_column *first = &t->cols[0];
    wm_status st = emit_held(t, 0, out, err);
    if (st != WM_OK) return st;

    msgpack_packer *pk = &t->mb.pk;
    wm_msgbuf_reset(&t->mb);
    msgpack_pack_map(pk, 3 + (w > 0 ? 2 : 0) + (uint32_t)first->nlabels);
    wm_pack_kv_str(pk, "kind", "clip");
    wm_pack_kv_str(pk, "id", first->id);
    if (w > 0) {
        wm_pack_kv_i64(pk, "width", w);
        wm_pack_kv_i64(pk, "height", h);
    }
    wm_pack_str(pk, "tiles");
    msgpack_pack_array(pk, (size_t)t->ncols);
    for (int i = 0; i < t->ncols; i++) wm_pack_str(pk, t->cols[i].id);
    if (first->nlabels) msgpack_sbuffer_write(&t->mb.sbuf, first->labels.data, first->labels.size);
    if ((st = send_pairs_header(t, out, NULL, 0, err)) != WM_OK) return st;
    if ((st = emit_held(t, 1, out, err)) != WM_OK) return st;

    for (int r = 0; r < rows; r++) {
        double pts = 0;
        for (int i = 0; i < t->ncols; i++)
            if (r < t->cols[i].nframes) { pts = t->cols[i].frames[r].pts; break; }
        paint_row(t, r, t->canvas, w, h, fmt);
        const wm_frame_info fi = { first->id, r, pts, w, h, fmt };
        wm_proto_pack_frame(pk, &fi, 0);
        wm_proto_pack_data_header(pk, size);
        if ((st = send_pairs_header(t, out, t->canvas, size, err)) != WM_OK) return st;
        t->frames_out++;
    }

    const char *error = NULL, *error_clip = NULL;
    for (int i = 0; i < t->ncols && !error; i++)
        if (t->cols[i].error) { error = t->cols[i].error; error_clip = t->cols[i].id; }
    msgpack_pack_map(pk, error ? 4 : 3);
    wm_pack_kv_str(pk, "kind", "end");
    wm_pack_kv_str(pk, "clip", first->id);
    wm_pack_kv_i64(pk, "frames", rows);
    if (error) {
        wm_pack_str(pk, "error");
        size_t n = strlen(error_clip) + strlen(error) + 16;
        char *e = malloc(n);
        if (!e) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        snprintf(e, n, "clip %s: %s", error_clip, error);
        wm_pack_str(pk, e);
        free(e);
    }
    if ((st = send_pairs_header(t, out, NULL, 0, err)) != WM_OK) return st;
    t->clips_out++;
    group_clear(t);
    return WM_OK;
}

wm_status wm_tile_on_msg(void *ctx, const wm_msg *msg, wm_writer *out, wm_error *err)
{
    wm_tile *t = ctx;
    tile_column *c = NULL;
    wm_status st;
    if (wm_msg_is(msg, "clip")) {
        const char *id;
        size_t n;
        wm_msg_str(msg, "id", &id, &n);
        return column_begin(t, id, n, &msg->root, msg, &c, err);
    }
    if (wm_msg_is(msg, "frame")) {
        wm_frame_view f;
        if ((st = wm_proto_frame_get(msg, &f, err)) != WM_OK) return st;
        c = column_find(t, f.clip, f.clip_len);
        if (!c && (st = column_begin(t, f.clip, f.clip_len, NULL, msg, &c, err)) != WM_OK) return st;
        return add_frame(c, &f, msg, err);
    }
    if (wm_msg_is(msg, "end") && (c = column_of(t, msg, "clip")) != NULL) {
        const char *e;
        size_t n;
        c->ended = 1;
        if (wm_msg_str(msg, "error", &e, &n) == 0 && !c->error && !(c->error = strndup(e, n)))
            return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return t->ncols == t->across ? emit_group(t, out, err) : WM_OK;
    }
    if (t->ncols == 0) return wm_writer_forward(out, msg, err);
    return hold(t, msg, column_of(t, msg, "clip") != NULL, err);
}

wm_status wm_tile_on_finish(void *ctx, wm_writer *out, wm_error *err)
{
    wm_tile *t = ctx;
    return t->ncols > 0 ? emit_group(t, out, err) : WM_OK;
}
