import ArgumentParser
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
