import ArgumentParser
import Foundation
import Imaging
import SNN

struct CalibrateExitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate-exit",
        abstract: "Calibrate the exit threshold of adaptive time steps on validation data and write it into a copy of the model.",
        discussion: """
            Runs the validation split at the budget T once, with the per-step trace, and picks the \
            threshold that stops images soonest while the accuracy stays within --max-drop of the \
            fixed budget's. The model with the policy in model.json (snn.exit_policy) is written to \
            --out (model versions are never modified in place); requests and --adaptive use it.
            """)

    @Argument(help: "Converted model directory.")
    var modelDirectory: String

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Output model directory.")
    var out: String

    @Option(help: "Time-step budget the threshold is calibrated at (default: the model's default T).")
    var timesteps: Int?

    @Option(help: "confidence, margin or entropy.")
    var rule: ExitPolicy.Rule = .margin

    @Option(help: "Steps before the rule is first tested.")
    var minTimesteps = 1

    @Option(help: "Steps between tests.")
    var exitInterval = 1

    @Option(
        help:
            "Largest accuracy loss allowed against the fixed budget on the calibration images, as a fraction (0.001 = 0.1 point). The default, 0, leaves room for unseen images: calibrated on half of MNIST's validation split with 0.001, the other half lost 0.2 point; with 0, 0.05."
    )
    var maxDrop = 0.0

    @Option(help: "Calibrate on at most N validation images (a seeded subset).")
    var limit: Int?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        try OptionRange.timesteps(timesteps)
        try OptionRange.check(minTimesteps, 1...4096, "--min-timesteps")
        try OptionRange.check(exitInterval, 1...4096, "--exit-interval")
        try OptionRange.check(maxDrop, 0...1, "--max-drop")
        try OptionRange.check(limit, 1...Int.max, "--limit")
    }

    func run() throws {
        var model = try Model.load(from: modelDirectory)
        guard var snn = model.description.snn else { throw ValidationError("\(modelDirectory) is not a converted SNN") }
        var folder = try dataOptions.folder().split(validationFraction: dataOptions.validationSplit, seed: dataOptions.splitSeed).validation
        guard folder.classes == model.description.labels else {
            throw ValidationError("the data's classes \(folder.classes) differ from the model's labels \(model.description.labels)")
        }
        if let limit { folder = folder.subset(limit: limit, seed: 2) }
        let set = try loadSet(folder, spec: model.description.inputSpec, what: "validation")
        let t = timesteps ?? snn.defaultTimesteps
        try OptionRange.memory(model, timesteps: t)
        let r = try ExitCalibration.calibrate(
            model, on: set, budget: t, rule: rule, minTimesteps: minTimesteps, interval: exitInterval, maxAccuracyDrop: maxDrop)
        if json {
            var object: [String: Any] = [
                "budget": t, "fixed_accuracy": r.fixedAccuracy, "rule": rule.rawValue, "images": set.count,
                "frontier": r.frontier.map { ["threshold": $0.threshold, "accuracy": $0.accuracy, "mean_timesteps": $0.meanTimesteps] },
            ]
            if let c = r.chosen, r.policy != nil {
                object["chosen"] = ["threshold": c.threshold, "accuracy": c.accuracy, "mean_timesteps": c.meanTimesteps]
            }
            try printJSON(object)
        } else {
            print(String(format: "fixed budget T=%d: accuracy %.2f%% on %d validation images", t, 100 * r.fixedAccuracy, set.count))
            for c in r.frontier {
                print(String(format: "  threshold %.6g: accuracy %.2f%%, %.2f steps per image", c.threshold, 100 * c.accuracy, c.meanTimesteps))
            }
        }
        guard let policy = r.policy, let c = r.chosen else {
            throw ValidationError("no threshold stops images earlier within --max-drop \(maxDrop); nothing written")
        }
        if !json {
            print(
                String(
                    format: "chosen: %@ threshold %.6g: accuracy %.2f%% (fixed %.2f%%), %.2f steps per image (%.1f× fewer than T=%d)",
                    rule.rawValue, c.threshold, 100 * c.accuracy, 100 * r.fixedAccuracy, c.meanTimesteps, Double(t) / c.meanTimesteps, t))
        }
        snn.exitPolicy = policy
        model.description.snn = snn
        model.description.provenance.notes["exit_calibration"] = String(
            format: "T=%d %@ threshold %.6g: validation accuracy %.4f (fixed %.4f), %.3f mean steps", t, rule.rawValue, c.threshold, c.accuracy,
            r.fixedAccuracy, c.meanTimesteps)
        model.description.provenance.commands.append(invocation)
        try model.save(to: out)
        stderrLine("saved \(out)")
    }
}
