/* wm_gpu: the CUDA backend of the dynamics model, a plain C interface to
 * kernels/wm_gpu.cu (the only code that includes CUDA headers).
 *
 * Only bin/wm-step links it (with cudart; cuBLAS is opened with dlopen
 * when a model is first put on a device, so a run on the CPU does not pay
 * the 75 ms that loading cuBLAS takes); nothing in libwm calls it, so the
 * other filters stay free of CUDA.  The functions mirror
 * wm_step_backend (wm_step.h): reset a number of lanes, then run T steps
 * with the lanes still active a prefix, the inputs given or fed back.
 *
 * On the device: each 3x3 (dilated) convolution is an im2col kernel and
 * one cuBLAS SGEMM in fp32 (no TF32, so the results match the CPU's to
 * about 1e-6); the GRU gates with their biases, the normalisation and the
 * Gaussian head are fused elementwise kernels.  Device memory is
 * allocated once per lane count and grid and reused; inputs and outputs
 * go through pinned host buffers on a copy stream, overlapped with the
 * compute stream (the input of step t+1 is uploaded while step t runs,
 * the outputs of step t are downloaded while step t+1 runs).
 *
 * Ownership: wm_gpu_dynamics_new copies the weights to the device; the
 * caller frees the handle with wm_gpu_dynamics_free. */
#ifndef WM_GPU_H
#define WM_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "wm_error.h"

/* The model, as host arrays (borrowed during wm_gpu_dynamics_new). */
typedef struct wm_gpu_model {
    int C, hidden, dilation;
    float logvar_min;
    const float *norm_mean, *norm_std;       /* [C] */
    /* gru0.x, gru0.h, gru1.x, gru1.h, head: weight [out][3][3][in], bias [out] */
    const float *weight[5], *bias[5];
} wm_gpu_model;

/* Number of usable CUDA devices; 0 with the reason in err (no driver, no
 * device, ...) when there is none. */
int wm_gpu_device_count(wm_error *err);

/* Opens cuBLAS and resolves every function the backend calls, as
 * wm_gpu_dynamics_new does; needs no device.  WM_OK, or why not in err. */
wm_status wm_gpu_blas_check(wm_error *err);

/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)" for device 0. */
void wm_gpu_device_describe(char *out, size_t cap);

typedef struct wm_gpu_dynamics wm_gpu_dynamics;

wm_gpu_dynamics *wm_gpu_dynamics_new(const wm_gpu_model *m, wm_error *err);
void wm_gpu_dynamics_free(wm_gpu_dynamics **g);

/* wm_step_backend's reset and run (x, mean, var are host arrays). */
wm_status wm_gpu_dynamics_reset(wm_gpu_dynamics *g, int lanes, int h, int w, wm_error *err);
wm_status wm_gpu_dynamics_run(wm_gpu_dynamics *g, int T, const int *active, const float *x, int feed_from,
                              float *mean, float *var, wm_error *err);

/* With profile set (wm_gpu_dynamics_profile), the time of every GEMM and
 * of every run is measured with CUDA events. */
void wm_gpu_dynamics_profile(wm_gpu_dynamics *g, int on);

typedef struct wm_gpu_stats {
    uint64_t steps;            /* lane-steps run */
    double flops;              /* in the convolutions (2 * MACs) */
    double run_ms;             /* wall time inside wm_gpu_dynamics_run */
    double gemm_ms;            /* device time in cuBLAS GEMMs (profile only) */
    double device_ms;          /* device time from the first to the last kernel of each run (profile only) */
} wm_gpu_stats;

void wm_gpu_dynamics_stats(const wm_gpu_dynamics *g, wm_gpu_stats *s);

#ifdef __cplusplus
}
#endif

#endif
