// Winograd F(2×2, 3×3) convolutions (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016,
// eq. 8): 3×3 convolutions (stride 1, zero padding 1) in Float32 with AVX2 + FMA, on the padded layout of
// conv_direct.c. Every 2×2 block of outputs ("tile") of an image is
//     Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
// with d_c the 4×4 input patch of channel c around it and g_c the 3×3 kernel: 16 products per tile and channel pair
// where the direct convolution takes 36. The sum over c is, for each of the 16 positions ξ of the 4×4 transform, a
// matrix product M_ξ [co, tiles] = U_ξ [co, ci] · V_ξ [ci, tiles], register-tiled (2 output channels × 48 tiles). The
// weight gradient is the same algebra transposed: dU_ξ [co, ci] = Σ_tiles (A dy Aᵀ)_ξ · V_ξᵀ, dg = Gᵀ dU G, with
// (A dy Aᵀ) transposed to [tiles, co] so that the sum over tiles runs in registers (4 input × 16 output channels).
//     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 −1 −1].
// Tiles are processed in blocks of whole tile rows (about 96 tiles) so that V and M stay in the core's L2 cache.
// The rounding differs from the direct convolution's (the transforms add and subtract before the products); the
// tests bound it against the Float64 convolution. Measured in BENCHMARKS.md §13 (`flow-conv-bench`). Vectors run past
// a block's last tile into columns whose results are not stored (forward) or are multiplied by zero (weights): for
// non-finite inputs only, an infinite input can then give NaN where the exact weight gradient is ±∞ (the forward
// output is already non-finite then), as in the direct kernels.
#include <string.h>
#include "CFlowSupport.h"

/// Tile rows per block for images `width` wide (⌈W/2⌉ tiles a row): about 96 tiles, at least one row.
static long tile_rows_per_block(long width) {
    const long tw = (width + 1) / 2;
    return tw >= 96 ? 1 : 96 / tw;
}

/// Columns of a block's matrices: its tiles rounded up to 8, plus 8 that the last row's vectors may write past them.
static long block_tiles(long width) { return (tile_rows_per_block(width) * ((width + 1) / 2) + 7) / 8 * 8 + 8; }

/// Floats between the 16 matrices ξ of rows × tb values: 16 more than rows·tb, so that the 16 streams of a transform
/// do not fall in one L1 set (rows·tb·4 bytes is often a multiple of 4096).
static long xi_stride(long rows, long tb) { return rows * tb + 16; }

long flow_conv3x3_winograd_scratch_count(long ci, long co, long width) {
    const long tb = block_tiles(width), ci4 = (ci + 3) / 4 * 4, co4 = (co + 3) / 4 * 4;
    const long co8 = (co + 7) / 8 * 8;
    // forward: V [16][ci] + M [16][co4] rows of tb; weights: V [16][ci4] rows of tb, Dᵀ [16][tb][co8], dUᵀ
    // [16][ci4][co8] and a staging block [8][16][8].
    const long forward = 16 * (xi_stride(ci4, tb) + xi_stride(co4, tb));
    const long weights = 16 * (xi_stride(ci4, tb) + xi_stride(tb, co8)) + 16 * ci4 * co8 + 16 * 64;
    return forward > weights ? forward : weights;
}

long flow_conv3x3_winograd_packed_count(long ci, long co) { return 16 * ((co + 3) / 4 * 4) * ci; }

void flow_conv3x3_winograd_pack_weights_f32(const float *restrict w, long co, long ci, int flip, float *restrict packed) {
    const long outs = flip ? ci : co, ins = flip ? co : ci, blocks = (outs + 3) / 4;
    for (long b = 0; b < blocks; b++)
        for (long c = 0; c < ins; c++)
            for (int r = 0; r < 4; r++) {
                const long o = b * 4 + r;
                double g[9] = {0}, gg[4][3], u[4][4];
                if (o < outs)
                    for (int k = 0; k < 9; k++) g[k] = flip ? w[(c * ci + o) * 9 + 8 - k] : w[(o * ci + c) * 9 + k];
                // G g: rows g0, ½(g0 + g1 + g2), ½(g0 − g1 + g2), g2 (g's rows), then (G g) Gᵀ the same on columns.
                for (int x = 0; x < 3; x++) {
                    gg[0][x] = g[x];
                    gg[1][x] = 0.5 * (g[x] + g[3 + x] + g[6 + x]);
                    gg[2][x] = 0.5 * (g[x] - g[3 + x] + g[6 + x]);
                    gg[3][x] = g[6 + x];
                }
                for (int y = 0; y < 4; y++) {
                    u[y][0] = gg[y][0];
                    u[y][1] = 0.5 * (gg[y][0] + gg[y][1] + gg[y][2]);
                    u[y][2] = 0.5 * (gg[y][0] - gg[y][1] + gg[y][2]);
                    u[y][3] = gg[y][2];
                }
                for (int xi = 0; xi < 16; xi++) packed[((xi * blocks + b) * ins + c) * 4 + r] = (float)u[xi / 4][xi % 4];
            }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

// Even and odd elements of the 16 floats a, b: (a0 a2 … b6), (a1 a3 … b7).
INLINE AVX2 void deinterleave(__m256 a, __m256 b, __m256 *even, __m256 *odd) {
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
}

// V_ξ[c][col + t] = (Bᵀ d B)_ξ for the 8 tiles t of one tile row starting at padded position p (the patch's top left:
// padded row 2ty, column 2tx): d_{k, j} = p[k·wp + 2t + j].
//   vertical   s_0 = d_0 − d_2, s_1 = d_1 + d_2, s_2 = d_2 − d_1, s_3 = d_1 − d_3   (rows k)
//   horizontal V_{k,0} = s_k[0] − s_k[2], V_{k,1} = s_k[1] + s_k[2], V_{k,2} = s_k[2] − s_k[1], V_{k,3} = s_k[1] − s_k[3]
INLINE AVX2 void input_tiles8(const float *restrict p, long wp, float *restrict v, long vstride) {
    __m256 a[4], b[4], a2[4], b2[4];
    for (int k = 0; k < 4; k++) {
        a[k] = _mm256_loadu_ps(p + k * wp);
        b[k] = _mm256_loadu_ps(p + k * wp + 8);
        a2[k] = _mm256_loadu_ps(p + k * wp + 2);
        b2[k] = _mm256_loadu_ps(p + k * wp + 10);
    }
#define VERT(x, s)                                                                                                     \
    __m256 s[4] = {_mm256_sub_ps(x[0], x[2]), _mm256_add_ps(x[1], x[2]), _mm256_sub_ps(x[2], x[1]),                   \
                   _mm256_sub_ps(x[1], x[3])}
    VERT(a, sa);
    VERT(b, sb);
    VERT(a2, sa2);
    VERT(b2, sb2);
#undef VERT
    for (int k = 0; k < 4; k++) {
        __m256 e0, o0, e1, o1;  // s_k at columns 2t, 2t + 1, 2t + 2, 2t + 3
        deinterleave(sa[k], sb[k], &e0, &o0);
        deinterleave(sa2[k], sb2[k], &e1, &o1);
        _mm256_storeu_ps(v + (4 * k + 0) * vstride, _mm256_sub_ps(e0, e1));
        _mm256_storeu_ps(v + (4 * k + 1) * vstride, _mm256_add_ps(o0, e1));
        _mm256_storeu_ps(v + (4 * k + 2) * vstride, _mm256_sub_ps(e1, o0));
        _mm256_storeu_ps(v + (4 * k + 3) * vstride, _mm256_sub_ps(o0, o1));
    }
}

// The transformed inputs of tile rows [r0, r0 + nr) (row R: image R / th, tile row R % th) of channels [0, ci) into
// v [16][ci][tb] (vstride floats between the ξ) at columns (R − r0)·tw + tx. Vectors past a row's last tile write garbage into the next row's
// columns, which that row then overwrites, and past the block's last tile into the 8 spare columns.
INLINE AVX2 void input_transform(const float *restrict xp, long ci, long stride, long pp, long wp, long th, long tw,
                                 long r0, long nr, float *restrict v, long vstride, long tb) {
    for (long c = 0; c < ci; c++)
        for (long rr = 0; rr < nr; rr++) {
            const long R = r0 + rr, i = R / th, ty = R % th;
            const float *p = xp + c * stride + i * pp + 2 * ty * wp;
            float *vc = v + c * tb + rr * tw;
            for (long tx = 0; tx < tw; tx += 8) input_tiles8(p + 2 * tx, wp, vc + tx, vstride);
        }
}

// acc[r][j] = Σ_c U[r][c] · V[c][8j …] over 2 output channels r (u: their weights, 4 apart per c) and nv ≤ 6 vectors
// of 8 tiles; M[r][…] = acc. 12 accumulators, nv loads and 2 broadcasts per 2·nv FMAs.
INLINE AVX2 void product_tile(const float *restrict v, long tb, long ci, const float *restrict u, int nv,
                              float *restrict m) {
    __m256 acc[2][6];
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 6; j++) acc[r][j] = _mm256_setzero_ps();
    for (long c = 0; c < ci; c++, v += tb, u += 4) {
        const __m256 w0 = _mm256_broadcast_ss(u), w1 = _mm256_broadcast_ss(u + 1);
        for (int j = 0; j < nv; j++) {
            const __m256 x = _mm256_loadu_ps(v + 8 * j);
            acc[0][j] = _mm256_fmadd_ps(w0, x, acc[0][j]);
            acc[1][j] = _mm256_fmadd_ps(w1, x, acc[1][j]);
        }
    }
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < nv; j++) _mm256_storeu_ps(m + r * tb + 8 * j, acc[r][j]);
}

AVX2 static void product_block(const float *v, long tb, long ci, const float *u, int nv, float *m) {
    switch (nv) {
    case 6: product_tile(v, tb, ci, u, 6, m); break;
    case 5: product_tile(v, tb, ci, u, 5, m); break;
    case 4: product_tile(v, tb, ci, u, 4, m); break;
    case 3: product_tile(v, tb, ci, u, 3, m); break;
    case 2: product_tile(v, tb, ci, u, 2, m); break;
    default: product_tile(v, tb, ci, u, 1, m); break;
    }
}

// The copies of a row's last tiles stay loops: as memcpy calls (one per tile row and channel) they cost 5 % of a
// realnvp-small training step; AVX2's masked stores are slower still on AMD CPUs.
__attribute__((no_builtin("memcpy"))) AVX2 void flow_conv3x3_forward_winograd_f32(const float *restrict xp, long ci, long images, long height, long width,
                                            const float *restrict packed, const float *restrict bias, long co,
                                            float *restrict y, long plane, int accumulate, float *restrict scratch) {
    const long wp = width + 2, pp = (height + 2) * wp, stride = flow_conv3x3_padded_stride(images, height, width);
    const long th = (height + 1) / 2, tw = (width + 1) / 2, rows = images * th, rb = tile_rows_per_block(width);
    const long tb = block_tiles(width), blocks = (co + 3) / 4, hw = height * width;
    const long vs = xi_stride(ci, tb), ms = xi_stride(blocks * 4, tb);
    float *restrict v = scratch, *restrict m = scratch + 16 * vs;  // V [16][ci][tb], M [16][blocks·4][tb]
    for (long r0 = 0; r0 < rows; r0 += rb) {
        const long nr = rows - r0 < rb ? rows - r0 : rb, nt = nr * tw, ncols = (nt + 7) / 8 * 8;
        input_transform(xp, ci, stride, pp, wp, th, tw, r0, nr, v, vs, tb);
        // M_ξ [co, tiles] = U_ξ [co, ci] · V_ξ [ci, tiles]
        for (int xi = 0; xi < 16; xi++)
            for (long b = 0; b < blocks; b++)
                for (long t = 0; t < ncols; t += 48) {
                    const long rest = ncols - t;
                    const int nv = rest >= 48 ? 6 : (int)(rest / 8);
                    const float *u = packed + (xi * blocks + b) * ci * 4;
                    float *mb = m + xi * ms + b * 4 * tb + t;
                    product_block(v + xi * vs + t, tb, ci, u, nv, mb);
                    product_block(v + xi * vs + t, tb, ci, u + 2, nv, mb + 2 * tb);
                }
        // Y = Aᵀ M A + bias per tile, 8 tiles at a time: rows r_0 = m_0 + m_1 + m_2, r_1 = m_1 − m_2 − m_3 (over k),
        // then the same over j.
        for (long o = 0; o < co; o++) {
            const __m256 bv = _mm256_set1_ps(bias ? bias[o] : 0);
            const float *mo = m + o * tb;
            for (long rr = 0; rr < nr; rr++) {
                const long R = r0 + rr, i = R / th, ty = R % th;
                float *yrow = y + o * plane + i * hw + 2 * ty * width;
                const int second = 2 * ty + 1 < height;
                for (long tx = 0; tx < tw; tx += 8) {
                    const float *mt = mo + rr * tw + tx;
                    __m256 r[2][4];
                    for (int j = 0; j < 4; j++) {
                        const __m256 m0 = _mm256_loadu_ps(mt + j * ms), m1 = _mm256_loadu_ps(mt + (4 + j) * ms);
                        const __m256 m2 = _mm256_loadu_ps(mt + (8 + j) * ms), m3 = _mm256_loadu_ps(mt + (12 + j) * ms);
                        r[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                        r[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
                    }
                    const long cols = width - 2 * tx < 16 ? width - 2 * tx : 16;
                    for (int a = 0; a <= second; a++) {
                        const __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(r[a][0], r[a][1]), r[a][2]), bv);
                        const __m256 y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(r[a][1], r[a][2]), r[a][3]), bv);
                        const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
                        const __m256 first8 = _mm256_permute2f128_ps(lo, hi, 0x20), next8 = _mm256_permute2f128_ps(lo, hi, 0x31);
                        float *d = yrow + a * width + 2 * tx;
                        if (cols == 16) {
                            if (accumulate) {
                                _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), first8));
                                _mm256_storeu_ps(d + 8, _mm256_add_ps(_mm256_loadu_ps(d + 8), next8));
                            } else {
                                _mm256_storeu_ps(d, first8);
                                _mm256_storeu_ps(d + 8, next8);
                            }
                        } else {
                            float buffer[16];
                            _mm256_storeu_ps(buffer, first8);
                            _mm256_storeu_ps(buffer + 8, next8);
                            if (accumulate)
                                for (long k = 0; k < cols; k++) d[k] += buffer[k];
                            else
                                for (long k = 0; k < cols; k++) d[k] = buffer[k];
                        }
                    }
                }
            }
        }
    }
}

// (A dy Aᵀ)_ξ of 8 tiles of one tile row into d [16][8] (ξ-major, one vector of 8 tiles per ξ), dy's 2×2 block at
// padded rows 2ty + 1, 2ty + 2 and columns 2tx + 1, 2tx + 2 (p points at row 2ty + 1, column 1 + 2·tx0):
// A = [1 0; 1 1; 1 −1; 0 −1], e_0 = d_0, e_1 = d_0 + d_1, e_2 = d_0 − d_1, e_3 = −d_1 over the rows, then the columns.
INLINE AVX2 void gradient_tiles8(const float *restrict p, long wp, float *restrict d) {
    __m256 e[2], o[2];
    for (int k = 0; k < 2; k++) deinterleave(_mm256_loadu_ps(p + k * wp), _mm256_loadu_ps(p + k * wp + 8), &e[k], &o[k]);
    const __m256 zero = _mm256_setzero_ps();
    // Rows k of the 4×2 block A dy: (e, o) pairs.
    const __m256 ve[4] = {e[0], _mm256_add_ps(e[0], e[1]), _mm256_sub_ps(e[0], e[1]), _mm256_sub_ps(zero, e[1])};
    const __m256 vo[4] = {o[0], _mm256_add_ps(o[0], o[1]), _mm256_sub_ps(o[0], o[1]), _mm256_sub_ps(zero, o[1])};
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(d + (4 * k + 0) * 8, ve[k]);
        _mm256_storeu_ps(d + (4 * k + 1) * 8, _mm256_add_ps(ve[k], vo[k]));
        _mm256_storeu_ps(d + (4 * k + 2) * 8, _mm256_sub_ps(ve[k], vo[k]));
        _mm256_storeu_ps(d + (4 * k + 3) * 8, _mm256_sub_ps(zero, vo[k]));
    }
}

// The 8 × 8 block r[j] (rows j) transposed in place: r[t][j] = old r[j][t].
INLINE AVX2 void transpose8(__m256 r[8]) {
    __m256 a[8], b[8];
    for (int k = 0; k < 4; k++) {
        a[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 2; k++) {
        b[4 * k + 0] = _mm256_shuffle_ps(a[4 * k], a[4 * k + 2], 0x44);
        b[4 * k + 1] = _mm256_shuffle_ps(a[4 * k], a[4 * k + 2], 0xee);
        b[4 * k + 2] = _mm256_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0x44);
        b[4 * k + 3] = _mm256_shuffle_ps(a[4 * k + 1], a[4 * k + 3], 0xee);
    }
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(b[k], b[4 + k], 0x20);
        r[4 + k] = _mm256_permute2f128_ps(b[k], b[4 + k], 0x31);
    }
}

// dUᵀ_ξ[c][o] += Σ_t V_ξ[c][t] · Dᵀ_ξ[t][o] for 4 input channels c (rows of v, tb apart) and 16 output channels o
// (dt's rows, co8 apart) over ncols tiles: 8 accumulators, 4 broadcasts and 2 loads per 8 FMAs.
INLINE AVX2 void reduce_tile(const float *restrict v, long tb, const float *restrict dt, long co8, long ncols, int nv,
                             float *restrict du) {
    __m256 acc[4][2];
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (long t = 0; t < ncols; t++, dt += co8) {
        const __m256 d0 = _mm256_loadu_ps(dt), d1 = nv > 1 ? _mm256_loadu_ps(dt + 8) : d0;
        for (int r = 0; r < 4; r++) {
            const __m256 x = _mm256_broadcast_ss(v + r * tb + t);
            acc[r][0] = _mm256_fmadd_ps(x, d0, acc[r][0]);
            if (nv > 1) acc[r][1] = _mm256_fmadd_ps(x, d1, acc[r][1]);
        }
    }
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < nv; j++) {
            float *q = du + r * co8 + 8 * j;
            _mm256_storeu_ps(q, _mm256_add_ps(_mm256_loadu_ps(q), acc[r][j]));
        }
}

AVX2 void flow_conv3x3_backward_weights_winograd_f32(const float *restrict dyp, const float *restrict xp, long ci,
                                                     long images, long height, long width, long co,
                                                     float *restrict dw, int accumulate, float *restrict scratch) {
    const long wp = width + 2, pp = (height + 2) * wp, stride = flow_conv3x3_padded_stride(images, height, width);
    const long th = (height + 1) / 2, tw = (width + 1) / 2, rows = images * th, rb = tile_rows_per_block(width);
    const long tb = block_tiles(width), ci4 = (ci + 3) / 4 * 4, co8 = (co + 7) / 8 * 8;
    // V [16][ci4][tb], Dᵀ [16][tb][co8], dUᵀ [16][ci4][co8], staging [8 o][16][8 t]; the channels past ci and co stay 0.
    const long vs = xi_stride(ci4, tb), ds = xi_stride(tb, co8);
    float *restrict v = scratch, *restrict dt = v + 16 * vs, *restrict du = dt + 16 * ds, *restrict staging = du + 16 * ci4 * co8;
    memset(v, 0, (size_t)(16 * (vs + ds) + 16 * ci4 * co8 + 16 * 64) * sizeof(float));
    for (long r0 = 0; r0 < rows; r0 += rb) {
        const long nr = rows - r0 < rb ? rows - r0 : rb, nt = nr * tw, ncols = (nt + 7) / 8 * 8;
        input_transform(xp, ci, stride, pp, wp, th, tw, r0, nr, v, vs, tb);
        // Dᵀ: 8 output channels × 8 tiles at a time, transformed into staging [o][ξ][t] and transposed.
        for (long o0 = 0; o0 < co; o0 += 8)
            for (long rr = 0; rr < nr; rr++) {
                const long R = r0 + rr, i = R / th, ty = R % th;
                for (long tx = 0; tx < tw; tx += 8) {
                    for (long o = o0; o < o0 + 8 && o < co; o++)
                        gradient_tiles8(dyp + o * stride + i * pp + (2 * ty + 1) * wp + 1 + 2 * tx, wp, staging + (o - o0) * 128);
                    for (int xi = 0; xi < 16; xi++) {
                        __m256 r[8];
                        for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(staging + j * 128 + xi * 8);
                        transpose8(r);
                        float *q = dt + xi * ds + (rr * tw + tx) * co8 + o0;
                        for (int t = 0; t < 8; t++) _mm256_storeu_ps(q + t * co8, r[t]);
                    }
                }
            }
        // The sum runs over whole vectors of tiles: the tiles past the block's last add nothing.
        for (int xi = 0; xi < 16; xi++) memset(dt + xi * ds + nt * co8, 0, (size_t)((ncols - nt) * co8) * sizeof(float));
        for (int xi = 0; xi < 16; xi++)
            for (long c = 0; c < ci4; c += 4)
                for (long o = 0; o < co8; o += 16)
                    if (co8 - o >= 16)
                        reduce_tile(v + xi * vs + c * tb, tb, dt + xi * ds + o, co8, ncols, 2, du + (xi * ci4 + c) * co8 + o);
                    else
                        reduce_tile(v + xi * vs + c * tb, tb, dt + xi * ds + o, co8, ncols, 1, du + (xi * ci4 + c) * co8 + o);
    }
    // dg = Gᵀ dU G, Gᵀ = [1 ½ ½ 0; 0 ½ −½ 0; 0 ½ ½ 1].
    for (long o = 0; o < co; o++)
        for (long c = 0; c < ci; c++) {
            double u[4][4], h[4][3];
            for (int xi = 0; xi < 16; xi++) u[xi / 4][xi % 4] = du[(xi * ci4 + c) * co8 + o];
            for (int y = 0; y < 4; y++) {
                h[y][0] = u[y][0] + 0.5 * (u[y][1] + u[y][2]);
                h[y][1] = 0.5 * (u[y][1] - u[y][2]);
                h[y][2] = 0.5 * (u[y][1] + u[y][2]) + u[y][3];
            }
            for (int x = 0; x < 3; x++) {
                const double g0 = h[0][x] + 0.5 * (h[1][x] + h[2][x]), g1 = 0.5 * (h[1][x] - h[2][x]),
                             g2 = 0.5 * (h[1][x] + h[2][x]) + h[3][x];
                float *q = dw + (o * ci + c) * 9;
                if (accumulate) {
                    q[x] += (float)g0;
                    q[3 + x] += (float)g1;
                    q[6 + x] += (float)g2;
                } else {
                    q[x] = (float)g0;
                    q[3 + x] = (float)g1;
                    q[6 + x] = (float)g2;
                }
            }
        }
}
#else
#include <stdlib.h>
void flow_conv3x3_forward_winograd_f32(const float *restrict xp, long ci, long images, long height, long width,
                                       const float *restrict packed, const float *restrict bias, long co,
                                       float *restrict y, long plane, int accumulate, float *restrict scratch) { abort(); }
void flow_conv3x3_backward_weights_winograd_f32(const float *restrict dyp, const float *restrict xp, long ci,
                                                long images, long height, long width, long co,
                                                float *restrict dw, int accumulate, float *restrict scratch) { abort(); }
#endif
