import TensorKit

/// Runs a layer list as an ordinary (non-spiking) network, for training and for the `--ann`
/// evaluation. Forward passes in training mode record a tape that `backward` consumes.
public struct ANNRunner: Sendable {
    public var workspace = Workspace()
    /// Batch-norm running-average momentum (PyTorch's default).
    public var batchNormMomentum: Float = 0.1
    public static let batchNormEpsilon: Float = 1e-5

    public init() {}

    /// What the backward pass needs from each layer's forward pass.
    public indirect enum TapeEntry: Sendable {
        case conv(input: Tensor)
        case linear(input: Tensor)
        case relu(output: Tensor)
        case avgpool(inputShape: [Int])
        case maxpool(argmax: [Int32], inputShape: [Int])
        case dropout(mask: [Float])
        case flatten(inputShape: [Int])
        case batchnorm(normalized: Tensor, inverseStd: [Float])
        case residual(body: [TapeEntry], shortcut: [TapeEntry])
        case none
    }

    /// Forward pass over `layers`. With `tape` non-nil the pass runs in training mode (dropout on,
    /// batch statistics, running averages updated in `tensors`) and records what backward needs.
    public mutating func forward(
        _ layers: [LayerSpec], _ input: Tensor, tensors: inout [String: Tensor],
        generator: inout SeededGenerator, tape: inout [TapeEntry]?
    ) -> Tensor {
        var x = input
        let training = tape != nil
        for layer in layers {
            var entry = TapeEntry.none
            switch layer.type {
            case .conv2d:
                let name = layer.name!
                let y = conv2d(
                    x, weight: tensors["\(name).weight"]!, bias: tensors["\(name).bias"],
                    geometry: layer.convGeometry, workspace: &workspace)
                entry = .conv(input: x)
                x = y
            case .linear:
                let name = layer.name!
                let flat = x.reshaped([x.shape[0], x.count / x.shape[0]])
                entry = .linear(input: flat)
                x = linear(flat, weight: tensors["\(name).weight"]!, bias: tensors["\(name).bias"])
            case .relu:
                x = relu(x)
                entry = .relu(output: x)
            case .avgpool:
                entry = .avgpool(inputShape: x.shape)
                x = avgPool2d(x, kernel: layer.kernel!, stride: layer.stride ?? layer.kernel!)
            case .maxpool:
                let (y, argmax) = maxPool2d(x, kernel: layer.kernel!, stride: layer.stride ?? layer.kernel!)
                entry = .maxpool(argmax: argmax, inputShape: x.shape)
                x = y
            case .dropout:
                if training, let p = layer.p, p > 0 {
                    let mask = dropoutMask(count: x.count, probability: p, generator: &generator)
                    x = multiply(x, mask: mask)
                    entry = .dropout(mask: mask)
                }
            case .flatten:
                entry = .flatten(inputShape: x.shape)
                x = x.reshaped([x.shape[0], x.count / x.shape[0]])
            case .batchnorm:
                let (y, e) = batchNormForward(x, layer: layer, tensors: &tensors, training: training)
                x = y
                entry = e
            case .residual:
                var bodyTape: [TapeEntry]? = training ? [] : nil
                var shortcutTape: [TapeEntry]? = training ? [] : nil
                let a = forward(layer.body ?? [], x, tensors: &tensors, generator: &generator, tape: &bodyTape)
                let b = forward(layer.shortcut ?? [], x, tensors: &tensors, generator: &generator, tape: &shortcutTape)
                x = add(a, b)
                entry = .residual(body: bodyTape ?? [], shortcut: shortcutTape ?? [])
            }
            if training { tape!.append(entry) }
        }
        return x
    }

    /// Backward pass: returns the gradient with respect to the input (nil if `needInput` is false)
    /// and adds each parameter's gradient into `gradients` (keyed like `tensors`).
    public mutating func backward(
        _ layers: [LayerSpec], _ gradOutput: Tensor, tensors: [String: Tensor],
        tape: [TapeEntry], gradients: inout [String: Tensor], needInput: Bool = false
    ) -> Tensor? {
        var g = gradOutput
        // The first weighted layer needs no input gradient; everything before it is parameter-free.
        let firstWeighted = needInput ? -1 : (layers.firstIndex { [.conv2d, .linear, .batchnorm, .residual].contains($0.type) } ?? 0)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[i]
            let wantInput = i > firstWeighted
            switch (layer.type, tape[i]) {
            case (.conv2d, .conv(let input)):
                let name = layer.name!
                let r = conv2dBackward(
                    input, weight: tensors["\(name).weight"]!, gradOutput: g, geometry: layer.convGeometry,
                    needInputGradient: wantInput, withBias: layer.hasBias, workspace: &workspace)
                accumulate(&gradients, "\(name).weight", r.weight)
                if let b = r.bias { accumulate(&gradients, "\(name).bias", b) }
                guard let gi = r.input else { return nil }
                g = gi
            case (.linear, .linear(let input)):
                let name = layer.name!
                let r = linearBackward(
                    input, weight: tensors["\(name).weight"]!, gradOutput: g,
                    needInputGradient: wantInput, withBias: layer.hasBias)
                accumulate(&gradients, "\(name).weight", r.weight)
                if let b = r.bias { accumulate(&gradients, "\(name).bias", b) }
                guard let gi = r.input else { return nil }
                g = gi
            case (.relu, .relu(let output)):
                g = reluBackward(g, output: output)
            case (.avgpool, .avgpool(let shape)):
                g = avgPool2dBackward(g, inputShape: shape, kernel: layer.kernel!, stride: layer.stride ?? layer.kernel!)
            case (.maxpool, .maxpool(let argmax, let shape)):
                g = maxPool2dBackward(g, argmax: argmax, inputShape: shape)
            case (.dropout, .dropout(let mask)):
                g = multiply(g, mask: mask)
            case (.flatten, .flatten(let shape)):
                g = g.reshaped(shape)
            case (.batchnorm, .batchnorm(let xhat, let invStd)):
                g = batchNormBackward(g, layer: layer, normalized: xhat, inverseStd: invStd, tensors: tensors, gradients: &gradients)
            case (.residual, .residual(let bodyTape, let shortcutTape)):
                let gb = backward(layer.body ?? [], g, tensors: tensors, tape: bodyTape, gradients: &gradients, needInput: true)!
                let gs =
                    (layer.shortcut ?? []).isEmpty
                    ? g : backward(layer.shortcut!, g, tensors: tensors, tape: shortcutTape, gradients: &gradients, needInput: true)!
                g = add(gb, gs)
            default:
                break  // dropout in eval mode and other no-ops
            }
        }
        return g
    }

    func accumulate(_ gradients: inout [String: Tensor], _ name: String, _ g: Tensor) {
        if let existing = gradients[name] { gradients[name] = existing + g } else { gradients[name] = g }
    }

    /// Batch normalisation over (N, H, W) per channel. Training uses the batch statistics (biased
    /// variance, as PyTorch normalises with) and updates the running averages with the unbiased one.
    mutating func batchNormForward(_ x: Tensor, layer: LayerSpec, tensors: inout [String: Tensor], training: Bool) -> (Tensor, TapeEntry) {
        let name = layer.name!
        let n = x.shape[0], c = x.shape[1], plane = x.count / (n * c)
        let gamma = tensors["\(name).weight"]!.scalars, beta = tensors["\(name).bias"]!.scalars
        var mean = tensors["\(name).running_mean"]!.scalars
        var variance = tensors["\(name).running_var"]!.scalars
        if training {
            let m = Float(n * plane)
            var batchMean = [Float](repeating: 0, count: c), batchVar = [Float](repeating: 0, count: c)
            for ch in 0..<c {
                var s: Double = 0, s2: Double = 0
                for i in 0..<n {
                    let base = (i * c + ch) * plane
                    for j in 0..<plane { let v = Double(x.scalars[base + j]); s += v; s2 += v * v }
                }
                let mu = s / Double(m)
                batchMean[ch] = Float(mu)
                batchVar[ch] = Float(max(0, s2 / Double(m) - mu * mu))
            }
            let k = batchNormMomentum
            for ch in 0..<c {
                mean[ch] = (1 - k) * mean[ch] + k * batchMean[ch]
                variance[ch] = (1 - k) * variance[ch] + k * batchVar[ch] * m / max(1, m - 1)
            }
            tensors["\(name).running_mean"]!.scalars = mean
            tensors["\(name).running_var"]!.scalars = variance
            mean = batchMean
            variance = batchVar
        }
        let invStd = variance.map { 1 / ($0 + Self.batchNormEpsilon).squareRoot() }
        var xhat = x, y = x
        for i in 0..<n {
            for ch in 0..<c {
                let base = (i * c + ch) * plane
                for j in 0..<plane {
                    let h = (x.scalars[base + j] - mean[ch]) * invStd[ch]
                    xhat.scalars[base + j] = h
                    y.scalars[base + j] = gamma[ch] * h + beta[ch]
                }
            }
        }
        return (y, training ? .batchnorm(normalized: xhat, inverseStd: invStd) : .none)
    }

    func batchNormBackward(
        _ g: Tensor, layer: LayerSpec, normalized xhat: Tensor, inverseStd: [Float],
        tensors: [String: Tensor], gradients: inout [String: Tensor]
    ) -> Tensor {
        let name = layer.name!
        let n = g.shape[0], c = g.shape[1], plane = g.count / (n * c)
        let gamma = tensors["\(name).weight"]!.scalars
        var dGamma = [Float](repeating: 0, count: c), dBeta = [Float](repeating: 0, count: c)
        for i in 0..<n {
            for ch in 0..<c {
                let base = (i * c + ch) * plane
                for j in 0..<plane {
                    dGamma[ch] += g.scalars[base + j] * xhat.scalars[base + j]
                    dBeta[ch] += g.scalars[base + j]
                }
            }
        }
        accumulate(&gradients, "\(name).weight", Tensor(shape: [c], scalars: dGamma))
        accumulate(&gradients, "\(name).bias", Tensor(shape: [c], scalars: dBeta))
        // dx = γ·σ⁻¹/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
        let m = Float(n * plane)
        var dx = g
        for i in 0..<n {
            for ch in 0..<c {
                let base = (i * c + ch) * plane
                let k = gamma[ch] * inverseStd[ch] / m
                for j in 0..<plane {
                    dx.scalars[base + j] = k * (m * g.scalars[base + j] - dBeta[ch] - xhat.scalars[base + j] * dGamma[ch])
                }
            }
        }
        return dx
    }
}
