import CSynapse
import NativeBridge

// Channel-major ("CNHW") convolution for the SNN engine. An SNN simulates T·b frames per layer;
// keeping them as `[channels, frames, h, w]` means the GEMM's natural output `[outC, frames·oh·ow]`
// *is* the next layer's layout, so no transposes are needed between layers, and a spiking layer's
// recurrence over t reads contiguous `[frames of step t]` blocks per channel.

/// im2col from a channel-major input.
///
/// - `input`: `[c, frames, h, w]`, of which frames `first..<first+count` are unfolded.
/// - `columns`: `[c·kh·kw, count·oh·ow]`; the column of output pixel (oy, ox) of frame f is
///   `(f − first)·oh·ow + oy·ow + ox`.
public func im2colChannelMajor(
    _ input: UnsafePointer<Float>, frames: Int, first: Int, count: Int, height h: Int, width w: Int,
    geometry g: Conv2DGeometry, columns: UnsafeMutablePointer<Float>
) {
    unfoldImages(
        input + first * h * w, images: count, imageStride: h * w, channelStride: frames * h * w,
        height: h, width: w, geometry: g, columns: columns)
}

/// im2col for any layout where image i, channel c starts at `i·imageStride + c·channelStride`
/// (NCHW: C·H·W and H·W; channel-major frames: H·W and frames·H·W). Rows (c, ky, kx) are split
/// over the cores; each row is written by exactly one chunk.
func unfoldImages(
    _ input: UnsafePointer<Float>, images: Int, imageStride: Int, channelStride: Int, height h: Int, width w: Int,
    geometry g: Conv2DGeometry, columns: UnsafeMutablePointer<Float>
) {
    let (oh, ow) = g.outputSize(height: h, width: w)
    let plane = oh * ow
    let rowLength = images * plane
    let out = SharedPointer(columns)
    let src = SharedPointer(UnsafeMutablePointer(mutating: input))
    Parallel.forEach(g.patchSize, grain: max(1, 65536 / max(1, rowLength))) { rows in
        for row in rows {
            let kx = row % g.kernelWidth
            let ky = (row / g.kernelWidth) % g.kernelHeight
            let c = row / (g.kernelWidth * g.kernelHeight)
            let dstRow = out.base + row * rowLength
            for i in 0..<images {
                unfoldPlane(
                    src.base + i * imageStride + c * channelStride, height: h, width: w, ky: ky, kx: kx, geometry: g,
                    outHeight: oh, outWidth: ow, into: dstRow + i * plane)
            }
        }
    }
}

/// The adjoint of `unfoldImages`: accumulates columns back into the images. Chunks own whole
/// input channels, so no two chunks add into the same pixel (`sn_fold_images`).
func foldImages(
    _ columns: UnsafePointer<Float>, images: Int, imageStride: Int, channelStride: Int, height h: Int, width w: Int,
    geometry g: Conv2DGeometry, into gradInput: UnsafeMutablePointer<Float>
) {
    let (oh, ow) = g.outputSize(height: h, width: w)
    let dst = SharedPointer(gradInput)
    let cols = SharedPointer(UnsafeMutablePointer(mutating: columns))
    Parallel.forEach(g.inChannels) { channels in
        sn_fold_images(
            cols.base, Int64(images), Int64(imageStride), Int64(channelStride), Int64(h), Int64(w),
            Int64(g.kernelHeight), Int64(g.kernelWidth), Int64(g.stride), Int64(g.padding), Int64(oh), Int64(ow),
            Int64(channels.lowerBound), Int64(channels.count), dst.base)
    }
}

/// Writes the `oh×ow` taps (ky, kx) of one input plane, zero outside the image.
@inline(__always)
func unfoldPlane(
    _ src: UnsafeMutablePointer<Float>, height h: Int, width w: Int, ky: Int, kx: Int,
    geometry g: Conv2DGeometry, outHeight oh: Int, outWidth ow: Int, into dst: UnsafeMutablePointer<Float>
) {
    for oy in 0..<oh {
        let iy = oy * g.stride - g.padding + ky
        let d = dst + oy * ow
        if iy < 0 || iy >= h {
            d.update(repeating: 0, count: ow)
            continue
        }
        let srcRow = src + iy * w
        if g.stride == 1 {
            let lo = max(0, g.padding - kx)
            let hi = min(ow, w + g.padding - kx)
            if lo > 0 { d.update(repeating: 0, count: lo) }
            if hi > lo { d.advanced(by: lo).update(from: srcRow + (lo - g.padding + kx), count: hi - lo) }
            if hi < ow { d.advanced(by: max(hi, lo)).update(repeating: 0, count: ow - max(hi, lo)) }
        } else {
            for ox in 0..<ow {
                let ix = ox * g.stride - g.padding + kx
                d[ox] = (ix >= 0 && ix < w) ? srcRow[ix] : 0
            }
        }
    }
}

/// Adjoint of `im2colChannelMajor`: accumulates columns back into `gradInput` `[c, frames, h, w]`.
public func col2imChannelMajor(
    _ columns: UnsafePointer<Float>, frames: Int, first: Int, count: Int, height h: Int, width w: Int,
    geometry g: Conv2DGeometry, gradInput: UnsafeMutablePointer<Float>
) {
    foldImages(
        columns, images: count, imageStride: h * w, channelStride: frames * h * w, height: h, width: w,
        geometry: g, into: gradInput + first * h * w)
}

/// Convolution of channel-major frames: `input` `[inC, frames, h, w]` → `output` `[outC, frames, oh, ow]`.
/// One sgemm per chunk of frames writes straight into the output (row stride frames·oh·ow).
public func conv2dChannelMajor(
    _ input: UnsafePointer<Float>, frames: Int, height h: Int, width w: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, geometry g: Conv2DGeometry,
    output: UnsafeMutablePointer<Float>, workspace: inout Workspace
) {
    let (oh, ow) = g.outputSize(height: h, width: w)
    let plane = oh * ow
    let chunk = imagesPerChunk(g, height: h, width: w, images: frames)
    workspace.ensure(\.columns, g.patchSize * chunk * plane)
    let ldc = frames * plane
    workspace.storage.columns.withUnsafeMutableBufferPointer { colsBuf in
        var start = 0
        while start < frames {
            let count = min(chunk, frames - start)
            let cols = count * plane
            let b: UnsafePointer<Float>
            if g.kernelHeight == 1 && g.kernelWidth == 1 && g.stride == 1 && g.padding == 0 {
                // A 1×1 convolution's columns are the input itself: [inC, frames·plane] with stride ldc.
                b = input + start * plane
                BLAS.sgemm(
                    m: g.outChannels, n: cols, k: g.patchSize, a: weight, lda: g.patchSize,
                    b: b, ldb: frames * h * w, c: output + start * plane, ldc: ldc)
            } else {
                im2colChannelMajor(
                    input, frames: frames, first: start, count: count, height: h, width: w,
                    geometry: g, columns: colsBuf.baseAddress!)
                BLAS.sgemm(
                    m: g.outChannels, n: cols, k: g.patchSize, a: weight, lda: g.patchSize,
                    b: colsBuf.baseAddress!, ldb: cols, c: output + start * plane, ldc: ldc)
            }
            start += count
        }
    }
    if let bias {
        let out = SharedPointer(output)
        Parallel.forEach(g.outChannels) { channels in
            for o in channels {
                let v = bias[o]
                let row = out.base + o * ldc
                for j in 0..<ldc { row[j] += v }
            }
        }
    }
}

/// Gradients of `conv2dChannelMajor`.
///
/// - `gradOutput`: `[outC, frames, oh, ow]`.
/// - `gradWeight`: `[outC, inC·kh·kw]`, overwritten: one GEMM per chunk of frames (all frames
///   when they fit the workspace), accumulated over chunks; skipped when nil (the caller computes
///   it another way, e.g. event-driven).
/// - `gradInput`: `[inC, frames, h, w]`, accumulated into (zero it first); skipped when nil.
public func conv2dChannelMajorBackward(
    _ input: UnsafePointer<Float>, frames: Int, height h: Int, width w: Int,
    weight: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>, geometry g: Conv2DGeometry,
    gradWeight: UnsafeMutablePointer<Float>?, gradInput: UnsafeMutablePointer<Float>?, workspace: inout Workspace
) {
    let (oh, ow) = g.outputSize(height: h, width: w)
    let plane = oh * ow
    let k = g.patchSize
    let chunk = imagesPerChunk(g, height: h, width: w, images: frames)
    workspace.ensure(\.columns, gradWeight == nil ? 0 : k * chunk * plane)
    if gradInput != nil { workspace.ensure(\.gradColumns, k * chunk * plane) }
    let ldg = frames * plane
    workspace.storage.columns.withUnsafeMutableBufferPointer { colsBuf in
        workspace.storage.gradColumns.withUnsafeMutableBufferPointer { gcolBuf in
            var start = 0
            while start < frames {
                let count = min(chunk, frames - start)
                let cols = count * plane
                if let gradWeight {
                    im2colChannelMajor(
                        input, frames: frames, first: start, count: count, height: h, width: w,
                        geometry: g, columns: colsBuf.baseAddress!)
                    // dW[outC, k] (+)= dY[outC, cols] · colsᵀ
                    BLAS.sgemm(
                        transB: true, m: g.outChannels, n: k, k: cols, a: gradOutput + start * plane, lda: ldg,
                        b: colsBuf.baseAddress!, ldb: cols, beta: start == 0 ? 0 : 1, c: gradWeight, ldc: k)
                }
                if let gradInput {
                    BLAS.sgemm(
                        transA: true, m: k, n: cols, k: g.outChannels, a: weight, lda: k,
                        b: gradOutput + start * plane, ldb: ldg, c: gcolBuf.baseAddress!, ldc: cols)
                    col2imChannelMajor(
                        gcolBuf.baseAddress!, frames: frames, first: start, count: count, height: h, width: w,
                        geometry: g, gradInput: gradInput)
                }
                start += count
            }
        }
    }
}
