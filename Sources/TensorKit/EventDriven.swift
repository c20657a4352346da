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
    let block = 32  // 32×32 tiles: both the reads and the writes stay within a few cache lines per row
    return [Float](unsafeUninitializedCapacity: weight.count) { t, n in
        weight.scalars.withUnsafeBufferPointer { w in
            for r0 in stride(from: 0, to: rows, by: block) {
                for c0 in stride(from: 0, to: cols, by: block) {
                    for r in r0..<min(rows, r0 + block) {
                        for c in c0..<min(cols, c0 + block) { t[c * rows + r] = w[r * cols + c] }
                    }
                }
            }
        }
        n = weight.count
    }
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
            sn_event_conv2d(
                x.base, Int64(frames), Int64(range.lowerBound), Int64(range.count), Int64(g.inChannels),
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
        sn_event_linear(
            x.base, Int64(frames), Int64(range.lowerBound), Int64(range.count), Int64(groups),
            Int64(perGroup), wt.base, b?.base, Int64(outFeatures), y.base)
    }
}

/// Number of non-zero values: the input events of a layer.
public func nonzeroCount(_ x: UnsafeBufferPointer<Float>) -> Int {
    guard let base = x.baseAddress else { return 0 }
    return Int(sn_count_nonzero(base, Int64(x.count)))
}

/// Event-driven dW of a linear layer over frames: `input` `[frames, in]` (mostly zero), `gradOutput`
/// `[frames, out]` → dW `[out, in]`, the same sums as `linearBackward`'s GEMM dYᵀ·X. Work: one
/// `out`-vector addition per non-zero input. Input features are split over the cores.
public func eventLinearWeightGradient(_ input: Tensor, gradOutput: Tensor) -> Tensor {
    let (frames, inF, outF) = (input.shape[0], input.shape[1], gradOutput.shape[1])
    var dwt = Tensor(shape: [inF, outF])
    input.withUnsafePointer { x in
        gradOutput.withUnsafePointer { gy in
            dwt.withUnsafeMutablePointer { d in
                let xs = SharedPointer(UnsafeMutablePointer(mutating: x)), gs = SharedPointer(UnsafeMutablePointer(mutating: gy))
                let ds = SharedPointer(d)
                Parallel.forEach(inF, grain: 64) { range in
                    sn_event_linear_weight_grad(
                        xs.base, Int64(frames), Int64(inF), gs.base, Int64(outF),
                        Int64(range.lowerBound), Int64(range.count), ds.base)
                }
            }
        }
    }
    return Tensor(shape: [outF, inF], scalars: eventDrivenWeights(dwt))
}

/// Event-driven dW of a channel-major convolution: `input` `[inC, frames, h, w]` (mostly zero),
/// `gradOutput` `[outC, frames, oh, ow]` → dW `[outC, inC, kh, kw]`, the same sums as
/// `conv2dChannelMajorBackward`'s GEMM. Work: `kh·kw` additions of an `outC`-vector per non-zero
/// input, after one transpose of the output gradient to channels-last. Input channels are split
/// over the cores.
public func eventConv2dChannelMajorWeightGradient(
    _ input: UnsafePointer<Float>, frames: Int, height h: Int, width w: Int,
    gradOutput: UnsafePointer<Float>, geometry g: Conv2DGeometry
) -> Tensor {
    let (oh, ow) = g.outputSize(height: h, width: w)
    let plane = oh * ow
    var last = [Float](unsafeUninitializedCapacity: frames * plane * g.outChannels) { _, n in n = frames * plane * g.outChannels }
    var dwt = Tensor(shape: [g.patchSize, g.outChannels])
    let x = SharedPointer(UnsafeMutablePointer(mutating: input)), gy = SharedPointer(UnsafeMutablePointer(mutating: gradOutput))
    last.withUnsafeMutableBufferPointer { lb in
        let l = SharedPointer(lb.baseAddress!)
        Parallel.forEach(frames, grain: 4) { range in
            sn_channels_last(
                gy.base, Int64(g.outChannels), Int64(frames), Int64(plane), Int64(range.lowerBound),
                Int64(range.count), l.base)
        }
        dwt.withUnsafeMutablePointer { d in
            let ds = SharedPointer(d)
            Parallel.forEach(g.inChannels) { channels in
                sn_event_conv2d_weight_grad(
                    x.base, Int64(frames), Int64(g.inChannels), Int64(h), Int64(w), l.base,
                    Int64(g.outChannels), Int64(g.kernelHeight), Int64(g.kernelWidth),
                    Int64(g.stride), Int64(g.padding), Int64(oh), Int64(ow),
                    Int64(channels.lowerBound), Int64(channels.count), ds.base)
            }
        }
    }
    return Tensor(shape: [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth], scalars: eventDrivenWeights(dwt))
}
