/// Reusable scratch memory for kernels (im2col columns, GEMM staging). Owned by one caller at a
/// time; buffers only grow, so a steady-state training or inference loop allocates nothing.
public struct Workspace: Sendable {
    var columns: [Float] = []
    var staging: [Float] = []
    var gradColumns: [Float] = []

    public init() {}

    /// Largest number of floats one im2col buffer may take (64 MiB); bigger batches are chunked.
    public static let maxColumnFloats = 16 << 20

    static func ensure(_ buffer: inout [Float], _ count: Int) {
        if buffer.count < count { buffer = [Float](repeating: 0, count: count) }
    }
}
