/* wm_convgru: the layers of the latent dynamics model (wm_dynamics.h) as
 * plain forward/backward functions over flat NHWC float arrays, in
 * wm_nn's conventions: forward overwrites its output, backward
 * ACCUMULATES (+=) into every gradient it is given (NULL: not wanted),
 * scratch space is passed in, nothing allocates, fails or prints.
 *
 * The recurrent cell is a convolutional GRU in the form cuDNN and
 * PyTorch's nn.GRU use (the reset gate scales the recurrent term after
 * its convolution, so each step is two independent convolutions and one
 * elementwise pass):
 *   gx = conv(x; Wx, bx)          [.., 3Ch]  channel blocks r | z | n
 *   gh = conv(h; Wh, bh)          [.., 3Ch]
 *   r = sigmoid(gx_r + gh_r)      z = sigmoid(gx_z + gh_z)
 *   n = tanh(gx_n + r * gh_n)     h' = (1 - z) * n + z * h
 * The convolutions are 3x3 with "same" zero padding and a dilation d,
 * computed as an ordinary 3x3 convolution on the d*d interleaved
 * sub-grids (space-to-batch), so dilation needs no new GEMM; the
 * Winograd forward reads and writes the sub-grids in place. */
#ifndef WM_CONVGRU_H
#define WM_CONVGRU_H

#include <stddef.h>

/* ---- space-to-batch: the d*d interleaved sub-grids of a grid ----
 * out[B*d*d, Hs, Ws, C] with Hs = ceil(H/d), Ws = ceil(W/d): batch
 * b*d*d + i*d + j holds inp[b, ys*d + i, xs*d + j, :], zero where that
 * falls outside the grid.  batch_to_space is its inverse on the grid
 * (and, with accumulate, its adjoint: the padding is dropped). */
int wm_s2b_size(int n, int d);
void wm_space_to_batch(float *out, const float *inp, int B, int H, int W, int C, int d);
void wm_batch_to_space(float *out, const float *inp, int B, int H, int W, int C, int d, int accumulate);

/* ---- 3x3 convolution, stride 1, "same" padding, dilation d >= 1 ----
 * out[B, H, W, Cout] = conv(inp[B, H, W, Cin], weight[Cout, 3, 3, Cin]) + bias. */
size_t wm_dconv3x3_scratch_floats(int B, int H, int W, int Cin, int Cout, int d);
void wm_dconv3x3_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int H, int W,
                         int Cin, int Cout, int d, float *scratch);
void wm_dconv3x3_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int B, int H, int W, int Cin, int Cout, int d, float *scratch);
/* The same forward by Winograd F(4x4,3x3) (inference), Cin and Cout
 * multiples of 4.  U holds the transformed filters in the layout this
 * forward wants (wm_dconv3x3_winograd_weights; scratch for it:
 * wm_dconv3x3_winograd_weights_floats floats). */
size_t wm_dconv3x3_winograd_weights_floats(int Cin, int Cout);
void wm_dconv3x3_winograd_weights(float *U, const float *weight, int Cin, int Cout, float *scratch);
size_t wm_dconv3x3_winograd_scratch_floats(int B, int H, int W, int Cin, int Cout, int d);
void wm_dconv3x3_winograd_forward(float *out, const float *inp, const float *U, const float *bias, int B, int H,
                                  int W, int Cin, int Cout, int d, float *scratch);

/* dinp[B, H, W, Cin] += the input gradient of that convolution by
 * Winograd, with Ut the transformed flipped filters
 * (wm_dconv3x3_winograd_flip_weights: wm_dconv3x3_winograd_weights_floats
 * (Cout, Cin) floats; scratch for it: ..._flip_scratch_floats).  The
 * weight gradient stays wm_dconv3x3_backward's (dinp NULL). */
size_t wm_dconv3x3_winograd_flip_scratch_floats(int Cin, int Cout);
void wm_dconv3x3_winograd_flip_weights(float *Ut, const float *weight, int Cin, int Cout, float *scratch);
size_t wm_dconv3x3_winograd_backward_input_scratch_floats(int B, int H, int W, int Cin, int Cout, int d);
void wm_dconv3x3_winograd_backward_input(float *dinp, const float *dout, const float *Ut, int B, int H, int W,
                                         int Cin, int Cout, int d, float *scratch);

/* ---- GRU gates over `cells` grid cells of Ch channels ----
 * gx, gh: [cells, 3Ch] (biases included); h, hout: [cells, Ch];
 * act: [cells, 3Ch] receives r | z | n, what the backward pass needs
 * (NULL: not kept, for inference).  hout may be h (an update in place). */
void wm_gru_gates_forward(float *hout, float *act, const float *gx, const float *gh, const float *h, size_t cells,
                          int Ch);
/* Accumulates dgx, dgh ([cells, 3Ch]) and dh ([cells, Ch], the direct
 * path z * dhout) from dhout.  Any of them may be NULL. */
void wm_gru_gates_backward(float *dgx, float *dgh, float *dh, const float *dhout, const float *act, const float *gh,
                           const float *h, size_t cells, int Ch);

/* ---- Gaussian head ----
 * y[cells, 2C] from the output convolution -> the predicted mean
 * mean = x + y[:, :C] (a residual on the input x[cells, C]) and log
 * variance logvar = lv_min + softplus(y[:, C:] - lv_min), which stays
 * above lv_min smoothly so the likelihood cannot run away on a cell
 * that is predicted exactly. */
void wm_gauss_head_forward(float *mean, float *logvar, const float *y, const float *x, size_t cells, int C,
                           float lv_min);
/* Inference straight to latent units: with xn the normalised input and
 * (norm_mean, norm_std) the normalisation, mean = (xn + y[:, :C]) * std +
 * mean and var = exp(logvar) * std^2 (var may be NULL). */
void wm_gauss_head_infer(float *mean, float *var, const float *y, const float *xn, size_t cells, int C, float lv_min,
                         const float *norm_mean, const float *norm_std);
/* Accumulates dy [cells, 2C] (and dx [cells, C] when not NULL). */
void wm_gauss_head_backward(float *dy, float *dx, const float *dmean, const float *dlogvar, const float *y,
                            size_t cells, int C, float lv_min);

/* Gaussian negative log-likelihood summed over n values:
 * sum 0.5 (logvar + (t - mean)^2 exp(-logvar) + log 2 pi).  *sq_err, when
 * not NULL, receives sum (t - mean)^2. */
double wm_gauss_nll_forward(const float *mean, const float *logvar, const float *target, size_t n, double *sq_err);
/* Accumulates scale * the gradient of the beta-NLL (Seitzer et al.,
 * ICLR 2022): each value's NLL weighted by exp(beta * logvar) held
 * constant, so a large predicted variance does not make the mean stop
 * learning.  beta = 0 is the plain NLL; the optimum variance is the
 * expected squared error for any beta. */
void wm_gauss_nll_backward(float *dmean, float *dlogvar, const float *mean, const float *logvar,
                           const float *target, size_t n, float scale, float beta);

#endif
