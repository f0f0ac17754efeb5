// wm_gpu.cu: the dynamics model on a CUDA device (libwm/wm_gpu.h).
//
// The CUDA twin of wm_dynamics_step (libwm/wm_dynamics.c), which stays the
// readable reference: the same normalisation, two ConvGRU layers in
// nn.GRU's gate form and the Gaussian head, on lanes laid out NHWC.  Each
// 3x3 convolution is im2col + one cuBLAS SGEMM in plain fp32; the gates
// (with both biases), the normalisation and the head are fused kernels.
// The GRU state is updated in place, so lanes that have finished keep
// theirs untouched.
//
// cuBLAS is opened with dlopen when a model is put on a device, not linked
// into the program: loading libcublas and libcublasLt (600 MB) costs about
// 75 ms of relocations and constructors, which every wm-step paid at start,
// on the CPU too.  The headers still type every function it calls.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <chrono>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wm_gpu.h"

namespace {

enum { CV_X0, CV_H0, CV_X1, CV_H1, CV_HEAD, CV_COUNT };

const int THREADS = 256;

inline unsigned blocks_for(size_t n) { return (unsigned)((n + THREADS - 1) / THREADS); }

// ---- kernels ----

// col[m][ky][kx][c] = inp[b, y + (ky-1)d, x + (kx-1)d, c] (0 outside), m = (b, y, x)
__global__ void im2col3x3(float *__restrict__ col, const float *__restrict__ inp, int M, int H, int W, int Cin,
                          int d)
{
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t total = (size_t)M * 9 * Cin;
    if (idx >= total) return;
    int c = (int)(idx % Cin);
    int k = (int)((idx / Cin) % 9);
    int m = (int)(idx / ((size_t)9 * Cin));
    int x = m % W, y = (m / W) % H, b = m / (W * H);
    int iy = y + (k / 3 - 1) * d, ix = x + (k % 3 - 1) * d;
    col[idx] = iy >= 0 && iy < H && ix >= 0 && ix < W ? inp[(((size_t)b * H + iy) * W + ix) * Cin + c] : 0.0f;
}

// the same four channels at a time (Cin a multiple of 4)
__global__ void im2col3x3_vec4(float4 *__restrict__ col, const float4 *__restrict__ inp, int M, int H, int W,
                               int C4, int d)
{
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t total = (size_t)M * 9 * C4;
    if (idx >= total) return;
    int c = (int)(idx % C4);
    int k = (int)((idx / C4) % 9);
    int m = (int)(idx / ((size_t)9 * C4));
    int x = m % W, y = (m / W) % H, b = m / (W * H);
    int iy = y + (k / 3 - 1) * d, ix = x + (k % 3 - 1) * d;
    col[idx] = iy >= 0 && iy < H && ix >= 0 && ix < W ? inp[(((size_t)b * H + iy) * W + ix) * C4 + c]
                                                      : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}

// xn = (x - mean) / std; the first layer's input xin = [xn, xn - prev] per
// cell (a change of zero on the first step after a reset); prev <- xn
__global__ void layer0_input(float *__restrict__ xn, float *__restrict__ xin, float *__restrict__ prev,
                             const float *__restrict__ x, const float *__restrict__ mean,
                             const float *__restrict__ std, size_t n, int C, int fresh)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    size_t cell = i / C;
    int c = (int)(i % C);
    float v = (x[i] - mean[c]) / std[c];
    float p = fresh ? v : prev[i];
    xn[i] = v;
    xin[cell * 2 * C + c] = v;
    xin[cell * 2 * C + C + c] = v - p;
    prev[i] = v;
}

__device__ inline float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }

// h <- (1 - z) n + z h with r, z, n from gx + bx and gh + bh (blocks r|z|n)
__global__ void gru_gates(float *__restrict__ h, const float *__restrict__ gx, const float *__restrict__ gh,
                          const float *__restrict__ bx, const float *__restrict__ bh, size_t cells, int Ch)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= cells * Ch) return;
    size_t cell = i / Ch;
    int c = (int)(i % Ch);
    const float *a = gx + cell * 3 * Ch, *b = gh + cell * 3 * Ch;
    float r = sigmoidf_(a[c] + bx[c] + b[c] + bh[c]);
    float z = sigmoidf_(a[Ch + c] + bx[Ch + c] + b[Ch + c] + bh[Ch + c]);
    float n = tanhf(a[2 * Ch + c] + bx[2 * Ch + c] + r * (b[2 * Ch + c] + bh[2 * Ch + c]));
    float hp = h[i];
    h[i] = n + z * (hp - n);
}

// mean = (xn + y[:C] + b[:C]) std + m;  var = exp(lv_min + softplus(y[C:] + b[C:] - lv_min)) std^2
__global__ void gauss_head(float *__restrict__ mean, float *__restrict__ var, const float *__restrict__ y,
                           const float *__restrict__ bias, const float *__restrict__ xn,
                           const float *__restrict__ nmean, const float *__restrict__ nstd, size_t cells, int C,
                           float lv_min)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= cells * C) return;
    size_t cell = i / C;
    int c = (int)(i % C);
    const float *yc = y + cell * 2 * C;
    float m = xn[i] + yc[c] + bias[c];
    float u = yc[C + c] + bias[C + c] - lv_min;
    float lv = lv_min + (u > 20.0f ? u : log1pf(expf(u)));
    float sd = nstd[c];
    mean[i] = m * sd + nmean[c];
    var[i] = expf(lv) * sd * sd;
}

}  // namespace

// The cuBLAS functions the backend calls, resolved from the library.
struct blas_api {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetMathMode) set_math_mode;
    decltype(&cublasSgemm_v2) sgemm;
};

struct wm_gpu_dynamics {
    int C, Ch, dil;
    float lv_min;
    float *wt[CV_COUNT], *b[CV_COUNT];
    int cin[CV_COUNT], cout[CV_COUNT], dl[CV_COUNT];
    float *norm_mean, *norm_std;
    blas_api api;
    cublasHandle_t blas;
    cudaStream_t comp, copy;
    // buffers for `cap` lanes of h x w
    int cap, lanes, h, w;
    int fresh;                                             // no step since the reset
    float *state[2], *prev, *xn, *xin, *gx, *gh, *col, *y;
    float *x_dev[2], *mean_dev[2], *var_dev[2];           // per step, double-buffered
    float *x_pin[2], *mean_pin[2], *var_pin[2];           // pinned staging
    cudaEvent_t x_ready[2], in_used[2], out_ready[2], out_copied[2];
    // profiling
    int profile;
    cudaEvent_t *ev;
    int n_ev, cap_ev;
    cudaEvent_t run_start, run_stop;
    wm_gpu_stats stats;
};

namespace {

wm_status cuda_fail(wm_error *err, cudaError_t e, const char *what)
{
    return wm_error_set(err, WM_E_SYSTEM, "cuda: %s: %s", what, cudaGetErrorString(e));
}

wm_status blas_fail(wm_error *err, cublasStatus_t s, const char *what)
{
    return wm_error_set(err, WM_E_SYSTEM, "cublas: %s: status %d", what, (int)s);
}

#define WM_STR_(x) #x
#define WM_STR(x) WM_STR_(x)
#ifndef WM_CUDA_LIB
#define WM_CUDA_LIB "/usr/local/cuda/lib64"
#endif

// *out = the symbol `name` of lib; on a miss *missing names the first one absent
template <typename F> void resolve(void *lib, const char *name, F *out, const char **missing)
{
    *out = reinterpret_cast<F>(dlsym(lib, name));
    if (!*out && !*missing) *missing = name;
}

// Opens the cuBLAS of the headers' major version: by soname (the program's
// run path names the toolkit beside nvcc), else from that directory.  The
// library stays loaded for the life of the process, as a linked one would.
wm_status blas_open(blas_api *a, wm_error *err)
{
    const char *const paths[] = { "libcublas.so." WM_STR(CUBLAS_VER_MAJOR),
                                  WM_CUDA_LIB "/libcublas.so." WM_STR(CUBLAS_VER_MAJOR) };
    void *lib = nullptr;
    for (const char *p : paths)
        if ((lib = dlopen(p, RTLD_NOW | RTLD_LOCAL))) break;
    if (!lib) return wm_error_set(err, WM_E_SYSTEM, "cublas: cannot load %s (%s)", paths[0], dlerror());
    const char *missing = nullptr;
    resolve(lib, "cublasCreate_v2", &a->create, &missing);
    resolve(lib, "cublasDestroy_v2", &a->destroy, &missing);
    resolve(lib, "cublasSetStream_v2", &a->set_stream, &missing);
    resolve(lib, "cublasSetMathMode", &a->set_math_mode, &missing);
    resolve(lib, "cublasSgemm_v2", &a->sgemm, &missing);
    if (missing) return wm_error_set(err, WM_E_SYSTEM, "cublas: %s has no %s", paths[0], missing);
    return WM_OK;
}

#define CU(call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return cuda_fail(err, e_, what); } while (0)

void free_shape(wm_gpu_dynamics *g)
{
    float **dev[] = { &g->state[0], &g->state[1], &g->prev, &g->xin, &g->xn, &g->gx, &g->gh, &g->col, &g->y, &g->x_dev[0],
                      &g->x_dev[1], &g->mean_dev[0], &g->mean_dev[1], &g->var_dev[0], &g->var_dev[1] };
    for (float **p : dev) {
        if (*p) cudaFree(*p);
        *p = nullptr;
    }
    float **pin[] = { &g->x_pin[0], &g->x_pin[1], &g->mean_pin[0], &g->mean_pin[1], &g->var_pin[0], &g->var_pin[1] };
    for (float **p : pin) {
        if (*p) cudaFreeHost(*p);
        *p = nullptr;
    }
    g->cap = 0;
}

// im2col + GEMM: out[M, cout] = col(inp) x W^T (no bias; the fused kernels add it)
wm_status conv(wm_gpu_dynamics *g, int cv, float *out, const float *inp, int lanes, wm_error *err)
{
    const int M = lanes * g->h * g->w, cin = g->cin[cv], cout = g->cout[cv], K = 9 * cin;
    if (cin % 4 == 0) {
        size_t n = (size_t)M * 9 * (cin / 4);
        im2col3x3_vec4<<<blocks_for(n), THREADS, 0, g->comp>>>((float4 *)g->col, (const float4 *)inp, M, g->h, g->w,
                                                              cin / 4, g->dl[cv]);
    } else {
        size_t n = (size_t)M * 9 * cin;
        im2col3x3<<<blocks_for(n), THREADS, 0, g->comp>>>(g->col, inp, M, g->h, g->w, cin, g->dl[cv]);
    }
    CU(cudaGetLastError(), "im2col");
    const float one = 1.0f, zero = 0.0f;
    if (g->profile) {
        if (g->n_ev + 2 > g->cap_ev) {
            int cap = g->cap_ev ? 2 * g->cap_ev : 256;
            cudaEvent_t *ev = (cudaEvent_t *)realloc(g->ev, (size_t)cap * sizeof *ev);
            if (!ev) return wm_error_set(err, WM_E_SYSTEM, "out of memory");
            for (int i = g->cap_ev; i < cap; i++) CU(cudaEventCreate(&ev[i]), "event");
            g->ev = ev;
            g->cap_ev = cap;
        }
        CU(cudaEventRecord(g->ev[g->n_ev++], g->comp), "event");
    }
    // row-major out[M, cout] = col[M, K] W[cout, K]^T is column-major out^T = W^T^T col^T
    cublasStatus_t s = g->api.sgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, cout, M, K, &one, g->wt[cv], K, g->col, K,
                                     &zero, out, cout);
    if (s != CUBLAS_STATUS_SUCCESS) return blas_fail(err, s, "sgemm");
    if (g->profile) CU(cudaEventRecord(g->ev[g->n_ev++], g->comp), "event");
    g->stats.flops += 2.0 * M * (double)K * cout;
    return WM_OK;
}

// one step of the first `lanes` lanes: x (device, latent units) -> mean, var (device)
wm_status step(wm_gpu_dynamics *g, int lanes, const float *x, float *mean, float *var, wm_error *err)
{
    const size_t cells = (size_t)lanes * g->h * g->w;
    const int C = g->C, Ch = g->Ch;
    wm_status st;
    layer0_input<<<blocks_for(cells * C), THREADS, 0, g->comp>>>(g->xn, g->xin, g->prev, x, g->norm_mean, g->norm_std,
                                                                cells * C, C, g->fresh);
    CU(cudaGetLastError(), "layer 0 input");
    g->fresh = 0;
    const float *in = g->xin;
    for (int l = 0; l < 2; l++) {
        const int cx = l ? CV_X1 : CV_X0, ch = l ? CV_H1 : CV_H0;
        if ((st = conv(g, cx, g->gx, in, lanes, err)) || (st = conv(g, ch, g->gh, g->state[l], lanes, err))) return st;
        gru_gates<<<blocks_for(cells * Ch), THREADS, 0, g->comp>>>(g->state[l], g->gx, g->gh, g->b[cx], g->b[ch],
                                                                  cells, Ch);
        CU(cudaGetLastError(), "gru gates");
        in = g->state[l];
    }
    if ((st = conv(g, CV_HEAD, g->y, in, lanes, err))) return st;
    gauss_head<<<blocks_for(cells * C), THREADS, 0, g->comp>>>(mean, var, g->y, g->b[CV_HEAD], g->xn, g->norm_mean,
                                                              g->norm_std, cells, C, g->lv_min);
    CU(cudaGetLastError(), "gaussian head");
    return WM_OK;
}

}  // namespace

extern "C" int wm_gpu_device_count(wm_error *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        wm_error_set(err, WM_E_SYSTEM, "no CUDA device (%s)", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0) wm_error_set(err, WM_E_SYSTEM, "no CUDA device");
    return n;
}

extern "C" wm_status wm_gpu_blas_check(wm_error *err)
{
    blas_api a;
    return blas_open(&a, err);
}

extern "C" void wm_gpu_device_describe(char *out, size_t cap)
{
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        snprintf(out, cap, "unknown CUDA device");
        return;
    }
    snprintf(out, cap, "%s (sm_%d%d, %d SMs, %.0f GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
             (double)p.totalGlobalMem / (1 << 30));
}

extern "C" wm_gpu_dynamics *wm_gpu_dynamics_new(const wm_gpu_model *m, wm_error *err)
{
    wm_gpu_dynamics *g = (wm_gpu_dynamics *)calloc(1, sizeof *g);
    if (!g) {
        wm_error_set(err, WM_E_SYSTEM, "out of memory");
        return nullptr;
    }
    g->C = m->C;
    g->Ch = m->hidden;
    g->dil = m->dilation;
    g->lv_min = m->logvar_min;
    const int cin[CV_COUNT] = { 2 * m->C, m->hidden, m->hidden, m->hidden, m->hidden };
    const int cout[CV_COUNT] = { 3 * m->hidden, 3 * m->hidden, 3 * m->hidden, 3 * m->hidden, 2 * m->C };
    const int dl[CV_COUNT] = { 1, 1, m->dilation, m->dilation, 1 };
    wm_status st = WM_OK;
    cudaError_t e = cudaSuccess;
    for (int cv = 0; cv < CV_COUNT && e == cudaSuccess; cv++) {
        g->cin[cv] = cin[cv];
        g->cout[cv] = cout[cv];
        g->dl[cv] = dl[cv];
        size_t nw = (size_t)cout[cv] * 9 * cin[cv];
        if ((e = cudaMalloc(&g->wt[cv], nw * sizeof(float))) == cudaSuccess)
            e = cudaMemcpy(g->wt[cv], m->weight[cv], nw * sizeof(float), cudaMemcpyHostToDevice);
        if (e == cudaSuccess && (e = cudaMalloc(&g->b[cv], (size_t)cout[cv] * sizeof(float))) == cudaSuccess)
            e = cudaMemcpy(g->b[cv], m->bias[cv], (size_t)cout[cv] * sizeof(float), cudaMemcpyHostToDevice);
    }
    if (e == cudaSuccess && (e = cudaMalloc(&g->norm_mean, (size_t)m->C * sizeof(float))) == cudaSuccess)
        e = cudaMemcpy(g->norm_mean, m->norm_mean, (size_t)m->C * sizeof(float), cudaMemcpyHostToDevice);
    if (e == cudaSuccess && (e = cudaMalloc(&g->norm_std, (size_t)m->C * sizeof(float))) == cudaSuccess)
        e = cudaMemcpy(g->norm_std, m->norm_std, (size_t)m->C * sizeof(float), cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&g->comp, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&g->copy, cudaStreamNonBlocking);
    for (int i = 0; i < 2 && e == cudaSuccess; i++) {
        cudaEvent_t *evs[] = { &g->x_ready[i], &g->in_used[i], &g->out_ready[i], &g->out_copied[i] };
        for (cudaEvent_t *ev : evs)
            if (e == cudaSuccess) e = cudaEventCreateWithFlags(ev, cudaEventDisableTiming);
    }
    if (e == cudaSuccess) e = cudaEventCreate(&g->run_start);
    if (e == cudaSuccess) e = cudaEventCreate(&g->run_stop);
    if (e != cudaSuccess) st = cuda_fail(err, e, "setting up the model");
    if (st == WM_OK) st = blas_open(&g->api, err);
    if (st == WM_OK) {
        cublasStatus_t s = g->api.create(&g->blas);
        if (s == CUBLAS_STATUS_SUCCESS) s = g->api.set_stream(g->blas, g->comp);
        // plain fp32 (the default math never narrows to TF32): TF32 would round the inputs to 10 mantissa bits
        if (s == CUBLAS_STATUS_SUCCESS) s = g->api.set_math_mode(g->blas, CUBLAS_DEFAULT_MATH);
        if (s != CUBLAS_STATUS_SUCCESS) st = blas_fail(err, s, "setting up cuBLAS");
    }
    if (st != WM_OK) {
        wm_gpu_dynamics_free(&g);
        return nullptr;
    }
    return g;
}

extern "C" void wm_gpu_dynamics_free(wm_gpu_dynamics **gp)
{
    wm_gpu_dynamics *g = *gp;
    if (!g) return;
    if (g->comp) cudaStreamSynchronize(g->comp);
    if (g->copy) cudaStreamSynchronize(g->copy);
    free_shape(g);
    for (int cv = 0; cv < CV_COUNT; cv++) {
        if (g->wt[cv]) cudaFree(g->wt[cv]);
        if (g->b[cv]) cudaFree(g->b[cv]);
    }
    if (g->norm_mean) cudaFree(g->norm_mean);
    if (g->norm_std) cudaFree(g->norm_std);
    for (int i = 0; i < 2; i++) {
        cudaEvent_t evs[] = { g->x_ready[i], g->in_used[i], g->out_ready[i], g->out_copied[i] };
        for (cudaEvent_t ev : evs)
            if (ev) cudaEventDestroy(ev);
    }
    for (int i = 0; i < g->cap_ev; i++) cudaEventDestroy(g->ev[i]);
    free(g->ev);
    if (g->run_start) cudaEventDestroy(g->run_start);
    if (g->run_stop) cudaEventDestroy(g->run_stop);
    if (g->blas) g->api.destroy(g->blas);
    if (g->comp) cudaStreamDestroy(g->comp);
    if (g->copy) cudaStreamDestroy(g->copy);
    free(g);
    *gp = nullptr;
}

extern "C" wm_status wm_gpu_dynamics_reset(wm_gpu_dynamics *g, int lanes, int h, int w, wm_error *err)
{
    if (lanes < 1 || h < 1 || w < 1) return wm_error_set(err, WM_E_USAGE, "cuda: bad lane count or grid");
    CU(cudaStreamSynchronize(g->comp), "synchronize");
    CU(cudaStreamSynchronize(g->copy), "synchronize");
    g->lanes = lanes;
    if (!(g->cap && lanes <= g->cap && h == g->h && w == g->w)) {
        free_shape(g);
        g->h = h;
        g->w = w;
        const size_t cells = (size_t)lanes * h * w, C = (size_t)g->C, Ch = (size_t)g->Ch;
        size_t kmax = 0;
        for (int cv = 0; cv < CV_COUNT; cv++)
            if ((size_t)9 * g->cin[cv] > kmax) kmax = (size_t)9 * g->cin[cv];
        struct { float **p; size_t n; } dev[] = {
            { &g->state[0], cells * Ch }, { &g->state[1], cells * Ch }, { &g->prev, cells * C },
            { &g->xin, cells * 2 * C }, { &g->xn, cells * C },
            { &g->gx, cells * 3 * Ch }, { &g->gh, cells * 3 * Ch }, { &g->col, cells * kmax }, { &g->y, cells * 2 * C },
            { &g->x_dev[0], cells * C }, { &g->x_dev[1], cells * C }, { &g->mean_dev[0], cells * C },
            { &g->mean_dev[1], cells * C }, { &g->var_dev[0], cells * C }, { &g->var_dev[1], cells * C } };
        for (auto &a : dev) {
            cudaError_t e = cudaMalloc(a.p, a.n * sizeof(float));
            if (e != cudaSuccess) {
                free_shape(g);
                return cuda_fail(err, e, "allocating the lanes");
            }
        }
        float **pin[] = { &g->x_pin[0], &g->x_pin[1], &g->mean_pin[0], &g->mean_pin[1], &g->var_pin[0], &g->var_pin[1] };
        for (float **p : pin) {
            cudaError_t e = cudaMallocHost(p, cells * C * sizeof(float));
            if (e != cudaSuccess) {
                free_shape(g);
                return cuda_fail(err, e, "allocating pinned buffers");
            }
        }
        g->cap = lanes;
    }
    const size_t n = (size_t)g->cap * g->h * g->w * g->Ch * sizeof(float);
    CU(cudaMemsetAsync(g->state[0], 0, n, g->comp), "reset");
    CU(cudaMemsetAsync(g->state[1], 0, n, g->comp), "reset");
    g->fresh = 1;
    return WM_OK;
}

extern "C" wm_status wm_gpu_dynamics_run(wm_gpu_dynamics *g, int T, const int *active, const float *x, int feed_from,
                                         float *mean, float *var, wm_error *err)
{
    if (!g->cap) return wm_error_set(err, WM_E_SYSTEM, "cuda: run before reset");
    auto t_start = std::chrono::steady_clock::now();
    const size_t cell_c = (size_t)g->h * g->w * g->C, plane = (size_t)g->lanes * cell_c;
    wm_status st = WM_OK;
    if (g->profile) {
        g->n_ev = 0;
        CU(cudaEventRecord(g->run_start, g->comp), "event");
    }
    // stage and upload the input of step t (t < feed_from) on the copy stream
    auto upload = [&](int t) -> wm_status {
        const int buf = t % 2;
        const size_t n = (size_t)active[t] * cell_c;
        CU(cudaEventSynchronize(g->x_ready[buf]), "synchronize");    // the pinned buffer's last upload is done
        memcpy(g->x_pin[buf], x + (size_t)t * plane, n * sizeof(float));
        CU(cudaStreamWaitEvent(g->copy, g->in_used[buf], 0), "wait");  // step t-2 has read x_dev[buf]
        CU(cudaMemcpyAsync(g->x_dev[buf], g->x_pin[buf], n * sizeof(float), cudaMemcpyHostToDevice, g->copy), "upload");
        CU(cudaEventRecord(g->x_ready[buf], g->copy), "event");
        return WM_OK;
    };
    // wait for the download of step t and hand it to the caller
    auto collect = [&](int t) -> wm_status {
        const int buf = t % 2;
        const size_t n = (size_t)active[t] * cell_c;
        CU(cudaEventSynchronize(g->out_copied[buf]), "synchronize");
        memcpy(mean + (size_t)t * plane, g->mean_pin[buf], n * sizeof(float));
        if (var) memcpy(var + (size_t)t * plane, g->var_pin[buf], n * sizeof(float));
        return WM_OK;
    };
    if (T > 0 && 0 < feed_from && (st = upload(0))) return st;
    for (int t = 0; t < T && st == WM_OK; t++) {
        const int buf = t % 2, lanes = active[t];
        const size_t n = (size_t)lanes * cell_c;
        const float *in;
        if (t < feed_from) {
            CU(cudaStreamWaitEvent(g->comp, g->x_ready[buf], 0), "wait");
            in = g->x_dev[buf];
        } else {
            in = g->mean_dev[(t + 1) % 2];   // the previous step's mean, still on the device
        }
        if (t >= 2) CU(cudaStreamWaitEvent(g->comp, g->out_copied[buf], 0), "wait");   // step t-2's outputs are out
        if ((st = step(g, lanes, in, g->mean_dev[buf], g->var_dev[buf], err))) break;
        CU(cudaEventRecord(g->in_used[buf], g->comp), "event");
        CU(cudaEventRecord(g->out_ready[buf], g->comp), "event");
        CU(cudaStreamWaitEvent(g->copy, g->out_ready[buf], 0), "wait");
        CU(cudaMemcpyAsync(g->mean_pin[buf], g->mean_dev[buf], n * sizeof(float), cudaMemcpyDeviceToHost, g->copy),
           "download");
        if (var)
            CU(cudaMemcpyAsync(g->var_pin[buf], g->var_dev[buf], n * sizeof(float), cudaMemcpyDeviceToHost, g->copy),
               "download");
        CU(cudaEventRecord(g->out_copied[buf], g->copy), "event");
        // while step t runs: the next input up, the previous outputs out
        if (t + 1 < T && t + 1 < feed_from && (st = upload(t + 1))) break;
        if (t >= 1 && (st = collect(t - 1))) break;
        g->stats.steps += (uint64_t)lanes;
    }
    if (st == WM_OK && T > 0) st = collect(T - 1);
    if (g->profile && st == WM_OK) {
        CU(cudaEventRecord(g->run_stop, g->comp), "event");
        CU(cudaEventSynchronize(g->run_stop), "synchronize");
        float ms = 0;
        CU(cudaEventElapsedTime(&ms, g->run_start, g->run_stop), "timing");
        g->stats.device_ms += ms;
        for (int i = 0; i + 1 < g->n_ev; i += 2) {
            CU(cudaEventElapsedTime(&ms, g->ev[i], g->ev[i + 1]), "timing");
            g->stats.gemm_ms += ms;
        }
    }
    g->stats.run_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start).count();
    return st;
}

extern "C" void wm_gpu_dynamics_profile(wm_gpu_dynamics *g, int on) { g->profile = on; }

extern "C" void wm_gpu_dynamics_stats(const wm_gpu_dynamics *g, wm_gpu_stats *s) { *s = g->stats; }
