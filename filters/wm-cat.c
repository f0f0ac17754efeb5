/* wm-cat: any wm stream as JSON Lines, a per-clip summary, or a validated
 * pass-through.  The jq-friendly window into every pipeline. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_cli.h"
#include "wm_json.h"
#include "wm_loop.h"
#include "wm_proto.h"

static const wm_tool tool = {
    "wm-cat", "print a wm stream as JSON Lines, summarise it, or pass it through",
    "[options] [STREAM...]",
    "Reads the streams (files, or stdin when none or -) in order.  Default: one JSON\n"
    "object per message, payloads summarised as {bytes, min, mean, max} (pixels as\n"
    "bytes, latents as floats).  --data prints payloads in full (pixels and latents as\n"
    "number arrays, other binaries as base64).  --stats prints one object per clip.\n"
    "--pass copies the stream through, validated, for pipelines.",
    "  wm-decode clip.mp4 --size 64x64 | wm-cat | jq -c 'select(.kind==\"frame\") | .pts'\n"
    "  wm-cat --stats archive.wms\n"
    "  wm-decode a.mp4 > a.wms && wm-cat --pass a.wms | wm-mux -o a.mkv"
};

typedef struct clip_stats {
    char id[128];
    char source[512];
    long long frames, latents, preds, others, bytes;
    long long declared_frames;   /* from end; -1 until seen */
    int width, height;
    double first_pts, last_pts;
    double pixel_sum;
    long long pixel_count;
    int active;
} clip_stats;

typedef struct cat_ctx {
    int data, stats, pass;
    const char *kinds;           /* comma list, NULL = all */
    wm_strbuf line;
    clip_stats clip;
    FILE *out;
    const char *out_name;        /* for errors: "stdout" or the --out file */
} cat_ctx;

/* Summaries of tensors and pixels, in the dtype the message declares. */
typedef struct bin_ctx {
    const cat_ctx *cat;
    const wm_msg *msg;
} bin_ctx;

static double tensor_value(const uint8_t *p, size_t i, int f16)
{
    if (f16) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return wm_f16_to_f32(h);
    }
    float f;
    memcpy(&f, p + 4 * i, 4);
    return f;
}

static void write_bin(void *vctx, wm_strbuf *b, const char *key, size_t key_len, const msgpack_object *bin)
{
    const bin_ctx *bc = vctx;
    const uint8_t *p = (const uint8_t *)bin->via.bin.ptr;
    size_t n = bin->via.bin.size;
    int is_pixels = wm_msg_is(bc->msg, "frame") && key_len == 4 && memcmp(key, "data", 4) == 0;
    int is_tensor = (wm_msg_is(bc->msg, "latent") || wm_msg_is(bc->msg, "pred")) && key &&
                    ((key_len == 4 && memcmp(key, "data", 4) == 0) || (key_len == 3 && memcmp(key, "var", 3) == 0));
    int f16 = wm_obj_streq(wm_msg_get(bc->msg, "dtype"), "f16");
    size_t count = is_pixels ? n : is_tensor ? n / (f16 ? 2 : 4) : 0;
    if (bc->cat->data) {
        if (!is_pixels && !is_tensor) { wm_json_base64(b, p, n); return; }
        wm_strbuf_add(b, "[", 1);
        for (size_t i = 0; i < count; i++) {
            if (i) wm_strbuf_add(b, ",", 1);
            if (is_pixels) wm_strbuf_addf(b, "%u", p[i]);
            else wm_json_num(b, tensor_value(p, i, f16));
        }
        wm_strbuf_add(b, "]", 1);
        return;
    }
    wm_strbuf_addf(b, "{\"bytes\":%zu", n);
    if (count) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        size_t finite = 0;
        for (size_t i = 0; i < count; i++) {
            double v = is_pixels ? p[i] : tensor_value(p, i, f16);
            if (!isfinite(v)) continue;
            finite++;
            sum += v;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        if (finite) {
            wm_strbuf_add(b, ",\"min\":", 7); wm_json_num(b, lo);
            wm_strbuf_add(b, ",\"mean\":", 8); wm_json_num(b, sum / (double)finite);
            wm_strbuf_add(b, ",\"max\":", 7); wm_json_num(b, hi);
        }
        if (finite < count) wm_strbuf_addf(b, ",\"nonfinite\":%zu", count - finite);
    }
    wm_strbuf_add(b, "}", 1);
}

static int kind_selected(const cat_ctx *c, const wm_msg *m)
{
    if (!c->kinds) return 1;
    const char *p = c->kinds;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == m->kind_len && memcmp(p, m->kind, n) == 0) return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

static wm_status emit_line(cat_ctx *c, wm_error *err)
{
    wm_strbuf_add(&c->line, "\n", 1);
    if (c->line.oom) return wm_error_set(err, WM_E_SYSTEM, "out of memory formatting JSON");
    if (fwrite(c->line.s, 1, c->line.len, c->out) != c->line.len)
        return wm_error_set(err, WM_E_OUTPUT, "%s: write failed: %s", c->out_name, strerror(errno));
    wm_strbuf_reset(&c->line);
    return WM_OK;
}

static wm_status stats_flush(cat_ctx *c, int complete, wm_error *err)
{
    clip_stats *s = &c->clip;
    if (!s->active) return WM_OK;
    wm_strbuf *b = &c->line;
    wm_strbuf_add(b, "{\"clip\":", 8);
    wm_json_str(b, s->id, strlen(s->id));
    wm_strbuf_add(b, ",\"source\":", 10);
    wm_json_str(b, s->source, strlen(s->source));
    wm_strbuf_addf(b, ",\"complete\":%s,\"frames\":%lld,\"latents\":%lld,\"preds\":%lld,\"other\":%lld,\"bytes\":%lld",
                   complete ? "true" : "false", s->frames, s->latents, s->preds, s->others, s->bytes);
    if (s->declared_frames >= 0) wm_strbuf_addf(b, ",\"end_frames\":%lld", s->declared_frames);
    if (s->width) wm_strbuf_addf(b, ",\"width\":%d,\"height\":%d", s->width, s->height);
    if (s->frames || s->latents) {
        wm_strbuf_add(b, ",\"first_pts\":", 13); wm_json_num(b, s->first_pts);
        wm_strbuf_add(b, ",\"last_pts\":", 12); wm_json_num(b, s->last_pts);
    }
    if (s->pixel_count) {
        wm_strbuf_add(b, ",\"pixel_mean\":", 14);
        wm_json_num(b, s->pixel_sum / (double)s->pixel_count);
    }
    wm_strbuf_add(b, "}", 1);
    s->active = 0;
    return emit_line(c, err);
}

static void stats_note_pts(clip_stats *s, const wm_msg *m)
{
    double pts;
    if (wm_msg_f64(m, "pts", &pts) != 0) return;
    if (s->frames + s->latents == 0) s->first_pts = pts;
    s->last_pts = pts;
}

static wm_status stats_msg(cat_ctx *c, const wm_msg *m, wm_error *err)
{
    clip_stats *s = &c->clip;
    wm_status st;
    if (wm_msg_is(m, "clip")) {
        if ((st = stats_flush(c, 0, err))) return st;
        memset(s, 0, sizeof *s);
        s->active = 1;
        s->declared_frames = -1;
        wm_obj_strcpy(&m->root, "id", s->id, sizeof s->id);
        wm_obj_strcpy(&m->root, "source", s->source, sizeof s->source);
        return WM_OK;
    }
    if (!s->active) return WM_OK;   /* messages outside a clip (stream, ...) */
    s->bytes += (long long)m->len;
    if (wm_msg_is(m, "frame")) {
        wm_frame_view v;
        if ((st = wm_proto_frame_get(m, &v, err))) return st;
        stats_note_pts(s, m);
        s->frames++;
        s->width = v.width;
        s->height = v.height;
        for (size_t i = 0; i < v.size; i++) s->pixel_sum += v.data[i];
        s->pixel_count += (long long)v.size;
    } else if (wm_msg_is(m, "latent")) {
        stats_note_pts(s, m);
        s->latents++;
    } else if (wm_msg_is(m, "pred")) {
        s->preds++;
    } else if (wm_msg_is(m, "end")) {
        int64_t n = 0;
        wm_msg_i64(m, "frames", &n);
        s->declared_frames = n;
        return stats_flush(c, 1, err);
    } else {
        s->others++;
    }
    return WM_OK;
}

static wm_status cat_msg(void *vctx, const wm_msg *m, wm_writer *out, wm_error *err)
{
    cat_ctx *c = vctx;
    if (c->pass) return kind_selected(c, m) ? wm_writer_forward(out, m, err) : WM_OK;
    if (c->stats) return stats_msg(c, m, err);
    if (!kind_selected(c, m)) return WM_OK;
    bin_ctx bc = { c, m };
    wm_json_obj(&c->line, &m->root, write_bin, &bc);
    return emit_line(c, err);
}

static wm_status cat_finish(void *vctx, wm_writer *out, wm_error *err)
{
    cat_ctx *c = vctx;
    wm_status st = c->stats ? stats_flush(c, 0, err) : WM_OK;
    if (st == WM_OK && !c->pass && fflush(c->out) != 0)
        return wm_error_set(err, WM_E_OUTPUT, "%s: write failed: %s", c->out_name, strerror(errno));
    return st;
}

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    cat_ctx c = { 0 };
    int first = 0;
    const wm_opt opts[] = {
        { "pass", 0, WM_OPT_FLAG, &c.pass, NULL, "copy the stream through unchanged (validated)", NULL, 0, 0 },
        { "stats", 0, WM_OPT_FLAG, &c.stats, NULL, "one JSON summary per clip", NULL, 0, 0 },
        { "data", 0, WM_OPT_FLAG, &c.data, NULL, "print payloads in full", NULL, 0, 0 },
        { "kind", 'k', WM_OPT_STRING, &c.kinds, "LIST", "only messages of these kinds (comma list)", NULL, 0, 0 },
        { 0 } };
    const char *const *inputs;
    int ninputs;
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &ninputs, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    if (c.pass + c.stats + c.data > 1) {
        wm_error_set(&err, WM_E_USAGE, "--pass, --stats and --data exclude each other");
        return wm_cli_exit(&tool, WM_E_USAGE, &err);
    }
    /* JSON goes to stdout through stdio; the stream writer only for --pass */
    wm_writer *out = wm_writer_open(c.pass ? common.out : "-", &err);
    if (!out) return wm_cli_exit(&tool, err.code, &err);
    c.out = stdout;
    c.out_name = "stdout";
    if (!c.pass && common.out && strcmp(common.out, "-") != 0 && !(c.out = fopen(c.out_name = common.out, "w"))) {
        wm_error_set(&err, WM_E_OUTPUT, "%s: cannot open for writing: %s", common.out, strerror(errno));
        wm_writer_free(&out);
        return wm_cli_exit(&tool, WM_E_OUTPUT, &err);
    }
    wm_strbuf_init(&c.line);
    wm_stage stage = { &c, cat_msg, cat_finish };
    st = wm_loop_run(inputs, ninputs, common.max_message, out, &stage, &err);
    if (st == WM_OK && c.pass) st = wm_writer_close(out, &err);
    if (c.out != stdout && fclose(c.out) != 0 && st == WM_OK)
        st = wm_error_set(&err, WM_E_OUTPUT, "%s: write failed: %s", common.out, strerror(errno));
    if (errno == EPIPE && st == WM_E_OUTPUT) st = WM_E_PIPE;
    wm_strbuf_free(&c.line);
    wm_writer_free(&out);
    return wm_cli_exit(&tool, st, &err);
}
