import CSynapse
import Foundation
import TensorKit

/// Spike-timing-dependent backpropagation through the whole simulation (Rathi et al. 2020).
///
/// The forward pass is the engine's (one GEMM per layer over all T·b frames, then the membrane
/// recurrence), recording what the backward pass needs: each weighted layer's input frames and
/// each spiking layer's surrogate derivative at every step. The backward pass mirrors it: the
/// recurrence runs backwards over t,
///
///     g_u[t] = g_o[t]·σ'_t + leak·g_u[t+1]     (the reset term θ·o_{t−1} is not differentiated)
///
/// and each weighted layer's gradient is again one GEMM over all frames. The loss is
/// cross-entropy of the output layer's potential (its current summed over the T steps).
public struct STDBNetwork: Sendable {
    /// The description the network was built from (input, labels, layer specs).
    public let description: ModelDescription
    /// The layers with their current weights.
    public private(set) var layers: [Layer]
    /// Thresholds, leak and encoding; thresholds and leaks change when they are trained.
    public var snn: SNNConfig
    public var surrogate: Surrogate
    public var trainThresholds = false
    public var trainLeak = false
    /// Dense or event-driven weighted layers (forward currents and weight gradients); `.automatic`
    /// picks per layer from the input event rate, as the engine does.
    public var synapticPath: SpikingEngine.SynapticPath = .automatic
    /// The weights of the ANN the model was converted from (kept beside the fine-tuned ones): the
    /// model's own for a model not fine-tuned yet; nil for one fine-tuned before SpikeServe kept them.
    public let sourceANNTensors: [String: Tensor]?
    var workspace = Workspace()

    public init(model: Model, surrogate: Surrogate) throws(ModelError) {
        guard let snn = model.description.snn else { throw ModelError("fine-tuning needs a converted SNN model") }
        description = model.description
        let fineTuned = model.description.provenance.notes["finetune_data"] != nil
        sourceANNTensors = model.sourceANNTensors ?? (fineTuned ? nil : model.tensors)
        layers = try model.compiledLayers()
        self.snn = snn
        self.surrogate = surrogate
    }

    /// The network as a model: the description with the current SNN configuration and weights.
    public var model: Model {
        var d = description
        d.snn = snn
        return Model(description: d, tensors: layers.namedTensors, sourceANNTensors: sourceANNTensors)
    }

    /// Replaces the weights the given tensors name (after an optimizer step, or from a checkpoint).
    public mutating func setWeights(_ tensors: [String: Tensor]) {
        layers = layers.withTensors(tensors)
    }

    /// Per-layer leak (one value per spiking layer), from `snn.leaks` or the global `snn.leak`.
    var leaks: [Float] { snn.leaks ?? [Float](repeating: snn.leak, count: snn.thresholds.count) }

    indirect enum Tape {
        case conv(input: Frames)
        case linear(input: Frames)
        case neuron(index: Int, surrogate: [Float], membrane: [Float], spikes: [Float])
        case pool(inputShape: FeatureShape, kernel: Int, stride: Int)
        case dropout(mask: [Float])
        case flatten(mapShape: FeatureShape)
        case residual(body: [Tape], shortcut: [Tape])
        case none
    }

    public struct StepResult: Sendable {
        public var loss: Float
        public var correct: Int
        /// Gradients of the weights, keyed like the model's tensors.
        public var gradients: [String: Tensor]
        public var thresholdGradients: [Float]
        public var leakGradients: [Float]
        /// Bytes held by the tape at its largest (inputs, surrogates) — the memory that grows with T.
        public var tapeBytes: Int
    }

    /// Forward and backward pass on one batch. `dropoutSeed` draws the dropout masks, one per
    /// image and neuron, held fixed across the T steps.
    public mutating func step(_ input: Tensor, labels: [Int], timesteps t: Int, seeds: [UInt64], dropoutSeed: UInt64) -> StepResult {
        let d = description
        let b = input.shape[0]
        var events = [Int](repeating: 0, count: b)
        // Direct input is the same every step: the layers before the first spiking layer run on one
        // step (as in the engine), and their weight gradients use the gradient summed over steps.
        let encoding = snn.encoding
        let frames = input.withUnsafePointer { x in
            InputEncoder.frames(
                x, shape: [d.input.channels, d.input.height, d.input.width], images: b,
                timesteps: encoding == .direct ? 1 : t, encoding: encoding, seeds: seeds, events: &events)
        }
        var rng = SeededGenerator(seed: dropoutSeed)
        var tape: [Tape] = []
        var neuronIndex = 0
        let out = forward(layers, frames, timesteps: t, tape: &tape, neuronIndex: &neuronIndex, generator: &rng)
        let tapeBytes = Self.bytes(tape)
        // Potential = Σ_t output current; loss on it, and the same gradient reaches every step.
        let k = out.shape[0]
        var potentials = Tensor(shape: [b, k])
        for step in 0..<t {
            for i in 0..<b {
                for j in 0..<k { potentials.scalars[i * k + j] += out.scalars[(step * b + i) * k + j] }
            }
        }
        let (loss, gradP, correct) = softmaxCrossEntropy(potentials, labels: labels)
        var g = Frames(shape: [k], timesteps: t, images: b)
        for step in 0..<t {
            for i in 0..<b {
                for j in 0..<k { g.scalars[(step * b + i) * k + j] = gradP.scalars[i * k + j] }
            }
        }
        var result = StepResult(
            loss: loss, correct: correct, gradients: [:],
            thresholdGradients: [Float](repeating: 0, count: snn.thresholds.count),
            leakGradients: [Float](repeating: 0, count: snn.thresholds.count), tapeBytes: tapeBytes)
        _ = backward(layers, g, tape: tape, result: &result, needInput: false)
        return result
    }

    mutating func forward(
        _ layers: [Layer], _ input: Frames, timesteps: Int, tape: inout [Tape], neuronIndex: inout Int,
        generator: inout SeededGenerator
    ) -> Frames {
        var x = input
        let leaks = self.leaks
        let t = timesteps
        for layer in layers {
            switch layer {
            case .convolution(let c):
                tape.append(.conv(input: x))
                x = convolve(x, c)
            case .linear(let l):
                let flat = x.flattened()
                tape.append(.linear(input: flat))
                x = fullyConnected(flat, l)
            case .neuron, .quantizedClip:
                let k = neuronIndex
                neuronIndex += 1
                // The initial membrane f·θ is treated as a constant: with trained thresholds the
                // term leak·f·Σ g_u[0] of dL/dθ is left out.
                let (sur, mem, spikes) = Self.fireRecording(
                    &x, timesteps: t, threshold: snn.thresholds[k], leak: leaks[k], initialMembrane: snn.initialPotential(layer: k),
                    surrogate: surrogate, keepState: trainThresholds || trainLeak)
                tape.append(.neuron(index: k, surrogate: sur, membrane: mem, spikes: spikes))
                let amplitude = snn.spikeAmplitude(layer: k)
                if amplitude != 1 { x.scale(by: amplitude) }
            case .averagePool(let p):
                tape.append(.pool(inputShape: x.shape, kernel: p.kernel, stride: p.stride))
                x = SpikingEngine.pool(x, kernel: p.kernel, stride: p.stride)
            case .dropout(let p):
                guard p > 0 else { tape.append(.none); continue }
                let mask = parallelDropoutMask(count: x.groups * x.blockLength, probability: p, generator: &generator)
                Self.applyPerImageMask(&x, mask)
                tape.append(.dropout(mask: mask))
            case .flatten:
                tape.append(.flatten(mapShape: x.shape))
                x = x.flattened()
            case .residual(let body, let shortcut):
                if x.timesteps != t { x = x.repeated(timesteps: t) }
                var bodyTape: [Tape] = [], shortcutTape: [Tape] = []
                let a = forward(body, x, timesteps: t, tape: &bodyTape, neuronIndex: &neuronIndex, generator: &generator)
                let s =
                    shortcut.isEmpty
                    ? x : forward(shortcut, x, timesteps: t, tape: &shortcutTape, neuronIndex: &neuronIndex, generator: &generator)
                x = a
                for i in 0..<x.scalars.count { x.scalars[i] += s.scalars[i] }
                tape.append(.residual(body: bodyTape, shortcut: shortcutTape))
            case .maxPool, .batchNorm:
                preconditionFailure("validated SNN models contain no max pooling or unfolded batch norm")
            }
        }
        return x
    }

    /// Gradients flow from `gradOutput` back through `layers`; returns the input gradient when asked.
    mutating func backward(_ layers: [Layer], _ gradOutput: Frames, tape: [Tape], result: inout StepResult, needInput: Bool) -> Frames? {
        var g = gradOutput
        let leaks = self.leaks
        // Nothing before the first weighted layer has parameters.
        let firstWeighted = needInput ? -1 : (layers.firstIndex { $0.isWeighted } ?? 0)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let wantInput = i > firstWeighted
            switch (layers[i], tape[i]) {
            case (.convolution(let c), .conv(let input)):
                if input.timesteps != g.timesteps { g = g.summedOverSteps() }
                let gw = convolveBackward(input, g, c, wantInput: wantInput)
                accumulate(&result.gradients, c.name + ".weight", gw.weight)
                if c.bias != nil { accumulate(&result.gradients, c.name + ".bias", gw.bias) }
                guard let gi = gw.input else { return nil }
                g = gi
            case (.linear(let l), .linear(let input)):
                if input.timesteps != g.timesteps { g = g.summedOverSteps() }
                let x = Tensor(shape: [input.frames, input.shape[0]], scalars: input.scalars)
                let gy = Tensor(shape: [g.frames, g.shape[0]], scalars: g.scalars)
                // dW = dYᵀ·X over spikes: event-driven when X is sparse, as in the forward pass.
                let sparse = isSparse(input, below: SpikingEngine.EventCrossover.linear)
                let r = linearBackward(
                    x, weight: l.weight, gradOutput: gy, needInputGradient: wantInput, withBias: l.bias != nil,
                    needWeightGradient: !sparse)
                accumulate(&result.gradients, l.name + ".weight", sparse ? eventLinearWeightGradient(x, gradOutput: gy) : r.weight)
                if let gb = r.bias { accumulate(&result.gradients, l.name + ".bias", gb) }
                guard let gi = r.input else { return nil }
                g = Frames(scalars: gi.scalars, shape: input.shape, timesteps: input.timesteps, images: input.images)
            case (_, .neuron(let k, let sur, let mem, let spikes)):
                // The layer's output was its spikes times their amplitude.
                let amplitude = snn.spikeAmplitude(layer: k)
                if amplitude != 1 { g.scale(by: amplitude) }
                // A spiking layer fed by a current that is the same every step needs only Σ_t g_u.
                let sumSteps = i > 0 && !trainThresholds && !trainLeak && Self.hasOneStepInput(tape[i - 1], steps: g.timesteps)
                let (gTheta, gLeak) = Self.backwardThroughTime(
                    &g, surrogate: sur, membrane: mem, spikes: spikes,
                    threshold: snn.thresholds[k], leak: leaks[k],
                    wantThreshold: trainThresholds, wantLeak: trainLeak,
                    sumOverSteps: sumSteps)
                result.thresholdGradients[k] += gTheta
                result.leakGradients[k] += gLeak
            case (_, .pool(let shape, let kernel, let stride)):
                let planes = Tensor(shape: [g.shape[0] * g.frames, 1, g.shape[1], g.shape[2]], scalars: g.scalars)
                let gi = avgPool2dBackward(planes, inputShape: [shape[0] * g.frames, 1, shape[1], shape[2]], kernel: kernel, stride: stride)
                g = Frames(scalars: gi.scalars, shape: shape, timesteps: g.timesteps, images: g.images)
            case (_, .dropout(let mask)):
                Self.applyPerImageMask(&g, mask)
            case (_, .flatten(let mapShape)):
                g = g.unflattened(to: mapShape)
            case (.residual(let body, let shortcut), .residual(let bodyTape, let shortcutTape)):
                // Both branches are asked for their input gradient, so they return one.
                let gb = backward(body, g, tape: bodyTape, result: &result, needInput: true) ?? g
                var gs = g
                if !shortcut.isEmpty { gs = backward(shortcut, g, tape: shortcutTape, result: &result, needInput: true) ?? g }
                g = gb
                for j in 0..<g.scalars.count { g.scalars[j] += gs.scalars[j] }
            default:
                break
            }
        }
        return g
    }

    func accumulate(_ gradients: inout [String: Tensor], _ name: String, _ g: Tensor) {
        if let existing = gradients[name] { gradients[name] = existing + g } else { gradients[name] = g }
    }

    /// Forward currents as the engine computes them: event-driven below the crossover event rate.
    /// The transposed weights are made per step, since every optimizer step changes the weights.
    mutating func convolve(_ x: Frames, _ layer: Layer.Convolution) -> Frames {
        guard isSparse(x, below: SpikingEngine.EventCrossover.conv2d) else { return x.convolved(layer, workspace: &workspace) }
        return x.convolvedEventDriven(layer, weightT: eventDrivenWeights(layer.weight))
    }

    func fullyConnected(_ x: Frames, _ layer: Layer.Linear) -> Frames {
        guard isSparse(x, below: SpikingEngine.EventCrossover.linear) else { return x.linear(layer) }
        return x.linearEventDriven(layer, weightT: eventDrivenWeights(layer.weight))
    }

    func isSparse(_ x: Frames, below rate: Double) -> Bool {
        switch synapticPath {
        case .dense: return false
        case .eventDriven: return true
        case .automatic: break
        }
        let events = x.scalars.withUnsafeBufferPointer { nonzeroCount($0) }
        return Double(events) < rate * Double(max(1, x.scalars.count))
    }

    mutating func convolveBackward(_ input: Frames, _ g: Frames, _ layer: Layer.Convolution, wantInput: Bool)
        -> (weight: Tensor, bias: Tensor, input: Frames?)
    {
        let geo = layer.geometry
        let w = layer.weight
        var gw = Tensor(shape: w.shape)
        // dW over spikes: event-driven when the input is sparse; dX stays a GEMM (dY is dense).
        let sparse = isSparse(input, below: SpikingEngine.EventCrossover.conv2d)
        var gi: Frames? = wantInput ? Frames(shape: input.shape, timesteps: input.timesteps, images: input.images) : nil
        var giScalars = gi?.scalars ?? []
        input.scalars.withUnsafeBufferPointer { x in
            w.withUnsafePointer { wp in
                g.scalars.withUnsafeBufferPointer { gp in
                    gw.withUnsafeMutablePointer { gwp in
                        giScalars.withUnsafeMutableBufferPointer { gip in
                            conv2dChannelMajorBackward(
                                x.baseAddress!, frames: input.frames, height: input.shape[1], width: input.shape[2],
                                weight: wp, gradOutput: gp.baseAddress!, geometry: geo,
                                gradWeight: sparse ? nil : gwp,
                                gradInput: wantInput ? gip.baseAddress! : nil, workspace: &workspace)

                        }
                    }
                }
            }
        }
        if wantInput { gi!.scalars = giScalars }
        if sparse {
            gw = input.scalars.withUnsafeBufferPointer { x in
                g.scalars.withUnsafeBufferPointer { gp in
                    eventConv2dChannelMajorWeightGradient(
                        x.baseAddress!, frames: input.frames, height: input.shape[1],
                        width: input.shape[2], gradOutput: gp.baseAddress!, geometry: geo)
                }
            }
        }
        // Bias gradient: sum over frames and pixels per output channel.
        var gb = Tensor(shape: [geo.outChannels])
        if layer.bias != nil {
            let per = g.scalars.count / geo.outChannels
            for o in 0..<geo.outChannels {
                var s: Float = 0
                for j in 0..<per { s += g.scalars[o * per + j] }
                gb.scalars[o] = s
            }
        }
        return (gw, gb, gi)
    }

    /// Multiplies every step's block by the same per-image mask (dropout held fixed over time).
    static func applyPerImageMask(_ x: inout Frames, _ mask: [Float]) {
        let (t, l, groups) = (x.timesteps, x.blockLength, x.groups)
        x.scalars.withUnsafeMutableBufferPointer { buf in
            mask.withUnsafeBufferPointer { m in
                let f = SharedPointer(buf.baseAddress!), mm = SharedPointer(UnsafeMutablePointer(mutating: m.baseAddress!))
                Parallel.forEach(groups * l, grain: 4096) { range in
                    Frames.forEachSegment(range, blockLength: l) { g, j0, len in
                        for step in 0..<t {
                            let block = f.base + (g * t + step) * l + j0, mk = mm.base + g * l + j0
                            for j in 0..<len { block[j] *= mk[j] }
                        }
                    }
                }
            }
        }
    }

    /// The engine's recurrence, replacing `x` (currents of every step, or of one step when they are
    /// the same at every step) by the spikes of `timesteps` steps, and recording σ'_t for every
    /// neuron and step (and, for trainable thresholds or leak, the membrane before the step and the
    /// spikes); `sn_integrate_fire_record`.
    static func fireRecording(
        _ x: inout Frames, timesteps t: Int, threshold θ: Float, leak: Float, initialMembrane u0: Float = 0,
        surrogate: Surrogate, keepState: Bool
    ) -> (surrogate: [Float], membrane: [Float], spikes: [Float]) {
        let current = x
        let constant: Int32 = current.timesteps == 1 && t > 1 ? 1 : 0
        x = Frames(uninitializedShape: current.shape, timesteps: t, images: current.images)
        let (groups, l) = (x.groups, x.blockLength)
        var sur = [Float](unsafeUninitializedCapacity: x.scalars.count) { _, n in n = x.scalars.count }
        var mem = keepState ? [Float](repeating: 0, count: x.scalars.count) : []
        // Δt is a whole number of steps, so α·exp(−β·Δt) comes from a table.
        var silentAge = 1
        var table: [Float] = []
        var alpha: Float = 0
        switch surrogate {
        case .stdb(let a, let beta, let age):
            silentAge = max(1, Int(age.rounded()))
            table = (0...(t + silentAge)).map { a * expf(-beta * Float($0)) }
        case .linear(let a):
            alpha = a
        }
        current.scalars.withUnsafeBufferPointer { cur in
            x.scalars.withUnsafeMutableBufferPointer { buf in
                sur.withUnsafeMutableBufferPointer { sb in
                    mem.withUnsafeMutableBufferPointer { mb in
                        table.withUnsafeBufferPointer { tb in
                            let input = SharedPointer(UnsafeMutablePointer(mutating: cur.baseAddress!))
                            let spikes = SharedPointer(buf.baseAddress!), surs = SharedPointer(sb.baseAddress!)
                            let mems = keepState ? SharedPointer(mb.baseAddress!) : nil
                            let tab = table.isEmpty ? nil : SharedPointer(UnsafeMutablePointer(mutating: tb.baseAddress!))
                            Parallel.forEach(groups * l, grain: 4096) { range in
                                sn_integrate_fire_record(
                                    input.base, constant, spikes.base, Int64(groups), Int64(t), Int64(l),
                                    Int64(range.lowerBound), Int64(range.count), θ, leak, u0, tab?.base,
                                    Int32(silentAge), alpha, surs.base, mems?.base)
                            }
                        }
                    }
                }
            }
        }
        return (sur, mem, keepState ? x.scalars : [])
    }

    /// Turns the gradient with respect to a spiking layer's output into the gradient with respect to
    /// its input current, in place, running the recurrence backwards over t. Also returns the
    /// gradients of the (shared) threshold and leak when asked:
    /// dL/dθ = Σ −(g_o[t]·σ'_t + g_u[t]·o_{t−1}),  dL/dleak = Σ g_u[t]·u_{t−1}.
    ///
    /// With `sumOverSteps` (no threshold or leak gradients), `g` becomes one step holding Σ_t g_u[t].
    static func backwardThroughTime(
        _ g: inout Frames, surrogate: [Float], membrane: [Float], spikes: [Float],
        threshold: Float, leak: Float, wantThreshold: Bool, wantLeak: Bool,
        sumOverSteps: Bool = false
    ) -> (Float, Float) {
        let (groups, t, l) = (g.groups, g.timesteps, g.blockLength)
        var sum = sumOverSteps ? Frames(uninitializedShape: g.shape, timesteps: 1, images: g.images) : nil
        var sumScalars = sum?.scalars ?? []
        var partialTheta = [Double](repeating: 0, count: Parallel.cores)
        var partialLeak = [Double](repeating: 0, count: Parallel.cores)
        g.scalars.withUnsafeMutableBufferPointer { buf in
            surrogate.withUnsafeBufferPointer { sb in
                membrane.withUnsafeBufferPointer { mb in
                    spikes.withUnsafeBufferPointer { ob in
                        partialTheta.withUnsafeMutableBufferPointer { pt in
                            partialLeak.withUnsafeMutableBufferPointer { pl in
                                let grads = SharedPointer(buf.baseAddress!)
                                let s = SharedPointer(UnsafeMutablePointer(mutating: sb.baseAddress!))
                                let m = wantLeak ? mb.baseAddress.map { SharedPointer(UnsafeMutablePointer(mutating: $0)) } : nil
                                let o = wantThreshold ? ob.baseAddress.map { SharedPointer(UnsafeMutablePointer(mutating: $0)) } : nil
                                let pts = SharedPointer(pt.baseAddress!), pls = SharedPointer(pl.baseAddress!)
                                sumScalars.withUnsafeMutableBufferPointer { sb in
                                    let sums = sumOverSteps ? SharedPointer(sb.baseAddress!) : nil
                                    Parallel.forEachChunk(groups * l, grain: 4096) { chunk, range in
                                        sn_backward_through_time(
                                            grads.base, s.base, o?.base, m?.base, Int64(groups), Int64(t),
                                            Int64(l), Int64(range.lowerBound), Int64(range.count), leak,
                                            pts.base + chunk, pls.base + chunk, sums?.base)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if sum != nil {
            sum!.scalars = sumScalars
            g = sum!
        }
        return (Float(partialTheta.reduce(0, +)), Float(partialLeak.reduce(0, +)))
    }

    /// Whether a tape entry is a weighted layer whose input was one step standing for all `steps`.
    static func hasOneStepInput(_ entry: Tape, steps: Int) -> Bool {
        switch entry {
        case .conv(let input), .linear(let input): input.timesteps == 1 && steps > 1
        default: false
        }
    }

    static func bytes(_ tape: [Tape]) -> Int {
        tape.reduce(0) { total, entry in
            switch entry {
            case .conv(let x), .linear(let x): total + 4 * x.scalars.count
            case .neuron(_, let s, let m, let o): total + 4 * (s.count + m.count + o.count)
            case .dropout(let mask): total + 4 * mask.count
            case .residual(let a, let b): total + bytes(a) + bytes(b)
            default: total
            }
        }
    }
}
