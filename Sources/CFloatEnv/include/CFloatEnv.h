#ifndef CFLOATENV_H
#define CFLOATENV_H
/// Sets flush-to-zero and denormals-are-zero for the calling thread (MXCSR FTZ|DAZ on x86-64, FPCR.FZ on
/// AArch64). Per-thread state: every thread that computes must call it before its first step.
void flow_enable_flush_to_zero(void);
/// 1 when the calling thread flushes subnormal results to zero, else 0.
int flow_flush_to_zero_enabled(void);
/// Restores IEEE gradual underflow for the calling thread (used by tests).
void flow_disable_flush_to_zero(void);
#endif
