#include "CFlowSupport.h"
#include <stdatomic.h>

// Counters that live in plain buffers (one per gradient bucket), shared by the worker threads.
long flow_atomic_add(long *counter, long delta) {
    return atomic_fetch_add_explicit((_Atomic long *)counter, delta, memory_order_seq_cst) + delta;
}
long flow_atomic_load(const long *counter) {
    return atomic_load_explicit((_Atomic const long *)counter, memory_order_seq_cst);
}
void flow_atomic_store(long *counter, long value) {
    atomic_store_explicit((_Atomic long *)counter, value, memory_order_seq_cst);
}
void flow_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}
