/* wm-worker: serves clips from wm-dispatch through a filter chain. */
#include <stdio.h>
#include <string.h>

#include "wm_cli.h"
#include "wm_dispatch.h"

static const wm_tool tool = {
    "wm-worker", "run a filter chain on clips handed out by wm-dispatch",
    "[options] --dispatcher ENDPOINT -- COMMAND",
    "Connects to wm-dispatch, announces itself, sends heartbeats, and pipes each clip\n"
    "it is given through COMMAND (run by /bin/sh -c once, and again if it dies),\n"
    "returning everything the chain writes up to the clip's end.  Exits when the\n"
    "dispatcher says the batch is over (unless --keep).",
    "  wm-worker --dispatcher tcp://gpu-box:5560 -- 'wm-encode-latent | wm-step | wm-score-coherence'"
};

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    wm_worker_opts o = { 0 };
    int first = 0;
    const wm_opt opts[] = {
        { "dispatcher", 'd', WM_OPT_STRING, &o.endpoint, "ENDPOINT", "wm-dispatch's endpoint (connects unless '@')", NULL, 0, 0 },
        { "keep", 0, WM_OPT_FLAG, &o.keep, NULL, "stay for the next batch", NULL, 0, 0 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK && !o.endpoint) st = wm_error_set(&err, WM_E_USAGE, "--dispatcher ENDPOINT is required");
    if (st == WM_OK && argc - first != 1)
        st = wm_error_set(&err, WM_E_USAGE, "give the chain as one argument after --, e.g. -- 'wm-cat --pass'");
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    o.command = argv[first];
    o.max_message = common.max_message;
    o.verbose = common.verbose;
    long done = 0;
    st = wm_worker_run(&o, &done, &err);
    if (common.verbose) fprintf(stderr, "wm-worker: %ld clips\n", done);
    return wm_cli_exit(&tool, st, &err);
}
