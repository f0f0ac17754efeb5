/* The worker side of wm_dispatch (see wm_dispatch.h): a DEALER socket to
 * the dispatcher and a filter chain run by /bin/sh -c, fed through pipes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "wm_dispatch.h"
#include "wm_json.h"
#include "wm_proto.h"
#include "wm_signal.h"
#include "wm_zmq.h"

typedef struct chain {
    double started;        /* when it was started (to pace restarts) */
    pid_t pid;
    int in_fd, out_fd;     /* its stdin (we write), its stdout (we read) */
} chain;

typedef struct wk {
    const wm_worker_opts *o;
    void *sock;
    chain ch;
    int busy;
    char seq[32], clip_id[256];
    wm_strbuf input;       /* the clip's messages, to write to the chain */
    size_t input_off;
    wm_strbuf output;      /* bytes read from the chain, not yet whole messages */
    wm_strbuf result;      /* whole messages of the current clip */
    msgpack_zone zone;
    long done;
} wk;

static void chain_stop(chain *c)
{
    if (c->in_fd >= 0) close(c->in_fd);
    if (c->out_fd >= 0) close(c->out_fd);
    c->in_fd = c->out_fd = -1;
    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        waitpid(c->pid, NULL, 0);
    }
    c->pid = -1;
}

static wm_status chain_start(chain *c, const char *command, wm_error *err)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return wm_error_set(err, WM_E_SYSTEM, "pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]); close(in[1]);
        return wm_error_set(err, WM_E_SYSTEM, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        return wm_error_set(err, WM_E_SYSTEM, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    c->pid = pid;
    c->started = wm_now();
    c->in_fd = in[1];
    c->out_fd = out[0];
    return WM_OK;
}

static wm_status send_parts(wk *w, const char *const *parts, const size_t *lens, int n, wm_error *err)
{
    for (int i = 0; i < n; i++)
        while (zmq_send(w->sock, parts[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            if (errno != EINTR || wm_signal_pending())
                return wm_error_set(err, WM_E_OUTPUT, "%s: send: %s", w->o->endpoint, zmq_strerror(errno));
    return WM_OK;
}

static wm_status send_cmd(wk *w, const char *cmd, wm_error *err)
{
    const char *p[] = { cmd };
    size_t l[] = { strlen(cmd) };
    return send_parts(w, p, l, 1, err);
}

static void job_clear(wk *w)
{
    w->busy = 0;
    w->input_off = 0;
    wm_strbuf_reset(&w->input);
    wm_strbuf_reset(&w->output);
    wm_strbuf_reset(&w->result);
}

/* RESULT seq msg...: one frame per whole message the chain produced. */
static wm_status send_result(wk *w, wm_error *err)
{
    wm_status st = WM_OK;
    const char *p[] = { "RESULT", w->seq };
    size_t l[] = { 6, strlen(w->seq) };
    int more = w->result.len > 0;
    for (int i = 0; i < 2 && st == WM_OK; i++)
        if (zmq_send(w->sock, p[i], l[i], (i == 0 || more) ? ZMQ_SNDMORE : 0) < 0)
            st = wm_error_set(err, WM_E_OUTPUT, "%s: send: %s", w->o->endpoint, zmq_strerror(errno));
    size_t off = 0;
    while (st == WM_OK && off < w->result.len) {
        size_t size = 0;
        const char *why;
        wm_msgpack_measure((const uint8_t *)w->result.s + off, w->result.len - off, w->result.len, &size, &why);
        if (zmq_send(w->sock, w->result.s + off, size, off + size < w->result.len ? ZMQ_SNDMORE : 0) < 0)
            st = wm_error_set(err, WM_E_OUTPUT, "%s: send: %s", w->o->endpoint, zmq_strerror(errno));
        off += size;
    }
    w->done++;
    job_clear(w);
    return st;
}

/* The chain died or misbehaved: report the clip and start a fresh chain. */
static wm_status chain_failed(wk *w, const char *why, wm_error *err)
{
    wm_status st = WM_OK;
    if (w->busy) {
        const char *p[] = { "FAILED", w->seq, why };
        size_t l[] = { 6, strlen(w->seq), strlen(why) };
        st = send_parts(w, p, l, 3, err);
    }
    job_clear(w);
    /* a chain that cannot even start must not make us spin */
    if (wm_now() - w->ch.started < 0.5) usleep(500000);
    chain_stop(&w->ch);
    if (st == WM_OK) st = chain_start(&w->ch, w->o->command, err);
    return st;
}

/* Moves whole messages from output to result; the clip is done at its end. */
static wm_status take_output(wk *w, wm_error *err)
{
    size_t off = 0;
    while (off < w->output.len) {
        size_t size = 0;
        const char *why = NULL;
        int m = wm_msgpack_measure((const uint8_t *)w->output.s + off, w->output.len - off,
                                   w->o->max_message ? w->o->max_message : WM_DEFAULT_MAX_MESSAGE, &size, &why);
        if (m == WM_MEASURE_MORE) break;
        if (m == WM_MEASURE_BAD) return chain_failed(w, "the chain wrote a damaged stream", err);
        wm_msg msg;
        wm_error perr;
        msgpack_zone_clear(&w->zone);
        if (wm_msg_parse(&msg, (const uint8_t *)w->output.s + off, size, &w->zone, &perr) != WM_OK)
            return chain_failed(w, "the chain wrote a damaged stream", err);
        wm_strbuf_add(&w->result, w->output.s + off, size);
        off += size;
        int last = wm_msg_is(&msg, "end") && wm_obj_streq(wm_msg_get(&msg, "clip"), w->clip_id);
        if (last) {
            /* nothing should follow an end within one clip's output */
            wm_status st = send_result(w, err);
            return st;
        }
    }
    memmove(w->output.s, w->output.s + off, w->output.len - off);
    w->output.len -= off;
    return WM_OK;
}

static wm_status on_message(wk *w, zmq_msg_t *parts, int n, int *bye, wm_error *err)
{
    const char *cmd = zmq_msg_data(&parts[0]);
    size_t len = zmq_msg_size(&parts[0]);
    if (len == 3 && memcmp(cmd, "BYE", 3) == 0) { *bye = 1; return WM_OK; }
    if (!(len == 4 && memcmp(cmd, "CLIP", 4) == 0) || n < 3) return WM_OK;
    job_clear(w);
    snprintf(w->seq, sizeof w->seq, "%.*s", (int)zmq_msg_size(&parts[1]), (const char *)zmq_msg_data(&parts[1]));
    snprintf(w->clip_id, sizeof w->clip_id, "%.*s", (int)zmq_msg_size(&parts[2]), (const char *)zmq_msg_data(&parts[2]));
    for (int i = 3; i < n; i++) wm_strbuf_add(&w->input, zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i]));
    if (w->input.oom) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    w->busy = 1;
    return WM_OK;
}

static wm_status receive(wk *w, int *bye, wm_error *err)
{
    for (;;) {
        zmq_msg_t parts[4096];
        int n = 0, more = 1;
        while (more && n < (int)(sizeof parts / sizeof parts[0])) {
            zmq_msg_init(&parts[n]);
            if (zmq_msg_recv(&parts[n], w->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                int e = errno;
                for (int i = 0; i <= n; i++) zmq_msg_close(&parts[i]);
                if (e == EAGAIN && n == 0) return WM_OK;
                if (e == EINTR) return wm_signal_pending() ? wm_error_set(err, WM_E_INTERRUPTED, "interrupted") : WM_OK;
                return wm_error_set(err, WM_E_INPUT, "%s: receive: %s", w->o->endpoint, zmq_strerror(e));
            }
            more = zmq_msg_more(&parts[n]);
            n++;
        }
        wm_status st = on_message(w, parts, n, bye, err);
        for (int i = 0; i < n; i++) zmq_msg_close(&parts[i]);
        if (st != WM_OK || *bye) return st;
    }
}

static wm_status pump(wk *w, int in_ready, int out_ready, wm_error *err)
{
    if (in_ready && w->input_off < w->input.len) {
        ssize_t k = write(w->ch.in_fd, w->input.s + w->input_off, w->input.len - w->input_off);
        if (k > 0) w->input_off += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EINTR) return chain_failed(w, "the chain stopped reading", err);
    }
    if (out_ready) {
        char buf[65536];
        ssize_t k = read(w->ch.out_fd, buf, sizeof buf);
        if (k == 0) return chain_failed(w, "the chain exited", err);
        if (k < 0) return (errno == EAGAIN || errno == EINTR) ? WM_OK : chain_failed(w, "the chain's output failed", err);
        if (!w->busy) return WM_OK;   /* output between clips: nothing to attach it to */
        wm_strbuf_add(&w->output, buf, (size_t)k);
        if (w->output.oom) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return take_output(w, err);
    }
    return WM_OK;
}

wm_status wm_worker_run(const wm_worker_opts *o, long *clips_done, wm_error *err)
{
    wk w;
    memset(&w, 0, sizeof w);
    w.o = o;
    w.ch.in_fd = w.ch.out_fd = -1;
    w.ch.pid = -1;
    wm_strbuf_init(&w.input);
    wm_strbuf_init(&w.output);
    wm_strbuf_init(&w.result);
    if (!msgpack_zone_init(&w.zone, 4096)) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    wm_status st = chain_start(&w.ch, o->command, err);
    if (st == WM_OK) {
        w.sock = wm_zmq_open_type(o->endpoint, ZMQ_DEALER, 0, err);
        if (!w.sock) st = err->code;
    }
    if (st == WM_OK) st = send_cmd(&w, "READY", err);
    double last_hb = wm_now();
    int bye = 0;
    while (st == WM_OK) {
        if (wm_signal_pending()) { st = wm_error_set(err, WM_E_INTERRUPTED, "interrupted"); break; }
        zmq_pollitem_t items[3] = {
            { w.sock, 0, ZMQ_POLLIN, 0 },
            { NULL, w.ch.out_fd, ZMQ_POLLIN, 0 },
            { NULL, w.ch.in_fd, (short)(w.busy && w.input_off < w.input.len ? ZMQ_POLLOUT : 0), 0 } };
        if (zmq_poll(items, 3, (long)(WM_DISPATCH_HEARTBEAT * 1000)) < 0 && errno != EINTR) {
            st = wm_error_set(err, WM_E_SYSTEM, "poll: %s", zmq_strerror(errno));
            break;
        }
        if (wm_now() - last_hb >= WM_DISPATCH_HEARTBEAT) {
            st = send_cmd(&w, "HB", err);
            last_hb = wm_now();
        }
        if (st == WM_OK && (items[1].revents || items[2].revents))
            st = pump(&w, items[2].revents & ZMQ_POLLOUT, items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR), err);
        if (st == WM_OK && (items[0].revents & ZMQ_POLLIN)) st = receive(&w, &bye, err);
        if (st == WM_OK && bye) {
            if (!o->keep) break;
            bye = 0;
            st = send_cmd(&w, "READY", err);
        }
    }
    chain_stop(&w.ch);
    if (w.sock) {
        int linger = 1000;
        zmq_setsockopt(w.sock, ZMQ_LINGER, &linger, sizeof linger);
        wm_zmq_close(w.sock);
    }
    msgpack_zone_destroy(&w.zone);
    wm_strbuf_free(&w.input);
    wm_strbuf_free(&w.output);
    wm_strbuf_free(&w.result);
    *clips_done = w.done;
    return st;
}
