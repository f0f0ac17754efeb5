/* wm_zmq: ZeroMQ endpoints for wm streams (used by wm_io).
 *
 * Spec convention (czmq's): "@tcp://0.0.0.0:5555" (or *) binds, ">tcp://host:5555" or a
 * bare "tcp://host:5555" connects; tcp://, ipc:// and inproc:// work.
 * Pipeline sockets are PUSH (writers) and PULL (readers); one wm message is
 * one ZeroMQ message; a writer ends its stream with an `eos` message.
 * High-water marks (WM_ZMQ_HWM messages, default 16) bound memory: a slow
 * consumer blocks the producer and nothing is dropped.
 *
 * All sockets of a process share one ZeroMQ context (as ZeroMQ advises, and
 * as inproc:// requires); it is reference-counted and ends with the last
 * socket. */
#ifndef WM_ZMQ_H
#define WM_ZMQ_H

#include <stddef.h>

#include "wm_error.h"

/* 1 when spec names a ZeroMQ endpoint rather than a file. */
int wm_zmq_is_endpoint(const char *spec);

/* Opens a PUSH (push != 0) or PULL socket for spec.  Returns the socket. */
void *wm_zmq_open(const char *spec, int push, wm_error *err);

/* Opens a socket of ZeroMQ type `type` for spec; a spec without "@" or
 * ">" binds when default_bind is set (czmq's defaults: ROUTER binds,
 * DEALER connects). */
void *wm_zmq_open_type(const char *spec, int type, int default_bind, wm_error *err);

/* A PUSH socket for a stream writer, with mon, a monitor of its
 * connections (NULL when monitoring is not available). */
void *wm_zmq_open_writer(const char *spec, void **mon, wm_error *err);

/* Closes a writer socket after its eos: waits until the readers that
 * connected have disconnected (they close after the eos, so they have every
 * message; libzmq can drop what a slow reader had not taken when the writer
 * hangs up first), then closes it.  An interrupt stops the wait. */
void wm_zmq_close_writer(void *sock, void *mon);

/* Closes the socket (NULL is fine).  A PUSH socket waits until what it
 * queued has been delivered: nothing sent is lost. */
void wm_zmq_close(void *sock);

/* Sends len bytes as one message, taking ownership of buf (malloc'd): the
 * bytes go to ZeroMQ without another copy.  EINTR after a signal gives
 * WM_E_INTERRUPTED. */
wm_status wm_zmq_send_owned(void *sock, void *buf, size_t len, const char *name, wm_error *err);

#endif
