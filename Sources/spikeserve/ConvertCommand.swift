import ArgumentParser
import Foundation
import Imaging
import SNN

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a trained ANN into an SNN by threshold balancing (stage 2 of the hybrid method).")

    @Argument(help: "The trained ANN's model directory.")
    var annDirectory: String

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Output model directory.")
    var out: String

    @Option(help: "Scaling factor applied to each balanced threshold.")
    var scale: Float = 0.7

    @Option(help: "Use this percentile (0-100] of positive input currents instead of the maximum.")
    var percentile: Float?

    @Option(help: "Training images the thresholds are measured on.")
    var calibrationImages = 512

    @Option(help: "Time steps simulated while measuring.")
    var calibrationTimesteps = 64

    @Option(help: "Default time steps of the converted model.")
    var defaultTimesteps = 32

    @Option(help: "Largest time-step budget a request may ask for.")
    var maxTimesteps = 512

    @Option(help: "Membrane leak (1 = integrate-and-fire).")
    var leak: Float = 1

    @Option(help: "Input encoding: poisson or direct.")
    var encoding: String = "poisson"

    @Option(
        help:
            "Membrane potential before the first step, as a fraction of each threshold (0.5 suits small T; default 0, or 0.5 with --thresholds clip)."
    )
    var initialMembrane: Float?

    @Option(
        help: "balanced: threshold balancing on calibration currents (the paper's); clip: each layer's qcfs clip (an ANN trained with --qcfs-levels)."
    )
    var thresholds = "balanced"

    @OptionGroup var exitCalibration: ExitCalibrationOptions

    @Option(parsing: .upToNextOption, help: "Evaluate the converted model on the validation split at these time steps and record the accuracies.")
    var evaluateTimesteps: [Int] = []

    @Option(help: "Images evaluated per time-step budget (default: the whole validation split).")
    var evaluateLimit: Int?

    func validate() throws {
        // Without calibration the thresholds fall to their floor and the model is useless (28%
        // on MNIST): every calibration setting must be positive.
        try OptionRange.check(scale, 0.01...10, "--scale")
        try OptionRange.check(percentile, 0.01...100, "--percentile")
        try OptionRange.check(calibrationImages, 1...1_000_000, "--calibration-images")
        try OptionRange.timesteps(calibrationTimesteps, "--calibration-timesteps")
        try OptionRange.timesteps(maxTimesteps, "--max-timesteps")
        try OptionRange.check(defaultTimesteps, 1...maxTimesteps, "--default-timesteps")
        try OptionRange.check(leak, 0.01...1, "--leak")
        try OptionRange.check(initialMembrane, 0...1, "--initial-membrane")
        try OptionRange.check(thresholds, oneOf: ["balanced", "clip"], "--thresholds")
        try OptionRange.check(encoding, oneOf: ["poisson", "direct"], "--encoding")
        for t in evaluateTimesteps { try OptionRange.check(t, 1...maxTimesteps, "--evaluate-timesteps") }
        try OptionRange.check(evaluateLimit, 1...Int.max, "--evaluate-limit")
    }

    func run() throws {
        let ann = try Model.load(from: annDirectory)
        try OptionRange.memory(ann, timesteps: calibrationTimesteps, option: "--calibration-timesteps")
        let folder = try dataOptions.folder()
        let (trainFolder, valFolder) = folder.split(validationFraction: dataOptions.validationSplit, seed: dataOptions.splitSeed)
        let spec = ann.description.inputSpec
        let calibration = try loadSet(trainFolder.subset(limit: calibrationImages, seed: 1), spec: spec, what: "calibration")
        var config = Converter.Configuration()
        config.scale = scale
        config.percentile = percentile
        config.calibrationImages = calibrationImages
        config.calibrationTimesteps = calibrationTimesteps
        config.defaultTimesteps = defaultTimesteps
        config.maxTimesteps = maxTimesteps
        config.leak = leak
        config.initialMembrane = initialMembrane
        config.thresholdsFromClips = thresholds == "clip"
        guard let enc = SNNConfig.Encoding(rawValue: encoding) else { throw ValidationError("--encoding must be poisson or direct") }
        config.encoding = enc
        var snn = try Converter.convert(ann, calibration: calibration, configuration: config, log: stderrLine)
        snn.description.provenance.commands.append(invocation)
        var valSet: ImageSet? = nil
        if !evaluateTimesteps.isEmpty || exitCalibration.exitBudget > 0, !valFolder.samples.isEmpty {
            var val = valFolder
            if let evaluateLimit { val = val.subset(limit: evaluateLimit, seed: 2) }
            valSet = try loadSet(val, spec: spec, what: "validation")
        }
        if let valSet {
            for t in evaluateTimesteps {
                let r = try Evaluator.evaluateSNN(snn, on: valSet, timesteps: t)
                snn.description.provenance.accuracies["snn_t\(t)"] = r.accuracy
                stderrLine(String(format: "T=%d: accuracy %.2f%% (%.0f images/s)", t, 100 * r.accuracy, r.imagesPerSecond))
            }
        }
        snn = try exitCalibration.calibrated(snn, validation: valSet)
        try snn.save(to: out)
        print("saved \(out) with thresholds \((snn.description.snn?.thresholds ?? []).map { String(format: "%.3f", $0) }.joined(separator: ", "))")
    }
}
