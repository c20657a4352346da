import TensorKit

/// Simulates a converted network as an SNN, layer by layer over all time steps at once.
///
/// For a chunk of b images and T steps the engine holds `Frames` (T·b frames). A convolution or
/// linear layer is one GEMM over all T·b frames — the input current of every step at once; a
/// spiking layer then runs the only sequential part, the membrane recurrence over t:
///
///     u_t = leak·u_{t−1} + I_t − θ·o_{t−1},   o_t = [u_t > θ]
///
/// (integrate-and-fire when leak = 1; the reset subtracts θ, so charge above threshold carries
/// over). Average pooling acts on spikes, a residual block adds its shortcut to the block's current,
/// and the last layer only integrates: its summed current over the T steps is the output potential.
///
/// A weighted layer whose input is sparse (spikes, or pooled spikes) runs *event-driven*: each
/// non-zero input adds the weights it reaches, so the cost follows the spike rate instead of the
/// layer's size; dense inputs (the analog first layer, high rates) use the GEMM. The choice is made
/// per layer and per chunk from the measured input event rate (`SynapticPath`). With direct input
/// coding the first layer's current is the same at every step, so it is computed once per image.
public struct SpikingEngine: Sendable {
    public let model: Model
    /// The model's SNN configuration (thresholds, leak, encoding, time steps).
    public let snn: SNNConfig
    /// The model's layers, compiled once.
    let layers: [Layer]
    public var workspace = Workspace()
    /// Upper bound on floats in one layer's frames; larger batches are simulated in chunks.
    public var maxFrameFloats = 32 << 20
    /// Transposed weights of every convolution and linear layer for the event path, in traversal
    /// order (depth first, a block's body before its shortcut).
    let eventWeights: [[Float]]

    public init(model: Model) throws(ModelError) {
        guard let snn = model.description.snn else { throw ModelError("\(model.description.name) has not been converted to an SNN") }
        self.model = model
        self.snn = snn
        layers = try model.compiledLayers()
        var weights: [[Float]] = []
        func collect(_ layers: [Layer]) {
            for layer in layers {
                switch layer {
                case .convolution(let c): weights.append(eventDrivenWeights(c.weight))
                case .linear(let l): weights.append(eventDrivenWeights(l.weight))
                case .residual(let body, let shortcut):
                    collect(body)
                    collect(shortcut)
                default: break
                }
            }
        }
        collect(layers)
        eventWeights = weights
    }

    /// How adaptive time steps take settled images out of the remaining steps' work.
    public enum ExitRemoval: String, Sendable, CaseIterable {
        /// Drop them from the batch: frames, neuron states and generators shrink.
        case shrink
        /// Keep them, with input and neuron state zeroed: they send no events, but dense layers
        /// and the membrane recurrence still run over them.
        case mask
    }

    /// How a weighted layer computes its input current.
    public enum SynapticPath: Sendable, Equatable {
        /// Event-driven when the layer's input event rate (non-zero fraction of its input) is below
        /// the measured crossover of its kind (`EventCrossover`), dense otherwise.
        case automatic
        case dense
        case eventDriven
    }

    /// Input event rates below which the event-driven path beats the dense one, measured with
    /// `spikeserve bench --crossover` on a 2-core AMD EPYC with AVX-512 (docs/performance.md,
    /// "Event-driven layers"): a 3×3 convolution breaks even near 0.73, a linear layer near 0.25
    /// (its GEMM is the more efficient one). Set a little below, where the paths are within noise.
    public enum EventCrossover {
        public static let conv2d = 0.65
        public static let linear = 0.22
    }

    public struct Options: Sendable {
        public var timesteps: Int
        public var encoding: SNNConfig.Encoding?
        /// One seed per image (Poisson encoding); missing entries default to the image index.
        public var seeds: [UInt64]
        /// Record each image's running potential after every step.
        public var trace: Bool
        /// Stop each image once its prediction is settled (adaptive time steps); nil runs every
        /// image for `timesteps` steps.
        public var exit: ExitPolicy?
        /// How settled images leave the computation (`.shrink`, the default, measured faster).
        public var exitRemoval = ExitRemoval.shrink
        /// Override of the model's spike amplitudes (conversion calibrates with partial lists).
        public var spikeAmplitudes: [Float]?
        /// Override of the model's thresholds (conversion calibrates with partial lists).
        public var thresholds: [Float]?
        public var lagged: Bool?
        /// Dense or event-driven weighted layers; `.automatic` (the default) picks per layer.
        public var synapticPath: SynapticPath

        public init(
            timesteps: Int, encoding: SNNConfig.Encoding? = nil, seeds: [UInt64] = [], trace: Bool = false,
            thresholds: [Float]? = nil, lagged: Bool? = nil, synapticPath: SynapticPath = .automatic, exit: ExitPolicy? = nil
        ) {
            self.exit = exit
            self.timesteps = timesteps
            self.encoding = encoding
            self.seeds = seeds
            self.trace = trace
            self.thresholds = thresholds
            self.lagged = lagged
            self.synapticPath = synapticPath
        }
    }

    public struct Result: Sendable {
        /// Output potential per image, `[b, classes]`: the sum over steps of the output current.
        public var potentials: Tensor
        /// `[b][t][classes]` running potential after each step, when traced.
        public var trace: [[[Float]]]?
        /// Spikes per image, summed over spiking layers and steps.
        public var spikes: [Int]
        /// Synaptic operations per image: every input event (spike, or non-zero input value) times
        /// the fan-out of the layer it enters.
        public var synapticOps: [Int]
        /// Spikes per spiking layer, summed over images and steps.
        public var layerSpikes: [Int]
        /// Spikes per image per spiking layer, `[image][layer]`.
        public var imageLayerSpikes: [[Int]]
        /// Neurons per spiking layer (per image, per step).
        public var layerNeurons: [Int]
        /// What each weighted layer did, in network order (summed over chunks).
        public var weightedLayers: [WeightedLayerReport] = []
        /// The budget.
        public var timesteps: Int
        /// Steps each image ran: the budget, or fewer when an exit policy stopped it.
        public var timestepsUsed: [Int]
        /// Why each image stopped.
        public var exits: [ExitReason]

        /// Mean fraction of neurons of each spiking layer that fire per step.
        public var spikeRates: [Double] {
            let imageSteps = timestepsUsed.reduce(0, +)
            return zip(layerSpikes, layerNeurons).map { Double($0) / Double(max(1, $1 * imageSteps)) }
        }

        /// Each image's class, or nil when its output potentials carry no decision: the largest
        /// potential is shared by several classes (all equal when the output layer received
        /// nothing, as at T = 1 for networks whose deepest spiking layer has not fired yet).
        public var decisions: [Int?] {
            let k = potentials.shape[1]
            return (0..<potentials.shape[0]).map { b in
                let row = potentials.scalars[(b * k)..<((b + 1) * k)]
                guard let best = row.max() else { return nil }
                let winners = row.indices.filter { row[$0] == best }
                return winners.count == 1 ? winners[0] - b * k : nil
            }
        }

        /// argmax of each image's potentials (the first class on ties; see `decisions`).
        public var predictions: [Int] {
            let k = potentials.shape[1]
            return (0..<potentials.shape[0]).map { b in
                var best = 0
                for j in 1..<k where potentials.scalars[b * k + j] > potentials.scalars[b * k + best] { best = j }
                return best
            }
        }

        /// softmax(potential / T): the scores the API reports.
        public func scores(image b: Int) -> [Float] {
            let k = potentials.shape[1]
            return softmax((0..<k).map { potentials.scalars[b * k + $0] / Float(max(1, timestepsUsed[b])) })
        }
    }

    /// One weighted layer's work in a run.
    public struct WeightedLayerReport: Sendable, Equatable {
        public var name: String
        /// `.dense` or `.eventDriven`: the path of the last chunk.
        public var path: SynapticPath
        /// Input values seen (frames × input features) and how many were non-zero.
        public var inputValues: Int
        public var inputEvents: Int
        /// Multiply-accumulates the dense computation of this layer costs.
        public var denseMACs: Int
        /// Weight additions the event-driven computation costs (events × fan-out).
        public var eventMACs: Int
        public var eventRate: Double { Double(inputEvents) / Double(max(1, inputValues)) }
    }

    /// Called with each spiking layer's input current before its neurons run (conversion's hook).
    public typealias CurrentObserver = (_ neuronLayer: Int, _ current: UnsafeBufferPointer<Float>) -> Void

    public mutating func run(_ input: Tensor, options: Options) -> Result {
        run(input, options: options, stopAfterNeuron: nil, observe: nil)
    }

    /// Runs the simulation. With `stopAfterNeuron`, stops once that spiking layer has observed its
    /// current (the rest of the network is not needed to calibrate it).
    public mutating func run(_ input: Tensor, options: Options, stopAfterNeuron: Int?, observe: CurrentObserver?) -> Result {
        let d = model.description
        let n = input.shape[0]
        let t = options.timesteps
        let classes = d.labels.count
        let thresholds = options.thresholds ?? snn.thresholds
        let plan = Plan(
            thresholds: thresholds, leaks: snn.leaks ?? [Float](repeating: snn.leak, count: thresholds.count),
            initialMembranes: thresholds.map { (snn.initialMembrane ?? 0) * $0 },
            amplitudes: options.spikeAmplitudes ?? (0..<thresholds.count).map { snn.spikeAmplitude(layer: $0) }, timesteps: t,
            lagged: options.lagged ?? snn.lagged, stopAfterNeuron: stopAfterNeuron, observe: observe,
            synapticPath: options.synapticPath)
        if let policy = options.exit, stopAfterNeuron == nil, observe == nil, !plan.lagged {
            return runAdaptive(input, options: options, policy: policy, plan: plan)
        }
        let encoding = options.encoding ?? snn.encoding
        let neuronLayers = layers.neuronCount
        var result = Result(
            potentials: Tensor(shape: [n, classes]), trace: options.trace ? [] : nil,
            spikes: [Int](repeating: 0, count: n), synapticOps: [Int](repeating: 0, count: n),
            layerSpikes: [Int](repeating: 0, count: neuronLayers),
            imageLayerSpikes: [[Int]](repeating: [Int](repeating: 0, count: neuronLayers), count: n),
            layerNeurons: [Int](repeating: 0, count: neuronLayers), timesteps: t,
            timestepsUsed: [Int](repeating: t, count: n), exits: [ExitReason](repeating: .budget, count: n))
        let perImage = max(1, maxFrameFloats / max(1, t * Self.largestActivation(d)))
        let features = d.input.channels * d.input.height * d.input.width
        var start = 0
        while start < n {
            let b = min(perImage, n - start)
            let seeds = (0..<b).map { i in options.seeds.count > start + i ? options.seeds[start + i] : UInt64(start + i) }
            var stats = Stats(images: b, neuronLayers: neuronLayers)
            // Direct input is the same current at every step: encode one step, and let the layers
            // before the first spiking layer run on it once (`simulate` repeats it over t there).
            let encodedSteps = encoding == .direct ? 1 : t
            let frames = input.withUnsafePointer { x in
                InputEncoder.frames(
                    x + start * features, shape: [d.input.channels, d.input.height, d.input.width], images: b,
                    timesteps: encodedSteps, encoding: encoding, seeds: seeds, events: &stats.events)
            }
            if encodedSteps != t { stats.events = stats.events.map { $0 * t } }
            var position = Position()
            let out = simulate(layers, frames, plan: plan, position: &position, stats: &stats)
            if let out { integrateOutput(out, start: start, result: &result) }
            for i in 0..<b {
                result.spikes[start + i] = stats.spikes[i]
                result.synapticOps[start + i] = stats.synapticOps[i]
                result.imageLayerSpikes[start + i] = stats.imageLayerSpikes[i]
            }
            for l in 0..<neuronLayers {
                result.layerSpikes[l] += stats.layerSpikes[l]
                result.layerNeurons[l] = stats.layerNeurons[l]
            }
            if result.weightedLayers.isEmpty {
                result.weightedLayers = stats.weightedLayers
            } else {
                for (j, r) in stats.weightedLayers.enumerated() where j < result.weightedLayers.count {
                    result.weightedLayers[j].path = r.path
                    result.weightedLayers[j].inputValues += r.inputValues
                    result.weightedLayers[j].inputEvents += r.inputEvents
                    result.weightedLayers[j].denseMACs += r.denseMACs
                    result.weightedLayers[j].eventMACs += r.eventMACs
                }
            }
            if out == nil { return result }
            start += b
        }
        return result
    }

    struct Plan {
        var thresholds: [Float]
        var leaks: [Float]
        /// Membrane potential before the first step, per spiking layer.
        var initialMembranes: [Float]
        /// The value a spike carries, per spiking layer (1 unless converted from QCFS clips).
        var amplitudes: [Float] = []
        var timesteps: Int
        var lagged: Bool
        var stopAfterNeuron: Int?
        var observe: CurrentObserver?
        var synapticPath: SynapticPath
    }

    /// Where the simulation is: the next spiking layer and the next weighted layer, in traversal order.
    struct Position {
        var neuron = 0
        var weighted = 0
        /// Each spiking layer's state carried from the previous run of steps (adaptive time steps),
        /// or nil when a run covers all steps.
        var states: [NeuronState?]? = nil
    }

    struct Stats {
        var spikes: [Int]
        var synapticOps: [Int]
        /// Input events per image waiting to enter the next weighted layer.
        var events: [Int]
        var layerSpikes: [Int]
        var imageLayerSpikes: [[Int]]
        var layerNeurons: [Int]
        var weightedLayers: [WeightedLayerReport] = []
        init(images: Int, neuronLayers: Int) {
            imageLayerSpikes = [[Int]](repeating: [Int](repeating: 0, count: neuronLayers), count: images)
            spikes = [Int](repeating: 0, count: images)
            synapticOps = spikes
            events = spikes
            layerSpikes = [Int](repeating: 0, count: neuronLayers)
            layerNeurons = layerSpikes
        }
    }

    /// Bytes the engine needs at least, for one image at `timesteps` steps: a layer's input and
    /// output frames and its scratch (an estimate: three buffers of the largest activation).
    public static func minimumBytes(for description: ModelDescription, timesteps: Int) -> Int {
        3 * 4 * timesteps * largestActivation(description)
    }

    /// Most floats any layer produces per image per step: sizes the chunks.
    static func largestActivation(_ d: ModelDescription) -> Int {
        var largest = d.input.channels * d.input.height * d.input.width
        func walk(_ layers: [LayerSpec], _ shape: FeatureShape) -> FeatureShape {
            var s = shape
            for l in layers {
                if l.type == .residual { _ = walk(l.body ?? [], s) }
                s = (try? l.outputShape(from: s, path: "")) ?? s
                largest = max(largest, s.reduce(1, *))
            }
            return s
        }
        _ = walk(d.layers, [d.input.channels, d.input.height, d.input.width])
        return largest
    }

    /// Runs `layers` on frames; returns nil if stopped early.
    mutating func simulate(_ layers: [Layer], _ input: Frames, plan: Plan, position: inout Position, stats: inout Stats) -> Frames? {
        var x = input
        var index = 0
        while index < layers.count {
            let layer = layers[index]
            index += 1
            switch layer {
            case .convolution(let c):
                addSynapticOps(&stats, fanOut: c.fanOut)
                x = convolve(x, c, weightT: eventWeights[position.weighted], plan: plan, stats: &stats)
                position.weighted += 1
            case .linear(let l):
                addSynapticOps(&stats, fanOut: l.outFeatures)
                x = fullyConnected(x, l, weightT: eventWeights[position.weighted], plan: plan, stats: &stats)
                position.weighted += 1
            case .neuron, .quantizedClip:
                // Conversion observes every step's current; serving fires from the one step.
                if x.timesteps != plan.timesteps && plan.observe != nil { x = x.repeated(timesteps: plan.timesteps) }
                let k = position.neuron
                position.neuron += 1
                if let observe = plan.observe { x.scalars.withUnsafeBufferPointer { observe(k, $0) } }
                if let stop = plan.stopAfterNeuron, k >= stop { return nil }
                let spikes: [Int]
                let neurons = x.shape.reduce(1, *)
                let (θ, leak, u0) = (plan.thresholds[k], plan.leaks[k], plan.initialMembranes[k])
                var state = position.states.map { $0[k] ?? NeuronState(neurons: x.groups * x.blockLength, groups: x.groups, initialMembrane: u0) }
                if let pool = Self.fusablePool(after: index, in: layers, input: x, plan: plan) {
                    // Fire and pool in one pass; the spikes themselves are never stored.
                    (x, spikes) = NeuronDynamics.fireAndPool(
                        x, timesteps: plan.timesteps, threshold: θ, leak: leak, initialMembrane: u0, state: &state)
                    index = pool + 1
                } else if x.timesteps != plan.timesteps {
                    (x, spikes) = NeuronDynamics.fire(
                        constantCurrent: x, timesteps: plan.timesteps, threshold: θ, leak: leak, initialMembrane: u0, state: &state)
                } else {
                    spikes = NeuronDynamics.fire(&x, threshold: θ, leak: leak, initialMembrane: u0, state: &state)
                }
                if position.states != nil { position.states?[k] = state }
                if plan.amplitudes[k] != 1 { x.scale(by: plan.amplitudes[k]) }
                for i in 0..<x.images {
                    stats.spikes[i] += spikes[i]
                    stats.imageLayerSpikes[i][k] = spikes[i]
                }
                stats.events = spikes
                stats.layerSpikes[k] += spikes.reduce(0, +)
                stats.layerNeurons[k] = neurons
                if plan.lagged { x.delayOneStep() }
            case .averagePool(let p):
                x = Self.pool(x, kernel: p.kernel, stride: p.stride)
            case .flatten:
                x = x.flattened()
            case .dropout:
                continue
            case .residual(let body, let shortcut):
                if x.timesteps != plan.timesteps { x = x.repeated(timesteps: plan.timesteps) }
                let entering = stats.events
                guard let a = simulate(body, x, plan: plan, position: &position, stats: &stats) else { return nil }
                var s = x
                if !shortcut.isEmpty {
                    stats.events = entering
                    guard let r = simulate(shortcut, x, plan: plan, position: &position, stats: &stats) else { return nil }
                    s = r
                }
                x = a
                x.scalars.withUnsafeMutableBufferPointer { dst in
                    s.scalars.withUnsafeBufferPointer { src in
                        for i in 0..<dst.count { dst[i] += src[i] }
                    }
                }
            case .maxPool, .batchNorm:
                preconditionFailure("validated SNN models contain no max pooling or unfolded batch norm")
            }
        }
        return x
    }

    /// The index of a 2×2, stride-2 average pooling that follows a spiking layer (with only
    /// dropout, an identity at inference, between them) and can be fused with it, or nil.
    static func fusablePool(after next: Int, in layers: [Layer], input x: Frames, plan: Plan) -> Int? {
        guard !plan.lagged, plan.observe == nil, x.isMap, x.shape[1] % 2 == 0, x.shape[2] % 2 == 0,
            x.shape[1] * x.shape[2] <= NeuronDynamics.maxFusedPlane
        else { return nil }
        var j = next
        while j < layers.count, case .dropout = layers[j] { j += 1 }
        guard j < layers.count, case .averagePool(let p) = layers[j], p.kernel == 2, p.stride == 2 else { return nil }
        return j
    }

    func addSynapticOps(_ stats: inout Stats, fanOut: Int) {
        for i in stats.events.indices { stats.synapticOps[i] += stats.events[i] * fanOut }
    }

    /// Counts the layer's input events and picks its path.
    func choosePath(_ x: Frames, crossover: Double, plan: Plan) -> (path: SynapticPath, events: Int) {
        let events = x.scalars.withUnsafeBufferPointer { nonzeroCount($0) }
        switch plan.synapticPath {
        case .dense, .eventDriven: return (plan.synapticPath, events)
        case .automatic:
            let rate = Double(events) / Double(max(1, x.scalars.count))
            return (rate < crossover ? .eventDriven : .dense, events)
        }
    }

    mutating func convolve(_ x: Frames, _ layer: Layer.Convolution, weightT: [Float], plan: Plan, stats: inout Stats) -> Frames {
        let (path, events) = choosePath(x, crossover: EventCrossover.conv2d, plan: plan)
        let g = layer.geometry
        let (oh, ow) = g.outputSize(height: x.shape[1], width: x.shape[2])
        stats.weightedLayers.append(
            WeightedLayerReport(
                name: layer.name, path: path, inputValues: x.scalars.count, inputEvents: events,
                denseMACs: x.frames * oh * ow * g.outChannels * g.patchSize,
                eventMACs: events * g.outChannels * g.kernelHeight * g.kernelWidth))
        guard path == .eventDriven else { return x.convolved(layer, workspace: &workspace) }
        return x.convolvedEventDriven(layer, weightT: weightT)
    }

    func fullyConnected(_ x: Frames, _ layer: Layer.Linear, weightT: [Float], plan: Plan, stats: inout Stats) -> Frames {
        let (path, events) = choosePath(x, crossover: EventCrossover.linear, plan: plan)
        stats.weightedLayers.append(
            WeightedLayerReport(
                name: layer.name, path: path, inputValues: x.scalars.count, inputEvents: events,
                denseMACs: x.scalars.count * layer.outFeatures, eventMACs: events * layer.outFeatures))
        guard path == .eventDriven else { return x.flattened().linear(layer) }
        return x.linearEventDriven(layer, weightT: weightT)
    }

    static func pool(_ x: Frames, kernel: Int, stride: Int) -> Frames {
        // Channel-major maps are just C·T·b planes to the pooling kernel.
        let planes = Tensor(shape: [x.shape[0] * x.frames, 1, x.shape[1], x.shape[2]], scalars: x.scalars)
        let y = avgPool2d(planes, kernel: kernel, stride: stride)
        var out = Frames(shape: [x.shape[0], y.shape[2], y.shape[3]], timesteps: x.timesteps, images: x.images)
        out.scalars = y.scalars
        return out
    }

    func integrateOutput(_ out: Frames, start: Int, result: inout Result) {
        let k = out.shape[0], b = out.images, t = out.timesteps
        for i in 0..<b {
            var running = [Float](repeating: 0, count: k)
            var steps: [[Float]] = []
            if result.trace != nil { steps.reserveCapacity(t) }
            for step in 0..<t {
                let base = (step * b + i) * k
                for j in 0..<k { running[j] += out.scalars[base + j] }
                if result.trace != nil { steps.append(running) }
            }
            for j in 0..<k { result.potentials.scalars[(start + i) * k + j] = running[j] }
            if result.trace != nil { result.trace!.append(steps) }
        }
    }
}
