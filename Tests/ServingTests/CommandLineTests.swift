import Foundation
import Testing

/// Every numeric option of the command-line tool is range-checked: a bad value is a usage error
/// (exit 64) that names the option and its range, never a trap, an abort on a huge allocation, or a
/// useless model written with exit 0.
@Suite struct CommandLineTests {
    static let cases: [(arguments: [String], mentions: String)] = [
        (["evaluate", "Models/mnist-cnn", "--data", "x", "--timesteps", "0"], "--timesteps must be in 1...4096"),
        (["evaluate", "Models/mnist-cnn", "--data", "x", "--timesteps=-1"], "--timesteps must be in 1...4096"),
        (["evaluate", "Models/mnist-cnn", "--data", "x", "--timesteps", "100000"], "--timesteps must be in 1...4096"),
        (["evaluate", "Models/mnist-cnn", "--data", "x", "--batch-size", "0"], "--batch-size must be in"),
        (["evaluate", "Models/mnist-cnn", "--data", "x", "--split", "test"], "--split must be one of"),
        (["classify", "Models/mnist-cnn", "x.png", "--top-k", "0"], "--top-k must be in"),
        (["convert", "ann", "--data", "x", "--out", "y", "--calibration-images", "0"], "--calibration-images must be in"),
        (["convert", "ann", "--data", "x", "--out", "y", "--calibration-timesteps", "0"], "--calibration-timesteps must be in"),
        (["convert", "ann", "--data", "x", "--out", "y", "--scale", "0"], "--scale must be in"),
        (["convert", "ann", "--data", "x", "--out", "y", "--validation-split", "1.5"], "--validation-split must be in"),
        (["finetune", "m", "--data", "x", "--out", "y", "--batch-size", "0"], "--batch-size must be in"),
        (["finetune", "m", "--data", "x", "--out", "y", "--surrogate", "stbd"], "--surrogate must be one of"),
        (["finetune", "m", "--data", "x", "--out", "y", "--also-timesteps", "0"], "--also-timesteps must be in"),
        (["train", "--arch", "mnist-cnn", "--data", "x", "--out", "y", "--lr=-1"], "--lr must be in"),
        (["train", "--arch", "mnist-cnn", "--data", "x", "--out", "y", "--epochs", "0"], "--epochs must be in"),
        (["bench", "Models/mnist-cnn", "--batch", "0"], "--batch must be at least 1"),
        (["serve", "--max-batch-size", "0"], "--max-batch-size must be at least 1"),
    ]

    @Test(arguments: cases.indices)
    func badOptionValuesAreUsageErrors(_ index: Int) async throws {
        let (arguments, mentions) = Self.cases[index]
        let result = try await run(repositoryRoot + "/.build/debug/spikeserve", arguments, timeout: 60)
        #expect(result.status == 64, "\(arguments): \(result.output)")
        #expect(result.output.contains(mentions), "\(arguments): \(result.output)")
    }
}
