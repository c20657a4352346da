import NativeBridge

/// Geometry of a 2-D convolution with square stride and symmetric zero padding.
public struct Conv2DGeometry: Sendable, Equatable, Codable {
    public var inChannels: Int
    public var outChannels: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var stride: Int
    public var padding: Int

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernel
        self.kernelWidth = kernel
        self.stride = stride
        self.padding = padding
    }

    /// Rows of the unfolded (im2col) matrix: one per weight of a filter.
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernelHeight) / stride + 1, (width + 2 * padding - kernelWidth) / stride + 1)
    }
}

/// Unfolds patches of `images` NCHW images into columns.
///
/// - `input`: `[images, c, h, w]`.
/// - `columns`: `[c·kh·kw, images·oh·ow]`, row-major; the column of output pixel (oy, ox) of
///   image i is `i·oh·ow + oy·ow + ox`, so one GEMM with the `[outC, c·kh·kw]` weights gives
///   every image's output at once. Out-of-image taps are zero (zero padding).
public func im2col(
    _ input: UnsafePointer<Float>, images: Int, height h: Int, width w: Int,
    geometry g: Conv2DGeometry, columns: UnsafeMutablePointer<Float>
) {
    unfoldImages(
        input, images: images, imageStride: g.inChannels * h * w, channelStride: h * w, height: h, width: w,
        geometry: g, columns: columns)
}

/// The adjoint of `im2col`: adds every column entry back onto the input pixel it was read from.
/// `gradInput` (`[images, c, h, w]`) is accumulated into, not overwritten.
public func col2im(
    _ columns: UnsafePointer<Float>, images: Int, height h: Int, width w: Int,
    geometry g: Conv2DGeometry, gradInput: UnsafeMutablePointer<Float>
) {
    foldImages(
        columns, images: images, imageStride: g.inChannels * h * w, channelStride: h * w, height: h, width: w,
        geometry: g, into: gradInput)
}

/// How many images of `h`×`w` fit in one im2col chunk of at most `Workspace.maxColumnFloats`.
func imagesPerChunk(_ g: Conv2DGeometry, height: Int, width: Int, images: Int) -> Int {
    let (oh, ow) = g.outputSize(height: height, width: width)
    let perImage = max(1, g.patchSize * oh * ow)
    return max(1, min(images, Workspace.maxColumnFloats / perImage))
}

/// 2-D convolution (cross-correlation, as in PyTorch) by im2col + one sgemm per chunk of images.
///
/// - `input`: `[n, inC, h, w]`; `weight`: `[outC, inC, kh, kw]`; `bias`: `[outC]` or nil.
/// - Returns `[n, outC, oh, ow]`.
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor? = nil, geometry g: Conv2DGeometry,
    workspace: inout Workspace
) -> Tensor {
    precondition(input.rank == 4 && input.shape[1] == g.inChannels, "conv2d input \(input.shape) vs \(g)")
    precondition(weight.shape == [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth])
    let n = input.shape[0], h = input.shape[2], w = input.shape[3]
    let (oh, ow) = g.outputSize(height: h, width: w)
    var output = Tensor(shape: [n, g.outChannels, oh, ow])
    conv2d(input, weight: weight, bias: bias, geometry: g, into: &output, workspace: &workspace)
    return output
}

/// `conv2d` writing into a caller-owned output tensor (resized as needed), for allocation-free loops.
public func conv2d(
    _ input: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2DGeometry,
    into output: inout Tensor, workspace: inout Workspace
) {
    let n = input.shape[0], h = input.shape[2], w = input.shape[3]
    let (oh, ow) = g.outputSize(height: h, width: w)
    let plane = oh * ow
    output.resize([n, g.outChannels, oh, ow])
    let chunk = imagesPerChunk(g, height: h, width: w, images: n)
    workspace.ensure(\.columns, g.patchSize * chunk * plane)
    workspace.ensure(\.staging, g.outChannels * chunk * plane)
    let outC = g.outChannels
    input.withUnsafePointer { x in
        weight.withUnsafePointer { wt in
            output.withUnsafeMutablePointer { y in
                workspace.storage.columns.withUnsafeMutableBufferPointer { colsBuf in
                    workspace.storage.staging.withUnsafeMutableBufferPointer { stageBuf in
                        var start = 0
                        while start < n {
                            let count = min(chunk, n - start)
                            im2col(
                                x + start * g.inChannels * h * w, images: count, height: h, width: w,
                                geometry: g, columns: colsBuf.baseAddress!)
                            let cols = count * plane
                            BLAS.sgemm(
                                m: outC, n: cols, k: g.patchSize, a: wt, lda: g.patchSize,
                                b: colsBuf.baseAddress!, ldb: cols, c: stageBuf.baseAddress!, ldc: cols)
                            // [outC, count·plane] → [count, outC, plane]
                            scatterChannelMajor(
                                stageBuf.baseAddress!, channels: outC, images: count, plane: plane,
                                into: y + start * outC * plane)
                            start += count
                        }
                    }
                }
            }
        }
    }
    if let bias { addChannelBias(&output, bias) }
}

/// Gradients of `conv2d`. `gradOutput` is `[n, outC, oh, ow]`.
/// Returns the input gradient (nil when `needInputGradient` is false, e.g. the first layer),
/// the weight gradient `[outC, inC, kh, kw]` and, when `withBias`, the bias gradient `[outC]`.
public func conv2dBackward(
    _ input: Tensor, weight: Tensor, gradOutput: Tensor, geometry g: Conv2DGeometry,
    needInputGradient: Bool = true, withBias: Bool = false, workspace: inout Workspace
) -> (input: Tensor?, weight: Tensor, bias: Tensor?) {
    let n = input.shape[0], h = input.shape[2], w = input.shape[3]
    let (oh, ow) = g.outputSize(height: h, width: w)
    let plane = oh * ow
    let outC = g.outChannels, k = g.patchSize
    var gradWeight = Tensor(shape: weight.shape)
    var gradInput: Tensor? = needInputGradient ? Tensor(shape: input.shape) : nil
    let chunk = imagesPerChunk(g, height: h, width: w, images: n)
    workspace.ensure(\.columns, k * chunk * plane)
    workspace.ensure(\.staging, outC * chunk * plane)
    if needInputGradient { workspace.ensure(\.gradColumns, k * chunk * plane) }
    var gi = gradInput?.scalars ?? []
    input.withUnsafePointer { x in
        weight.withUnsafePointer { wt in
            gradOutput.withUnsafePointer { gy in
                gradWeight.withUnsafeMutablePointer { gw in
                    workspace.storage.columns.withUnsafeMutableBufferPointer { colsBuf in
                        workspace.storage.staging.withUnsafeMutableBufferPointer { stageBuf in
                            workspace.storage.gradColumns.withUnsafeMutableBufferPointer { gcolBuf in
                                gi.withUnsafeMutableBufferPointer { giBuf in
                                    var start = 0
                                    while start < n {
                                        let count = min(chunk, n - start)
                                        let cols = count * plane
                                        im2col(
                                            x + start * g.inChannels * h * w, images: count, height: h, width: w,
                                            geometry: g, columns: colsBuf.baseAddress!)
                                        gatherChannelMajor(
                                            gy + start * outC * plane, channels: outC, images: count,
                                            plane: plane, into: stageBuf.baseAddress!)
                                        // dW[outC, k] += dY[outC, cols] · cols[k, cols]ᵀ
                                        BLAS.sgemm(
                                            transB: true, m: outC, n: k, k: cols, a: stageBuf.baseAddress!,
                                            lda: cols, b: colsBuf.baseAddress!, ldb: cols,
                                            beta: start == 0 ? 0 : 1, c: gw, ldc: k)
                                        if needInputGradient {
                                            // dCols[k, cols] = Wᵀ · dY
                                            BLAS.sgemm(
                                                transA: true, m: k, n: cols, k: outC, a: wt, lda: k,
                                                b: stageBuf.baseAddress!, ldb: cols,
                                                c: gcolBuf.baseAddress!, ldc: cols)
                                            col2im(
                                                gcolBuf.baseAddress!, images: count, height: h, width: w,
                                                geometry: g, gradInput: giBuf.baseAddress! + start * g.inChannels * h * w)
                                        }
                                        start += count
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if needInputGradient { gradInput = Tensor(shape: input.shape, scalars: gi) }
    let gradBias = withBias ? channelSums(gradOutput) : nil
    return (gradInput, gradWeight, gradBias)
}

/// `[channels, images·plane]` → `[images, channels, plane]`.
public func scatterChannelMajor(
    _ src: UnsafePointer<Float>, channels: Int, images: Int, plane: Int, into dst: UnsafeMutablePointer<Float>
) {
    let s = SharedPointer(UnsafeMutablePointer(mutating: src)), d = SharedPointer(dst)
    Parallel.forEach(images, grain: max(1, 32768 / max(1, channels * plane))) { range in
        for i in range {
            for c in 0..<channels {
                (d.base + (i * channels + c) * plane).update(from: s.base + c * images * plane + i * plane, count: plane)
            }
        }
    }
}

/// `[images, channels, plane]` → `[channels, images·plane]` (the inverse of `scatterChannelMajor`).
public func gatherChannelMajor(
    _ src: UnsafePointer<Float>, channels: Int, images: Int, plane: Int, into dst: UnsafeMutablePointer<Float>
) {
    let s = SharedPointer(UnsafeMutablePointer(mutating: src)), d = SharedPointer(dst)
    Parallel.forEach(images, grain: max(1, 32768 / max(1, channels * plane))) { range in
        for i in range {
            for c in 0..<channels {
                (d.base + c * images * plane + i * plane).update(from: s.base + (i * channels + c) * plane, count: plane)
            }
        }
    }
}

/// Adds `bias[c]` to every element of channel c of an NCHW (or `[n, c]`) tensor.
public func addChannelBias(_ x: inout Tensor, _ bias: Tensor) {
    let n = x.shape[0], c = x.shape[1]
    let plane = x.count / max(1, n * c)
    precondition(bias.count == c)
    bias.withUnsafePointer { b in
        x.withUnsafeMutablePointer { p in
            for i in 0..<n {
                for ch in 0..<c {
                    let v = b[ch]
                    let q = p + (i * c + ch) * plane
                    for j in 0..<plane { q[j] += v }
                }
            }
        }
    }
}

/// Sums of an NCHW (or `[n, c]`) tensor per channel: the bias gradient.
public func channelSums(_ x: Tensor) -> Tensor {
    let n = x.shape[0], c = x.shape[1]
    let plane = x.count / max(1, n * c)
    var out = Tensor(shape: [c])
    x.withUnsafePointer { p in
        for i in 0..<n {
            for ch in 0..<c {
                var s: Float = 0
                let q = p + (i * c + ch) * plane
                for j in 0..<plane { s += q[j] }
                out.scalars[ch] += s
            }
        }
    }
    return out
}
