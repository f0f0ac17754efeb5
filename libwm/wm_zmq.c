#include "wm_zmq.h"

#include <errno.h>
#include <pthread.h>
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

void *wm_zmq_open_type(const char *spec, int type, int default_bind, wm_error *err)
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
    int hwm = hwm_from_env(), linger = -1;
    if (type == ZMQ_PUSH || type == ZMQ_PULL)
        zmq_setsockopt(s, push ? ZMQ_SNDHWM : ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    int rc = bind ? zmq_bind(s, addr) : zmq_connect(s, addr);
    if (rc != 0) {
        wm_error_set(err, push ? WM_E_OUTPUT : WM_E_INPUT, "%s: cannot %s: %s", spec,
                     bind ? "bind" : "connect", zmq_strerror(errno));
        zmq_close(s);
        ctx_release();
        return NULL;
    }
    return s;
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
