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

    /// Bilinear resize with pixel centres aligned (as PIL and OpenCV's INTER_LINEAR without
    /// antialiasing): output pixel x samples source coordinate (x + 0.5)·sw/dw − 0.5, clamped.
    public func resized(width dw: Int, height dh: Int) -> Image {
        if dw == width && dh == height { return self }
        var out = [UInt8](repeating: 0, count: dw * dh * channels)
        let sx = Float(width) / Float(dw), sy = Float(height) / Float(dh)
        for y in 0..<dh {
            let fy = max(0, min(Float(height - 1), (Float(y) + 0.5) * sy - 0.5))
            let y0 = Int(fy), y1 = min(height - 1, y0 + 1)
            let wy = fy - Float(y0)
            for x in 0..<dw {
                let fx = max(0, min(Float(width - 1), (Float(x) + 0.5) * sx - 0.5))
                let x0 = Int(fx), x1 = min(width - 1, x0 + 1)
                let wx = fx - Float(x0)
                for c in 0..<channels {
                    let p00 = Float(pixels[(y0 * width + x0) * channels + c])
                    let p01 = Float(pixels[(y0 * width + x1) * channels + c])
                    let p10 = Float(pixels[(y1 * width + x0) * channels + c])
                    let p11 = Float(pixels[(y1 * width + x1) * channels + c])
                    let top = p00 + (p01 - p00) * wx
                    let bottom = p10 + (p11 - p10) * wx
                    out[(y * dw + x) * channels + c] = UInt8(max(0, min(255, (top + (bottom - top) * wy).rounded())))
                }
            }
        }
        return Image(width: dw, height: dh, channels: channels, pixels: out)
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
