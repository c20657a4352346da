import TensorKit

/// A layer compiled from its `LayerSpec` and the model's tensors when a model loads: each case
/// carries its geometry and weights, checked once, so the ANN, the SNN engine and STDB read typed
/// fields instead of interpreting optionals and looking weights up by name. `LayerSpec` stays the
/// `Codable` mirror of `model.json`.
///
/// Shapes are without the batch dimension: `[C, H, W]` for maps, `[F]` for features.
public enum Layer: Sendable {
    case convolution(Convolution)
    case linear(Linear)
    /// ReLU in the ANN; a layer of spiking neurons (one threshold each) in the SNN.
    case neuron
    /// The quantisation-clip-floor-shift activation in the ANN; a layer of spiking neurons in the
    /// SNN, whose threshold conversion may take from the clip.
    case quantizedClip(QuantizedClip)
    case averagePool(Pool)
    case maxPool(Pool)
    /// Dropout with the probability of zeroing an activation, in [0, 1).
    case dropout(Float)
    case flatten
    case batchNorm(BatchNorm)
    /// A basic block: `body` and `shortcut` run on the same input, their outputs are added; an
    /// empty shortcut is the identity.
    case residual(body: [Layer], shortcut: [Layer])

    /// A 2-D convolution, weights `[out, in, k, k]`, optional bias `[out]`.
    public struct Convolution: Sendable {
        /// Prefix of the tensors in the weights file (`NAME.weight`, `NAME.bias`).
        public var name: String
        public var geometry: Conv2DGeometry
        public var weight: Tensor
        public var bias: Tensor?
        /// Synapses each input event reaches: out channels × kernel area.
        public var fanOut: Int { geometry.outChannels * geometry.kernelHeight * geometry.kernelWidth }
    }

    /// A fully connected layer, weights `[out, in]`, optional bias `[out]`.
    public struct Linear: Sendable {
        public var name: String
        public var inFeatures: Int
        public var outFeatures: Int
        public var weight: Tensor
        public var bias: Tensor?
    }

    /// y = λ·clip(⌊x·L/λ + ½⌋ / L, 0, 1): L levels between 0 and the trainable clip λ (`clip`, [1]).
    /// Trained with the straight-through estimator for the floor (Bu et al., ICLR 2022).
    public struct QuantizedClip: Sendable {
        public var name: String
        public var levels: Int
        public var clip: Tensor
    }

    /// A pooling window, `kernel`×`kernel` moved by `stride`.
    public struct Pool: Sendable {
        public var kernel: Int
        public var stride: Int
    }

    /// Batch normalisation per channel: scale γ (`weight`), shift β (`bias`) and running
    /// statistics, each `[channels]`.
    public struct BatchNorm: Sendable {
        public var name: String
        public var channels: Int
        public var weight: Tensor
        public var bias: Tensor
        public var runningMean: Tensor
        public var runningVariance: Tensor
    }
}

extension Layer {
    /// Compiles `specs` for an input of shape `input`: checks each layer's fields, that shapes
    /// chain, and that every tensor is present with its shape and finite. Errors name the layer by
    /// path (`layers[3].body[0]`) and the tensor.
    public static func compile(
        _ specs: [LayerSpec], tensors: [String: Tensor], input: FeatureShape, path: String = "layers"
    ) throws(ModelError) -> (layers: [Layer], output: FeatureShape) {
        var shape = input
        var layers: [Layer] = []
        for (i, spec) in specs.enumerated() {
            let at = "\(path)[\(i)]"
            let next = try spec.outputShape(from: shape, path: at)
            func tensor(_ suffix: String, _ expected: [Int]) throws(ModelError) -> Tensor {
                let name = "\(spec.name ?? "").\(suffix)"
                guard let t = tensors[name] else { throw ModelError("weights: missing tensor '\(name)' (\(at))") }
                guard t.shape == expected else { throw ModelError("weights: '\(name)' has shape \(t.shape), expected \(expected)") }
                guard t.scalars.allSatisfy(\.isFinite) else { throw ModelError("weights: '\(name)' contains NaN or infinity") }
                return t
            }
            // outputShape has checked the fields each kind needs, so they are present here.
            switch spec.type {
            case .conv2d:
                guard let g = spec.convGeometry else { throw ModelError("\(at) (conv2d): incomplete geometry") }
                let weight = try tensor("weight", [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth])
                let bias = spec.hasBias ? try tensor("bias", [g.outChannels]) : nil
                layers.append(.convolution(Convolution(name: spec.name ?? "", geometry: g, weight: weight, bias: bias)))
            case .linear:
                let (inF, outF) = (shape[0], next[0])
                let weight = try tensor("weight", [outF, inF])
                let bias = spec.hasBias ? try tensor("bias", [outF]) : nil
                layers.append(.linear(Linear(name: spec.name ?? "", inFeatures: inF, outFeatures: outF, weight: weight, bias: bias)))
            case .relu:
                layers.append(.neuron)
            case .qcfs:
                let clip = try tensor("clip", [1])
                guard clip.scalars[0] > 0 else { throw ModelError("weights: '\(spec.name ?? "").clip' must be positive") }
                layers.append(.quantizedClip(QuantizedClip(name: spec.name ?? "", levels: spec.levels ?? 1, clip: clip)))
            case .avgpool, .maxpool:
                let kernel = spec.kernel ?? 2
                let pool = Pool(kernel: kernel, stride: spec.stride ?? kernel)
                layers.append(spec.type == .avgpool ? .averagePool(pool) : .maxPool(pool))
            case .dropout:
                layers.append(.dropout(spec.p ?? 0))
            case .flatten:
                layers.append(.flatten)
            case .batchnorm:
                let c = shape[0]
                layers.append(
                    .batchNorm(
                        BatchNorm(
                            name: spec.name ?? "", channels: c, weight: try tensor("weight", [c]), bias: try tensor("bias", [c]),
                            runningMean: try tensor("running_mean", [c]), runningVariance: try tensor("running_var", [c]))))
            case .residual:
                let body = try compile(spec.body ?? [], tensors: tensors, input: shape, path: at + ".body").layers
                let shortcut = try compile(spec.shortcut ?? [], tensors: tensors, input: shape, path: at + ".shortcut").layers
                layers.append(.residual(body: body, shortcut: shortcut))
            }
            shape = next
        }
        return (layers, shape)
    }

    /// Whether the layer has trainable parameters.
    public var isWeighted: Bool {
        switch self {
        case .convolution, .linear, .batchNorm, .residual, .quantizedClip: true
        default: false
        }
    }
}

extension [Layer] {
    /// Spiking neuron layers (`neuron`), counting inside blocks.
    public var neuronCount: Int {
        reduce(0) { count, layer in
            switch layer {
            case .neuron, .quantizedClip: count + 1
            case .residual(let body, let shortcut): count + body.neuronCount + shortcut.neuronCount
            default: count
            }
        }
    }

    /// Every tensor of the layers by its name in the weights file (parameters and batch-norm
    /// running statistics).
    public var namedTensors: [String: Tensor] {
        var out: [String: Tensor] = [:]
        for layer in self {
            switch layer {
            case .convolution(let c):
                out[c.name + ".weight"] = c.weight
                if let b = c.bias { out[c.name + ".bias"] = b }
            case .linear(let l):
                out[l.name + ".weight"] = l.weight
                if let b = l.bias { out[l.name + ".bias"] = b }
            case .quantizedClip(let q):
                out[q.name + ".clip"] = q.clip
            case .batchNorm(let n):
                out[n.name + ".weight"] = n.weight
                out[n.name + ".bias"] = n.bias
                out[n.name + ".running_mean"] = n.runningMean
                out[n.name + ".running_var"] = n.runningVariance
            case .residual(let body, let shortcut):
                out.merge(body.namedTensors) { a, _ in a }
                out.merge(shortcut.namedTensors) { a, _ in a }
            default: break
            }
        }
        return out
    }

    /// The same layers with the tensors of `tensors` that they name (after an optimizer step);
    /// tensors not given are kept.
    public func withTensors(_ tensors: [String: Tensor]) -> [Layer] {
        map { layer in
            switch layer {
            case .convolution(var c):
                c.weight = tensors[c.name + ".weight"] ?? c.weight
                if c.bias != nil { c.bias = tensors[c.name + ".bias"] ?? c.bias }
                return .convolution(c)
            case .linear(var l):
                l.weight = tensors[l.name + ".weight"] ?? l.weight
                if l.bias != nil { l.bias = tensors[l.name + ".bias"] ?? l.bias }
                return .linear(l)
            case .batchNorm(var n):
                n.weight = tensors[n.name + ".weight"] ?? n.weight
                n.bias = tensors[n.name + ".bias"] ?? n.bias
                n.runningMean = tensors[n.name + ".running_mean"] ?? n.runningMean
                n.runningVariance = tensors[n.name + ".running_var"] ?? n.runningVariance
                return .batchNorm(n)
            case .quantizedClip(var q):
                q.clip = tensors[q.name + ".clip"] ?? q.clip
                return .quantizedClip(q)
            case .residual(let body, let shortcut):
                return .residual(body: body.withTensors(tensors), shortcut: shortcut.withTensors(tensors))
            default:
                return layer
            }
        }
    }
}

extension [Layer] {
    /// The clips λ of the `quantizedClip` activations in traversal order, or nil unless every
    /// spiking layer is one.
    public var clips: [Float]? {
        var out: [Float] = []
        func walk(_ layers: [Layer]) -> Bool {
            for layer in layers {
                switch layer {
                case .neuron: return false
                case .quantizedClip(let q): out.append(q.clip.scalars[0])
                case .residual(let body, let shortcut): if !walk(body) || !walk(shortcut) { return false }
                default: break
                }
            }
            return true
        }
        return walk(self) ? out : nil
    }
}

extension [Layer] {
    /// Multiply-accumulates of one ANN forward pass of one image with input shape `input`
    /// (convolutions and linear layers; the energy argument's baseline for synaptic operations).
    public func multiplyAccumulates(input: FeatureShape) -> Int {
        var shape = input
        var total = 0
        for layer in self {
            let next = layer.outputShape(from: shape)
            switch layer {
            case .convolution(let c): total += next.reduce(1, *) * c.geometry.patchSize
            case .linear(let l): total += l.inFeatures * l.outFeatures
            case .residual(let body, let shortcut):
                total += body.multiplyAccumulates(input: shape) + shortcut.multiplyAccumulates(input: shape)
            default: break
            }
            shape = next
        }
        return total
    }
}

extension Layer {
    /// The shape this layer produces from `shape` (checked at compile time, so no errors here).
    func outputShape(from shape: FeatureShape) -> FeatureShape {
        switch self {
        case .convolution(let c):
            let (oh, ow) = c.geometry.outputSize(height: shape[1], width: shape[2])
            return [c.geometry.outChannels, oh, ow]
        case .linear(let l): return [l.outFeatures]
        case .averagePool(let p), .maxPool(let p):
            return [shape[0], (shape[1] - p.kernel) / p.stride + 1, (shape[2] - p.kernel) / p.stride + 1]
        case .flatten: return [shape.reduce(1, *)]
        case .residual(let body, _): return body.reduce(shape) { $1.outputShape(from: $0) }
        case .neuron, .quantizedClip, .dropout, .batchNorm: return shape
        }
    }
}

extension Model {
    /// Multiply-accumulates of the ANN per image.
    public var multiplyAccumulatesPerImage: Int {
        ((try? compiledLayers()) ?? []).multiplyAccumulates(input: [description.input.channels, description.input.height, description.input.width])
    }

    /// The model's layers compiled with its tensors (`Layer.compile`).
    public func compiledLayers() throws(ModelError) -> [Layer] {
        let d = description
        return try Layer.compile(d.layers, tensors: tensors, input: [d.input.channels, d.input.height, d.input.width]).layers
    }
}
