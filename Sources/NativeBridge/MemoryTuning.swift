import CNative

public enum MemoryTuning {
    /// Keeps large blocks in the heap instead of returning them to the OS after each use.
    ///
    /// glibc serves allocations above its mmap threshold with fresh mmap'd pages, so a simulation
    /// that allocates and frees the same 100 MB of activations per batch pays a page fault per 4 KiB
    /// every time (measured: ~10% of SNN inference time). Raising the mmap and trim thresholds makes
    /// freed blocks reusable, trading a higher resident size for steady-state speed.
    public static func keepLargeAllocations() {
        sn_keep_large_allocations()
    }
}
