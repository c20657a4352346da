import Foundation
import Imaging
import TensorKit

/// The contents of `model.json`. See docs/model-format.md for the field-by-field description.
public struct ModelDescription: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var name: String
    public var architecture: String
    public var input: InputDescription
    public var labels: [String]
    public var layers: [LayerSpec]
    /// Present once the ANN has been converted; absent for an ANN checkpoint from `train`.
    public var snn: SNNConfig?
    public var provenance: Provenance

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", name, architecture, input, labels, layers, snn, provenance
    }

    public init(
        name: String, architecture: String, input: InputDescription, labels: [String], layers: [LayerSpec],
        snn: SNNConfig? = nil, provenance: Provenance = Provenance()
    ) {
        self.formatVersion = Self.currentFormatVersion
        self.name = name
        self.architecture = architecture
        self.input = input
        self.labels = labels
        self.layers = layers
        self.snn = snn
        self.provenance = provenance
    }

    public var inputSpec: InputSpec { input }
}

/// How the SNN runs: one threshold per spiking layer (per `relu`, in traversal order).
public struct SNNConfig: Codable, Sendable, Equatable {
    public enum Encoding: String, Codable, Sendable, CaseIterable { case poisson, direct }

    public var thresholds: [Float]
    /// Membrane leak per step; 1 is integrate-and-fire.
    public var leak: Float
    /// Per-layer leaks, present once fine-tuning has trained them; overrides `leak`.
    public var leaks: [Float]?
    public var encoding: Encoding
    public var defaultTimesteps: Int
    public var maxTimesteps: Int
    /// The reference implementation's one-step delay per layer; off by default.
    public var lagged: Bool
    public var conversion: ConversionSettings?
    /// Membrane potential before the first step, as a fraction of each layer's threshold; nil is
    /// 0, the reference method's. ½ centres the rounding error of the spike count on zero (QCFS,
    /// Bu et al., ICLR 2022), which matters when T is a few steps.
    public var initialMembrane: Float?
    /// The calibrated rule for adaptive time steps (`spikeserve calibrate-exit`), used when a
    /// request asks for adaptive steps; nil: not calibrated.
    public var exitPolicy: ExitPolicy?
    /// The value a spike of each spiking layer carries into the layers after it; nil is 1 (the
    /// paper's: thresholds are balanced on unit spikes). Conversion from QCFS clips sets θ_k, the
    /// largest activation the spike replaces.
    public var spikeAmplitudes: [Float]?

    /// The value a spike of layer `k` carries.
    public func spikeAmplitude(layer k: Int) -> Float { spikeAmplitudes?[k] ?? 1 }

    enum CodingKeys: String, CodingKey {
        case thresholds, leak, leaks, encoding, lagged, conversion
        case defaultTimesteps = "default_timesteps", maxTimesteps = "max_timesteps", initialMembrane = "initial_membrane"
        case exitPolicy = "exit_policy", spikeAmplitudes = "spike_amplitudes"
    }

    /// The membrane potential before the first step of spiking layer `k`.
    public func initialPotential(layer k: Int) -> Float { (initialMembrane ?? 0) * thresholds[k] }

    public init(
        thresholds: [Float], leak: Float = 1, encoding: Encoding = .poisson, defaultTimesteps: Int = 32,
        maxTimesteps: Int = 512, lagged: Bool = false, conversion: ConversionSettings? = nil
    ) {
        self.thresholds = thresholds
        self.leak = leak
        self.encoding = encoding
        self.defaultTimesteps = defaultTimesteps
        self.maxTimesteps = maxTimesteps
        self.lagged = lagged
        self.conversion = conversion
    }
}

public struct ConversionSettings: Codable, Sendable, Equatable {
    public var scale: Float
    public var percentile: Float?
    public var calibrationImages: Int
    public var calibrationTimesteps: Int
    enum CodingKeys: String, CodingKey {
        case scale, percentile
        case calibrationImages = "calibration_images", calibrationTimesteps = "calibration_timesteps"
    }
    public init(scale: Float, percentile: Float?, calibrationImages: Int, calibrationTimesteps: Int) {
        self.scale = scale
        self.percentile = percentile
        self.calibrationImages = calibrationImages
        self.calibrationTimesteps = calibrationTimesteps
    }
}

/// Where a model came from and how well it did, so a served model can answer "what is this?".
public struct Provenance: Codable, Sendable, Equatable {
    public var createdAt: String?
    public var data: String?
    public var validationSplit: Double?
    public var epochs: Int?
    public var baseModel: String?
    /// Accuracies on the validation split: "ann", "snn_t32", "hybrid_t8", …
    public var accuracies: [String: Double]
    public var commands: [String]
    public var notes: [String: String]

    enum CodingKeys: String, CodingKey {
        case createdAt = "created_at", data, validationSplit = "validation_split", epochs
        case baseModel = "base_model", accuracies, commands, notes
    }

    public init() {
        accuracies = [:]
        commands = []
        notes = [:]
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        createdAt = try c.decodeIfPresent(String.self, forKey: .createdAt)
        data = try c.decodeIfPresent(String.self, forKey: .data)
        validationSplit = try c.decodeIfPresent(Double.self, forKey: .validationSplit)
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs)
        baseModel = try c.decodeIfPresent(String.self, forKey: .baseModel)
        accuracies = try c.decodeIfPresent([String: Double].self, forKey: .accuracies) ?? [:]
        commands = try c.decodeIfPresent([String].self, forKey: .commands) ?? []
        notes = try c.decodeIfPresent([String: String].self, forKey: .notes) ?? [:]
    }
}

/// A model in memory: its description and its named tensors (weights, biases, BN statistics).
public struct Model: Sendable {
    public var description: ModelDescription
    public var tensors: [String: Tensor]
    /// The tensors of the ANN this SNN was converted from, when spike-based fine-tuning has since
    /// changed `tensors` (`ann.safetensors`; same names and shapes). Fine-tuned weights are tuned
    /// for spiking and no longer make a good ANN, so `ann` keeps the network the SNN came from.
    public var sourceANNTensors: [String: Tensor]?

    public init(description: ModelDescription, tensors: [String: Tensor], sourceANNTensors: [String: Tensor]? = nil) {
        self.description = description
        self.tensors = tensors
        self.sourceANNTensors = sourceANNTensors
    }

    /// The ANN this model runs as with `--ann`: the network it was converted from when it has been
    /// fine-tuned since (`sourceANNTensors`), else its own weights.
    public var ann: Model {
        guard let sourceANNTensors else { return self }
        return Model(description: description, tensors: sourceANNTensors)
    }

    /// Initial clip λ of `qcfs` activations (trained from there; the QCFS paper starts at 8 for
    /// CIFAR-10 inputs, MNIST's normalised activations are smaller).
    public static let initialClip: Float = 4

    /// A fresh model with He-initialised weights, BN at identity, for training.
    public static func initialized(
        name: String, architecture: String, labels: [String], batchNorm: Bool = false, qcfsLevels: Int? = nil,
        seed: UInt64
    ) throws -> Model {
        let layers = try Architectures.layers(for: architecture, classes: labels.count, batchNorm: batchNorm, qcfsLevels: qcfsLevels)
        let desc = ModelDescription(
            name: name, architecture: architecture, input: Architectures.input(for: architecture),
            labels: labels, layers: layers)
        var rng = SeededGenerator(seed: seed)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in layers.parameterShapes() {
            if name.hasSuffix(".bias") {
                tensors[name] = Tensor(shape: shape)
            } else if name.hasSuffix(".clip") {
                tensors[name] = Tensor(shape: shape, repeating: initialClip)
            } else if shape.count == 1 {
                tensors[name] = Tensor(shape: shape, repeating: 1)  // batch-norm scale
            } else {
                tensors[name] = .kaimingNormal(shape: shape, fanIn: shape.dropFirst().reduce(1, *), generator: &rng)
            }
        }
        for (name, shape) in layers.bufferShapes() {
            tensors[name] = Tensor(shape: shape, repeating: name.hasSuffix("running_var") ? 1 : 0)
        }
        let model = Model(description: desc, tensors: tensors)
        try model.validate()
        return model
    }

    /// This model with the weights, biases and batch-norm statistics of `source` (same names and
    /// shapes), for continuing training from another run — e.g. a ReLU ANN whose activations are
    /// now `qcfs`. Tensors this model has and `source` lacks keep their initial values only if they
    /// are QCFS clips; any other missing or mis-shaped tensor is an error naming it.
    public func initializingWeights(from source: Model) throws(ModelError) -> Model {
        guard source.description.labels == description.labels else {
            throw ModelError("\(source.description.name) has the labels \(source.description.labels), the data \(description.labels)")
        }
        var result = self
        for (name, tensor) in tensors {
            guard let given = source.tensors[name] else {
                if name.hasSuffix(".clip") { continue }
                throw ModelError("\(source.description.name) has no tensor \(name)")
            }
            guard given.shape == tensor.shape else {
                throw ModelError("tensor \(name) is \(given.shape) in \(source.description.name), expected \(tensor.shape)")
            }
            result.tensors[name] = given
        }
        return result
    }

    /// Checks the description and that every tensor the layers need is present with the right shape.
    public func validate() throws(ModelError) {
        let d = description
        guard d.formatVersion == ModelDescription.currentFormatVersion else {
            throw ModelError("model.json format_version \(d.formatVersion) is not supported (expected \(ModelDescription.currentFormatVersion))")
        }
        guard d.input.channels > 0, d.input.height > 0, d.input.width > 0 else { throw ModelError("model.json: input has a zero dimension") }
        guard d.input.mean.count == d.input.channels, d.input.std.count == d.input.channels, d.input.std.allSatisfy({ $0 > 0 }) else {
            throw ModelError("model.json: input mean/std need one positive entry per channel (\(d.input.channels))")
        }
        // Compiling checks every layer's fields and every tensor's presence, shape and values.
        let out = try Layer.compile(d.layers, tensors: tensors, input: [d.input.channels, d.input.height, d.input.width]).output
        guard out == [d.labels.count] else {
            throw ModelError("model.json: the network outputs \(out) but there are \(d.labels.count) labels")
        }
        if let sourceANNTensors {
            guard Set(sourceANNTensors.keys) == Set(tensors.keys) else {
                throw ModelError("\(Self.sourceANNFile): its tensor names differ from \(Self.weightsFile)'s")
            }
            do { _ = try Layer.compile(d.layers, tensors: sourceANNTensors, input: [d.input.channels, d.input.height, d.input.width]) } catch {
                throw ModelError("\(Self.sourceANNFile): \(error.description)")
            }
        }
        if let snn = d.snn {
            let n = d.layers.neuronLayerCount
            guard snn.thresholds.count == n else {
                throw ModelError("model.json: snn.thresholds has \(snn.thresholds.count) entries for \(n) spiking layers")
            }
            guard snn.thresholds.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw ModelError("model.json: thresholds must be positive") }
            guard snn.leak > 0 && snn.leak <= 1 else { throw ModelError("model.json: snn.leak must be in (0, 1]") }
            if let leaks = snn.leaks {
                guard leaks.count == n, leaks.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
                    throw ModelError("model.json: snn.leaks needs \(n) entries in (0, 1]")
                }
            }
            if let p = snn.exitPolicy, !(p.minTimesteps >= 1 && p.interval >= 1 && p.threshold.isFinite) {
                throw ModelError("model.json: snn.exit_policy needs min_timesteps ≥ 1, interval ≥ 1 and a finite threshold")
            }
            if let a = snn.spikeAmplitudes, a.count != n || !a.allSatisfy({ $0 > 0 && $0.isFinite }) {
                throw ModelError("model.json: snn.spike_amplitudes needs \(n) positive entries")
            }
            if let f = snn.initialMembrane, !(f >= 0 && f <= 1) {
                throw ModelError("model.json: snn.initial_membrane must be a fraction of the threshold in [0, 1]")
            }
            guard snn.defaultTimesteps >= 1, snn.maxTimesteps >= snn.defaultTimesteps else {
                throw ModelError("model.json: need 1 ≤ default_timesteps ≤ max_timesteps")
            }
            guard !d.layers.containsKind(.maxpool), !d.layers.containsKind(.batchnorm) else {
                throw ModelError("model.json: an SNN cannot contain maxpool or unfolded batchnorm layers")
            }
        }
    }

    public static let descriptionFile = "model.json"
    public static let weightsFile = "weights.safetensors"
    public static let sourceANNFile = "ann.safetensors"

    /// Loads a model directory, or a served model root's default version (see `ModelDirectory`).
    /// - Parameter sourceANN: also read `ann.safetensors` (the server does not: it never runs the
    ///   source ANN, and a fine-tuning job reads it with `loadSourceANN(in:)`).
    public static func load(from path: String, sourceANN readSourceANN: Bool = true) throws -> Model {
        let directory = ModelDirectory.resolve(path)
        let dir = URL(fileURLWithPath: directory)
        let jsonData: Data
        do { jsonData = try Data(contentsOf: dir.appendingPathComponent(descriptionFile)) } catch {
            throw ModelError("\(directory): cannot read \(descriptionFile)")
        }
        let desc: ModelDescription
        do { desc = try JSONDecoder().decode(ModelDescription.self, from: jsonData) } catch {
            throw ModelError("\(directory)/\(descriptionFile) is malformed: \(describe(error))")
        }
        let weightData: Data
        do { weightData = try Data(contentsOf: dir.appendingPathComponent(weightsFile), options: .mappedIfSafe) } catch {
            throw ModelError("\(directory): cannot read \(weightsFile)")
        }
        let tensors = try SafeTensors.decode(weightData).tensors
        let sourceANN = readSourceANN ? try loadSourceANN(in: directory) : nil
        let model = Model(description: desc, tensors: tensors, sourceANNTensors: sourceANN)
        try model.validate()
        return model
    }

    /// The tensors of a model directory's `ann.safetensors`, or nil when it has none (validated
    /// against the model when it is attached and checked with `validate()`).
    public static func loadSourceANN(in directory: String) throws(ModelError) -> [String: Tensor]? {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(sourceANNFile)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try SafeTensors.decode(Data(contentsOf: url, options: .mappedIfSafe)).tensors } catch {
            throw ModelError("\(directory): cannot read \(sourceANNFile): \(describe(error))")
        }
    }

    /// The files of a model directory, encoded.
    public func encodedFiles() throws -> [String: Data] {
        try validate()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var files = [
            Self.descriptionFile: try encoder.encode(description),
            Self.weightsFile: try SafeTensors.encode(tensors, metadata: ["format": "pt", "producer": "spikeserve"]),
        ]
        if let sourceANNTensors {
            files[Self.sourceANNFile] = try SafeTensors.encode(sourceANNTensors, metadata: ["format": "pt", "producer": "spikeserve"])
        }
        return files
    }

    /// Writes the model into `directory` atomically (see `writeDirectoryAtomically`).
    public func save(to directory: String, extraFiles: [String: Data] = [:]) throws {
        try writeDirectoryAtomically(directory, files: encodedFiles().merging(extraFiles) { a, _ in a })
    }
}

/// Publishes a directory of files all at once: they are written into a sibling temporary
/// directory and fsynced, then the directory is renamed into place (replacing an old one), so a
/// reader — or a restart after a crash — sees either the old or the new contents, never a mix.
public func writeDirectoryAtomically(_ directory: String, files: [String: Data]) throws {
    let fm = FileManager.default
    let target = URL(fileURLWithPath: directory).standardizedFileURL
    let parent = target.deletingLastPathComponent()
    try fm.createDirectory(at: parent, withIntermediateDirectories: true)
    let tmp = parent.appendingPathComponent(".\(target.lastPathComponent).tmp-\(UUID().uuidString.prefix(8))")
    try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
    for (name, data) in files { try writeDurably(data, to: tmp.appendingPathComponent(name)) }
    fsyncPath(tmp.path)
    if fm.fileExists(atPath: target.path) {
        let old = parent.appendingPathComponent(".\(target.lastPathComponent).old-\(UUID().uuidString.prefix(8))")
        try fm.moveItem(at: target, to: old)
        try fm.moveItem(at: tmp, to: target)
        try? fm.removeItem(at: old)
    } else {
        try fm.moveItem(at: tmp, to: target)
    }
    fsyncPath(parent.path)
}

func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, let ctx):
        return "missing field '\(key.stringValue)' at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))"
    case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx), DecodingError.dataCorrupted(let ctx):
        return "\(ctx.debugDescription) at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
    default:
        return "\(error)"
    }
}

extension [LayerSpec] {
    func containsKind(_ kind: LayerSpec.Kind) -> Bool {
        contains { $0.type == kind || ($0.body ?? []).containsKind(kind) || ($0.shortcut ?? []).containsKind(kind) }
    }
}
