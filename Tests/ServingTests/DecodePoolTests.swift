import Dispatch
import Foundation
import Imaging
import Synchronization
import Testing

@testable import Serving

/// Request images decode on the pool's own threads, with the pixels in flight bounded.
@Suite struct DecodePoolTests {
    final class Gate: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
    }

    @Test func pixelsInFlightAreBoundedAndWorkRunsOffThePool() async throws {
        var config = DecodePool.Configuration()
        config.threads = 1
        config.maxPixelsInFlight = 1000
        config.inlinePixels = 0
        let pool = DecodePool(configuration: config)
        defer { pool.stop() }
        let gate = Gate()
        let first = Task {
            try await pool.run(pixels: 800) { () -> Int in
                gate.started.signal()
                gate.semaphore.wait()  // holds the only decode thread; the test's own tasks go on
                return 1
            }
        }
        await withCheckedContinuation { c in
            DispatchQueue.global().async {
                gate.started.wait(); c.resume()
            }
        }
        #expect(pool.pixelsInFlight == 800)
        // Over the bound: refused at once, while the first still decodes.
        await #expect(throws: DecodePool.Failure.self) { try await pool.run(pixels: 300) { 0 } }
        // Within the bound: admitted, and runs once the thread is free.
        let second = Task { try await pool.run(pixels: 100) { 2 } }
        gate.semaphore.signal()
        #expect(try await first.value == 1)
        #expect(try await second.value == 2)
        #expect(pool.pixelsInFlight == 0)
    }

    @Test(arguments: [
        "rgb.png", "gray.png", "interlaced.png", "palette.png", "gray16.png", "rgb.jpg", "gray.jpg", "cmyk.jpg",
        "resize/digit560.png", "orientation/o6.jpg",
    ])
    func headerPixelCountMatchesTheDecodedImage(_ name: String) throws {
        let url = URL(fileURLWithPath: repositoryRoot + "/Tests/ImagingTests/Fixtures/" + name)
        let bytes = [UInt8](try Data(contentsOf: url))
        let image = try ImageDecoder.decode(bytes)
        #expect(ImageHeader.pixelCount(bytes) == image.width * image.height)
    }

    /// A header may claim any size: 0xFFFFFFFF × 0xFFFFFFFF overflows Int and must not trap.
    @Test func hugeClaimedSizesDoNotOverflow() {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        png += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 8, 0, 0, 0, 0]
        #expect(ImageHeader.pixelCount(png) == Int.max)
    }

    @Test func runAfterStopFails() async {
        var config = DecodePool.Configuration()
        config.inlinePixels = 0
        let pool = DecodePool(configuration: config)
        pool.stop()
        await #expect(throws: DecodePool.Failure.self) { try await pool.run(pixels: 10) { 1 } }
        #expect(pool.pixelsInFlight == 0)
    }

    @Test func deadlinesAreCapped() throws {
        let longest = try ClassifyParameters(text: ["deadline_ms": "3600000"])
        try longest.validate()
        #expect(longest.deadlineMs == 3_600_000)
        #expect(throws: RequestError.self) { try ClassifyParameters(text: ["deadline_ms": "3600001"]).validate() }
        #expect(throws: RequestError.self) { try ClassifyParameters(text: ["deadline_ms": "9223372036854775807"]).validate() }
        #expect(throws: RequestError.self) { try ClassifyParameters(text: ["deadline_ms": "99999999999999999999"]).validate() }
    }

    @Test func unreadableHeadersGiveNoCount() {
        #expect(ImageHeader.pixelCount([]) == nil)
        #expect(ImageHeader.pixelCount(Array("not an image".utf8)) == nil)
        #expect(ImageHeader.pixelCount([0xFF, 0xD8, 0xFF, 0xE0, 0x00]) == nil)
        #expect(ImageHeader.pixelCount([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]) == nil)
    }
}
