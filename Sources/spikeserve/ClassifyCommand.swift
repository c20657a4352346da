import ArgumentParser
import Foundation
import Imaging
import SNN
import TensorKit

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Classify image files with a converted model under a time-step budget.")

    @Argument(help: "Model directory.")
    var modelDirectory: String

    @Argument(help: "JPEG or PNG files.")
    var images: [String]

    @Option(help: "Time-step budget T (default: the model's).")
    var timesteps: Int?

    @Option(help: "How many classes to report per image.")
    var topK = 3

    @Option(help: "Seed of the Poisson input.")
    var seed: UInt64 = 0

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(
        help:
            "Run the ANN instead of the SNN (also for an unconverted model, e.g. one just imported; for a fine-tuned SNN, the ANN it was converted from); JSON adds the logits."
    )
    var ann = false

    @OptionGroup var exit: ExitOptions

    func validate() throws {
        try OptionRange.timesteps(timesteps)
        try OptionRange.check(topK, 1...10_000, "--top-k")
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        try exit.validate()
    }

    func run() throws {
        let model = try Model.load(from: modelDirectory)
        let spec = model.description.inputSpec
        var input = Tensor(shape: [images.count, spec.channels, spec.height, spec.width])
        for (i, path) in images.enumerated() {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            let image = try ImageDecoder.decode([UInt8](data), grayscale: spec.channels == 1).prepared(for: spec)
            input.withUnsafeMutablePointer { image.normalized(spec, into: $0 + i * spec.count) }
        }
        if ann { return try classifyWithANN(model.ann, input) }
        guard let snn = model.description.snn else { throw ValidationError("\(modelDirectory) is not a converted SNN (use --ann for its ANN)") }
        let t = timesteps ?? snn.defaultTimesteps
        try OptionRange.memory(model, timesteps: t)
        guard t >= 1 && t <= snn.maxTimesteps else { throw ValidationError("--timesteps must be in 1...\(snn.maxTimesteps)") }
        var engine = try SpikingEngine(model: model)
        let r = engine.run(
            input, options: .init(timesteps: t, seeds: images.indices.map { UInt64($0) &+ seed }, exit: try exit.policy(for: model)))
        var results: [[String: Any]] = []
        let decisions = r.decisions
        for (i, path) in images.enumerated() {
            let scores = r.scores(image: i)
            let decided = decisions[i] != nil
            let top = decided ? Array(scores.indices.sorted { scores[$0] > scores[$1] }.prefix(max(1, topK))) : []
            let predictions = top.map { ["label": model.description.labels[$0], "index": $0, "score": Double(scores[$0])] as [String: Any] }
            results.append([
                "image": path, "decided": decided, "predictions": predictions, "spike_count": r.spikes[i],
                "synaptic_ops": r.synapticOps[i], "timesteps_used": r.timestepsUsed[i], "exit": r.exits[i].rawValue,
            ])
            if !json && !decided {
                print("\(path): undecided (equal output potentials at T=\(t); try more time steps)")
            } else if !json {
                let text = top.map { String(format: "%@ %.3f", model.description.labels[$0], scores[$0]) }.joined(separator: ", ")
                print("\(path): \(text)" + (r.exits[i] == .settled ? " (settled after \(r.timestepsUsed[i]) of \(t) steps)" : ""))
            }
        }
        if json { try printJSON(["model": model.description.name, "timesteps": t, "results": results]) }
    }

    /// The ANN's answer: softmax scores, and with --json the logits, for checking an import
    /// against the framework it came from.
    func classifyWithANN(_ model: Model, _ input: Tensor) throws {
        let logits = try model.annLogits(input)
        let k = logits.shape[1]
        var results: [[String: Any]] = []
        for (i, path) in images.enumerated() {
            let row = Array(logits.scalars[(i * k)..<((i + 1) * k)])
            let scores = softmax(row)
            let top = Array(scores.indices.sorted { scores[$0] > scores[$1] }.prefix(max(1, topK)))
            let predictions = top.map { ["label": model.description.labels[$0], "index": $0, "score": Double(scores[$0])] as [String: Any] }
            results.append(["image": path, "predictions": predictions, "logits": row.map(Double.init)])
            if !json {
                print("\(path): " + top.map { String(format: "%@ %.3f", model.description.labels[$0], scores[$0]) }.joined(separator: ", "))
            }
        }
        if json { try printJSON(["model": model.description.name, "mode": "ann", "results": results]) }
    }
}
