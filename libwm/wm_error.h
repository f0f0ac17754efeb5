/* wm_error: status codes and the error record every libwm call fills.
 *
 * libwm never prints; it returns a wm_status and, on failure, writes a
 * one-line message into a caller-owned wm_error.  Only filters/ print and
 * map statuses to exit codes (see wm_exit_code and docs/protocol.md). */
#ifndef WM_ERROR_H
#define WM_ERROR_H

typedef enum wm_status {
    WM_OK = 0,
    WM_EOF,        /* clean end of input at a message boundary */
    WM_DONE,       /* nothing more to do (e.g. --help was printed) */
    WM_E_USAGE,    /* bad command line: exit 1 */
    WM_E_INPUT,    /* bad or truncated input: exit 2 */
    WM_E_OUTPUT,   /* cannot write the output (disk full, ...): exit 3 */
    WM_E_PIPE,     /* the reader of our output went away: quiet exit 0 */
    WM_E_SYSTEM,   /* out of memory, internal error: exit 3 */
    WM_E_INTERRUPTED /* SIGINT/SIGTERM: results so far flushed, exit 130 */
} wm_status;

typedef struct wm_error {
    wm_status code;
    char msg[512];
} wm_error;

/* Records code and a printf-style message in err (if err is not NULL) and
 * returns code, so callers can write `return wm_error_set(err, ...)`. */
wm_status wm_error_set(wm_error *err, wm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* clang-tidy's analyzer sees one file at a time: tell it what wm_error_set
 * returns, or every `return wm_error_set(...)` looks as if it could be WM_OK. */
#ifdef __clang_analyzer__
#define wm_error_set(err, code, ...) (wm_error_set((err), (code), __VA_ARGS__), (code))
#endif

/* Prepends "prefix: " to the message already in err; returns err->code. */
wm_status wm_error_prefix(wm_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The documented process exit code for a status. */
int wm_exit_code(wm_status s);

#endif
