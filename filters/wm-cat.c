/* wm-cat: placeholder, being written */
#include "wm_cli.h"
#include "wm_loop.h"

static const wm_tool tool = { "wm-cat", "print a wm stream as JSON Lines", "[options] [STREAM...]", NULL, NULL };

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    int pass = 0, first = 0;
    const wm_opt opts[] = {
        { "pass", 0, WM_OPT_FLAG, &pass, NULL, "copy the stream through, validated", NULL, 0, 0 },
        { 0 } };
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);
    wm_writer *out = wm_writer_open(common.out, &err);
    if (!out) return wm_cli_exit(&tool, err.code, &err);
    wm_stage stage = { NULL, wm_loop_forward, NULL };
    st = wm_loop_run((const char *const *)argv + first, argc - first, common.max_message, out, &stage, &err);
    if (st == WM_OK) st = wm_writer_close(out, &err);
    wm_writer_free(&out);
    return wm_cli_exit(&tool, st, &err);
}
