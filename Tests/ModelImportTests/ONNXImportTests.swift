import Foundation
import Imaging
import SNN
import TensorKit
import Testing

@testable import ModelImport

func fixture(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)!.path
}

/// What scripts/make-onnx-fixtures.py wrote beside each model: uint8 images and the logits
/// onnxruntime computed for image / 255.
struct ExpectedOutputs: Decodable {
    var inputShape: [Int]
    var images: [[Int]]
    var logits: [[Float]]

    enum CodingKeys: String, CodingKey { case inputShape = "input_shape", images, logits }

    init(_ name: String) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(contentsOf: URL(fileURLWithPath: fixture(name + ".expected.json"))))
    }

    var input: Tensor {
        Tensor(shape: [images.count] + inputShape, scalars: images.flatMap { $0.map { Float($0) / 255 } })
    }
}

/// The importer against ONNX files written by `torch.onnx.export` (both exporters) and by the
/// `onnx` package, checked against onnxruntime's outputs.
@Suite struct ONNXImportTests {
    static let accepted = ["torch-vgg", "torch-resnet", "torch-meanpool", "torch-dynamo", "onnx-matmul-fp16", "onnx-bn-constant", "onnx-external"]

    @Test(arguments: accepted)
    func importedANNMatchesONNXRuntime(_ name: String) throws {
        let expected = try ExpectedOutputs(name)
        let model = try ONNXImporter.importModel(at: fixture(name + ".onnx"), options: .init())
        let logits = try model.annLogits(expected.input)
        #expect(logits.shape == [expected.images.count, expected.logits[0].count])
        let worst = zip(logits.scalars, expected.logits.flatMap { $0 }).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-4, "\(name): largest difference \(worst)")
    }

    /// Every operator the importer supports appears in at least one accepted fixture.
    @Test func fixturesCoverEverySupportedOperator() throws {
        var seen: Set<String> = []
        for name in Self.accepted {
            let proto = try Onnx_ModelProto(serializedBytes: Data(contentsOf: URL(fileURLWithPath: fixture(name + ".onnx"))))
            seen.formUnion(proto.graph.node.map(\.opType))
        }
        let missing = Set(ONNXImporter.supportedOperators).subtracting(seen)
        #expect(missing.isEmpty, "no fixture uses \(missing.sorted())")
    }

    /// The shapes that residual blocks, folded batch norms and biases take in the layer list.
    @Test func resnetBecomesResidualBlocksWithFoldedBatchNorm() throws {
        let model = try ONNXImporter.importModel(at: fixture("torch-resnet.onnx"), options: .init())
        let layers = model.description.layers
        #expect(layers.filter { $0.type == .residual }.count == 2)
        #expect(!layers.contains { $0.type == .batchnorm })
        let second = try #require(layers.last { $0.type == .residual })
        #expect(second.shortcut?.first?.type == .conv2d && second.shortcut?.first?.kernel == 1 && second.shortcut?.first?.stride == 2)
        let first = try #require(layers.first { $0.type == .residual })
        #expect(first.shortcut?.isEmpty == true && first.body?.filter { $0.type == .conv2d }.count == 2)
        #expect(layers.last?.type == .linear && layers.last?.hasBias == true)
        #expect(model.description.labels == (0..<10).map(String.init))
    }

    @Test func optionsSetLabelsAndNormalisation() throws {
        var options = ImportOptions()
        options.name = "vgg"
        options.labels = (0..<10).map { "class \($0)" }
        options.mean = [0.5, 0.5, 0.5]
        options.std = [0.25, 0.25, 0.25]
        let model = try ONNXImporter.importModel(at: fixture("torch-vgg.onnx"), options: options)
        #expect(model.description.name == "vgg" && model.description.labels[3] == "class 3")
        #expect(model.description.input.mean == [0.5, 0.5, 0.5] && model.description.input.height == 16)
        options.labels = ["a", "b"]
        #expect(throws: ImportError.graph("2 labels for 10 outputs")) {
            try ONNXImporter.importModel(at: fixture("torch-vgg.onnx"), options: options)
        }
        var sized = ImportOptions()
        sized.inputSize = [3, 32, 32]
        #expect(throws: ImportError.self) { try ONNXImporter.importModel(at: fixture("torch-resnet.onnx"), options: sized) }
    }

    /// An imported network converts and runs as an SNN (the path users take next).
    @Test func importedNetworkConvertsAndRuns() throws {
        let model = try ONNXImporter.importModel(at: fixture("torch-resnet.onnx"), options: .init())
        let expected = try ExpectedOutputs("torch-resnet")
        var configuration = Converter.Configuration()
        configuration.calibrationImages = 1
        configuration.calibrationTimesteps = 8
        configuration.encoding = .direct
        let calibration = ImageSet(
            spec: model.description.inputSpec, classes: model.description.labels,
            pixels: expected.images.flatMap { $0.map { UInt8($0) } }, labels: [0])
        let snn = try Converter.convert(model, calibration: calibration, configuration: configuration)
        var engine = try SpikingEngine(model: snn)
        let result = engine.run(expected.input, options: .init(timesteps: 16, seeds: [0]))
        #expect(result.scores(image: 0).count == 10)
    }

    static let refusals: [String: String] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: fixture("refusals.json")))
        return try! JSONDecoder().decode([String: String].self, from: data)
    }()

    @Test(arguments: refusals.keys.sorted())
    func refusedWithAReasonNamingTheNode(_ name: String) throws {
        let phrase = try #require(Self.refusals[name])
        do {
            _ = try ONNXImporter.importModel(at: fixture(name + ".onnx"), options: .init())
            Issue.record("\(name) was imported")
        } catch {
            #expect(error.description.contains(phrase), "\(name): \(error)")
            if case .unsupportedNode(let node, let opType, let index, _) = error {
                #expect(!node.isEmpty && !opType.isEmpty && index >= 0)
            }
        }
    }

    /// Corrupted files (random byte changes and truncations of every accepted fixture) are
    /// imported or refused with an `ImportError`, never a crash. Random corruption rarely builds
    /// a hostile graph; the refuse-* fixtures built by hand (zero strides, huge pads and inputs,
    /// redefined values, exploding shape computations) cover those.
    @Test(arguments: accepted)
    func corruptedFilesAreRefusedNotCrashedOn(_ name: String) throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(name + ".onnx"))))
        var rng = SeededGenerator(seed: 11)
        var refused = 0
        for trial in 0..<300 {
            var bytes = original
            if trial % 10 == 0 {
                bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            } else {
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            do {
                let model = try ONNXImporter.importModel(Data(bytes), directory: nil, options: .init())
                try model.validate()
            } catch {
                refused += 1
            }
        }
        #expect(refused > 0)
    }

    @Test func halfPrecisionConversionIsExact() {
        #expect(Float(halfBits: 0x3C00) == 1)
        #expect(Float(halfBits: 0xC000) == -2)
        #expect(Float(halfBits: 0x7BFF) == 65504)
        #expect(Float(halfBits: 0x0001) == 0x1p-24)
        #expect(Float(halfBits: 0x8000).sign == .minus && Float(halfBits: 0x8000) == 0)
        #expect(Float(halfBits: 0x7C00) == .infinity && Float(halfBits: 0x7E00).isNaN)
    }
}
