import SNN
import TensorKit

/// What an imported file does not say about the network, for either importer.
public struct ImportOptions: Sendable {
    /// The model's name in `model.json`.
    public var name = "imported"
    /// Class names in output order (default: "0" … "K-1").
    public var labels: [String]?
    /// ONNX only: input geometry `[C, H, W]` when the graph's input has symbolic or missing
    /// dimensions.
    public var inputSize: [Int]?
    /// Per-channel normalisation applied to pixels in [0, 1] before the network (default: the
    /// importer's — mean 0, std 1 for ONNX, the data set's for a built-in architecture). Use the
    /// values the network was trained with.
    public var mean: [Float]?
    public var std: [Float]?

    public init() {}

    /// The imported network as a model: labels and normalisation checked against it, the source
    /// recorded in provenance, the whole validated.
    /// - Throws: `ImportError.graph` naming what does not fit.
    func model(
        architecture: String, input defaults: InputDescription, layers: [LayerSpec], tensors: [String: Tensor], classes: Int,
        source: String
    ) throws(ImportError) -> Model {
        let labels = self.labels ?? (0..<classes).map(String.init)
        guard labels.count == classes else { throw .graph("\(labels.count) labels for \(classes) outputs") }
        var input = defaults
        if let mean { input.mean = mean }
        if let std { input.std = std }
        guard input.mean.count == input.channels, input.std.count == input.channels, input.std.allSatisfy({ $0 > 0 }) else {
            throw .graph("--mean and --std need \(input.channels) values each (std positive)")
        }
        var description = ModelDescription(name: name, architecture: architecture, input: input, labels: labels, layers: layers)
        description.provenance.notes["imported_from"] = source
        let model = Model(description: description, tensors: tensors)
        do {
            try model.validate()
        } catch {
            throw .graph("the imported network is not valid: \(error.description)")
        }
        return model
    }
}
