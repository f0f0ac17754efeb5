/* wm_signal: SIGPIPE ignored (a vanished reader becomes EPIPE, handled as
 * a quiet exit) and SIGINT/SIGTERM recorded, so a filter stops at the next
 * message boundary and flushes complete results.  The pending flag is the
 * one piece of process-wide state in libwm: signals are process-wide. */
#ifndef WM_SIGNAL_H
#define WM_SIGNAL_H

void wm_signal_install(void);
/* Nonzero once SIGINT or SIGTERM arrived. */
int wm_signal_pending(void);

#endif
