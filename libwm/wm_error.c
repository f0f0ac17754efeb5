#include "wm_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#undef wm_error_set   /* the analyzer's view of it (wm_error.h) is for the callers */

wm_status wm_error_set(wm_error *err, wm_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

wm_status wm_error_prefix(wm_error *err, const char *fmt, ...)
{
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strnlen(prefix, sizeof prefix - 1);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3, m = strnlen(old, sizeof old - 1);
    if (m > room) m = room;
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return err->code;
}

int wm_exit_code(wm_status s)
{
    switch (s) {
    case WM_OK: case WM_EOF: case WM_DONE: case WM_E_PIPE: return 0;
    case WM_E_USAGE: return 1;
    case WM_E_INPUT: return 2;
    case WM_E_INTERRUPTED: return 130;
    case WM_E_OUTPUT: case WM_E_SYSTEM: default: return 3;
    }
}
