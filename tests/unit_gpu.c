/* wm_gpu without a device: cuBLAS is not loaded at start (so wm-step on
 * the CPU does not pay for it), and it opens, with every function the
 * backend calls, when asked (wm_gpu_dynamics_new does the same on a
 * device).  The CUDA parity test covers the backend where a GPU is. */
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "wm_gpu.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static int is_cublas(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    return info->dlpi_name && strstr(info->dlpi_name, "libcublas.so") != NULL;
}

/* whether a libcublas is among the loaded objects */
static int blas_loaded(void) { return dl_iterate_phdr(is_cublas, NULL); }

int main(void)
{
    wm_error err = { 0 };
    int n = wm_gpu_device_count(&err);
    printf("CUDA devices: %d%s%s\n", n, n ? "" : ": ", n ? "" : err.msg);
    CHECK(!blas_loaded(), "cuBLAS is loaded before any model went on a device");
    err = (wm_error){ 0 };
    wm_status st = wm_gpu_blas_check(&err);
    CHECK(st == WM_OK, "wm_gpu_blas_check: %s", err.msg);
    CHECK(blas_loaded(), "cuBLAS is not loaded after wm_gpu_blas_check");
    if (failures) return 1;
    printf("cuBLAS opens on demand, every function resolved\n");
    return 0;
}
