/* wm-score-coherence: one plausibility score per clip from the world
 * model's surprise (libwm/wm_score.h; definitions in docs/scoring.md). */
#include <stdio.h>

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
    "frame 0), surprise_mean, surprise_max, peak_frame, peak_xy (pixels),\n"
    "plausibility (0..1, higher is more plausible), the model-free flicker,\n"
    "smoothness and consistency, and the clip's labels (synth, ...).  A clip that\n"
    "failed to decode, has NaN/Inf values or no predictions gets an error field\n"
    "instead, and the batch goes on.  The stream passes through; --only-scores\n"
    "keeps only the scores, --json prints one JSON object per clip (JSON Lines,\n"
    "in input order) instead of a stream.  --heatmap replaces each frame by a\n"
    "colour-mapped overlay of its per-cell surprise (a gray canvas when there are\n"
    "no frames), so wm-mux shows where physics broke.  --thumbs adds a PNG strip\n"
    "of the frames around the peak (thumbs, a data: URI) for wm-report.\n"
    "Definitions and calibration: docs/scoring.md.",
    "  wm-decode clip.mp4 --size 64x64 | wm-encode-latent --keep-frames | wm-step |\n"
    "    wm-score-coherence --json\n"
    "  wm-synth --pairs 1 --category continuity | wm-encode-latent --keep-frames |\n"
    "    wm-step | wm-score-coherence --heatmap | wm-mux -o where_%03d.mp4"
};

typedef struct json_out {
    wm_writer *out;
    wm_strbuf line;
} json_out;

/* A score as one line of JSON: the score map without its kind, through the
 * stream writer (so a file is written under a temporary name too). */
static wm_status print_json(void *ctx, const msgpack_object *score, wm_error *err)
{
    json_out *j = ctx;
    wm_strbuf_reset(&j->line);
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
    int json = 0, first = 0;
    const wm_opt opts[] = {
        { "json", 'j', WM_OPT_FLAG, &json, NULL, "print one JSON object per clip instead of a stream", NULL, 0, 0 },
        { "only-scores", 's', WM_OPT_FLAG, &o.only_scores, NULL, "emit only the score messages", NULL, 0, 0 },
        { "heatmap", 0, WM_OPT_FLAG, &o.heatmap, NULL, "replace frames by surprise overlays", NULL, 0, 0 },
        { "heat-max", 0, WM_OPT_DOUBLE, &o.heat_max, "S", "cell surprise shown at full colour (default 4)", NULL, 1e-6, 1e6 },
        { "thumbs", 0, WM_OPT_FLAG, &o.thumbs, NULL, "add a PNG strip of the frames around the peak", NULL, 0, 0 },
        { "warmup", 0, WM_OPT_INT, &o.warmup, "N", "first predictions left out of the aggregates (default 3)", NULL, 0, 1000000 },
        { "center", 0, WM_OPT_DOUBLE, &o.center, "X", "surprise_mean at plausibility 0.5 (default: docs/scoring.md)", NULL, -1e6, 1e6 },
        { "scale", 0, WM_OPT_DOUBLE, &o.scale, "X", "width of the plausibility's logistic (default: docs/scoring.md)", NULL, 1e-9, 1e6 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    const char *const *inputs;
    int n_inputs;
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &n_inputs, &err);
    if (st == WM_OK && json && o.heatmap) st = wm_error_set(&err, WM_E_USAGE, "--json and --heatmap exclude each other");
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);

    if (json) o.only_scores = 1;   /* and the scores go to the JSON sink */
    wm_score_stage *stage = wm_score_stage_new(&o, &err);
    if (!stage) return wm_cli_exit(&tool, err.code, &err);
    json_out j = { NULL, { 0 } };
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
