#include "wm_parallel.h"

#include <pthread.h>

void wm_parallel_run(void *(*fn)(void *), void *jobs, size_t size, int n)
{
    char *job = jobs;
    pthread_t tid[WM_PARALLEL_MAX];
    int started[WM_PARALLEL_MAX] = { 0 };
    for (int k = 1; k < n && k < WM_PARALLEL_MAX; k++)
        started[k] = pthread_create(&tid[k], NULL, fn, job + (size_t)k * size) == 0;
    if (n > 0) fn(job);
    for (int k = 1; k < n; k++) {
        if (k < WM_PARALLEL_MAX && started[k]) pthread_join(tid[k], NULL);
        else fn(job + (size_t)k * size);
    }
}
