import Foundation
import SNN
import TensorKit
import Testing

@testable import ModelImport

/// State dicts of the built-in architectures, written the way PyTorch's `safetensors` package
/// writes them (with batch norm's integer `num_batches_tracked`).
@Suite struct StateDictImportTests {
    /// Random weights under the architecture's names, plus extras.
    static func stateDict(_ arch: String, batchNorm: Bool = false, classes: Int = 10) throws -> [String: Tensor] {
        var rng = SeededGenerator(seed: 5)
        let layers = try Architectures.layers(for: arch, classes: classes, batchNorm: batchNorm)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in layers.parameterShapes() + layers.bufferShapes() {
            tensors[name] = Tensor.kaimingNormal(shape: shape, fanIn: max(1, shape.dropFirst().reduce(1, *)), generator: &rng)
            if name.hasSuffix("running_var") { tensors[name]!.scalars = tensors[name]!.scalars.map { abs($0) + 0.5 } }
        }
        return tensors
    }

    static func importing(_ tensors: [String: Tensor], _ arch: String) throws -> Model {
        try StateDictImporter.importModel(SafeTensors.encode(tensors), architecture: arch, options: .init())
    }

    /// The reference implementation's names (self_models/vgg_spiking.py, resnet_spiking.py).
    @Test func referenceNamesImport() throws {
        let vgg = try Self.importing(Self.stateDict("vgg5"), "vgg5")
        #expect(vgg.tensors["features.0.weight"]?.shape == [64, 3, 3, 3] && vgg.tensors["classifier.6.weight"]?.shape == [10, 4096])
        let resnet = try Self.importing(Self.stateDict("resnet20"), "resnet20")
        #expect(resnet.tensors["pre_process.0.weight"] != nil && resnet.tensors["layer2.0.identity.0.weight"] != nil)
        #expect(resnet.description.architecture == "resnet20" && resnet.description.labels.count == 10)
    }

    /// The state-dict keys and shapes of the reference implementation's CIFAR-10 VGG16 and
    /// ResNet20, written out by hand from its self_models/vgg.py and resnet.py (conv, ReLU and
    /// dropout per configuration entry, the last dropout before each pool replaced by the pool;
    /// pre_process, residual, identity and classifier Sequentials).
    @Test func architecturesHaveTheReferenceImplementationsKeys() throws {
        var vgg16: [String: [Int]] = [:]
        let convs: [(Int, Int, Int)] = [
            (0, 3, 64), (3, 64, 64), (6, 64, 128), (9, 128, 128), (12, 128, 256), (15, 256, 256), (18, 256, 256),
            (21, 256, 512), (24, 512, 512), (27, 512, 512), (30, 512, 512), (33, 512, 512), (36, 512, 512),
        ]
        for (index, input, output) in convs { vgg16["features.\(index).weight"] = [output, input, 3, 3] }
        vgg16["classifier.0.weight"] = [4096, 2048]
        vgg16["classifier.3.weight"] = [4096, 4096]
        vgg16["classifier.6.weight"] = [10, 4096]
        let ours = try Architectures.layers(for: "vgg16").parameterShapes()
        #expect(Dictionary(uniqueKeysWithValues: ours.map { ($0.name, $0.shape) }) == vgg16)

        var resnet20: [String: [Int]] = [
            "pre_process.0.weight": [64, 3, 3, 3], "pre_process.3.weight": [64, 64, 3, 3], "pre_process.6.weight": [64, 64, 3, 3],
            "classifier.0.weight": [10, 2048],
        ]
        var input = 64
        for (stage, width) in [64, 128, 256, 512].enumerated() {
            for block in 0..<2 {
                let prefix = "layer\(stage + 1).\(block)"
                resnet20[prefix + ".residual.0.weight"] = [width, input, 3, 3]
                resnet20[prefix + ".residual.3.weight"] = [width, width, 3, 3]
                if input != width { resnet20[prefix + ".identity.0.weight"] = [width, input, 1, 1] }
                input = width
            }
        }
        let ourResNet = try Architectures.layers(for: "resnet20").parameterShapes()
        #expect(Dictionary(uniqueKeysWithValues: ourResNet.map { ($0.name, $0.shape) }) == resnet20)
    }

    @Test func classesComeFromTheOutputLayer() throws {
        let model = try Self.importing(Self.stateDict("mnist-cnn", classes: 7), "mnist-cnn")
        #expect(model.description.labels == (0..<7).map(String.init))
        #expect(model.description.input.channels == 1)
    }

    @Test func batchNormStatisticsAndBiasesSwitchThoseLayersOn() throws {
        var tensors = try Self.stateDict("cifar-cnn", batchNorm: true)
        tensors["features.1.num_batches_tracked"] = Tensor(shape: [], scalars: [100])
        tensors["classifier.0.bias"] = Tensor(shape: [256], repeating: 0.1)
        let model = try Self.importing(tensors, "cifar-cnn")
        #expect(model.description.layers.contains { $0.type == .batchnorm })
        #expect(model.description.layers.first { $0.name == "classifier.0" }?.hasBias == true)
        #expect(model.tensors["features.1.num_batches_tracked"] == nil)
    }

    @Test func missingExtraAndMisshapedTensorsAreNamed() throws {
        var missing = try Self.stateDict("mnist-cnn")
        missing["features.4.weight"] = nil
        #expect(throws: ImportError.self) { try Self.importing(missing, "mnist-cnn") }
        do { _ = try Self.importing(missing, "mnist-cnn") } catch { #expect("\(error)".contains("'features.4.weight': missing")) }

        var extra = try Self.stateDict("mnist-cnn")
        extra["head.weight"] = Tensor(shape: [2, 2])
        do {
            _ = try Self.importing(extra, "mnist-cnn")
            Issue.record("extra tensor accepted")
        } catch { #expect("\(error)".contains("'head.weight': is not part of architecture mnist-cnn")) }

        var misshaped = try Self.stateDict("mnist-cnn")
        misshaped["features.0.weight"] = Tensor(shape: [32, 1, 5, 5])
        do {
            _ = try Self.importing(misshaped, "mnist-cnn")
            Issue.record("misshaped tensor accepted")
        } catch { #expect("\(error)".contains("'features.0.weight': has shape [32, 1, 5, 5]")) }

        #expect(throws: ImportError.self) { try Self.importing(Self.stateDict("mnist-cnn"), "vgg99") }
        #expect(throws: ImportError.self) {
            try StateDictImporter.importModel(Data("not safetensors".utf8), architecture: "mnist-cnn", options: .init())
        }
    }

    /// Half-precision and bfloat16 state dicts (`model.half()`) read as Float32.
    @Test func halfAndBFloat16TensorsAreRead() throws {
        // A hand-written safetensors file: 2 float16 values (1, -2) and 2 bfloat16 values (1, 0.5).
        let header = #"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}"#
        var data = Data()
        var length = UInt64(header.utf8.count).littleEndian
        data.append(Data(bytes: &length, count: 8))
        data.append(Data(header.utf8))
        data.append(contentsOf: [0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F, 0x00, 0x3F])
        let tensors = try SafeTensors.decode(data).tensors
        #expect(tensors["a"]?.scalars == [1, -2] && tensors["b"]?.scalars == [1, 0.5])
    }
}
