/* wm_proto: the kinds of docs/protocol.md, their validation, and builders
 * for the messages producers emit.
 *
 * Builders pack the fixed keys of a message into a msgpack packer and
 * leave room for n_extra more key/value pairs that the caller packs right
 * after (labels, ground truth).  A frame's pixels go last: after the
 * extras call wm_proto_pack_data_header and send the pixels as the
 * payload of wm_writer_send, so they are never copied. */
#ifndef WM_PROTO_H
#define WM_PROTO_H

#include <stdint.h>

#include "wm_error.h"
#include "wm_msg.h"

#define WM_PROTOCOL_VERSION 1
#define WM_VERSION "0.1.0"
#define WM_MAX_DIM 65536   /* largest width or height of a frame */
#define WM_MAX_RANK 8      /* most dimensions of a latent shape */

typedef enum wm_pixfmt { WM_PIX_RGB24 = 0, WM_PIX_GRAY8 = 1 } wm_pixfmt;

const char *wm_pixfmt_name(wm_pixfmt f);
/* IEEE half precision to single (exact; NaN and Inf preserved). */
float wm_f16_to_f32(uint16_t h);
int wm_pixfmt_channels(wm_pixfmt f);

typedef struct wm_clip_info {
    const char *id;
    const char *source;          /* input path as given, or a generator name */
    int fps_num, fps_den;        /* frame rate as a rational (0/0: unknown) */
    int width, height;
} wm_clip_info;

typedef struct wm_frame_info {
    const char *clip;
    int64_t index;
    double pts;                  /* seconds */
    int width, height;
    wm_pixfmt format;
} wm_frame_info;

/* A frame message read back: pointers borrow the message. */
typedef struct wm_frame_view {
    const char *clip;
    size_t clip_len;
    int64_t index;
    double pts;
    int width, height;
    wm_pixfmt format;
    const uint8_t *data;
    size_t size;
} wm_frame_view;

/* Checks a message of a known kind against the protocol (types, ranges,
 * data length equal to what width/height/format or shape/dtype give, no
 * overflow).  Unknown kinds pass.  Returns WM_OK or WM_E_INPUT. */
wm_status wm_proto_validate(const wm_msg *msg, wm_error *err);

/* Fills v from a validated frame message. */
wm_status wm_proto_frame_get(const wm_msg *msg, wm_frame_view *v, wm_error *err);

void wm_proto_pack_stream(msgpack_packer *pk, const char *producer);
void wm_proto_pack_clip(msgpack_packer *pk, const wm_clip_info *c, int n_extra);
void wm_proto_pack_frame(msgpack_packer *pk, const wm_frame_info *f, int n_extra);
/* The "data" key and the bin header of n bytes; the n bytes follow. */
void wm_proto_pack_data_header(msgpack_packer *pk, size_t n);
void wm_proto_pack_end(msgpack_packer *pk, const char *clip, int64_t frames);

#endif
