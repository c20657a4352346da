import Foundation
import Synchronization
import TensorKit

/// A dataset on disk in ImageFolder layout: one subfolder per class, class index = position of the
/// folder name in sorted order (torchvision's convention, so labels agree with PyTorch).
public struct ImageFolder: Sendable {
    public struct Sample: Sendable, Equatable {
        public var path: String
        public var label: Int
    }

    public var root: String
    public var classes: [String]
    public var samples: [Sample]

    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    public init(root: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw DatasetError("dataset folder \(root) does not exist")
        }
        let entries = try fm.contentsOfDirectory(atPath: root).filter { !$0.hasPrefix(".") }.sorted()
        let classes = entries.filter { name in
            var d: ObjCBool = false
            return fm.fileExists(atPath: root + "/" + name, isDirectory: &d) && d.boolValue
        }
        guard !classes.isEmpty else { throw DatasetError("\(root) has no class subfolders (ImageFolder layout expected)") }
        var samples: [Sample] = []
        for (label, name) in classes.enumerated() {
            let dir = root + "/" + name
            let files = try fm.contentsOfDirectory(atPath: dir).filter {
                Self.imageExtensions.contains(($0 as NSString).pathExtension.lowercased())
            }.sorted()
            samples += files.map { Sample(path: dir + "/" + $0, label: label) }
        }
        guard !samples.isEmpty else { throw DatasetError("\(root) has class folders but no .png/.jpg images") }
        self.root = root
        self.classes = classes
        self.samples = samples
    }

    public init(root: String, classes: [String], samples: [Sample]) {
        self.root = root
        self.classes = classes
        self.samples = samples
    }

    /// Splits off a validation set: a seeded shuffle, then the last `fraction` of it. The same seed
    /// always gives the same split, so training, conversion and evaluation agree on what was held out.
    public func split(validationFraction fraction: Double, seed: UInt64 = 0) -> (train: ImageFolder, validation: ImageFolder) {
        var order = Array(samples.indices)
        var rng = SeededGenerator(seed: seed)
        order.shuffle(using: &rng)
        let nVal = Int((Double(samples.count) * fraction).rounded())
        let train = order.dropLast(nVal).sorted().map { samples[$0] }
        let val = order.suffix(nVal).sorted().map { samples[$0] }
        return (
            ImageFolder(root: root, classes: classes, samples: train),
            ImageFolder(root: root, classes: classes, samples: val)
        )
    }

    /// Keeps the first `limit` samples of a seeded shuffle (a class-balanced-in-expectation subset).
    public func subset(limit: Int, seed: UInt64 = 0) -> ImageFolder {
        guard limit < samples.count else { return self }
        var order = Array(samples.indices)
        var rng = SeededGenerator(seed: seed ^ 0x5EED)
        order.shuffle(using: &rng)
        return ImageFolder(root: root, classes: classes, samples: order.prefix(limit).sorted().map { samples[$0] })
    }
}

public struct DatasetError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Images decoded once and held in memory at a model's input geometry (8-bit, CHW), so epochs
/// after the first cost no decoding. MNIST's 60,000 images take 47 MB, CIFAR-10's 150 MB.
public struct ImageSet: Sendable {
    public var spec: InputSpec
    public var classes: [String]
    public var pixels: [UInt8]
    public var labels: [Int]

    public var count: Int { labels.count }

    public init(spec: InputSpec, classes: [String], pixels: [UInt8], labels: [Int]) {
        precondition(pixels.count == labels.count * spec.count)
        self.spec = spec
        self.classes = classes
        self.pixels = pixels
        self.labels = labels
    }

    /// Reads and decodes every sample on all cores. Fails on the first unreadable or undecodable
    /// file, naming it: a dataset with a broken image is better fixed than silently shrunk.
    public static func load(_ folder: ImageFolder, spec: InputSpec, maxPixels: Int = ImageDecoder.defaultMaxPixels) throws -> ImageSet {
        let n = folder.samples.count
        let per = spec.count
        var pixels = [UInt8](repeating: 0, count: n * per)
        let firstError = Mutex<String?>(nil)
        let samples = folder.samples
        pixels.withUnsafeMutableBufferPointer { buf in
            let base = SharedPointer(buf.baseAddress!)
            // The chunk count is read once: a worker thread may see a different core ceiling.
            let chunks = Parallel.cores * 8
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let lo = n * chunk / chunks, hi = n * (chunk + 1) / chunks
                for i in lo..<hi {
                    if firstError.withLock({ $0 != nil }) { return }
                    do {
                        guard let data = FileManager.default.contents(atPath: samples[i].path) else {
                            throw DatasetError("cannot read \(samples[i].path)")
                        }
                        let image = try ImageDecoder.decode([UInt8](data), grayscale: spec.channels == 1, maxPixels: maxPixels)
                            .prepared(for: spec)
                        image.writeCHW(into: base.base + i * per)
                    } catch {
                        let message = "\(samples[i].path): \(error)"
                        firstError.withLock { if $0 == nil { $0 = message } }
                    }
                }
            }
        }
        if let message = firstError.withLock({ $0 }) { throw DatasetError(message) }
        return ImageSet(spec: spec, classes: folder.classes, pixels: pixels, labels: samples.map(\.label))
    }

    /// Train-time augmentation as in the reference training scripts: random crop after zero
    /// padding, and (for natural images) random horizontal flips.
    public struct Augmentation: Sendable {
        public var cropPadding: Int
        public var horizontalFlip: Bool
        public init(cropPadding: Int = 0, horizontalFlip: Bool = false) {
            self.cropPadding = cropPadding
            self.horizontalFlip = horizontalFlip
        }
    }

    /// A normalised `[indices.count, C, H, W]` batch and its labels.
    public func batch(
        _ indices: some Collection<Int>, augmentation: Augmentation? = nil,
        generator: inout SeededGenerator
    ) -> (input: Tensor, labels: [Int]) {
        let (c, h, w) = (spec.channels, spec.height, spec.width)
        let per = spec.count
        var input = Tensor(shape: [indices.count, c, h, w])
        var labels: [Int] = []
        labels.reserveCapacity(indices.count)
        let scale = spec.std.map { 1 / (255 * $0) }
        let shift = zip(spec.mean, spec.std).map { $0 / $1 }
        input.withUnsafeMutablePointer { out in
            pixels.withUnsafeBufferPointer { px in
                for (b, index) in indices.enumerated() {
                    labels.append(self.labels[index])
                    let src = px.baseAddress! + index * per
                    let dst = out + b * per
                    var dy = 0, dx = 0, flip = false
                    if let a = augmentation {
                        if a.cropPadding > 0 {
                            dy = Int(generator.next() % UInt64(2 * a.cropPadding + 1)) - a.cropPadding
                            dx = Int(generator.next() % UInt64(2 * a.cropPadding + 1)) - a.cropPadding
                        }
                        flip = a.horizontalFlip && generator.next() & 1 == 1
                    }
                    for ch in 0..<c {
                        let plane = src + ch * h * w, o = dst + ch * h * w
                        // Padding pixels are black (0) before normalisation, as torchvision pads.
                        let zero = -shift[ch]
                        for y in 0..<h {
                            let sy = y + dy
                            for x in 0..<w {
                                let sx = (flip ? w - 1 - x : x) + dx
                                o[y * w + x] =
                                    (sy >= 0 && sy < h && sx >= 0 && sx < w)
                                    ? Float(plane[sy * w + sx]) * scale[ch] - shift[ch] : zero
                            }
                        }
                    }
                }
            }
        }
        return (input, labels)
    }

    /// Indices for one epoch in batches: shuffled by (seed, epoch) when `shuffle`, else in order.
    public func batches(size: Int, shuffle: Bool, seed: UInt64, epoch: Int) -> [[Int]] {
        var order = Array(0..<count)
        if shuffle {
            var rng = SeededGenerator(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
            order.shuffle(using: &rng)
        }
        return stride(from: 0, to: count, by: size).map { Array(order[$0..<min(count, $0 + size)]) }
    }
}

extension Image {
    /// Copies the pixels out in planar CHW order.
    func writeCHW(into out: UnsafeMutablePointer<UInt8>) {
        let plane = width * height
        for c in 0..<channels {
            for i in 0..<plane { out[c * plane + i] = pixels[i * channels + c] }
        }
    }
}
