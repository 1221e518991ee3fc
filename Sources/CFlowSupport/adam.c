#include "CFlowSupport.h"

// Plain loop with restrict pointers: clang vectorises it (sqrt and division included), which Swift's
// optimiser does not do for four independent buffers.
void flow_adam_update_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, long n,
                          float beta1, float beta2, float step_size, float inv_sqrt_bc2, float eps,
                          float grad_scale, float l2) {
    const float ob1 = 1.0f - beta1, ob2 = 1.0f - beta2, two_l2 = 2.0f * l2;
    for (long e = 0; e < n; e++) {
        float ge = g[e] * grad_scale + two_l2 * p[e];
        float me = beta1 * m[e] + ob1 * ge;
        float ve = beta2 * v[e] + ob2 * ge * ge;
        m[e] = me;
        v[e] = ve;
        p[e] -= step_size * me / (__builtin_sqrtf(ve) * inv_sqrt_bc2 + eps);
    }
}

void flow_adam_update2_f32(float *restrict p, const float *restrict g0, const float *restrict g1, float *restrict m,
                           float *restrict v, long n, float beta1, float beta2, float step_size, float inv_sqrt_bc2,
                           float eps, float grad_scale, float l2) {
    const float ob1 = 1.0f - beta1, ob2 = 1.0f - beta2, two_l2 = 2.0f * l2;
    for (long e = 0; e < n; e++) {
        float sum = g0[e] + g1[e];
        float ge = sum * grad_scale + two_l2 * p[e];
        float me = beta1 * m[e] + ob1 * ge;
        float ve = beta2 * v[e] + ob2 * ge * ge;
        m[e] = me;
        v[e] = ve;
        p[e] -= step_size * me / (__builtin_sqrtf(ve) * inv_sqrt_bc2 + eps);
    }
}
