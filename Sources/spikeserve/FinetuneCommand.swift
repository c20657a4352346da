import ArgumentParser
import Foundation
import Imaging
import SNN

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a converted SNN with STDB (spike-timing-dependent backpropagation) at a small time-step budget.",
        discussion:
            "Checkpoints after every epoch into OUT.checkpoint; --resume continues from there. OUT receives the best epoch by validation accuracy.")

    @Argument(help: "The converted model directory.")
    var modelDirectory: String

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Time steps simulated per training image (the budget being trained for).")
    var timesteps = 8

    @Option(parsing: .upToNextOption, help: "Further budgets trained at the same time (batches cycle through them), e.g. --also-timesteps 8.")
    var alsoTimesteps: [Int] = []

    @Option(help: "Epochs.")
    var epochs = 5

    @Option(help: "Output model directory.")
    var out: String

    @Option(help: "Surrogate gradient: stdb or linear.")
    var surrogate = "stdb"

    @Option(help: "Surrogate scale α.")
    var alpha: Float = 0.3

    @Option(help: "STDB decay β (per step since the last spike).")
    var beta: Float = 0.01

    @Option(help: "STDB: Δt of a neuron that has not spiked yet (1 counts from the simulation start; the reference implementation uses 1000).")
    var silentAge: Float = 1

    @Option(help: "Learning rate.")
    var lr = 1e-4

    @Option(help: "adam (AMSGrad) or sgd.")
    var optimizer = "adam"

    @Option(help: "L2 weight decay.")
    var weightDecay = 5e-4

    @Option(help: "Mini-batch size.")
    var batchSize = 32

    @Option(help: "Training images per epoch (a fresh seeded subset each epoch).")
    var limit: Int?

    @Option(help: "Validation images evaluated after each epoch (default: the whole split).")
    var validationLimit: Int?

    @Option(help: "Seed for batching, dropout masks and Poisson input.")
    var seed: UInt64 = 0

    @Flag(help: "Train each spiking layer's threshold too (DIET-SNN style).")
    var trainThresholds = false

    @Flag(help: "Train each spiking layer's leak too (DIET-SNN style).")
    var trainLeak = false

    @Flag(help: "Continue from OUT.checkpoint.")
    var resume = false

    @OptionGroup var exitCalibration: ExitCalibrationOptions

    @Option(help: "Set the membrane potential before the first step, as a fraction of each threshold, before fine-tuning (default: the model's).")
    var initialMembrane: Float?

    func validate() throws {
        try OptionRange.timesteps(timesteps)
        for t in alsoTimesteps { try OptionRange.timesteps(t, "--also-timesteps") }
        try OptionRange.check(epochs, 1...10_000, "--epochs")
        try OptionRange.check(surrogate, oneOf: ["stdb", "linear"], "--surrogate")
        try OptionRange.check(optimizer, oneOf: ["adam", "sgd"], "--optimizer")
        try OptionRange.check(alpha, 1e-6...100, "--alpha")
        try OptionRange.check(beta, 0...100, "--beta")
        try OptionRange.check(silentAge, 0...100_000, "--silent-age")
        try OptionRange.check(lr, 1e-10...10, "--lr")
        try OptionRange.check(weightDecay, 0...1, "--weight-decay")
        try OptionRange.check(batchSize, 1...OptionRange.maxBatch, "--batch-size")
        try OptionRange.check(limit, 1...Int.max, "--limit")
        try OptionRange.check(validationLimit, 1...Int.max, "--validation-limit")
        try OptionRange.check(initialMembrane, 0...1, "--initial-membrane")
    }

    func run() throws {
        var model = try Model.load(from: modelDirectory)
        if let initialMembrane { model.description.snn?.initialMembrane = initialMembrane }
        for t in [timesteps] + alsoTimesteps { try OptionRange.memory(model, timesteps: t * batchSize, option: "--timesteps × --batch-size") }
        guard let snn = model.description.snn else { throw ValidationError("\(modelDirectory) is not a converted SNN") }
        guard timesteps >= 1 && timesteps <= snn.maxTimesteps else { throw ValidationError("--timesteps must be in 1...\(snn.maxTimesteps)") }
        let folder = try dataOptions.folder()
        guard folder.classes == model.description.labels else {
            throw ValidationError("the data's classes \(folder.classes) differ from the model's labels \(model.description.labels)")
        }
        let (trainFolder, valFolderAll) = folder.split(validationFraction: dataOptions.validationSplit, seed: dataOptions.splitSeed)
        var valFolder = valFolderAll
        if let validationLimit { valFolder = valFolder.subset(limit: validationLimit, seed: 2) }
        let spec = model.description.inputSpec
        let trainSet = try loadSet(trainFolder, spec: spec, what: "training")
        let valSet = valFolder.samples.isEmpty ? nil : try loadSet(valFolder, spec: spec, what: "validation")

        var config = FineTuner.Configuration()
        config.timesteps = timesteps
        config.alsoTimesteps = alsoTimesteps
        config.epochs = epochs
        config.batchSize = batchSize
        config.optimizer = OptimizerKind(rawValue: optimizer)!  // checked in validate()
        config.learningRate = lr
        config.weightDecay = weightDecay
        config.surrogate = SurrogateKind(rawValue: surrogate)!  // checked in validate()
        config.alpha = alpha
        config.beta = beta
        config.silentAge = silentAge
        config.trainThresholds = trainThresholds
        config.trainLeak = trainLeak
        config.limit = limit
        config.seed = seed
        var tuner = try FineTuner(model: model, configuration: config)
        let checkpoint = out + ".checkpoint"
        if resume {
            try tuner.resume(from: checkpoint)
            stderrLine("resumed after epoch \(tuner.completedEpochs)")
        }
        let bar = ProgressBar()
        var rates: [Double] = []
        try tuner.run(train: trainSet, validation: valSet, checkpointDirectory: checkpoint) { event in
            switch event {
            case .batch(let p): bar.update(p)
            case .epochFinished(let e, let loss, let acc, let val, let seconds):
                bar.finishLine(
                    String(
                        format: "epoch %d: loss %.4f, train accuracy %.2f%%, mean validation accuracy %@, %.0f s",
                        e, loss, 100 * acc, val.map { String(format: "%.2f%%", 100 * $0) } ?? "n/a", seconds))
            case .message(let m): bar.finishLine(m)
            }
        }
        rates = tuner.history.compactMap { $0["images_per_second"] }
        let finished = try exitCalibration.calibrated(
            tuner.finishedModel(dataDescription: dataOptions.data, command: invocation), validation: valSet)
        try finished.save(to: out)
        let meanRate = rates.isEmpty ? 0 : rates.reduce(0, +) / Double(rates.count)
        print(
            String(
                format: "saved %@ (best epoch %d, mean validation accuracy %.2f%%); training %.0f images/s; tape %.0f MB, peak RSS %.0f MB",
                out, tuner.bestEpoch, 100 * tuner.bestValidationAccuracy, meanRate,
                Double(tuner.peakTapeBytes) / 1e6, Double(peakResidentBytes()) / 1e6))
    }
}
