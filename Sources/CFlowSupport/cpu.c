#include "CFlowSupport.h"
#include <errno.h>
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
// The errno of the first failed flush of standard output (a property of the process's stdout, like its error flag).
static int stdout_flush_errno = 0;
static void flush_stdout_recording(void) {
    errno = 0;
    if (fflush(stdout) != 0 && stdout_flush_errno == 0) stdout_flush_errno = errno != 0 ? errno : EIO;
}
void flow_flush_stdout(void) { flush_stdout_recording(); }
int flow_stdout_write_error(void) {
    flush_stdout_recording();
    if (stdout_flush_errno != 0) return stdout_flush_errno;
    return ferror(stdout) ? -1 : 0;
}
