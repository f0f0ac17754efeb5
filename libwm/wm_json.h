/* wm_json: msgpack objects as JSON text, for wm-cat and --json outputs.
 *
 * A wm_strbuf is a growable NUL-terminated string owned by the caller.
 * JSON has no NaN/Inf: they are written as null.  Strings are escaped;
 * bytes that are not valid UTF-8 become U+FFFD.  Binary values are
 * written by a caller-supplied function (a summary, an array of numbers,
 * base64), so the message's meaning decides how its payload reads. */
#ifndef WM_JSON_H
#define WM_JSON_H

#include <msgpack.h>
#include <stddef.h>

typedef struct wm_strbuf {
    char *s;
    size_t len, cap;
    int oom;            /* set once an allocation failed; output is then truncated */
} wm_strbuf;

void wm_strbuf_init(wm_strbuf *b);
void wm_strbuf_free(wm_strbuf *b);
void wm_strbuf_reset(wm_strbuf *b);
void wm_strbuf_add(wm_strbuf *b, const char *s, size_t n);
void wm_strbuf_addf(wm_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void wm_json_str(wm_strbuf *b, const char *s, size_t n);   /* quoted, escaped */
void wm_json_num(wm_strbuf *b, double v);                  /* null for NaN/Inf */

/* Writes a bin value found under key in its parent map. */
typedef void (*wm_json_bin_fn)(void *ctx, wm_strbuf *b, const char *key, size_t key_len,
                               const msgpack_object *bin);

/* Writes o as JSON; bins go through bin_fn (NULL: {"bytes": N}).  A map
 * key that is not a string becomes a string of its JSON, cut at 256 bytes
 * (the output stays linear in the input however deep such keys nest). */
void wm_json_obj(wm_strbuf *b, const msgpack_object *o, wm_json_bin_fn bin_fn, void *ctx);

/* Standard base64 of p[0..n). */
void wm_json_base64(wm_strbuf *b, const unsigned char *p, size_t n);

#endif
