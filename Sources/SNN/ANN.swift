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
        case qcfs(input: Tensor)
        case avgpool(inputShape: [Int])
        case maxpool(argmax: [Int32], inputShape: [Int])
        case dropout(mask: [Float])
        case flatten(inputShape: [Int])
        case batchnorm(normalized: Tensor, inverseStd: [Float])
        case residual(body: [TapeEntry], shortcut: [TapeEntry])
        case none
    }

    /// Forward pass over `layers`. With `tape` non-nil the pass runs in training mode (dropout on,
    /// batch statistics, running averages updated in `layers`) and records what backward needs.
    public mutating func forward(
        _ layers: inout [Layer], _ input: Tensor, generator: inout SeededGenerator, tape: inout [TapeEntry]?
    ) -> Tensor {
        var x = input
        let training = tape != nil
        for i in layers.indices {
            var entry = TapeEntry.none
            switch layers[i] {
            case .convolution(let c):
                entry = .conv(input: x)
                x = conv2d(x, weight: c.weight, bias: c.bias, geometry: c.geometry, workspace: &workspace)
            case .linear(let l):
                let flat = x.reshaped([x.shape[0], x.count / x.shape[0]])
                entry = .linear(input: flat)
                x = linear(flat, weight: l.weight, bias: l.bias)
            case .neuron:
                x = relu(x)
                entry = .relu(output: x)
            case .quantizedClip(let q):
                entry = .qcfs(input: x)
                x = Self.quantizedClip(x, q)
            case .averagePool(let p):
                entry = .avgpool(inputShape: x.shape)
                x = avgPool2d(x, kernel: p.kernel, stride: p.stride)
            case .maxPool(let p):
                let (y, argmax) = maxPool2d(x, kernel: p.kernel, stride: p.stride)
                entry = .maxpool(argmax: argmax, inputShape: x.shape)
                x = y
            case .dropout(let p):
                if training, p > 0 {
                    let mask = dropoutMask(count: x.count, probability: p, generator: &generator)
                    x = multiply(x, mask: mask)
                    entry = .dropout(mask: mask)
                }
            case .flatten:
                entry = .flatten(inputShape: x.shape)
                x = x.reshaped([x.shape[0], x.count / x.shape[0]])
            case .batchNorm(var n):
                let (y, e) = batchNormForward(x, &n, training: training)
                layers[i] = .batchNorm(n)
                x = y
                entry = e
            case .residual(var body, var shortcut):
                var bodyTape: [TapeEntry]? = training ? [] : nil
                var shortcutTape: [TapeEntry]? = training ? [] : nil
                let a = forward(&body, x, generator: &generator, tape: &bodyTape)
                let b = forward(&shortcut, x, generator: &generator, tape: &shortcutTape)
                layers[i] = .residual(body: body, shortcut: shortcut)
                x = add(a, b)
                entry = .residual(body: bodyTape ?? [], shortcut: shortcutTape ?? [])
            }
            tape?.append(entry)
        }
        return x
    }

    /// Backward pass: returns the gradient with respect to the input (nil if `needInput` is false)
    /// and adds each parameter's gradient into `gradients`, keyed by the tensor's name.
    public mutating func backward(
        _ layers: [Layer], _ gradOutput: Tensor, tape: [TapeEntry], gradients: inout [String: Tensor], needInput: Bool = false
    ) -> Tensor? {
        var g = gradOutput
        // The first weighted layer needs no input gradient; everything before it is parameter-free.
        let firstWeighted = needInput ? -1 : (layers.firstIndex { $0.isWeighted } ?? 0)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let wantInput = i > firstWeighted
            switch (layers[i], tape[i]) {
            case (.convolution(let c), .conv(let input)):
                let r = conv2dBackward(
                    input, weight: c.weight, gradOutput: g, geometry: c.geometry,
                    needInputGradient: wantInput, withBias: c.bias != nil, workspace: &workspace)
                accumulate(&gradients, c.name + ".weight", r.weight)
                if let b = r.bias { accumulate(&gradients, c.name + ".bias", b) }
                guard let gi = r.input else { return nil }
                g = gi
            case (.linear(let l), .linear(let input)):
                let r = linearBackward(input, weight: l.weight, gradOutput: g, needInputGradient: wantInput, withBias: l.bias != nil)
                accumulate(&gradients, l.name + ".weight", r.weight)
                if let b = r.bias { accumulate(&gradients, l.name + ".bias", b) }
                guard let gi = r.input else { return nil }
                g = gi
            case (.neuron, .relu(let output)):
                g = reluBackward(g, output: output)
            case (.quantizedClip(let q), .qcfs(let input)):
                let (gx, gClip) = Self.quantizedClipBackward(g, input: input, q)
                accumulate(&gradients, q.name + ".clip", Tensor(shape: [1], scalars: [gClip]))
                g = gx
            case (.averagePool(let p), .avgpool(let shape)):
                g = avgPool2dBackward(g, inputShape: shape, kernel: p.kernel, stride: p.stride)
            case (.maxPool, .maxpool(let argmax, let shape)):
                g = maxPool2dBackward(g, argmax: argmax, inputShape: shape)
            case (.dropout, .dropout(let mask)):
                g = multiply(g, mask: mask)
            case (.flatten, .flatten(let shape)):
                g = g.reshaped(shape)
            case (.batchNorm(let n), .batchnorm(let xhat, let invStd)):
                g = batchNormBackward(g, n, normalized: xhat, inverseStd: invStd, gradients: &gradients)
            case (.residual(let body, let shortcut), .residual(let bodyTape, let shortcutTape)):
                // Both branches were asked for their input gradient, so they return one.
                let gb = backward(body, g, tape: bodyTape, gradients: &gradients, needInput: true) ?? g
                let gs = shortcut.isEmpty ? g : backward(shortcut, g, tape: shortcutTape, gradients: &gradients, needInput: true) ?? g
                g = add(gb, gs)
            default:
                break  // dropout in eval mode and other no-ops
            }
        }
        return g
    }

    /// y = λ·clip(⌊x·L/λ + ½⌋ / L, 0, 1), elementwise (QCFS, Bu et al., ICLR 2022).
    static func quantizedClip(_ x: Tensor, _ q: Layer.QuantizedClip) -> Tensor {
        let λ = q.clip.scalars[0], l = Float(q.levels)
        var y = x
        for i in 0..<y.count {
            let level = (x.scalars[i] * l / λ + 0.5).rounded(.down) / l
            y.scalars[i] = λ * min(1, max(0, level))
        }
        return y
    }

    /// Gradients of `quantizedClip` with the floor passed straight through: inside the clip range
    /// ∂y/∂x = 1 and ∂y/∂λ = y/λ − x/λ; above it ∂y/∂x = 0 and ∂y/∂λ = 1; below it both are 0.
    static func quantizedClipBackward(_ g: Tensor, input x: Tensor, _ q: Layer.QuantizedClip) -> (Tensor, Float) {
        let λ = q.clip.scalars[0], l = Float(q.levels)
        var gx = g
        var gClip: Double = 0
        for i in 0..<g.count {
            let v = x.scalars[i]
            let level = (v * l / λ + 0.5).rounded(.down) / l
            if level > 1 {
                gx.scalars[i] = 0
                gClip += Double(g.scalars[i])
            } else if level < 0 {
                gx.scalars[i] = 0
            } else {
                gClip += Double(g.scalars[i] * (level - v / λ))
            }
        }
        return (gx, Float(gClip))
    }

    func accumulate(_ gradients: inout [String: Tensor], _ name: String, _ g: Tensor) {
        if let existing = gradients[name] { gradients[name] = existing + g } else { gradients[name] = g }
    }

    /// Batch normalisation over (N, H, W) per channel. Training uses the batch statistics (biased
    /// variance, as PyTorch normalises with) and updates the running averages with the unbiased one.
    mutating func batchNormForward(_ x: Tensor, _ layer: inout Layer.BatchNorm, training: Bool) -> (Tensor, TapeEntry) {
        let n = x.shape[0], c = x.shape[1], plane = x.count / (n * c)
        let gamma = layer.weight.scalars, beta = layer.bias.scalars
        var mean = layer.runningMean.scalars
        var variance = layer.runningVariance.scalars
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
            layer.runningMean.scalars = mean
            layer.runningVariance.scalars = variance
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
        _ g: Tensor, _ layer: Layer.BatchNorm, normalized xhat: Tensor, inverseStd: [Float], gradients: inout [String: Tensor]
    ) -> Tensor {
        let name = layer.name
        let n = g.shape[0], c = g.shape[1], plane = g.count / (n * c)
        let gamma = layer.weight.scalars
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

extension Model {
    /// The ANN's outputs (logits) for a batch of normalised inputs, in inference mode (dropout off,
    /// batch norm with its running statistics).
    ///
    /// - Parameter input: `[N, C, H, W]`, already normalised by the model's mean and std.
    /// - Returns: `[N, classes]`.
    public func annLogits(_ input: Tensor) throws(ModelError) -> Tensor {
        var layers = try compiledLayers()
        var runner = ANNRunner()
        var generator = SeededGenerator(seed: 0)
        var noTape: [ANNRunner.TapeEntry]? = nil
        return runner.forward(&layers, input, generator: &generator, tape: &noTape)
    }
}
