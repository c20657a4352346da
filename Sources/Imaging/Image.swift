import CNative

/// An 8-bit image, row-major with interleaved channels (1 = gray, 3 = RGB).
public struct Image: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "pixel buffer does not match \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// Why an image could not be decoded. The description is safe to show a client.
public struct ImageDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case empty, unsupportedFormat, corrupt, tooLarge, outOfMemory }
    public var kind: Kind
    public var message: String
    public var description: String { message }
}

public enum ImageFormat: String, Sendable {
    case jpeg, png

    /// Sniffs the format from the magic bytes; the client's Content-Type is not trusted.
    public static func detect(_ bytes: some Collection<UInt8>) -> ImageFormat? {
        let head = Array(bytes.prefix(8))
        if head.count >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF { return .jpeg }
        if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        return nil
    }
}

public enum ImageDecoder {
    /// Default ceiling on width × height (40 megapixels), checked from the header before any
    /// pixel memory is allocated, so a tiny file claiming a huge image costs nothing.
    public static let defaultMaxPixels = 40_000_000

    /// Decodes JPEG or PNG bytes as a viewer shows them (EXIF orientation applied). `grayscale`
    /// picks 1 output channel, otherwise 3.
    public static func decode(_ bytes: [UInt8], grayscale: Bool = false, maxPixels: Int = defaultMaxPixels) throws(ImageDecodingError) -> Image {
        if bytes.isEmpty { throw ImageDecodingError(kind: .empty, message: "empty image data") }
        guard let format = ImageFormat.detect(bytes) else {
            throw ImageDecodingError(kind: .unsupportedFormat, message: "not a JPEG or PNG image (unrecognised signature)")
        }
        var result = sn_decoded_image()
        let status = bytes.withUnsafeBufferPointer { buf in
            switch format {
            case .jpeg: sn_jpeg_decode(buf.baseAddress, buf.count, UInt64(maxPixels), grayscale ? 1 : 0, &result)
            case .png: sn_png_decode(buf.baseAddress, buf.count, UInt64(maxPixels), grayscale ? 1 : 0, &result)
            }
        }
        guard status == Int32(SN_OK), let raw = result.pixels else {
            let message = withUnsafeBytes(of: result.message) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            let kind: ImageDecodingError.Kind =
                switch status {
                case Int32(SN_ERR_TOO_LARGE): .tooLarge
                case Int32(SN_ERR_EMPTY): .empty
                case Int32(SN_ERR_NOMEM): .outOfMemory
                default: .corrupt
                }
            throw ImageDecodingError(kind: kind, message: message)
        }
        defer { sn_free(raw) }
        let count = Int(result.width) * Int(result.height) * Int(result.channels)
        let pixels = [UInt8](UnsafeBufferPointer(start: raw, count: count))
        let stored = Image(width: Int(result.width), height: Int(result.height), channels: Int(result.channels), pixels: pixels)
        return stored.oriented(ExifOrientation.read(bytes, format: format))
    }
}
