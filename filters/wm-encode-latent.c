/* wm-encode-latent: frames -> latent grids with the model's tokenizer. */
#include <stdio.h>

#include "wm_cli.h"
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
    const char *const *inputs;
    int ninputs;
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &ninputs, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    wm_nn_set_threads(threads);
    wm_tokenizer_report rep;
    st = wm_tokenizer_stage_run(model_opt, WM_TOKENIZER_ENCODE, keep, batch, inputs, ninputs, common.out,
                                common.max_message, &rep, &err);
    if (common.verbose && !common.quiet && rep.items)
        fprintf(stderr, "wm-encode-latent: %llu frames, %.1f frames/s in the network (%s)\n", (unsigned long long)rep.items,
                rep.items / (rep.seconds + 1e-9), rep.model);
    return wm_cli_exit(&tool, st, &err);
}
