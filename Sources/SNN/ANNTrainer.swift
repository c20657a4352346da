import Foundation
import Imaging
import TensorKit

/// Trains a model's ANN with backpropagation: the first stage of the hybrid method.
public struct ANNTrainer {
    public struct Configuration: Codable, Sendable {
        public var epochs: Int = 15
        public var batchSize: Int = 64
        /// "sgd" (momentum 0.9) or "adam".
        public var optimizer: OptimizerKind = .sgd
        public var learningRate: Double = 0.01
        public var momentum: Double = 0.9
        public var weightDecay: Double = 5e-4
        public var decay = StepDecay()
        public var cropPadding: Int = 0
        public var horizontalFlip: Bool = false
        public var seed: UInt64 = 0
        public init() {}
    }

    public var configuration: Configuration
    /// The model being trained; `model.tensors` and `layers` hold the same weights.
    public private(set) var model: Model
    /// The model's layers, compiled once and updated with every step.
    var layers: [Layer]
    var runner = ANNRunner()
    var optimizer: AnyOptimizer
    public private(set) var completedEpochs = 0
    public private(set) var bestValidationAccuracy = -1.0
    public private(set) var bestModel: Model?
    public private(set) var history: [[String: Double]] = []

    public init(model: Model, configuration: Configuration) throws(ModelError) {
        self.model = model
        layers = try model.compiledLayers()
        self.configuration = configuration
        let lr = Float(configuration.learningRate), wd = Float(configuration.weightDecay)
        optimizer =
            configuration.optimizer == .adam
            ? .adam(Adam(learningRate: lr, weightDecay: wd, amsgrad: true))
            : .sgd(SGD(learningRate: lr, momentum: Float(configuration.momentum), weightDecay: wd))
    }

    var parameterNames: [String] { model.description.layers.parameterShapes().map(\.name) }

    /// Trains the remaining epochs, checkpointing into `checkpointDirectory` after each one.
    public mutating func train(
        train: ImageSet, validation: ImageSet?, checkpointDirectory: String?,
        cancellation: any CancellationCheck = NeverCancelled(),
        events: (TrainingEvent) -> Void
    ) throws {
        let c = configuration
        let names = parameterNames
        let augmentation = ImageSet.Augmentation(cropPadding: c.cropPadding, horizontalFlip: c.horizontalFlip)
        let runStart = nowSeconds()
        var imagesDone = 0
        while completedEpochs < c.epochs {
            let epoch = completedEpochs + 1
            optimizer.learningRate = Float(c.decay.rate(base: c.learningRate, epoch: epoch, totalEpochs: c.epochs))
            var rng = SeededGenerator(seed: c.seed &+ UInt64(epoch) &* 7919)
            let batches = train.batches(size: c.batchSize, shuffle: true, seed: c.seed, epoch: epoch)
            let epochStart = nowSeconds()
            var lossSum = 0.0, correct = 0, seen = 0
            for (step, indices) in batches.enumerated() {
                if cancellation.isCancelled { throw TrainingCancelled(epoch: epoch) }
                let (x, labels) = train.batch(indices, augmentation: augmentation, generator: &rng)
                var tape: [ANNRunner.TapeEntry]? = []
                let logits = runner.forward(&layers, x, generator: &rng, tape: &tape)
                let (loss, grad, ok) = softmaxCrossEntropy(logits, labels: labels)
                var grads: [String: Tensor] = [:]
                _ = runner.backward(layers, grad, tape: tape ?? [], gradients: &grads)
                // `names` are the layers' parameters, and each layer's backward adds its gradients.
                var tensors = layers.namedTensors
                var params = names.map { tensors[$0]! }
                optimizer.step(&params, gradients: names.map { grads[$0]! })
                for (n, p) in zip(names, params) { tensors[n] = p }
                layers = layers.withTensors(tensors)
                model.tensors = tensors
                lossSum += Double(loss) * Double(labels.count)
                correct += ok
                seen += labels.count
                imagesDone += labels.count
                let rate = Double(imagesDone) / max(1e-9, nowSeconds() - runStart)
                let remaining = Double((c.epochs - epoch) * train.count + (train.count - seen)) / max(1, rate)
                events(
                    .batch(
                        TrainingProgress(
                            epoch: epoch, totalEpochs: c.epochs, step: step + 1, stepsPerEpoch: batches.count,
                            loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen),
                            imagesPerSecond: rate, secondsRemaining: remaining)))
            }
            var valAccuracy: Double? = nil
            if let validation { valAccuracy = evaluate(validation) }
            completedEpochs = epoch
            history.append([
                "epoch": Double(epoch), "train_loss": lossSum / Double(seen),
                "train_accuracy": Double(correct) / Double(seen), "val_accuracy": valAccuracy ?? -1,
            ])
            if (valAccuracy ?? 0) > bestValidationAccuracy || bestModel == nil {
                bestValidationAccuracy = valAccuracy ?? 0
                bestModel = model
            }
            if let checkpointDirectory { try saveCheckpoint(to: checkpointDirectory) }
            events(
                .epochFinished(
                    epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: Double(correct) / Double(seen),
                    validationAccuracy: valAccuracy, seconds: nowSeconds() - epochStart))
        }
    }

    /// Top-1 accuracy of the ANN (inference mode) on a data set.
    public mutating func evaluate(_ data: ImageSet, batchSize: Int = 256) -> Double {
        let predicted = predictions(data, batchSize: batchSize)
        let correct = zip(predicted, data.labels).filter { $0 == $1 }.count
        return Double(correct) / Double(max(1, data.count))
    }

    /// The predicted class of every image (argmax of the logits, the first on ties), in data order.
    public mutating func predictions(_ data: ImageSet, batchSize: Int = 256) -> [Int] {
        var rng = SeededGenerator(seed: 0)
        var predicted: [Int] = []
        predicted.reserveCapacity(data.count)
        var noTape: [ANNRunner.TapeEntry]? = nil
        for start in stride(from: 0, to: data.count, by: batchSize) {
            let indices = Array(start..<min(data.count, start + batchSize))
            let (x, _) = data.batch(indices, generator: &rng)
            var inference = layers  // inference mode leaves the running statistics as they are
            let logits = runner.forward(&inference, x, generator: &rng, tape: &noTape)
            let k = logits.shape[1]
            for i in 0..<indices.count {
                let row = logits.scalars[(i * k)..<((i + 1) * k)]
                predicted.append(row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }! - i * k)
            }
        }
        return predicted
    }

    // MARK: checkpoints

    struct CheckpointState: Codable {
        var completedEpochs: Int
        var bestValidationAccuracy: Double
        var history: [[String: Double]]
    }

    static let bestSuffix = "-best"

    /// Writes the weights, the optimizer's moments and the loop state as one atomic directory,
    /// and the best model so far beside it (`DIRECTORY-best`).
    public func saveCheckpoint(to directory: String) throws {
        try TrainingCheckpoint.save(
            model: model, optimizer: optimizer.state,
            state: CheckpointState(
                completedEpochs: completedEpochs, bestValidationAccuracy: bestValidationAccuracy,
                history: history), to: directory)
        if let bestModel { try bestModel.save(to: directory + Self.bestSuffix) }
    }

    /// Restores a run from `saveCheckpoint`'s directory.
    public mutating func resume(from directory: String) throws {
        let (model, optimizerState, state) = try TrainingCheckpoint.load(CheckpointState.self, from: directory)
        self.model = model
        layers = try model.compiledLayers()
        optimizer.state = optimizerState
        completedEpochs = state.completedEpochs
        bestValidationAccuracy = state.bestValidationAccuracy
        history = state.history
        bestModel = (try? Model.load(from: directory + Self.bestSuffix)) ?? model
    }
}
