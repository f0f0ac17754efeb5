/* wm_cli: the one option parser, help and exit-code convention of every
 * filter (git's builtins share one parser; so do ours).
 *
 * A filter describes itself in a wm_tool and its options in a table of
 * wm_opt ended by {0}.  wm_cli_parse handles the options every filter
 * has: --help, --version, -q/--quiet, -v/--verbose, --in, --out and
 * --max-message.  Non-option arguments (and "-") are left, in order, in
 * argv[*first_arg .. argc).  Values are checked (type, range, choice) and
 * a bad one gives WM_E_USAGE with a message naming the option. */
#ifndef WM_CLI_H
#define WM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "wm_error.h"

typedef enum wm_opt_kind {
    WM_OPT_FLAG,     /* int*: set to 1 */
    WM_OPT_INT,      /* int*, range [min, max] when min < max */
    WM_OPT_DOUBLE,   /* double*, range [min, max] when min < max */
    WM_OPT_STRING,   /* const char** */
    WM_OPT_SIZE,     /* wm_size*: WxH, both positive; with min < 0, one side may be -n
                        (1 <= n <= -min): worked out later from the other (FFmpeg's scale) */
    WM_OPT_RATIONAL, /* wm_rational*: N, N/D or a decimal such as 29.97 */
    WM_OPT_CHOICE,   /* int*: index into choices */
    WM_OPT_BYTES     /* size_t*: N with optional K, M, G suffix */
} wm_opt_kind;

typedef struct wm_size { int w, h; } wm_size;
typedef struct wm_rational { int num, den; } wm_rational;

typedef struct wm_opt {
    const char *name;            /* long name, without "--" */
    char short_name;             /* 0: none */
    wm_opt_kind kind;
    void *dest;
    const char *arg;             /* placeholder shown in --help */
    const char *help;
    const char *const *choices;  /* WM_OPT_CHOICE: NULL-terminated */
    double min, max;
} wm_opt;

typedef struct wm_tool {
    const char *name;
    const char *summary;         /* one line */
    const char *usage;           /* after the name, e.g. "[options] FILE..." */
    const char *description;     /* paragraphs for --help (may be NULL) */
    const char *example;         /* shell lines for --help */
} wm_tool;

typedef struct wm_common {
    int quiet, verbose;
    const char *in, *out;        /* transport specs; NULL = stdin/stdout */
    size_t max_message;          /* 0 = WM_DEFAULT_MAX_MESSAGE */
} wm_common;

/* Parses argv.  Returns WM_OK, WM_DONE after printing --help or
 * --version to stdout, or WM_E_USAGE. */
wm_status wm_cli_parse(const wm_tool *tool, const wm_opt *opts, wm_common *common,
                       int argc, char **argv, int *first_arg, wm_error *err);

/* The inputs of a filter: the stream files named as arguments, or --in,
 * or stdin (*n == 0).  Both arguments and --in is a usage error. */
wm_status wm_cli_inputs(const wm_common *common, int nargs, char **args,
                        const char *const **specs, int *n, wm_error *err);

/* Parses one value as an option of that kind would (exposed for tests and
 * for filters that take structured positional arguments). */
wm_status wm_cli_parse_value(const wm_opt *opt, const char *text, wm_error *err);

void wm_cli_print_help(FILE *out, const wm_tool *tool, const wm_opt *opts);

/* Prints "tool: message" to stderr unless the status is quiet by
 * convention (success, EPIPE) and returns the exit code for it. */
int wm_cli_exit(const wm_tool *tool, wm_status st, const wm_error *err);

/* A progress line on stderr, shown only when stderr is a terminal and not
 * quiet, at most a few times a second. */
typedef struct wm_progress {
    int enabled;
    double start, last;
    const char *name;
} wm_progress;

void wm_progress_init(wm_progress *p, const wm_tool *tool, const wm_common *common);
/* fmt describes the work done so far; rate is items per second. */
void wm_progress_update(wm_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wm_progress_done(wm_progress *p);
/* Seconds since start (monotonic clock). */
double wm_progress_elapsed(const wm_progress *p);
double wm_now(void);

#endif
