/* wm-decode-frame: latent grids -> frames with the model's tokenizer. */
#include <stdio.h>

#include "wm_cli.h"
#include "wm_nn.h"
#include "wm_tokenizer_stage.h"

static const wm_tool tool = {
    "wm-decode-frame", "turn latent grids back into frames with the tokenizer", "[options] [STREAM...]",
    "Each latent (shape [h, w, C], f32 or f16; imagined ones too) becomes an rgb24\n"
    "frame of 4w x 4h with the latent's clip, index, pts and extra keys (such as\n"
    "imagined).  Every other message passes through.  The model is --model PATH,\n"
    "else $WM_MODEL, else the shipped models/wm-default.safetensors.",
    "  wm-synth --clips 1 | wm-encode-latent | wm-decode-frame | wm-mux -o out.mp4"
};

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *model_opt = NULL;
    int keep = 0, batch = 1, threads = 1, first = 0;
    const wm_opt opts[] = {
        { "model", 'm', WM_OPT_STRING, &model_opt, "PATH", "model file (default: the shipped model)", NULL, 0, 0 },
        { "keep-latents", 'k', WM_OPT_FLAG, &keep, NULL, "pass each latent through before its frame", NULL, 0, 0 },
        { "batch", 'b', WM_OPT_INT, &batch, "N", "decode up to N latents at once (default 1: streaming)", NULL, 1, 4096 },
        { "threads", 't', WM_OPT_INT, &threads, "N", "BLAS threads (default 1)", NULL, 1, 256 },
        { 0 } };
    const char *const *inputs;
    int ninputs;
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &ninputs, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    wm_nn_set_threads(threads);
    wm_tokenizer_report rep;
    st = wm_tokenizer_stage_run(model_opt, WM_TOKENIZER_DECODE, keep, batch, inputs, ninputs, common.out,
                                common.max_message, &rep, &err);
    if (common.verbose && !common.quiet && rep.items)
        fprintf(stderr, "wm-decode-frame: %llu latents, %.1f latents/s in the network (%s)\n", (unsigned long long)rep.items,
                rep.items / (rep.seconds + 1e-9), rep.model);
    return wm_cli_exit(&tool, st, &err);
}
