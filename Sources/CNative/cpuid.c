#include "CNative.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

void sn_cpu_detect(sn_cpu_features *f) {
    memset(f, 0, sizeof(*f));
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    f->sse42 = (c >> 20) & 1;
    int osxsave = (c >> 27) & 1;
    int avx_cpu = (c >> 28) & 1;
    int fma_cpu = (c >> 12) & 1;
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    // XMM (bit 1) and YMM (bit 2) state must be enabled by the OS for AVX.
    int os_avx = (xcr0 & 0x6) == 0x6;
    // Opmask, ZMM_Hi256 and Hi16_ZMM (bits 5-7) for AVX-512.
    int os_avx512 = os_avx && ((xcr0 & 0xE0) == 0xE0);
    f->avx = avx_cpu && os_avx;
    f->fma = fma_cpu && os_avx;
    if (__get_cpuid_max(0, 0) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = ((b >> 5) & 1) && os_avx;
    f->avx512f = ((b >> 16) & 1) && os_avx512;
    f->avx512dq = ((b >> 17) & 1) && os_avx512;
    f->avx512cd = ((b >> 28) & 1) && os_avx512;
    f->avx512bw = ((b >> 30) & 1) && os_avx512;
    f->avx512vl = ((b >> 31) & 1) && os_avx512;
    f->avx512_vnni = ((c >> 11) & 1) && os_avx512;
    __cpuid_count(7, 1, a, b, c, d);
    f->avx512_bf16 = ((a >> 5) & 1) && os_avx512;
}
#else
void sn_cpu_detect(sn_cpu_features *f) { memset(f, 0, sizeof(*f)); }
#endif
