#define _GNU_SOURCE
#include "CFlowSupport.h"
#include <pthread.h>
#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int flow_thread_lowest_priority(void) {
#if defined(__linux__)
    // On Linux a nice value belongs to a thread (its thread id); raising it needs no privilege.
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, (id_t)tid, 19) != 0) return 0;
#if defined(SYS_ioprio_set)
    // Without an I/O priority of its own, a thread's is derived from its nice value (best-effort level 7 at nice
    // 19, which BFQ and CFQ honour): keep the default level 4, so that fsync is not slowed as well.
    const int ioprio_who_process = 1, ioprio_class_be = 2, ioprio_class_shift = 13;
    (void)syscall(SYS_ioprio_set, ioprio_who_process, tid, (ioprio_class_be << ioprio_class_shift) | 4);
#endif
    return 1;
#else
    return 0;
#endif
}

void flow_thread_set_name(const char *name) {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), name);  // Linux refuses names longer than 15 bytes (ERANGE)
#elif defined(__APPLE__)
    pthread_setname_np(name);
#else
    (void)name;
#endif
}
