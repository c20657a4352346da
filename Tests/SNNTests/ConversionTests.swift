import Foundation
import Imaging
import TensorKit
import Testing

@testable import SNN

@Suite struct ConversionTests {
    /// With direct input coding the first spiking layer's current is W·x at every step, so its
    /// balanced threshold must be scale × the largest W·x over the calibration images.
    @Test func firstThresholdIsScaledMaximumCurrent() throws {
        let folder = try ImageFolder(root: fixturePath("mnist-small"))
        let ann = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: folder.classes, seed: 5)
        let set = try ImageSet.load(folder.subset(limit: 40), spec: ann.description.inputSpec)
        var config = Converter.Configuration()
        config.calibrationImages = 40
        config.calibrationTimesteps = 4
        config.encoding = .direct
        config.scale = 0.7
        let snn = try Converter.convert(ann, calibration: set, configuration: config)
        var rng = SeededGenerator(seed: 0)
        let (x, _) = set.batch(0..<40, generator: &rng)
        var ws = Workspace()
        let current = conv2d(x, weight: ann.tensors["features.0.weight"]!, geometry: ann.description.layers[0].convGeometry!, workspace: &ws)
        let expected = 0.7 * current.scalars.max()!
        #expect(abs(snn.description.snn!.thresholds[0] - expected) < 1e-4 * expected)
        #expect(snn.description.snn!.thresholds.count == 3)
        #expect(snn.description.snn!.thresholds.allSatisfy { $0 > 0 })
    }

    @Test func percentileThresholdsAreBelowTheMaximum() throws {
        let folder = try ImageFolder(root: fixturePath("mnist-small"))
        let ann = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: folder.classes, seed: 5)
        let set = try ImageSet.load(folder.subset(limit: 20), spec: ann.description.inputSpec)
        var config = Converter.Configuration()
        config.calibrationImages = 20
        config.calibrationTimesteps = 4
        let byMax = try Converter.convert(ann, calibration: set, configuration: config)
        config.percentile = 99
        let byPercentile = try Converter.convert(ann, calibration: set, configuration: config)
        #expect(byPercentile.description.snn!.thresholds[0] < byMax.description.snn!.thresholds[0])
    }

    /// A converted network with biases (batch norm folded into its convolutions) must compute its
    /// ANN given enough steps: spikes carry their layer's threshold, so a layer's bias and its
    /// spike input stay in the ANN's proportion. (With unit spikes the deeper layers' biases
    /// swamped their input and a CIFAR-10 network sat at chance at every T.)
    @Test func biasedNetworkConvertsToItsANN() throws {
        let input = InputDescription(channels: 3, height: 8, width: 8, mean: [0, 0, 0], std: [1, 1, 1])
        let layers: [LayerSpec] = [
            .conv("c1", 3, 8, bias: true), .relu, .avgPool(), .conv("c2", 8, 8, bias: true), .relu, .avgPool(), .flatten,
            .linear("f1", 32, 16, bias: true), .relu, .linear("f2", 16, 4, bias: true),
        ]
        var rng = SeededGenerator(seed: 21)
        var tensors: [String: Tensor] = [:]
        for (name, shape) in layers.parameterShapes() {
            let fanIn = name.hasSuffix(".bias") ? 1 : shape.dropFirst().reduce(1, *)
            let scale = name.hasSuffix(".bias") ? Float(0.5) : 4 / Float(fanIn).squareRoot()
            let centre: Float = name.hasPrefix("f") ? 0.5 : 0.4  // signed classifier weights, mostly excitatory convs
            tensors[name] = Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in scale * (rng.nextUnitFloat() - centre) })
        }
        tensors["f2.bias"] = Tensor(shape: [4])  // the hidden layers' biases are the point
        let ann = makeModel(input: input, labels: 4, layers: layers, tensors: tensors)
        try ann.validate()
        let n = 64
        // Each image a random colour per channel (HWC pixels), plus noise: images differ by more
        // than the pooling averages away.
        var pixels: [UInt8] = []
        for _ in 0..<n {
            let base = (0..<3).map { _ in Int(rng.next() % 200) }
            for _ in 0..<64 { for c in 0..<3 { pixels.append(UInt8(base[c] + Int(rng.next() % 56))) } }
        }
        let set = ImageSet(spec: ann.description.inputSpec, classes: ["0", "1", "2", "3"], pixels: pixels, labels: [Int](repeating: 0, count: n))
        var config = Converter.Configuration()
        config.calibrationImages = n
        config.calibrationTimesteps = 64
        config.encoding = .direct
        config.scale = 1
        let snn = try Converter.convert(ann, calibration: set, configuration: config)
        #expect(snn.description.snn?.spikeAmplitudes == snn.description.snn?.thresholds)
        var batchRNG = SeededGenerator(seed: 0)
        let (x, _) = set.batch(0..<n, generator: &batchRNG)
        var compiled = try ann.compiledLayers()
        var runner = ANNRunner()
        var noTape: [ANNRunner.TapeEntry]? = nil
        let logits = runner.forward(&compiled, x, generator: &batchRNG, tape: &noTape)
        var engine = try SpikingEngine(model: snn)
        let r = engine.run(x, options: .init(timesteps: 256))
        // Spikes carry their threshold, so the output potential per step approximates the ANN's
        // logits (rate coding over 256 steps; balancing at scale 1 keeps every layer below its clip).
        let spread = logits.scalars.map(abs).max() ?? 1
        var error: Float = 0
        for i in 0..<(n * 4) { error = max(error, abs(r.potentials.scalars[i] / 256 - logits.scalars[i])) }
        #expect(r.spikes.reduce(0, +) > 0)
        #expect(error < 0.1 * spread, "largest difference \(error) against logits up to \(spread)")
    }

    /// Folding batch norm into the convolution leaves the ANN's inference output unchanged.
    @Test func batchNormFoldingPreservesTheFunction() throws {
        var model = try Model.initialized(name: "m", architecture: "cifar-cnn", labels: (0..<10).map(String.init), batchNorm: true, seed: 2)
        var rng = SeededGenerator(seed: 4)
        for (name, t) in model.tensors where name.contains("running") || (t.rank == 1 && !name.contains("classifier")) {
            model.tensors[name] = Tensor(
                shape: t.shape,
                scalars: t.scalars.map { _ in name.contains("var") || name.hasSuffix("weight") ? 0.5 + rng.nextUnitFloat() : rng.nextUnitFloat() - 0.5
                })
        }
        let folded = try Converter.foldBatchNorm(model)
        #expect(!folded.description.layers.containsKind(.batchnorm))
        var x = Tensor(shape: [2, 3, 32, 32])
        for i in 0..<x.count { x.scalars[i] = rng.nextUnitFloat() }
        var runner = ANNRunner()
        var noTape: [ANNRunner.TapeEntry]? = nil
        var l1 = try model.compiledLayers(), l2 = try folded.compiledLayers()
        let a = runner.forward(&l1, x, generator: &rng, tape: &noTape)
        let b = runner.forward(&l2, x, generator: &rng, tape: &noTape)
        let scale = a.scalars.map(abs).max()!
        #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) <= 1e-4 * scale })
    }
}

@Suite struct ANNTrainingTests {
    /// A few epochs on 200 MNIST images must beat chance by far and be reproducible from the seed.
    @Test func trainingLearnsAndIsDeterministic() throws {
        let folder = try ImageFolder(root: fixturePath("mnist-small"))
        let model = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: folder.classes, seed: 1)
        let set = try ImageSet.load(folder, spec: model.description.inputSpec)
        var config = ANNTrainer.Configuration()
        config.epochs = 3
        config.batchSize = 20
        config.learningRate = 0.02
        func run() throws -> (Double, ANNTrainer) {
            var trainer = try ANNTrainer(model: model, configuration: config)
            try trainer.train(train: set, validation: set, checkpointDirectory: nil) { _ in }
            return (trainer.evaluate(set), trainer)
        }
        let (accuracy, trainer) = try run()
        #expect(accuracy > 0.6, "accuracy \(accuracy) after 3 epochs")
        let (again, _) = try run()
        #expect(again == accuracy)
        #expect(trainer.history.count == 3)
    }

    @Test func resumeContinuesFromTheCheckpoint() throws {
        let folder = try ImageFolder(root: fixturePath("mnist-small"))
        let model = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: folder.classes, seed: 1)
        let set = try ImageSet.load(folder.subset(limit: 60), spec: model.description.inputSpec)
        var config = ANNTrainer.Configuration()
        config.epochs = 2
        config.batchSize = 20
        let dir = temporaryDirectory("resume") + "/ckpt"
        // Straight through…
        var straight = try ANNTrainer(model: model, configuration: config)
        try straight.train(train: set, validation: nil, checkpointDirectory: nil) { _ in }
        // …versus one epoch, a checkpoint, and a resumed second epoch.
        var first = try ANNTrainer(model: model, configuration: config)
        first.configuration.epochs = 1
        try first.train(train: set, validation: nil, checkpointDirectory: dir) { _ in }
        var second = try ANNTrainer(model: model, configuration: config)
        try second.resume(from: dir)
        #expect(second.completedEpochs == 1)
        try second.train(train: set, validation: nil, checkpointDirectory: dir) { _ in }
        for (name, t) in straight.model.tensors {
            let other = second.model.tensors[name]!
            #expect(zip(t.scalars, other.scalars).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) }, "\(name)")
        }
    }

    @Test func cancellationStopsBetweenBatches() throws {
        struct Cancelled: CancellationCheck { var isCancelled: Bool { true } }
        let folder = try ImageFolder(root: fixturePath("mnist-small"))
        let model = try Model.initialized(name: "m", architecture: "mnist-cnn", labels: folder.classes, seed: 1)
        let set = try ImageSet.load(folder.subset(limit: 20), spec: model.description.inputSpec)
        var trainer = try ANNTrainer(model: model, configuration: .init())
        #expect(throws: TrainingCancelled.self) {
            try trainer.train(train: set, validation: nil, checkpointDirectory: nil, cancellation: Cancelled()) { _ in }
        }
    }
}
