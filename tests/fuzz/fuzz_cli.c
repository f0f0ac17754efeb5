/* libFuzzer target: the option parser every filter uses, on argument
 * vectors made from the input (NUL-separated), with every option kind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wm_cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const choices[] = { "crop", "pad", "stretch", NULL };
    int flag = 0, n = 0, choice = 0, first = 0;
    double d = 0;
    const char *str = NULL;
    wm_size sz = { 0, 0 };
    wm_rational rate = { 0, 0 };
    size_t bytes = 0;
    wm_opt opts[] = {
        { "flag", 'f', WM_OPT_FLAG, &flag, NULL, "", NULL, 0, 0 },
        { "frames", 'n', WM_OPT_INT, &n, "N", "", NULL, 1, 1000 },
        { "start", 0, WM_OPT_DOUBLE, &d, "T", "", NULL, 0, 1e6 },
        { "name", 0, WM_OPT_STRING, &str, "S", "", NULL, 0, 0 },
        { "size", 's', WM_OPT_SIZE, &sz, "WxH", "", NULL, 0, 0 },
        { "fps", 0, WM_OPT_RATIONAL, &rate, "R", "", NULL, 0, 0 },
        { "fit", 0, WM_OPT_CHOICE, &choice, "F", "", choices, 0, 0 },
        { "cap", 0, WM_OPT_BYTES, &bytes, "B", "", NULL, 0, 0 },
        { 0 } };
    wm_tool tool = { "wm-fuzz", "fuzz", "", NULL, NULL };
    char *copy = malloc(size + 1);
    char **argv = malloc((size + 3) * sizeof *argv);
    if (!copy || !argv) { free(copy); free(argv); return 0; }
    memcpy(copy, data, size);
    copy[size] = '\0';
    int argc = 0;
    argv[argc++] = "wm-fuzz";
    for (size_t i = 0; i <= size; i += strlen(copy + i) + 1) {
        /* --help and --version print and exit the parse: keep the fuzzer quiet */
        if (strcmp(copy + i, "--help") && strcmp(copy + i, "-h") && strcmp(copy + i, "--version"))
            argv[argc++] = copy + i;
    }
    argv[argc] = NULL;
    wm_common common = { 0 };
    wm_error err;
    if (wm_cli_parse(&tool, opts, &common, argc, argv, &first, &err) == WM_OK) {
        const char *const *specs;
        int k;
        wm_cli_inputs(&common, argc - first, argv + first, &specs, &k, &err);
    }
    free(argv);
    free(copy);
    return 0;
}
