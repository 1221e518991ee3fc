#ifndef CFLOWSUPPORT_H
#define CFLOWSUPPORT_H
/// Sets flush-to-zero and denormals-are-zero for the calling thread (MXCSR FTZ|DAZ on x86-64, FPCR.FZ on
/// AArch64). Per-thread state: every thread that computes must call it before its first step.
void flow_enable_flush_to_zero(void);
/// 1 when the calling thread flushes subnormal results to zero, else 0.
int flow_flush_to_zero_enabled(void);
/// The calling thread's floating-point control word (MXCSR on x86-64, FPCR on AArch64).
unsigned long long flow_get_float_control(void);
/// Restores a control word saved by flow_get_float_control().
void flow_set_float_control(unsigned long long value);
/// Restores IEEE gradual underflow for the calling thread (used by tests).
void flow_disable_flush_to_zero(void);
/// Number of CPUs in the calling thread's affinity mask (the cores mpirun's binding leaves this process),
/// or the online CPU count when the mask cannot be read.
int flow_affinity_cpu_count(void);
/// 1 when the CPU supports AVX-512F (x86-64), else 0.
int flow_cpu_has_avx512f(void);
/// 1 when the CPU supports AVX2 and FMA (x86-64), else 0.
int flow_cpu_has_avx2(void);
/// 1 when standard output is a terminal.
int flow_stdout_is_terminal(void);
/// Flushes the C standard output stream (what Swift's print writes to).
void flow_flush_stdout(void);
#endif
