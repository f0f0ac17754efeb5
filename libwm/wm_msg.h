/* wm_msg: one wm message, kept as its encoded msgpack bytes plus a parsed
 * view of them.
 *
 * Filters pass messages they do not own through unchanged by writing
 * msg->raw verbatim (wm_writer_forward), so unknown kinds and keys survive
 * every stage.  A wm_msg handed out by a reader borrows the reader's
 * buffers and is valid until the next wm_reader_next call.
 *
 * Building messages: wm_msgbuf wraps a msgpack packer over a growable
 * buffer; the wm_pack_* helpers write key/value pairs. */
#ifndef WM_MSG_H
#define WM_MSG_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"

typedef struct wm_msg {
    const uint8_t *raw;    /* the encoded message (a msgpack map) */
    size_t len;            /* its length in bytes */
    msgpack_object root;   /* parsed view; str/bin point into raw */
    const char *kind;      /* value of "kind" (not NUL-terminated) */
    size_t kind_len;
    uint64_t offset;       /* byte offset of the message in its input */
    uint64_t seq;          /* 0-based message number in its input */
} wm_msg;

/* Result of wm_msgpack_measure. */
enum { WM_MEASURE_COMPLETE = 0, WM_MEASURE_MORE = 1, WM_MEASURE_BAD = -1 };

/* Walks the msgpack object at buf[0..len) without allocating.
 * COMPLETE: *size is the object's total length.  MORE: the object is not
 * complete yet and *size is a lower bound of the bytes needed.  BAD: the
 * bytes are not msgpack, or the object would be longer than max_size;
 * *why says which.  Payload lengths are checked against max_size before
 * anything is read, so a header claiming 4 GiB is rejected at once. */
int wm_msgpack_measure(const uint8_t *buf, size_t len, size_t max_size,
                       size_t *size, const char **why);

/* Parses raw[0..len) (one complete object, as measured) into msg using
 * zone for the object tree.  The object must be a map with a string
 * "kind".  Returns WM_OK or WM_E_INPUT with a message. */
wm_status wm_msg_parse(wm_msg *msg, const uint8_t *raw, size_t len,
                       msgpack_zone *zone, wm_error *err);

/* 1 when the message's kind equals kind. */
int wm_msg_is(const wm_msg *msg, const char *kind);

/* Look-ups in a msgpack map; NULL / nonzero when absent or of another type. */
const msgpack_object *wm_obj_get(const msgpack_object *map, const char *key);
int wm_obj_i64(const msgpack_object *map, const char *key, int64_t *out);
int wm_obj_f64(const msgpack_object *map, const char *key, double *out);
int wm_obj_str(const msgpack_object *map, const char *key, const char **s, size_t *n);
int wm_obj_bin(const msgpack_object *map, const char *key, const uint8_t **p, size_t *n);
/* Copies a string value into out (NUL-terminated, truncated to cap-1). */
int wm_obj_strcpy(const msgpack_object *map, const char *key, char *out, size_t cap);
/* 1 when o is a string equal to s. */
int wm_obj_streq(const msgpack_object *o, const char *s);

#define wm_msg_get(m, k) wm_obj_get(&(m)->root, (k))
#define wm_msg_i64(m, k, o) wm_obj_i64(&(m)->root, (k), (o))
#define wm_msg_f64(m, k, o) wm_obj_f64(&(m)->root, (k), (o))
#define wm_msg_str(m, k, s, n) wm_obj_str(&(m)->root, (k), (s), (n))
#define wm_msg_bin(m, k, p, n) wm_obj_bin(&(m)->root, (k), (p), (n))

/* A growable buffer with a msgpack packer writing into it. */
typedef struct wm_msgbuf {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} wm_msgbuf;

void wm_msgbuf_init(wm_msgbuf *mb);
void wm_msgbuf_reset(wm_msgbuf *mb);   /* empties it for the next message */
void wm_msgbuf_destroy(wm_msgbuf *mb);

void wm_pack_str(msgpack_packer *pk, const char *s);
void wm_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void wm_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t val);
void wm_pack_kv_f64(msgpack_packer *pk, const char *key, double val);
void wm_pack_kv_bool(msgpack_packer *pk, const char *key, int val);
/* Packs a msgpack_object as it is (used to copy label maps along). */
void wm_pack_obj(msgpack_packer *pk, const msgpack_object *o);

/* Copying a message with some keys replaced: the number of key/value
 * pairs of map whose key is not in skip (NULL-terminated), and packing
 * exactly those pairs, in their order. */
int wm_obj_count_except(const msgpack_object *map, const char *const *skip);
void wm_pack_except(msgpack_packer *pk, const msgpack_object *map, const char *const *skip);

#endif
