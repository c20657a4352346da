import TensorKit

/// The activations of T·b simulation frames (T steps × b images), laid out for the engine:
///
/// - feature maps `[C, H, W]` are stored channel-major, `[C, T·b, H, W]`;
/// - flat features `[N]` are stored frame-major, `[T·b, N]`.
///
/// Frames are time-major: frame `t·b + i` is image i at step t. In both layouts the values of one
/// channel group at one step form one contiguous block of b·P values (P = H·W, or N for flat
/// features with a single group), which is what the neuron recurrence walks.
public struct Frames: Sendable {
    public var scalars: [Float]
    public var shape: FeatureShape
    public var timesteps: Int
    public var images: Int

    public init(shape: FeatureShape, timesteps: Int, images: Int) {
        self.shape = shape
        self.timesteps = timesteps
        self.images = images
        self.scalars = [Float](repeating: 0, count: shape.reduce(1, *) * timesteps * images)
    }

    /// Frames whose values are left uninitialised, for kernels that write every one of them.
    public init(uninitializedShape shape: FeatureShape, timesteps: Int, images: Int) {
        self.shape = shape
        self.timesteps = timesteps
        self.images = images
        let count = shape.reduce(1, *) * timesteps * images
        self.scalars = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    public init(scalars: [Float], shape: FeatureShape, timesteps: Int, images: Int) {
        precondition(scalars.count == shape.reduce(1, *) * timesteps * images)
        self.scalars = scalars
        self.shape = shape
        self.timesteps = timesteps
        self.images = images
    }

    public var frames: Int { timesteps * images }
    public var isMap: Bool { shape.count == 3 }
    /// Channel groups: C for maps, 1 for flat features.
    public var groups: Int { isMap ? shape[0] : 1 }
    /// Values per image per group: H·W for maps, N for flat features.
    public var perImage: Int { isMap ? shape[1] * shape[2] : shape[0] }
    /// One group's values at one step.
    public var blockLength: Int { images * perImage }

    /// Offset of (group, step) block.
    @inline(__always) public func blockOffset(group g: Int, step t: Int) -> Int { (g * timesteps + t) * blockLength }

    /// Multiplies every value by `factor` (spikes that stand for more than 1).
    public mutating func scale(by factor: Float) {
        scalars.withUnsafeMutableBufferPointer { v in
            let p = SharedPointer(v.baseAddress!)
            Parallel.forEach(v.count, grain: 1 << 16) { range in
                for i in range { p.base[i] *= factor }
            }
        }
    }

    /// Sets every value of image `image` to zero, at every step.
    public mutating func zero(image: Int) {
        let per = perImage
        for block in 0..<(groups * timesteps) {
            let start = (block * images + image) * per
            for k in start..<(start + per) { scalars[k] = 0 }
        }
    }

    /// The frames of images `keep` (indices into `images`), in that order.
    public func selecting(_ keep: [Int]) -> Frames {
        Frames(
            scalars: Self.select(scalars, groups: groups, steps: timesteps, images: images, keep: keep), shape: shape,
            timesteps: timesteps, images: keep.count)
    }

    /// Values laid out `[groups][steps][images][P]` with only the images `keep`.
    static func select(_ values: [Float], groups: Int, steps: Int, images: Int, keep: [Int]) -> [Float] {
        let per = values.count / max(1, groups * steps * images)
        var out = [Float]()
        out.reserveCapacity(groups * steps * keep.count * per)
        values.withUnsafeBufferPointer { v in
            for block in 0..<(groups * steps) {
                for i in keep {
                    let start = (block * images + i) * per
                    out.append(contentsOf: v[start..<(start + per)])
                }
            }
        }
        return out
    }

    /// Flat features of every frame `[T·b, C·H·W]` in PyTorch's flatten order (c, h, w).
    public func flattened() -> Frames {
        guard isMap else { return self }
        var out = Frames(shape: [shape.reduce(1, *)], timesteps: timesteps, images: images)
        let c = shape[0], p = perImage, f = frames
        scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                let s = SharedPointer(UnsafeMutablePointer(mutating: src.baseAddress!)), d = SharedPointer(dst.baseAddress!)
                Parallel.forEach(f, grain: 16) { range in
                    for frame in range {
                        for ch in 0..<c {
                            (d.base + frame * c * p + ch * p).update(from: s.base + (ch * f + frame) * p, count: p)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Inverse of `flattened` (for gradients flowing back into feature maps).
    public func unflattened(to mapShape: FeatureShape) -> Frames {
        var out = Frames(shape: mapShape, timesteps: timesteps, images: images)
        let c = mapShape[0], p = mapShape[1] * mapShape[2], f = frames
        scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                let s = SharedPointer(UnsafeMutablePointer(mutating: src.baseAddress!)), d = SharedPointer(dst.baseAddress!)
                Parallel.forEach(f, grain: 16) { range in
                    for frame in range {
                        for ch in 0..<c {
                            (d.base + (ch * f + frame) * p).update(from: s.base + frame * c * p + ch * p, count: p)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The same frames repeated over `timesteps` steps (a layer input that does not change with
    /// t, such as direct input, computed for one step).
    public func repeated(timesteps t: Int) -> Frames {
        precondition(timesteps == 1)
        var out = Frames(shape: shape, timesteps: t, images: images)
        let (g, l) = (groups, blockLength)
        scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                for group in 0..<g {
                    for step in 0..<t {
                        (dst.baseAddress! + (group * t + step) * l).update(from: src.baseAddress! + group * l, count: l)
                    }
                }
            }
        }
        return out
    }

    /// The sum over steps, as one step: the gradient of a current that is the same at every step.
    public func summedOverSteps() -> Frames {
        var out = Frames(shape: shape, timesteps: 1, images: images)
        let (t, l) = (timesteps, blockLength)
        scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                let s = SharedPointer(UnsafeMutablePointer(mutating: src.baseAddress!)), d = SharedPointer(dst.baseAddress!)
                Parallel.forEach(groups * l, grain: 4096) { range in
                    Self.forEachSegment(range, blockLength: l) { g, j0, len in
                        let out = d.base + g * l + j0
                        for step in 0..<t {
                            let block = s.base + (g * t + step) * l + j0
                            for j in 0..<len { out[j] += block[j] }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Splits a range of neuron indices (group-major, groups × `blockLength`) at group boundaries:
    /// calls `body(group, first index in the block, count)` for each piece.
    @inline(__always)
    public static func forEachSegment(
        _ range: Range<Int>, blockLength l: Int,
        _ body: (_ group: Int, _ first: Int, _ count: Int) -> Void
    ) {
        var n = range.lowerBound
        while n < range.upperBound {
            let g = n / l, j0 = n % l
            let len = min(range.upperBound - n, l - j0)
            body(g, j0, len)
            n += len
        }
    }

    /// Moves every block one step later in time; step 0 becomes zero (the reference code's lag).
    public mutating func delayOneStep() {
        let (g, t, l) = (groups, timesteps, blockLength)
        scalars.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            for group in 0..<g {
                for step in stride(from: t - 1, to: 0, by: -1) {
                    (p + (group * t + step) * l).update(from: p + (group * t + step - 1) * l, count: l)
                }
                (p + group * t * l).update(repeating: 0, count: l)
            }
        }
    }
}

extension Frames {
    /// A convolution layer over every frame: one GEMM per chunk of frames, channel-major in and out.
    func convolved(_ layer: Layer.Convolution, workspace: inout Workspace) -> Frames {
        let g = layer.geometry
        let (oh, ow) = g.outputSize(height: shape[1], width: shape[2])
        var out = Frames(uninitializedShape: [g.outChannels, oh, ow], timesteps: timesteps, images: images)
        let w = layer.weight
        let bias = layer.bias?.scalars
        let (frames, h, wd) = (self.frames, shape[1], shape[2])
        scalars.withUnsafeBufferPointer { src in
            w.withUnsafePointer { wp in
                out.scalars.withUnsafeMutableBufferPointer { dst in
                    (bias ?? []).withUnsafeBufferPointer { bp in
                        conv2dChannelMajor(
                            src.baseAddress!, frames: frames, height: h, width: wd, weight: wp,
                            bias: bias == nil ? nil : bp.baseAddress, geometry: g,
                            output: dst.baseAddress!, workspace: &workspace)
                    }
                }
            }
        }
        return out
    }

    /// A linear layer over every frame of flat features: `[T·b, in]` → `[T·b, out]`.
    func linear(_ layer: Layer.Linear) -> Frames {
        let input = Tensor(shape: [frames, shape[0]], scalars: scalars)
        let y = TensorKit.linear(input, weight: layer.weight, bias: layer.bias)
        return Frames(scalars: y.scalars, shape: [layer.outFeatures], timesteps: timesteps, images: images)
    }

    /// The event-driven form of `convolved`: same sums, work proportional to the input events.
    func convolvedEventDriven(_ layer: Layer.Convolution, weightT: [Float]) -> Frames {
        let g = layer.geometry
        let (oh, ow) = g.outputSize(height: shape[1], width: shape[2])
        var out = Frames(uninitializedShape: [g.outChannels, oh, ow], timesteps: timesteps, images: images)
        let (frames, h, wd) = (self.frames, shape[1], shape[2])
        withEventOperands(weightT, bias: layer.bias, into: &out) { x, wt, bias, y in
            eventConv2dChannelMajor(x, frames: frames, height: h, width: wd, weightT: wt, bias: bias, geometry: g, output: y)
        }
        return out
    }

    /// The event-driven form of `flattened().linear(...)`: reads maps or flat features in place.
    func linearEventDriven(_ layer: Layer.Linear, weightT: [Float]) -> Frames {
        let outF = layer.outFeatures
        var out = Frames(uninitializedShape: [outF], timesteps: timesteps, images: images)
        let (frames, groups, per) = (self.frames, self.groups, self.perImage)
        withEventOperands(weightT, bias: layer.bias, into: &out) { x, wt, bias, y in
            eventLinear(x, frames: frames, groups: groups, perGroup: per, weightT: wt, bias: bias, outFeatures: outF, output: y)
        }
        return out
    }

    /// Pointers to these frames, the transposed weights, the optional bias and the output.
    private func withEventOperands(
        _ weightT: [Float], bias: Tensor?, into out: inout Frames,
        _ body: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>) -> Void
    ) {
        scalars.withUnsafeBufferPointer { src in
            weightT.withUnsafeBufferPointer { wt in
                out.scalars.withUnsafeMutableBufferPointer { dst in
                    (bias?.scalars ?? []).withUnsafeBufferPointer { bp in
                        body(src.baseAddress!, wt.baseAddress!, bias == nil ? nil : bp.baseAddress, dst.baseAddress!)
                    }
                }
            }
        }
    }
}
