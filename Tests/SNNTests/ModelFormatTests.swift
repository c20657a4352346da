import Foundation
import TensorKit
import Testing

@testable import SNN

@Suite struct ModelFormatTests {
    @Test(arguments: Architectures.names)
    func everyArchitectureIsConsistent(name: String) throws {
        for batchNorm in [false, true] {
            let layers = try Architectures.layers(for: name, batchNorm: batchNorm)
            let input = Architectures.input(for: name)
            #expect(try layers.outputShape(from: [input.channels, input.height, input.width]) == [10])
            let names = layers.parameterShapes().map(\.name)
            #expect(Set(names).count == names.count, "parameter names are unique")
            #expect(layers.neuronLayerCount > 0)
        }
        if name == "mnist-cnn" || name == "cifar-cnn" {
            try Model.initialized(name: name, architecture: name, labels: (0..<10).map(String.init), seed: 1).validate()
        }
    }

    @Test func referenceShapes() throws {
        let vgg16 = try Architectures.layers(for: "vgg16")
        #expect(vgg16.filter { $0.type == .conv2d }.count == 13)
        #expect(vgg16.filter { $0.type == .linear }.map { $0.outFeatures! } == [4096, 4096, 10])
        // The reference implementation's cfg for VGG9 and VGG11 (self_models/vgg_spiking.py).
        #expect(try Architectures.layers(for: "vgg9").filter { $0.type == .conv2d }.map { $0.outChannels! } == [64, 128, 256, 256, 512, 512, 512])
        #expect(
            try Architectures.layers(for: "vgg11").filter { $0.type == .conv2d }.map { $0.outChannels! } == [64, 128, 256, 512, 512, 512, 512, 512])
        #expect(try Architectures.layers(for: "vgg11").filter { $0.type == .avgpool }.count == 4)
        let resnet = try Architectures.layers(for: "resnet20")
        let convs =
            resnet.filter { $0.type == .conv2d }.count
            + resnet.filter { $0.type == .residual }.reduce(0) { $0 + $1.body!.filter { $0.type == .conv2d }.count }
        // 3 pre-processing convs + 8 blocks × 2 + 1 classifier = 20 weighted layers (shortcuts aside).
        #expect(convs + resnet.filter { $0.type == .linear }.count == 20)
        #expect(resnet.filter { $0.type == .residual }.filter { !($0.shortcut ?? []).isEmpty }.count == 3)
    }

    @Test func saveAndLoadRoundTrip() throws {
        var model = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: (0..<10).map(String.init), seed: 3)
        model.description.snn = SNNConfig(thresholds: [1, 2, 3])
        model.description.provenance.accuracies["snn_t32"] = 0.99
        let dir = temporaryDirectory("roundtrip") + "/model"
        try model.save(to: dir)
        let loaded = try Model.load(from: dir)
        #expect(loaded.description == model.description)
        #expect(loaded.tensors == model.tensors)
        // Saving again replaces the directory atomically and leaves no temporary siblings.
        try model.save(to: dir)
        let siblings = try FileManager.default.contentsOfDirectory(atPath: (dir as NSString).deletingLastPathComponent)
        #expect(siblings == ["model"])
    }

    /// `train --initialize-from`: a ReLU network's weights start a QCFS one of the same
    /// architecture (clips keep their initial value); missing or mis-shaped tensors are named.
    @Test func initializingWeightsFromAnotherRun() throws {
        let labels = (0..<10).map(String.init)
        let relu = try Model.initialized(name: "relu", architecture: "mnist-cnn", labels: labels, seed: 1)
        let qcfs = try Model.initialized(name: "q", architecture: "mnist-cnn", labels: labels, qcfsLevels: 8, seed: 2)
        let started = try qcfs.initializingWeights(from: relu)
        for (name, tensor) in relu.tensors { #expect(started.tensors[name] == tensor, "\(name)") }
        let clips = started.tensors.keys.filter { $0.hasSuffix(".clip") }
        #expect(clips.count == 3)
        for name in clips { #expect(started.tensors[name]!.scalars.allSatisfy { $0 == Model.initialClip }) }
        try started.validate()

        var missing = relu
        missing.tensors["classifier.0.weight"] = nil
        #expect(throws: ModelError("relu has no tensor classifier.0.weight")) { try qcfs.initializingWeights(from: missing) }
        var misshaped = relu
        misshaped.tensors["classifier.3.weight"] = Tensor(shape: [10, 128])
        #expect(throws: ModelError("tensor classifier.3.weight is [10, 128] in relu, expected [10, 256]")) {
            try qcfs.initializingWeights(from: misshaped)
        }
        let other = try Model.initialized(name: "other", architecture: "mnist-cnn", labels: labels.reversed(), seed: 1)
        #expect(throws: ModelError.self) { try qcfs.initializingWeights(from: other) }
    }

    /// `ann.safetensors` must name exactly the tensors of `weights.safetensors`, with valid values.
    @Test func sourceANNIsValidatedAgainstTheModel() throws {
        var model = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: (0..<10).map(String.init), seed: 3)
        model.sourceANNTensors = model.tensors
        try model.validate()
        model.sourceANNTensors?["extra"] = Tensor(shape: [1_000])
        #expect(throws: ModelError("ann.safetensors: its tensor names differ from weights.safetensors's")) { try model.validate() }
        model.sourceANNTensors = model.tensors
        model.sourceANNTensors?["features.0.weight"] = Tensor(shape: [32, 1, 3, 3], repeating: .nan)
        #expect(throws: ModelError.self) { try model.validate() }
        // A directory's ann.safetensors is read unless the caller (the server) skips it.
        model.sourceANNTensors = model.tensors.mapValues { Tensor(shape: $0.shape, repeating: 0.5) }
        let dir = temporaryDirectory("source-ann") + "/model"
        try model.save(to: dir)
        #expect(try Model.load(from: dir).ann.tensors == model.sourceANNTensors)
        #expect(try Model.load(from: dir, sourceANN: false).sourceANNTensors == nil)
        #expect(try Model.load(from: dir, sourceANN: false).ann.tensors == model.tensors)
    }

    @Test func safetensorsLayoutIsTheDocumentedOne() throws {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let data = try SafeTensors.encode(["a": t, "b": Tensor(shape: [1], scalars: [7])], metadata: ["k": "v"])
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        #expect(n % 8 == 0)
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + n)) as! [String: Any]
        let a = header["a"] as! [String: Any]
        #expect(a["dtype"] as? String == "F32" && a["shape"] as? [Int] == [2, 3] && a["data_offsets"] as? [Int] == [0, 24])
        #expect((header["__metadata__"] as? [String: String]) == ["k": "v"])
        let floats = data.subdata(in: 8 + n..<8 + n + 24).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(floats == [1, 2, 3, 4, 5, 6])
        let decoded = try SafeTensors.decode(data)
        #expect(decoded.tensors["a"] == t && decoded.metadata == ["k": "v"])
    }

    @Test func malformedModelsAreRejectedWithTheProblemNamed() throws {
        let good = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: (0..<10).map(String.init), seed: 3)
        func expectRejected(_ model: Model, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(sourceLocation: sourceLocation) { try model.validate() } throws: { "\($0)".contains(text) }
        }
        var missing = good
        missing.tensors["features.4.weight"] = nil
        expectRejected(missing, mentioning: "missing tensor 'features.4.weight'")
        var wrongShape = good
        wrongShape.tensors["classifier.0.weight"] = Tensor(shape: [256, 3000])
        expectRejected(wrongShape, mentioning: "'classifier.0.weight' has shape [256, 3000]")
        var labels = good
        labels.description.labels = ["a", "b"]
        expectRejected(labels, mentioning: "2 labels")
        var thresholds = good
        thresholds.description.snn = SNNConfig(thresholds: [1])
        expectRejected(thresholds, mentioning: "1 entries for 3 spiking layers")
        var chain = good
        chain.description.layers[4].inChannels = 16
        expectRejected(chain, mentioning: "layers[4]")
        var nan = good
        nan.tensors["classifier.3.weight"]!.scalars[0] = .nan
        expectRejected(nan, mentioning: "NaN")

        let dir = temporaryDirectory("malformed")
        try Data("{\"format_version\": 1, \"name\": \"x\"}".utf8).write(to: URL(fileURLWithPath: dir + "/model.json"))
        #expect { try Model.load(from: dir) } throws: { "\($0)".contains("missing field") }
        try good.save(to: dir + "/ok")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/ok/weights.safetensors"))
        #expect { try Model.load(from: dir + "/ok") } throws: { "\($0)".contains("weights file") }
    }

    /// mnist-cnn's multiply-accumulates per image, by hand: 28·28·32·9 + 14·14·64·(32·9) +
    /// 3136·256 + 256·10.
    @Test func annMultiplyAccumulates() throws {
        let model = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: (0..<10).map(String.init), seed: 3)
        #expect(model.multiplyAccumulatesPerImage == 28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 256 + 256 * 10)
    }
}
