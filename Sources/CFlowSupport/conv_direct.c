// Direct 3×3 convolutions (stride 1, zero padding 1) in Float32 with AVX2 + FMA: the Float path of Swift's
// Convolution3x3 (see CFlowSupport.h). No im2col and no packing of activations: the input is copied once into a
// zero-bordered ("padded") layout, after which the 9 taps of a 3×3 kernel at output position q are the inputs at
// q + off_k, off_k = (ky − 1)·(W + 2) + (kx − 1), and every product is a register-tiled loop of FMAs over contiguous,
// shifted vectors. Measured in BENCHMARKS.md §13 (`flow-conv-bench`). One difference from the definition, for
// non-finite inputs only: backward-weights also multiplies dY's zero borders by the inputs beside them, so an infinite
// input can give NaN where the exact weight gradient is ±∞ (the forward output is already non-finite then).
#include <string.h>
#include "CFlowSupport.h"

long flow_conv3x3_padded_stride(long images, long height, long width) {
    const long wp = width + 2, pp = (height + 2) * wp;
    return images * pp + (2 * wp + 64 + 15) / 16 * 16;
}

// The row copies stay loops: as calls of memcpy, one per image row of 7 to 28 values, they took 10 % of a
// realnvp-small training step (perf, `bench --arch realnvp-small --threads 1`).
__attribute__((no_builtin("memcpy")))
void flow_conv3x3_pad_f32(const float *restrict x, long channels, long plane, long images, long height, long width,
                          float *restrict xp) {
    const long wp = width + 2, pp = (height + 2) * wp, stride = flow_conv3x3_padded_stride(images, height, width);
    for (long c = 0; c < channels; c++) {
        float *restrict d = xp + c * stride;
        const float *restrict s = x + c * plane;
        for (long i = 0; i < images; i++) {
            float *restrict f = d + i * pp;
            memset(f, 0, (size_t)(wp + 1) * sizeof(float));  // row 0 and row 1's left border
            for (long y = 0; y < height; y++) {
                float *restrict row = f + (y + 1) * wp + 1;
                const float *restrict src = s + (i * height + y) * width;
                for (long k = 0; k < width; k++) row[k] = src[k];
                row[width] = 0;      // this row's right border
                row[width + 1] = 0;  // the next row's left border
            }
            memset(f + (height + 1) * wp + 1, 0, (size_t)(wp - 1) * sizeof(float));  // the last row
        }
        memset(d + images * pp, 0, (size_t)(stride - images * pp) * sizeof(float));  // the guard
    }
}

void flow_conv3x3_pack_weights_f32(const float *restrict w, long co, long ci, int flip, float *restrict packed) {
    const long outs = flip ? ci : co, ins = flip ? co : ci, blocks = (outs + 3) / 4;
    for (long b = 0; b < blocks; b++)
        for (long c = 0; c < ins; c++)
            for (int k = 0; k < 9; k++)
                for (int r = 0; r < 4; r++) {
                    const long o = b * 4 + r;
                    float v = 0;
                    if (o < outs) v = flip ? w[(c * ci + o) * 9 + 8 - k] : w[(o * ci + c) * 9 + k];
                    packed[((b * ins + c) * 9 + k) * 4 + r] = v;
                }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

// One tile of the forward pass: 4 output channels r × nv vectors of 8 output positions j starting at q,
//   acc[r][j] = Σ_{c, ky, kx} W[r][c][ky·3 + kx] · X[c][q + 8j + (ky − 1)·wp + kx − 1]
// 12 accumulators, 3 loads of X and 4 broadcasts of W per 12 FMAs.
INLINE AVX2 void forward_tile(const float *restrict xq, long cstride, long ci, long wp, const float *restrict wpk,
                              int nv, float *restrict yq, long ystride) {
    __m256 acc[4][3];
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 3; j++) acc[r][j] = _mm256_setzero_ps();
    const float *restrict xc = xq - wp - 1;
    for (long c = 0; c < ci; c++, xc += cstride, wpk += 36) {
        for (int ky = 0; ky < 3; ky++) {
            const float *restrict xr = xc + ky * wp;
            for (int kx = 0; kx < 3; kx++) {
                const float *restrict wk = wpk + (ky * 3 + kx) * 4;
                __m256 x0 = _mm256_loadu_ps(xr + kx), x1 = x0, x2 = x0;
                if (nv > 1) x1 = _mm256_loadu_ps(xr + kx + 8);
                if (nv > 2) x2 = _mm256_loadu_ps(xr + kx + 16);
                for (int r = 0; r < 4; r++) {
                    const __m256 wv = _mm256_broadcast_ss(wk + r);
                    acc[r][0] = _mm256_fmadd_ps(wv, x0, acc[r][0]);
                    if (nv > 1) acc[r][1] = _mm256_fmadd_ps(wv, x1, acc[r][1]);
                    if (nv > 2) acc[r][2] = _mm256_fmadd_ps(wv, x2, acc[r][2]);
                }
            }
        }
    }
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < nv; j++) _mm256_storeu_ps(yq + r * ystride + 8 * j, acc[r][j]);
}

AVX2 static void forward_block(const float *xq, long stride, long ci, long wp, const float *wpk, int nv, float *yq) {
    switch (nv) {
    case 3: forward_tile(xq, stride, ci, wp, wpk, 3, yq, stride); break;
    case 2: forward_tile(xq, stride, ci, wp, wpk, 2, yq, stride); break;
    default: forward_tile(xq, stride, ci, wp, wpk, 1, yq, stride); break;
    }
}

AVX2 void flow_conv3x3_forward_direct_f32(const float *restrict xp, long ci, long images, long height, long width,
                                          const float *restrict packed, const float *restrict bias, long co,
                                          float *restrict y, long plane, int accumulate, float *restrict yp) {
    const long wp = width + 2, pp = (height + 2) * wp, stride = flow_conv3x3_padded_stride(images, height, width);
    // Output positions of image i: q ∈ [i·pp + q0, i·pp + q0 + len), pixel (0, 0) to (H − 1, W − 1) in the padded
    // frame; the 2 border positions per row between them (and a tile's overshoot) are computed and not copied.
    const long q0 = wp + 1, len = (height - 1) * wp + width;
    for (long i = 0; i < images; i++) {
        for (long t = 0; t < len; t += 24) {
            const long rest = len - t;
            const int nv = rest >= 24 ? 3 : (int)((rest + 7) / 8);
            const long q = i * pp + q0 + t;
            for (long o = 0; o < co; o += 4) forward_block(xp + q, stride, ci, wp, packed + o * ci * 9, nv, yp + o * stride + q);
        }
    }
    const long hw = height * width;
    for (long o = 0; o < co; o++) {
        const float b = bias ? bias[o] : 0;
        for (long i = 0; i < images; i++) {
            float *restrict d = y + o * plane + i * hw;
            const float *restrict s = yp + o * stride + i * pp + q0;
            for (long r = 0; r < height; r++) {
                if (accumulate)
                    for (long k = 0; k < width; k++) d[r * width + k] += s[r * wp + k] + b;
                else
                    for (long k = 0; k < width; k++) d[r * width + k] = s[r * wp + k] + b;
            }
        }
    }
}

INLINE AVX2 float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One tile of the weight gradient: mr output channels r × the 3 taps kx of one input channel and row ky, over nvec
// vectors of 8 positions: acc[r][kx] += dY[r][q] · X[q + kx] (xq already shifted by (ky − 1)·wp − 1); 9 accumulators,
// 3 + 3 loads per 9 FMAs. The 8 lanes are added into `partial` (lane sums, reduced at the end).
INLINE AVX2 void weights_tile(const float *restrict dyq, const float *restrict xq, long stride, long nvec, int mr,
                              float *restrict partial, long pstride) {
    __m256 acc[3][3];
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 3; j++) acc[r][j] = _mm256_setzero_ps();
    for (long v = 0; v < nvec; v++) {
        __m256 d[3];
        for (int r = 0; r < mr; r++) d[r] = _mm256_loadu_ps(dyq + r * stride + 8 * v);
        for (int j = 0; j < 3; j++) {
            const __m256 x = _mm256_loadu_ps(xq + 8 * v + j);
            for (int r = 0; r < mr; r++) acc[r][j] = _mm256_fmadd_ps(d[r], x, acc[r][j]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < 3; j++) {
            float *p = partial + r * pstride + j * 8;
            _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), acc[r][j]));
        }
}

AVX2 void flow_conv3x3_backward_weights_direct_f32(const float *restrict dyp, const float *restrict xp, long ci,
                                                   long images, long height, long width, long co,
                                                   float *restrict dw, int accumulate, float *restrict partial) {
    const long wp = width + 2, pp = (height + 2) * wp, stride = flow_conv3x3_padded_stride(images, height, width);
    // dY is 0 on the borders, so the sum may run over whole vectors past the last pixel (into the zero border rows
    // or the guard).
    const long q0 = wp + 1, len = (height - 1) * wp + width, nvec = (len + 7) / 8, pstride = ci * 9 * 8;
    memset(partial, 0, (size_t)(co * ci * 9 * 8) * sizeof(float));
    for (long o = 0; o < co; o += 3) {
        const int mr = co - o >= 3 ? 3 : (int)(co - o);
        for (long i = 0; i < images; i++) {
            const float *dyq = dyp + o * stride + i * pp + q0;
            for (long c = 0; c < ci; c++) {
                for (int ky = 0; ky < 3; ky++) {
                    const float *xq = xp + c * stride + i * pp + q0 + (ky - 1) * wp - 1;
                    float *pq = partial + ((o * ci + c) * 9 + ky * 3) * 8;
                    switch (mr) {
                    case 3: weights_tile(dyq, xq, stride, nvec, 3, pq, pstride); break;
                    case 2: weights_tile(dyq, xq, stride, nvec, 2, pq, pstride); break;
                    default: weights_tile(dyq, xq, stride, nvec, 1, pq, pstride); break;
                    }
                }
            }
        }
    }
    for (long e = 0; e < co * ci * 9; e++) {
        const float s = hsum(_mm256_loadu_ps(partial + e * 8));
        dw[e] = accumulate ? dw[e] + s : s;
    }
}
#else
#include <stdlib.h>
void flow_conv3x3_forward_direct_f32(const float *restrict xp, long ci, long images, long height, long width,
                                     const float *restrict packed, const float *restrict bias, long co,
                                     float *restrict y, long plane, int accumulate, float *restrict yp) { abort(); }
void flow_conv3x3_backward_weights_direct_f32(const float *restrict dyp, const float *restrict xp, long ci,
                                              long images, long height, long width, long co,
                                              float *restrict dw, int accumulate, float *restrict partial) { abort(); }
#endif
