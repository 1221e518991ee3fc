#include "CFlowSupport.h"
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FLOW_MXCSR_FTZ 0x8000u
#define FLOW_MXCSR_DAZ 0x0040u
void flow_enable_flush_to_zero(void) { _mm_setcsr(_mm_getcsr() | FLOW_MXCSR_FTZ | FLOW_MXCSR_DAZ); }
void flow_disable_flush_to_zero(void) { _mm_setcsr(_mm_getcsr() & ~(FLOW_MXCSR_FTZ | FLOW_MXCSR_DAZ)); }
unsigned long long flow_get_float_control(void) { return _mm_getcsr(); }
void flow_set_float_control(unsigned long long value) { _mm_setcsr((unsigned int)value); }
int flow_flush_to_zero_enabled(void) {
    unsigned int c = _mm_getcsr();
    return (c & FLOW_MXCSR_FTZ) && (c & FLOW_MXCSR_DAZ);
}
#elif defined(__aarch64__)
static inline uint64_t get_fpcr(void) { uint64_t r; __asm__ volatile("mrs %0, fpcr" : "=r"(r)); return r; }
static inline void set_fpcr(uint64_t r) { __asm__ volatile("msr fpcr, %0" : : "r"(r)); }
void flow_enable_flush_to_zero(void) { set_fpcr(get_fpcr() | (1ull << 24)); }
void flow_disable_flush_to_zero(void) { set_fpcr(get_fpcr() & ~(1ull << 24)); }
int flow_flush_to_zero_enabled(void) { return (get_fpcr() >> 24) & 1; }
unsigned long long flow_get_float_control(void) { return get_fpcr(); }
void flow_set_float_control(unsigned long long value) { set_fpcr(value); }
#else
void flow_enable_flush_to_zero(void) {}
void flow_disable_flush_to_zero(void) {}
int flow_flush_to_zero_enabled(void) { return 0; }
unsigned long long flow_get_float_control(void) { return 0; }
void flow_set_float_control(unsigned long long value) { (void)value; }
#endif
