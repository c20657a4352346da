/// Why an ANN could not be imported. Every case names what the user must change: the node (name,
/// operator type and its position in the graph's node list) or the tensor.
public enum ImportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is not a readable ONNX model or safetensors file.
    case unreadable(String)
    /// An operator outside the supported set, or a supported one used in a way the SNN cannot run.
    case unsupportedNode(node: String, opType: String, index: Int, reason: String)
    /// A tensor is missing, has the wrong shape or an unsupported data type, or is left over.
    case tensor(name: String, reason: String)
    /// The graph as a whole: inputs, outputs, or the input geometry.
    case graph(String)

    public var description: String {
        switch self {
        case .unreadable(let why): "unreadable model: \(why)"
        case .unsupportedNode(let node, let op, let index, let reason): "node \(index) '\(node)' (\(op)): \(reason)"
        case .tensor(let name, let reason): "tensor '\(name)': \(reason)"
        case .graph(let why): "graph: \(why)"
        }
    }
}
