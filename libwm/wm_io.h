/* wm_io: reading and writing wm message streams over a transport.
 *
 * A reader yields whole, validated messages; a writer sends them.  The
 * transport is chosen from a spec string:
 *   NULL or "-"   stdin / stdout
 *   PATH          a file (a writer writes PATH.tmp.PID and renames it to
 *                 PATH on wm_writer_close, so a partial file never has the
 *                 final name)
 * Over pipes and files a stream is concatenated msgpack maps; the framing
 * lives behind the transport so other transports (ZeroMQ: one wm message
 * per ZeroMQ message) plug in without touching filters.
 *
 * Ownership: the caller owns readers and writers and frees them with
 * wm_reader_free / wm_writer_free (which set the pointer to NULL).  A
 * message from wm_reader_next is valid until the next call. */
#ifndef WM_IO_H
#define WM_IO_H

#include <stddef.h>
#include <stdint.h>

#include "wm_error.h"
#include "wm_msg.h"

/* Default cap on one message: a 4K rgb24 frame is 25 MiB; 8K is 100 MiB. */
#define WM_DEFAULT_MAX_MESSAGE ((size_t)256 << 20)

typedef struct wm_reader wm_reader;
typedef struct wm_writer wm_writer;

/* Opens spec for reading.  max_message caps one message (0: default). */
wm_reader *wm_reader_open(const char *spec, size_t max_message, wm_error *err);

/* Reads the next message into msg.  Returns WM_OK, WM_EOF at a clean end
 * (end of input on a message boundary), or WM_E_INPUT naming the input,
 * the byte offset and what is wrong (bad msgpack, over the cap, a size
 * that disagrees with its shape, a stream truncated mid-message).  Known
 * kinds are validated with wm_proto_validate; unknown kinds pass. */
wm_status wm_reader_next(wm_reader *r, wm_msg *msg, wm_error *err);

/* The name used in messages ("stdin" or the path). */
const char *wm_reader_name(const wm_reader *r);

void wm_reader_free(wm_reader **r);

/* Opens spec for writing (see above). */
wm_writer *wm_writer_open(const char *spec, wm_error *err);

/* Sends one message made of hdr followed by payload (payload may be NULL):
 * the payload of a frame goes out without being copied into the header. */
wm_status wm_writer_send(wm_writer *w, const void *hdr, size_t hdr_len,
                         const void *payload, size_t payload_len, wm_error *err);

/* Sends the finished message in mb, then empties mb. */
wm_status wm_writer_send_buf(wm_writer *w, wm_msgbuf *mb, wm_error *err);

/* Sends a message read elsewhere exactly as it arrived. */
wm_status wm_writer_forward(wm_writer *w, const wm_msg *msg, wm_error *err);

wm_status wm_writer_flush(wm_writer *w, wm_error *err);

/* Flushes and completes the output (renames a file to its final name).
 * Call it only on success; wm_writer_free alone discards a partial file. */
wm_status wm_writer_close(wm_writer *w, wm_error *err);

void wm_writer_free(wm_writer **w);

#endif
