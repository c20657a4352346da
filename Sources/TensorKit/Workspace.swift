/// Reusable scratch memory for kernels (im2col columns, GEMM staging), owned by one caller at a
/// time. Buffers only grow, so a steady-state training or inference loop allocates nothing.
///
/// Scratch has no value worth copying: a copy of a `Workspace` (e.g. an engine copied out of a
/// cache) gets fresh buffers on first use instead of silently duplicating the original's, which
/// are sized for the largest batch seen. `allocatedFloats` counts every float of scratch this
/// workspace has allocated, so a caller can check that steady-state calls allocate none.
public struct Workspace: Sendable {
    /// Only reached through `Workspace`'s mutating accessors, which replace a shared instance
    /// before use, so one `Storage` is never used by two owners at once.
    final class Storage: @unchecked Sendable {
        var columns: [Float] = []
        var staging: [Float] = []
        var gradColumns: [Float] = []
    }

    private(set) var storage = Storage()
    /// Floats of scratch allocated so far (grown buffers, and fresh buffers after a copy).
    public private(set) var allocatedFloats = 0

    public init() {}

    /// Largest number of floats one im2col buffer may take (64 MiB); bigger batches are chunked.
    public static let maxColumnFloats = 16 << 20

    /// Makes `buffer` hold at least `count` floats (contents unspecified) and returns the storage.
    @discardableResult
    mutating func ensure(_ buffer: ReferenceWritableKeyPath<Storage, [Float]>, _ count: Int) -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage() }
        if storage[keyPath: buffer].count < count {
            storage[keyPath: buffer] = [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
            allocatedFloats += count
        }
        return storage
    }
}
