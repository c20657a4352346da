import Foundation
import Testing

@testable import Imaging

func fixture(_ name: String) throws -> [UInt8] {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil))
    return [UInt8](try Data(contentsOf: url))
}

/// The fixtures (scripts/make-image-fixtures.py) are 7×5 with red = 30x, green = 40y, blue = 200.
func expectPattern(_ image: Image, tolerance: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(image.width == 7 && image.height == 5, sourceLocation: sourceLocation)
    for y in 0..<5 {
        for x in 0..<7 {
            let i = (y * 7 + x) * image.channels
            if image.channels == 3 {
                #expect(abs(Int(image.pixels[i]) - 30 * x) <= tolerance, sourceLocation: sourceLocation)
                #expect(abs(Int(image.pixels[i + 1]) - 40 * y) <= tolerance, sourceLocation: sourceLocation)
                #expect(abs(Int(image.pixels[i + 2]) - 200) <= tolerance, sourceLocation: sourceLocation)
            } else {
                #expect(abs(Int(image.pixels[i]) - 30 * x) <= tolerance, sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite struct PNGDecodingTests {
    @Test(arguments: ["rgb.png", "rgba.png", "interlaced.png"])
    func decodesRGBVariants(name: String) throws {
        expectPattern(try ImageDecoder.decode(fixture(name)), tolerance: 0)
    }

    @Test func decodesPaletteWithinQuantisationError() throws {
        expectPattern(try ImageDecoder.decode(fixture("palette.png")), tolerance: 24)
    }

    @Test(arguments: ["gray.png", "gray-alpha.png", "gray16.png"])
    func decodesGrayVariants(name: String) throws {
        let image = try ImageDecoder.decode(fixture(name), grayscale: true)
        #expect(image.channels == 1)
        expectPattern(image, tolerance: 0)
        // Asked for RGB, gray is replicated into all three channels.
        let rgb = try ImageDecoder.decode(fixture(name))
        #expect(rgb.channels == 3 && rgb.pixels[3 * 3] == 90 && rgb.pixels[3 * 3 + 2] == 90)
    }

    @Test func refusesHugeHeaderBeforeAllocating() throws {
        #expect {
            try ImageDecoder.decode(fixture("huge-header.png"))
        } throws: { ($0 as? ImageDecodingError)?.kind == .tooLarge }
    }

    @Test func truncatedPNGIsAnError() throws {
        let bytes = try fixture("rgb.png")
        for cut in [8, 20, 40, bytes.count - 13] {
            #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(Array(bytes.prefix(cut))) }
        }
    }
}

@Suite struct JPEGDecodingTests {
    @Test func decodesRGB() throws {
        expectPattern(try ImageDecoder.decode(fixture("rgb.jpg")), tolerance: 6)
    }

    @Test func decodesGray() throws {
        let image = try ImageDecoder.decode(fixture("gray.jpg"), grayscale: true)
        expectPattern(image, tolerance: 6)
    }

    @Test func decodesCMYK() throws {
        expectPattern(try ImageDecoder.decode(fixture("cmyk.jpg")), tolerance: 8)
    }

    @Test func truncatedJPEGIsAnErrorNotAnExit() throws {
        let bytes = try fixture("rgb.jpg")
        for cut in [3, 50, bytes.count / 2, bytes.count - 2] {
            #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(Array(bytes.prefix(cut))) }
        }
    }

    @Test func corruptJPEGHeaderIsAnError() throws {
        var bytes = try fixture("rgb.jpg")
        for i in 4..<min(bytes.count, 200) { bytes[i] = UInt8(truncatingIfNeeded: i * 37) }
        #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(bytes) }
    }

    @Test func pixelLimitAppliesToJPEG() throws {
        #expect {
            try ImageDecoder.decode(fixture("rgb.jpg"), maxPixels: 34)
        } throws: { ($0 as? ImageDecodingError)?.kind == .tooLarge }
    }
}

@Suite struct GarbageInputTests {
    @Test func emptyBodyIsAnError() {
        #expect { try ImageDecoder.decode([]) } throws: { ($0 as? ImageDecodingError)?.kind == .empty }
    }

    @Test func randomBytesAreAnError() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let bytes = (0..<Int.random(in: 1..<4096, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(bytes) }
        }
    }

    @Test func randomBytesBehindValidSignaturesAreAnError() {
        var rng = SystemRandomNumberGenerator()
        let signatures: [[UInt8]] = [[0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]]
        for signature in signatures {
            for _ in 0..<100 {
                let bytes = signature + (0..<Int.random(in: 0..<2048, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                #expect(throws: ImageDecodingError.self) { try ImageDecoder.decode(bytes) }
            }
        }
    }
}
