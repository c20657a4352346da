import ArgumentParser
import Foundation
import ModelImport
import SNN

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import an ANN trained elsewhere: an ONNX model, or a PyTorch state dict saved as safetensors (with --arch).",
        discussion: """
            Writes an ANN model directory that `convert` turns into an SNN. ONNX: opsets 11–21; \
            supported operators and refusals are listed in docs/import.md. Safetensors: tensor \
            names as the paper's reference implementation names them for the architecture.
            """)

    @Argument(help: "MODEL.onnx, or STATE.safetensors with --arch.")
    var file: String

    @Option(help: "Output model directory.")
    var out: String

    @Option(help: "Architecture of a safetensors state dict (\(Architectures.names.joined(separator: ", "))).")
    var arch: String?

    @Option(help: "Class names, one per line, in output order (default: 0 … K-1).")
    var labels: String?

    @Option(help: "Model name in model.json (default: the file's name).")
    var name: String?

    @Option(help: "ONNX: input geometry C,H,W when the graph's input dimensions are symbolic.")
    var inputSize: String?

    @Option(parsing: .upToNextOption, help: "Per-channel mean of pixels in [0, 1] that the network was trained with.")
    var mean: [Float] = []

    @Option(parsing: .upToNextOption, help: "Per-channel standard deviation (same convention).")
    var std: [Float] = []

    func validate() throws {
        if let inputSize, parsedInputSize(inputSize) == nil { throw ValidationError("--input-size must be C,H,W (positive integers)") }
        if mean.count != std.count { throw ValidationError("--mean and --std need the same number of values") }
        if std.contains(where: { !($0 > 0) }) { throw ValidationError("--std values must be positive") }
    }

    func parsedInputSize(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return parts.map { $0! }
    }

    func run() throws {
        let labelList = try labels.map { path -> [String] in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
            return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let modelName = name ?? ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        var options = ImportOptions()
        options.name = modelName
        options.labels = labelList
        options.inputSize = inputSize.flatMap(parsedInputSize)
        if !mean.isEmpty { (options.mean, options.std) = (mean, std) }
        var model: Model
        do throws(ImportError) {
            if let arch {
                model = try StateDictImporter.importModel(at: file, architecture: arch, options: options)
            } else {
                model = try ONNXImporter.importModel(at: file, options: options)
            }
        } catch {
            throw ImportFailure(description: "\(file): \(error.description)")
        }
        model.description.provenance.createdAt = ISO8601DateFormatter().string(from: Date())
        model.description.provenance.commands.append(invocation)
        try model.save(to: out)
        let d = model.description
        print(
            "imported \(file) → \(out): \(d.layers.count) layers, \(d.layers.neuronLayerCount) ReLU layers (spiking after conversion), "
                + "input \(d.input.channels)×\(d.input.height)×\(d.input.width), \(d.labels.count) classes, "
                + "\(model.multiplyAccumulatesPerImage) multiply-accumulates per image")
        print("next: spikeserve convert \(out) --data DATA --out SNN_DIR")
    }
}

/// A file that could not be imported: printed as `Error: FILE: reason`, exit status 1.
struct ImportFailure: Error, CustomStringConvertible {
    var description: String
}
