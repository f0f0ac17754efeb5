/* wm-encode-latent: frames -> latent grids with the model's tokenizer. */
#include <stdio.h>

#include "wm_cli.h"
#include "wm_loop.h"
#include "wm_model.h"
#include "wm_nn.h"
#include "wm_tokenizer_stage.h"

static const wm_tool tool = {
    "wm-encode-latent", "turn frames into latent grids with the tokenizer", "[options] [STREAM...]",
    "Each frame (sides multiples of 4) becomes a latent message with the same clip,\n"
    "index and pts: shape [H/4, W/4, C] (channel-last), dtype f32, plus the frame's\n"
    "extra keys.  Every other message passes through.  The model is --model PATH,\n"
    "else $WM_MODEL, else the shipped models/wm-default.safetensors.",
    "  wm-synth --clips 4 | wm-encode-latent | wm-cat\n"
    "  wm-decode video.mp4 --size 64x64 | wm-encode-latent --keep-frames > both.wm"
};

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *model_opt = NULL;
    int keep = 0, batch = 1, threads = 1, first = 0;
    const wm_opt opts[] = {
        { "model", 'm', WM_OPT_STRING, &model_opt, "PATH", "model file (default: the shipped model)", NULL, 0, 0 },
        { "keep-frames", 'k', WM_OPT_FLAG, &keep, NULL, "pass each frame through before its latent", NULL, 0, 0 },
        { "batch", 'b', WM_OPT_INT, &batch, "N", "encode up to N frames at once (default 1: streaming)", NULL, 1, 4096 },
        { "threads", 't', WM_OPT_INT, &threads, "N", "BLAS threads (default 1)", NULL, 1, 256 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    wm_nn_set_threads(threads);
    char path[4096];
    if ((st = wm_model_resolve(model_opt, path, sizeof path, &err))) return wm_cli_exit(&tool, st, &err);
    wm_tokenizer *tk = wm_tokenizer_load(path, &err);
    if (!tk) return wm_cli_exit(&tool, err.code == WM_E_INPUT ? WM_E_USAGE : err.code, &err);
    wm_tokenizer_stage *stage = wm_tokenizer_stage_new(tk, WM_TOKENIZER_ENCODE, keep, batch, &err);
    wm_writer *out = stage ? wm_writer_open(common.out, &err) : NULL;
    if (!out) st = err.code;
    else {
        wm_stage s = wm_tokenizer_stage_get(stage);
        st = wm_loop_run((const char *const *)argv + first, argc - first, common.max_message, out, &s, &err);
        if (st == WM_OK) st = wm_writer_close(out, &err);
        if (common.verbose && !common.quiet)
            fprintf(stderr, "wm-encode-latent: %llu frames, %.1f frames/s in the network (%s)\n",
                    (unsigned long long)wm_tokenizer_stage_items(stage),
                    wm_tokenizer_stage_items(stage) / (wm_tokenizer_stage_seconds(stage) + 1e-9), path);
    }
    wm_writer_free(&out);
    wm_tokenizer_stage_free(&stage);
    wm_tokenizer_free(&tk);
    return wm_cli_exit(&tool, st, &err);
}
