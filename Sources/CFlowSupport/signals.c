#include "CFlowSupport.h"
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Signal handlers can only touch lock-free, async-signal-safe state: sig_atomic_t flags, and a timespec
// written before the flag that publishes it.
static volatile sig_atomic_t first_signal = 0;
static volatile sig_atomic_t signal_count = 0;
static struct timespec first_signal_time;

static void on_stop_signal(int sig) {
    signal_count++;
    if (first_signal != 0) {
        // Only a second SIGINT (Ctrl-C twice) means "now". Schedulers and mpirun may deliver SIGTERM or
        // SIGUSR1/2 more than once (Slurm signals every process of a step and mpirun forwards the same
        // signal again): those repeats must not turn a graceful stop into a lost checkpoint.
        if (sig == SIGINT) {
            static const char msg[] = "\nsecond SIGINT: exiting now\n";
            (void)!write(2, msg, sizeof msg - 1);
            flow_temporary_files_remove("");  // no partial file left behind (the complete ones are intact)
            _exit(128 + sig);
        }
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &first_signal_time);  // async-signal-safe (POSIX.1-2008)
    first_signal = sig;
}

void flow_install_stop_handlers(void) {
    static const int signals[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigset_t set;
    sigemptyset(&set);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        sigaction(signals[i], &sa, 0);
        sigaddset(&set, signals[i]);
    }
    // A parent may have started us with these signals blocked (the mask is inherited): unblock them on the
    // calling thread so that they are delivered.
    pthread_sigmask(SIG_UNBLOCK, &set, 0);
}

void flow_restore_default_stop_handlers(void) {
    static const int signals[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) signal(signals[i], SIG_DFL);
}

int flow_stop_signal(void) { return first_signal; }

double flow_monotonic_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

double flow_stop_signal_time(void) {
    if (first_signal == 0) return -1;
    return (double)first_signal_time.tv_sec + 1e-9 * (double)first_signal_time.tv_nsec;
}

int flow_stop_signal_count(void) { return signal_count; }

void flow_request_stop(int sig) {
    clock_gettime(CLOCK_MONOTONIC, &first_signal_time);
    signal_count++;
    first_signal = sig;
}
