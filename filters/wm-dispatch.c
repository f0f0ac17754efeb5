/* wm-dispatch: hands whole clips of a stream to wm-worker processes over
 * ZeroMQ and writes their results, each clip exactly once. */
#include "wm_cli.h"
#include "wm_dispatch.h"

static const wm_tool tool = {
    "wm-dispatch", "fan clips out to workers over ZeroMQ and collect the results",
    "[options] --workers ENDPOINT [STREAM...]",
    "Reads a stream (files, --in, or stdin), gives each whole clip to an idle worker\n"
    "(wm-worker, on this machine or others), and writes what the workers return.\n"
    "Workers announce themselves and send heartbeats; a clip whose worker dies or\n"
    "goes silent past --timeout is handed to another, results are deduplicated, so\n"
    "every clip comes out exactly once: in input order with --ordered, else as they\n"
    "finish.  A clip that fails --retries times comes out as its clip message and an\n"
    "end carrying an error; the batch goes on, and the exit status is then 2.\n"
    "Workers may join and leave at any time.",
    "  wm-decode clips/*.mp4 --size 64x64 | wm-dispatch --workers @tcp://0.0.0.0:5560 --ordered > out.wms &\n"
    "  wm-worker --dispatcher tcp://127.0.0.1:5560 -- 'wm-cat --pass' &"
};

static void print_note(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "wm-dispatch: %s\n", line);
}

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    wm_dispatch_opts o;
    wm_dispatch_opts_init(&o);
    int first = 0;
    const wm_opt opts[] = {
        { "workers", 'w', WM_OPT_STRING, &o.endpoint, "ENDPOINT", "ROUTER endpoint workers connect to (binds unless '>')", NULL, 0, 0 },
        { "ordered", 0, WM_OPT_FLAG, &o.ordered, NULL, "results in input order (default: as they finish)", NULL, 0, 0 },
        { "timeout", 0, WM_OPT_DOUBLE, &o.timeout, "SECONDS", "silence after which a worker is presumed dead (default 3)", NULL, 0.5, 3600 },
        { "retries", 0, WM_OPT_INT, &o.retries, "N", "tries of one clip before it is reported failed (default 3)", NULL, 1, 100 },
        { "max-pending", 0, WM_OPT_INT, &o.max_pending, "N", "clips read ahead of the results (default 64)", NULL, 1, 100000 },
        { 0 } };
    const char *const *inputs;
    int ninputs;
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &ninputs, &err);
    if (st == WM_OK && !o.endpoint) st = wm_error_set(&err, WM_E_USAGE, "--workers ENDPOINT is required");
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    o.max_message = common.max_message;
    if (common.verbose) o.note = print_note;
    wm_writer *out = wm_writer_open(common.out, &err);
    if (!out) return wm_cli_exit(&tool, err.code, &err);
    wm_progress progress;
    wm_progress_init(&progress, &tool, &common);
    st = wm_dispatch_run(&o, inputs, ninputs, out, &progress, &err);
    wm_progress_done(&progress);
    wm_error cerr;
    wm_status cs = wm_writer_close(out, &cerr);
    /* failed clips are reported after all output is out; output that could
     * not be written is the worse news */
    if ((st == WM_OK || st == WM_E_INPUT) && cs != WM_OK) { st = cs; err = cerr; }
    wm_writer_free(&out);
    return wm_cli_exit(&tool, st, &err);
}
