#include "CSynapse.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// One copy of each kernel per instruction set, picked by the dynamic loader (GNU ifunc).
#if defined(__x86_64__) && defined(__linux__)
#define SN_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define SN_CLONES
#endif

// y += a·x over n contiguous floats: the scatter form's inner loop.
static inline __attribute__((always_inline)) void axpy(int64_t n, float a, const float *restrict x, float *restrict y) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

// The output coordinate whose tap k reads input coordinate i (i = o·stride − pad + k), or −1 when
// no output does: what the scatter forms and the weight gradients ask for every input event.
static inline __attribute__((always_inline)) int64_t tap_output(int64_t i, int64_t k, int64_t pad, int64_t stride,
                                                                int64_t size) {
    const int64_t n = i + pad - k;
    if (n < 0 || n % stride != 0 || n / stride >= size) return -1;
    return n / stride;
}

// Gather form: 64 outputs held in four 16-float vectors (registers with AVX-512) while every
// event reaching them adds its weight row, then stored once. The scatter form loads and stores
// its output row for every event, which made it load/store bound (measured: ~18 GFLOP/s a core).
typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define BLOCK 64
// Largest input plane (H·W) of the kernels that keep one plane's state on the stack.
#define PLANE_MAX 4096

// Macros, not functions: a function returning a 64-byte vector has a different ABI per target.
#define load16(p) (*(const v16 *)(p))
#define store16(p, v) (*(v16 *)(p) = (v))

// acc[0..3] += v · w[0..63]
#define ADD_ROW(acc, v, w)                                                         \
    do {                                                                           \
        const float *w_ = (w);                                                     \
        const float v_ = (v);                                                      \
        acc##0 += v_ * load16(w_); acc##1 += v_ * load16(w_ + 16);                 \
        acc##2 += v_ * load16(w_ + 32); acc##3 += v_ * load16(w_ + 48);            \
    } while (0)

// Gather form of the linear kernel (out % 64 == 0): the frame's events are listed once, then each
// block of 64 outputs sums the rows they select.
static inline __attribute__((always_inline)) void linear_gather_frame(const float *x, int64_t frames, int64_t f, int64_t groups, int64_t per,
                                       const float *wt, const float *bias, int64_t out, float *row,
                                       int32_t *idx, float *val) {
    int64_t n = 0;
    for (int64_t g = 0; g < groups; g++) {
        const float *xs = x + (g * frames + f) * per;
        // Branch-free compaction: at spike rates of a few percent a branch per value mispredicts
        // often enough to cost more than the additions it guards.
        for (int64_t p = 0; p < per; p++) {
            idx[n] = (int32_t)(g * per + p);
            val[n] = xs[p];
            n += xs[p] != 0.0f;
        }
    }
    for (int64_t ob = 0; ob < out; ob += BLOCK) {
        v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        if (bias) { a0 = load16(bias + ob); a1 = load16(bias + ob + 16); a2 = load16(bias + ob + 32); a3 = load16(bias + ob + 48); }
        for (int64_t e = 0; e < n; e++) ADD_ROW(a, val[e], wt + (int64_t)idx[e] * out + ob);
        store16(row + ob, a0); store16(row + ob + 16, a1); store16(row + ob + 32, a2); store16(row + ob + 48, a3);
    }
}

SN_CLONES
void sn_event_linear(const float *x, int64_t frames, int64_t first, int64_t count, int64_t groups, int64_t per,
                     const float *wt, const float *bias, int64_t out, float *y) {
    if (out % BLOCK == 0) {
        int32_t *idx = malloc((size_t)(groups * per) * sizeof(int32_t));
        float *val = malloc((size_t)(groups * per) * sizeof(float));
        if (idx && val) {
            for (int64_t f = first; f < first + count; f++)
                linear_gather_frame(x, frames, f, groups, per, wt, bias, out, y + f * out, idx, val);
            free(idx); free(val);
            return;
        }
        free(idx); free(val);
    }
    for (int64_t f = first; f < first + count; f++) {
        float *restrict row = y + f * out;
        if (bias) memcpy(row, bias, (size_t)out * sizeof(float));
        else memset(row, 0, (size_t)out * sizeof(float));
        for (int64_t g = 0; g < groups; g++) {
            const float *xs = x + (g * frames + f) * per;
            const float *wg = wt + g * per * out;
            for (int64_t p = 0; p < per; p++) {
                float v = xs[p];
                if (v != 0.0f) axpy(out, v, wg + p * out, row);
            }
        }
    }
}

// Gather form of the convolution kernel (out_c % 64 == 0). The frame's events are first grouped by
// input pixel (channel, value), so each output pixel visits its kh·kw input pixels and adds the
// tap's weight row for each event there.
static inline __attribute__((always_inline)) void conv_gather_frame(const float *x, int64_t frames, int64_t f, int64_t in_c, int64_t h, int64_t w,
                                     const float *wt, const float *bias, int64_t out_c, int64_t kh, int64_t kw,
                                     int64_t stride, int64_t pad, int64_t oh, int64_t ow, float *scratch,
                                     int32_t *count, int32_t *chan, float *val) {
    const int64_t in_plane = h * w;
    memset(count, 0, (size_t)in_plane * sizeof(int32_t));
    for (int64_t c = 0; c < in_c; c++) {
        const float *xs = x + (c * frames + f) * in_plane;
        for (int64_t p = 0; p < in_plane; p++) {  // branch-free, as in linear_gather_frame
            const int64_t k = p * in_c + count[p];
            chan[k] = (int32_t)c;
            val[k] = xs[p];
            count[p] += xs[p] != 0.0f;
        }
    }
    for (int64_t oy = 0; oy < oh; oy++) {
        for (int64_t ox = 0; ox < ow; ox++) {
            float *dst = scratch + (oy * ow + ox) * out_c;
            for (int64_t ob = 0; ob < out_c; ob += BLOCK) {
                v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                if (bias) { a0 = load16(bias + ob); a1 = load16(bias + ob + 16); a2 = load16(bias + ob + 32); a3 = load16(bias + ob + 48); }
                for (int64_t ky = 0; ky < kh; ky++) {
                    const int64_t iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    for (int64_t kx = 0; kx < kw; kx++) {
                        const int64_t ix = ox * stride - pad + kx;
                        if (ix < 0 || ix >= w) continue;
                        const int64_t p = iy * w + ix;
                        const int32_t n = count[p];
                        const int32_t *cs = chan + p * in_c;
                        const float *vs = val + p * in_c;
                        const float *tap = wt + (ky * kw + kx) * out_c + ob;
                        for (int32_t e = 0; e < n; e++) ADD_ROW(a, vs[e], tap + (int64_t)cs[e] * kh * kw * out_c);
                    }
                }
                store16(dst + ob, a0); store16(dst + ob + 16, a1); store16(dst + ob + 32, a2); store16(dst + ob + 48, a3);
            }
        }
    }
}

SN_CLONES
void sn_event_conv2d(const float *x, int64_t frames, int64_t first, int64_t count, int64_t in_c, int64_t h,
                     int64_t w, const float *wt, const float *bias, int64_t out_c, int64_t kh, int64_t kw,
                     int64_t stride, int64_t pad, int64_t oh, int64_t ow, float *y, float *scratch) {
    const int64_t plane = oh * ow, in_plane = h * w;
    int32_t *counts = NULL, *chan = NULL;
    float *val = NULL;
    const int gather = out_c % BLOCK == 0 &&
        (counts = malloc((size_t)in_plane * sizeof(int32_t))) != NULL &&
        (chan = malloc((size_t)(in_plane * in_c) * sizeof(int32_t))) != NULL &&
        (val = malloc((size_t)(in_plane * in_c) * sizeof(float))) != NULL;
    for (int64_t f = first; f < first + count; f++) {
        if (gather) {
            conv_gather_frame(x, frames, f, in_c, h, w, wt, bias, out_c, kh, kw, stride, pad, oh, ow, scratch, counts, chan, val);
        } else {
        if (bias) {
            for (int64_t p = 0; p < plane; p++) memcpy(scratch + p * out_c, bias, (size_t)out_c * sizeof(float));
        } else {
            memset(scratch, 0, (size_t)(plane * out_c) * sizeof(float));
        }
        for (int64_t c = 0; c < in_c; c++) {
            const float *xs = x + (c * frames + f) * in_plane;
            for (int64_t iy = 0; iy < h; iy++) {
                for (int64_t ix = 0; ix < w; ix++) {
                    const float v = xs[iy * w + ix];
                    if (v == 0.0f) continue;
                    for (int64_t ky = 0; ky < kh; ky++) {
                        const int64_t oy = tap_output(iy, ky, pad, stride, oh);
                        if (oy < 0) continue;
                        for (int64_t kx = 0; kx < kw; kx++) {
                            const int64_t ox = tap_output(ix, kx, pad, stride, ow);
                            if (ox < 0) continue;
                            axpy(out_c, v, wt + ((c * kh + ky) * kw + kx) * out_c, scratch + (oy * ow + ox) * out_c);
                        }
                    }
                }
            }
        }
        }
        // Channels-last scratch → the channel-major output the next layer reads.
        for (int64_t o = 0; o < out_c; o++) {
            float *restrict dst = y + (o * frames + f) * plane;
            for (int64_t p = 0; p < plane; p++) dst[p] = scratch[p * out_c + o];
        }
    }
    free(counts); free(chan); free(val);
}

SN_CLONES
int64_t sn_count_nonzero(const float *x, int64_t n) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) count += x[i] != 0.0f;
    return count;
}

// Neurons are walked in tiles small enough that their membrane potentials and spike counts stay in
// L1 while the tile's T current blocks stream through once.
#define TILE 512
static const float no_spikes[TILE];

// The integrate-and-fire neuron (Rathi et al. 2020, eq. 3, reset by subtraction), the one place it is
// written: u_t = leak·u_{t−1} + I_t − θ·o_{t−1}; o_t = [u_t > θ]. Every kernel, for inference and for
// training, steps its neurons through this function; `u` holds the membrane potential between steps.
static inline __attribute__((always_inline)) float if_neuron(float *restrict u, float current, float previous_spike,
                                                           float theta, float leak) {
#pragma clang fp contract(off)
    const float v = leak * *u + current - theta * previous_spike;
    *u = v;
    return v > theta ? 1.0f : 0.0f;
}

// One step of a tile, in place (`cur`: current in, spikes out) or from a separate current `in`.
// Restrict parameters (honoured through inlining) let the loop vectorise; `prev` is the previous
// step's spikes (no_spikes before the first step).
#define IF_STEP_BODY(IN, OUT)                                                 \
    for (int64_t j = 0; j < len; j++) {                                       \
        const float o = if_neuron(&u[j], IN[j], prev[j], theta, leak);        \
        OUT[j] = o;                                                           \
        fired[j] += o;                                                        \
    }

static inline __attribute__((always_inline)) void if_step(int64_t len, float *restrict cur, const float *prev,
                                                          float theta, float leak, float *restrict u,
                                                          float *restrict fired) {
    IF_STEP_BODY(cur, cur)
}

static inline __attribute__((always_inline)) void if_step_from(int64_t len, const float *restrict in,
                                                               float *restrict out, const float *prev, float theta,
                                                               float leak, float *restrict u, float *restrict fired) {
    IF_STEP_BODY(in, out)
}

SN_CLONES
void sn_integrate_fire(float *x, const float *current, int64_t groups, int64_t steps, int64_t block, int64_t first,
                       int64_t count, float theta, float leak, float u0, float *state_u, float *state_o,
                       int64_t per_image, int64_t *counts) {
    float u[TILE], fired[TILE], before[TILE];  // before: o_{−1}, the spikes of the step before the first
    int64_t n = first;
    const int64_t end = first + count;
    while (n < end) {
        const int64_t g = n / block, j0 = n % block;
        int64_t len = end - n;
        if (len > block - j0) len = block - j0;
        if (len > TILE) len = TILE;
        // The branch stays outside the loops: vectorised as masked loads, `state_u ? … : u0` would
        // touch the null pointer's pages and cost a fault-suppression assist per vector.
        if (state_u) {
            for (int64_t j = 0; j < len; j++) { u[j] = state_u[n + j]; before[j] = state_o[n + j]; }
        } else {
            for (int64_t j = 0; j < len; j++) { u[j] = u0; before[j] = 0; }
        }
        for (int64_t j = 0; j < len; j++) fired[j] = 0;
        for (int64_t t = 0; t < steps; t++) {
            float *cur = x + (g * steps + t) * block + j0;
            // o_{t−1} is the previous step's block, already overwritten with spikes.
            const float *prev = t == 0 ? before : cur - block;
            if (current) if_step_from(len, current + g * block + j0, cur, prev, theta, leak, u, fired);
            else if_step(len, cur, prev, theta, leak, u, fired);
        }
        if (state_u && steps > 0) {
            const float *last = x + (g * steps + steps - 1) * block + j0;
            for (int64_t j = 0; j < len; j++) { state_u[n + j] = u[j]; state_o[n + j] = last[j]; }
        }
        for (int64_t j = 0; j < len; j++) counts[(j0 + j) / per_image] += (int64_t)fired[j];
        n += len;
    }
}


SN_CLONES
void sn_integrate_fire_pool(const float *x, int constant, int64_t images, int64_t steps, int64_t h, int64_t w,
                            int64_t first, int64_t count, float theta, float leak, float u0, float *state_u,
                            float *state_o, float *pooled, int64_t *counts) {
    const int64_t plane = h * w, ph = h / 2, pw = w / 2, pplane = ph * pw;
    float u[PLANE_MAX], a[PLANE_MAX], b[PLANE_MAX], fired[PLANE_MAX];
    for (int64_t q = first; q < first + count; q++) {
        const int64_t c = q / images, i = q % images;
        float *prev = a, *spikes = b;  // o_{t−1} and o_t, swapped every step
        if (state_u) {  // outside the loop, as in sn_integrate_fire
            for (int64_t j = 0; j < plane; j++) { u[j] = state_u[q * plane + j]; prev[j] = state_o[q * plane + j]; }
        } else {
            for (int64_t j = 0; j < plane; j++) { u[j] = u0; prev[j] = 0; }
        }
        for (int64_t j = 0; j < plane; j++) fired[j] = 0;
        for (int64_t t = 0; t < steps; t++) {
            const float *cur = constant ? x + q * plane : x + ((c * steps + t) * images + i) * plane;
            if_step_from(plane, cur, spikes, prev, theta, leak, u, fired);
            float *out = pooled + ((c * steps + t) * images + i) * pplane;
            for (int64_t py = 0; py < ph; py++) {
                const float *r0 = spikes + 2 * py * w, *r1 = r0 + w;
                for (int64_t px = 0; px < pw; px++)
                    out[py * pw + px] = (r0[2 * px] + r0[2 * px + 1] + r1[2 * px] + r1[2 * px + 1]) * 0.25f;
            }
            float *swap = prev; prev = spikes; spikes = swap;
        }
        if (state_u) {
            for (int64_t j = 0; j < plane; j++) { state_u[q * plane + j] = u[j]; state_o[q * plane + j] = prev[j]; }
        }
        int64_t total = 0;
        for (int64_t j = 0; j < plane; j++) total += (int64_t)fired[j];
        counts[i] += total;
    }
}

SN_CLONES
void sn_event_linear_weight_grad(const float *x, int64_t frames, int64_t in, const float *gy, int64_t out,
                                 int64_t first, int64_t count, float *dwt) {
    memset(dwt + first * out, 0, (size_t)(count * out) * sizeof(float));
    for (int64_t f = 0; f < frames; f++) {
        const float *xs = x + f * in;
        const float *g = gy + f * out;
        for (int64_t i = first; i < first + count; i++) {
            const float v = xs[i];
            if (v != 0.0f) axpy(out, v, g, dwt + i * out);
        }
    }
}

// Gather form (out_c % 64 == 0): per frame and input channel, the events are listed once; each tap's
// 64-wide block of dW is then summed in registers over those events and added to dW once.
static inline __attribute__((always_inline)) void conv_weight_grad_gather(
    const float *x, int64_t frames, int64_t h, int64_t w, const float *gy_last, int64_t out_c, int64_t kh,
    int64_t kw, int64_t stride, int64_t pad, int64_t oh, int64_t ow, int64_t first_c, int64_t count_c, float *dwt) {
    const int64_t in_plane = h * w, plane = oh * ow;
    int32_t iys[PLANE_MAX], ixs[PLANE_MAX];
    float vals[PLANE_MAX];
    for (int64_t f = 0; f < frames; f++) {
        const float *g = gy_last + f * plane * out_c;
        for (int64_t c = first_c; c < first_c + count_c; c++) {
            const float *xs = x + (c * frames + f) * in_plane;
            int64_t n = 0;
            for (int64_t p = 0; p < in_plane; p++) {  // branch-free compaction
                iys[n] = (int32_t)(p / w); ixs[n] = (int32_t)(p % w); vals[n] = xs[p];
                n += xs[p] != 0.0f;
            }
            if (n == 0) continue;
            for (int64_t ky = 0; ky < kh; ky++) {
                for (int64_t kx = 0; kx < kw; kx++) {
                    float *row = dwt + ((c * kh + ky) * kw + kx) * out_c;
                    for (int64_t ob = 0; ob < out_c; ob += BLOCK) {
                        v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                        for (int64_t e = 0; e < n; e++) {
                            const int64_t oy = tap_output(iys[e], ky, pad, stride, oh);
                            const int64_t ox = tap_output(ixs[e], kx, pad, stride, ow);
                            if (oy < 0 || ox < 0) continue;
                            ADD_ROW(a, vals[e], g + (oy * ow + ox) * out_c + ob);
                        }
                        store16(row + ob, load16(row + ob) + a0); store16(row + ob + 16, load16(row + ob + 16) + a1);
                        store16(row + ob + 32, load16(row + ob + 32) + a2); store16(row + ob + 48, load16(row + ob + 48) + a3);
                    }
                }
            }
        }
    }
}

SN_CLONES
void sn_event_conv2d_weight_grad(const float *x, int64_t frames, int64_t in_c, int64_t h, int64_t w,
                                 const float *gy_last, int64_t out_c, int64_t kh, int64_t kw, int64_t stride,
                                 int64_t pad, int64_t oh, int64_t ow, int64_t first_c, int64_t count_c, float *dwt) {
    const int64_t in_plane = h * w, plane = oh * ow;
    memset(dwt + first_c * kh * kw * out_c, 0, (size_t)(count_c * kh * kw * out_c) * sizeof(float));
    if (out_c % BLOCK == 0 && in_plane <= PLANE_MAX) {
        conv_weight_grad_gather(x, frames, h, w, gy_last, out_c, kh, kw, stride, pad, oh, ow, first_c, count_c, dwt);
        return;
    }
    for (int64_t f = 0; f < frames; f++) {
        const float *g = gy_last + f * plane * out_c;
        for (int64_t c = first_c; c < first_c + count_c; c++) {
            const float *xs = x + (c * frames + f) * in_plane;
            float *rows = dwt + c * kh * kw * out_c;
            for (int64_t iy = 0; iy < h; iy++) {
                for (int64_t ix = 0; ix < w; ix++) {
                    const float v = xs[iy * w + ix];
                    if (v == 0.0f) continue;
                    for (int64_t ky = 0; ky < kh; ky++) {
                        const int64_t oy = tap_output(iy, ky, pad, stride, oh);
                        if (oy < 0) continue;
                        for (int64_t kx = 0; kx < kw; kx++) {
                            const int64_t ox = tap_output(ix, kx, pad, stride, ow);
                            if (ox < 0) continue;
                            axpy(out_c, v, g + (oy * ow + ox) * out_c, rows + (ky * kw + kx) * out_c);
                        }
                    }
                }
            }
        }
    }
}

SN_CLONES
void sn_channels_last(const float *src, int64_t channels, int64_t frames, int64_t plane, int64_t first,
                      int64_t count, float *dst) {
    for (int64_t f = first; f < first + count; f++) {
        float *d = dst + f * plane * channels;
        for (int64_t c = 0; c < channels; c++) {
            const float *s = src + (c * frames + f) * plane;
            for (int64_t p = 0; p < plane; p++) d[p * channels + c] = s[p];
        }
    }
}

// One step with the tabulated STDB surrogate; restrict parameters (through inlining) let the loop
// vectorise, the table read becoming a gather.
static inline __attribute__((always_inline)) void stdb_record_step(
    int64_t len, int32_t now, const float *restrict in, float *restrict f, float *restrict s,
    const float *restrict table, float theta, float leak, float *restrict u, float *restrict prev,
    int32_t *restrict last) {
    for (int64_t j = 0; j < len; j++) {
        const float o = if_neuron(&u[j], in[j], prev[j], theta, leak);
        s[j] = table[now - last[j]];  // Δt from the last spike strictly before this step
        last[j] = o > 0 ? now : last[j];
        prev[j] = o;
        f[j] = o;
    }
}

SN_CLONES
void sn_integrate_fire_record(const float *x, int constant, float *spikes, int64_t groups, int64_t steps,
                              int64_t block, int64_t first, int64_t count, float theta, float leak, float u0,
                              const float *table, int32_t silent_age, float alpha, float *surrogate, float *membrane) {
#pragma clang fp contract(off)
    float u[TILE], prev[TILE];  // membrane potential, o_{t−1}
    int32_t last[TILE];
    int64_t n = first;
    const int64_t end = first + count;
    while (n < end) {
        const int64_t g = n / block, j0 = n % block;
        int64_t len = end - n;
        if (len > block - j0) len = block - j0;
        if (len > TILE) len = TILE;
        for (int64_t j = 0; j < len; j++) { u[j] = u0; prev[j] = 0; last[j] = -silent_age; }
        for (int64_t t = 0; t < steps; t++) {
            const int64_t off = (g * steps + t) * block + j0;
            const float *restrict in = constant ? x + g * block + j0 : x + off;
            float *restrict f = spikes + off;
            float *restrict s = surrogate + off;
            if (membrane) memcpy(membrane + off, u, (size_t)len * sizeof(float));
            if (table) {
                stdb_record_step(len, (int32_t)t, in, f, s, table, theta, leak, u, prev, last);
            } else {
                for (int64_t j = 0; j < len; j++) {
                    const float o = if_neuron(&u[j], in[j], prev[j], theta, leak);
                    const float d = 1.0f - fabsf(u[j] / theta - 1.0f);
                    s[j] = alpha * (d > 0 ? d : 0.0f);
                    prev[j] = o;
                    f[j] = o;
                }
            }
        }
        n += len;
    }
}

// One backward step that only accumulates g_u over steps (the current was the same every step).
static inline __attribute__((always_inline)) void bptt_sum_step(int64_t len, const float *restrict go,
                                                               const float *restrict sp, float leak,
                                                               float *restrict gu, float *restrict sum) {
#pragma clang fp contract(off)
    for (int64_t j = 0; j < len; j++) {
        const float v = go[j] * sp[j] + leak * gu[j];
        gu[j] = v;
        sum[j] += v;
    }
}

SN_CLONES
void sn_backward_through_time(float *g, const float *surrogate, const float *spikes, const float *membrane,
                              int64_t groups, int64_t steps, int64_t block, int64_t first, int64_t count, float leak,
                              double *d_theta, double *d_leak, float *step_sum) {
#pragma clang fp contract(off)
    float gu[TILE];
    double dt = 0, dl = 0;
    int64_t n = first;
    const int64_t end = first + count;
    while (n < end) {
        const int64_t grp = n / block, j0 = n % block;
        int64_t len = end - n;
        if (len > block - j0) len = block - j0;
        if (len > TILE) len = TILE;
        for (int64_t j = 0; j < len; j++) gu[j] = 0;
        if (step_sum) {
            float *restrict sum = step_sum + grp * block + j0;
            for (int64_t j = 0; j < len; j++) sum[j] = 0;
            for (int64_t t = steps - 1; t >= 0; t--) {
                const int64_t off = (grp * steps + t) * block + j0;
                bptt_sum_step(len, g + off, surrogate + off, leak, gu, sum);
            }
            n += len;
            continue;
        }
        for (int64_t t = steps - 1; t >= 0; t--) {
            const int64_t off = (grp * steps + t) * block + j0;
            float *restrict go = g + off;
            const float *restrict sp = surrogate + off;
            if (spikes || membrane) {
                // Trainable threshold or leak: the sums in order, in double. The pointers are chosen
                // before the loop (a null or out-of-range address under a vector mask costs a
                // fault-suppression assist per vector).
                const float *prevs = spikes && t > 0 ? spikes + off - block : no_spikes;
                const float *mem = membrane ? membrane + off : no_spikes;
                const int want_theta = spikes != NULL, want_leak = membrane != NULL;
                for (int64_t j = 0; j < len; j++) {
                    const float up = go[j];
                    const float v = up * sp[j] + leak * gu[j];
                    if (want_theta) dt -= (double)(up * sp[j] + v * prevs[j]);
                    if (want_leak) dl += (double)(v * mem[j]);
                    gu[j] = v;
                    go[j] = v;
                }
            } else {
                for (int64_t j = 0; j < len; j++) {
                    const float v = go[j] * sp[j] + leak * gu[j];
                    gu[j] = v;
                    go[j] = v;
                }
            }
        }
        n += len;
    }
    if (d_theta) *d_theta += dt;
    if (d_leak) *d_leak += dl;
}

SN_CLONES
void sn_fold_images(const float *columns, int64_t images, int64_t image_stride, int64_t channel_stride, int64_t h,
                    int64_t w, int64_t kh, int64_t kw, int64_t stride, int64_t pad, int64_t oh, int64_t ow,
                    int64_t first_c, int64_t count_c, float *dst) {
    const int64_t plane = oh * ow, row_length = images * plane;
    for (int64_t c = first_c; c < first_c + count_c; c++) {
        for (int64_t ky = 0; ky < kh; ky++) {
            for (int64_t kx = 0; kx < kw; kx++) {
                const float *src = columns + ((c * kh + ky) * kw + kx) * row_length;
                // Output columns ox whose input column ix = ox·stride − pad + kx lies inside the image.
                int64_t lo = 0, hi = ow;
                while (lo < ow && lo * stride - pad + kx < 0) lo++;
                while (hi > lo && (hi - 1) * stride - pad + kx >= w) hi--;
                for (int64_t i = 0; i < images; i++) {
                    float *img = dst + i * image_stride + c * channel_stride;
                    const float *s = src + i * plane;
                    for (int64_t oy = 0; oy < oh; oy++) {
                        const int64_t iy = oy * stride - pad + ky;
                        if (iy < 0 || iy >= h) continue;
                        float *restrict d = img + iy * w + (lo * stride - pad + kx);
                        const float *restrict r = s + oy * ow + lo;
                        if (stride == 1) {
                            for (int64_t k = 0; k < hi - lo; k++) d[k] += r[k];
                        } else {
                            for (int64_t k = 0; k < hi - lo; k++) d[k * stride] += r[k];
                        }
                    }
                }
            }
        }
    }
}
