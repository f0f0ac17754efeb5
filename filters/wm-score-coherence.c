/* wm-score-coherence: one plausibility score per clip from the world
 * model's surprise (libwm/wm_score.h; definitions in docs/scoring.md). */
#include <stdio.h>

#include <string.h>

#include "wm_cli.h"
#include "wm_json.h"
#include "wm_loop.h"
#include "wm_score.h"

static const wm_tool tool = {
    "wm-score-coherence", "score each clip's physical plausibility from the world model's surprise",
    "[options] [STREAM...]",
    "Reads each clip's latents and wm-step's pred messages (and its frames, when\n"
    "wm-encode-latent --keep-frames passed them) and, at each clip's end, emits\n"
    "one score message right before it: source, clip, frames, size, surprise (per\n"
    "frame, nats per latent element beyond what the model expected; null for\n"
    "frame 0), surprise_mean, surprise_max, surprise_clip (the mean with frames\n"
    "far past --frame-cap counting logarithmically), peak_frame, peak_xy\n"
    "(pixels), plausibility (0..1, higher is more plausible; from surprise_clip),\n"
    "the model-free flicker, smoothness and consistency, and the clip's labels\n"
    "(synth, ...).  A clip that failed to decode, has NaN/Inf values or no\n"
    "predictions gets an error field instead, and the batch goes on.  The stream\n"
    "passes through; --only-scores keeps only the scores (and each clip's clip\n"
    "and end), --json prints one JSON object per clip (JSON Lines, in input\n"
    "order) instead of a stream; --csv a CSV table.  --heatmap replaces each\n"
    "frame by a colour-mapped overlay of its per-cell surprise (a gray canvas\n"
    "when there are no frames), so wm-mux shows where physics broke.  --thumbs\n"
    "adds a PNG strip of the frames around the peak (thumbs, a data: URI) for\n"
    "wm-report.\n"
    "Definitions and calibration: docs/scoring.md.",
    "  wm-decode clip.mp4 --size 64x64 | wm-encode-latent --keep-frames | wm-step |\n"
    "    wm-score-coherence --json\n"
    "  wm-synth --pairs 1 --category continuity | wm-encode-latent --keep-frames |\n"
    "    wm-step | wm-score-coherence --heatmap | wm-mux -o where_%03d.mp4"
};

typedef struct json_out {
    wm_writer *out;
    wm_strbuf line;
    int csv, header_done;
} json_out;

static const char *const csv_columns[] = { "source", "clip", "frames", "plausibility", "surprise_mean",
                                           "surprise_max", "peak_frame", "peak_xy", "flicker", "smoothness",
                                           "consistency", "error", "surprise_clip", NULL };

/* One CSV field (RFC 4180 quoting) from a score value; arrays and maps as
 * their JSON text (peak_xy: "x y"). */
static void csv_field(wm_strbuf *b, const msgpack_object *v, const char *col)
{
    if (!v || v->type == MSGPACK_OBJECT_NIL) return;
    wm_strbuf t;
    wm_strbuf_init(&t);
    if (v->type == MSGPACK_OBJECT_STR) wm_strbuf_add(&t, v->via.str.ptr, v->via.str.size);
    else if (strcmp(col, "peak_xy") == 0 && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 2)
        wm_strbuf_addf(&t, "%lld %lld", (long long)v->via.array.ptr[0].via.i64,
                       (long long)v->via.array.ptr[1].via.i64);
    else wm_json_obj(&t, v, NULL, NULL);
    int quote = 0;
    for (size_t i = 0; i < t.len; i++) quote |= t.s[i] == ',' || t.s[i] == '"' || t.s[i] == '\n' || t.s[i] == '\r';
    if (!quote) { wm_strbuf_add(b, t.s ? t.s : "", t.len); wm_strbuf_free(&t); return; }
    wm_strbuf_add(b, "\"", 1);
    for (size_t i = 0; i < t.len; i++) {
        if (t.s[i] == '"') wm_strbuf_add(b, "\"", 1);
        wm_strbuf_add(b, t.s + i, 1);
    }
    wm_strbuf_add(b, "\"", 1);
    wm_strbuf_free(&t);
}

static void csv_line(json_out *j, const msgpack_object *score)
{
    if (!j->header_done) {
        for (int c = 0; csv_columns[c]; c++) wm_strbuf_addf(&j->line, "%s%s", c ? "," : "", csv_columns[c]);
        wm_strbuf_add(&j->line, ",labels\n", 8);
        j->header_done = 1;
    }
    for (int c = 0; csv_columns[c]; c++) {
        if (c) wm_strbuf_add(&j->line, ",", 1);
        csv_field(&j->line, wm_obj_get(score, csv_columns[c]), csv_columns[c]);
    }
    /* the labels: every other key except the per-frame curve and thumbnails, as one JSON object */
    static const char *const skip[] = { "kind", "size", "latent", "surprise", "thumbs", "thumbs_frames", NULL };
    msgpack_object labels = { .type = MSGPACK_OBJECT_MAP };
    msgpack_object_kv kv[64];
    uint32_t n = 0;
    for (uint32_t i = 0; i < score->via.map.size && n < 64; i++) {
        const msgpack_object *k = &score->via.map.ptr[i].key;
        int known = 0;
        for (int c = 0; csv_columns[c] && !known; c++) known = wm_obj_streq(k, csv_columns[c]);
        for (int c = 0; skip[c] && !known; c++) known = wm_obj_streq(k, skip[c]);
        if (!known) kv[n++] = score->via.map.ptr[i];
    }
    labels.via.map.size = n;
    labels.via.map.ptr = kv;
    wm_strbuf_add(&j->line, ",", 1);
    if (n) {
        wm_strbuf t;
        wm_strbuf_init(&t);
        wm_json_obj(&t, &labels, NULL, NULL);
        msgpack_object s = { .type = MSGPACK_OBJECT_STR };
        s.via.str.ptr = t.s;
        s.via.str.size = (uint32_t)t.len;
        csv_field(&j->line, &s, "labels");
        wm_strbuf_free(&t);
    }
    wm_strbuf_add(&j->line, "\n", 1);
}

/* A score as one line of JSON: the score map without its kind, through the
 * stream writer (so a file is written under a temporary name too). */
static wm_status print_json(void *ctx, const msgpack_object *score, wm_error *err)
{
    json_out *j = ctx;
    wm_strbuf_reset(&j->line);
    if (j->csv) {
        csv_line(j, score);
        goto send;
    }
    wm_strbuf_add(&j->line, "{", 1);
    int first = 1;
    for (uint32_t i = 0; i < score->via.map.size; i++) {
        const msgpack_object_kv *kv = &score->via.map.ptr[i];
        if (wm_obj_streq(&kv->key, "kind")) continue;
        if (!first) wm_strbuf_add(&j->line, ",", 1);
        first = 0;
        wm_json_obj(&j->line, &kv->key, NULL, NULL);
        wm_strbuf_add(&j->line, ":", 1);
        wm_json_obj(&j->line, &kv->val, NULL, NULL);
    }
    wm_strbuf_add(&j->line, "}\n", 2);
send:
    if (j->line.oom) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    wm_status st = wm_writer_send(j->out, j->line.s, j->line.len, NULL, 0, err);
    return st ? st : wm_writer_flush(j->out, err);   /* a line a clip, as it is done */
}

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    wm_score_options o;
    wm_score_options_default(&o);
    int json = 0, csv = 0, first = 0;
    const wm_opt opts[] = {
        { "json", 'j', WM_OPT_FLAG, &json, NULL, "print one JSON object per clip instead of a stream", NULL, 0, 0 },
        { "csv", 0, WM_OPT_FLAG, &csv, NULL, "print CSV (a header, then a row per clip) instead of a stream", NULL, 0, 0 },
        { "only-scores", 's', WM_OPT_FLAG, &o.only_scores, NULL, "emit only the scores (with each clip's clip and end messages)", NULL, 0, 0 },
        { "heatmap", 0, WM_OPT_FLAG, &o.heatmap, NULL, "replace frames by surprise overlays", NULL, 0, 0 },
        { "heat-max", 0, WM_OPT_DOUBLE, &o.heat_max, "S", "cell surprise shown at full colour (default 4)", NULL, 1e-6, 1e6 },
        { "thumbs", 0, WM_OPT_FLAG, &o.thumbs, NULL, "add a PNG strip of the frames around the peak", NULL, 0, 0 },
        { "warmup", 0, WM_OPT_INT, &o.warmup, "N", "first predictions left out of the aggregates (default 3)", NULL, 0, 1000000 },
        { "center", 0, WM_OPT_DOUBLE, &o.center, "X", "surprise_clip at plausibility 0.5 (default: docs/scoring.md)", NULL, -1e6, 1e6 },
        { "scale", 0, WM_OPT_DOUBLE, &o.scale, "X", "width of the plausibility's logistic (default: docs/scoring.md)", NULL, 1e-9, 1e6 },
        { "prior-weight", 0, WM_OPT_DOUBLE, &o.prior_weight, "W", "weight of the object prior's surprise when the preds carry it (default 0.4; 0: off)", NULL, 0, 1e6 },
        { "dyn-adapt", 0, WM_OPT_DOUBLE, &o.dyn_adapt, "A", "widen the dynamics' variance where this clip showed it over 1/A times overconfident (default 0.5; 0: off)", NULL, 0, 1e6 },
        { "frame-cap", 0, WM_OPT_DOUBLE, &o.frame_cap, "S", "frame surprise past which a frame counts logarithmically in surprise_clip (default 75; 0: the plain mean)", NULL, 0, 1e6 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    const char *const *inputs;
    int n_inputs;
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &n_inputs, &err);
    if (st == WM_OK && json + csv > 1) st = wm_error_set(&err, WM_E_USAGE, "--json and --csv exclude each other");
    if (st == WM_OK && (json || csv) && o.heatmap)
        st = wm_error_set(&err, WM_E_USAGE, "--heatmap writes a stream: it excludes --json and --csv");
    json |= csv;
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);

    if (json) o.only_scores = 1;   /* and the scores go to the JSON sink */
    wm_score_stage *stage = wm_score_stage_new(&o, &err);
    if (!stage) return wm_cli_exit(&tool, err.code, &err);
    json_out j = { NULL, { 0 }, csv, 0 };
    wm_strbuf_init(&j.line);
    wm_writer *out = wm_writer_open(common.out, &err);
    if (!out) st = err.code;
    else {
        j.out = out;
        if (json) wm_score_stage_set_sink(stage, print_json, &j);
        wm_stage s = wm_score_stage_get(stage);
        st = wm_loop_run(inputs, n_inputs, common.max_message, out, &s, &err);
        if (st == WM_OK) st = wm_writer_close(out, &err);
    }
    if (common.verbose && !common.quiet) {
        wm_score_stats ss;
        wm_score_stage_stats(stage, &ss);
        fprintf(stderr, "wm-score-coherence: %llu clips scored, %llu with an error\n", (unsigned long long)ss.clips,
                (unsigned long long)ss.errors);
    }
    wm_strbuf_free(&j.line);
    wm_writer_free(&out);
    wm_score_stage_free(&stage);
    return wm_cli_exit(&tool, st, &err);
}
