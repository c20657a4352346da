import ArgumentParser
import Foundation
import Imaging
import SNN

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Measure a model's accuracy on an ImageFolder data set, as an SNN (default) or as its ANN.")

    @Argument(help: "Model directory.")
    var modelDirectory: String

    @Option(help: "ImageFolder directory; every image in it is evaluated unless --split validation.")
    var data: String

    @Option(help: "Time-step budget T (default: the model's).")
    var timesteps: Int?

    @Option(help: "Evaluate at most N images (a seeded subset).")
    var limit: Int?

    @Flag(help: "Evaluate the ANN instead of the SNN (for a fine-tuned SNN: the ANN it was converted from, ann.safetensors).")
    var ann = false

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: "all, or validation: only the validation split (--validation-split, --split-seed) of a training folder.")
    var split = "all"

    @Option(help: "Fraction held out when --split validation.")
    var validationSplit = 0.1

    @Option(help: "Seed of the split when --split validation.")
    var splitSeed: UInt64 = 0

    @Option(help: "Images per engine call.")
    var batchSize = 100

    @Flag(help: "Simulate with the reference implementation's one-step lag per layer.")
    var lagged = false

    @Option(help: "Seed of the Poisson input.")
    var seed: UInt64 = 0

    @Option(help: "Write one JSON line per image (path, label, prediction) to this file, for error analysis.")
    var predictions: String?

    @OptionGroup var exit: ExitOptions

    func validate() throws {
        try OptionRange.timesteps(timesteps)
        try OptionRange.check(limit, 1...Int.max, "--limit")
        try OptionRange.check(split, oneOf: ["all", "validation"], "--split")
        try OptionRange.check(validationSplit, 0.001...0.9, "--validation-split")
        try OptionRange.check(batchSize, 1...OptionRange.maxBatch, "--batch-size")
        try exit.validate()
    }

    func run() throws {
        let model = try Model.load(from: modelDirectory)
        var folder = try ImageFolder(root: data)
        if split == "validation" {
            folder = folder.split(validationFraction: validationSplit, seed: splitSeed).validation
        } else if split != "all" {
            throw ValidationError("--split must be all or validation")
        }
        guard folder.classes == model.description.labels else {
            throw ValidationError("the data's classes \(folder.classes) differ from the model's labels \(model.description.labels)")
        }
        if let limit { folder = folder.subset(limit: limit, seed: 2) }
        let set = try loadSet(folder, spec: model.description.inputSpec, what: "evaluation")
        if ann {
            let r = try Evaluator.evaluateANN(model.ann, on: set, batchSize: batchSize)
            try writePredictions(r.predictions, folder: folder, labels: model.description.labels)
            let out: [String: Any] = [
                "accuracy": r.accuracy, "images": set.count, "images_per_second": r.imagesPerSecond, "mode": "ann",
                "macs_per_image": model.multiplyAccumulatesPerImage,
            ]
            if json {
                try printJSON(out)
            } else {
                print(String(format: "ANN accuracy %.2f%% on %d images (%.0f images/s)", 100 * r.accuracy, set.count, r.imagesPerSecond))
            }
            return
        }
        let t = timesteps ?? model.description.snn?.defaultTimesteps ?? 32
        try OptionRange.memory(model, timesteps: t)
        let policy = try exit.policy(for: model)
        let r = try Evaluator.evaluateSNN(model, on: set, timesteps: t, batchSize: batchSize, lagged: lagged, seed: seed, exit: policy)
        try writePredictions(r.predictions, folder: folder, labels: model.description.labels)
        var out: [String: Any] = [
            "accuracy": r.accuracy, "images": set.count, "timesteps": t, "images_per_second": r.imagesPerSecond,
            "spike_rate_per_layer": r.spikeRates, "synaptic_ops_per_image": r.synapticOpsPerImage, "mode": "snn",
            "undecided": r.undecided,
            "lagged": lagged, "mean_timesteps_used": r.meanTimestepsUsed, "ann_macs_per_image": model.multiplyAccumulatesPerImage,
        ]
        if let policy {
            out["exit_policy"] = [
                "rule": policy.rule.rawValue, "threshold": policy.threshold, "min_timesteps": policy.minTimesteps, "interval": policy.interval,
            ]
            out["timesteps_histogram"] = Dictionary(uniqueKeysWithValues: r.timestepsHistogram.map { (String($0.key), $0.value) })
        }
        if json {
            try printJSON(out)
        } else {
            print(
                String(
                    format: "SNN accuracy %.2f%% on %d images at T=%d (%.0f images/s, %.3g synaptic ops/image)",
                    100 * r.accuracy, set.count, t, r.imagesPerSecond, r.synapticOpsPerImage))
            if r.undecided > 0 {
                print("\(r.undecided) images undecided (equal top output potentials; counted as wrong): T=\(t) is too small for this model")
            }
            print("spike rate per layer: " + r.spikeRates.map { String(format: "%.4f", $0) }.joined(separator: " "))
            if let policy {
                print(
                    String(
                        format: "adaptive (%@ ≥ %.4g from step %d every %d): %.2f steps per image on average; steps used: %@",
                        policy.rule.rawValue, policy.threshold, policy.minTimesteps, policy.interval, r.meanTimestepsUsed,
                        r.timestepsHistogram.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ")))
            }
        }
    }

    /// JSON Lines, one per image in evaluation order: `{"path", "label", "prediction", "correct"}`;
    /// `prediction` is null for an undecided image.
    func writePredictions(_ predicted: [Int?], folder: ImageFolder, labels: [String]) throws {
        guard let predictions else { return }
        struct Line: Encodable {
            var path: String
            var label: String
            var prediction: String?
            var correct: Bool
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = Data()
        for (sample, p) in zip(folder.samples, predicted) {
            let line = Line(path: sample.path, label: labels[sample.label], prediction: p.map { labels[$0] }, correct: p == sample.label)
            text += try encoder.encode(line) + Data("\n".utf8)
        }
        try text.write(to: URL(fileURLWithPath: predictions))
    }
}
