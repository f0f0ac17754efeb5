/* wm_parallel: n independent jobs side by side, one thread each.
 * jobs is an array of n elements of `size` bytes; fn(&jobs[k]) runs job k.
 * The calling thread runs job 0; a job whose thread cannot start (or past
 * WM_PARALLEL_MAX) runs on the calling thread after it, so every job runs
 * exactly once.  Returns when all have finished.  Nothing allocates. */
#ifndef WM_PARALLEL_H
#define WM_PARALLEL_H

#include <stddef.h>

#define WM_PARALLEL_MAX 64

void wm_parallel_run(void *(*fn)(void *), void *jobs, size_t size, int n);

#endif
