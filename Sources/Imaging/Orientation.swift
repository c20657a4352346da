import CNative

/// EXIF orientation (TIFF tag 274): how a camera stored an image relative to how it is meant to be
/// shown. Phones store sideways sensor data and record the rotation here; viewers apply it, so
/// SpikeServe applies it before anything else. Values follow the EXIF 2.3 specification, §4.6.4 A:
/// 1 as stored, 2 mirrored, 3 rotated 180°, 4 flipped, 5 transposed, 6 rotated 90° clockwise to show,
/// 7 transversed, 8 rotated 90° counter-clockwise to show.
public enum ExifOrientation {
    /// The orientation recorded in an encoded image: a JPEG's APP1 Exif segment or a PNG's `eXIf`
    /// chunk. Missing, malformed or out-of-range data reads as 1, never as an error.
    public static func read(_ bytes: [UInt8], format: ImageFormat) -> Int {
        switch format {
        case .jpeg:
            return bytes.withUnsafeBufferPointer { Int(sn_exif_orientation($0.baseAddress, $0.count, 0)) }
        case .png:
            guard let chunk = pngExifChunk(bytes) else { return 1 }
            return bytes[chunk].withUnsafeBufferPointer { Int(sn_exif_orientation($0.baseAddress, $0.count, 1)) }
        }
    }

    /// The data range of a PNG's `eXIf` chunk, found by walking the chunk list (length, type, data,
    /// CRC) with every length checked against the buffer.
    static func pngExifChunk(_ bytes: [UInt8]) -> Range<Int>? {
        var offset = 8  // after the signature
        while offset + 12 <= bytes.count {
            let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
            let type = bytes[offset + 4..<offset + 8]
            let start = offset + 8
            guard length >= 0, length <= bytes.count - start - 4 else { return nil }
            if type.elementsEqual("eXIf".utf8) { return start..<start + length }
            if type.elementsEqual("IEND".utf8) { return nil }
            offset = start + length + 4
        }
        return nil
    }
}

extension Image {
    /// The image as a viewer shows it, given its EXIF orientation (1–8; anything else is 1).
    /// The same transposes as Pillow's `ImageOps.exif_transpose`.
    public func oriented(_ orientation: Int) -> Image {
        let (w, h, c) = (width, height, channels)
        let swaps = orientation >= 5 && orientation <= 8
        let (ow, oh) = swaps ? (h, w) : (w, h)
        // Source pixel of output pixel (x, y).
        let source: (Int, Int) -> (Int, Int)
        switch orientation {
        case 2: source = { x, y in (w - 1 - x, y) }
        case 3: source = { x, y in (w - 1 - x, h - 1 - y) }
        case 4: source = { x, y in (x, h - 1 - y) }
        case 5: source = { x, y in (y, x) }
        case 6: source = { x, y in (y, h - 1 - x) }
        case 7: source = { x, y in (w - 1 - y, h - 1 - x) }
        case 8: source = { x, y in (w - 1 - y, x) }
        default: return self
        }
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sx, sy) = source(x, y)
                let s = (sy * w + sx) * c, d = (y * ow + x) * c
                for k in 0..<c { out[d + k] = pixels[s + k] }
            }
        }
        return Image(width: ow, height: oh, channels: c, pixels: out)
    }
}
