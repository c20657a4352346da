import Foundation
import Imaging
import TensorKit
import Testing

@testable import SNN

/// Adaptive time steps: the exit rule, and that stopping early changes nothing else.
@Suite struct AdaptiveTimestepTests {
    /// Conv, fused fire+pool, flat layers: every kind of state the engine carries between runs.
    func network(_ encoding: SNNConfig.Encoding, initialMembrane: Float? = nil) throws -> Model {
        let input = InputDescription(channels: 2, height: 8, width: 8, mean: [0, 0], std: [1, 1])
        let layers: [LayerSpec] = [
            .conv("c1", 2, 8), .relu, .avgPool(), .conv("c2", 8, 16), .relu, .flatten, .linear("f1", 256, 12), .relu,
            .linear("f2", 12, 4),
        ]
        var tensors: [String: Tensor] = [:]
        for (i, (name, shape)) in layers.parameterShapes().enumerated() { tensors[name] = dyadicTensor(shape, seed: UInt64(40 + i)) }
        var model = makeModel(input: input, labels: 4, layers: layers, tensors: tensors, thresholds: [0.75, 1.5, 2], encoding: encoding)
        model.description.snn?.initialMembrane = initialMembrane
        try model.validate()
        return model
    }

    func input(_ n: Int) -> Tensor {
        var x = dyadicTensor([n, 2, 8, 8], seed: 7)
        for i in 0..<x.count { x.scalars[i] *= 1.25 }
        return x
    }

    /// A policy that never holds runs every image to its budget and changes nothing: the carried
    /// state continues the recurrence exactly.
    @Test(arguments: [SNNConfig.Encoding.poisson, .direct], [1, 3])
    func neverSettledEqualsTheFixedBudget(encoding: SNNConfig.Encoding, interval: Int) throws {
        var engine = try SpikingEngine(model: try network(encoding, initialMembrane: 0.5))
        let x = input(5)
        let seeds: [UInt64] = [1, 2, 3, 4, 5]
        let fixed = engine.run(x, options: .init(timesteps: 7, seeds: seeds, trace: true))
        let policy = ExitPolicy(rule: .confidence, threshold: 2, minTimesteps: 2, interval: interval)
        let adaptive = engine.run(x, options: .init(timesteps: 7, seeds: seeds, trace: true, exit: policy))
        #expect(fixed.spikes.reduce(0, +) > 0)
        #expect(adaptive.potentials.scalars == fixed.potentials.scalars)
        #expect(adaptive.spikes == fixed.spikes && adaptive.imageLayerSpikes == fixed.imageLayerSpikes)
        #expect(adaptive.synapticOps == fixed.synapticOps)
        #expect(adaptive.trace! == fixed.trace!)
        #expect(adaptive.timestepsUsed == [7, 7, 7, 7, 7] && adaptive.exits.allSatisfy { $0 == .budget })
    }

    /// Settled images stop at the first test that holds; the others run to the budget; and every
    /// image's result is what it gets alone in the batch.
    @Test(arguments: [SNNConfig.Encoding.poisson, .direct])
    func settledImagesStopAndBatchEqualsSingle(encoding: SNNConfig.Encoding) throws {
        var engine = try SpikingEngine(model: try network(encoding))
        let n = 8, budget = 9
        let x = input(n)
        let seeds = (0..<n).map { UInt64(100 + $0) }
        // A threshold between the images' confidences after 3 steps: some settle, some do not.
        let probe = engine.run(x, options: .init(timesteps: budget, seeds: seeds, trace: true))
        let policy0 = ExitPolicy(rule: .confidence, threshold: 0, minTimesteps: 3, interval: 2)
        let confidences = (0..<n).compactMap { policy0.statistic(probe.trace![$0][2], steps: 3) }.sorted()
        #expect(confidences.count >= 2)
        let policy = ExitPolicy(rule: .confidence, threshold: confidences[confidences.count / 2], minTimesteps: 3, interval: 2)
        let batch = engine.run(x, options: .init(timesteps: budget, seeds: seeds, trace: true, exit: policy))
        #expect(batch.exits.contains(.settled) && batch.exits.contains(.budget), "\(batch.timestepsUsed)")
        // Masking settled images instead of dropping them changes nothing but the cost.
        var maskOptions = SpikingEngine.Options(timesteps: budget, seeds: seeds, exit: policy)
        maskOptions.exitRemoval = .mask
        let masked = engine.run(x, options: maskOptions)
        #expect(masked.potentials.scalars == batch.potentials.scalars && masked.timestepsUsed == batch.timestepsUsed)
        #expect(masked.spikes == batch.spikes && masked.synapticOps == batch.synapticOps)
        for i in 0..<n {
            let used = batch.timestepsUsed[i]
            // It stopped at the first test step where the rule held, and not before.
            for step in stride(from: 3, to: used, by: 2) { #expect(!policy.isSettled(probe.trace![i][step - 1], steps: step)) }
            if batch.exits[i] == .settled { #expect(policy.isSettled(probe.trace![i][used - 1], steps: used)) }
            #expect(Array(batch.potentials.scalars[(i * 4)..<(i * 4 + 4)]) == probe.trace![i][used - 1])
            let one = Tensor(shape: [1, 2, 8, 8], scalars: Array(x.scalars[(i * 128)..<((i + 1) * 128)]))
            let alone = engine.run(one, options: .init(timesteps: budget, seeds: [seeds[i]], exit: policy))
            #expect(alone.timestepsUsed == [used] && alone.potentials.scalars == Array(batch.potentials.scalars[(i * 4)..<(i * 4 + 4)]))
            #expect(alone.spikes == [batch.spikes[i]])
        }
    }

    @Test func rulesOnKnownPotentials() {
        // Mean potentials (ln 3, 0, 0) after 2 steps: softmax (0.6, 0.2, 0.2).
        let v = [Float(2 * 1.0986123), 0, 0]
        #expect(abs(ExitPolicy(rule: .confidence, threshold: 0).statistic(v, steps: 2)! - 0.6) < 1e-6)
        #expect(abs(ExitPolicy(rule: .margin, threshold: 0).statistic(v, steps: 2)! - 0.4) < 1e-6)
        let h = -(0.6 * log(0.6) + 0.4 * log(0.2)) / log(3.0)
        #expect(abs(ExitPolicy(rule: .entropy, threshold: 0).statistic(v, steps: 2)! - h) < 1e-6)
        #expect(ExitPolicy(rule: .entropy, threshold: 0.9).isSettled(v, steps: 2))
        #expect(!ExitPolicy(rule: .entropy, threshold: 0.5).isSettled(v, steps: 2))
        // A shared top potential decides nothing, whatever the threshold.
        #expect(ExitPolicy(rule: .confidence, threshold: 0).statistic([1, 1, 0], steps: 1) == nil)
        // Tested only at min_timesteps and every interval after it.
        let policy = ExitPolicy(rule: .confidence, threshold: 0, minTimesteps: 3, interval: 2)
        #expect(!policy.isSettled(v, steps: 2) && policy.isSettled(v, steps: 3) && !policy.isSettled(v, steps: 4) && policy.isSettled(v, steps: 5))
    }

    /// STDB's recording recurrence starts from the same initial membrane as the engine: same spikes,
    /// and the recorded potential before the first step is u0.
    @Test func recordingRecurrenceHonoursTheInitialMembrane() {
        let (t, b) = (5, 3)
        var rng = SeededGenerator(seed: 3)
        let current = Frames(scalars: (0..<(2 * t * b * 4)).map { _ in Float(Int(rng.next() % 9)) / 8 }, shape: [2, 2, 2], timesteps: t, images: b)
        var engineSpikes = current
        _ = NeuronDynamics.fire(&engineSpikes, threshold: 1, leak: 1, initialMembrane: 0.5)
        var recorded = current
        let (_, membrane, spikes) = STDBNetwork.fireRecording(
            &recorded, timesteps: t, threshold: 1, leak: 1, initialMembrane: 0.5, surrogate: .linear(alpha: 1), keepState: true)
        #expect(recorded.scalars == engineSpikes.scalars && spikes == engineSpikes.scalars)
        #expect(Array(membrane[0..<(b * 4)]).allSatisfy { $0 == 0.5 })
        // Per-step reference for neuron 0 of channel 0.
        var u: Float = 0.5, o: Float = 0
        for step in 0..<t {
            u = u + current.scalars[step * b * 4] - o
            o = u > 1 ? 1 : 0
            #expect(engineSpikes.scalars[step * b * 4] == o)
        }
    }
}

/// Calibration evaluates thresholds on one traced run; the adaptive engine must then give exactly
/// the accuracy and mean steps the calibration promised.
@Suite struct ExitCalibrationTests {
    @Test(arguments: [ExitPolicy.Rule.margin, .confidence, .entropy])
    func calibratedPolicyDeliversWhatTheTracePromised(rule: ExitPolicy.Rule) throws {
        let model = try AdaptiveTimestepTests().network(.direct, initialMembrane: 0.5)
        var rng = SeededGenerator(seed: 11)
        let n = 60
        let pixels = (0..<(n * 2 * 8 * 8)).map { _ in UInt8(rng.next() % 256) }
        let labels = (0..<n).map { _ in Int(rng.next() % 4) }
        let set = ImageSet(spec: model.description.inputSpec, classes: ["0", "1", "2", "3"], pixels: pixels, labels: labels)
        let report = try ExitCalibration.calibrate(model, on: set, budget: 8, rule: rule, minTimesteps: 2, maxAccuracyDrop: 1)
        let chosen = try #require(report.chosen)
        let policy = try #require(report.policy)
        #expect(chosen.meanTimesteps < 8)
        let measured = try Evaluator.evaluateSNN(model, on: set, timesteps: 8, batchSize: 16, exit: policy)
        #expect(abs(measured.accuracy - chosen.accuracy) < 1e-9)
        #expect(abs(measured.meanTimestepsUsed - chosen.meanTimesteps) < 1e-9)
        let fixed = try Evaluator.evaluateSNN(model, on: set, timesteps: 8, batchSize: 16)
        #expect(abs(fixed.accuracy - report.fixedAccuracy) < 1e-9)
    }
}
