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
    return setpriority(PRIO_PROCESS, (id_t)tid, 19) == 0 ? 1 : 0;
#else
    return 0;
#endif
}

void flow_thread_set_name(const char *name) {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), name);  // at most 15 bytes are kept
#elif defined(__APPLE__)
    pthread_setname_np(name);
#else
    (void)name;
#endif
}
