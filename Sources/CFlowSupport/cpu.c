#include "CFlowSupport.h"
#include <stdio.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
int flow_cpu_has_avx512f(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx512f") ? 1 : 0; }
int flow_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
}
#else
int flow_cpu_has_avx512f(void) { return 0; }
int flow_cpu_has_avx2(void) { return 0; }
#endif
int flow_stdout_is_terminal(void) { return isatty(STDOUT_FILENO) ? 1 : 0; }
void flow_flush_stdout(void) { fflush(stdout); }
