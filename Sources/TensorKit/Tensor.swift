/// A dense Float32 tensor in row-major order. Image tensors are NCHW: `[batch, channels, height, width]`.
///
/// Storage is a Swift array, so copies are copy-on-write and a `Tensor` is a plain `Sendable`
/// value. Kernels reach the elements through `withUnsafe…` pointers and never index element-wise
/// through the array on hot paths.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var scalars: [Float]

    public init(shape: [Int], repeating value: Float = 0) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.reduce(1, *))
    }

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not hold \(scalars.count) scalars")
        self.shape = shape
        self.scalars = scalars
    }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }

    /// The same scalars under another shape with the same element count (a flatten is a reshape).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    public mutating func reshape(_ newShape: [Int]) {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        shape = newShape
    }

    /// Makes the tensor hold `newShape`, reusing the allocation when it is large enough.
    /// Contents are unspecified afterwards unless `zero` is set.
    public mutating func resize(_ newShape: [Int], zero: Bool = false) {
        let n = newShape.reduce(1, *)
        shape = newShape
        if scalars.count != n {
            if scalars.capacity >= n {
                scalars.removeAll(keepingCapacity: true)
                scalars.append(contentsOf: repeatElement(0, count: n))
                return
            }
            scalars = [Float](repeating: 0, count: n)
        } else if zero {
            scalars.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
    }

    @inlinable
    public func withUnsafePointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    @inlinable
    public mutating func withUnsafeMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    public subscript(index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "index \(index) out of range for shape \(shape)")
            flat = flat * d + i
        }
        return flat
    }
}

extension Tensor {
    /// Sum of squares, for norms in tests and logging.
    public var squaredNorm: Float { scalars.reduce(0) { $0 + $1 * $1 } }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        precondition(a.shape == b.shape)
        return Tensor(shape: a.shape, scalars: zip(a.scalars, b.scalars).map { $0 + $1 })
    }
}
