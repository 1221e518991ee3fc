#include "CFlowSupport.h"
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

// The temporary files being written (AtomicFile), so that an exit from a signal handler (a second SIGINT) can
// remove them: process-wide by necessity, as a signal handler sees nothing else. A slot is 0 (free), 1 (being
// filled) or 2 (published: the path is complete); the handler reads published slots only. Best effort: a slot freed
// and refilled while the handler reads it may give it a mixed path, which names no file.
enum { SLOTS = 16, PATH_BYTES = 4096 };
static char paths[SLOTS][PATH_BYTES];
static atomic_int state[SLOTS];

int flow_temporary_file_register(const char *path) {
    size_t n = strlen(path);
    if (n >= PATH_BYTES) return -1;
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&state[i], &expected, 1)) {
            memcpy(paths[i], path, n + 1);
            atomic_store_explicit(&state[i], 2, memory_order_release);
            return i;
        }
    }
    return -1;
}

void flow_temporary_file_unregister(int slot) {
    if (slot >= 0 && slot < SLOTS) atomic_store_explicit(&state[slot], 0, memory_order_release);
}

int flow_temporary_files_remove(const char *prefix) {
    size_t n = strlen(prefix);
    int removed = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load_explicit(&state[i], memory_order_acquire) == 2 && strncmp(paths[i], prefix, n) == 0
            && unlink(paths[i]) == 0) {
            removed++;
        }
    }
    return removed;
}
