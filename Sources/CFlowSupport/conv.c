#include <string.h>
#include "CFlowSupport.h"

// See CFlowSupport.h. Rows are short (28 values for 28×28 images): plain loops the compiler vectorises, no memmove
// call per row.
void flow_im2col3x3_f32(const float *restrict x, long channels, long plane, long height, long width,
                        long row_begin, long row_end, float *restrict cols) {
    const long tile = (row_end - row_begin) * width;
    for (long c = 0; c < channels; c++) {
        const float *restrict p = x + c * plane;
        for (int ky = 0; ky < 3; ky++) {
            for (int kx = 0; kx < 3; kx++) {
                float *restrict out = cols + (c * 9 + ky * 3 + kx) * tile;
                const long dx = kx - 1;
                const long x0 = dx < 0 ? 1 : 0, x1 = dx > 0 ? width - 1 : width;
                long yy = row_begin % height;
                for (long r = row_begin; r < row_end; r++) {
                    const long sy = yy + ky - 1;
                    float *restrict d = out + (r - row_begin) * width;
                    if (sy < 0 || sy >= height) {
                        memset(d, 0, (size_t)width * sizeof(float));
                    } else {
                        const float *restrict s = p + (r - yy + sy) * width + dx;
                        d[0] = 0;
                        d[width - 1] = 0;
                        for (long i = x0; i < x1; i++) d[i] = s[i];
                    }
                    if (++yy == height) yy = 0;
                }
            }
        }
    }
}

void flow_add_plane_sums_f32(const float *restrict x, long channels, long plane, float *restrict sums) {
    for (long c = 0; c < channels; c++) {
        const float *restrict p = x + c * plane;
        float lanes[32] = {0};  // 32 independent partial sums: vectorised, and a fixed order
        long j = 0;
        for (; j + 32 <= plane; j += 32)
            for (int l = 0; l < 32; l++) lanes[l] += p[j + l];
        for (int l = 0; j < plane; j++, l++) lanes[l] += p[j];
        for (int width = 16; width >= 1; width /= 2)
            for (int l = 0; l < width; l++) lanes[l] += lanes[l + width];
        sums[c] += lanes[0];
    }
}
