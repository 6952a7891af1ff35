// OpenBLAS's C interface (Debian: libopenblas-dev, pkg-config "openblas").
#include <cblas.h>

// The one libc facility PhalanxTensor needs beside BLAS: Swift's Glibc module does not
// import <malloc.h>, so mallopt is wrapped here (see MemoryPolicy.swift). Returns 1 when
// glibc accepted every setting, 0 otherwise or on other C libraries.
#if defined(__GLIBC__)
#include <malloc.h>
static inline int phalanx_malloc_keep_freed_memory(int mmap_threshold, int trim_threshold, int top_pad) {
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
        && mallopt(M_TOP_PAD, top_pad) == 1;
}
#else
static inline int phalanx_malloc_keep_freed_memory(int mmap_threshold, int trim_threshold, int top_pad) {
    (void)mmap_threshold; (void)trim_threshold; (void)top_pad;
    return 0;
}
#endif
