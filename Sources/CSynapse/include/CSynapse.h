// Event-driven synaptic kernels for the SNN engine: a layer whose input is mostly zero (spikes, or
// average-pooled spikes) adds, for every non-zero input value, the weights that input reaches,
// instead of multiplying every zero as a GEMM does. Written in C so that the inner loop (one
// contiguous weight row added into one output row) is compiled once per instruction set
// (AVX-512, AVX2, baseline) and chosen when the library loads.
#ifndef CSYNAPSE_H
#define CSYNAPSE_H

#include <stdint.h>

/// Event-driven linear layer over frames `first ..< first+count`.
///
/// - `x`: input element (frame f, feature g·per + p) at `x[(g·frames + f)·per + p]`: channel-major
///   feature maps (`groups` = C, `per` = H·W) or flat frame-major features (`groups` = 1, `per` = N).
/// - `wt`: transposed weights `[groups·per, out]` (row i is input feature i's fan-out).
/// - `bias`: `[out]` or NULL.
/// - `y`: output `[frames, out]`, frame-major; rows of the range are overwritten.
void sn_event_linear(const float *x, int64_t frames, int64_t first, int64_t count, int64_t groups, int64_t per,
                     const float *wt, const float *bias, int64_t out, float *y);

/// Event-driven 2-D convolution (cross-correlation, zero padding) over frames `first ..< first+count`.
///
/// - `x`: input `[in_c, frames, h, w]` (channel-major frames).
/// - `wt`: transposed weights `[in_c·kh·kw, out_c]` (row (c, ky, kx) is one tap's output-channel vector).
/// - `bias`: `[out_c]` or NULL.
/// - `y`: output `[out_c, frames, oh, ow]`; the range's frames are overwritten.
/// - `scratch`: `oh·ow·out_c` floats owned by the caller (one frame's output, channels last).
void sn_event_conv2d(const float *x, int64_t frames, int64_t first, int64_t count, int64_t in_c, int64_t h,
                     int64_t w, const float *wt, const float *bias, int64_t out_c, int64_t kh, int64_t kw,
                     int64_t stride, int64_t pad, int64_t oh, int64_t ow, float *y, float *scratch);

/// Integrate-and-fire over all steps for neurons `first ..< first+count` of `groups` blocks of
/// `block` neurons: u_t = leak·u_{t−1} + I_t − θ·o_{t−1}, o_t = [u_t > θ], from u_{−1} = `u0` and
/// o_{−1} = 0 — or, when `state_u` is not NULL, from the membrane `state_u[n]` and last spike
/// `state_o[n]` of neuron n = g·block + j, where the final ones are written back (a run continued
/// over several calls, as adaptive time steps do).
///
/// - `x`: the current I of neuron j of group g at step t is `x[(g·steps + t)·block + j]`; it is
///   replaced by the spike o (0 or 1).
/// - `current`: NULL, or a current that is the same at every step, `current[g·block + j]` (direct
///   input's first layer); then `x` is only written.
/// - `counts`: spikes are added to `counts[j / per_image]` (one total per image of a block).
/// Evaluated without fused multiply-add, so it rounds like the Swift recurrence of STDB.
void sn_integrate_fire(float *x, const float *current, int64_t groups, int64_t steps, int64_t block, int64_t first,
                       int64_t count, float theta, float leak, float u0, float *state_u, float *state_o,
                       int64_t per_image, int64_t *counts);

/// Integrate-and-fire followed by 2×2 average pooling (stride 2), fused: the spikes of each image
/// plane stay in cache and only the pooled map is written, a quarter of the memory traffic of
/// firing and pooling in two passes. Same recurrence and rounding as `sn_integrate_fire`.
///
/// - `x`: current of channel c, frame f = t·images + i, pixel p at `x[(c·steps·images + f)·h·w + p]`,
///   or, when `constant` is set, at `x[(c·images + i)·h·w + p]` for every step. Read only.
/// - `pooled`: `[channels, steps·images, h/2, w/2]`, written for planes `first ..< first+count`
///   (plane = c·images + i); `h` and `w` are even and `h·w` ≤ 4096.
/// - `counts`: spikes added per image.
/// - `u0`, `state_u`, `state_o`: as for `sn_integrate_fire`, with neuron n = plane·h·w + p.
void sn_integrate_fire_pool(const float *x, int constant, int64_t images, int64_t steps, int64_t h, int64_t w,
                            int64_t first, int64_t count, float theta, float leak, float u0, float *state_u,
                            float *state_o, float *pooled, int64_t *counts);

/// Event-driven weight gradient of a linear layer, dW = dYᵀ·X, for input features
/// `first ..< first+count`: for every non-zero input x[f, i], row i of `dwt` gains x[f, i]·dY[f, :].
///
/// - `x`: `[frames, in]` (frame-major); `gy`: `[frames, out]`.
/// - `dwt`: the transposed gradient `[in, out]`; rows of the range are overwritten.
void sn_event_linear_weight_grad(const float *x, int64_t frames, int64_t in, const float *gy, int64_t out,
                                 int64_t first, int64_t count, float *dwt);

/// Event-driven weight gradient of a convolution for input channels `first_c ..< first_c+count_c`:
/// every non-zero input x[c, f, iy, ix] adds x·dY[f, oy, ox, :] to the row (c, ky, kx) of `dwt` for
/// each output pixel (oy, ox) whose tap (ky, kx) reads it.
///
/// - `x`: `[in_c, frames, h, w]`; `gy_last`: the output gradient channels last, `[frames, oh·ow, out_c]`.
/// - `dwt`: the transposed gradient `[in_c·kh·kw, out_c]`; the range's rows are overwritten.
void sn_event_conv2d_weight_grad(const float *x, int64_t frames, int64_t in_c, int64_t h, int64_t w,
                                 const float *gy_last, int64_t out_c, int64_t kh, int64_t kw, int64_t stride,
                                 int64_t pad, int64_t oh, int64_t ow, int64_t first_c, int64_t count_c, float *dwt);

/// `[channels, frames, plane]` → `[frames, plane, channels]` for frames `first ..< first+count`.
void sn_channels_last(const float *src, int64_t channels, int64_t frames, int64_t plane, int64_t first,
                      int64_t count, float *dst);

/// `sn_integrate_fire` for training, out of place: the current is read from `x` (every step, or
/// with `constant` one step `x[g·block + j]` for all), the spikes written to `spikes`, and the
/// surrogate derivative σ'_t of every neuron and step into `surrogate` (both laid out as
/// `sn_integrate_fire`'s `x`); when `membrane` is not NULL, also the potential before each step.
/// Membranes start at `u0`.
///
/// - `table` not NULL: the STDB surrogate α·exp(−β·Δt), tabulated by Δt = steps since the neuron's
///   last spike before this step (`table_len` = steps + silent_age + 1 entries; a neuron that has
///   not spiked counts from step −silent_age).
/// - `table` NULL: the piecewise-linear surrogate α·max(0, 1 − |u/θ − 1|).
void sn_integrate_fire_record(const float *x, int constant, float *spikes, int64_t groups, int64_t steps,
                              int64_t block, int64_t first, int64_t count, float theta, float leak, float u0,
                              const float *table, int32_t silent_age, float alpha, float *surrogate, float *membrane);

/// The spiking layer's backward pass through time for neurons `first ..< first+count`, in place:
/// g_u[t] = g_o[t]·σ'_t + leak·g_u[t+1] replaces g_o[t] in `g` (same layout as the forward `x`).
/// With `spikes` (o_t) and `membrane` (u before step t) not NULL, also accumulates into
/// `d_theta` −Σ(g_o[t]·σ'_t + g_u[t]·o_{t−1}) and into `d_leak` Σ g_u[t]·u_{t−1}, in double.
/// With `step_sum` not NULL (and no threshold or leak sums), `g` is left as it is and Σ_t g_u[t]
/// is written to `step_sum[g·block + j]` instead: the gradient of a current that is the same at
/// every step (direct input's first layer).
void sn_backward_through_time(float *g, const float *surrogate, const float *spikes, const float *membrane,
                              int64_t groups, int64_t steps, int64_t block, int64_t first, int64_t count, float leak,
                              double *d_theta, double *d_leak, float *step_sum);

/// col2im for channels `first_c ..< first_c+count_c`: adds the columns of `images` images back onto
/// their pixels (image i, channel c at `dst + i·image_stride + c·channel_stride`, h×w). `columns` is
/// `[c·kh·kw, images·oh·ow]`, row (c, ky, kx) holding tap (ky, kx) of every output pixel.
void sn_fold_images(const float *columns, int64_t images, int64_t image_stride, int64_t channel_stride, int64_t h,
                    int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t oh, int64_t ow,
                    int64_t first_c, int64_t count_c, float *dst);

/// Number of non-zero values among `n` floats (the event count that chooses a layer's path).
int64_t sn_count_nonzero(const float *x, int64_t n);

#endif
