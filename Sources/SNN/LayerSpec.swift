import TensorKit

/// One layer of a network, as stored in `model.json`. A flat struct with optional fields keeps the
/// JSON plain for Python users; `validate` checks that each type has the fields it needs.
///
/// Types: `conv2d`, `linear`, `relu`, `qcfs`, `avgpool`, `maxpool`, `dropout`, `flatten`, `batchnorm`,
/// `residual` (a basic block: `body` and `shortcut` run on the same input and their outputs are
/// added; an empty shortcut is the identity). In the SNN every `relu` and every `qcfs` (the
/// quantisation-clip-floor-shift activation, `levels` steps up to the trainable clip `NAME.clip`)
/// becomes a spiking neuron.
public struct LayerSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case conv2d, linear, relu, qcfs, avgpool, maxpool, dropout, flatten, batchnorm, residual
    }

    public var type: Kind
    /// Prefix of the layer's tensors in the weights file, e.g. `features.0` → `features.0.weight`.
    public var name: String?
    public var inChannels: Int?
    public var outChannels: Int?
    public var kernel: Int?
    public var stride: Int?
    public var padding: Int?
    public var bias: Bool?
    public var inFeatures: Int?
    public var outFeatures: Int?
    public var p: Float?
    public var channels: Int?
    /// Quantisation levels L of a `qcfs` activation.
    public var levels: Int?
    public var body: [LayerSpec]?
    public var shortcut: [LayerSpec]?

    enum CodingKeys: String, CodingKey {
        case type, name, kernel, stride, padding, bias, p, channels, levels, body, shortcut
        case inChannels = "in_channels", outChannels = "out_channels"
        case inFeatures = "in_features", outFeatures = "out_features"
    }

    public init(type: Kind) { self.type = type }

    public static func conv(
        _ name: String, _ inC: Int, _ outC: Int, kernel: Int = 3, stride: Int = 1,
        padding: Int? = nil, bias: Bool = false
    ) -> LayerSpec {
        var l = LayerSpec(type: .conv2d)
        l.name = name; l.inChannels = inC; l.outChannels = outC; l.kernel = kernel; l.stride = stride
        l.padding = padding ?? kernel / 2; l.bias = bias
        return l
    }

    public static func linear(_ name: String, _ inF: Int, _ outF: Int, bias: Bool = false) -> LayerSpec {
        var l = LayerSpec(type: .linear)
        l.name = name; l.inFeatures = inF; l.outFeatures = outF; l.bias = bias
        return l
    }

    public static let relu = LayerSpec(type: .relu)

    /// The clip-floor-shift activation with `levels` levels (Bu et al., ICLR 2022); its clip is
    /// the tensor `NAME.clip`, shape [1].
    public static func qcfs(_ name: String, levels: Int) -> LayerSpec {
        var l = LayerSpec(type: .qcfs)
        l.name = name
        l.levels = levels
        return l
    }
    public static let flatten = LayerSpec(type: .flatten)

    public static func avgPool(_ k: Int = 2) -> LayerSpec {
        var l = LayerSpec(type: .avgpool); l.kernel = k; l.stride = k; return l
    }

    public static func dropout(_ p: Float) -> LayerSpec {
        var l = LayerSpec(type: .dropout); l.p = p; return l
    }

    public static func batchNorm(_ name: String, _ channels: Int) -> LayerSpec {
        var l = LayerSpec(type: .batchnorm); l.name = name; l.channels = channels; return l
    }

    public static func residual(body: [LayerSpec], shortcut: [LayerSpec]) -> LayerSpec {
        var l = LayerSpec(type: .residual); l.body = body; l.shortcut = shortcut; return l
    }

    /// The convolution's geometry, nil while a field it needs is missing (`outputShape` says which).
    public var convGeometry: Conv2DGeometry? {
        guard let inChannels, let outChannels, let kernel else { return nil }
        return Conv2DGeometry(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride ?? 1, padding: padding ?? 0)
    }

    public var hasBias: Bool { bias ?? false }
}

/// A shape without the batch dimension: `[C, H, W]` for images, `[F]` after flatten.
public typealias FeatureShape = [Int]

public struct ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension [LayerSpec] {
    /// Walks the layers from `input`, checking each layer's fields and that shapes chain; returns
    /// the output shape. Messages name the offending layer by path (e.g. `layers[3].body[0]`).
    public func outputShape(from input: FeatureShape, path: String = "layers") throws(ModelError) -> FeatureShape {
        var shape = input
        for (i, layer) in enumerated() {
            shape = try layer.outputShape(from: shape, path: "\(path)[\(i)]")
        }
        return shape
    }

    /// Every named parameter tensor with its expected shape, in traversal order. Layers missing
    /// the fields of their kind contribute nothing (`outputShape` rejects them).
    public func parameterShapes() -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        for layer in self {
            switch layer.type {
            case .conv2d:
                guard let name = layer.name, let g = layer.convGeometry else { continue }
                out.append(("\(name).weight", [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth]))
                if layer.hasBias { out.append(("\(name).bias", [g.outChannels])) }
            case .linear:
                guard let name = layer.name, let inF = layer.inFeatures, let outF = layer.outFeatures else { continue }
                out.append(("\(name).weight", [outF, inF]))
                if layer.hasBias { out.append(("\(name).bias", [outF])) }
            case .batchnorm:
                guard let name = layer.name, let c = layer.channels else { continue }
                out.append(("\(name).weight", [c]))
                out.append(("\(name).bias", [c]))
            case .qcfs:
                guard let name = layer.name else { continue }
                out.append(("\(name).clip", [1]))
            case .residual:
                out += (layer.body ?? []).parameterShapes().map { ($0.name, $0.shape) }
                out += (layer.shortcut ?? []).parameterShapes().map { ($0.name, $0.shape) }
            default: break
            }
        }
        return out
    }

    /// Batch-norm running statistics (not trained by gradient, but saved with the weights).
    public func bufferShapes() -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        for layer in self {
            switch layer.type {
            case .batchnorm:
                guard let name = layer.name, let c = layer.channels else { continue }
                out.append(("\(name).running_mean", [c]))
                out.append(("\(name).running_var", [c]))
            case .residual:
                out += (layer.body ?? []).bufferShapes().map { ($0.name, $0.shape) }
                out += (layer.shortcut ?? []).bufferShapes().map { ($0.name, $0.shape) }
            default: break
            }
        }
        return out
    }

    /// Number of `relu` layers (= spiking neuron layers of the SNN), counting inside blocks.
    public var neuronLayerCount: Int {
        reduce(0) { count, layer in
            switch layer.type {
            case .relu, .qcfs: count + 1
            case .residual: count + (layer.body ?? []).neuronLayerCount + (layer.shortcut ?? []).neuronLayerCount
            default: count
            }
        }
    }
}

extension LayerSpec {
    func require(_ value: Int?, _ field: String, _ path: String) throws(ModelError) -> Int {
        guard let value, value > 0 else { throw ModelError("\(path) (\(type.rawValue)): missing or non-positive \(field)") }
        return value
    }

    public func outputShape(from shape: FeatureShape, path: String) throws(ModelError) -> FeatureShape {
        switch type {
        case .conv2d:
            guard let name else { throw ModelError("\(path) (conv2d): missing name") }
            let inC = try require(inChannels, "in_channels", path)
            _ = try require(outChannels, "out_channels", path)
            _ = try require(kernel, "kernel", path)
            guard shape.count == 3, shape[0] == inC else {
                throw ModelError("\(path) (conv2d \(name)): expects \(inC) input channels, gets shape \(shape)")
            }
            // Padding beyond the kernel adds only zeros and would let sizes overflow.
            guard (stride ?? 1) > 0, (0...(kernel ?? 0)).contains(padding ?? 0), let g = convGeometry else {
                throw ModelError("\(path): bad stride or padding (padding must be in 0...kernel)")
            }
            let (oh, ow) = g.outputSize(height: shape[1], width: shape[2])
            guard oh > 0, ow > 0 else { throw ModelError("\(path) (conv2d \(name)): input \(shape) too small for the kernel") }
            return [g.outChannels, oh, ow]
        case .linear:
            guard let name else { throw ModelError("\(path) (linear): missing name") }
            let inF = try require(inFeatures, "in_features", path)
            let outF = try require(outFeatures, "out_features", path)
            guard shape.count == 1, shape[0] == inF else {
                throw ModelError("\(path) (linear \(name)): expects \(inF) features, gets shape \(shape) (flatten first?)")
            }
            return [outF]
        case .qcfs:
            guard name != nil else { throw ModelError("\(path) (qcfs): missing name") }
            _ = try require(levels, "levels", path)
            return shape
        case .relu, .dropout:
            if type == .dropout, let p, !(p >= 0 && p < 1) { throw ModelError("\(path) (dropout): p must be in [0, 1)") }
            return shape
        case .avgpool, .maxpool:
            let k = try require(kernel, "kernel", path)
            let s = stride ?? k
            guard s >= 1 else { throw ModelError("\(path) (\(type.rawValue)): stride must be positive") }
            guard shape.count == 3, shape[1] >= k, shape[2] >= k else {
                throw ModelError("\(path) (\(type.rawValue)): input \(shape) smaller than the window")
            }
            return [shape[0], (shape[1] - k) / s + 1, (shape[2] - k) / s + 1]
        case .flatten:
            return [shape.reduce(1, *)]
        case .batchnorm:
            let c = try require(channels, "channels", path)
            guard name != nil, shape.first == c else { throw ModelError("\(path) (batchnorm): expects \(c) channels, gets \(shape)") }
            return shape
        case .residual:
            guard let body, !body.isEmpty else { throw ModelError("\(path) (residual): empty body") }
            let a = try body.outputShape(from: shape, path: path + ".body")
            let b = try (shortcut ?? []).outputShape(from: shape, path: path + ".shortcut")
            guard a == b else { throw ModelError("\(path) (residual): body gives \(a) but shortcut gives \(b)") }
            return a
        }
    }
}
