/* wm-report: score JSON Lines into one self-contained HTML page.  The
 * page is wm_report's; this file reads the inputs, writes the output under
 * a temporary name and maps errors to exit codes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wm_cli.h"
#include "wm_io.h"
#include "wm_json.h"
#include "wm_report.h"
#include "wm_zmq.h"

static const wm_tool tool = {
    "wm-report", "turn score JSON Lines into one self-contained HTML page", "[options] [FILE...]",
    "Reads JSON Lines (files, or stdin when none or -), one object per clip as\n"
    "`wm-score-coherence --json` prints them, and writes one HTML page with inline\n"
    "CSS, JavaScript, SVG and images (it loads nothing from the network): a summary\n"
    "(clips, failures, mean plausibility; for wm-synth labels the possible and\n"
    "impossible means and how many pairs rank the impossible clip lower), a box that\n"
    "filters the clips by text, and one row per clip, failed clips first, then the\n"
    "least plausible first: scores, labels, the surprise curve with the peak and the\n"
    "violation frame marked, and the thumbnail strip when the input has one.\n"
    "A line that is not JSON, or a known field of the wrong type, is bad input (exit\n"
    "2, naming file:line); lines may be up to 64 MiB.  -o writes the page under a\n"
    "temporary name and renames it when complete.",
    "  wm-synth --pairs 4 | wm-encode-latent --keep-frames | wm-step |\n"
    "      wm-score-coherence --json --thumbs | wm-report -o report.html\n"
    "  wm-report --title 'night run' scores/*.jsonl > report.html"
};

static wm_status read_input(wm_report *r, const char *spec, wm_error *err)
{
    if (strcmp(spec, "-") == 0) return wm_report_read(r, stdin, "stdin", err);
    FILE *f = fopen(spec, "rb");
    if (!f) return wm_error_set(err, WM_E_INPUT, "%s: %s", spec, strerror(errno));
    wm_status st = wm_report_read(r, f, spec, err);
    fclose(f);
    return st;
}

int main(int argc, char **argv)
{
    wm_common common = { 0 };
    wm_error err = { 0 };
    const char *output = NULL, *title = NULL;
    int first = 0;
    const wm_opt opts[] = {
        { "output", 'o', WM_OPT_STRING, &output, "FILE", "write the page to FILE (default: stdout)", NULL, 0, 0 },
        { "title", 0, WM_OPT_STRING, &title, "TEXT", "the page's title (default: wm report)", NULL, 0, 0 },
        { 0 } };
    const char *const *inputs;
    int ninputs;
    wm_status st = wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err);
    if (st == WM_OK) st = wm_cli_inputs(&common, argc - first, argv + first, &inputs, &ninputs, &err);
    if (st == WM_OK && output && common.out)
        st = wm_error_set(&err, WM_E_USAGE, "--output and --out exclude each other");
    if (!output) output = common.out;
    if (st == WM_OK && output && wm_zmq_is_endpoint(output))
        st = wm_error_set(&err, WM_E_USAGE, "--output: '%s' is a ZeroMQ address; the page goes to a file or stdout",
                          output);
    if (st != WM_OK) return wm_cli_exit(&tool, st, &err);

    wm_report *report = wm_report_new(title, &err);
    if (!report) return wm_cli_exit(&tool, err.code, &err);
    static const char *const stdin_only[] = { "-" };
    if (ninputs == 0) { inputs = stdin_only; ninputs = 1; }
    for (int i = 0; i < ninputs && st == WM_OK; i++) st = read_input(report, inputs[i], &err);

    wm_strbuf html;
    wm_strbuf_init(&html);
    if (st == WM_OK) st = wm_report_render(report, &html, &err);
    if (st == WM_OK) {
        /* opened only now, so bad input leaves no file behind */
        wm_writer *out = wm_writer_open(output, &err);
        if (!out) st = err.code;
        if (st == WM_OK) st = wm_writer_send(out, html.s, html.len, NULL, 0, &err);
        if (st == WM_OK) st = wm_writer_close(out, &err);
        wm_writer_free(&out);
    }
    if (st == WM_OK && !common.quiet && common.verbose)
        fprintf(stderr, "%s: %zu clips, %zu bytes of HTML\n", tool.name, wm_report_count(report), html.len);
    wm_strbuf_free(&html);
    wm_report_free(&report);
    return wm_cli_exit(&tool, st, &err);
}
