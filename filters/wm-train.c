/* wm-train: trains the parts of the model file, one subcommand each
 * (git's builtins: a table of cmd_* over one option parser). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wm_cli.h"
#include "wm_detect_train.h"
#include "wm_dynamics_train.h"
#include "wm_nn.h"
#include "wm_prior.h"
#include "wm_proto.h"
#include "wm_signal.h"
#include "wm_train.h"

/* ---- wm-train tokenizer ---- */

static const wm_tool tokenizer_tool = {
    "wm-train tokenizer", "train the latent tokenizer on frames", "--model PATH [options] [STREAM...]",
    "Reads frames from each STREAM (default stdin) into memory, then trains the\n"
    "convolutional autoencoder with Adam on random crops, starting from the\n"
    "per-patch PCA code of the data (or --init PATH, or --random-init), and writes it into the\n"
    "model file PATH (tensors tokenizer.*; other parts of an existing file, such as\n"
    "the dynamics model, are kept).  Each STREAM is a source: batches draw from the\n"
    "sources by --weights (default equal), so a short real video counts as much as\n"
    "a long synthetic one.  Progress goes to stderr every --log-every seconds;\n"
    "a checkpoint (parameters, Adam state, step) is written every\n"
    "--checkpoint-every seconds and on SIGINT, and --resume continues from it\n"
    "exactly.  The run is deterministic for a --seed, data and --threads.  The\n"
    "checkpoint is removed once the model is written.",
    "  wm-synth --clips 200 --size 64x64 > synth.wm\n"
    "  wm-decode motion.mov --size 64x64 > real.wm\n"
    "  wm-train tokenizer --model model.safetensors --steps 3000 synth.wm real.wm"
};

typedef struct report_ctx {
    int quiet;
    const char *name;
} report_ctx;

static void format_duration(char *out, size_t cap, double s)
{
    if (s < 60) snprintf(out, cap, "%.0fs", s);
    else if (s < 3600) snprintf(out, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

/* A command's exit: an interrupted run says where it stopped (and where its
 * checkpoint is) rather than only "interrupted". */
static int train_exit(const wm_tool *tool, wm_status st, wm_error *err)
{
    if (st == WM_E_INTERRUPTED) {
        fprintf(stderr, "%s: %s\n", tool->name, err->msg);
        return wm_exit_code(st);
    }
    return wm_cli_exit(tool, st, err);
}

/* elapsed and ETA of a progress report, as text (32 bytes each) */
static void report_times(char el[32], char eta[32], double elapsed, double remaining)
{
    format_duration(el, 32, elapsed);
    format_duration(eta, 32, remaining);
}

/* A command's options; every command writes into a model file, so --model
 * (the command's variable, *model_given) is required. */
static wm_status parse_command(const wm_tool *tool, const wm_opt *opts, wm_common *common, int argc, char **argv,
                               int *first, const char *const *model_given, wm_error *err)
{
    wm_status st = wm_cli_parse(tool, opts, common, argc, argv, first, err);
    if (st == WM_OK && !*model_given) st = wm_error_set(err, WM_E_USAGE, "--model PATH is required");
    return st;
}

/* The model file's tokenizer: it fixes C, encodes frame streams, and stays
 * in the file.  NULL with a message saying how to make one. */
static wm_tokenizer *model_tokenizer(const char *model, wm_error *err)
{
    wm_tokenizer *tk = wm_tokenizer_load(model, err);
    if (!tk) wm_error_prefix(err, "--model (train the tokenizer into it first: wm-train tokenizer --model %s)", model);
    return tk;
}

/* Every STREAM argument (none: stdin) into cs, one source each; *seconds: how long it took. */
static wm_status read_clips(wm_clipset *cs, int n_inputs, char **inputs, size_t max_message, wm_tokenizer *tk,
                            double *seconds, wm_error *err)
{
    const double t0 = wm_now();
    wm_status st = WM_OK;
    for (int i = 0; st == WM_OK && i < (n_inputs ? n_inputs : 1); i++)
        st = wm_clipset_read(cs, n_inputs ? inputs[i] : NULL, i, max_message, tk, err);
    *seconds = wm_now() - t0;
    return st;
}

static void report(void *ctx, const wm_train_progress *p)
{
    const report_ctx *r = ctx;
    if (r->quiet) return;
    char eta[32], el[32];
    report_times(el, eta, p->elapsed, p->eta);
    fprintf(stderr, "%s: step %ld/%ld  loss %.6f  PSNR %.2f dB  %.0f frames/s  lr %.2e  |g| %.3g  %s  ETA %s%s%s\n",
            r->name, p->step, p->steps, p->loss, p->psnr, p->frames_per_s, (double)p->lr, p->grad_norm, el, eta,
            p->checkpointed ? "  checkpoint " : "", p->checkpointed ? p->checkpointed : "");
}

static int should_stop(void *ctx)
{
    (void)ctx;
    return wm_signal_pending();
}

/* "1,0.5,2" -> one weight per input stream (n_streams of them), or NULL */
static wm_status parse_weights(const char *text, int n_streams, double **out, wm_error *err)
{
    *out = NULL;
    if (!text) return WM_OK;
    double *w = calloc(strlen(text) + 1, sizeof *w);
    if (!w) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    const char *p = text;
    int n = 0;
    for (;;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0 || v > 1e6) {
            free(w);
            return wm_error_set(err, WM_E_USAGE, "--weights: '%s' is not a list of non-negative numbers", text);
        }
        w[n++] = v;
        if (*end == '\0') break;
        if (*end != ',') {
            free(w);
            return wm_error_set(err, WM_E_USAGE, "--weights: '%s' is not a comma-separated list", text);
        }
        p = end + 1;
    }
    if (n != n_streams) {
        free(w);
        return wm_error_set(err, WM_E_USAGE, "--weights has %d values for %d streams", n, n_streams);
    }
    *out = w;
    return WM_OK;
}

static int cmd_tokenizer(int argc, char **argv)
{
    const wm_tool *tool = &tokenizer_tool;
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *model = NULL, *checkpoint = NULL, *init = NULL, *weights_text = NULL;
    wm_tokenizer_config cfg = wm_tokenizer_default_config();
    wm_size crop = { 64, 64 };
    int steps = 2000, batch = 16, warmup = -1, seed = 1, flip = 0, resume = 0, threads = 1, first = 0, random_init = 0;
    int max_frames = 100000;
    double lr = 1e-3, lr_floor = 0.02, clip = 1.0, ckpt_every = 300, log_every = 10;
    const wm_opt opts[] = {
        { "model", 'm', WM_OPT_STRING, &model, "PATH", "model file to write (required)", NULL, 0, 0 },
        { "steps", 0, WM_OPT_INT, &steps, "N", "optimizer steps (default 2000)", NULL, 0, 100000000 },
        { "batch", 'b', WM_OPT_INT, &batch, "N", "frames per step (default 16)", NULL, 1, 4096 },
        { "lr", 0, WM_OPT_DOUBLE, &lr, "X", "peak learning rate (default 1e-3)", NULL, 1e-7, 1 },
        { "warmup", 0, WM_OPT_INT, &warmup, "N", "warm-up steps (default steps/50)", NULL, 0, 100000000 },
        { "lr-floor", 0, WM_OPT_DOUBLE, &lr_floor, "F", "final lr as a fraction of the peak (default 0.02)", NULL, 0, 1 },
        { "clip", 0, WM_OPT_DOUBLE, &clip, "NORM", "clip the global gradient norm to NORM, 0: off (default 1)", NULL, 0, 1e9 },
        { "seed", 0, WM_OPT_INT, &seed, "S", "random seed for weights and batches (default 1)", NULL, 0, 2147483647 },
        { "crop", 0, WM_OPT_SIZE, &crop, "WxH", "training crop, multiples of 4 (default 64x64)", NULL, 0, 0 },
        { "flip", 0, WM_OPT_FLAG, &flip, NULL, "also train on mirror images", NULL, 0, 0 },
        { "weights", 0, WM_OPT_STRING, &weights_text, "W,W,...", "sampling weight of each STREAM", NULL, 0, 0 },
        { "max-frames", 0, WM_OPT_INT, &max_frames, "N", "frames kept per STREAM, a uniform sample (default 100000)", NULL, 1, 100000000 },
        { "latent-channels", 'c', WM_OPT_INT, &cfg.latent_channels, "C", "channels of the latent grid, 4-16 (default 8)", NULL, 4, 16 },
        { "hidden", 0, WM_OPT_INT, &cfg.hidden, "N", "hidden channels (default 64)", NULL, 8, 256 },
        { "blocks", 0, WM_OPT_INT, &cfg.blocks, "N", "residual blocks per half (default 2)", NULL, 0, 8 },
        { "init", 0, WM_OPT_STRING, &init, "PATH", "start from the tokenizer in PATH", NULL, 0, 0 },
        { "random-init", 0, WM_OPT_FLAG, &random_init, NULL, "start from random weights, not from the data's PCA code", NULL, 0, 0 },
        { "checkpoint", 0, WM_OPT_STRING, &checkpoint, "PATH", "checkpoint file (default MODEL.ckpt)", NULL, 0, 0 },
        { "checkpoint-every", 0, WM_OPT_DOUBLE, &ckpt_every, "SECONDS", "checkpoint interval (default 300)", NULL, 1, 1e9 },
        { "resume", 0, WM_OPT_FLAG, &resume, NULL, "continue from the checkpoint", NULL, 0, 0 },
        { "log-every", 0, WM_OPT_DOUBLE, &log_every, "SECONDS", "progress interval (default 10)", NULL, 0, 1e9 },
        { "threads", 't', WM_OPT_INT, &threads, "N", "BLAS threads (default 1)", NULL, 1, 256 },
        { 0 } };
    wm_status st = parse_command(tool, opts, &common, argc, argv, &first, &model, &err);
    if (st != WM_OK) return wm_cli_exit(tool, st, &err);
    if (crop.w % WM_TOKENIZER_PATCH || crop.h % WM_TOKENIZER_PATCH)
        return wm_cli_exit(tool, wm_error_set(&err, WM_E_USAGE, "--crop %dx%d: sides must be multiples of 4", crop.w, crop.h), &err);
    wm_nn_set_threads(threads);

    char ckpt_default[4200];
    if (!checkpoint) {
        snprintf(ckpt_default, sizeof ckpt_default, "%s.ckpt", model);
        checkpoint = ckpt_default;
    }
    double *weights = NULL;
    int n_inputs = argc - first;
    if ((st = parse_weights(weights_text, n_inputs ? n_inputs : 1, &weights, &err))) return wm_cli_exit(tool, st, &err);

    wm_tokenizer *tk = init ? wm_tokenizer_load(init, &err) : wm_tokenizer_new(&cfg, (uint64_t)seed, &err);
    wm_frameset *fs = tk ? wm_frameset_new((size_t)max_frames, (uint64_t)seed, &err) : NULL;
    if (!tk || !fs) st = err.code;
    /* read every input: each is a source */
    double t_read = wm_now();
    for (int i = 0; st == WM_OK && i < (n_inputs ? n_inputs : 1); i++) {
        st = wm_frameset_read(fs, n_inputs ? argv[first + i] : NULL, i, common.max_message, crop.w, crop.h, &err);
    }
    report_ctx rc = { common.quiet, tool->name };
    if (st == WM_OK && !common.quiet) {
        fprintf(stderr, "%s: %zu frames from %d stream%s in %.1fs; %s C=%d hidden=%d blocks=%d, %zu parameters\n",
                tool->name, wm_frameset_count(fs), wm_frameset_sources(fs), wm_frameset_sources(fs) > 1 ? "s" : "",
                wm_now() - t_read, WM_TOKENIZER_ARCH, wm_tokenizer_get_config(tk)->latent_channels,
                wm_tokenizer_get_config(tk)->hidden, wm_tokenizer_get_config(tk)->blocks,
                wm_tokenizer_params(tk)->total);
    }
    wm_train_options o = { 0 };
    o.steps = steps;
    o.batch = batch;
    o.crop_w = crop.w;
    o.crop_h = crop.h;
    o.lr = (float)lr;
    o.warmup = warmup >= 0 ? warmup : steps / 50;
    o.lr_floor = (float)lr_floor;
    o.clip = (float)clip;
    o.seed = (uint64_t)seed;
    o.flip = flip;
    o.pca_init = !init && !random_init;
    o.weights = weights;
    o.checkpoint = checkpoint;
    o.checkpoint_every = ckpt_every;
    o.log_every = log_every;
    if (st == WM_OK) st = wm_train_tokenizer(tk, fs, &o, resume, report, should_stop, &rc, &err);
    if (st == WM_OK) {
        char num[4][32];
        snprintf(num[0], sizeof num[0], "%d", steps);
        snprintf(num[1], sizeof num[1], "%d", batch);
        snprintf(num[2], sizeof num[2], "%d", seed);
        snprintf(num[3], sizeof num[3], "%zu", wm_frameset_count(fs));
        const char *meta[] = { "train.steps", num[0], "train.batch", num[1], "train.seed", num[2],
                               "train.frames", num[3] };
        size_t kept = 0;
        st = wm_train_save_tokenizer(tk, model, meta, 4, &kept, &err);
        if (st == WM_OK) {
            unlink(checkpoint);
            if (!common.quiet)
                fprintf(stderr, "%s: wrote %s%s\n", tool->name, model,
                        kept ? " (kept its other tensors; a dynamics model trained on the old tokenizer must be "
                               "retrained)" : "");
        }
    }
    free(weights);
    wm_frameset_free(&fs);
    wm_tokenizer_free(&tk);
    return train_exit(tool, st, &err);
}

/* ---- wm-train dynamics ---- */

static const wm_tool dynamics_tool = {
    "wm-train dynamics", "train the latent dynamics model on clips", "--model PATH [options] [STREAM...]",
    "Reads clips from each STREAM (default stdin): latents (wm-encode-latent's\n"
    "output), or frames, which are encoded with the tokenizer in PATH.  Trains the\n"
    "recurrent predictor (two ConvGRU layers and a Gaussian head, docs/model.md)\n"
    "with truncated backpropagation through time and Adam: each step is a chunk of\n"
    "--tbptt predictions of --batch windows of --seq + 1 latents, the state carried\n"
    "from chunk to chunk.  The loss is the Gaussian NLL (beta-NLL, --beta), so the\n"
    "predicted variance is calibrated.  Writes the model into PATH beside its\n"
    "tokenizer (tensors dynamics.*).  With --rollout-p some windows are fed the\n"
    "model's own predictions from a random step on (scheduled sampling, ramped up\n"
    "over the first 30% of the steps), so rollouts learn from their own errors.\n"
    "Progress (NLL per value, the squared error\n"
    "against predicting no change) goes to stderr every --log-every seconds; a\n"
    "checkpoint is written every --checkpoint-every seconds and on SIGINT, and\n"
    "--resume continues from it exactly.  Deterministic for a --seed, data and\n"
    "--threads.",
    "  wm-synth --clips 400 | wm-encode-latent > synth.wm\n"
    "  wm-decode motion.mov --size 64x64 | wm-encode-latent > real.wm\n"
    "  wm-train dynamics --model model.safetensors --steps 4000 synth.wm real.wm"
};

static void dynamics_report(void *ctx, const wm_dynamics_progress *p)
{
    const report_ctx *r = ctx;
    if (r->quiet) return;
    char eta[32], el[32];
    report_times(el, eta, p->elapsed, p->eta);
    char obj[32] = "";
    if (p->objects > 0) snprintf(obj, sizeof obj, "  objects %.4f", p->objects);
    fprintf(stderr, "%s: step %ld/%ld  nll %.4f  mse/no-change %.3f%s  %.0f latents/s  lr %.2e  |g| %.3g  %s  ETA %s%s%s\n",
            r->name, p->step, p->steps, p->nll, p->mse_ratio, obj, p->latents_per_s, (double)p->lr, p->grad_norm, el,
            eta, p->checkpointed ? "  checkpoint " : "", p->checkpointed ? p->checkpointed : "");
}

static int cmd_dynamics(int argc, char **argv)
{
    const wm_tool *tool = &dynamics_tool;
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *model = NULL, *checkpoint = NULL, *init = NULL, *weights_text = NULL;
    wm_dynamics_config cfg = wm_dynamics_default_config(0);
    wm_size crop = { 16, 16 };
    int steps = 3000, batch = 16, seq = 31, tbptt = 16, warmup = -1, seed = 1, resume = 0, threads = 1, first = 0;
    int max_clips = 100000;
    double lr = 2e-3, lr_floor = 0.05, clip = 1.0, beta = 1.0, rollout_p = 0.5, ckpt_every = 300, log_every = 10;
    double change_weight = 0, objects = 0;
    const wm_opt opts[] = {
        { "model", 'm', WM_OPT_STRING, &model, "PATH", "model file with the tokenizer; the dynamics model is written into it (required)", NULL, 0, 0 },
        { "steps", 0, WM_OPT_INT, &steps, "N", "optimizer steps, one per truncated chunk (default 3000)", NULL, 0, 100000000 },
        { "batch", 'b', WM_OPT_INT, &batch, "N", "windows per minibatch (default 16)", NULL, 1, 4096 },
        { "seq", 0, WM_OPT_INT, &seq, "N", "predictions per window: N + 1 latents of a clip (default 31)", NULL, 1, 100000 },
        { "tbptt", 0, WM_OPT_INT, &tbptt, "N", "steps of backpropagation through time per chunk (default 16)", NULL, 1, 100000 },
        { "crop", 0, WM_OPT_SIZE, &crop, "WxH", "grid cells of each window (default 16x16: 64x64 frames)", NULL, 0, 0 },
        { "lr", 0, WM_OPT_DOUBLE, &lr, "X", "peak learning rate (default 2e-3)", NULL, 1e-7, 1 },
        { "warmup", 0, WM_OPT_INT, &warmup, "N", "warm-up steps (default steps/50)", NULL, 0, 100000000 },
        { "lr-floor", 0, WM_OPT_DOUBLE, &lr_floor, "F", "final lr as a fraction of the peak (default 0.05)", NULL, 0, 1 },
        { "clip", 0, WM_OPT_DOUBLE, &clip, "NORM", "clip the global gradient norm to NORM, 0: off (default 1)", NULL, 0, 1e9 },
        { "beta", 0, WM_OPT_DOUBLE, &beta, "B", "beta-NLL weight exponent, 0: plain NLL (default 1)", NULL, 0, 1 },
        { "change-weight", 0, WM_OPT_DOUBLE, &change_weight, "A",
          "weigh the mean's error by 1 + A * min(change^2, 4), the clip's change in std units (default 0: off)", NULL, 0, 1000 },
        { "objects", 0, WM_OPT_DOUBLE, &objects, "W",
          "train an objects head on wm-synth's ball labels, its cross-entropy weighted W (default 0: off)", NULL, 0, 1000 },
        { "rollout-p", 0, WM_OPT_DOUBLE, &rollout_p, "P", "share of windows fed their own predictions from a random step on (default 0.5)", NULL, 0, 1 },
        { "seed", 0, WM_OPT_INT, &seed, "S", "random seed for weights and minibatches (default 1)", NULL, 0, 2147483647 },
        { "weights", 0, WM_OPT_STRING, &weights_text, "W,W,...", "sampling weight of each STREAM", NULL, 0, 0 },
        { "max-clips", 0, WM_OPT_INT, &max_clips, "N", "clips kept per STREAM, a uniform sample (default 100000)", NULL, 1, 100000000 },
        { "hidden", 0, WM_OPT_INT, &cfg.hidden, "N", "channels of each GRU layer, a multiple of 4 (default 32)", NULL, 4, 256 },
        { "dilation", 0, WM_OPT_INT, &cfg.dilation, "D", "dilation of the second layer (default 2)", NULL, 1, 4 },
        { "init", 0, WM_OPT_STRING, &init, "PATH", "start from the dynamics model in PATH (keeps its normalisation)", NULL, 0, 0 },
        { "checkpoint", 0, WM_OPT_STRING, &checkpoint, "PATH", "checkpoint file (default MODEL.dynamics.ckpt)", NULL, 0, 0 },
        { "checkpoint-every", 0, WM_OPT_DOUBLE, &ckpt_every, "SECONDS", "checkpoint interval (default 300)", NULL, 1, 1e9 },
        { "resume", 0, WM_OPT_FLAG, &resume, NULL, "continue from the checkpoint", NULL, 0, 0 },
        { "log-every", 0, WM_OPT_DOUBLE, &log_every, "SECONDS", "progress interval (default 10)", NULL, 0, 1e9 },
        { "threads", 't', WM_OPT_INT, &threads, "N", "CPU threads: BLAS and the convolutions (default 1)", NULL, 1, 256 },
        { 0 } };
    wm_status st = parse_command(tool, opts, &common, argc, argv, &first, &model, &err);
    if (st != WM_OK) return wm_cli_exit(tool, st, &err);
    if (tbptt > seq) tbptt = seq;
    wm_nn_set_threads(threads);
    char ckpt_default[4200];
    if (!checkpoint) {
        snprintf(ckpt_default, sizeof ckpt_default, "%s.dynamics.ckpt", model);
        checkpoint = ckpt_default;
    }
    double *weights = NULL;
    int n_inputs = argc - first;
    if ((st = parse_weights(weights_text, n_inputs ? n_inputs : 1, &weights, &err))) return wm_cli_exit(tool, st, &err);
    wm_tokenizer *tk = model_tokenizer(model, &err);
    if (!tk) {
        free(weights);
        return wm_cli_exit(tool, WM_E_USAGE, &err);
    }
    cfg.latent_channels = wm_tokenizer_get_config(tk)->latent_channels;
    if (objects > 0) cfg.objects = WM_DYNAMICS_OBJECT_MAPS;
    wm_dynamics *dyn = init ? wm_dynamics_load(init, &err) : wm_dynamics_new(&cfg, (uint64_t)seed, &err);
    if (!dyn) st = init ? WM_E_USAGE : err.code;
    else if (wm_dynamics_get_config(dyn)->latent_channels != cfg.latent_channels)
        st = wm_error_set(&err, WM_E_USAGE, "--init %s: its dynamics model has %d latent channels, the tokenizer %d",
                          init, wm_dynamics_get_config(dyn)->latent_channels, cfg.latent_channels);
    wm_clipset *cs = st == WM_OK ? wm_clipset_new(cfg.latent_channels, (size_t)max_clips, (uint64_t)seed, &err) : NULL;
    if (st == WM_OK && !cs) st = err.code;
    double t_read = 0;
    if (st == WM_OK) st = read_clips(cs, n_inputs, argv + first, common.max_message, tk, &t_read, &err);
    report_ctx rc = { common.quiet, tool->name };
    if (st == WM_OK && !common.quiet) {
        const wm_dynamics_config *c = wm_dynamics_get_config(dyn);
        fprintf(stderr, "%s: %zu clips (%zu latents, %zu usable windows of %d) from %d stream%s in %.1fs; %s C=%d "
                        "hidden=%d dilation=%d, %zu parameters\n",
                tool->name, wm_clipset_count(cs), wm_clipset_latents(cs), wm_clipset_usable(cs, seq + 1, crop.h, crop.w),
                seq + 1, wm_clipset_sources(cs), wm_clipset_sources(cs) > 1 ? "s" : "", t_read,
                WM_DYNAMICS_ARCH, c->latent_channels, c->hidden, c->dilation, wm_dynamics_params(dyn)->total);
        if (objects > 0)
            fprintf(stderr, "%s: objects head: %zu of the clips carry ball labels\n", tool->name, wm_clipset_labelled(cs));
    }
    wm_dynamics_train_options o = { 0 };
    o.steps = steps;
    o.batch = batch;
    o.seq = seq;
    o.tbptt = tbptt;
    o.crop_h = crop.h;
    o.crop_w = crop.w;
    o.lr = (float)lr;
    o.warmup = warmup >= 0 ? warmup : steps / 50;
    o.lr_floor = (float)lr_floor;
    o.clip = (float)clip;
    o.beta = (float)beta;
    o.change_weight = (float)change_weight;
    o.objects = (float)objects;
    o.rollout_p = (float)rollout_p;
    o.seed = (uint64_t)seed;
    o.weights = weights;
    o.keep_norm = init != NULL;
    o.checkpoint = checkpoint;
    o.checkpoint_every = ckpt_every;
    o.log_every = log_every;
    if (st == WM_OK) st = wm_dynamics_train(dyn, cs, &o, resume, dynamics_report, should_stop, &rc, &err);
    if (st == WM_OK) {
        char num[6][32];
        snprintf(num[0], sizeof num[0], "%d", steps);
        snprintf(num[1], sizeof num[1], "%d", batch);
        snprintf(num[2], sizeof num[2], "%d", seq);
        snprintf(num[3], sizeof num[3], "%d", tbptt);
        snprintf(num[4], sizeof num[4], "%d", seed);
        snprintf(num[5], sizeof num[5], "%zu", wm_clipset_count(cs));
        const char *meta[] = { "train.steps", num[0], "train.batch", num[1], "train.seq", num[2],
                               "train.tbptt", num[3], "train.seed", num[4], "train.clips", num[5] };
        st = wm_dynamics_save(dyn, model, meta, 6, &err);
        if (st == WM_OK) {
            unlink(checkpoint);
            if (!common.quiet) fprintf(stderr, "%s: wrote %s (tokenizer kept)\n", tool->name, model);
        }
    }
    free(weights);
    wm_clipset_free(&cs);
    wm_dynamics_free(&dyn);
    wm_tokenizer_free(&tk);
    return train_exit(tool, st, &err);
}

/* ---- wm-train detector ---- */

static const wm_tool detector_tool = {
    "wm-train detector", "train the ball detector on labelled latents", "--model PATH [options] [STREAM...]",
    "Reads clips from each STREAM (default stdin), latents or frames (encoded with\n"
    "the tokenizer in PATH), and trains the ball detector (docs/model.md) on the\n"
    "latents whose messages carry wm-synth's \"objects\" labels: per latent cell,\n"
    "whether a visible ball's centre lies in it (weighted cross-entropy,\n"
    "--pos-weight), where in the cell, and the ball's radius (L1); with --negatives\n"
    "the clips without labels too, as scenes with no ball (footage known to hold\n"
    "none).  Adam on minibatches of --batch latents (clips drawn alike, or a STREAM\n"
    "by --weights first), a cosine learning rate; deterministic for a\n"
    "--seed, data and --threads.  Writes the detector into PATH beside the\n"
    "tokenizer and the dynamics model (tensors detector.*).  With --test STREAM it\n"
    "then reports how many of that stream's labelled balls it finds within 1.5\n"
    "cells, the detections that match none, and the centre error in pixels;\n"
    "--steps 0 only measures the detector already in PATH.",
    "  wm-synth --clips 1200 --seed 5 | wm-encode-latent > balls.wm\n"
    "  wm-synth --clips 100 --seed 6 | wm-encode-latent > test.wm\n"
    "  wm-train detector --model model.safetensors --test test.wm balls.wm"
};

static void detector_report(void *ctx, const wm_detect_progress *p)
{
    const report_ctx *r = ctx;
    if (r->quiet) return;
    char eta[32], el[32];
    report_times(el, eta, p->elapsed, p->eta);
    fprintf(stderr, "%s: step %ld/%ld  loss %.4f (centre %.4f  offset %.4f  radius %.4f)  %.0f latents/s  lr %.2e  %s  ETA %s\n",
            r->name, p->step, p->steps, p->loss.total, p->loss.centre, p->loss.offset, p->loss.radius,
            p->latents_per_s, (double)p->lr, el, eta);
}

static int cmd_detector(int argc, char **argv)
{
    const wm_tool *tool = &detector_tool;
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *model = NULL, *test = NULL, *weights_text = NULL;
    wm_size crop = { 16, 16 };
    int steps = 3000, batch = 64, seed = 1, threads = 1, first = 0, hidden = 48, max_clips = 100000, negatives = 0;
    double lr = 2e-3, lr_floor = 0.025, pos_weight = 10, log_every = 10, thr = 0.5;
    const wm_opt opts[] = {
        { "model", 'm', WM_OPT_STRING, &model, "PATH", "model file with the tokenizer; the detector is written into it (required)", NULL, 0, 0 },
        { "steps", 0, WM_OPT_INT, &steps, "N", "optimizer steps (default 3000; 0: measure PATH's detector on --test)", NULL, 0, 100000000 },
        { "batch", 'b', WM_OPT_INT, &batch, "N", "latents per minibatch (default 64)", NULL, 1, 65536 },
        { "crop", 0, WM_OPT_SIZE, &crop, "WxH", "grid cells of each latent drawn (default 16x16: 64x64 frames)", NULL, 0, 0 },
        { "lr", 0, WM_OPT_DOUBLE, &lr, "X", "peak learning rate (default 2e-3)", NULL, 1e-7, 1 },
        { "lr-floor", 0, WM_OPT_DOUBLE, &lr_floor, "F", "final lr as a fraction of the peak (default 0.025)", NULL, 0, 1 },
        { "pos-weight", 0, WM_OPT_DOUBLE, &pos_weight, "W", "weight of the centre cells in the cross-entropy (default 10)", NULL, 0.01, 1000 },
        { "hidden", 0, WM_OPT_INT, &hidden, "N", "channels of the hidden layers (default 48)", NULL, 4, 256 },
        { "negatives", 0, WM_OPT_FLAG, &negatives, NULL, "clips without ball labels are scenes without a visible ball", NULL, 0, 0 },
        { "weights", 0, WM_OPT_STRING, &weights_text, "W,W,...", "sampling weight of each STREAM (default: every clip alike)", NULL, 0, 0 },
        { "seed", 0, WM_OPT_INT, &seed, "S", "random seed for weights and minibatches (default 1)", NULL, 0, 2147483647 },
        { "max-clips", 0, WM_OPT_INT, &max_clips, "N", "clips kept per STREAM, a uniform sample (default 100000)", NULL, 1, 100000000 },
        { "test", 0, WM_OPT_STRING, &test, "STREAM", "measure the trained detector on this stream's labelled balls", NULL, 0, 0 },
        { "threshold", 0, WM_OPT_DOUBLE, &thr, "P", "centre probability a detection needs, for --test (default 0.5)", NULL, 0, 1 },
        { "log-every", 0, WM_OPT_DOUBLE, &log_every, "SECONDS", "progress interval (default 10)", NULL, 0, 1e9 },
        { "threads", 't', WM_OPT_INT, &threads, "N", "CPU threads: BLAS and the convolutions (default 1)", NULL, 1, 256 },
        { 0 } };
    wm_status st = parse_command(tool, opts, &common, argc, argv, &first, &model, &err);
    if (st != WM_OK) return wm_cli_exit(tool, st, &err);
    wm_nn_set_threads(threads);
    double *weights = NULL;
    if (weights_text && (st = parse_weights(weights_text, argc - first ? argc - first : 1, &weights, &err)))
        return wm_cli_exit(tool, st, &err);
    wm_tokenizer *tk = model_tokenizer(model, &err);
    if (!tk) {
        free(weights);
        return wm_cli_exit(tool, WM_E_USAGE, &err);
    }
    wm_detect_config cfg = wm_detect_default_config(wm_tokenizer_get_config(tk)->latent_channels);
    cfg.hidden = hidden;
    if (steps == 0 && (!test || argc > first)) {   /* measuring only: the detector in PATH, on --test */
        st = wm_error_set(&err, WM_E_USAGE, "--steps 0 measures the detector in --model on --test STREAM: give --test "
                                             "and no training STREAM");
        free(weights);
        wm_tokenizer_free(&tk);
        return wm_cli_exit(tool, st, &err);
    }
    wm_detector *det = steps ? wm_detector_new(&cfg, (uint64_t)seed, &err) : wm_detector_load(model, &err);
    if (det) cfg = *wm_detector_get_config(det);
    else st = err.code;
    wm_clipset *cs = NULL;   /* the training clips: none when only measuring */
    if (st == WM_OK && steps && !(cs = wm_clipset_new(cfg.latent_channels, (size_t)max_clips, (uint64_t)seed, &err)))
        st = err.code;
    const int n_inputs = argc - first;
    double t_read = 0;
    if (st == WM_OK && steps) st = read_clips(cs, n_inputs, argv + first, common.max_message, tk, &t_read, &err);
    report_ctx rc = { common.quiet, tool->name };
    if (st == WM_OK && steps && !common.quiet)
        fprintf(stderr, "%s: %zu clips (%zu latents; %zu with ball labels) from %d stream%s in %.1fs; %s C=%d hidden=%d, "
                        "%zu parameters\n",
                tool->name, wm_clipset_count(cs), wm_clipset_latents(cs), wm_clipset_labelled(cs), wm_clipset_sources(cs),
                wm_clipset_sources(cs) > 1 ? "s" : "", t_read, WM_DETECT_ARCH, cfg.latent_channels,
                cfg.hidden, wm_detector_params(det)->total);
    wm_detect_train_options o = { 0 };
    o.steps = steps;
    o.batch = batch;
    o.crop_h = crop.h;
    o.crop_w = crop.w;
    o.lr = (float)lr;
    o.lr_floor = (float)lr_floor;
    o.warmup = steps / 50;
    o.pos_weight = (float)pos_weight;
    o.negatives = negatives;
    o.weights = weights;
    o.seed = (uint64_t)seed;
    o.log_every = log_every;
    if (st == WM_OK && steps) st = wm_detect_train(det, cs, &o, detector_report, should_stop, &rc, &err);
    if (st == WM_OK && steps) {
        char num[4][32];
        snprintf(num[0], sizeof num[0], "%d", steps);
        snprintf(num[1], sizeof num[1], "%d", batch);
        snprintf(num[2], sizeof num[2], "%d", seed);
        snprintf(num[3], sizeof num[3], "%g", pos_weight);
        const char *meta[] = { "train.steps", num[0], "train.batch", num[1], "train.seed", num[2], "train.pos_weight", num[3] };
        st = wm_detector_save(det, model, meta, 4, &err);
        if (st == WM_OK && !common.quiet) fprintf(stderr, "%s: wrote %s (other parts kept)\n", tool->name, model);
    }
    if (st == WM_OK && test) {
        wm_clipset *ts = wm_clipset_new(cfg.latent_channels, (size_t)max_clips, (uint64_t)seed, &err);
        wm_detect_eval ev;
        st = ts ? wm_clipset_read(ts, test, 0, common.max_message, tk, &err) : err.code;
        if (st == WM_OK) st = wm_detect_evaluate(det, ts, (float)thr, &ev, &err);
        if (st == WM_OK)
            printf("%s: %s: %ld labelled balls, %ld found (%.1f%%), %ld extra detections (%.3f per latent); centre error "
                   "median %.2f px, 90th percentile %.2f px; radius error median %.2f px\n",
                   tool->name, test, ev.balls, ev.found, ev.balls ? 100.0 * (double)ev.found / (double)ev.balls : 0.0,
                   ev.extra, wm_clipset_latents(ts) ? (double)ev.extra / (double)wm_clipset_latents(ts) : 0.0,
                   ev.err_median, ev.err_p90, ev.radius_median);
        wm_clipset_free(&ts);
    }
    free(weights);
    wm_clipset_free(&cs);
    wm_detector_free(&det);
    wm_tokenizer_free(&tk);
    return train_exit(tool, st, &err);
}

/* ---- prior ---- */

static const wm_tool prior_tool = {
    "wm-train prior", "fit the object prior's variance on clips", "--model PATH [options] [STREAM...]",
    "Reads clips from each STREAM (default stdin), latents or frames (encoded with\n"
    "the tokenizer in PATH), runs the object prior (the ball detector and tracker\n"
    "in PATH, docs/model.md) over them, and writes the per-channel variance of\n"
    "each latent about its prior, from the prediction of latent 3 on, into PATH\n"
    "(tensor prior.var).  wm-step sends it with each prior so that\n"
    "wm-score-coherence can weigh the prior's surprise.  Deterministic for the\n"
    "data and --threads.",
    "  wm-synth --clips 200 --seed 7 | wm-train prior --model my.safetensors"
};

static int cmd_prior(int argc, char **argv)
{
    const wm_tool *tool = &prior_tool;
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *model = NULL;
    int threads = 1, first = 0, max_clips = 100000;
    double fps = 25;
    const wm_opt opts[] = {
        { "model", 'm', WM_OPT_STRING, &model, "PATH", "model file with the tokenizer and the detector; the prior is written into it (required)", NULL, 0, 0 },
        { "fps", 0, WM_OPT_DOUBLE, &fps, "F", "frame rate of the clips, for gravity (default 25: wm-synth's)", NULL, 1e-3, 1e6 },
        { "max-clips", 0, WM_OPT_INT, &max_clips, "N", "clips kept per STREAM, a uniform sample (default 100000)", NULL, 1, 100000000 },
        { "threads", 't', WM_OPT_INT, &threads, "N", "CPU threads: BLAS and the convolutions (default 1)", NULL, 1, 256 },
        { 0 } };
    wm_status st = parse_command(tool, opts, &common, argc, argv, &first, &model, &err);
    if (st != WM_OK) return wm_cli_exit(tool, st, &err);
    wm_nn_set_threads(threads);
    wm_tokenizer *tk = model_tokenizer(model, &err);
    wm_detector *det = tk ? wm_detector_load(model, &err) : NULL;
    if (!det) {
        if (tk) wm_error_prefix(&err, "--model (train the detector into it first: wm-train detector --model %s)", model);
        wm_tokenizer_free(&tk);
        return wm_cli_exit(tool, WM_E_USAGE, &err);
    }
    const int C = wm_tokenizer_get_config(tk)->latent_channels;
    float *var = malloc((size_t)C * sizeof *var);
    if (!var) {
        wm_detector_free(&det);
        wm_tokenizer_free(&tk);
        return wm_cli_exit(tool, wm_error_set(&err, WM_E_SYSTEM, "out of memory"), &err);
    }
    wm_clipset *cs = wm_clipset_new(C, (size_t)max_clips, 1, &err);
    double t_read = 0, t0 = 0;
    st = cs ? read_clips(cs, argc - first, argv + first, common.max_message, tk, &t_read, &err) : err.code;
    long count = 0;
    if (st == WM_OK) {
        if (!common.quiet)
            fprintf(stderr, "%s: %zu clips (%zu latents) in %.1fs; fitting\n", tool->name, wm_clipset_count(cs),
                    wm_clipset_latents(cs), t_read);
        t0 = wm_now();
        st = wm_prior_fit(tk, det, cs, fps, var, &count, &err);
    }
    if (st == WM_OK) {
        char num[2][32];
        snprintf(num[0], sizeof num[0], "%ld", count);
        snprintf(num[1], sizeof num[1], "%g", fps);
        const char *meta[] = { "fit.latents", num[0], "fit.fps", num[1] };
        st = wm_prior_save(model, var, C, meta, 2, &err);
    }
    if (st == WM_OK && !common.quiet) {
        fprintf(stderr, "%s: %ld latents in %.1fs; variance per channel", tool->name, count, wm_now() - t0);
        for (int c = 0; c < C; c++) fprintf(stderr, " %.4g", (double)var[c]);
        fprintf(stderr, "; wrote %s (other parts kept)\n", model);
    }
    free(var);
    wm_clipset_free(&cs);
    wm_detector_free(&det);
    wm_tokenizer_free(&tk);
    return train_exit(tool, st, &err);
}

/* ---- dispatch ---- */

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    { "tokenizer", cmd_tokenizer, "train the latent tokenizer on frames" },
    { "dynamics", cmd_dynamics, "train the latent dynamics model on clips" },
    { "detector", cmd_detector, "train the ball detector on labelled latents" },
    { "prior", cmd_prior, "fit the object prior's variance on clips" },
};

static void usage(FILE *out)
{
    fprintf(out, "wm-train: train the parts of a wm model file\n\nUsage: wm-train COMMAND [options] [STREAM...]\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nwm-train COMMAND --help describes one.\n\n"
                 "Example:\n"
                 "  wm-synth --clips 200 | wm-train tokenizer --model my.safetensors\n"
                 "  wm-synth --clips 200 | wm-encode-latent --model my.safetensors | wm-train dynamics --model my.safetensors\n");
}

int main(int argc, char **argv)
{
    if (argc >= 2)
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("wm-train %s (wm protocol %d)\n", WM_VERSION, WM_PROTOCOL_VERSION);
        return 0;
    }
    /* errors are one line, as in every filter */
    if (argc >= 2) fprintf(stderr, "wm-train: unknown command '%s' (tokenizer, dynamics, detector or prior; see --help)\n", argv[1]);
    else fprintf(stderr, "wm-train: a command is needed: tokenizer, dynamics, detector or prior (see --help)\n");
    return 1;
}
