/// Average pooling over `kernel`×`kernel` windows with the given stride, no padding.
/// `input` `[n, c, h, w]` → `[n, c, (h−k)/s+1, (w−k)/s+1]`.
public func avgPool2d(_ input: Tensor, kernel k: Int, stride s: Int) -> Tensor {
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let oh = (h - k) / s + 1, ow = (w - k) / s + 1
    var out = Tensor(shape: [n, c, oh, ow])
    let scale = 1 / Float(k * k)
    input.withUnsafePointer { x in
        out.withUnsafeMutablePointer { y in
            let xs = SharedPointer(UnsafeMutablePointer(mutating: x)), ys = SharedPointer(y)
            Parallel.forEach(n * c, grain: 64) { planes in
                for p in planes {
                    let src = xs.base + p * h * w, dst = ys.base + p * oh * ow
                    if k == 2 && s == 2 {
                        // The common 2×2 case without the generic window loops.
                        for oy in 0..<oh {
                            let r0 = src + 2 * oy * w, r1 = r0 + w, d = dst + oy * ow
                            for ox in 0..<ow {
                                d[ox] = (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]) * 0.25
                            }
                        }
                        continue
                    }
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var sum: Float = 0
                            for ky in 0..<k {
                                let row = src + (oy * s + ky) * w + ox * s
                                for kx in 0..<k { sum += row[kx] }
                            }
                            dst[oy * ow + ox] = sum * scale
                        }
                    }
                }
            }
        }
    }
    return out
}

/// Gradient of `avgPool2d`: each output gradient is shared equally by its window.
public func avgPool2dBackward(_ gradOutput: Tensor, inputShape: [Int], kernel k: Int, stride s: Int) -> Tensor {
    let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let oh = gradOutput.shape[2], ow = gradOutput.shape[3]
    var gradInput = Tensor(shape: inputShape)
    let scale = 1 / Float(k * k)
    gradOutput.withUnsafePointer { gy in
        gradInput.withUnsafeMutablePointer { gx in
            let gys = SharedPointer(UnsafeMutablePointer(mutating: gy)), gxs = SharedPointer(gx)
            Parallel.forEach(n * c, grain: 64) { planes in
                for p in planes {
                    let src = gys.base + p * oh * ow, dst = gxs.base + p * h * w
                    if k == 2 && s == 2 {
                        for oy in 0..<oh {
                            let r0 = dst + 2 * oy * w, r1 = r0 + w, g = src + oy * ow
                            for ox in 0..<ow {
                                let v = g[ox] * 0.25
                                r0[2 * ox] += v; r0[2 * ox + 1] += v; r1[2 * ox] += v; r1[2 * ox + 1] += v
                            }
                        }
                        continue
                    }
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let v = src[oy * ow + ox] * scale
                            for ky in 0..<k {
                                let row = dst + (oy * s + ky) * w + ox * s
                                for kx in 0..<k { row[kx] += v }
                            }
                        }
                    }
                }
            }
        }
    }
    return gradInput
}

/// Max pooling; also returns, per output, the flat index within its input plane of the maximum
/// (the first one on ties), which the backward pass routes the gradient to.
public func maxPool2d(_ input: Tensor, kernel k: Int, stride s: Int) -> (output: Tensor, argmax: [Int32]) {
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let oh = (h - k) / s + 1, ow = (w - k) / s + 1
    var out = Tensor(shape: [n, c, oh, ow])
    var argmax = [Int32](repeating: 0, count: out.count)
    input.withUnsafePointer { x in
        out.withUnsafeMutablePointer { y in
            argmax.withUnsafeMutableBufferPointer { am in
                let xs = SharedPointer(UnsafeMutablePointer(mutating: x)), ys = SharedPointer(y)
                let ams = SharedPointer(am.baseAddress!)
                Parallel.forEach(n * c, grain: 64) { planes in
                    for p in planes {
                        let src = xs.base + p * h * w
                        for oy in 0..<oh {
                            for ox in 0..<ow {
                                var best = -Float.infinity
                                var bestIndex = 0
                                for ky in 0..<k {
                                    for kx in 0..<k {
                                        let idx = (oy * s + ky) * w + ox * s + kx
                                        if src[idx] > best { best = src[idx]; bestIndex = idx }
                                    }
                                }
                                let o = p * oh * ow + oy * ow + ox
                                ys.base[o] = best
                                ams.base[o] = Int32(bestIndex)
                            }
                        }
                    }
                }
            }
        }
    }
    return (out, argmax)
}

public func maxPool2dBackward(_ gradOutput: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
    let planes = inputShape[0] * inputShape[1]
    let planeIn = inputShape[2] * inputShape[3]
    let planeOut = gradOutput.count / max(1, planes)
    var gradInput = Tensor(shape: inputShape)
    for p in 0..<planes {
        for j in 0..<planeOut {
            let o = p * planeOut + j
            gradInput.scalars[p * planeIn + Int(argmax[o])] += gradOutput.scalars[o]
        }
    }
    return gradInput
}
