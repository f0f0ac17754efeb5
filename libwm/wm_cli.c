#include "wm_cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wm_io.h"
#include "wm_proto.h"
#include "wm_signal.h"

static const wm_opt common_opts[] = {
    { "in", 0, WM_OPT_STRING, NULL, "SPEC", "read the stream from SPEC (file or -; default stdin)", NULL, 0, 0 },
    { "out", 0, WM_OPT_STRING, NULL, "SPEC", "write the stream to SPEC (file or -; default stdout)", NULL, 0, 0 },
    { "max-message", 0, WM_OPT_BYTES, NULL, "BYTES", "refuse any message larger than BYTES (default 256M)", NULL, 0, 0 },
    { "quiet", 'q', WM_OPT_FLAG, NULL, NULL, "no progress line", NULL, 0, 0 },
    { "verbose", 'v', WM_OPT_FLAG, NULL, NULL, "say more on stderr", NULL, 0, 0 },
    { "help", 'h', WM_OPT_FLAG, NULL, NULL, "show this help and exit", NULL, 0, 0 },
    { "version", 0, WM_OPT_FLAG, NULL, NULL, "show the version and exit", NULL, 0, 0 },
    { 0 }
};

static wm_status parse_long(const char *name, const char *s, long long lo, long long hi, long long *out,
                            wm_error *err)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not an integer", name, s);
    if (v < lo || v > hi)
        return wm_error_set(err, WM_E_USAGE, "--%s: %s is out of range [%lld, %lld]", name, s, lo, hi);
    *out = v;
    return WM_OK;
}

static wm_status parse_double(const char *name, const char *s, double *out, wm_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not a number", name, s);
    *out = v;
    return WM_OK;
}

wm_status wm_cli_parse_value(const wm_opt *o, const char *s, wm_error *err)
{
    wm_status st;
    long long v = 0;
    double d = 0;
    switch (o->kind) {
    case WM_OPT_FLAG:
        *(int *)o->dest = 1;
        return WM_OK;
    case WM_OPT_INT: {
        long long lo = INT32_MIN, hi = INT32_MAX;
        if (o->min < o->max) { lo = (long long)o->min; hi = (long long)o->max; }
        if ((st = parse_long(o->name, s, lo, hi, &v, err))) return st;
        *(int *)o->dest = (int)v;
        return WM_OK;
    }
    case WM_OPT_DOUBLE:
        if ((st = parse_double(o->name, s, &d, err))) return st;
        if (o->min < o->max && (d < o->min || d > o->max))
            return wm_error_set(err, WM_E_USAGE, "--%s: %s is out of range [%g, %g]", o->name, s, o->min, o->max);
        *(double *)o->dest = d;
        return WM_OK;
    case WM_OPT_STRING:
        *(const char **)o->dest = s;
        return WM_OK;
    case WM_OPT_SIZE: {
        char *x = strchr(s, 'x');
        if (!x) x = strchr(s, 'X');
        char wbuf[32];
        size_t n = x ? (size_t)(x - s) : 0;
        if (!x || n == 0 || n >= sizeof wbuf)
            return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not WIDTHxHEIGHT", o->name, s);
        memcpy(wbuf, s, n);
        wbuf[n] = '\0';
        long long w = 0, h = 0;
        const long long lo = o->min < 0 ? (long long)o->min : 1;
        if (parse_long(o->name, wbuf, lo, WM_MAX_DIM, &w, err) || parse_long(o->name, x + 1, lo, WM_MAX_DIM, &h, err) ||
            w == 0 || h == 0 || (w < 0 && h < 0)) {
            char neg[80] = "";
            if (lo < 0) snprintf(neg, sizeof neg, ", one of them possibly -n (n up to %lld: from the other side)", -lo);
            return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not WIDTHxHEIGHT with sides in [1, %d]%s", o->name, s,
                                WM_MAX_DIM, neg);
        }
        ((wm_size *)o->dest)->w = (int)w;
        ((wm_size *)o->dest)->h = (int)h;
        return WM_OK;
    }
    case WM_OPT_RATIONAL: {
        wm_rational *r = o->dest;
        const char *slash = strchr(s, '/');
        if (slash) {
            char nbuf[32];
            size_t n = (size_t)(slash - s);
            long long a = 0, b = 0;
            if (n == 0 || n >= sizeof nbuf)
                return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not a rate such as 25 or 30000/1001", o->name, s);
            memcpy(nbuf, s, n);
            nbuf[n] = '\0';
            if (parse_long(o->name, nbuf, 1, 1000000, &a, err) || parse_long(o->name, slash + 1, 1, 1000000, &b, err))
                return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not a rate such as 25 or 30000/1001", o->name, s);
            r->num = (int)a;
            r->den = (int)b;
            return WM_OK;
        }
        if (parse_double(o->name, s, &d, err) || d <= 0 || d > 1000000)
            return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not a positive rate such as 25 or 30000/1001", o->name, s);
        /* decimals become N/1000 rationals, reduced */
        long long num = llround(d * 1000), den = 1000;
        for (long long a = num, b = den; ; ) {
            if (b == 0) { num /= a; den /= a; break; }
            long long t = a % b; a = b; b = t;
        }
        r->num = (int)num;
        r->den = (int)den;
        return WM_OK;
    }
    case WM_OPT_CHOICE:
        for (int i = 0; o->choices[i]; i++)
            if (strcmp(o->choices[i], s) == 0) { *(int *)o->dest = i; return WM_OK; }
        {
            char list[256] = "";
            for (int i = 0; o->choices[i]; i++) {
                strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                strncat(list, o->choices[i], sizeof list - strlen(list) - 1);
            }
            return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not one of %s", o->name, s, list);
        }
    case WM_OPT_BYTES: {
        char *end;
        errno = 0;
        unsigned long long b = strtoull(s, &end, 10);
        unsigned long long mul = 1;
        if (*end == 'K' || *end == 'k') { mul = 1ull << 10; end++; }
        else if (*end == 'M' || *end == 'm') { mul = 1ull << 20; end++; }
        else if (*end == 'G' || *end == 'g') { mul = 1ull << 30; end++; }
        if (errno || end == s || *end || s[0] == '-' || b == 0 || b > (1ull << 40) / mul)
            return wm_error_set(err, WM_E_USAGE, "--%s: '%s' is not a byte count such as 64M", o->name, s);
        *(size_t *)o->dest = (size_t)(b * mul);
        return WM_OK;
    }
    }
    return wm_error_set(err, WM_E_USAGE, "--%s: unknown option kind", o->name);
}

static const wm_opt *find_opt(const wm_opt *opts, const char *name, size_t n, char short_name)
{
    for (; opts && opts->name; opts++) {
        if (short_name && opts->short_name == short_name) return opts;
        if (!short_name && strlen(opts->name) == n && strncmp(opts->name, name, n) == 0) return opts;
    }
    return NULL;
}

static void print_opts(FILE *out, const wm_opt *o)
{
    for (; o->name; o++) {
        char left[80];
        int n = snprintf(left, sizeof left, "  %s%c%s--%s%s%s", o->short_name ? "-" : "",
                         o->short_name ? o->short_name : ' ', o->short_name ? ", " : "   ", o->name,
                         o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "%s%*s %s", left, n < 30 ? 30 - n : 0, "", o->help);
        if (o->kind == WM_OPT_CHOICE) {
            fputs(" (", out);
            for (int i = 0; o->choices[i]; i++) fprintf(out, "%s%s", i ? "|" : "", o->choices[i]);
            fputs(")", out);
        }
        fputc('\n', out);
    }
}

void wm_cli_print_help(FILE *out, const wm_tool *tool, const wm_opt *opts)
{
    fprintf(out, "%s - %s\n\nUsage: %s %s\n\n", tool->name, tool->summary, tool->name, tool->usage);
    if (tool->description) fprintf(out, "%s\n\n", tool->description);
    if (opts && opts->name) {
        fputs("Options:\n", out);
        print_opts(out, opts);
        fputc('\n', out);
    }
    fputs("Common options:\n", out);
    print_opts(out, common_opts);
    fputs("\nExit status: 0 success (also when the reader of the output goes away),\n"
          "1 bad usage, 2 bad input, 3 output or system error, 130 interrupted.\n", out);
    if (tool->example) fprintf(out, "\nExample:\n%s\n", tool->example);
}

wm_status wm_cli_parse(const wm_tool *tool, const wm_opt *opts, wm_common *common,
                       int argc, char **argv, int *first_arg, wm_error *err)
{
    int help = 0, version = 0, nargs = 0, only_args = 0;
    wm_opt cmn[sizeof common_opts / sizeof common_opts[0]];
    void *dests[] = { &common->in, &common->out, &common->max_message, &common->quiet,
                      &common->verbose, &help, &version, NULL };
    memcpy(cmn, common_opts, sizeof cmn);
    for (int i = 0; cmn[i].name; i++) cmn[i].dest = dests[i];
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    wm_signal_install();

    wm_status st = WM_OK;
    for (int i = 1; i < argc && st == WM_OK; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') { args[nargs++] = argv[i]; continue; }
        if (strcmp(a, "--") == 0) { only_args = 1; continue; }
        const wm_opt *o;
        const char *val = NULL;
        char label[64];
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            o = find_opt(opts, name, n, 0);
            if (!o) o = find_opt(cmn, name, n, 0);
            if (!o) { st = wm_error_set(err, WM_E_USAGE, "unknown option '%s' (see --help)", a); break; }
            if (eq) val = eq + 1;
        } else {
            o = find_opt(opts, NULL, 0, a[1]);
            if (!o) o = find_opt(cmn, NULL, 0, a[1]);
            if (!o) { st = wm_error_set(err, WM_E_USAGE, "unknown option '%s' (see --help)", a); break; }
            if (a[2]) {
                if (o->kind == WM_OPT_FLAG) { st = wm_error_set(err, WM_E_USAGE, "unknown option '%s'", a); break; }
                val = a + 2;
            }
        }
        snprintf(label, sizeof label, "%s", o->name);
        if (o->kind == WM_OPT_FLAG) {
            if (val) { st = wm_error_set(err, WM_E_USAGE, "--%s takes no value", label); break; }
            *(int *)o->dest = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) { st = wm_error_set(err, WM_E_USAGE, "--%s needs a value (%s)", label, o->arg ? o->arg : "VALUE"); break; }
            val = argv[++i];
        }
        st = wm_cli_parse_value(o, val, err);
    }
    if (st == WM_OK && help) {
        wm_cli_print_help(stdout, tool, opts);
        st = WM_DONE;
    } else if (st == WM_OK && version) {
        printf("%s %s (wm protocol %d)\n", tool->name, WM_VERSION, WM_PROTOCOL_VERSION);
        st = WM_DONE;
    }
    if (st == WM_OK) {
        /* positionals go to the end of argv, in order */
        int first = argc - nargs;
        for (int i = 0; i < nargs; i++) argv[first + i] = args[i];
        *first_arg = first;
    }
    free(args);
    return st;
}

wm_status wm_cli_inputs(const wm_common *common, int nargs, char **args,
                        const char *const **specs, int *n, wm_error *err)
{
    if (common->in && nargs > 0)
        return wm_error_set(err, WM_E_USAGE, "--in and input files exclude each other");
    if (common->in) {
        *specs = &common->in;
        *n = 1;
    } else {
        *specs = (const char *const *)args;
        *n = nargs;
    }
    return WM_OK;
}

int wm_cli_exit(const wm_tool *tool, wm_status st, const wm_error *err)
{
    if (st == WM_E_INTERRUPTED)
        fprintf(stderr, "%s: interrupted; complete results were written\n", tool->name);
    else if (st != WM_OK && st != WM_EOF && st != WM_DONE && st != WM_E_PIPE)
        fprintf(stderr, "%s: %s\n", tool->name, err->msg);
    return wm_exit_code(st);
}

double wm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void wm_progress_init(wm_progress *p, const wm_tool *tool, const wm_common *common)
{
    p->enabled = !common->quiet && isatty(2);
    p->start = wm_now();
    p->last = 0;
    p->name = tool->name;
}

double wm_progress_elapsed(const wm_progress *p) { return wm_now() - p->start; }

void wm_progress_update(wm_progress *p, const char *fmt, ...)
{
    if (!p->enabled) return;
    double now = wm_now();
    if (now - p->last < 0.25 || now - p->start < 1.0) return;   /* long work only */
    p->last = now;
    char line[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r%s: %s\033[K", p->name, line);
}

void wm_progress_done(wm_progress *p)
{
    if (p->enabled && p->last > 0) fputs("\r\033[K", stderr);
}
