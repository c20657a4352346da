import Foundation
import TensorKit
import Testing

@testable import SNN

@Suite struct EngineTests {
    /// Two inputs → one integrate-and-fire neuron (θ = 1) → one output, direct input coding.
    /// Input current 0.4 + 0.3 = 0.7 per step: u = 0.7, 1.4 (spike), 1.1 (spike, after reset 0.1+... )
    /// Worked by hand: u_t = u_{t−1} + 0.7 − o_{t−1}:
    ///   t=1: 0.7 → 0;  t=2: 1.4 → 1;  t=3: 1.4 + 0.7 − 1 = 1.1 → 1;  t=4: 1.1 + 0.7 − 1 = 0.8 → 0;
    ///   t=5: 1.5 → 1;  t=6: 1.2 → 1;  t=7: 0.9 → 0;  t=8: 1.6 → 1.   Spikes: 5 of 8.
    /// The output weight 2 integrates them: potential 10.
    @Test func twoLayerSpikeCountsByHand() throws {
        let input = InputDescription(channels: 2, height: 1, width: 1, mean: [0, 0], std: [1, 1])
        let model = makeModel(
            input: input, labels: 1,
            layers: [.flatten, .linear("fc1", 2, 1), .relu, .linear("fc2", 1, 1)],
            tensors: ["fc1.weight": Tensor(shape: [1, 2], scalars: [1, 1]), "fc2.weight": Tensor(shape: [1, 1], scalars: [2])],
            thresholds: [1])
        try model.validate()
        var engine = try SpikingEngine(model: model)
        let r = engine.run(Tensor(shape: [1, 2, 1, 1], scalars: [0.4, 0.3]), options: .init(timesteps: 8, trace: true))
        #expect(r.spikes == [5])
        #expect(abs(r.potentials.scalars[0] - 10) < 1e-5)
        #expect(r.trace![0].map { $0[0] } == [0, 2, 4, 4, 6, 8, 8, 10])
        // Two inputs × 8 steps of direct input enter fc1 (fan-out 1); 5 spikes enter fc2 (fan-out 1).
        #expect(r.synapticOps == [16 + 5])
        #expect(abs(r.spikeRates[0] - 5.0 / 8) < 1e-9)
    }

    @Test func leakyNeuronByHand() throws {
        // leak 0.5, constant current 0.75, θ = 1: u = 0.75, 1.125 (spike), 0.5625+0.75−1 = 0.3125, …
        let input = InputDescription(channels: 1, height: 1, width: 1, mean: [0], std: [1])
        let model = makeModel(
            input: input, labels: 1, layers: [.flatten, .linear("fc1", 1, 1), .relu, .linear("fc2", 1, 1)],
            tensors: ["fc1.weight": Tensor(shape: [1, 1], scalars: [1]), "fc2.weight": Tensor(shape: [1, 1], scalars: [1])],
            thresholds: [1], leak: 0.5)
        var engine = try SpikingEngine(model: model)
        let r = engine.run(Tensor(shape: [1, 1, 1, 1], scalars: [0.75]), options: .init(timesteps: 4, trace: true))
        // t=3: 0.5·1.125 + 0.75 − 1 = 0.3125; t=4: 0.15625 + 0.75 = 0.90625 → no spike.
        #expect(r.trace![0].map { $0[0] } == [0, 1, 1, 1])
    }

    /// The time-batched engine agrees exactly with a plain per-step simulation on a small CNN
    /// (conv, pool, conv, flatten, linear) under Poisson and direct input, on the dense path, the
    /// event-driven path and the automatic choice. Dyadic weights make every sum exact, so the
    /// event-driven sums (another order) must agree to the bit too. The second conv has 64 output
    /// channels, so both forms of the event-driven convolution (gather for multiples of 64,
    /// scatter otherwise) run.
    @Test(arguments: [1, 3, 16], [SpikingEngine.SynapticPath.dense, .eventDriven, .automatic])
    func agreesWithPerStepReference(timesteps: Int, path: SpikingEngine.SynapticPath) throws {
        // Membranes from 0 (the reference method) and from θ/2 (dyadic thresholds keep it exact).
        for encoding in [SNNConfig.Encoding.poisson, .direct] {
            for initialMembrane in [nil, Float(0.5)] {
                let input = InputDescription(channels: 2, height: 8, width: 8, mean: [0, 0], std: [1, 1])
                let layers: [LayerSpec] = [
                    .conv("c1", 2, 4), .relu, .avgPool(), .conv("c2", 4, 64), .relu, .dropout(0.3), .avgPool(), .flatten,
                    .linear("f1", 256, 5), .relu, .linear("f2", 5, 3),
                ]
                let tensors = [
                    "c1.weight": dyadicTensor([4, 2, 3, 3], seed: 1), "c2.weight": dyadicTensor([64, 4, 3, 3], seed: 2),
                    "f1.weight": dyadicTensor([5, 256], seed: 3), "f2.weight": dyadicTensor([3, 5], seed: 4),
                ]
                var model = makeModel(
                    input: input, labels: 3, layers: layers, tensors: tensors, thresholds: [0.875, 0.5, 2.5],
                    encoding: encoding)
                model.description.snn?.initialMembrane = initialMembrane
                try model.validate()
                var x = dyadicTensor([5, 2, 8, 8], seed: 9)
                for i in 0..<x.count { x.scalars[i] *= 1.5 }
                let seeds: [UInt64] = [11, 12, 13, 14, 15]
                var engine = try SpikingEngine(model: model)
                engine.maxFrameFloats = 2 * 4096 * timesteps  // two images a chunk: three chunks
                let r = engine.run(x, options: .init(timesteps: timesteps, seeds: seeds, synapticPath: path))
                if path != .automatic { #expect(r.weightedLayers.allSatisfy { $0.path == path }) }
                #expect(r.weightedLayers.map(\.name) == ["c1", "c2", "f1", "f2"])
                checkAgainstReference(r, model: model, x: x, timesteps: timesteps, seeds: seeds)
            }
        }
    }

    func checkAgainstReference(_ r: SpikingEngine.Result, model: Model, x: Tensor, timesteps: Int, seeds: [UInt64]) {
        let reference = PerStepReference(model: model).run(x, timesteps: timesteps, seeds: seeds)
        #expect(r.spikes == reference.spikes)
        #expect(r.spikes.reduce(0, +) > 0, "the test network must actually spike")
        for i in 0..<5 {
            for k in 0..<3 { #expect(r.potentials[i, k] == reference.potentials[i][k]) }
        }
    }

    /// Biases (batch norm folded into convolutions gives every channel one) enter as a constant
    /// current: dense and event-driven paths, 48 and 64 output channels (scatter and gather
    /// kernels), against the per-step reference.
    @Test(arguments: [SpikingEngine.SynapticPath.dense, .eventDriven])
    func biasesAgreeWithPerStepReference(path: SpikingEngine.SynapticPath) throws {
        let input = InputDescription(channels: 3, height: 8, width: 8, mean: [0, 0, 0], std: [1, 1, 1])
        let layers: [LayerSpec] = [
            .conv("c1", 3, 48, bias: true), .relu, .avgPool(), .conv("c2", 48, 64, bias: true), .relu, .avgPool(), .flatten,
            .linear("f1", 256, 3, bias: true),
        ]
        var tensors: [String: Tensor] = [:]
        for (i, (name, shape)) in layers.parameterShapes().enumerated() {
            var t = dyadicTensor(shape, seed: UInt64(60 + i))
            for j in 0..<t.count { t.scalars[j] *= 0.25 }
            tensors[name] = t
        }
        let model = makeModel(input: input, labels: 3, layers: layers, tensors: tensors, thresholds: [0.5, 0.75], encoding: .direct)
        try model.validate()
        let x = dyadicTensor([5, 3, 8, 8], seed: 61)
        var engine = try SpikingEngine(model: model)
        let r = engine.run(x, options: .init(timesteps: 6, seeds: [1, 2, 3, 4, 5], synapticPath: path))
        let reference = PerStepReference(model: model).run(x, timesteps: 6, seeds: [1, 2, 3, 4, 5])
        #expect(r.spikes.reduce(0, +) > 0)
        #expect(r.spikes == reference.spikes)
        for i in 0..<5 {
            for k in 0..<3 { #expect(r.potentials[i, k] == reference.potentials[i][k], "image \(i) class \(k)") }
        }
    }

    /// Residual blocks (identity and 1×1-conv shortcuts, 64-channel bodies for the gather kernel)
    /// give the same potentials and predictions on the dense and the event-driven path, with
    /// Poisson and direct input. Dyadic weights keep every sum exact, so the paths agree exactly.
    @Test(arguments: [SNNConfig.Encoding.poisson, .direct])
    func residualBlocksAgreeOnBothPaths(encoding: SNNConfig.Encoding) throws {
        let input = InputDescription(channels: 2, height: 8, width: 8, mean: [0, 0], std: [1, 1])
        let layers: [LayerSpec] = [
            .conv("c0", 2, 64), .relu,
            .residual(body: [.conv("b1", 64, 64), .relu, .conv("b2", 64, 64)], shortcut: []), .relu,
            .residual(
                body: [.conv("d1", 64, 64, stride: 2), .relu, .conv("d2", 64, 64)],
                shortcut: [.conv("s", 64, 64, kernel: 1, stride: 2, padding: 0)]), .relu,
            .avgPool(), .flatten, .linear("fc", 256, 4),
        ]
        var tensors: [String: Tensor] = [:]
        for (i, (name, shape)) in layers.parameterShapes().enumerated() {
            var t = dyadicTensor(shape, seed: UInt64(20 + i))
            for j in 0..<t.count { t.scalars[j] *= 0.25 }
            tensors[name] = t
        }
        let model = makeModel(
            input: input, labels: 4, layers: layers, tensors: tensors,
            thresholds: [0.5, 0.5, 0.75, 0.5, 0.75], encoding: encoding)
        try model.validate()
        var x = dyadicTensor([3, 2, 8, 8], seed: 31)
        for i in 0..<x.count { x.scalars[i] *= 1.5 }
        var engine = try SpikingEngine(model: model)
        let dense = engine.run(x, options: .init(timesteps: 6, seeds: [1, 2, 3], synapticPath: .dense))
        let event = engine.run(x, options: .init(timesteps: 6, seeds: [1, 2, 3], synapticPath: .eventDriven))
        #expect(dense.spikes.reduce(0, +) > 0, "the test network must actually spike")
        #expect(event.weightedLayers.allSatisfy { $0.path == .eventDriven } && dense.weightedLayers.allSatisfy { $0.path == .dense })
        #expect(dense.spikes == event.spikes)
        #expect(dense.potentials.scalars == event.potentials.scalars)
        #expect(dense.predictions == event.predictions)
    }

    /// The fused fire-and-pool pass gives exactly the spikes' counts and pooled maps of firing and
    /// pooling in two passes, for a current given at every step and for a constant one.
    @Test(arguments: [1, 2, 7])
    func fireAndPoolEqualsFireThenPool(timesteps: Int) {
        let (c, h, w, b) = (3, 6, 4, 2)
        var rng = SeededGenerator(seed: 4)
        for constant in [false, true] {
            let steps = constant ? 1 : timesteps
            let current = Frames(
                scalars: (0..<(c * steps * b * h * w)).map { _ in Float(Int(rng.next() % 13)) / 8 },
                shape: [c, h, w], timesteps: steps, images: b)
            var spikes = constant ? current.repeated(timesteps: timesteps) : current
            let counts = NeuronDynamics.fire(&spikes, threshold: 0.75, leak: 0.5)
            let pooled = SpikingEngine.pool(spikes, kernel: 2, stride: 2)
            let fused = NeuronDynamics.fireAndPool(current, timesteps: timesteps, threshold: 0.75, leak: 0.5)
            #expect(fused.counts == counts)
            #expect(counts.reduce(0, +) > 0)
            #expect(fused.pooled.shape == pooled.shape && fused.pooled.timesteps == timesteps)
            #expect(fused.pooled.scalars == pooled.scalars)
        }
    }

    /// An image whose output layer received nothing (all potentials equal) has no decision, and one
    /// with a tie at the top neither; a unique maximum decides.
    @Test func decisionsNeedAUniqueMaximum() {
        var r = SpikingEngine.Result(
            potentials: Tensor(shape: [3, 3], scalars: [0, 0, 0, 1, 2, 2, 0.5, 3, -1]),
            trace: nil, spikes: [0, 0, 0], synapticOps: [0, 0, 0], layerSpikes: [],
            imageLayerSpikes: [], layerNeurons: [], timesteps: 1, timestepsUsed: [1, 1, 1], exits: [.budget, .budget, .budget])
        #expect(r.decisions == [nil, nil, 1])
        r.potentials.scalars[5] = 1.5
        #expect(r.decisions == [nil, 1, 1])
    }

    @Test func poissonInputIsSeededAndSigned() {
        var frames = [Float](repeating: 0, count: 2 * 1000)
        let x: [Float] = (0..<1000).map { $0 % 2 == 0 ? 0.3 : -0.3 }
        x.withUnsafeBufferPointer { xp in
            frames.withUnsafeMutableBufferPointer {
                InputEncoder.encode(xp.baseAddress!, images: 1, features: 1000, timesteps: 2, encoding: .poisson, seeds: [7], into: $0.baseAddress!)
            }
        }
        var again = frames
        x.withUnsafeBufferPointer { xp in
            again.withUnsafeMutableBufferPointer {
                InputEncoder.encode(xp.baseAddress!, images: 1, features: 1000, timesteps: 2, encoding: .poisson, seeds: [7], into: $0.baseAddress!)
            }
        }
        #expect(frames == again)
        let positives = stride(from: 0, to: 2000, by: 2).filter { frames[$0] == 1 }.count
        #expect(stride(from: 0, to: 2000, by: 2).allSatisfy { frames[$0] >= 0 })
        #expect(stride(from: 1, to: 2000, by: 2).allSatisfy { frames[$0] <= 0 })
        // 1000 Bernoulli(0.3) draws: mean 300, sd ≈ 14.5.
        #expect(abs(positives - 300) < 60)
    }

    @Test func laggedSimulationDelaysEachLayerByOneStep() throws {
        let input = InputDescription(channels: 1, height: 1, width: 1, mean: [0], std: [1])
        let model = makeModel(
            input: input, labels: 1, layers: [.flatten, .linear("fc1", 1, 1), .relu, .linear("fc2", 1, 1)],
            tensors: ["fc1.weight": Tensor(shape: [1, 1], scalars: [1]), "fc2.weight": Tensor(shape: [1, 1], scalars: [1])],
            thresholds: [0.5])
        var engine = try SpikingEngine(model: model)
        let plain = engine.run(Tensor(shape: [1, 1, 1, 1], scalars: [1]), options: .init(timesteps: 3, trace: true))
        let lagged = engine.run(Tensor(shape: [1, 1, 1, 1], scalars: [1]), options: .init(timesteps: 3, trace: true, lagged: true))
        #expect(plain.trace![0].map { $0[0] } == [1, 2, 3])
        #expect(lagged.trace![0].map { $0[0] } == [0, 1, 2])
    }
}
