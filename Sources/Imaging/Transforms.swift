import TensorKit

/// How raw pixels become a model's input tensor. Mirrors torchvision's `Normalize`:
/// x = (pixel/255 − mean[c]) / std[c].
public struct InputSpec: Sendable, Equatable, Codable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var mean: [Float]
    public var std: [Float]

    public init(channels: Int, height: Int, width: Int, mean: [Float], std: [Float]) {
        self.channels = channels
        self.height = height
        self.width = width
        self.mean = mean
        self.std = std
    }

    public var count: Int { channels * height * width }
}

extension Image {
    /// Converts the channel count: gray → RGB replicates, RGB → gray uses ITU-R BT.601 luma
    /// (0.299 R + 0.587 G + 0.114 B), the weights libjpeg and PIL use.
    public func converted(toChannels target: Int) -> Image {
        if target == channels { return self }
        let n = width * height
        var out = [UInt8](repeating: 0, count: n * target)
        if channels == 1 && target == 3 {
            for i in 0..<n { out[3 * i] = pixels[i]; out[3 * i + 1] = pixels[i]; out[3 * i + 2] = pixels[i] }
        } else if channels == 3 && target == 1 {
            for i in 0..<n {
                let r = Int(pixels[3 * i]), g = Int(pixels[3 * i + 1]), b = Int(pixels[3 * i + 2])
                out[i] = UInt8((r * 299 + g * 587 + b * 114 + 500) / 1000)
            }
        } else {
            preconditionFailure("unsupported channel conversion \(channels) → \(target)")
        }
        return Image(width: width, height: height, channels: target, pixels: out)
    }

    /// The largest centred region with the aspect ratio of `width`×`height`: what a center crop
    /// keeps before resizing, so the content is not stretched.
    public func centerCropped(toAspectOf targetWidth: Int, _ targetHeight: Int) -> Image {
        // Compare width/height ratios in integers to avoid rounding flutter.
        var cw = width, ch = height
        if width * targetHeight > height * targetWidth {
            cw = max(1, (height * targetWidth) / targetHeight)
        } else if width * targetHeight < height * targetWidth {
            ch = max(1, (width * targetHeight) / targetWidth)
        }
        if cw == width && ch == height { return self }
        let x0 = (width - cw) / 2, y0 = (height - ch) / 2
        var out = [UInt8](repeating: 0, count: cw * ch * channels)
        for y in 0..<ch {
            let src = ((y0 + y) * width + x0) * channels
            out.replaceSubrange(y * cw * channels..<(y + 1) * cw * channels, with: pixels[src..<src + cw * channels])
        }
        return Image(width: cw, height: ch, channels: channels, pixels: out)
    }

    /// Resizes with a bilinear (triangle) filter whose support grows with the reduction, as PIL's
    /// `Image.resize(size, Image.BILINEAR)` does: output pixel x covers source coordinates
    /// (x + 0.5)·s ± max(s, 1) for scale s = source/target, weighted by 1 − |d|/max(s, 1). Upscaling
    /// is plain bilinear interpolation; downscaling averages every source pixel under the output
    /// pixel, so thin strokes survive (point-sampling bilinear dropped the strokes of a 560×560 digit
    /// that fell between samples). Horizontal pass first, then vertical, each in PIL's 22-bit fixed
    /// point with rounding, so results equal PIL's (tests compare against committed PIL outputs).
    public func resized(width dw: Int, height dh: Int) -> Image {
        if dw == width && dh == height { return self }
        var image = self
        if dw != width { image = image.resampledHorizontally(to: dw) }
        if dh != height { image = image.resampledVertically(to: dh) }
        return image
    }

    /// One output pixel's source range and fixed-point weights (sum ≈ 2²²).
    struct Taps {
        var first: [Int]
        var count: [Int]
        var weights: [[Int64]]
    }

    static let precisionBits = 22

    /// PIL's coefficient layout for a bilinear filter from `inSize` to `outSize` samples.
    static func bilinearTaps(from inSize: Int, to outSize: Int) -> Taps {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        let inverse = 1.0 / filterScale
        var taps = Taps(first: [], count: [], weights: [])
        for x in 0..<outSize {
            let center = (Double(x) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), inSize)
            var w = (lo..<hi).map { j -> Double in
                let d = abs((Double(j) - center + 0.5) * inverse)
                return d < 1 ? 1 - d : 0
            }
            let total = w.reduce(0, +)
            if total != 0 { w = w.map { $0 / total } }
            taps.first.append(lo)
            taps.count.append(hi - lo)
            // Round half away from zero, as PIL does before its integer accumulation.
            taps.weights.append(w.map { Int64(($0 * Double(1 << precisionBits)).rounded(.toNearestOrAwayFromZero)) })
        }
        return taps
    }

    @inline(__always)
    static func fixedToByte(_ sum: Int64) -> UInt8 {
        UInt8(clamping: sum >> Int64(precisionBits))
    }

    func resampledHorizontally(to dw: Int) -> Image {
        let taps = Self.bilinearTaps(from: width, to: dw)
        var out = [UInt8](repeating: 0, count: dw * height * channels)
        let half = Int64(1) << Int64(Self.precisionBits - 1)
        for y in 0..<height {
            let row = y * width * channels
            for x in 0..<dw {
                let w = taps.weights[x], first = taps.first[x]
                for c in 0..<channels {
                    var sum = half
                    for k in 0..<taps.count[x] { sum += Int64(pixels[row + (first + k) * channels + c]) * w[k] }
                    out[(y * dw + x) * channels + c] = Self.fixedToByte(sum)
                }
            }
        }
        return Image(width: dw, height: height, channels: channels, pixels: out)
    }

    func resampledVertically(to dh: Int) -> Image {
        let taps = Self.bilinearTaps(from: height, to: dh)
        let rowLength = width * channels
        var out = [UInt8](repeating: 0, count: dh * rowLength)
        let half = Int64(1) << Int64(Self.precisionBits - 1)
        for y in 0..<dh {
            let w = taps.weights[y], first = taps.first[y]
            for i in 0..<rowLength {
                var sum = half
                for k in 0..<taps.count[y] { sum += Int64(pixels[(first + k) * rowLength + i]) * w[k] }
                out[y * rowLength + i] = Self.fixedToByte(sum)
            }
        }
        return Image(width: width, height: dh, channels: channels, pixels: out)
    }

    /// Channel count, center crop and resize so the image matches `spec`'s geometry (still 8-bit, HWC).
    public func prepared(for spec: InputSpec) -> Image {
        converted(toChannels: spec.channels)
            .centerCropped(toAspectOf: spec.width, spec.height)
            .resized(width: spec.width, height: spec.height)
    }

    /// Writes the normalised CHW floats of an image that already matches `spec`'s geometry.
    public func normalized(_ spec: InputSpec, into out: UnsafeMutablePointer<Float>) {
        precondition(width == spec.width && height == spec.height && channels == spec.channels)
        let plane = width * height
        for c in 0..<channels {
            let scale = 1 / (255 * spec.std[c]), shift = spec.mean[c] / spec.std[c]
            for i in 0..<plane { out[c * plane + i] = Float(pixels[i * channels + c]) * scale - shift }
        }
    }

    /// A `[1, C, H, W]` tensor for the model described by `spec`.
    public func tensor(for spec: InputSpec) -> Tensor {
        var t = Tensor(shape: [1, spec.channels, spec.height, spec.width])
        let prepared = prepared(for: spec)
        t.withUnsafeMutablePointer { prepared.normalized(spec, into: $0) }
        return t
    }
}
