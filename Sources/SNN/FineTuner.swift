import Foundation
import Imaging
import TensorKit

/// STDB fine-tuning of a converted SNN at a small time-step budget: the last stage of the hybrid
/// method. A library with progress events and cancellation, so the command line and the server's
/// asynchronous jobs run the same code.
/// Which surrogate derivative of the spike fine-tuning uses (decoded once from a CLI option or a
/// job's JSON; an unknown name is an error, never a silent default).
public enum SurrogateKind: String, Codable, Sendable, CaseIterable {
    /// α·exp(−β·Δt), Rathi et al. 2020 (STDB).
    case stdb
    /// α·max(0, 1 − |u/θ − 1|), the reference implementation's default.
    case linear
}

/// The optimizer of a training run.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    /// Adam with AMSGrad.
    case adam
    /// SGD with momentum 0.9.
    case sgd
}

public struct FineTuner {
    public struct Configuration: Codable, Sendable {
        /// The budget trained for; it becomes the model's default.
        public var timesteps: Int = 8
        /// Further budgets to train for at the same time: batches cycle through
        /// `[timesteps] + alsoTimesteps`, and validation averages over all of them, so one model
        /// serves every listed budget (a model tuned for T = 4 alone degrades at T = 8).
        public var alsoTimesteps: [Int] = []
        public var epochs: Int = 5
        public var batchSize: Int = 32
        public var optimizer: OptimizerKind = .adam
        public var learningRate: Double = 1e-4
        public var weightDecay: Double = 5e-4
        public var decay = StepDecay(milestones: [0.6, 0.8], factor: 0.5)
        public var surrogate: SurrogateKind = .stdb
        public var alpha: Float = 0.3
        public var beta: Float = 0.01
        /// Δt of a neuron that has not spiked yet (1 = count from the start; the reference uses 1000).
        public var silentAge: Float = 1
        public var trainThresholds = false
        public var trainLeak = false
        /// Training images per epoch (a fresh seeded subset each epoch); nil = all.
        public var limit: Int?
        public var seed: UInt64 = 0
        public init() {}

        public var budgets: [Int] { [timesteps] + alsoTimesteps.filter { $0 != timesteps } }

        public var surrogateFunction: Surrogate {
            switch surrogate {
            case .linear: .linear(alpha: alpha)
            case .stdb: .stdb(alpha: alpha, beta: beta, silentAge: silentAge)
            }
        }
    }

    public var configuration: Configuration
    public private(set) var network: STDBNetwork
    var optimizer: AnyOptimizer
    public private(set) var completedEpochs = 0
    public private(set) var bestValidationAccuracy = -1.0
    public private(set) var bestEpoch = 0
    public private(set) var bestModel: Model?
    public private(set) var history: [[String: Double]] = []
    public private(set) var peakTapeBytes = 0
    public let baseModel: Model

    public init(model: Model, configuration: Configuration) throws {
        self.baseModel = model
        self.configuration = configuration
        var network = try STDBNetwork(model: model, surrogate: configuration.surrogateFunction)
        network.trainThresholds = configuration.trainThresholds
        network.trainLeak = configuration.trainLeak
        if configuration.trainLeak && network.snn.leaks == nil { network.snn.leaks = network.leaks }
        self.network = network
        let lr = Float(configuration.learningRate), wd = Float(configuration.weightDecay)
        switch configuration.optimizer {
        case .sgd: optimizer = .sgd(SGD(learningRate: lr, momentum: 0.9, weightDecay: wd))
        case .adam: optimizer = .adam(Adam(learningRate: lr, weightDecay: wd, amsgrad: true))
        }
    }

    public var model: Model { network.model }
    /// The weights STDB trains: every parameter but the ANN activations' clips (the SNN's
    /// thresholds stand in for them).
    var weightNames: [String] { network.description.layers.parameterShapes().map(\.name).filter { !$0.hasSuffix(".clip") } }

    /// Runs the remaining epochs; after each one evaluates on `validation`, keeps the best model
    /// and (if given) writes a checkpoint. Throws `TrainingCancelled` between batches on request.
    public mutating func run(
        train: ImageSet, validation: ImageSet?, checkpointDirectory: String?,
        cancellation: any CancellationCheck = NeverCancelled(), events: (TrainingEvent) -> Void
    ) throws {
        let c = configuration
        let names = weightNames
        let perEpoch = min(train.count, c.limit ?? train.count)
        let runStart = nowSeconds()
        var imagesDone = 0
        if bestModel == nil, let validation {
            let (base, text) = try validate(network.model, on: validation)
            bestValidationAccuracy = base
            bestModel = network.model
            events(.message("before fine-tuning: validation accuracy " + text))
        }
        while completedEpochs < c.epochs {
            let epoch = completedEpochs + 1
            optimizer.learningRate = Float(c.decay.rate(base: c.learningRate, epoch: epoch, totalEpochs: c.epochs))
            var batches = train.batches(size: c.batchSize, shuffle: true, seed: c.seed, epoch: epoch)
            batches = Array(batches.prefix((perEpoch + c.batchSize - 1) / c.batchSize))
            var rng = SeededGenerator(seed: c.seed &+ UInt64(epoch) &* 104_729)
            let epochStart = nowSeconds()
            var lossSum = 0.0, correct = 0, seen = 0
            for (step, indices) in batches.enumerated() {
                if cancellation.isCancelled { throw TrainingCancelled(epoch: epoch) }
                let (x, labels) = train.batch(indices, generator: &rng)
                let seeds = indices.map { UInt64($0) &* 31 &+ UInt64(epoch) &* 1_000_003 &+ c.seed }
                let budget = c.budgets[step % c.budgets.count]
                let r = network.step(x, labels: labels, timesteps: budget, seeds: seeds, dropoutSeed: rng.next())
                peakTapeBytes = max(peakTapeBytes, r.tapeBytes)
                applyUpdate(r, names: names)
                lossSum += Double(r.loss) * Double(labels.count)
                correct += r.correct
                seen += labels.count
                imagesDone += labels.count
                let rate = Double(imagesDone) / max(1e-9, nowSeconds() - runStart)
                let remaining = Double((c.epochs - epoch) * perEpoch + (perEpoch - seen)) / max(1, rate)
                events(
                    .batch(
                        TrainingProgress(
                            epoch: epoch, totalEpochs: c.epochs, step: step + 1, stepsPerEpoch: batches.count,
                            loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen),
                            imagesPerSecond: rate, secondsRemaining: remaining)))
            }
            var val: Double? = nil
            if let validation {
                let (accuracy, text) = try validate(network.model, on: validation)
                val = accuracy
                events(.message("epoch \(epoch) validation accuracy " + text))
            }
            completedEpochs = epoch
            history.append([
                "epoch": Double(epoch), "train_loss": lossSum / Double(max(1, seen)),
                "train_accuracy": Double(correct) / Double(max(1, seen)), "val_accuracy": val ?? -1,
                "images_per_second": Double(seen) / max(1e-9, nowSeconds() - epochStart),
                "seconds": nowSeconds() - epochStart,
            ])
            if let val, val > bestValidationAccuracy || bestModel == nil {
                bestValidationAccuracy = val
                bestEpoch = epoch
                bestModel = network.model
            } else if validation == nil {
                bestModel = network.model
                bestEpoch = epoch
            }
            // The checkpoint is durable before the epoch is reported, so "epoch finished" always
            // means a restart can continue after it.
            if let checkpointDirectory { try saveCheckpoint(to: checkpointDirectory) }
            events(
                .epochFinished(
                    epoch: epoch, trainLoss: lossSum / Double(max(1, seen)), trainAccuracy: Double(correct) / Double(max(1, seen)),
                    validationAccuracy: val, seconds: nowSeconds() - epochStart))
        }
    }

    /// One optimizer step on the weights and, when trainable, the thresholds and leaks.
    mutating func applyUpdate(_ r: STDBNetwork.StepResult, names: [String]) {
        // `names` are the layers' parameters; a weight that received no gradient gets zeros.
        var tensors = network.layers.namedTensors
        var params = names.map { tensors[$0]! }
        var grads = zip(names, params).map { name, p in r.gradients[name] ?? Tensor(shape: p.shape) }
        let c = configuration
        let snn = network.snn
        if c.trainThresholds {
            params.append(Tensor(shape: [r.thresholdGradients.count], scalars: snn.thresholds))
            grads.append(Tensor(shape: [r.thresholdGradients.count], scalars: r.thresholdGradients))
        }
        if c.trainLeak {
            params.append(Tensor(shape: [r.leakGradients.count], scalars: network.leaks))
            grads.append(Tensor(shape: [r.leakGradients.count], scalars: r.leakGradients))
        }
        optimizer.step(&params, gradients: grads)
        for (n, p) in zip(names, params) { tensors[n] = p }
        network.setWeights(tensors)
        var extra = names.count
        if c.trainThresholds {
            network.snn.thresholds = params[extra].scalars.map { max($0, 1e-3) }
            extra += 1
        }
        if c.trainLeak { network.snn.leaks = params[extra].scalars.map { min(1, max($0, 0.05)) } }
    }

    /// Mean validation accuracy over the trained budgets, and a description per budget.
    func validate(_ model: Model, on data: ImageSet) throws -> (Double, String) {
        let budgets = configuration.budgets
        let accuracies = try budgets.map { try Self.accuracy(of: model, on: data, timesteps: $0) }
        let text = zip(budgets, accuracies).map { String(format: "%.2f%% at T=%d", 100 * $1, $0) }.joined(separator: ", ")
        return (accuracies.reduce(0, +) / Double(accuracies.count), text)
    }

    /// SNN accuracy with fixed Poisson seeds, so epochs are compared on identical inputs.
    public static func accuracy(of model: Model, on data: ImageSet, timesteps: Int) throws -> Double {
        try Evaluator.evaluateSNN(model, on: data, timesteps: timesteps, batchSize: 100).accuracy
    }

    /// The best epoch's model with provenance recording the fine-tuning.
    public func finishedModel(dataDescription: String, command: String?) -> Model {
        var m = bestModel ?? network.model
        let c = configuration
        m.description.snn?.defaultTimesteps = c.timesteps
        var p = m.description.provenance
        p.baseModel = baseModel.description.name
        p.createdAt = isoNow()
        p.notes["finetune_data"] = dataDescription
        p.notes["finetune_timesteps"] = String(c.timesteps)
        p.notes["finetune_epochs"] = String(c.epochs)
        p.notes["finetune_best_epoch"] = String(bestEpoch)
        // Wall time of the epochs run (kept across resumes in the checkpoint's history).
        p.notes["finetune_seconds"] = String(Int(history.compactMap { $0["seconds"] }.reduce(0, +).rounded()))
        p.notes["finetune_surrogate"] =
            c.surrogate == .linear ? "linear(alpha=\(c.alpha))" : "stdb(alpha=\(c.alpha), beta=\(c.beta), silent_age=\(c.silentAge))"
        p.notes["finetune_optimizer"] = "\(c.optimizer.rawValue) lr=\(c.learningRate) weight_decay=\(c.weightDecay) batch=\(c.batchSize)"
        if bestValidationAccuracy >= 0 && c.budgets.count == 1 { p.accuracies["hybrid_t\(c.timesteps)"] = bestValidationAccuracy }
        p.notes["finetune_budgets"] = c.budgets.map(String.init).joined(separator: ",")
        if let command { p.commands.append(command) }
        m.description.provenance = p
        return m
    }

    // MARK: checkpoints

    struct CheckpointState: Codable {
        var completedEpochs: Int
        var bestValidationAccuracy: Double
        var bestEpoch: Int
        var history: [[String: Double]]
    }

    static let bestSuffix = "-best"

    public func saveCheckpoint(to directory: String) throws {
        try TrainingCheckpoint.save(
            model: network.model, optimizer: optimizer.state,
            state: CheckpointState(
                completedEpochs: completedEpochs, bestValidationAccuracy: bestValidationAccuracy,
                bestEpoch: bestEpoch, history: history), to: directory)
        if let bestModel { try bestModel.save(to: directory + Self.bestSuffix) }
    }

    public mutating func resume(from directory: String) throws {
        let (model, optimizerState, state) = try TrainingCheckpoint.load(CheckpointState.self, from: directory)
        guard let snn = model.description.snn else { throw ModelError("checkpoint \(directory) is not an SNN") }
        network.setWeights(model.tensors)
        network.snn = snn
        optimizer.state = optimizerState
        completedEpochs = state.completedEpochs
        bestValidationAccuracy = state.bestValidationAccuracy
        bestEpoch = state.bestEpoch
        history = state.history
        bestModel = (try? Model.load(from: directory + Self.bestSuffix)) ?? model
    }
}
