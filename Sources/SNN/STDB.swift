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
    public var model: Model
    public var surrogate: Surrogate
    public var trainThresholds = false
    public var trainLeak = false
    /// Dense or event-driven weighted layers (forward currents and weight gradients); `.automatic`
    /// picks per layer from the input event rate, as the engine does.
    public var synapticPath: SpikingEngine.SynapticPath = .automatic
    var workspace = Workspace()

    public init(model: Model, surrogate: Surrogate) throws(ModelError) {
        guard model.description.snn != nil else { throw ModelError("fine-tuning needs a converted SNN model") }
        self.model = model
        self.surrogate = surrogate
    }

    /// Per-layer leak (one value per spiking layer), from `snn.leaks` or the global `snn.leak`.
    var leaks: [Float] {
        let snn = model.description.snn!
        return snn.leaks ?? [Float](repeating: snn.leak, count: snn.thresholds.count)
    }

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
        let d = model.description
        let b = input.shape[0]
        var events = [Int](repeating: 0, count: b)
        // Direct input is the same every step: the layers before the first spiking layer run on one
        // step (as in the engine), and their weight gradients use the gradient summed over steps.
        let encoding = d.snn!.encoding
        let frames = input.withUnsafePointer { x in
            InputEncoder.frames(
                x, shape: [d.input.channels, d.input.height, d.input.width], images: b,
                timesteps: encoding == .direct ? 1 : t, encoding: encoding, seeds: seeds, events: &events)
        }
        var rng = SeededGenerator(seed: dropoutSeed)
        var tape: [Tape] = []
        var neuronIndex = 0
        let out = forward(d.layers, frames, timesteps: t, tape: &tape, neuronIndex: &neuronIndex, generator: &rng)
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
            thresholdGradients: [Float](repeating: 0, count: d.snn!.thresholds.count),
            leakGradients: [Float](repeating: 0, count: d.snn!.thresholds.count), tapeBytes: tapeBytes)
        _ = backward(d.layers, g, tape: tape, result: &result, needInput: false)
        return result
    }

    mutating func forward(
        _ layers: [LayerSpec], _ input: Frames, timesteps: Int, tape: inout [Tape], neuronIndex: inout Int,
        generator: inout SeededGenerator
    ) -> Frames {
        var x = input
        let snn = model.description.snn!
        let leaks = self.leaks
        let t = timesteps
        for layer in layers {
            switch layer.type {
            case .conv2d:
                tape.append(.conv(input: x))
                x = convolve(x, layer)
            case .linear:
                let flat = x.flattened()
                tape.append(.linear(input: flat))
                x = fullyConnected(flat, layer)
            case .relu:
                let k = neuronIndex
                neuronIndex += 1
                let (sur, mem, spikes) = Self.fireRecording(
                    &x, timesteps: t, threshold: snn.thresholds[k], leak: leaks[k],
                    surrogate: surrogate, keepState: trainThresholds || trainLeak)
                tape.append(.neuron(index: k, surrogate: sur, membrane: mem, spikes: spikes))
            case .avgpool:
                let kernel = layer.kernel!, stride = layer.stride ?? kernel
                tape.append(.pool(inputShape: x.shape, kernel: kernel, stride: stride))
                x = SpikingEngine.pool(x, kernel: kernel, stride: stride)
            case .dropout:
                guard let p = layer.p, p > 0 else { tape.append(.none); continue }
                let mask = parallelDropoutMask(count: x.groups * x.blockLength, probability: p, generator: &generator)
                Self.applyPerImageMask(&x, mask)
                tape.append(.dropout(mask: mask))
            case .flatten:
                tape.append(.flatten(mapShape: x.shape))
                x = x.flattened()
            case .residual:
                if x.timesteps != t { x = x.repeated(timesteps: t) }
                var bodyTape: [Tape] = [], shortcutTape: [Tape] = []
                let a = forward(layer.body ?? [], x, timesteps: t, tape: &bodyTape, neuronIndex: &neuronIndex, generator: &generator)
                let s =
                    (layer.shortcut ?? []).isEmpty
                    ? x : forward(layer.shortcut!, x, timesteps: t, tape: &shortcutTape, neuronIndex: &neuronIndex, generator: &generator)
                x = a
                for i in 0..<x.scalars.count { x.scalars[i] += s.scalars[i] }
                tape.append(.residual(body: bodyTape, shortcut: shortcutTape))
            case .maxpool, .batchnorm:
                preconditionFailure("validated SNN models contain no \(layer.type)")
            }
        }
        return x
    }

    /// Gradients flow from `gradOutput` back through `layers`; returns the input gradient when asked.
    mutating func backward(_ layers: [LayerSpec], _ gradOutput: Frames, tape: [Tape], result: inout StepResult, needInput: Bool) -> Frames? {
        var g = gradOutput
        let snn = model.description.snn!
        let leaks = self.leaks
        // Nothing before the first weighted layer has parameters.
        let firstWeighted = needInput ? -1 : (layers.firstIndex { [.conv2d, .linear, .residual].contains($0.type) } ?? 0)
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[i]
            let wantInput = i > firstWeighted
            switch tape[i] {
            case .conv(let input):
                if input.timesteps != g.timesteps { g = g.summedOverSteps() }
                let gw = convolveBackward(input, g, layer, wantInput: wantInput)
                accumulate(&result.gradients, "\(layer.name!).weight", gw.weight)
                if layer.hasBias { accumulate(&result.gradients, "\(layer.name!).bias", gw.bias) }
                guard let gi = gw.input else { return nil }
                g = gi
            case .linear(let input):
                if input.timesteps != g.timesteps { g = g.summedOverSteps() }
                let w = model.tensors["\(layer.name!).weight"]!
                let x = Tensor(shape: [input.frames, input.shape[0]], scalars: input.scalars)
                let gy = Tensor(shape: [g.frames, g.shape[0]], scalars: g.scalars)
                // dW = dYᵀ·X over spikes: event-driven when X is sparse, as in the forward pass.
                let sparse = isSparse(input, below: SpikingEngine.EventCrossover.linear)
                let r = linearBackward(
                    x, weight: w, gradOutput: gy, needInputGradient: wantInput, withBias: layer.hasBias,
                    needWeightGradient: !sparse)
                accumulate(&result.gradients, "\(layer.name!).weight", sparse ? eventLinearWeightGradient(x, gradOutput: gy) : r.weight)
                if let gb = r.bias { accumulate(&result.gradients, "\(layer.name!).bias", gb) }
                guard let gi = r.input else { return nil }
                g = Frames(scalars: gi.scalars, shape: input.shape, timesteps: input.timesteps, images: input.images)
            case .neuron(let k, let sur, let mem, let spikes):
                // A spiking layer fed by a current that is the same every step needs only Σ_t g_u.
                let sumSteps = i > 0 && !trainThresholds && !trainLeak && Self.hasOneStepInput(tape[i - 1], steps: g.timesteps)
                let (gTheta, gLeak) = Self.backwardThroughTime(
                    &g, surrogate: sur, membrane: mem, spikes: spikes,
                    threshold: snn.thresholds[k], leak: leaks[k],
                    wantThreshold: trainThresholds, wantLeak: trainLeak,
                    sumOverSteps: sumSteps)
                result.thresholdGradients[k] += gTheta
                result.leakGradients[k] += gLeak
            case .pool(let shape, let kernel, let stride):
                let planes = Tensor(shape: [g.shape[0] * g.frames, 1, g.shape[1], g.shape[2]], scalars: g.scalars)
                let gi = avgPool2dBackward(planes, inputShape: [shape[0] * g.frames, 1, shape[1], shape[2]], kernel: kernel, stride: stride)
                g = Frames(scalars: gi.scalars, shape: shape, timesteps: g.timesteps, images: g.images)
            case .dropout(let mask):
                Self.applyPerImageMask(&g, mask)
            case .flatten(let mapShape):
                g = g.unflattened(to: mapShape)
            case .residual(let bodyTape, let shortcutTape):
                let gb = backward(layer.body ?? [], g, tape: bodyTape, result: &result, needInput: true)!
                var gs = g
                if let shortcut = layer.shortcut, !shortcut.isEmpty {
                    gs = backward(shortcut, g, tape: shortcutTape, result: &result, needInput: true)!
                }
                g = gb
                for j in 0..<g.scalars.count { g.scalars[j] += gs.scalars[j] }
            case .none:
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
    mutating func convolve(_ x: Frames, _ layer: LayerSpec) -> Frames {
        let w = model.tensors["\(layer.name!).weight"]!
        guard isSparse(x, below: SpikingEngine.EventCrossover.conv2d) else {
            return x.convolved(layer, tensors: model.tensors, workspace: &workspace)
        }
        return x.convolvedEventDriven(layer, weightT: eventDrivenWeights(w), tensors: model.tensors)
    }

    func fullyConnected(_ x: Frames, _ layer: LayerSpec) -> Frames {
        let w = model.tensors["\(layer.name!).weight"]!
        guard isSparse(x, below: SpikingEngine.EventCrossover.linear) else { return x.linear(layer, tensors: model.tensors) }
        return x.linearEventDriven(layer, weightT: eventDrivenWeights(w), tensors: model.tensors)
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

    mutating func convolveBackward(_ input: Frames, _ g: Frames, _ layer: LayerSpec, wantInput: Bool)
        -> (weight: Tensor, bias: Tensor, input: Frames?)
    {
        let geo = layer.convGeometry
        let w = model.tensors["\(layer.name!).weight"]!
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
        if layer.hasBias {
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
        _ x: inout Frames, timesteps t: Int, threshold θ: Float, leak: Float, surrogate: Surrogate,
        keepState: Bool
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
                                    Int64(range.lowerBound), Int64(range.count), θ, leak, tab?.base,
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
