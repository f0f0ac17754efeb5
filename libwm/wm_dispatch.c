#include "wm_dispatch.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "wm_json.h"
#include "wm_signal.h"
#include "wm_zmq.h"

enum { JOB_QUEUED, JOB_ASSIGNED, JOB_DONE };

typedef struct job {
    long seq;
    char clip_id[256];
    wm_strbuf prefix;      /* messages between the previous clip and this one */
    wm_strbuf raw;         /* the clip's messages, as read */
    wm_strbuf result;      /* what the chain returned */
    int state, tries;
    int failed;            /* counted in the dispatcher's failures */
} job;

typedef struct worker {
    uint8_t id[256];
    size_t id_len;
    double last_seen;
    long seq;              /* clip being served, -1 when idle */
    int number;            /* in the order the workers joined, from 1 */
} worker;

typedef struct dispatcher {
    const wm_dispatch_opts *o;
    void *sock;
    wm_writer *out;
    /* input */
    const char *const *specs;
    int nspecs, next_spec, input_done;
    wm_reader *in;
    wm_status input_status;
    wm_error input_err;
    wm_strbuf between;     /* messages outside clips not yet attached to a job */
    wm_strbuf carry;       /* a clip message that began before the previous clip's end */
    msgpack_zone carry_zone;
    /* jobs, indexed by seq - base */
    job **jobs;
    long njobs, cap_jobs, emitted, head;
    long *queue;           /* seqs waiting for a worker, front first */
    long nqueue, cap_queue;
    worker *workers;
    int nworkers, cap_workers;
    int joined;            /* workers that ever joined: the next one's number */
    long failed;           /* clips that failed for good */
    long first_failed_seq; /* the earliest of them in input order, */
    char first_failed_clip[256], first_failed_why[300];   /* its id and why */
    size_t max_message;
} dispatcher;

void wm_dispatch_opts_init(wm_dispatch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout = 3.0;
    o->retries = 3;
    o->max_pending = 64;
}

static void job_free(job *j)
{
    if (!j) return;
    wm_strbuf_free(&j->prefix);
    wm_strbuf_free(&j->raw);
    wm_strbuf_free(&j->result);
    free(j);
}

static int grow(void **p, long *cap, long need, size_t elem)
{
    if (need <= *cap) return 0;
    long ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    void *np = realloc(*p, (size_t)ncap * elem);
    if (!np) return -1;
    *p = np;
    *cap = ncap;
    return 0;
}

/* ---- input: whole clips ---- */

/* Next message of the inputs in turn; WM_EOF after the last. */
static wm_status input_next(dispatcher *d, wm_msg *m, wm_error *err)
{
    for (;;) {
        if (!d->in) {
            if (d->next_spec >= (d->nspecs ? d->nspecs : 1)) return WM_EOF;
            d->in = wm_reader_open(d->nspecs ? d->specs[d->next_spec] : NULL, d->o->max_message, err);
            d->next_spec++;
            if (!d->in) return err->code;
        }
        wm_status st = wm_reader_next(d->in, m, err);
        if (st != WM_EOF) return st;
        wm_reader_free(&d->in);
    }
}

static wm_status queue_push(dispatcher *d, long seq, int front, wm_error *err)
{
    if (grow((void **)&d->queue, &d->cap_queue, d->nqueue + 1, sizeof *d->queue))
        return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    if (front) {
        memmove(d->queue + 1, d->queue, (size_t)d->nqueue * sizeof *d->queue);
        d->queue[0] = seq;
    } else {
        d->queue[d->nqueue] = seq;
    }
    d->nqueue++;
    return WM_OK;
}

/* Appends to dst an end message of clip id carrying an error. */
static void add_error_end(wm_strbuf *dst, const char *id, const char *why)
{
    wm_msgbuf mb;
    wm_msgbuf_init(&mb);
    msgpack_pack_map(&mb.pk, 4);
    wm_pack_kv_str(&mb.pk, "kind", "end");
    wm_pack_kv_str(&mb.pk, "clip", id);
    wm_pack_kv_i64(&mb.pk, "frames", 0);
    wm_pack_kv_str(&mb.pk, "error", why);
    wm_strbuf_add(dst, mb.sbuf.data, mb.sbuf.size);
    wm_msgbuf_destroy(&mb);
}

/* Counts a clip that failed for good, once; the earliest in input order
 * names the batch's failure. */
static void note_failure(dispatcher *d, job *j, const char *why)
{
    if (j->failed) return;
    j->failed = 1;
    if (d->failed++ == 0 || j->seq < d->first_failed_seq) {
        d->first_failed_seq = j->seq;
        snprintf(d->first_failed_clip, sizeof d->first_failed_clip, "%s", j->clip_id);
        snprintf(d->first_failed_why, sizeof d->first_failed_why, "%s", why);
    }
}

/* Closes a clip the input cut short with an end carrying why: the clip
 * still goes to a worker, and counts as failed. */
static void close_cut_clip(dispatcher *d, job *j, const char *why)
{
    add_error_end(&j->raw, j->clip_id, why);
    note_failure(d, j, why);
}

/* Starts a job from its clip message. */
static job *job_begin(dispatcher *d, const wm_msg *m)
{
    job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->seq = d->njobs;
    wm_obj_strcpy(&m->root, "id", j->clip_id, sizeof j->clip_id);
    j->prefix = d->between;
    wm_strbuf_init(&d->between);
    wm_strbuf_add(&j->raw, (const char *)m->raw, m->len);
    return j;
}

/* Reads one whole clip into a new queued job.  Messages outside clips go
 * out at once (unordered) or travel as the next job's prefix (ordered). */
static wm_status read_clip(dispatcher *d, wm_error *err)
{
    job *j = NULL;
    wm_msg m;
    memset(&m, 0, sizeof m);
    if (d->carry.len) {   /* the clip message read last time */
        wm_msg_parse(&m, (const uint8_t *)d->carry.s, d->carry.len, &d->carry_zone, err);
        j = job_begin(d, &m);
        wm_strbuf_reset(&d->carry);
        if (!j) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    }
    for (;;) {
        wm_status st = input_next(d, &m, &d->input_err);
        if (st != WM_OK) {
            d->input_done = 1;
            if (st != WM_EOF) d->input_status = st;
            if (!j) return WM_OK;
            close_cut_clip(d, j, "the input ended before the clip's end");
            break;
        }
        if (wm_msg_is(&m, "clip")) {
            if (j) {   /* the previous clip never ended: close it, keep this one */
                close_cut_clip(d, j, "the next clip began before this clip's end");
                wm_strbuf_add(&d->carry, (const char *)m.raw, m.len);
                break;
            }
            if (!(j = job_begin(d, &m))) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
            continue;
        }
        if (!j) {
            if (!d->o->ordered) {
                if ((st = wm_writer_forward(d->out, &m, err))) return st;
            } else {
                wm_strbuf_add(&d->between, (const char *)m.raw, m.len);
            }
            continue;
        }
        wm_strbuf_add(&j->raw, (const char *)m.raw, m.len);
        if (wm_msg_is(&m, "end")) break;
    }
    if (j->raw.oom || j->prefix.oom || d->carry.oom ||
        grow((void **)&d->jobs, &d->cap_jobs, d->njobs + 1, sizeof(job *))) {
        job_free(j);
        return wm_error_set(err, WM_E_SYSTEM, "out of memory buffering a clip");
    }
    d->jobs[d->njobs++] = j;
    return queue_push(d, j->seq, 0, err);
}

/* ---- the socket ---- */

/* Sends frames[0..n) as one multipart message to a worker. */
/* A -v note, handed to the caller's printer. */
static void note(const dispatcher *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const dispatcher *d, const char *fmt, ...)
{
    if (!d->o->note) return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    d->o->note(d->o->note_ctx, line);
}

static int send_frames(dispatcher *d, const worker *w, const void *const *frames, const size_t *lens, int n)
{
    if (zmq_send(d->sock, w->id, w->id_len, ZMQ_SNDMORE) < 0) return -1;
    for (int i = 0; i < n; i++)
        if (zmq_send(d->sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0) return -1;
    return 0;
}

/* CLIP seq clip-id msg...: one frame per wm message. */
static int send_job(dispatcher *d, const worker *w, const job *j)
{
    char seq[32];
    snprintf(seq, sizeof seq, "%ld", j->seq);
    if (zmq_send(d->sock, w->id, w->id_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(d->sock, "CLIP", 4, ZMQ_SNDMORE) < 0 ||
        zmq_send(d->sock, seq, strlen(seq), ZMQ_SNDMORE) < 0 ||
        zmq_send(d->sock, j->clip_id, strlen(j->clip_id), ZMQ_SNDMORE) < 0)
        return -1;
    size_t off = 0;
    while (off < j->raw.len) {
        size_t size = 0;
        const char *why;
        wm_msgpack_measure((const uint8_t *)j->raw.s + off, j->raw.len - off, j->raw.len, &size, &why);
        if (zmq_send(d->sock, j->raw.s + off, size, off + size < j->raw.len ? ZMQ_SNDMORE : 0) < 0) return -1;
        off += size;
    }
    return 0;
}

static worker *worker_find(dispatcher *d, const void *id, size_t len)
{
    for (int i = 0; i < d->nworkers; i++)
        if (d->workers[i].id_len == len && memcmp(d->workers[i].id, id, len) == 0) return &d->workers[i];
    return NULL;
}

static worker *worker_add(dispatcher *d, const void *id, size_t len)
{
    long cap = d->cap_workers;
    if (len > sizeof d->workers[0].id || grow((void **)&d->workers, &cap, d->nworkers + 1, sizeof *d->workers))
        return NULL;
    d->cap_workers = (int)cap;
    worker *w = &d->workers[d->nworkers++];
    memcpy(w->id, id, len);
    w->id_len = len;
    w->seq = -1;
    w->last_seen = wm_now();
    w->number = ++d->joined;
    note(d, "worker %d joined", w->number);
    return w;
}

static job *job_get(dispatcher *d, long seq)
{
    return seq >= 0 && seq < d->njobs ? d->jobs[seq] : NULL;
}

/* Marks a job failed for good: its clip message and an end with the error. */
static void job_fail(dispatcher *d, job *j, const char *why)
{
    wm_strbuf_reset(&j->result);
    size_t size = 0;
    const char *w;
    wm_msgpack_measure((const uint8_t *)j->raw.s, j->raw.len, j->raw.len, &size, &w);
    wm_strbuf_add(&j->result, j->raw.s, size);   /* the clip message */
    add_error_end(&j->result, j->clip_id, why);
    j->state = JOB_DONE;
    note_failure(d, j, why);
}

/* A try of a job ended without a result (worker died or chain failed). */
static wm_status job_retry(dispatcher *d, job *j, const char *why, wm_error *err)
{
    if (j->state == JOB_DONE) return WM_OK;
    if (++j->tries >= d->o->retries) {
        char msg[300];
        snprintf(msg, sizeof msg, "failed %d times, last: %s", j->tries, why);
        job_fail(d, j, msg);
        return WM_OK;
    }
    j->state = JOB_QUEUED;
    return queue_push(d, j->seq, 1, err);
}

/* Handles one multipart message from a worker. */
static wm_status handle(dispatcher *d, zmq_msg_t *parts, int n, wm_error *err)
{
    if (n < 2) return WM_OK;
    const void *id = zmq_msg_data(&parts[0]);
    size_t id_len = zmq_msg_size(&parts[0]);
    const char *cmd = zmq_msg_data(&parts[1]);
    size_t cmd_len = zmq_msg_size(&parts[1]);
    worker *w = worker_find(d, id, id_len);
    if (!w && !(w = worker_add(d, id, id_len))) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    w->last_seen = wm_now();
    int is_result = cmd_len == 6 && memcmp(cmd, "RESULT", 6) == 0;
    int is_failed = cmd_len == 6 && memcmp(cmd, "FAILED", 6) == 0;
    if (!is_result && !is_failed) return WM_OK;   /* READY, HB */
    if (n < 3) return WM_OK;
    char seqs[32];
    size_t sl = zmq_msg_size(&parts[2]);
    if (sl >= sizeof seqs) return WM_OK;
    memcpy(seqs, zmq_msg_data(&parts[2]), sl);
    seqs[sl] = '\0';
    long seq = strtol(seqs, NULL, 10);
    job *j = job_get(d, seq);
    if (w->seq == seq) w->seq = -1;
    if (!j || j->state == JOB_DONE) return WM_OK;   /* a late duplicate: first result won */
    if (is_failed) {
        char why[256] = "chain failed";
        if (n > 3) snprintf(why, sizeof why, "%.*s", (int)zmq_msg_size(&parts[3]), (const char *)zmq_msg_data(&parts[3]));
        return job_retry(d, j, why, err);
    }
    wm_strbuf_reset(&j->result);
    for (int i = 3; i < n; i++) {
        size_t size = 0, len = zmq_msg_size(&parts[i]);
        const char *why;
        if (wm_msgpack_measure(zmq_msg_data(&parts[i]), len, d->max_message, &size, &why) != WM_MEASURE_COMPLETE ||
            size != len)
            return job_retry(d, j, "worker returned a damaged message", err);
        wm_strbuf_add(&j->result, zmq_msg_data(&parts[i]), len);
    }
    if (j->result.oom) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    j->state = JOB_DONE;
    return WM_OK;
}

static wm_status receive_all(dispatcher *d, wm_error *err)
{
    zmq_msg_t parts[4096];
    for (;;) {
        int n = 0, more = 1;
        while (more) {
            if (n == (int)(sizeof parts / sizeof parts[0])) {   /* too many parts: drain and drop */
                zmq_msg_close(&parts[--n]);
            }
            zmq_msg_init(&parts[n]);
            if (zmq_msg_recv(&parts[n], d->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                int e = errno;
                zmq_msg_close(&parts[n]);
                for (int i = 0; i < n; i++) zmq_msg_close(&parts[i]);
                if (e == EAGAIN && n == 0) return WM_OK;
                if (e == EINTR) return wm_signal_pending() ? wm_error_set(err, WM_E_INTERRUPTED, "interrupted") : WM_OK;
                return wm_error_set(err, WM_E_SYSTEM, "%s: receive failed: %s", d->o->endpoint, zmq_strerror(e));
            }
            more = zmq_msg_more(&parts[n]);
            n++;
        }
        wm_status st = handle(d, parts, n, err);
        for (int i = 0; i < n; i++) zmq_msg_close(&parts[i]);
        if (st != WM_OK) return st;
    }
}

/* Workers silent past the timeout are dead: their clips go back first in line. */
static wm_status purge(dispatcher *d, wm_error *err)
{
    double now = wm_now();
    for (int i = 0; i < d->nworkers; i++) {
        worker *w = &d->workers[i];
        if (now - w->last_seen <= d->o->timeout) continue;
        note(d, w->seq >= 0 ? "worker %d went silent; its clip is handed on" : "worker %d went silent", w->number);
        job *j = job_get(d, w->seq);
        d->workers[i] = d->workers[--d->nworkers];
        i--;
        if (j) {
            wm_status st = job_retry(d, j, "worker went silent", err);
            if (st != WM_OK) return st;
        }
    }
    return WM_OK;
}

static wm_status assign(dispatcher *d, wm_error *err)
{
    for (int i = 0; i < d->nworkers && d->nqueue > 0; i++) {
        worker *w = &d->workers[i];
        if (w->seq >= 0) continue;
        job *j = job_get(d, d->queue[0]);
        memmove(d->queue, d->queue + 1, (size_t)--d->nqueue * sizeof *d->queue);
        if (!j || j->state == JOB_DONE) continue;
        if (send_job(d, w, j) < 0) {   /* the worker is gone (ROUTER_MANDATORY) */
            w->last_seen = -1e9;
            wm_status st = queue_push(d, j->seq, 1, err);
            if (st != WM_OK) return st;
            continue;
        }
        j->state = JOB_ASSIGNED;
        w->seq = j->seq;
    }
    return WM_OK;
}

static wm_status emit_job(dispatcher *d, job *j, wm_error *err)
{
    wm_status st = WM_OK;
    if (j->prefix.len) st = wm_writer_send(d->out, j->prefix.s, j->prefix.len, NULL, 0, err);
    if (st == WM_OK && j->result.len) st = wm_writer_send(d->out, j->result.s, j->result.len, NULL, 0, err);
    if (st == WM_OK) st = wm_writer_flush(d->out, err);
    d->jobs[j->seq] = NULL;
    job_free(j);
    d->emitted++;
    return st;
}

static wm_status emit(dispatcher *d, wm_error *err)
{
    wm_status st = WM_OK;
    if (d->o->ordered) {
        while (st == WM_OK && d->head < d->njobs && d->jobs[d->head] && d->jobs[d->head]->state == JOB_DONE)
            st = emit_job(d, d->jobs[d->head++], err);
        return st;
    }
    for (long s = d->head; s < d->njobs && st == WM_OK; s++)
        if (d->jobs[s] && d->jobs[s]->state == JOB_DONE) st = emit_job(d, d->jobs[s], err);
    while (d->head < d->njobs && !d->jobs[d->head]) d->head++;
    return st;
}

static int idle_workers(const dispatcher *d)
{
    int n = 0;
    for (int i = 0; i < d->nworkers; i++) n += d->workers[i].seq < 0;
    return n;
}

static wm_status run(dispatcher *d, wm_progress *progress, wm_error *err)
{
    wm_status st;
    for (;;) {
        if (wm_signal_pending()) return wm_error_set(err, WM_E_INTERRUPTED, "interrupted");
        /* read ahead only as far as idle workers and the memory bound allow */
        while (!d->input_done && d->nqueue < idle_workers(d) && d->njobs - d->emitted < d->o->max_pending)
            if ((st = read_clip(d, err))) return st;
        if ((st = assign(d, err))) return st;
        zmq_pollitem_t item = { d->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, (long)(WM_DISPATCH_HEARTBEAT * 1000)) < 0 && errno != EINTR)
            return wm_error_set(err, WM_E_SYSTEM, "poll: %s", zmq_strerror(errno));
        if ((st = receive_all(d, err)) || (st = purge(d, err)) || (st = emit(d, err))) return st;
        if (progress)
            wm_progress_update(progress, "%ld clips done, %ld read, %d workers%s", d->emitted, d->njobs,
                               d->nworkers, d->input_done ? "" : ", reading");
        if (d->input_done && d->emitted == d->njobs) return WM_OK;
    }
}

wm_status wm_dispatch_run(const wm_dispatch_opts *o, const char *const *specs, int n,
                          wm_writer *out, wm_progress *progress, wm_error *err)
{
    dispatcher d;
    memset(&d, 0, sizeof d);
    d.o = o;
    d.out = out;
    d.specs = specs;
    d.nspecs = n;
    d.max_message = o->max_message ? o->max_message : WM_DEFAULT_MAX_MESSAGE;
    wm_strbuf_init(&d.between);
    wm_strbuf_init(&d.carry);
    if (!msgpack_zone_init(&d.carry_zone, 1024)) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
    d.sock = wm_zmq_open_type(o->endpoint, ZMQ_ROUTER, 1, err);
    if (!d.sock) {
        msgpack_zone_destroy(&d.carry_zone);
        return err->code;
    }
    int one = 1, linger = 1000;   /* BYE to a vanished worker must not hold us */
    zmq_setsockopt(d.sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(d.sock, ZMQ_LINGER, &linger, sizeof linger);
    wm_status st = run(&d, progress, err);
    if (st == WM_OK && d.between.len)   /* messages after the last clip */
        st = wm_writer_send(out, d.between.s, d.between.len, NULL, 0, err);
    /* tell every worker we know that the batch is over */
    for (int i = 0; i < d.nworkers; i++) {
        const void *f[] = { "BYE" };
        size_t l[] = { 3 };
        send_frames(&d, &d.workers[i], f, l, 1);
    }
    if (progress) note(&d, "%ld clips, %ld failed", d.emitted, d.failed);
    for (long i = 0; i < d.njobs; i++) job_free(d.jobs[i]);
    free(d.jobs);
    free(d.queue);
    free(d.workers);
    wm_strbuf_free(&d.between);
    wm_strbuf_free(&d.carry);
    msgpack_zone_destroy(&d.carry_zone);
    wm_reader_free(&d.in);
    wm_zmq_close(d.sock);
    if (st == WM_OK && d.input_status != WM_OK) {
        *err = d.input_err;
        st = d.input_status;
    }
    if (st == WM_OK && d.failed)   /* the batch went on; the exit status still tells */
        st = wm_error_set(err, WM_E_INPUT, "%ld of %ld clips failed; first: clip %s: %s", d.failed, d.njobs,
                          d.first_failed_clip, d.first_failed_why);
    return st;
}
