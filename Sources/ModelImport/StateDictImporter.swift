import Foundation
import SNN
import TensorKit

/// Reads a PyTorch state dict saved as safetensors into one of the built-in architectures, whose
/// tensor names follow the paper's reference implementation (nitin-rathi/hybrid-snn-conversion):
/// `features.N.weight` and `classifier.N.weight` for the VGGs, `pre_process.N`,
/// `layerS.B.residual.N`, `layerS.B.identity.0` and `classifier.0` for ResNet20.
///
/// A convolution or linear layer gets a bias when the file holds `NAME.bias`; batch-norm
/// statistics (`running_mean`, `running_var`) switch on the architecture's batch-norm layers;
/// `num_batches_tracked` is ignored. The number of classes is read from the last layer's weight.
public enum StateDictImporter {
    /// - Throws: `ImportError.tensor` naming a missing, extra or mis-shaped tensor;
    ///   `.unreadable` for a file that is not safetensors; `.graph` for an unknown architecture.
    public static func importModel(at path: String, architecture: String, options: ImportOptions) throws(ImportError) -> Model {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable("cannot read \(path)") }
        return try importModel(data, architecture: architecture, options: options)
    }

    public static func importModel(_ data: Data, architecture: String, options: ImportOptions) throws(ImportError) -> Model {
        var tensors: [String: Tensor]
        do {
            tensors = try SafeTensors.decode(data).tensors
        } catch {
            throw .unreadable("not a safetensors file: \(error.description)")
        }
        tensors = tensors.filter { !$0.key.hasSuffix(".num_batches_tracked") }
        let batchNorm = tensors.keys.contains { $0.hasSuffix(".running_mean") }
        var layers: [LayerSpec]
        do {
            layers = try Architectures.layers(for: architecture, batchNorm: batchNorm)
            // The output layer's weight says how many classes there are.
            if let last = layers.last, last.type == .linear, let name = last.name, let w = tensors[name + ".weight"], w.rank == 2,
                w.shape[0] != last.outFeatures
            {
                layers = try Architectures.layers(for: architecture, classes: w.shape[0], batchNorm: batchNorm)
            }
        } catch {
            throw .graph(error.description)
        }
        layers = withBiases(layers, present: Set(tensors.keys))
        let expected = layers.parameterShapes() + layers.bufferShapes()
        for (name, shape) in expected {
            guard let tensor = tensors[name] else {
                throw .tensor(name: name, reason: "missing (architecture \(architecture) needs it, shape \(shape))")
            }
            guard tensor.shape == shape else {
                throw .tensor(name: name, reason: "has shape \(tensor.shape), architecture \(architecture) needs \(shape)")
            }
        }
        let known = Set(expected.map(\.name))
        if let extra = tensors.keys.sorted().first(where: { !known.contains($0) }) {
            throw .tensor(name: extra, reason: "is not part of architecture \(architecture)\(batchNorm ? " with batch norm" : "")")
        }
        return try options.model(
            architecture: architecture, input: Architectures.input(for: architecture), layers: layers, tensors: tensors,
            classes: layers.last?.outFeatures ?? 0, source: "safetensors state dict")
    }

    /// Marks each convolution and linear layer whose `NAME.bias` is present as having a bias.
    static func withBiases(_ layers: [LayerSpec], present: Set<String>) -> [LayerSpec] {
        layers.map { layer in
            var l = layer
            switch layer.type {
            case .conv2d, .linear:
                if let name = layer.name, present.contains(name + ".bias") { l.bias = true }
            case .residual:
                l.body = withBiases(layer.body ?? [], present: present)
                l.shortcut = withBiases(layer.shortcut ?? [], present: present)
            default: break
            }
            return l
        }
    }
}
