import ArgumentParser
import Foundation
import Imaging
import SNN

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the ANN of an architecture (stage 1 of the hybrid method).",
        discussion:
            "Checkpoints after every epoch into OUT.checkpoint (and the best epoch so far into OUT.checkpoint-best); --resume continues from there. OUT receives the best epoch's model by validation accuracy."
    )

    @Option(help: "Architecture: \(Architectures.names.joined(separator: ", ")).")
    var arch: String

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Epochs to train.")
    var epochs = 15

    @Option(help: "Output model directory.")
    var out: String

    @Option(help: "Mini-batch size.")
    var batchSize = 64

    @Option(help: "sgd (momentum 0.9) or adam (AMSGrad).")
    var optimizer = "sgd"

    @Option(help: "Initial learning rate (step decay ×0.1 at 50% and 75% of the epochs).")
    var lr = 0.01

    @Option(help: "L2 weight decay.")
    var weightDecay = 5e-4

    @Option(help: "Random-crop padding in pixels for augmentation (0 = off).")
    var cropPadding = 0

    @Flag(help: "Random horizontal flips (natural images only).")
    var flip = false

    @Flag(help: "Insert batch norm after convolutions (folded into the weights at conversion).")
    var batchNorm = false

    @Option(help: "Seed for initialisation, shuffling, augmentation and dropout.")
    var seed: UInt64 = 0

    @Option(
        help:
            "Use the clip-floor-shift activation with L levels and a trainable clip instead of ReLU (QCFS; convert with --thresholds clip; L near the target T)."
    )
    var qcfsLevels: Int?

    @Option(
        help:
            "Start from the weights of this trained model directory (same architecture and batch norm; QCFS clips start at their initial value) instead of a random initialisation."
    )
    var initializeFrom: String?

    @Flag(help: "Continue from OUT.checkpoint.")
    var resume = false

    @Option(help: "Train on at most N images (a quick run).")
    var limit: Int?

    func validate() throws {
        try OptionRange.check(epochs, 1...10_000, "--epochs")
        try OptionRange.check(batchSize, 1...OptionRange.maxBatch, "--batch-size")
        try OptionRange.check(optimizer, oneOf: ["sgd", "adam"], "--optimizer")
        try OptionRange.check(lr, 1e-8...10, "--lr")
        try OptionRange.check(weightDecay, 0...1, "--weight-decay")
        try OptionRange.check(cropPadding, 0...64, "--crop-padding")
        try OptionRange.check(limit, 1...Int.max, "--limit")
        try OptionRange.check(qcfsLevels, 1...256, "--qcfs-levels")
    }

    func run() throws {
        let folder = try dataOptions.folder()
        var (trainFolder, valFolder) = folder.split(validationFraction: dataOptions.validationSplit, seed: dataOptions.splitSeed)
        if let limit { trainFolder = trainFolder.subset(limit: limit, seed: seed) }
        let name = URL(fileURLWithPath: out).lastPathComponent
        var model = try Model.initialized(
            name: name, architecture: arch, labels: folder.classes, batchNorm: batchNorm, qcfsLevels: qcfsLevels, seed: seed)
        if let initializeFrom, !resume {
            model = try model.initializingWeights(from: Model.load(from: initializeFrom))
            model.description.provenance.notes["initialized_from"] = initializeFrom
        }
        let spec = model.description.inputSpec
        let trainSet = try loadSet(trainFolder, spec: spec, what: "training")
        let valSet = valFolder.samples.isEmpty ? nil : try loadSet(valFolder, spec: spec, what: "validation")

        var config = ANNTrainer.Configuration()
        config.epochs = epochs
        config.batchSize = batchSize
        config.optimizer = OptimizerKind(rawValue: optimizer)!  // checked in validate()
        config.learningRate = lr
        config.weightDecay = weightDecay
        config.cropPadding = cropPadding
        config.horizontalFlip = flip
        config.seed = seed
        var trainer = try ANNTrainer(model: model, configuration: config)
        let checkpoint = out + ".checkpoint"
        if resume {
            try trainer.resume(from: checkpoint)
            stderrLine("resumed after epoch \(trainer.completedEpochs)")
        }
        let bar = ProgressBar()
        try trainer.train(train: trainSet, validation: valSet, checkpointDirectory: checkpoint) { event in
            switch event {
            case .batch(let p): bar.update(p)
            case .epochFinished(let e, let loss, let acc, let val, let seconds):
                bar.finishLine(
                    String(
                        format: "epoch %d: loss %.4f, train accuracy %.2f%%, validation accuracy %@, %.0f s",
                        e, loss, 100 * acc, val.map { String(format: "%.2f%%", 100 * $0) } ?? "n/a", seconds))
            case .message(let m): bar.finishLine(m)
            }
        }
        var best = trainer.bestModel ?? trainer.model
        best.description.provenance.createdAt = ISO8601DateFormatter().string(from: Date())
        best.description.provenance.data = dataOptions.data
        best.description.provenance.validationSplit = dataOptions.validationSplit
        best.description.provenance.epochs = epochs
        if trainer.bestValidationAccuracy >= 0 { best.description.provenance.accuracies["ann"] = trainer.bestValidationAccuracy }
        best.description.provenance.commands.append(invocation)
        try best.save(to: out)
        print(String(format: "saved %@ (best validation accuracy %.2f%%)", out, 100 * trainer.bestValidationAccuracy))
    }
}
