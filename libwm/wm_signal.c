#include "wm_signal.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t wm_signal_flag;

static void wm_signal_on(int sig) { wm_signal_flag = sig; }

void wm_signal_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = wm_signal_on;   /* no SA_RESTART: blocking reads return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int wm_signal_pending(void) { return wm_signal_flag != 0; }
