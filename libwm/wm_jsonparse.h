/* wm_jsonparse: a small, strict, bounded JSON reader (RFC 8259) for the
 * JSON Lines that --json filters print (wm-report reads them back) and
 * for the header of a safetensors model file (wm_safetensors).
 *
 * Strict: one value and nothing after it but whitespace; no NaN, Infinity,
 * comments, trailing commas, leading zeros, duplicate object keys, control
 * characters or invalid UTF-8 in strings, lone surrogates, or \u0000 (every
 * string is also a C string).  Bounded: nesting deeper than
 * WM_JSONPARSE_MAX_DEPTH and more than WM_JSONPARSE_MAX_NODES values are
 * refused before they cost memory beyond the text's own size.
 *
 * Ownership: wm_jsonparse_new returns a tree the caller frees with
 * wm_jsonparse_free (which sets the pointer to NULL); every node, key and
 * string in it belongs to the tree.  The text is not referenced after the
 * call returns. */
#ifndef WM_JSONPARSE_H
#define WM_JSONPARSE_H

#include <stddef.h>

#include "wm_error.h"
#include "wm_json.h"

#define WM_JSONPARSE_MAX_DEPTH 64
#define WM_JSONPARSE_MAX_NODES ((size_t)1 << 22)

typedef enum wm_jtype { WM_JNULL, WM_JBOOL, WM_JNUM, WM_JSTR, WM_JARR, WM_JOBJ } wm_jtype;

typedef struct wm_jnode wm_jnode;
struct wm_jnode {
    wm_jtype type;
    int integer;           /* WM_JNUM written without fraction or exponent
                            * (exact in num when below 2^53 in magnitude) */
    size_t len;            /* WM_JSTR: bytes; WM_JARR: items; WM_JOBJ: members */
    union {
        int boolean;
        double num;        /* always finite */
        char *str;         /* NUL-terminated UTF-8 */
        wm_jnode *items;   /* WM_JARR: len values; WM_JOBJ: 2*len nodes, key (a WM_JSTR) then value */
    } u;
};

/* Parses text[0..n).  On failure returns NULL with WM_E_INPUT and a message
 * "column C: what is wrong" (C counts bytes from 1), or WM_E_SYSTEM when
 * memory runs out. */
wm_jnode *wm_jsonparse_new(const char *text, size_t n, wm_error *err);
void wm_jsonparse_free(wm_jnode **root);

/* The value under key in an object (first match), or NULL (also when obj is
 * NULL or not an object). */
const wm_jnode *wm_jsonparse_get(const wm_jnode *obj, const char *key);

/* The i-th key and value of an object (i < obj->len). */
const wm_jnode *wm_jsonparse_key(const wm_jnode *obj, size_t i);
const wm_jnode *wm_jsonparse_value(const wm_jnode *obj, size_t i);

/* Writes v back as compact JSON (numbers with %.17g precision trimmed by
 * wm_json_num, keys in their original order). */
void wm_jsonparse_write(wm_strbuf *b, const wm_jnode *v);

#endif
