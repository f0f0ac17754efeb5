#include "wm_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <zmq.h>

#include "wm_proto.h"
#include "wm_signal.h"
#include "wm_zmq.h"

struct wm_reader {
    int fd;
    int own_fd;
    char name[256];
    uint8_t *buf;
    size_t cap, start, end;   /* unconsumed bytes are buf[start..end) */
    size_t last_len;          /* length of the message handed out last */
    uint64_t base;            /* stream offset of buf[0] */
    uint64_t seq;
    size_t max_message;
    int eof;
    msgpack_zone zone;
    void *zsock;              /* ZeroMQ PULL socket, or NULL for a file/pipe */
    zmq_msg_t zmsg;           /* the message handed out last (ZeroMQ) */
    int zmsg_live;
};

/* A pipe's default 64 KiB buffer makes the processes of a pipeline of
 * large frames take turns; 1 MiB (the unprivileged maximum) lets them run
 * side by side.  Not a pipe, or not allowed: nothing changes. */
static void grow_pipe(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

wm_reader *wm_reader_open(const char *spec, size_t max_message, wm_error *err)
{
    wm_reader *r = calloc(1, sizeof *r);
    if (!r) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    r->max_message = max_message ? max_message : WM_DEFAULT_MAX_MESSAGE;
    if (wm_zmq_is_endpoint(spec)) {
        snprintf(r->name, sizeof r->name, "%s", spec);
        if (!msgpack_zone_init(&r->zone, 4096)) {
            free(r);
            wm_error_set(err, WM_E_SYSTEM, "out of memory");
            return NULL;
        }
        r->zsock = wm_zmq_open(spec, 0, err);
        if (!r->zsock) {
            msgpack_zone_destroy(&r->zone);
            free(r);
            return NULL;
        }
        /* ZeroMQ refuses (and drops the peer of) anything over the cap before allocating it */
        int64_t maxsize = (int64_t)r->max_message;
        zmq_setsockopt(r->zsock, ZMQ_MAXMSGSIZE, &maxsize, sizeof maxsize);
        return r;
    }
    if (!spec || strcmp(spec, "-") == 0) {
        r->fd = 0;
        snprintf(r->name, sizeof r->name, "stdin");
    } else {
        snprintf(r->name, sizeof r->name, "%s", spec);
        r->fd = open(spec, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
            wm_error_set(err, WM_E_INPUT, "%s: %s", spec, strerror(errno));
            free(r);
            return NULL;
        }
        r->own_fd = 1;
        struct stat st;
        if (fstat(r->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            wm_error_set(err, WM_E_INPUT, "%s: is a directory", spec);
            close(r->fd);
            free(r);
            return NULL;
        }
    }
    grow_pipe(r->fd);
    r->cap = 1 << 20;
    r->buf = malloc(r->cap);
    if (!r->buf || !msgpack_zone_init(&r->zone, 4096)) {
        free(r->buf);
        if (r->own_fd) close(r->fd);
        free(r);
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return NULL;
    }
    return r;
}

const char *wm_reader_name(const wm_reader *r) { return r->name; }

void wm_reader_free(wm_reader **rp)
{
    wm_reader *r = *rp;
    if (!r) return;
    if (r->own_fd) close(r->fd);
    if (r->zmsg_live) zmq_msg_close(&r->zmsg);
    wm_zmq_close(r->zsock);
    msgpack_zone_destroy(&r->zone);
    free(r->buf);
    free(r);
    *rp = NULL;
}

/* Makes room for need bytes from start, compacting and growing the buffer. */
static wm_status reader_reserve(wm_reader *r, size_t need, wm_error *err)
{
    if (r->cap - r->start >= need) return WM_OK;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->base += r->start;
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap >= need) return WM_OK;
    size_t ncap = r->cap;
    while (ncap < need) ncap *= 2;
    uint8_t *nb = realloc(r->buf, ncap);
    if (!nb)
        return wm_error_set(err, WM_E_SYSTEM, "%s: out of memory for a %zu-byte message", r->name, need);
    r->buf = nb;
    r->cap = ncap;
    return WM_OK;
}

static wm_status reader_fill(wm_reader *r, wm_error *err)
{
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n > 0) { r->end += (size_t)n; return WM_OK; }
        if (n == 0) { r->eof = 1; return WM_OK; }
        if (errno == EINTR) {
            if (wm_signal_pending())
                return wm_error_set(err, WM_E_INTERRUPTED, "interrupted");
            continue;
        }
        return wm_error_set(err, WM_E_INPUT, "%s: read error: %s", r->name, strerror(errno));
    }
}

/* Parses and validates one complete message at raw[0..len). */
static wm_status reader_take(wm_reader *r, wm_msg *msg, const uint8_t *raw, size_t len,
                             uint64_t offset, wm_error *err)
{
    wm_status st = wm_msg_parse(msg, raw, len, &r->zone, err);
    if (st == WM_OK) st = wm_proto_validate(msg, err);
    if (st != WM_OK)
        return wm_error_prefix(err, "%s: byte offset %llu (message %llu)", r->name,
                               (unsigned long long)offset, (unsigned long long)r->seq);
    msg->offset = offset;
    msg->seq = r->seq++;
    return WM_OK;
}

/* One ZeroMQ message is exactly one wm message; `eos` ends the stream. */
static wm_status reader_next_zmq(wm_reader *r, wm_msg *msg, wm_error *err)
{
    if (r->zmsg_live) { zmq_msg_close(&r->zmsg); r->zmsg_live = 0; }
    if (r->eof) return WM_EOF;
    zmq_msg_init(&r->zmsg);
    r->zmsg_live = 1;
    while (zmq_msg_recv(&r->zmsg, r->zsock, 0) < 0) {
        if (errno == EINTR && !wm_signal_pending()) continue;
        if (errno == EINTR) return wm_error_set(err, WM_E_INTERRUPTED, "interrupted");
        return wm_error_set(err, WM_E_INPUT, "%s: receive failed: %s", r->name, zmq_strerror(errno));
    }
    const uint8_t *raw = zmq_msg_data(&r->zmsg);
    size_t len = zmq_msg_size(&r->zmsg), size = 0;
    const char *why = "not one whole msgpack map";
    if (wm_msgpack_measure(raw, len, r->max_message, &size, &why) != WM_MEASURE_COMPLETE || size != len)
        return wm_error_set(err, WM_E_INPUT, "%s: message %llu: %s", r->name, (unsigned long long)r->seq, why);
    wm_status st = reader_take(r, msg, raw, len, r->base, err);
    r->base += len;
    if (st != WM_OK) return st;
    if (wm_msg_is(msg, "eos")) {
        r->eof = 1;
        const char *e;
        size_t n;
        if (wm_msg_str(msg, "error", &e, &n) == 0)
            return wm_error_set(err, WM_E_INPUT, "%s: the producer failed: %.*s", r->name, (int)n, e);
        return WM_EOF;
    }
    return WM_OK;
}

wm_status wm_reader_next(wm_reader *r, wm_msg *msg, wm_error *err)
{
    if (r->zsock) {
        msgpack_zone_clear(&r->zone);
        return reader_next_zmq(r, msg, err);
    }
    r->start += r->last_len;
    r->last_len = 0;
    msgpack_zone_clear(&r->zone);
    for (;;) {
        size_t avail = r->end - r->start, size = 0;
        uint64_t offset = r->base + r->start;
        if (avail == 0 && r->eof) return WM_EOF;
        const char *why = NULL;
        int m = avail ? wm_msgpack_measure(r->buf + r->start, avail, r->max_message, &size, &why)
                      : WM_MEASURE_MORE;
        if (m == WM_MEASURE_BAD)
            return wm_error_set(err, WM_E_INPUT, "%s: byte offset %llu (message %llu): %s (cap %zu bytes)",
                                r->name, (unsigned long long)offset, (unsigned long long)r->seq,
                                why, r->max_message);
        if (m == WM_MEASURE_COMPLETE) {
            wm_status st = reader_take(r, msg, r->buf + r->start, size, offset, err);
            if (st == WM_OK) r->last_len = size;
            return st;
        }
        if (avail == 0) size = 1;
        if (r->eof)
            return wm_error_set(err, WM_E_INPUT,
                                "%s: truncated stream: %zu bytes of an incomplete message at byte offset %llu (message %llu)",
                                r->name, avail, (unsigned long long)offset, (unsigned long long)r->seq);
        wm_status st = reader_reserve(r, size, err);
        if (st == WM_OK) st = reader_fill(r, err);
        if (st != WM_OK) return st;
    }
}

struct wm_writer {
    int fd;
    int own_fd;
    char name[256];
    char *tmp_path;     /* file written under a temporary name */
    char *final_path;
    uint8_t *buf;
    size_t cap, used;
    void *zsock;        /* ZeroMQ PUSH socket, or NULL */
    void *zmon;         /* its connection monitor, or NULL */
};

wm_writer *wm_writer_open(const char *spec, wm_error *err)
{
    wm_writer *w = calloc(1, sizeof *w);
    if (!w) { wm_error_set(err, WM_E_SYSTEM, "out of memory"); return NULL; }
    w->cap = 1 << 16;
    w->buf = malloc(w->cap);
    if (!w->buf) goto nomem;
    if (wm_zmq_is_endpoint(spec)) {
        snprintf(w->name, sizeof w->name, "%s", spec);
        w->zsock = wm_zmq_open_writer(spec, &w->zmon, err);
        if (!w->zsock) { free(w->buf); free(w); return NULL; }
        return w;
    }
    if (!spec || strcmp(spec, "-") == 0) {
        w->fd = 1;
        snprintf(w->name, sizeof w->name, "stdout");
        grow_pipe(w->fd);
        return w;
    }
    snprintf(w->name, sizeof w->name, "%s", spec);
    size_t n = strlen(spec) + 32;
    w->tmp_path = malloc(n);
    w->final_path = strdup(spec);
    if (!w->tmp_path || !w->final_path) goto nomem;
    snprintf(w->tmp_path, n, "%s.tmp.%ld", spec, (long)getpid());
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        wm_error_set(err, WM_E_OUTPUT, "%s: %s", spec, strerror(errno));
        free(w->tmp_path); free(w->final_path); free(w->buf); free(w);
        return NULL;
    }
    w->own_fd = 1;
    return w;
nomem:
    if (w) { free(w->tmp_path); free(w->final_path); free(w->buf); }
    free(w);
    wm_error_set(err, WM_E_SYSTEM, "out of memory");
    return NULL;
}

static wm_status write_error(wm_writer *w, wm_error *err)
{
    if (errno == EPIPE)
        return wm_error_set(err, WM_E_PIPE, "%s: reader went away", w->name);
    return wm_error_set(err, WM_E_OUTPUT, "%s: write failed: %s", w->name, strerror(errno));
}

/* Writes all of iov[0..cnt), resuming after partial writes. */
static wm_status write_all(wm_writer *w, struct iovec *iov, int cnt, wm_error *err)
{
    while (cnt > 0) {
        ssize_t n = writev(w->fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            return write_error(w, err);
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) { left -= iov->iov_len; iov++; cnt--; }
        if (cnt > 0) { iov->iov_base = (char *)iov->iov_base + left; iov->iov_len -= left; }
    }
    return WM_OK;
}

wm_status wm_writer_flush(wm_writer *w, wm_error *err)
{
    if (w->used == 0) return WM_OK;
    struct iovec iov = { w->buf, w->used };
    w->used = 0;
    return write_all(w, &iov, 1, err);
}

/* One ZeroMQ message per wm message: header and payload are gathered into
 * one buffer that ZeroMQ then owns and sends without another copy. */
static wm_status writer_send_zmq(wm_writer *w, const void *hdr, size_t hdr_len,
                                 const void *payload, size_t payload_len, wm_error *err)
{
    if (payload_len == 0) {
        /* a caller may hand over several whole messages at once (wm-dispatch
         * does): each goes as its own ZeroMQ message */
        size_t size = 0;
        const char *why = NULL;
        const uint8_t *p = hdr;
        if (wm_msgpack_measure(p, hdr_len, SIZE_MAX, &size, &why) == WM_MEASURE_COMPLETE && size < hdr_len) {
            for (size_t off = 0; off < hdr_len; off += size) {
                if (wm_msgpack_measure(p + off, hdr_len - off, SIZE_MAX, &size, &why) != WM_MEASURE_COMPLETE)
                    size = hdr_len - off;   /* not whole messages: the rest as it is */
                uint8_t *m = malloc(size + 1);
                if (!m) return wm_error_set(err, WM_E_SYSTEM, "%s: out of memory", w->name);
                memcpy(m, p + off, size);
                wm_status st = wm_zmq_send_owned(w->zsock, m, size, w->name, err);
                if (st) return st;
            }
            return WM_OK;
        }
    }
    uint8_t *m = malloc(hdr_len + payload_len + 1);
    if (!m) return wm_error_set(err, WM_E_SYSTEM, "%s: out of memory", w->name);
    memcpy(m, hdr, hdr_len);
    if (payload_len) memcpy(m + hdr_len, payload, payload_len);
    return wm_zmq_send_owned(w->zsock, m, hdr_len + payload_len, w->name, err);
}

static wm_status writer_send_eos(wm_writer *w, const char *error, wm_error *err)
{
    wm_msgbuf mb;
    wm_msgbuf_init(&mb);
    msgpack_pack_map(&mb.pk, error ? 2 : 1);
    wm_pack_kv_str(&mb.pk, "kind", "eos");
    if (error) wm_pack_kv_str(&mb.pk, "error", error);
    wm_status st = writer_send_zmq(w, mb.sbuf.data, mb.sbuf.size, NULL, 0, err);
    wm_msgbuf_destroy(&mb);
    return st;
}

wm_status wm_writer_send(wm_writer *w, const void *hdr, size_t hdr_len,
                         const void *payload, size_t payload_len, wm_error *err)
{
    if (w->zsock) return writer_send_zmq(w, hdr, hdr_len, payload, payload_len, err);
    if (w->used + hdr_len + payload_len <= w->cap) {
        memcpy(w->buf + w->used, hdr, hdr_len);
        w->used += hdr_len;
        if (payload_len) memcpy(w->buf + w->used, payload, payload_len);
        w->used += payload_len;
        return WM_OK;
    }
    /* large message: one writev of what is buffered, the header and the payload */
    struct iovec iov[3];
    int cnt = 0;
    if (w->used) { iov[cnt].iov_base = w->buf; iov[cnt++].iov_len = w->used; }
    if (hdr_len) { iov[cnt].iov_base = (void *)hdr; iov[cnt++].iov_len = hdr_len; }
    if (payload_len) { iov[cnt].iov_base = (void *)payload; iov[cnt++].iov_len = payload_len; }
    w->used = 0;
    return write_all(w, iov, cnt, err);
}

wm_status wm_writer_send_buf(wm_writer *w, wm_msgbuf *mb, wm_error *err)
{
    wm_status st = wm_writer_send(w, mb->sbuf.data, mb->sbuf.size, NULL, 0, err);
    wm_msgbuf_reset(mb);
    return st;
}

wm_status wm_writer_forward(wm_writer *w, const wm_msg *msg, wm_error *err)
{
    return wm_writer_send(w, msg->raw, msg->len, NULL, 0, err);
}

wm_status wm_writer_close(wm_writer *w, wm_error *err)
{
    if (w->zsock) {
        wm_status zs = writer_send_eos(w, NULL, err);
        wm_zmq_close_writer(w->zsock, w->zmon);   /* waits until the readers have it all */
        w->zsock = w->zmon = NULL;
        return zs;
    }
    wm_status st = wm_writer_flush(w, err);
    if (st != WM_OK || !w->own_fd) return st;
    int rc = fsync(w->fd);
    rc |= close(w->fd);
    w->own_fd = 0;
    if (rc != 0) return wm_error_set(err, WM_E_OUTPUT, "%s: %s", w->name, strerror(errno));
    if (rename(w->tmp_path, w->final_path) != 0)
        return wm_error_set(err, WM_E_OUTPUT, "%s: rename: %s", w->name, strerror(errno));
    free(w->tmp_path);
    w->tmp_path = NULL;
    return WM_OK;
}

void wm_writer_free(wm_writer **wp)
{
    wm_writer *w = *wp;
    if (!w) return;
    if (w->zsock) {   /* not closed: tell the consumer the stream failed */
        wm_error ignored;
        writer_send_eos(w, "stream ended early", &ignored);
        wm_zmq_close_writer(w->zsock, w->zmon);
    }
    if (w->own_fd) close(w->fd);
    if (w->tmp_path) unlink(w->tmp_path);
    free(w->tmp_path);
    free(w->final_path);
    free(w->buf);
    free(w);
    *wp = NULL;
}
