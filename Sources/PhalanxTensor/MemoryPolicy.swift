import CBLAS

/// Process-wide memory settings for training loops.
///
/// A training step allocates and frees the same activation-sized buffers every step. With
/// glibc's defaults, buffers above 128 KiB come from fresh `mmap`s or from heap pages that
/// were just returned to the kernel, so every step pays page faults on memory it had a moment
/// ago: about 10–20 % of an MLP step on a 2-core machine (`phalanx-bench kernels`). Like the
/// caching allocators of other frameworks, `keepFreedMemoryForReuse()` keeps freed memory in
/// the process instead. It changes malloc's behaviour for the whole process, so it is an
/// explicit call: the example trainers make it; a host application may prefer not to.
public enum MemoryPolicy {
    /// Asks glibc's malloc to serve allocations up to 32 MiB from the heap and not to return
    /// freed heap memory to the kernel (trim threshold 1 GiB, top pad 64 MiB).
    /// - Returns: whether every setting was accepted (false on non-glibc platforms).
    @discardableResult
    public static func keepFreedMemoryForReuse() -> Bool {
        phalanx_malloc_keep_freed_memory(32 * 1024 * 1024, 1024 * 1024 * 1024, 64 * 1024 * 1024) == 1
    }
}
