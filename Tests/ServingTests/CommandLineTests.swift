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

/// The command-line paths users check imports and errors with.
@Suite struct CommandLineWorkflowTests {
    static let binary = repositoryRoot + "/.build/debug/spikeserve"
    static let importFixtures = repositoryRoot + "/Tests/ModelImportTests/Fixtures/"

    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
    }

    /// `import` then `classify --ann --json` on an image gives onnxruntime's logits (within 1e-4).
    @Test func importedONNXClassifiesLikeONNXRuntime() async throws {
        let out = Self.temporary("import")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let imported = try await run(Self.binary, ["import", Self.importFixtures + "torch-vgg.onnx", "--out", out, "--name", "vgg"])
        #expect(imported.status == 0, "\(imported.output)")
        let classify = try await run(Self.binary, ["classify", out, Self.importFixtures + "torch-vgg.png", "--ann", "--json"])
        #expect(classify.status == 0, "\(classify.output)")
        let text = classify.output[(classify.output.firstIndex(of: "{") ?? classify.output.startIndex)...]
        let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        let logits = ((json?["results"] as? [[String: Any]])?.first?["logits"] as? [Double]) ?? []
        let expectedJSON = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Self.importFixtures + "torch-vgg.expected.json")))
        let expected = ((expectedJSON as? [String: Any])?["logits"] as? [[Double]])?.first ?? []
        #expect(logits.count == 10 && expected.count == 10)
        #expect(zip(logits, expected).allSatisfy { abs($0 - $1) < 1e-4 }, "\(logits) vs \(expected)")

        let refused = try await run(Self.binary, ["import", Self.importFixtures + "refuse-maxpool.onnx", "--out", out + "-x"])
        #expect(refused.status == 1 && refused.output.contains("(MaxPool): max pooling cannot be converted"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: out + "-x"))
    }

    /// `evaluate --predictions` writes one line per image, in agreement with the accuracy it prints.
    @Test func evaluateWritesPredictions() async throws {
        let file = Self.temporary("predictions") + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try await run(
            Self.binary,
            [
                "evaluate", repositoryRoot + "/Models/mnist-cnn", "--data", repositoryRoot + "/Tests/SNNTests/Fixtures/mnist-small",
                "--timesteps", "4", "--json", "--predictions", file,
            ])
        #expect(result.status == 0, "\(result.output)")
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200)
        let rows = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let correct = rows.filter { $0["correct"] as? Bool == true }.count
        #expect(rows.allSatisfy { ($0["path"] as? String)?.hasSuffix(".png") == true && $0["label"] is String })
        let summary = result.output[result.output.firstIndex(of: "{")!...]
        let accuracy = (try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])?["accuracy"] as? Double
        #expect(accuracy == Double(correct) / 200)
    }
}
