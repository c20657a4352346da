import Testing

@testable import Imaging

/// EXIF orientation: files stored with each orientation 1–8 decode as Pillow's
/// `ImageOps.exif_transpose` shows them (scripts/make-orientation-fixtures.py), for PNG `eXIf`
/// chunks and JPEG APP1 segments; a garbage Exif block reads as 1 and the image still decodes.
@Suite struct OrientationTests {
    @Test(arguments: 1...8, ["png", "jpg"])
    func decodesAsViewersShowIt(orientation: Int, format: String) throws {
        let file = "orientation/o\(orientation).\(format)"
        let bytes = try fixture(file)
        #expect(ExifOrientation.read(bytes, format: format == "png" ? .png : .jpeg) == orientation)
        let ours = try ImageDecoder.decode(bytes, grayscale: true)
        let shown = try ImageDecoder.decode(try fixture(file + "-shown.png"), grayscale: true)
        #expect(ours.width == shown.width && ours.height == shown.height)
        // PNG is lossless: exact. JPEG: both sides decode the same file with libjpeg; allow 2 levels.
        let worst = zip(ours.pixels, shown.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= (format == "png" ? 0 : 2), "largest difference \(worst)")
    }

    @Test(arguments: ["orientation/bad-exif.jpg", "orientation/bad-exif.png", "gray.png", "rgb.jpg", "cmyk.jpg"])
    func missingOrMalformedExifIsOrientationOne(file: String) throws {
        let bytes = try fixture(file)
        let format = try #require(ImageFormat.detect(bytes))
        #expect(ExifOrientation.read(bytes, format: format) == 1)
        _ = try ImageDecoder.decode(bytes)
    }

    @Test func truncatedPNGChunkListIsIgnored() throws {
        var bytes = try fixture("orientation/o6.png")
        let chunk = try #require(ExifOrientation.pngExifChunk(bytes))
        bytes = Array(bytes[..<(chunk.lowerBound + 2)])  // cut inside the eXIf data
        #expect(ExifOrientation.pngExifChunk(bytes) == nil)
        #expect(ExifOrientation.read(bytes, format: .png) == 1)
    }

    /// Rotating 90° clockwise and then counter-clockwise is the identity; mirroring twice too.
    @Test func transformsInvertEachOther() {
        let image = Image(width: 3, height: 2, channels: 2, pixels: Array(0..<12))
        #expect(image.oriented(6).oriented(8) == image)
        #expect(image.oriented(2).oriented(2) == image)
        #expect(image.oriented(5).oriented(5) == image)
        #expect(image.oriented(7).oriented(7) == image)
        #expect(image.oriented(3).oriented(3) == image)
        #expect(image.oriented(6).width == 2 && image.oriented(6).height == 3)
        #expect(image.oriented(0) == image && image.oriented(9) == image)
    }
}
