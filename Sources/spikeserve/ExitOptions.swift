import ArgumentParser
import Imaging
import SNN

/// Adaptive time-step options shared by `evaluate` and `bench`.
struct ExitOptions: ParsableArguments {
    @Flag(help: "Adaptive time steps: stop each image once its prediction is settled (the model's calibrated exit policy, or the one given below).")
    var adaptive = false

    @Option(help: "Exit rule: confidence, margin or entropy (default: the model's).")
    var exitRule: ExitPolicy.Rule?

    @Option(help: "Exit threshold (default: the model's calibrated one).")
    var exitThreshold: Double?

    @Option(help: "Steps before the rule is first tested (default: the model's, else 1).")
    var minTimesteps: Int?

    @Option(help: "Steps between tests (default: the model's, else 1).")
    var exitInterval: Int?

    func validate() throws {
        try OptionRange.check(minTimesteps, 1...4096, "--min-timesteps")
        try OptionRange.check(exitInterval, 1...4096, "--exit-interval")
        if let t = exitThreshold, !t.isFinite { throw ValidationError("--exit-threshold must be a finite number") }
    }

    /// nil unless --adaptive; the model's calibrated policy with the given overrides.
    func policy(for model: Model) throws -> ExitPolicy? {
        guard adaptive else { return nil }
        let calibrated = model.description.snn?.exitPolicy
        guard let threshold = exitThreshold ?? calibrated?.threshold else {
            throw ValidationError("--adaptive: this model has no calibrated exit policy; give --exit-threshold or run spikeserve calibrate-exit")
        }
        return ExitPolicy(
            rule: exitRule ?? calibrated?.rule ?? .margin, threshold: threshold,
            minTimesteps: minTimesteps ?? calibrated?.minTimesteps ?? 1, interval: exitInterval ?? calibrated?.interval ?? 1)
    }
}

extension ExitPolicy.Rule: ExpressibleByArgument {}

/// Calibrating the exit policy at conversion or fine-tuning time (`--exit-budget`).
struct ExitCalibrationOptions: ParsableArguments {
    @Option(
        help:
            "Calibrate the exit policy of adaptive time steps on the validation split at this budget (margin rule, no accuracy loss there); 0 skips it."
    )
    var exitBudget = 16

    func validate() throws {
        try OptionRange.check(exitBudget, 0...4096, "--exit-budget")
    }

    /// `model` with a calibrated `snn.exit_policy` (unchanged when skipped or when no threshold
    /// stops images earlier).
    func calibrated(_ model: Model, validation: ImageSet?) throws -> Model {
        guard exitBudget > 0, let validation, validation.count > 0, var snn = model.description.snn else { return model }
        let budget = min(exitBudget, snn.maxTimesteps)
        let r = try ExitCalibration.calibrate(model, on: validation, budget: budget, rule: .margin, maxAccuracyDrop: 0)
        guard let policy = r.policy, let c = r.chosen else {
            stderrLine("exit policy: no threshold stops images earlier at T=\(budget) without losing accuracy; none stored")
            return model
        }
        snn.exitPolicy = policy
        var out = model
        out.description.snn = snn
        out.description.provenance.notes["exit_calibration"] = String(
            format: "T=%d margin threshold %.6g: validation accuracy %.4f (fixed %.4f), %.3f mean steps", budget, c.threshold, c.accuracy,
            r.fixedAccuracy, c.meanTimesteps)
        stderrLine(
            String(
                format: "exit policy: margin ≥ %.4g stops at %.2f mean steps of T=%d with %.2f%% (fixed %.2f%%)", c.threshold, c.meanTimesteps,
                budget, 100 * c.accuracy, 100 * r.fixedAccuracy))
        return out
    }
}
