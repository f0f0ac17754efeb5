/* wm-step: the latent world model as a filter (teacher mode and rollouts),
 * on the CPU or on a CUDA device. */
#include <stdio.h>
#include <string.h>

#include "wm_cli.h"
#include "wm_gpu.h"
#include "wm_loop.h"
#include "wm_model.h"
#include "wm_nn.h"
#include "wm_prior.h"
#include "wm_step.h"

static const wm_tool tool = {
    "wm-step", "predict the next latent (teacher mode) or imagine a rollout", "[options] [STREAM...]",
    "Teacher mode (the default): each latent passes through, followed by a pred\n"
    "message: the model's prediction of the next latent (index + 1) as a mean and\n"
    "a per-element variance, given the clip so far.  The state resets at each clip.\n"
    "--rollout N: after --context K real latents of each clip (default 8), imagine\n"
    "N more, each prediction fed back, emitted as latent messages with\n"
    "imagined: true (wm-decode-frame | wm-mux shows the dream); the clip's later\n"
    "latents pass through, or are dropped with --drop-rest.  A clip whose latents\n"
    "hold NaN or Inf ends with an error field.  Every other message passes.\n"
    "--device auto uses CUDA when a device is present, else the CPU (with a\n"
    "notice); --batch B runs B clips in lock-step (GPU: fills the card).  The model\n"
    "is --model PATH, else $WM_MODEL, else the shipped models/wm-default.safetensors.\n"
    "With the model's object prior (--prior auto, the default, when the file has\n"
    "one; docs/model.md) each pred also carries the prior of the next latent and\n"
    "its variance (prior, prior_var), computed on the CPU; --prior none leaves\n"
    "them out (the dynamics alone, as the speed benchmarks measure it).  Rollouts\n"
    "imagine with the prior when there is one (its tracker carries the context's\n"
    "balls on: gravity, bounces, screens), else with the dynamics (--imagine).",
    "  wm-synth --clips 4 | wm-encode-latent | wm-step | wm-cat\n"
    "  wm-synth --clips 1 | wm-encode-latent | wm-step --rollout 24 --context 8 --drop-rest |\n"
    "    wm-decode-frame | wm-mux -o dream.mp4"
};

static const char *const device_names[] = { "auto", "cpu", "cuda", NULL };
enum { DEV_AUTO, DEV_CPU, DEV_CUDA };
static const char *const prior_names[] = { "auto", "on", "none", NULL };
enum { PRIOR_AUTO, PRIOR_ON, PRIOR_NONE };
static const char *const imagine_names[] = { "auto", "prior", "dynamics", NULL };
enum { IMAGINE_AUTO, IMAGINE_PRIOR, IMAGINE_DYNAMICS };

/* The object prior's parts from the model file: every one, or none (auto
 * and a file without them: *m left empty, a notice with -v). */
static wm_status prior_load(const char *path, int mode, int C, int verbose, wm_prior_model *m, wm_error *err)
{
    if (mode == PRIOR_NONE) return WM_OK;
    wm_error perr = { 0 };
    const wm_status st = wm_prior_model_load(path, C, m, &perr);
    if (st && (mode == PRIOR_ON || st != WM_E_INPUT)) {
        *err = perr;
        wm_error_prefix(err, "--prior %s", mode == PRIOR_ON ? "on" : "auto");
        return st == WM_E_INPUT ? WM_E_USAGE : st;
    }
    if (st && verbose) fprintf(stderr, "wm-step: no object prior (%s)\n", perr.msg);
    return WM_OK;
}

/* ---- the CUDA backend: wm_gpu.h behind wm_step_backend ---- */

static wm_status gpu_reset(void *ctx, int lanes, int h, int w, wm_error *err)
{
    return wm_gpu_dynamics_reset(ctx, lanes, h, w, err);
}

static wm_status gpu_run(void *ctx, int T, const int *active, const float *x, int feed_from, float *mean, float *var,
                         wm_error *err)
{
    return wm_gpu_dynamics_run(ctx, T, active, x, feed_from, mean, var, err);
}

static wm_gpu_dynamics *gpu_handle;   /* for the statistics at the end */

static void gpu_destroy(void *ctx)
{
    wm_gpu_dynamics *g = ctx;
    wm_gpu_dynamics_free(&g);
    gpu_handle = NULL;
}

static wm_status gpu_backend(wm_dynamics *d, int profile, wm_step_backend *out, wm_error *err)
{
    const wm_dynamics_config *c = wm_dynamics_get_config(d);
    wm_gpu_model m = { c->latent_channels, c->hidden, c->dilation, WM_DYNAMICS_LOGVAR_MIN, NULL, NULL, { 0 }, { 0 } };
    wm_dynamics_get_norm(d, &m.norm_mean, &m.norm_std);
    wm_dynamics_weights(d, m.weight, m.bias);
    wm_gpu_dynamics *g = wm_gpu_dynamics_new(&m, err);
    if (!g) return err->code;
    wm_gpu_dynamics_profile(g, profile);
    gpu_handle = g;
    *out = (wm_step_backend){ g, "cuda", c->latent_channels, gpu_reset, gpu_run, gpu_destroy };
    return WM_OK;
}

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *model_opt = NULL;
    int rollout = 0, context = 8, drop_rest = 0, batch = 1, threads = 1, device = DEV_AUTO, profile = 0, first = 0;
    int prior = PRIOR_AUTO, imagine = IMAGINE_AUTO;
    const wm_opt opts[] = {
        { "model", 'm', WM_OPT_STRING, &model_opt, "PATH", "model file (default: the shipped model)", NULL, 0, 0 },
        { "rollout", 'r', WM_OPT_INT, &rollout, "N", "imagine N latents per clip after the context (default 0: teacher mode)", NULL, 0, 1000000 },
        { "context", 'k', WM_OPT_INT, &context, "K", "real latents before the rollout (default 8)", NULL, 1, 1000000 },
        { "drop-rest", 0, WM_OPT_FLAG, &drop_rest, NULL, "rollout: drop the clip's real latents after the context", NULL, 0, 0 },
        { "device", 'd', WM_OPT_CHOICE, &device, "DEV", "auto, cpu or cuda (default auto)", device_names, 0, 0 },
        { "batch", 'b', WM_OPT_INT, &batch, "B", "clips in lock-step (default 1: streaming)", NULL, 1, 65536 },
        { "threads", 't', WM_OPT_INT, &threads, "N", "CPU threads: the clips of a --batch run side by side (default 1)", NULL, 1, 256 },
        { "prior", 0, WM_OPT_CHOICE, &prior, "MODE", "object prior in each pred: auto (when the model has one), on or none", prior_names, 0, 0 },
        { "imagine", 0, WM_OPT_CHOICE, &imagine, "WITH", "rollouts imagine with: auto (the prior when there is one), prior or dynamics", imagine_names, 0, 0 },
        { "profile", 0, WM_OPT_FLAG, &profile, NULL, "cuda: time the GEMMs with events (with -v)", NULL, 0, 0 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    const char *const *inputs;
    int n_inputs;
    if ((st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &n_inputs, &err)))
        return wm_cli_exit(&tool, st, &err);
    wm_nn_set_threads(threads);
    char path[4096];
    if ((st = wm_model_resolve(model_opt, path, sizeof path, &err))) return wm_cli_exit(&tool, st, &err);
    wm_dynamics *dyn = wm_dynamics_load(path, &err);
    if (!dyn) return wm_cli_exit(&tool, err.code == WM_E_INPUT ? WM_E_USAGE : err.code, &err);
    if (wm_dynamics_tokenizer_matches(dyn) == 0 && !common.quiet)
        fprintf(stderr, "wm-step: warning: %s: the dynamics model was trained with another tokenizer than the one "
                        "in the file (retrain it: wm-train dynamics)\n", path);

    wm_prior_model pm = { 0 };
    if (imagine == IMAGINE_PRIOR && prior == PRIOR_NONE)
        st = wm_error_set(&err, WM_E_USAGE, "--imagine prior needs the object prior (not --prior none)");
    else if (imagine == IMAGINE_PRIOR && prior == PRIOR_AUTO)
        prior = PRIOR_ON;
    if (st || (st = prior_load(path, prior, wm_dynamics_get_config(dyn)->latent_channels, common.verbose && !common.quiet,
                               &pm, &err))) {
        wm_dynamics_free(&dyn);
        return wm_cli_exit(&tool, st, &err);
    }

    /* the device */
    wm_step_backend be = { 0 };
    char where[256] = "cpu";
    if (device != DEV_CPU) {
        wm_error gerr = { 0 };
        int n = wm_gpu_device_count(&gerr);
        if (n > 0) {
            st = gpu_backend(dyn, profile, &be, &err);
            if (st == WM_OK) wm_gpu_device_describe(where, sizeof where);
        } else if (device == DEV_CUDA) {
            st = wm_error_set(&err, WM_E_SYSTEM, "--device cuda: %s", gerr.msg);
        } else if (!common.quiet) {
            fprintf(stderr, "wm-step: %s; running on the CPU\n", gerr.msg);
        }
    }
    if (st == WM_OK && !be.run) {
        st = wm_step_backend_cpu(dyn, &be, &err);
        snprintf(where, sizeof where, "cpu, %d thread%s", threads, threads > 1 ? "s" : "");
    }
    if (st != WM_OK) {
        wm_prior_model_free(&pm);
        wm_dynamics_free(&dyn);
        return wm_cli_exit(&tool, st, &err);
    }
    if (common.verbose && !common.quiet) {
        const wm_dynamics_config *c = wm_dynamics_get_config(dyn);
        fprintf(stderr, "wm-step: device %s; model %s (%s hidden=%d dilation=%d%s); %s, batch %d\n", where, path,
                WM_DYNAMICS_ARCH, c->hidden, c->dilation, pm.tk ? "; object prior " WM_PRIOR_ARCH " on the CPU" : "",
                rollout ? (pm.tk && imagine != IMAGINE_DYNAMICS ? "rollout with the prior" : "rollout") : "teacher mode",
                batch);
    }

    wm_step_options o = { rollout, context, drop_rest, batch, pm.tk ? &pm : NULL,
                          pm.tk != NULL && imagine != IMAGINE_DYNAMICS };
    wm_step_stage *stage = wm_step_stage_new(&be, &o, &err);
    wm_writer *out = stage ? wm_writer_open(common.out, &err) : NULL;
    if (!out) st = err.code;
    else {
        wm_stage s = wm_step_stage_get(stage);
        st = wm_loop_run(inputs, n_inputs, common.max_message, out, &s, &err);
        if (st == WM_OK) st = wm_writer_close(out, &err);
        if (common.verbose && !common.quiet) {
            wm_step_stats ss;
            wm_step_stage_stats(stage, &ss);
            fprintf(stderr, "wm-step: %llu latents stepped, %llu preds, %llu imagined, %llu clip errors; "
                            "%.1f latents/s in the network\n",
                    (unsigned long long)ss.steps, (unsigned long long)ss.preds, (unsigned long long)ss.imagined,
                    (unsigned long long)ss.clip_errors, ss.steps / (ss.seconds + 1e-9));
            if (pm.tk) fprintf(stderr, "wm-step: %.1f s in the object prior\n", ss.prior_seconds);
            if (gpu_handle) {
                wm_gpu_stats gs;
                wm_gpu_dynamics_stats(gpu_handle, &gs);
                fprintf(stderr, "wm-step: cuda: %.1f ms in runs, %.2f GFLOP", gs.run_ms, gs.flops / 1e9);
                if (profile && gs.device_ms > 0)
                    fprintf(stderr, "; device %.1f ms, cuBLAS GEMMs %.1f ms (%.0f%%), %.0f GFLOP/s", gs.device_ms,
                            gs.gemm_ms, 100.0 * gs.gemm_ms / gs.device_ms, gs.flops / (gs.device_ms * 1e6));
                fputc('\n', stderr);
            }
        }
    }
    wm_writer_free(&out);
    wm_step_stage_free(&stage);
    wm_prior_model_free(&pm);
    wm_dynamics_free(&dyn);
    return wm_cli_exit(&tool, st, &err);
}
