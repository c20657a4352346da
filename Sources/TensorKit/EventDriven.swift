import CSynapse

// Event-driven synaptic layers. A GEMM costs the same whether its input is spikes or not; these
// kernels cost one weight-row addition per non-zero input value (an input *event*) and per target
// it reaches, so their time falls with the spike rate. They compute the same sums as the dense
// kernels (`conv2dChannelMajor`, `linear`), in a different order, so results agree to float
// rounding, not bit for bit.

/// Weights transposed so that one input's fan-out is a contiguous row.
///
/// - conv2d `[outC, inC, kh, kw]` → `[inC·kh·kw, outC]`;
/// - linear `[out, in]` → `[in, out]`.
public func eventDrivenWeights(_ weight: Tensor) -> [Float] {
    let rows = weight.shape[0], cols = weight.count / max(1, weight.shape[0])
    var t = [Float](repeating: 0, count: weight.count)
    weight.scalars.withUnsafeBufferPointer { w in
        for r in 0..<rows {
            for c in 0..<cols { t[c * rows + r] = w[r * cols + c] }
        }
    }
    return t
}

/// Event-driven convolution of channel-major frames: `input` `[inC, frames, h, w]` → `output`
/// `[outC, frames, oh, ow]` (overwritten), with `weightT` from `eventDrivenWeights`.
/// Work: for each non-zero input value, `kh·kw` additions of an `outC`-vector. Frames are split
/// over the cores.
public func eventConv2dChannelMajor(
    _ input: UnsafePointer<Float>, frames: Int, height h: Int, width w: Int,
    weightT: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
    output: UnsafeMutablePointer<Float>
) {
    let (oh, ow) = g.outputSize(height: h, width: w)
    let x = SharedPointer(UnsafeMutablePointer(mutating: input)), y = SharedPointer(output)
    let wt = SharedPointer(UnsafeMutablePointer(mutating: weightT))
    let b = bias.map { SharedPointer(UnsafeMutablePointer(mutating: $0)) }
    Parallel.forEach(frames, grain: 4) { range in
        // One frame's output, channels last: the rows the kernel adds into stay in cache.
        var scratch = [Float](repeating: 0, count: oh * ow * g.outChannels)
        scratch.withUnsafeMutableBufferPointer { s in
            sn_event_conv2d(x.base, Int64(frames), Int64(range.lowerBound), Int64(range.count), Int64(g.inChannels),
                            Int64(h), Int64(w), wt.base, b?.base, Int64(g.outChannels), Int64(g.kernelHeight),
                            Int64(g.kernelWidth), Int64(g.stride), Int64(g.padding), Int64(oh), Int64(ow), y.base,
                            s.baseAddress!)
        }
    }
}

/// Event-driven linear layer over frames. Input element (frame f, feature `g·per + p`) is at
/// `input[(g·frames + f)·per + p]`, which reads channel-major maps (`groups` = C, `per` = H·W, in
/// PyTorch's flatten order) and flat frame-major features (`groups` = 1) alike, so a flatten
/// needs no copy. `output` `[frames, out]` is overwritten. Work: one `out`-vector addition per
/// non-zero input value.
public func eventLinear(
    _ input: UnsafePointer<Float>, frames: Int, groups: Int, perGroup: Int,
    weightT: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int, output: UnsafeMutablePointer<Float>
) {
    let x = SharedPointer(UnsafeMutablePointer(mutating: input)), y = SharedPointer(output)
    let wt = SharedPointer(UnsafeMutablePointer(mutating: weightT))
    let b = bias.map { SharedPointer(UnsafeMutablePointer(mutating: $0)) }
    Parallel.forEach(frames, grain: 4) { range in
        sn_event_linear(x.base, Int64(frames), Int64(range.lowerBound), Int64(range.count), Int64(groups),
                        Int64(perGroup), wt.base, b?.base, Int64(outFeatures), y.base)
    }
}

/// Number of non-zero values: the input events of a layer.
public func nonzeroCount(_ x: UnsafeBufferPointer<Float>) -> Int {
    guard let base = x.baseAddress else { return 0 }
    return Int(sn_count_nonzero(base, Int64(x.count)))
}
