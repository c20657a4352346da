import Foundation
import Imaging
import TensorKit
import Testing

@testable import SNN

@Suite struct STDBGradientTests {
    /// fc1 (2→3) → spiking layer → fc2 (3→2) over T = 5 steps, direct input, STDB surrogate.
    /// The gradient is recomputed here by an independent, plainly written unrolled BPTT:
    /// P = Σ_t W2·o_t, L = CE(P); g_o[t] = W2ᵀ·dP; g_u[t] = g_o[t]·σ'_t + g_u[t+1];
    /// dW1 = Σ_t g_u[t]·x_tᵀ; dW2 = dP·(Σ_t o_t)ᵀ.
    @Test(arguments: [Surrogate.stdb(alpha: 0.3, beta: 0.01, silentAge: 1000), .stdb(alpha: 0.5, beta: 0.2), .linear(alpha: 0.3)])
    func matchesUnrolledBackpropagation(surrogate: Surrogate) throws {
        let w1 = Tensor(shape: [3, 2], scalars: [0.9, 0.2, -0.3, 1.1, 0.6, 0.6])
        let w2 = Tensor(shape: [2, 3], scalars: [0.5, -0.4, 0.3, -0.2, 0.7, 0.1])
        let theta: Float = 1
        let input = InputDescription(channels: 2, height: 1, width: 1, mean: [0, 0], std: [1, 1])
        let model = makeModel(
            input: input, labels: 2, layers: [.flatten, .linear("fc1", 2, 3), .relu, .linear("fc2", 3, 2)],
            tensors: ["fc1.weight": w1, "fc2.weight": w2], thresholds: [theta])
        let xs: [[Float]] = [[0.7, 0.4], [0.2, 0.9]]
        let labels = [1, 0]
        let t = 5
        var net = try STDBNetwork(model: model, surrogate: surrogate)
        let x = Tensor(shape: [2, 2, 1, 1], scalars: xs.flatMap { $0 })
        let r = net.step(x, labels: labels, timesteps: t, seeds: [0, 0], dropoutSeed: 0)

        var dW1 = [Float](repeating: 0, count: 6), dW2 = [Float](repeating: 0, count: 6)
        var totalLoss: Float = 0
        for (i, xi) in xs.enumerated() {
            var u = [Float](repeating: 0, count: 3), reset = [Float](repeating: 0, count: 3)
            var silentAge: Float = 1
            if case .stdb(_, _, let age) = surrogate { silentAge = age }
            var last = [Float](repeating: -silentAge, count: 3)
            var o = [[Float]](), s = [[Float]]()
            for step in 0..<t {
                var os = [Float](repeating: 0, count: 3), ss = [Float](repeating: 0, count: 3)
                for j in 0..<3 {
                    let current = w1[j, 0] * xi[0] + w1[j, 1] * xi[1]
                    let v = u[j] + current - reset[j]
                    os[j] = v > theta ? 1 : 0
                    switch surrogate {
                    case .stdb(let a, let b, _): ss[j] = a * Float(Foundation.exp(Double(-b * (Float(step) - last[j]))))
                    case .linear(let a): ss[j] = a * max(0, 1 - abs(v / theta - 1))
                    }
                    if os[j] > 0 { last[j] = Float(step) }
                    u[j] = v
                    reset[j] = theta * os[j]
                }
                o.append(os)
                s.append(ss)
            }
            let counts = (0..<3).map { j in o.reduce(Float(0)) { $0 + $1[j] } }
            let p = (0..<2).map { k in (0..<3).reduce(Float(0)) { $0 + w2[k, $1] * counts[$1] } }
            let e = p.map { Foundation.exp(Double($0 - p.max()!)) }
            let probs = e.map { Float($0 / e.reduce(0, +)) }
            totalLoss += -Foundation.log(probs[labels[i]])
            // Mean over the batch of 2.
            let dP = (0..<2).map { k in (probs[k] - (k == labels[i] ? 1 : 0)) / 2 }
            for k in 0..<2 { for j in 0..<3 { dW2[k * 3 + j] += dP[k] * counts[j] } }
            let go = (0..<3).map { j in (0..<2).reduce(Float(0)) { $0 + w2[$1, j] * dP[$1] } }
            var gu = [Float](repeating: 0, count: 3)
            for step in stride(from: t - 1, through: 0, by: -1) {
                for j in 0..<3 {
                    gu[j] = go[j] * s[step][j] + gu[j]
                    dW1[j * 2] += gu[j] * xi[0]
                    dW1[j * 2 + 1] += gu[j] * xi[1]
                }
            }
        }
        #expect(abs(r.loss - totalLoss / 2) < 1e-5)
        let g1 = r.gradients["fc1.weight"]!.scalars, g2 = r.gradients["fc2.weight"]!.scalars
        for i in 0..<6 {
            #expect(abs(g1[i] - dW1[i]) < 1e-5, "dW1[\(i)] \(g1[i]) vs \(dW1[i])")
            #expect(abs(g2[i] - dW2[i]) < 1e-5, "dW2[\(i)] \(g2[i]) vs \(dW2[i])")
        }
        #expect(g1.contains { $0 != 0 }, "the surrogate must let gradient through")
    }

    /// The event-driven forward currents and weight gradients give the dense path's loss and
    /// gradients (to float rounding) on a CNN whose second conv has 64 output channels (the gather
    /// kernel) and whose first takes direct input (computed once, gradient summed over steps).
    @Test(arguments: [SNNConfig.Encoding.direct, .poisson])
    func eventDrivenGradientsMatchDense(encoding: SNNConfig.Encoding) throws {
        let input = InputDescription(channels: 2, height: 8, width: 8, mean: [0, 0], std: [1, 1])
        let layers: [LayerSpec] = [
            .conv("c1", 2, 8), .relu, .avgPool(), .conv("c2", 8, 64), .relu, .dropout(0.2), .avgPool(), .flatten,
            .linear("f1", 256, 12), .relu, .linear("f2", 12, 3),
        ]
        var rng = SeededGenerator(seed: 5)
        let tensors = [
            "c1.weight": Tensor.kaimingNormal(shape: [8, 2, 3, 3], fanIn: 18, generator: &rng),
            "c2.weight": Tensor.kaimingNormal(shape: [64, 8, 3, 3], fanIn: 72, generator: &rng),
            "f1.weight": Tensor.kaimingNormal(shape: [12, 256], fanIn: 256, generator: &rng),
            "f2.weight": Tensor.kaimingNormal(shape: [3, 12], fanIn: 12, generator: &rng),
        ]
        let model = makeModel(
            input: input, labels: 3, layers: layers, tensors: tensors, thresholds: [0.5, 0.4, 0.3],
            encoding: encoding)
        try model.validate()
        let x = Tensor(shape: [4, 2, 8, 8], scalars: (0..<512).map { _ in 2 * rng.nextUnitFloat() - 0.5 })
        func step(_ path: SpikingEngine.SynapticPath) throws -> STDBNetwork.StepResult {
            var net = try STDBNetwork(model: model, surrogate: .default)
            net.synapticPath = path
            return net.step(x, labels: [0, 1, 2, 1], timesteps: 6, seeds: [1, 2, 3, 4], dropoutSeed: 9)
        }
        let dense = try step(.dense), event = try step(.eventDriven)
        #expect(abs(dense.loss - event.loss) < 1e-5)
        for name in tensors.keys.sorted() {
            let a = dense.gradients[name]!.scalars, b = event.gradients[name]!.scalars
            let scale = a.map(abs).max() ?? 1
            #expect(scale > 0, "\(name) must receive gradient")
            for i in a.indices { #expect(abs(a[i] - b[i]) <= 1e-4 * max(scale, 1e-3), "\(name)[\(i)]") }
        }
    }

    /// A two-step case small enough to do on paper. x = 1, w1 = 1.5, θ = 1, w2 = 1, one class
    /// pair via a second output weight 0, STDB α = 0.3, β = 0.01.
    /// Step 0: u = 1.5 → spike, σ' = 0.3·e^(−0.01·1000) (never spiked before; the reference's convention).
    /// Step 1: u = 1.5 + 1.5 − 1 = 2 → spike, σ' = 0.3·e^(−0.01·1) (spiked at step 0).
    /// P = (2, 0); label 0: dP = (softmax(2,0)₀ − 1, softmax(2,0)₁) = (−0.1192, 0.1192).
    /// g_o = w2ᵀ·dP = −0.1192 at both steps; g_u[1] = −0.1192·0.3·e^(−0.01) = −0.035405;
    /// g_u[0] = −0.1192·0.3·e^(−10) + g_u[1] = −0.035407; dW1 = (g_u[0] + g_u[1])·x = −0.070812.
    @Test func handComputedTwoStepCase() throws {
        let input = InputDescription(channels: 1, height: 1, width: 1, mean: [0], std: [1])
        let model = makeModel(
            input: input, labels: 2, layers: [.flatten, .linear("fc1", 1, 1), .relu, .linear("fc2", 1, 2)],
            tensors: [
                "fc1.weight": Tensor(shape: [1, 1], scalars: [1.5]),
                "fc2.weight": Tensor(shape: [2, 1], scalars: [1, 0]),
            ], thresholds: [1])
        var net = try STDBNetwork(model: model, surrogate: .stdb(alpha: 0.3, beta: 0.01, silentAge: 1000))
        let r = net.step(Tensor(shape: [1, 1, 1, 1], scalars: [1]), labels: [0], timesteps: 2, seeds: [0], dropoutSeed: 0)
        #expect(abs(r.gradients["fc1.weight"]!.scalars[0] - (-0.070812)) < 2e-5)
        #expect(abs(r.gradients["fc2.weight"]!.scalars[0] - (-0.2384)) < 1e-3)
    }

    @Test func thresholdGradientMatchesItsDefinition() throws {
        // With trainable thresholds the step also reports dL/dθ; check its sign on a case where
        // lowering θ makes the correct class win more (more spikes into a positive weight).
        let input = InputDescription(channels: 1, height: 1, width: 1, mean: [0], std: [1])
        let model = makeModel(
            input: input, labels: 2, layers: [.flatten, .linear("fc1", 1, 1), .relu, .linear("fc2", 1, 2)],
            tensors: [
                "fc1.weight": Tensor(shape: [1, 1], scalars: [0.6]),
                "fc2.weight": Tensor(shape: [2, 1], scalars: [1, -1]),
            ], thresholds: [1])
        var net = try STDBNetwork(model: model, surrogate: .linear(alpha: 0.3))
        net.trainThresholds = true
        let r = net.step(Tensor(shape: [1, 1, 1, 1], scalars: [1]), labels: [0], timesteps: 6, seeds: [0], dropoutSeed: 0)
        #expect(r.thresholdGradients[0] > 0, "raising θ lowers class 0's potential, so dL/dθ > 0")
    }
}

@Suite struct FineTuningTests {
    /// A small CNN: ANN training, conversion, then STDB at T = 3 must raise the SNN's accuracy at
    /// T = 3 on the training fixture, and do so identically from the same seed.
    @Test func finetuningRaisesLowTimestepAccuracyDeterministically() throws {
        let folder = try ImageFolder(root: fixturePath("mnist-small"))
        let input = Architectures.input(for: "mnist-cnn")
        let layers: [LayerSpec] = [
            .conv("c1", 1, 8), .relu, .avgPool(), .conv("c2", 8, 16), .relu, .avgPool(), .flatten,
            .linear("fc", 16 * 7 * 7, 10),
        ]
        var rng = SeededGenerator(seed: 3)
        let tensors = [
            "c1.weight": Tensor.kaimingNormal(shape: [8, 1, 3, 3], fanIn: 9, generator: &rng),
            "c2.weight": Tensor.kaimingNormal(shape: [16, 8, 3, 3], fanIn: 72, generator: &rng),
            "fc.weight": Tensor.kaimingNormal(shape: [10, 784], fanIn: 784, generator: &rng),
        ]
        let ann = Model(
            description: ModelDescription(name: "small", architecture: "custom", input: input, labels: folder.classes, layers: layers),
            tensors: tensors)
        let set = try ImageSet.load(folder, spec: ann.description.inputSpec)
        var annConfig = ANNTrainer.Configuration()
        annConfig.epochs = 4
        annConfig.batchSize = 20
        annConfig.learningRate = 0.02
        var trainer = try ANNTrainer(model: ann, configuration: annConfig)
        try trainer.train(train: set, validation: nil, checkpointDirectory: nil) { _ in }
        var conv = Converter.Configuration()
        conv.calibrationImages = 100
        conv.calibrationTimesteps = 16
        let snn = try Converter.convert(trainer.model, calibration: set, configuration: conv)
        let before = try FineTuner.accuracy(of: snn, on: set, timesteps: 3)

        var config = FineTuner.Configuration()
        config.timesteps = 3
        config.epochs = 3
        config.batchSize = 20
        config.learningRate = 1e-3
        func tune() throws -> (Double, Model) {
            var tuner = try FineTuner(model: snn, configuration: config)
            try tuner.run(train: set, validation: nil, checkpointDirectory: nil) { _ in }
            let tuned = tuner.finishedModel(dataDescription: "fixture", command: nil)
            return (try FineTuner.accuracy(of: tuned, on: set, timesteps: 3), tuned)
        }
        let (after, tuned) = try tune()
        #expect(after >= before + 0.1, "T=3 accuracy \(before) → \(after)")
        let (again, _) = try tune()
        #expect(again == after)
        #expect(tuned.description.snn!.defaultTimesteps == 3)
        #expect(tuned.description.provenance.baseModel == "small")
        #expect(tuned.description.provenance.notes["finetune_timesteps"] == "3")

        // The ANN the SNN came from travels with it (ann.safetensors): fine-tuned weights differ.
        #expect(snn.sourceANNTensors == nil)
        #expect(tuned.sourceANNTensors?["fc.weight"]?.scalars == snn.tensors["fc.weight"]!.scalars)
        #expect(tuned.tensors["fc.weight"]!.scalars != snn.tensors["fc.weight"]!.scalars)
        let dir = temporaryDirectory("tuned") + "/model"
        try tuned.save(to: dir)
        let loaded = try Model.load(from: dir)
        #expect(loaded.ann.tensors["c1.weight"]!.scalars == snn.tensors["c1.weight"]!.scalars)
        #expect(loaded.tensors["c1.weight"]!.scalars == tuned.tensors["c1.weight"]!.scalars)
        let annAccuracy = try Evaluator.evaluateANN(snn, on: set).accuracy
        #expect(try Evaluator.evaluateANN(loaded.ann, on: set).accuracy == annAccuracy)
        // Fine-tuning again keeps the original ANN, not the first round's weights.
        var again2 = try FineTuner(model: loaded, configuration: config)
        try again2.run(train: set, validation: nil, checkpointDirectory: nil) { _ in }
        let twice = again2.finishedModel(dataDescription: "fixture", command: nil)
        #expect(twice.sourceANNTensors?["fc.weight"]?.scalars == snn.tensors["fc.weight"]!.scalars)
        // A model fine-tuned before the source ANN was kept has none to keep: its weights are not it.
        var older = loaded
        older.sourceANNTensors = nil
        #expect(try FineTuner(model: older, configuration: config).finishedModel(dataDescription: "x", command: nil).sourceANNTensors == nil)
    }
}
