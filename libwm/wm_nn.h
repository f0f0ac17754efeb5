/* wm_nn: neural-network layers as plain functions over flat float arrays
 * (llm.c's style), the CPU reference that kernels/ mirrors on the GPU.
 *
 * Layout: activations are channel-last, NHWC: element (b, y, x, c) of a
 * B x H x W x C tensor is at ((b*H + y)*W + x)*C + c.  Convolution weights
 * are [Cout][K][K][Cin] (out, ky, kx, in), so one output pixel is a dot
 * product of a weight row with the K*K*Cin input patch, and a whole layer
 * is one GEMM over the im2col matrix (cblas_sgemm, OpenBLAS).
 *
 * Conventions shared by every layer:
 *  - layer_forward(out, inp, weight, bias, dims...) overwrites out;
 *  - layer_backward(dinp, dweight, dbias, dout, inp, weight, dims...)
 *    ACCUMULATES (+=) into dinp, dweight and dbias, so the caller zeroes
 *    its gradient buffers once per step and a tensor read by two layers
 *    (a residual) simply receives both contributions.  dinp may be NULL
 *    when the input needs no gradient (the first layer);
 *  - no layer allocates: scratch space is passed in, sized by the
 *    matching *_scratch_floats function;
 *  - nothing here fails or prints: shapes are the caller's contract. */
#ifndef WM_NN_H
#define WM_NN_H

#include <stddef.h>
#include <stdint.h>

#include "wm_rng.h"

/* Sets the number of BLAS threads once for the process (n >= 1). */
void wm_nn_set_threads(int n);
int wm_nn_threads(void);

/* A training pass split into n parts (n >= 1) of `size` bytes each, run
 * side by side by fn (wm_parallel_run) with BLAS and wm_nn's own threads
 * at one meanwhile: the parts are the threads.  Then grads[1..n-1], each
 * `total` floats, are added into grads[0], in that order (the same n gives
 * the same bits); grads NULL: no gradients (inference). */
void wm_nn_run_parts(void *(*fn)(void *), void *parts, size_t size, int n, float *const *grads, size_t total);

/* Output size of a convolution along one axis. */
int wm_conv2d_out_size(int in, int K, int stride, int pad);

/* Floats of scratch wm_conv2d_forward/backward need for a layer of Cin
 * input and Cout output channels and a K x K kernel (im2col of one chunk
 * of rows). */
size_t wm_conv2d_scratch_floats(int Cin, int Cout, int K);

/* out[B, Ho, Wo, Cout] = conv(inp[B, H, W, Cin], weight[Cout, K, K, Cin]) + bias[Cout]
 * with zero padding pad and the given stride.  bias may be NULL. */
void wm_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int B, int H, int W, int Cin, int Cout, int K, int stride, int pad,
                       float *scratch);

/* Accumulates the gradients of the convolution above.  dinp, dweight and
 * dbias may each be NULL when not wanted. */
void wm_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight,
                        int B, int H, int W, int Cin, int Cout, int K, int stride, int pad,
                        float *scratch);

/* The same convolution for K = 3, stride 1, padding 1 by Winograd's
 * F(4x4, 3x3): 4x fewer multiplications; float error about 1e-6 of the
 * output's scale.  The filters are transformed once into U
 * (wm_winograd_weights, 36 x Cout x Cin floats), so inference reuses
 * them; the backward pass is wm_conv2d_backward's. */
int wm_winograd_supported(int Cin, int Cout);   /* both multiples of 4 */
size_t wm_winograd_weights_floats(int Cin, int Cout);
size_t wm_winograd_scratch_floats(int Cin, int Cout);
void wm_winograd_weights(float *U, const float *weight, int Cin, int Cout);
void wm_conv3x3_winograd_forward(float *out, const float *inp, const float *U, const float *bias,
                                 int B, int H, int W, int Cin, int Cout, float *scratch);

/* The filters of the transposed convolution: wt[Cin][K][K][Cout] holds
 * w[Cout][K][K][Cin] flipped in space. */
void wm_conv2d_flip_weights(float *wt, const float *w, int Cin, int Cout, int K);

/* dinp[B, H, W, Cin] += the input gradient of that 3x3 convolution, by
 * Winograd: Ut = wm_winograd_weights of the flipped filters with Cin and
 * Cout swapped.  (Its weight gradient is wm_conv2d_backward's with
 * dinp NULL.) */
void wm_conv3x3_winograd_backward_input(float *dinp, const float *dout, const float *Ut, int B, int H, int W,
                                        int Cin, int Cout, float *scratch);

/* SiLU: out = x * sigmoid(x), elementwise over n values. */
void wm_silu_forward(float *out, const float *inp, size_t n);
void wm_silu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* ReLU. */
void wm_relu_forward(float *out, const float *inp, size_t n);
void wm_relu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* Sigmoid and tanh (the gates of a recurrent cell).  Their backward
 * takes the forward OUTPUT, which is what the derivative needs. */
void wm_sigmoid_forward(float *out, const float *inp, size_t n);
void wm_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
void wm_tanh_forward(float *out, const float *inp, size_t n);
void wm_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);

/* Residual sum out = a + b; backward adds dout to da and db. */
void wm_add_forward(float *out, const float *a, const float *b, size_t n);
void wm_add_backward(float *da, float *db, const float *dout, size_t n);

/* Space-to-depth by factor r (PyTorch's pixel_unshuffle, in NHWC):
 * out[B, H/r, W/r, C*r*r] with channel c*r*r + i*r + j holding
 * inp[b, y*r + i, x*r + j, c].  H and W must be multiples of r. */
void wm_space_to_depth_forward(float *out, const float *inp, int B, int H, int W, int C, int r);
void wm_space_to_depth_backward(float *dinp, const float *dout, int B, int H, int W, int C, int r);

/* Depth-to-space (pixel_shuffle), the inverse: inp[B, H, W, C*r*r] ->
 * out[B, H*r, W*r, C]. */
void wm_depth_to_space_forward(float *out, const float *inp, int B, int H, int W, int C, int r);
void wm_depth_to_space_backward(float *dinp, const float *dout, int B, int H, int W, int C, int r);

/* Mean squared error over n values, and its gradient scaled by scale
 * (dpred += scale * 2 (pred - target) / n). */
double wm_mse_forward(const float *pred, const float *target, size_t n);
void wm_mse_backward(float *dpred, const float *pred, const float *target, size_t n, float scale);

/* Eigen-decomposition of the symmetric n x n matrix a (row-major, double;
 * destroyed) by cyclic Jacobi rotations: eigenvalues in descending order
 * into evals[n], the matching unit eigenvectors as the ROWS of evecs[n*n].
 * For the small matrices of PCA initialisation (n = 48).  Returns 0, or
 * -1 when out of memory. */
int wm_symmetric_eigen(double *a, int n, double *evals, double *evecs);

#endif
