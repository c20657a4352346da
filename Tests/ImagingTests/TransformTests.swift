import Foundation
import NativeBridge
import TensorKit
import Testing

@testable import Imaging

@Suite struct TransformTests {
    @Test func grayToRGBAndBack() {
        let gray = Image(width: 2, height: 1, channels: 1, pixels: [10, 200])
        let rgb = gray.converted(toChannels: 3)
        #expect(rgb.pixels == [10, 10, 10, 200, 200, 200])
        #expect(rgb.converted(toChannels: 1).pixels == [10, 200])
        // BT.601 luma of pure red, green, blue.
        let primaries = Image(width: 3, height: 1, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255])
        #expect(primaries.converted(toChannels: 1).pixels == [76, 150, 29])
    }

    @Test func bilinearResizeOfARamp() {
        // Doubling a 2-pixel ramp [0, 100]: sample points −0.25, 0.25, 0.75, 1.25 (clamped).
        let ramp = Image(width: 2, height: 1, channels: 1, pixels: [0, 100])
        #expect(ramp.resized(width: 4, height: 1).pixels == [0, 25, 75, 100])
        // Halving averages neighbours: sample point 0.5 between 0 and 100.
        #expect(ramp.resized(width: 1, height: 1).pixels == [50])
    }

    /// Resizing equals Pillow's `Image.resize(size, Image.BILINEAR)` within 1 level of 255 for
    /// committed sources of several sizes and aspect ratios, upscaling and downscaling, gray and RGB
    /// (scripts/make-resize-fixtures.py wrote the expected images with Pillow 13). The same
    /// coefficients and fixed-point rounding give identical images when Pillow runs the horizontal
    /// pass first, as its C core reads; for the tall 33×250 source the wheel measured here ran the
    /// vertical pass first, and the intermediate rounding differs by at most one level.
    @Test(arguments: [
        "digit560-to-28x28", "digit560-to-32x32", "digit560-to-100x37", "digit560-thin-to-28x28",
        "gray97x31-to-28x28", "gray97x31-to-13x40", "rgb33x250-to-32x32", "rgb33x250-to-7x9",
        "rgb10x7-to-28x28", "rgb10x7-to-32x20",
    ])
    func resizeMatchesPillow(_ name: String) throws {
        let source = String(name[..<name.range(of: "-to-")!.lowerBound])
        let gray = !source.hasPrefix("rgb")
        func load(_ file: String) throws -> Image {
            try ImageDecoder.decode(try fixture("resize/\(file).png"), grayscale: gray)
        }
        let expected = try load(name), input = try load(source)
        let ours = input.resized(width: expected.width, height: expected.height)
        #expect(ours.width == expected.width && ours.height == expected.height && ours.channels == expected.channels)
        let worst = zip(ours.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 1, "largest difference \(worst) levels")
    }

    /// The fault this replaced: a 560×560 digit with 16 px strokes, reduced 20×, kept its strokes
    /// only where a sample point happened to fall on them.
    @Test func downscalingKeepsThinStrokes() throws {
        let small = try ImageDecoder.decode(try fixture("resize/digit560-thin.png"), grayscale: true).resized(width: 28, height: 28)
        let inked = small.pixels.filter { $0 > 40 }.count
        #expect(inked >= 40, "\(inked) pixels show the stroke")
    }

    @Test func centerCropKeepsTheMiddle() {
        let wide = Image(width: 4, height: 2, channels: 1, pixels: [1, 2, 3, 4, 5, 6, 7, 8])
        let square = wide.centerCropped(toAspectOf: 1, 1)
        #expect(square.width == 2 && square.height == 2 && square.pixels == [2, 3, 6, 7])
    }

    @Test func normalisationMatchesTorchvision() {
        let spec = InputSpec(channels: 1, height: 1, width: 2, mean: [0.5], std: [0.25])
        let t = Image(width: 2, height: 1, channels: 1, pixels: [0, 255]).tensor(for: spec)
        #expect(t.shape == [1, 1, 1, 2])
        #expect(abs(t.scalars[0] - (-2)) < 1e-6 && abs(t.scalars[1] - 2) < 1e-6)
    }
}

@Suite struct ImageFolderTests {
    /// Builds a throwaway ImageFolder from the PNG fixture: classes "b" and "a" (sorted → a = 0).
    func makeFolder() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("imagefolder-\(UUID())").path
        let png = try fixture("rgb.png")
        for (cls, n) in [("b", 3), ("a", 5)] {
            try FileManager.default.createDirectory(atPath: root + "/" + cls, withIntermediateDirectories: true)
            for i in 0..<n { _ = FileManager.default.createFile(atPath: "\(root)/\(cls)/\(i).png", contents: Data(png)) }
        }
        _ = FileManager.default.createFile(atPath: "\(root)/a/notes.txt", contents: Data("x".utf8))
        return root
    }

    @Test func classesAreSortedAndSplitIsSeeded() throws {
        let folder = try ImageFolder(root: makeFolder())
        #expect(folder.classes == ["a", "b"])
        #expect(folder.samples.count == 8)
        #expect(folder.samples.filter { $0.label == 0 }.count == 5)
        let (train1, val1) = folder.split(validationFraction: 0.25, seed: 3)
        let (train2, val2) = folder.split(validationFraction: 0.25, seed: 3)
        #expect(val1.samples == val2.samples && train1.samples == train2.samples)
        #expect(val1.samples.count == 2 && train1.samples.count == 6)
        #expect(Set(val1.samples.map(\.path)).isDisjoint(with: train1.samples.map(\.path)))
    }

    @Test func loadsBatchesAndAugments() throws {
        let folder = try ImageFolder(root: makeFolder())
        let spec = InputSpec(channels: 3, height: 5, width: 7, mean: [0, 0, 0], std: [1, 1, 1])
        let set = try ImageSet.load(folder, spec: spec)
        #expect(set.count == 8)
        var rng = SeededGenerator(seed: 1)
        let (x, labels) = set.batch([0, 7], generator: &rng)
        #expect(x.shape == [2, 3, 5, 7] && labels == [0, 1])
        // Red channel of pixel (x=3, y=2) is 90/255.
        #expect(abs(x[0, 0, 2, 3] - 90 / 255) < 1e-6)
        // A flip mirrors the red ramp.
        let (flipped, _) = set.batch([0], augmentation: .init(cropPadding: 0, horizontalFlip: true), generator: &rng)
        let (again, _) = set.batch([0], augmentation: .init(cropPadding: 0, horizontalFlip: true), generator: &rng)
        let firsts = [flipped[0, 0, 0, 0], again[0, 0, 0, 0]]
        #expect(firsts.allSatisfy { $0 == 0 || abs($0 - 180 / 255) < 1e-6 })
        let batches = set.batches(size: 3, shuffle: true, seed: 9, epoch: 0)
        #expect(batches.map(\.count) == [3, 3, 2] && Set(batches.joined()) == Set(0..<8))
        #expect(batches == set.batches(size: 3, shuffle: true, seed: 9, epoch: 0))
        #expect(batches != set.batches(size: 3, shuffle: true, seed: 9, epoch: 1))
    }

    @Test func undecodableFileNamesTheFile() throws {
        let root = try makeFolder()
        _ = FileManager.default.createFile(atPath: "\(root)/a/broken.png", contents: Data([0x89, 0x50, 0x4E, 0x47]))
        #expect { try ImageSet.load(ImageFolder(root: root), spec: InputSpec(channels: 1, height: 5, width: 7, mean: [0], std: [1])) } throws: {
            "\($0)".contains("broken.png")
        }
    }
}

@Suite struct CoreLimitTests {
    /// A training job's thread runs with a core ceiling; loading must still decode every image
    /// (a chunk count read separately on the worker threads once skipped half of them).
    @Test func loadingUnderACoreCeilingDecodesEverything() async throws {
        let root = try ImageFolderTests().makeFolder()
        let spec = InputSpec(channels: 3, height: 5, width: 7, mean: [0, 0, 0], std: [1, 1, 1])
        let set: ImageSet = try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                Parallelism.limitCurrentThread(to: 1)
                continuation.resume(with: Result { try ImageSet.load(ImageFolder(root: root), spec: spec) })
            }
            thread.start()
        }
        let per = spec.count
        for i in 0..<set.count {
            #expect(set.pixels[i * per..<(i + 1) * per].contains { $0 != 0 }, "image \(i) was never decoded")
        }
    }
}
