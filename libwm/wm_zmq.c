#include "wm_zmq.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "wm_signal.h"

/* The one context of the process (ZeroMQ's advice, and inproc needs it). */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static void *ctx_shared;
static int ctx_users;

static void *ctx_acquire(void)
{
    pthread_mutex_lock(&ctx_lock);
    if (!ctx_shared) ctx_shared = zmq_ctx_new();
    if (ctx_shared) ctx_users++;
    void *c = ctx_shared;
    pthread_mutex_unlock(&ctx_lock);
    return c;
}

static void ctx_release(void)
{
    pthread_mutex_lock(&ctx_lock);
    if (ctx_users > 0 && --ctx_users == 0) {
        zmq_ctx_term(ctx_shared);
        ctx_shared = NULL;
    }
    pthread_mutex_unlock(&ctx_lock);
}

int wm_zmq_is_endpoint(const char *spec)
{
    if (!spec) return 0;
    if (spec[0] == '@' || spec[0] == '>') spec++;
    return strncmp(spec, "tcp://", 6) == 0 || strncmp(spec, "ipc://", 6) == 0 ||
           strncmp(spec, "inproc://", 9) == 0;
}

static int hwm_from_env(void)
{
    const char *s = getenv("WM_ZMQ_HWM");
    int v = s ? atoi(s) : 0;
    return v > 0 ? v : 16;
}

void *wm_zmq_open(const char *spec, int push, wm_error *err)
{
    return wm_zmq_open_type(spec, push ? ZMQ_PUSH : ZMQ_PULL, 0, err);
}

/* Opens the socket; with mon, also a PAIR socket that receives its
 * connection events (set up before bind/connect, so none is missed). */
static void *open_socket(const char *spec, int type, int default_bind, void **mon, wm_error *err)
{
    int push = type == ZMQ_PUSH || type == ZMQ_DEALER;
    int bind = spec[0] == '@' || (default_bind && spec[0] != '>');
    const char *addr = (spec[0] == '@' || spec[0] == '>') ? spec + 1 : spec;
    void *ctx = ctx_acquire();
    if (!ctx) {
        wm_error_set(err, WM_E_SYSTEM, "%s: cannot create a ZeroMQ context: %s", spec, zmq_strerror(errno));
        return NULL;
    }
    void *s = zmq_socket(ctx, type);
    if (!s) {
        wm_error_set(err, WM_E_SYSTEM, "%s: %s", spec, zmq_strerror(errno));
        ctx_release();
        return NULL;
    }
    int hwm = hwm_from_env(), linger = -1, hb_ivl = 2000, hb_timeout = 20000;
    if (type == ZMQ_PUSH || type == ZMQ_PULL) {
        zmq_setsockopt(s, push ? ZMQ_SNDHWM : ZMQ_RCVHWM, &hwm, sizeof hwm);
        /* a peer that dies without closing (a machine gone) is noticed */
        zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
        zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout);
    }
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (mon) {
        char maddr[64];
        snprintf(maddr, sizeof maddr, "inproc://wm-monitor-%p", s);
        *mon = NULL;
        if (zmq_socket_monitor(s, maddr, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == 0) {
            void *m = zmq_socket(ctx, ZMQ_PAIR);
            if (m && zmq_connect(m, maddr) == 0) *mon = m;
            else if (m) zmq_close(m);
        }
    }
    int rc = bind ? zmq_bind(s, addr) : zmq_connect(s, addr);
    if (rc != 0) {
        wm_error_set(err, push ? WM_E_OUTPUT : WM_E_INPUT, "%s: cannot %s: %s", spec,
                     bind ? "bind" : "connect", zmq_strerror(errno));
        if (mon && *mon) { zmq_close(*mon); *mon = NULL; }
        zmq_close(s);
        ctx_release();
        return NULL;
    }
    return s;
}

void *wm_zmq_open_type(const char *spec, int type, int default_bind, wm_error *err)
{
    return open_socket(spec, type, default_bind, NULL, err);
}

void *wm_zmq_open_writer(const char *spec, void **mon, wm_error *err)
{
    return open_socket(spec, ZMQ_PUSH, 0, mon, err);
}

void wm_zmq_close_writer(void *sock, void *mon)
{
    if (!sock) return;
    if (mon) {
        /* Wait until every reader that connected has gone (a reader closes
         * after the eos, so it has everything): libzmq may drop what a
         * slow reader has not taken yet when the writer hangs up first.
         * Peers are counted from the events; an interrupt stops waiting. */
        int peers = 0, ever = 0;
        for (;;) {
            zmq_pollitem_t it = { mon, 0, ZMQ_POLLIN, 0 };
            /* once every reader has gone, only the events already queued count */
            int rc = zmq_poll(&it, 1, ever && peers <= 0 ? 0 : 200);
            if (rc > 0) {
                zmq_msg_t ev, where;
                zmq_msg_init(&ev);
                zmq_msg_init(&where);
                if (zmq_msg_recv(&ev, mon, 0) >= 0 && zmq_msg_size(&ev) >= 2) {
                    uint16_t e;
                    memcpy(&e, zmq_msg_data(&ev), sizeof e);
                    if (e & (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED)) { peers++; ever = 1; }
                    if (e & ZMQ_EVENT_DISCONNECTED) peers--;
                    if (zmq_msg_more(&ev)) zmq_msg_recv(&where, mon, 0);
                }
                zmq_msg_close(&ev);
                zmq_msg_close(&where);
                continue;
            }
            if (rc < 0 && errno != EINTR) break;
            if (wm_signal_pending()) break;
            if (ever && peers <= 0) break;
        }
        zmq_socket_monitor(sock, NULL, 0);
        zmq_close(mon);
    }
    zmq_close(sock);
    ctx_release();
}

void wm_zmq_close(void *sock)
{
    if (!sock) return;
    zmq_close(sock);
    ctx_release();
}

static void free_owned(void *data, void *hint)
{
    (void)hint;
    free(data);
}

wm_status wm_zmq_send_owned(void *sock, void *buf, size_t len, const char *name, wm_error *err)
{
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, buf, len, free_owned, NULL) != 0) {
        free(buf);
        return wm_error_set(err, WM_E_SYSTEM, "%s: %s", name, zmq_strerror(errno));
    }
    for (;;) {
        if (zmq_msg_send(&m, sock, 0) >= 0) return WM_OK;   /* ZeroMQ owns buf now */
        if (errno == EINTR && !wm_signal_pending()) continue;
        int e = errno;
        zmq_msg_close(&m);
        if (e == EINTR) return wm_error_set(err, WM_E_INTERRUPTED, "interrupted");
        return wm_error_set(err, WM_E_OUTPUT, "%s: send failed: %s", name, zmq_strerror(e));
    }
}
