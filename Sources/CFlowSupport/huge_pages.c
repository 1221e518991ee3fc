#include "CFlowSupport.h"
#if defined(__linux__)
#include <sys/mman.h>
#endif

int flow_advise_huge_pages(void *address, long bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    return madvise(address, (size_t)bytes, MADV_HUGEPAGE) == 0 ? 1 : 0;
#else
    (void)address; (void)bytes;
    return 0;
#endif
}
