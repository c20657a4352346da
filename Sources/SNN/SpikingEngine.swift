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
public struct SpikingEngine: Sendable {
    public let model: Model
    public var workspace = Workspace()
    /// Upper bound on floats in one layer's frames; larger batches are simulated in chunks.
    public var maxFrameFloats = 32 << 20

    public init(model: Model) throws(ModelError) {
        guard model.description.snn != nil else { throw ModelError("\(model.description.name) has not been converted to an SNN") }
        self.model = model
    }

    public struct Options: Sendable {
        public var timesteps: Int
        public var encoding: SNNConfig.Encoding?
        /// One seed per image (Poisson encoding); missing entries default to the image index.
        public var seeds: [UInt64]
        /// Record each image's running potential after every step.
        public var trace: Bool
        /// Override of the model's thresholds (conversion calibrates with partial lists).
        public var thresholds: [Float]?
        public var lagged: Bool?

        public init(timesteps: Int, encoding: SNNConfig.Encoding? = nil, seeds: [UInt64] = [], trace: Bool = false,
                    thresholds: [Float]? = nil, lagged: Bool? = nil) {
            self.timesteps = timesteps
            self.encoding = encoding
            self.seeds = seeds
            self.trace = trace
            self.thresholds = thresholds
            self.lagged = lagged
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
        public var timesteps: Int

        /// Mean fraction of neurons of each spiking layer that fire per step.
        public var spikeRates: [Double] {
            let images = potentials.shape[0]
            return zip(layerSpikes, layerNeurons).map { Double($0) / Double(max(1, $1 * timesteps * images)) }
        }

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
            return softmax((0..<k).map { potentials.scalars[b * k + $0] / Float(timesteps) })
        }
    }

    /// Called with each spiking layer's input current before its neurons run (conversion's hook).
    public typealias CurrentObserver = (_ neuronLayer: Int, _ current: UnsafeBufferPointer<Float>) -> Void

    public mutating func run(_ input: Tensor, options: Options) -> Result {
        run(input, options: options, stopAfterNeuron: nil, observe: nil)
    }

    /// Runs the simulation. With `stopAfterNeuron`, stops once that spiking layer has observed its
    /// current (the rest of the network is not needed to calibrate it).
    public mutating func run(_ input: Tensor, options: Options, stopAfterNeuron: Int?, observe: CurrentObserver?) -> Result {
        let snn = model.description.snn!
        let d = model.description
        let n = input.shape[0]
        let t = options.timesteps
        let classes = d.labels.count
        let thresholds = options.thresholds ?? snn.thresholds
        let plan = Plan(thresholds: thresholds, leaks: snn.leaks ?? [Float](repeating: snn.leak, count: thresholds.count), timesteps: t,
                        lagged: options.lagged ?? snn.lagged, stopAfterNeuron: stopAfterNeuron, observe: observe)
        let neuronLayers = d.layers.neuronLayerCount
        var result = Result(
            potentials: Tensor(shape: [n, classes]), trace: options.trace ? [] : nil,
            spikes: [Int](repeating: 0, count: n), synapticOps: [Int](repeating: 0, count: n),
            layerSpikes: [Int](repeating: 0, count: neuronLayers),
            imageLayerSpikes: [[Int]](repeating: [Int](repeating: 0, count: neuronLayers), count: n),
            layerNeurons: [Int](repeating: 0, count: neuronLayers), timesteps: t)
        let perImage = max(1, maxFrameFloats / max(1, t * Self.largestActivation(d)))
        let features = d.input.channels * d.input.height * d.input.width
        var start = 0
        while start < n {
            let b = min(perImage, n - start)
            let seeds = (0..<b).map { i in options.seeds.count > start + i ? options.seeds[start + i] : UInt64(start + i) }
            var stats = Stats(images: b, neuronLayers: neuronLayers)
            let frames = input.withUnsafePointer { x in
                InputEncoder.frames(x + start * features, shape: [d.input.channels, d.input.height, d.input.width], images: b,
                                    timesteps: t, encoding: options.encoding ?? snn.encoding, seeds: seeds, events: &stats.events)
            }
            var neuronIndex = 0
            let out = simulate(d.layers, frames, plan: plan, neuronIndex: &neuronIndex, stats: &stats)
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
            if out == nil { return result }
            start += b
        }
        return result
    }

    struct Plan {
        var thresholds: [Float]
        var leaks: [Float]
        var timesteps: Int
        var lagged: Bool
        var stopAfterNeuron: Int?
        var observe: CurrentObserver?
    }

    struct Stats {
        var spikes: [Int]
        var synapticOps: [Int]
        /// Input events per image waiting to enter the next weighted layer.
        var events: [Int]
        var layerSpikes: [Int]
        var imageLayerSpikes: [[Int]]
        var layerNeurons: [Int]
        init(images: Int, neuronLayers: Int) {
            imageLayerSpikes = [[Int]](repeating: [Int](repeating: 0, count: neuronLayers), count: images)
            spikes = [Int](repeating: 0, count: images)
            synapticOps = spikes
            events = spikes
            layerSpikes = [Int](repeating: 0, count: neuronLayers)
            layerNeurons = layerSpikes
        }
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

    /// Interprets `layers` on frames; returns nil if stopped early.
    mutating func simulate(_ layers: [LayerSpec], _ input: Frames, plan: Plan, neuronIndex: inout Int, stats: inout Stats) -> Frames? {
        var x = input
        for layer in layers {
            switch layer.type {
            case .conv2d:
                addSynapticOps(&stats, fanOut: layer.outChannels! * layer.kernel! * layer.kernel!)
                x = convolve(x, layer)
            case .linear:
                addSynapticOps(&stats, fanOut: layer.outFeatures!)
                x = fullyConnected(x.flattened(), layer)
            case .relu:
                let k = neuronIndex
                neuronIndex += 1
                if let observe = plan.observe { x.scalars.withUnsafeBufferPointer { observe(k, $0) } }
                if let stop = plan.stopAfterNeuron, k >= stop { return nil }
                let spikes = NeuronDynamics.fire(&x, threshold: plan.thresholds[k], leak: plan.leaks[k])
                for i in 0..<x.images {
                    stats.spikes[i] += spikes[i]
                    stats.imageLayerSpikes[i][k] = spikes[i]
                }
                stats.events = spikes
                stats.layerSpikes[k] += spikes.reduce(0, +)
                stats.layerNeurons[k] = x.shape.reduce(1, *)
                if plan.lagged { x.delayOneStep() }
            case .avgpool:
                x = Self.pool(x, kernel: layer.kernel!, stride: layer.stride ?? layer.kernel!)
            case .flatten:
                x = x.flattened()
            case .dropout:
                continue
            case .residual:
                let entering = stats.events
                guard let a = simulate(layer.body ?? [], x, plan: plan, neuronIndex: &neuronIndex, stats: &stats) else { return nil }
                var s = x
                if let shortcut = layer.shortcut, !shortcut.isEmpty {
                    stats.events = entering
                    guard let r = simulate(shortcut, x, plan: plan, neuronIndex: &neuronIndex, stats: &stats) else { return nil }
                    s = r
                }
                x = a
                x.scalars.withUnsafeMutableBufferPointer { dst in
                    s.scalars.withUnsafeBufferPointer { src in
                        for i in 0..<dst.count { dst[i] += src[i] }
                    }
                }
            case .maxpool, .batchnorm:
                preconditionFailure("validated SNN models contain no \(layer.type)")
            }
        }
        return x
    }

    func addSynapticOps(_ stats: inout Stats, fanOut: Int) {
        for i in stats.events.indices { stats.synapticOps[i] += stats.events[i] * fanOut }
    }

    mutating func convolve(_ x: Frames, _ layer: LayerSpec) -> Frames {
        x.convolved(layer, tensors: model.tensors, workspace: &workspace)
    }

    func fullyConnected(_ x: Frames, _ layer: LayerSpec) -> Frames {
        x.linear(layer, tensors: model.tensors)
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

/// Numerically safe softmax (the maximum is subtracted first).
public func softmax(_ z: [Float]) -> [Float] {
    let m = z.max() ?? 0
    let e = z.map { expf($0 - m) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
