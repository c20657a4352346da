import Foundation
import SNN
import TensorKit
import Testing

@testable import Serving

/// Work per request, not time: after a batch of 32 has grown an engine's scratch, a batch of one
/// must reuse it. (The inference thread once copied its engine out of a dictionary and back, so
/// every later request duplicated the batch-32 scratch: 20+ ms and 150 MB more after one burst.)
@Suite struct EngineCacheTests {
    @Test func smallBatchAfterLargeOneAllocatesNoScratch() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cache-\(UUID().uuidString.prefix(8))").path
        let model = tinyModel(seed: 1)
        let version = ModelStore.Version(name: "tiny", number: 1, model: model, snn: try #require(model.description.snn), directory: directory)
        var cache = EngineCache()
        func run(_ images: Int) throws {
            let x = Tensor(shape: [images, 1, 28, 28], repeating: 0.5)
            // Dense layers: the path that uses im2col scratch.
            _ = try cache.run(
                x, version: version,
                options: .init(
                    timesteps: 8, seeds: (0..<images).map { UInt64($0) },
                    synapticPath: .dense))
        }
        try run(32)
        let afterLarge = try #require(cache.allocatedScratchFloats(version))
        #expect(afterLarge > 0, "dense convolutions use im2col scratch")
        for _ in 0..<3 { try run(1) }
        #expect(cache.allocatedScratchFloats(version) == afterLarge)
        try run(32)
        #expect(cache.allocatedScratchFloats(version) == afterLarge)
    }

    /// The fault's kind: a copied workspace must not share (and so silently duplicate) scratch;
    /// it starts its own, and the original keeps its buffers.
    @Test func copiedWorkspaceAllocatesItsOwnScratch() {
        var original = Workspace()
        let x = Tensor(shape: [4, 2, 6, 6], repeating: 1)
        let w = Tensor(shape: [3, 2, 3, 3], repeating: 0.5)
        let g = Conv2DGeometry(inChannels: 2, outChannels: 3, kernel: 3, padding: 1)
        _ = conv2d(x, weight: w, geometry: g, workspace: &original)
        let grown = original.allocatedFloats
        var copy = original
        _ = conv2d(x, weight: w, geometry: g, workspace: &copy)
        #expect(copy.allocatedFloats > grown)
        _ = conv2d(x, weight: w, geometry: g, workspace: &original)
        #expect(original.allocatedFloats == grown)
    }
}
