#include "CNative.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void sn_keep_large_allocations(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

// Per-thread ceiling on the cores numeric kernels may spread over (0 = no ceiling). A training
// job's thread sets it so that classification keeps the other cores.
static __thread int sn_thread_core_limit = 0;

void sn_set_thread_core_limit(int cores) { sn_thread_core_limit = cores; }
int sn_get_thread_core_limit(void) { return sn_thread_core_limit; }
