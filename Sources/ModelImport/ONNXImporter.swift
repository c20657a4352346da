import Foundation
import SNN
import SwiftProtobuf
import TensorKit

/// Reads an ONNX classifier (opsets 11–21, as `torch.onnx.export` or the `onnx` package write it)
/// into SpikeServe's layer list and weights: an ANN that `convert` turns into an SNN.
///
/// The graph is read in its (topological) node order. Each activation value carries the chain of
/// layers that produced it from the image input; an `Add` of two activations becomes a `residual`
/// layer whose body and shortcut are the two chains after their last common value. Constants —
/// initializers, `Constant` nodes, and the `Shape → Gather → Unsqueeze → Concat` computations that
/// exporters leave in front of a `Reshape` — are evaluated while reading, with the batch dimension
/// kept symbolic.
///
/// Supported: Conv (square kernel, equal strides and symmetric padding, no dilation, one group;
/// bias or not), Gemm, MatMul followed by an Add of a bias, Relu, AveragePool (no padding),
/// GlobalAveragePool, ReduceMean over the spatial axes, Flatten, Reshape to `[batch, features]`,
/// Dropout, Identity,
/// BatchNormalization folded into the Conv, Gemm or MatMul before it, Add of a residual branch,
/// Constant, Shape, Gather, Unsqueeze, Squeeze, Concat and Cast on shapes. MaxPool is refused: a
/// maximum over spike trains is not the spike train of the maximum, so rate-coded conversion
/// cannot run it; retrain with average pooling.
public enum ONNXImporter {
    /// The operator types the importer reads (see the type's documentation for the conditions).
    public static let supportedOperators = [
        "Conv", "Gemm", "MatMul", "Add", "BatchNormalization", "Relu", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape",
        "Dropout", "Identity", "ReduceMean", "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast",
    ]

    /// Opset versions of the default domain that the importer reads.
    public static let supportedOpsets = 11...21

    /// Imports the ONNX model at `path` (external data files are looked up beside it).
    /// - Throws: `ImportError`, naming the node or tensor at fault.
    public static func importModel(at path: String, options: ImportOptions) throws(ImportError) -> Model {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable("cannot read \(path)") }
        let directory = (path as NSString).deletingLastPathComponent
        return try importModel(data, directory: directory.isEmpty ? "." : directory, options: options)
    }

    /// Imports a serialized `ModelProto`.
    /// - Parameter directory: where external data files live (nil: the model may not use them).
    public static func importModel(_ data: Data, directory: String?, options: ImportOptions) throws(ImportError) -> Model {
        let proto: Onnx_ModelProto
        do {
            var decodingOptions = BinaryDecodingOptions()
            decodingOptions.messageDepthLimit = 64
            proto = try Onnx_ModelProto(serializedBytes: data, options: decodingOptions)
        } catch {
            throw .unreadable("not an ONNX model (protobuf: \(error))")
        }
        guard proto.hasGraph else { throw .unreadable("the model has no graph") }
        let opset = proto.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }.map { Int($0.version) }
        guard let opset, supportedOpsets.contains(opset) else {
            throw .graph(
                "opset \(opset.map(String.init) ?? "none") is not supported; export with opset_version "
                    + "\(supportedOpsets.lowerBound)…\(supportedOpsets.upperBound)")
        }
        var reader = try GraphReader(graph: proto.graph, directory: directory, options: options)
        return try reader.read()
    }
}

/// A value of the graph while it is read.
private enum Value {
    /// A constant tensor (weights, shapes, indices).
    case constant(ONNXConstant)
    /// A shape computed from an activation: nil is the batch dimension. `scalar` for a 0-d value.
    case shape([Int?], scalar: Bool)
    case activation(Chain)
}

/// The layers that turn the image into an activation, with the values met on the way: `marks[i]`
/// is a value name and `layerCounts[i]` the number of layers emitted when it was produced.
private struct Chain {
    var layers: [LayerSpec]
    var marks: [String]
    var layerCounts: [Int]
    /// `[C, H, W]`, or `[F]` after flattening.
    var shape: FeatureShape

    func extended(by layer: LayerSpec?, producing value: String, shape: FeatureShape) -> Chain {
        var c = self
        if let layer { c.layers.append(layer) }
        c.marks.append(value)
        c.layerCounts.append(c.layers.count)
        c.shape = shape
        return c
    }
}

private struct GraphReader {
    let graph: Onnx_GraphProto
    let directory: String?
    let options: ImportOptions
    /// `[C, H, W]` of the image input.
    let inputShape: FeatureShape
    var values: [String: Value] = [:]
    var tensors: [String: Tensor] = [:]
    var usedNames: Set<String> = []
    /// How many nodes read each value (a layer's output folded into by a bias or batch norm must
    /// have no other reader).
    var readers: [String: Int] = [:]
    let inputName: String

    init(graph: Onnx_GraphProto, directory: String?, options: ImportOptions) throws(ImportError) {
        self.graph = graph
        self.directory = directory
        var constants: [String: Value] = [:]
        for initializer in graph.initializer {
            constants[initializer.name] = .constant(try ONNXConstant(initializer, directory: directory))
        }
        // Older exporters list initializers among the inputs too.
        let inputs = graph.input.filter { constants[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw .graph("expects one image input, finds \(inputs.map(\.name)) (initializers excluded)")
        }
        inputName = input.name
        let declared: [Int?] = input.type.tensorType.shape.dim.map {
            if case .dimValue(let v)? = $0.value, v > 0, v < Int32.max { Int(v) } else { nil }
        }
        var shape: FeatureShape
        if let size = options.inputSize {
            guard size.count == 3, size.allSatisfy({ $0 > 0 }) else { throw .graph("--input-size needs C,H,W") }
            if declared.count == 4, zip(declared.dropFirst(), size).contains(where: { $0 != nil && $0 != $1 }) {
                throw .graph("input '\(input.name)' is declared \(declared.map { $0.map(String.init) ?? "?" }) but --input-size is \(size)")
            }
            shape = size
        } else {
            guard declared.count == 4, let c = declared[1], let h = declared[2], let w = declared[3] else {
                throw .graph(
                    "input '\(input.name)' has shape \(declared.map { $0.map(String.init) ?? "?" }); an image input is "
                        + "[batch, C, H, W] — give --input-size C,H,W when its dimensions are symbolic")
            }
            shape = [c, h, w]
        }
        guard shape[0] <= 4096, shape[1] <= 4096, shape[2] <= 4096 else {
            throw .graph("input \(shape) is larger than 4096 channels or 4096×4096 pixels")
        }
        self.options = options
        inputShape = shape
        values = constants
        values[input.name] = .activation(Chain(layers: [], marks: [input.name], layerCounts: [0], shape: shape))
        for node in graph.node { for name in node.input where !name.isEmpty { readers[name, default: 0] += 1 } }
        for output in graph.output { readers[output.name, default: 0] += 1 }
    }

    /// Values per image an activation may hold (1 GiB of Float32), and nodes a graph may have:
    /// bounds that keep a hostile file from exhausting memory.
    static let maxActivation = 1 << 28
    static let maxNodes = 20_000

    mutating func read() throws(ImportError) -> Model {
        guard graph.node.count <= Self.maxNodes else { throw .graph("\(graph.node.count) nodes; at most \(Self.maxNodes) are read") }
        var remaining = readers
        // Every name ever assigned: chains refer to values by name, so none may be reused.
        var defined = Set(values.keys)
        for (index, node) in graph.node.enumerated() {
            for output in node.output where !output.isEmpty && !defined.insert(output).inserted {
                throw .unsupportedNode(
                    node: node.name.isEmpty ? output : node.name, opType: node.opType, index: index,
                    reason: "redefines '\(output)' (ONNX values are assigned once)")
            }
            try readNode(node, index: index)
            // A value nobody reads any more is dropped, so memory follows the live values, not
            // every chain ever built.
            for name in node.input where !name.isEmpty {
                remaining[name, default: 0] -= 1
                if remaining[name]! <= 0 { values[name] = nil }
            }
        }
        guard graph.output.count == 1, let outputName = graph.output.first?.name else {
            throw .graph("expects one output (the class scores), finds \(graph.output.count)")
        }
        guard case .activation(let chain) = values[outputName] else { throw .graph("output '\(outputName)' is not computed from the input") }
        guard chain.shape.count == 1, chain.layers.last?.type == .linear else {
            throw .graph(
                "the output must be a linear layer's [batch, classes] scores; it has shape \(chain.shape) after \(chain.layers.last?.type.rawValue ?? "nothing")"
            )
        }
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        // Default normalisation: none beyond pixel / 255.
        let input = InputDescription(channels: c, height: h, width: w, mean: [Float](repeating: 0, count: c), std: [Float](repeating: 1, count: c))
        return try options.model(
            architecture: "onnx", input: input, layers: chain.layers, tensors: tensors, classes: chain.shape[0], source: "onnx")
    }

    // MARK: nodes

    mutating func readNode(_ node: Onnx_NodeProto, index: Int) throws(ImportError) {
        let name = node.name.isEmpty ? (node.output.first ?? "?") : node.name
        func fail(_ reason: String) -> ImportError { .unsupportedNode(node: name, opType: node.opType, index: index, reason: reason) }
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { throw fail("operators of domain '\(node.domain)' are not supported") }
        guard let output = node.output.first, !output.isEmpty else { throw fail("has no output") }
        let attributes = Attributes(node.attribute)

        func input(_ i: Int) -> Value? { i < node.input.count && !node.input[i].isEmpty ? values[node.input[i]] : nil }
        func activation() throws(ImportError) -> Chain {
            guard case .activation(let chain) = input(0) else { throw fail("its first input is not computed from the image") }
            return chain
        }
        func constant(_ i: Int, _ what: String) throws(ImportError) -> ONNXConstant {
            guard case .constant(let c) = input(i) else { throw fail("its \(what) (input \(i)) must be a constant (an initializer)") }
            return c
        }
        func emit(_ chain: Chain, _ layer: LayerSpec?) throws(ImportError) {
            var shape = chain.shape
            if let layer {
                do {
                    shape = try layer.outputShape(from: chain.shape, path: name)
                } catch {
                    throw fail(error.description)
                }
            }
            guard shape.allSatisfy({ $0 >= 1 }), checkedProduct(shape).map({ $0 <= GraphReader.maxActivation }) == true else {
                throw fail("its output \(shape) exceeds \(GraphReader.maxActivation) values per image")
            }
            values[output] = .activation(chain.extended(by: layer, producing: output, shape: shape))
        }

        switch node.opType {
        case "Conv":
            let x = try activation()
            let w = try constant(1, "weight")
            let bias = node.input.count > 2 && !node.input[2].isEmpty ? try constant(2, "bias") : nil
            guard x.shape.count == 3, w.dims.count == 4 else { throw fail("expects a 2-D convolution of an image, weight \(w.dims) on \(x.shape)") }
            guard attributes.int("group") ?? 1 == 1 else { throw fail("grouped convolutions (group > 1) are not supported") }
            guard (attributes.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else { throw fail("dilated convolutions are not supported") }
            let (kh, kw) = (w.dims[2], w.dims[3])
            guard kh == kw else { throw fail("non-square kernels (\(kh)×\(kw)) are not supported") }
            let strides = attributes.ints("strides") ?? [1, 1]
            guard strides.count == 2, strides[0] == strides[1], strides[0] >= 1 else {
                throw fail("unequal or non-positive strides \(strides) are not supported")
            }
            let padding = try symmetricPadding(attributes, kernel: kh, fail: fail)
            guard w.dims[1] == x.shape[0] else { throw fail("weight \(w.dims) does not fit \(x.shape[0]) input channels") }
            if let bias, bias.count != w.dims[0] { throw fail("bias has \(bias.count) values for \(w.dims[0]) channels") }
            let layerName = uniqueName(node.input[1], fallback: "conv.\(index)")
            tensors[layerName + ".weight"] = w.tensor
            if let bias { tensors[layerName + ".bias"] = Tensor(shape: [w.dims[0]], scalars: bias.floats) }
            try emit(x, .conv(layerName, w.dims[1], w.dims[0], kernel: kh, stride: strides[0], padding: padding, bias: bias != nil))

        case "Gemm", "MatMul":
            let x = try activation()
            guard x.shape.count == 1 else { throw fail("expects flattened features, gets shape \(x.shape) (Flatten first)") }
            let b = try constant(1, "weight")
            guard b.dims.count == 2 else { throw fail("weight must be 2-D, is \(b.dims)") }
            let alpha = attributes.float("alpha") ?? 1, beta = attributes.float("beta") ?? 1
            guard attributes.int("transA") ?? 0 == 0 else { throw fail("transA = 1 is not supported") }
            // SpikeServe stores [out, in] (PyTorch's layout): Gemm with transB = 1 already is.
            let transposed = node.opType == "Gemm" && attributes.int("transB") ?? 0 == 1
            var weight = transposed ? b.tensor : transpose(b.tensor)
            let (outF, inF) = (weight.shape[0], weight.shape[1])
            guard inF == x.shape[0] else { throw fail("weight \(b.dims) does not fit \(x.shape[0]) input features") }
            if alpha != 1 { weight.scalars = weight.scalars.map { $0 * alpha } }
            var bias: [Float]?
            if node.opType == "Gemm", node.input.count > 2, !node.input[2].isEmpty {
                let c = try constant(2, "bias")
                guard c.count == outF || c.count == 1 else { throw fail("bias \(c.dims) does not broadcast to \(outF) outputs") }
                bias = (c.count == 1 ? [Float](repeating: c.floats[0], count: outF) : c.floats).map { $0 * beta }
            }
            let layerName = uniqueName(node.input[1], fallback: "linear.\(index)")
            tensors[layerName + ".weight"] = weight
            if let bias { tensors[layerName + ".bias"] = Tensor(shape: [outF], scalars: bias) }
            try emit(x, .linear(layerName, inF, outF, bias: bias != nil))

        case "Add":
            switch (input(0), input(1)) {
            case (.activation(let a), .activation(let b)):
                try emitResidual(a, b, output: output, fail: fail)
            case (.activation(let a), .constant(let c)), (.constant(let c), .activation(let a)):
                try foldBias(c, into: a, output: output, fail: fail)
            default:
                throw fail("adds values that are not an activation and a bias or two activations")
            }

        case "BatchNormalization":
            let x = try activation()
            guard attributes.int("training_mode") ?? 0 == 0 else { throw fail("training_mode = 1 is not supported (export in eval mode)") }
            let scale = try constant(1, "scale"), shift = try constant(2, "bias")
            let mean = try constant(3, "mean"), variance = try constant(4, "var")
            try foldBatchNorm(
                scale: scale.floats, shift: shift.floats, mean: mean.floats, variance: variance.floats,
                epsilon: attributes.float("epsilon") ?? 1e-5, into: x, output: output, fail: fail)

        case "Relu":
            try emit(try activation(), .relu)

        case "AveragePool":
            let x = try activation()
            guard let kernel = attributes.ints("kernel_shape"), kernel.count == 2, kernel[0] == kernel[1], kernel[0] >= 1 else {
                throw fail("needs a square, positive kernel_shape")
            }
            let strides = attributes.ints("strides") ?? [1, 1]
            guard strides.count == 2, strides[0] == strides[1], strides[0] >= 1 else {
                throw fail("unequal or non-positive strides \(strides) are not supported")
            }
            guard (attributes.ints("pads") ?? []).allSatisfy({ $0 == 0 }), (attributes.string("auto_pad") ?? "NOTSET") != "SAME_UPPER",
                (attributes.string("auto_pad") ?? "NOTSET") != "SAME_LOWER"
            else { throw fail("padded average pooling is not supported") }
            guard (attributes.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else { throw fail("dilated pooling is not supported") }
            if attributes.int("ceil_mode") ?? 0 == 1, x.shape.count == 3,
                x.shape.dropFirst().contains(where: { $0 >= kernel[0] && ($0 - kernel[0]) % strides[0] != 0 })
            {
                throw fail("ceil_mode = 1 with a partial last window is not supported")
            }
            var pool = LayerSpec.avgPool(kernel[0])
            pool.stride = strides[0]
            try emit(x, pool)

        case "GlobalAveragePool":
            let x = try activation()
            guard x.shape.count == 3, x.shape[1] == x.shape[2] else { throw fail("needs a square feature map, gets \(x.shape)") }
            try emit(x, .avgPool(x.shape[1]))

        case "ReduceMean":
            // x.mean((2, 3)) written by hand for global average pooling.
            let x = try activation()
            var axes = attributes.ints("axes")
            if axes == nil, node.input.count > 1, !node.input[1].isEmpty { axes = try constant(1, "axes").ints }
            guard x.shape.count == 3, let axes, Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3] else {
                throw fail("only a mean over the two spatial axes (global average pooling) is supported")
            }
            guard x.shape[1] == x.shape[2] else { throw fail("needs a square feature map, gets \(x.shape)") }
            let pool = LayerSpec.avgPool(x.shape[1])
            if attributes.int("keepdims") ?? 1 == 1 {
                try emit(x, pool)
            } else {
                // [batch, C]: the pool, then a flatten, as one step of the chain.
                let pooled: FeatureShape
                do { pooled = try pool.outputShape(from: x.shape, path: name) } catch { throw fail(error.description) }
                let mid = x.extended(by: pool, producing: output + "#pooled", shape: pooled)
                try emit(mid, .flatten)
            }

        case "Sub", "Div", "Mul":
            throw fail(
                "arithmetic on activations is not supported; if it normalises the input, export the network without it "
                    + "and give the normalisation as --mean and --std (mean/std query parameters over the API)")

        case "Softmax", "LogSoftmax":
            throw fail(
                "export the logits without the final softmax: the SNN's prediction is the class of the largest output "
                    + "potential, which a softmax would not change")

        case "MaxPool":
            throw fail(
                "max pooling cannot be converted: the maximum of spike trains is not the spike train of the maximum, "
                    + "so rate-coded SNNs use average pooling; retrain with AveragePool (torch.nn.AvgPool2d)")

        case "Flatten":
            let x = try activation()
            guard attributes.int("axis") ?? 1 == 1 else { throw fail("only axis = 1 (keep the batch dimension) is supported") }
            try emit(x, x.shape.count == 1 ? nil : .flatten)

        case "Reshape":
            let x = try activation()
            let target: [Int?]
            switch input(1) {
            case .constant(let c) where c.isInteger: target = c.ints.map { Optional($0) }
            case .shape(let s, _): target = s
            default: throw fail("its shape must be a constant or computed from shapes")
            }
            let features = x.shape.reduce(1, *)
            // [batch, features] written as [N, -1], [0, -1], [-1, F] or [N, F].
            // (A batch of 1 written as a constant is accepted: the engine flattens per image.)
            let keepsBatch = target.count == 2 && (target[0] == nil || target[0] == 0 || target[0] == 1 || (target[0] == -1 && target[1] == features))
            guard keepsBatch, target[1] == -1 || target[1] == features else {
                throw fail("only a flatten to [batch, features] is supported, not \(target.map { $0.map(String.init) ?? "batch" })")
            }
            try emit(x, x.shape.count == 1 ? nil : .flatten)

        case "Dropout":
            let x = try activation()
            var ratio = attributes.float("ratio") ?? 0.5
            if node.input.count > 1, !node.input[1].isEmpty { ratio = try constant(1, "ratio").floats.first ?? 0.5 }
            guard (0..<1).contains(ratio) else { throw fail("ratio \(ratio) is outside [0, 1)") }
            try emit(x, ratio > 0 ? .dropout(ratio) : nil)

        case "Identity":
            switch input(0) {
            case .activation(let x): try emit(x, nil)
            case let value?: values[output] = value
            case nil: throw fail("has no input")
            }

        case "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast":
            values[output] = try foldConstant(node, attributes: attributes, input: input, fail: fail)

        default:
            throw fail("operator not supported (supported: \(ONNXImporter.supportedOperators.joined(separator: ", ")))")
        }
    }

    // MARK: folding

    /// `Add(x, c)` where x is a convolution's or linear layer's output: c becomes (part of) its bias.
    mutating func foldBias(_ c: ONNXConstant, into x: Chain, output: String, fail: (String) -> ImportError) throws(ImportError) {
        guard var layer = x.layers.last, [.conv2d, .linear].contains(layer.type), onlyReaderOfLastLayer(x), let layerName = layer.name
        else { throw fail("adding a constant is supported only as the bias of the Conv, Gemm or MatMul right before it") }
        let channels = x.shape[0]
        // ONNX broadcasts from the last axis: a per-channel bias of a [N, C, H, W] output is
        // [C, 1, 1] or [1, C, 1, 1]; of a [N, F] output, [F] or [1, F].
        let perChannel =
            layer.type == .conv2d
            ? c.dims == [channels, 1, 1] || c.dims == [1, channels, 1, 1]
            : c.dims == [channels] || c.dims == [1, channels]
        guard c.count == 1 || perChannel else { throw fail("bias of shape \(c.dims) does not broadcast per output channel (\(channels))") }
        let add = c.count == 1 ? [Float](repeating: c.floats[0], count: channels) : c.floats
        let key = layerName + ".bias"
        let old = tensors[key]?.scalars ?? [Float](repeating: 0, count: channels)
        tensors[key] = Tensor(shape: [channels], scalars: zip(old, add).map(+))
        layer.bias = true
        var chain = x
        chain.layers[chain.layers.count - 1] = layer
        values[output] = .activation(chain.extended(by: nil, producing: output, shape: x.shape))
    }

    /// Inference batch norm y = γ (x − μ) / √(σ² + ε) + β folded into the preceding layer:
    /// W' = W · γ / √(σ² + ε) per output channel, b' = (b − μ) · γ / √(σ² + ε) + β.
    mutating func foldBatchNorm(
        scale: [Float], shift: [Float], mean: [Float], variance: [Float], epsilon: Float, into x: Chain, output: String,
        fail: (String) -> ImportError
    ) throws(ImportError) {
        guard var layer = x.layers.last, [.conv2d, .linear].contains(layer.type), onlyReaderOfLastLayer(x), let layerName = layer.name
        else { throw fail("batch normalization is supported only right after a Conv, Gemm or MatMul (it is folded into it)") }
        let channels = x.shape[0]
        guard [scale, shift, mean, variance].allSatisfy({ $0.count == channels }) else {
            throw fail("its parameters do not have \(channels) values each")
        }
        let factor = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
        var weight = tensors[layerName + ".weight"]!
        let per = weight.count / channels
        for o in 0..<channels { for j in 0..<per { weight.scalars[o * per + j] *= factor[o] } }
        tensors[layerName + ".weight"] = weight
        let bias = tensors[layerName + ".bias"]?.scalars ?? [Float](repeating: 0, count: channels)
        tensors[layerName + ".bias"] = Tensor(shape: [channels], scalars: (0..<channels).map { (bias[$0] - mean[$0]) * factor[$0] + shift[$0] })
        layer.bias = true
        var chain = x
        chain.layers[chain.layers.count - 1] = layer
        values[output] = .activation(chain.extended(by: nil, producing: output, shape: x.shape))
    }

    /// Whether every value produced since the chain's last layer (its output and identities of it)
    /// has exactly one reader, so that folding into that layer changes nothing else.
    func onlyReaderOfLastLayer(_ x: Chain) -> Bool {
        var i = x.marks.count - 1
        while i >= 0, x.layerCounts[i] == x.layers.count {
            if readers[x.marks[i]] != 1 { return false }
            i -= 1
        }
        return i < x.marks.count - 1
    }

    /// `Add(a, b)` of two activations: a residual block over their last common value.
    mutating func emitResidual(_ a: Chain, _ b: Chain, output: String, fail: (String) -> ImportError) throws(ImportError) {
        var common = 0
        while common < min(a.marks.count, b.marks.count), a.marks[common] == b.marks[common] { common += 1 }
        guard common > 0 else { throw fail("its inputs share no value") }
        let prefix = a.layerCounts[common - 1]
        var body = Array(a.layers[prefix...]), shortcut = Array(b.layers[prefix...])
        if body.isEmpty { swap(&body, &shortcut) }
        guard !body.isEmpty else { throw fail("adds a value to itself") }
        guard a.shape == b.shape else { throw fail("adds shapes \(a.shape) and \(b.shape)") }
        let block = LayerSpec.residual(body: body, shortcut: shortcut)
        values[output] = .activation(
            Chain(
                layers: Array(a.layers[..<prefix]) + [block], marks: Array(a.marks[..<common]) + [output],
                layerCounts: Array(a.layerCounts[..<common]) + [prefix + 1], shape: a.shape))
    }

    /// Evaluates the constant and shape operators.
    func foldConstant(
        _ node: Onnx_NodeProto, attributes: Attributes, input: (Int) -> Value?, fail: (String) -> ImportError
    ) throws(ImportError) -> Value {
        func ints(_ i: Int) throws(ImportError) -> (values: [Int?], scalar: Bool) {
            switch input(i) {
            case .constant(let c) where c.isInteger:
                guard c.ints.count <= 1 << 16 else { throw fail("input \(i) is too long for a shape or index") }
                return (c.ints.map { Optional($0) }, c.dims.isEmpty)
            case .shape(let s, let scalar): return (s, scalar)
            default: throw fail("input \(i) must be a constant integer tensor or a shape")
            }
        }
        switch node.opType {
        case "Constant":
            if let t = attributes.tensor("value") { return .constant(try ONNXConstant(t, directory: directory)) }
            if let f = attributes.float("value_float") { return .constant(ONNXConstant(dims: [], floats: [f], isInteger: false)) }
            if let f = attributes.floats("value_floats") { return .constant(ONNXConstant(dims: [f.count], floats: f, isInteger: false)) }
            if let i = attributes.int("value_int") { return .constant(ONNXConstant(dims: [], floats: [Float(i)], ints: [i], isInteger: true)) }
            if let i = attributes.ints("value_ints") {
                return .constant(ONNXConstant(dims: [i.count], floats: i.map(Float.init), ints: i, isInteger: true))
            }
            throw fail("only tensor, float(s) and int(s) constants are supported")
        case "Shape":
            guard case .activation(let x) = input(0) else { throw fail("takes the shape of a value not computed from the image") }
            var shape: [Int?] = [nil] + x.shape.map { Optional($0) }
            let start = attributes.int("start") ?? 0, end = attributes.int("end") ?? shape.count
            let lo = start < 0 ? max(0, shape.count + start) : min(start, shape.count)
            let hi = end < 0 ? max(0, shape.count + end) : min(end, shape.count)
            shape = lo < hi ? Array(shape[lo..<hi]) : []
            return .shape(shape, scalar: false)
        case "Gather":
            let (data, _) = try ints(0)
            let (indices, scalar) = try ints(1)
            guard attributes.int("axis") ?? 0 == 0 else { throw fail("only axis 0 is supported on shapes") }
            var picked: [Int?] = []
            for index in indices {
                guard let index, (-data.count..<data.count).contains(index) else { throw fail("index out of range") }
                picked.append(data[index < 0 ? index + data.count : index])
            }
            return .shape(picked, scalar: scalar)
        case "Unsqueeze":
            let (data, scalar) = try ints(0)
            guard scalar || data.count == 1 else { throw fail("only unsqueezing a scalar shape value is supported") }
            return .shape(data, scalar: false)
        case "Squeeze":
            let (data, _) = try ints(0)
            guard data.count == 1 else { throw fail("only squeezing a one-element shape value is supported") }
            return .shape(data, scalar: true)
        case "Concat":
            var all: [Int?] = []
            for i in 0..<node.input.count {
                all += try ints(i).values
                guard all.count <= 8 else { throw fail("builds a shape of more than 8 dimensions") }
            }
            return .shape(all, scalar: false)
        case "Cast":
            // Exporters cast shape values between int32 and int64, and float16 weights to float32
            // (mixed-precision exports). A cast of an activation is refused: it would change the
            // numbers the network computes with.
            guard let to = Int32(exactly: attributes.int("to") ?? 0).flatMap(ONNXDataType.init(rawValue:)) else {
                throw fail("casts to unsupported data type \(attributes.int("to") ?? 0)")
            }
            switch input(0) {
            case .constant(var c):
                let integer = to == .int32 || to == .int64
                if integer && !c.isInteger {
                    guard c.floats.allSatisfy({ $0.isFinite && abs($0) < 0x1p62 }) else {
                        throw fail("casts a non-finite or huge float to an integer")
                    }
                    c.ints = c.floats.map { Int($0) }
                }
                if !integer { c.ints = [] }
                c.isInteger = integer
                c.floats = integer ? c.ints.map { Float($0) } : c.floats
                return .constant(c)
            case .shape(let s, let scalar):
                return .shape(s, scalar: scalar)
            case .activation: throw fail("casting an activation is not supported")
            case nil: throw fail("has no input")
            }
        default:
            throw fail("not a constant operator")
        }
    }

    // MARK: helpers

    func symmetricPadding(_ attributes: Attributes, kernel: Int, fail: (String) -> ImportError) throws(ImportError) -> Int {
        switch attributes.string("auto_pad") ?? "NOTSET" {
        case "NOTSET", "": break
        case "VALID": return 0
        default: throw fail("auto_pad SAME_* is not supported (export with explicit pads)")
        }
        let pads = attributes.ints("pads") ?? [0, 0, 0, 0]
        guard pads.count == 4, Set(pads).count == 1 else { throw fail("asymmetric padding \(pads) is not supported") }
        guard (0...kernel).contains(pads[0]) else { throw fail("padding \(pads[0]) is outside 0...kernel") }
        return pads[0]
    }

    /// A layer name from its weight's initializer name (`features.0.weight` → `features.0`),
    /// restricted to `[A-Za-z0-9._-]` and made unique.
    mutating func uniqueName(_ weight: String, fallback: String) -> String {
        var base = weight.hasSuffix(".weight") ? String(weight.dropLast(7)) : fallback
        base = String(base.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        if base.isEmpty { base = fallback }
        var name = base
        var k = 1
        while usedNames.contains(name) {
            k += 1
            name = "\(base)_\(k)"
        }
        usedNames.insert(name)
        return name
    }
}

/// [rows, cols] → [cols, rows].
private func transpose(_ t: Tensor) -> Tensor {
    let (r, c) = (t.shape[0], t.shape[1])
    var out = [Float](repeating: 0, count: r * c)
    for i in 0..<r { for j in 0..<c { out[j * r + i] = t.scalars[i * c + j] } }
    return Tensor(shape: [c, r], scalars: out)
}

/// A node's attributes by name.
struct Attributes {
    let byName: [String: Onnx_AttributeProto]

    init(_ list: [Onnx_AttributeProto]) {
        byName = Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func int(_ name: String) -> Int? { byName[name].map { Int($0.i) } }
    func ints(_ name: String) -> [Int]? { byName[name].map { $0.ints.map { Int($0) } } }
    func float(_ name: String) -> Float? { byName[name].map(\.f) }
    func floats(_ name: String) -> [Float]? { byName[name].map(\.floats) }
    func string(_ name: String) -> String? { byName[name].map { String(decoding: $0.s, as: UTF8.self) } }
    func tensor(_ name: String) -> Onnx_TensorProto? { byName[name].flatMap { $0.hasT ? $0.t : nil } }
}

/// The product of `dims`, nil on overflow.
func checkedProduct(_ dims: [Int]) -> Int? {
    var product = 1
    for d in dims {
        let (p, overflow) = product.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        product = p
    }
    return product
}
