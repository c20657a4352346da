import TensorKit

/// Adaptive time steps: the simulation runs a few steps at a time, each spiking layer carrying its
/// membranes and last spikes (`NeuronState`) from one run of steps to the next, and after each run
/// the images whose prediction the `ExitPolicy` calls settled leave the batch — their frames, states
/// and input generators are dropped, so the rest of the batch's work shrinks with them. An image
/// that never settles runs its whole budget and gets exactly the result of a fixed-budget run.
extension SpikingEngine {
    mutating func runAdaptive(_ input: Tensor, options: Options, policy: ExitPolicy, plan: Plan) -> Result {
        let d = model.description
        let n = input.shape[0], budget = options.timesteps, classes = d.labels.count
        let neuronLayers = layers.neuronCount
        let encoding = options.encoding ?? snn.encoding
        var result = Result(
            potentials: Tensor(shape: [n, classes]), trace: options.trace ? [[[Float]]](repeating: [], count: n) : nil,
            spikes: [Int](repeating: 0, count: n), synapticOps: [Int](repeating: 0, count: n),
            layerSpikes: [Int](repeating: 0, count: neuronLayers),
            imageLayerSpikes: [[Int]](repeating: [Int](repeating: 0, count: neuronLayers), count: n),
            layerNeurons: [Int](repeating: 0, count: neuronLayers), timesteps: budget,
            timestepsUsed: [Int](repeating: budget, count: n), exits: [ExitReason](repeating: .budget, count: n))
        let shape = [d.input.channels, d.input.height, d.input.width]
        let features = shape.reduce(1, *)
        // With direct input the layers before the first spiking layer see the same input at every
        // step: they run once per image, and their output is kept for the later runs of steps.
        let prefix = encoding == .direct ? (layers.firstIndex { [$0].neuronCount > 0 } ?? 0) : 0
        let rest = Array(layers[prefix...])
        let perImage = max(1, maxFrameFloats / max(1, max(1, policy.interval, policy.minTimesteps) * Self.largestActivation(d)))
        var start = 0
        while start < n {
            let b = min(perImage, n - start)
            var active = Array(0..<b)
            var rows = input.scalars[(start * features)..<((start + b) * features)].map { $0 }
            var generators = (0..<b).map { i in
                SeededGenerator(seed: options.seeds.count > start + i ? options.seeds[start + i] : UInt64(start + i))
            }
            var states = [NeuronState?](repeating: nil, count: neuronLayers)
            var prefixOutput: Frames? = nil
            var prefixWeighted = 0
            var prefixOps = [Int](repeating: 0, count: b)
            var running = [[Float]](repeating: [Float](repeating: 0, count: classes), count: b)
            var steps = 0
            // `.mask`: settled images stay in the batch with their input and neuron state zeroed, so
            // they send no events (kept to measure against shrinking; see `ExitRemoval`).
            var masked = Set<Int>()
            while steps < budget && masked.count < active.count {
                let segment = steps < policy.minTimesteps ? min(budget, policy.minTimesteps) - steps : min(max(1, policy.interval), budget - steps)
                var segmentPlan = plan
                segmentPlan.timesteps = segment
                var stats = Stats(images: active.count, neuronLayers: neuronLayers)
                var position = Position(neuron: 0, weighted: prefixWeighted, states: states)
                let out: Frames?
                if encoding == .direct {
                    if prefixOutput == nil {
                        let frames = rows.withUnsafeBufferPointer { x in
                            InputEncoder.frames(
                                x.baseAddress!, shape: shape, images: b, timesteps: 1, encoding: .direct, generators: &generators,
                                events: &stats.events)
                        }
                        var first = Position()
                        prefixOutput = simulate(Array(layers[..<prefix]), frames, plan: segmentPlan, position: &first, stats: &stats)
                        prefixWeighted = first.weighted
                        position.weighted = prefixWeighted
                        // The prefix's synaptic operations recur at every step an image runs.
                        prefixOps = stats.synapticOps
                        stats.synapticOps = [Int](repeating: 0, count: b)
                    }
                    for (j, i) in active.enumerated() where !masked.contains(j) { stats.synapticOps[j] += prefixOps[i] * segment }
                    out = prefixOutput.flatMap { simulate(rest, $0, plan: segmentPlan, position: &position, stats: &stats) }
                } else {
                    let frames = rows.withUnsafeBufferPointer { x in
                        InputEncoder.frames(
                            x.baseAddress!, shape: shape, images: active.count, timesteps: segment, encoding: encoding,
                            generators: &generators, events: &stats.events)
                    }
                    out = simulate(layers, frames, plan: segmentPlan, position: &position, stats: &stats)
                }
                states = position.states ?? states
                guard let out else { break }
                steps += segment
                merge(stats, active: active, masked: masked, offset: start, into: &result)
                // Each step's output current adds to the potential; the trace records every step.
                let m = active.count
                for (j, i) in active.enumerated() where !masked.contains(j) {
                    for step in 0..<segment {
                        let base = (step * m + j) * classes
                        for c in 0..<classes { running[i][c] += out.scalars[base + c] }
                        if result.trace != nil { result.trace![start + i].append(running[i]) }
                    }
                }
                // Images whose prediction is settled leave; the rest continue with smaller frames.
                var keep: [Int] = []
                for (j, i) in active.enumerated() where !masked.contains(j) {
                    if steps < budget && policy.isSettled(running[i], steps: steps) {
                        result.timestepsUsed[start + i] = steps
                        result.exits[start + i] = .settled
                    } else {
                        keep.append(j)
                    }
                }
                if options.exitRemoval == .mask {
                    for j in 0..<m where !masked.contains(j) && !keep.contains(j) {
                        masked.insert(j)
                        states = states.map { $0?.zeroing(image: j, of: m) }
                        prefixOutput?.zero(image: j)
                        if encoding != .direct { for f in 0..<features { rows[j * features + f] = 0 } }
                    }
                    continue
                }
                guard keep.count < active.count else { continue }
                active = keep.map { active[$0] }
                states = states.map { $0?.selecting(keep, of: m) }
                prefixOutput = prefixOutput?.selecting(keep)
                generators = keep.map { generators[$0] }
                if encoding != .direct {
                    rows = keep.flatMap { j in rows[(j * features)..<((j + 1) * features)] }
                }
            }
            for i in 0..<b {
                for c in 0..<classes { result.potentials.scalars[(start + i) * classes + c] = running[i][c] }
            }
            start += b
        }
        return result
    }

    /// Adds one run of steps' statistics (for the images `active`, chunk-local, but the masked
    /// ones) to the result. Layer totals include masked images (their work is real).
    func merge(_ stats: Stats, active: [Int], masked: Set<Int>, offset: Int, into result: inout Result) {
        for (j, i) in active.enumerated() where j < stats.spikes.count && !masked.contains(j) {
            result.spikes[offset + i] += stats.spikes[j]
            result.synapticOps[offset + i] += stats.synapticOps[j]
            for k in stats.imageLayerSpikes[j].indices { result.imageLayerSpikes[offset + i][k] += stats.imageLayerSpikes[j][k] }
        }
        for k in stats.layerSpikes.indices {
            result.layerSpikes[k] += stats.layerSpikes[k]
            if stats.layerNeurons[k] > 0 { result.layerNeurons[k] = stats.layerNeurons[k] }
        }
        for r in stats.weightedLayers {
            if let k = result.weightedLayers.firstIndex(where: { $0.name == r.name }) {
                result.weightedLayers[k].path = r.path
                result.weightedLayers[k].inputValues += r.inputValues
                result.weightedLayers[k].inputEvents += r.inputEvents
                result.weightedLayers[k].denseMACs += r.denseMACs
                result.weightedLayers[k].eventMACs += r.eventMACs
            } else {
                result.weightedLayers.append(r)
            }
        }
    }
}
