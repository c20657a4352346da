import Foundation
import SNN
import TensorKit

/// A constant of an ONNX graph (an initializer, a `Constant` node, or a folded shape computation),
/// decoded to what the importer needs: weights as `Float`, shapes and indices as `Int`.
struct ONNXConstant: Sendable {
    var dims: [Int]
    var floats: [Float] = []
    var ints: [Int] = []
    var isInteger: Bool

    var count: Int { dims.reduce(1, *) }
    var tensor: Tensor { Tensor(shape: dims, scalars: floats) }
}

/// ONNX `TensorProto.DataType` values the importer reads (onnx.proto, `enum DataType`).
enum ONNXDataType: Int32 {
    case float = 1, int32 = 6, int64 = 7, float16 = 10, double = 11
}

extension ONNXConstant {
    /// Decodes a tensor's payload: `raw_data` (little-endian), the typed lists (`float_data`;
    /// `int32_data`, which also carries FLOAT16 as 16-bit patterns; `int64_data`; `double_data`),
    /// or an external data file.
    ///
    /// - Parameter directory: the model file's directory; external data paths are relative to it
    ///   and may not leave it (an absolute path or a `..` component is refused).
    /// - Throws: `ImportError.tensor` naming the tensor for an unsupported type, a payload whose
    ///   size disagrees with `dims`, or an unreadable external file.
    init(_ proto: Onnx_TensorProto, directory: String?) throws(ImportError) {
        let name = proto.name.isEmpty ? "(unnamed)" : proto.name
        guard proto.dims.allSatisfy({ $0 >= 0 && $0 < Int64(Int32.max) }) else {
            throw .tensor(name: name, reason: "bad dimensions \(proto.dims)")
        }
        dims = proto.dims.map { Int($0) }
        let count = dims.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard count <= 1 << 31 else { throw .tensor(name: name, reason: "too many elements (\(dims))") }
        guard let type = ONNXDataType(rawValue: proto.dataType) else {
            throw .tensor(name: name, reason: "data type \(proto.dataType) is not supported (float32, float16, float64, int32, int64 are)")
        }
        isInteger = type == .int32 || type == .int64
        var raw: Data? = proto.hasRawData ? proto.rawData : nil
        if proto.dataLocation == .external {
            raw = try Self.externalData(proto, name: name, directory: directory)
        }
        if let raw {
            let width = [ONNXDataType.float: 4, .int32: 4, .int64: 8, .float16: 2, .double: 8][type]!
            guard raw.count == count * width else {
                throw .tensor(name: name, reason: "holds \(raw.count) bytes, its shape \(dims) needs \(count * width)")
            }
            switch type {
            case .float: floats = raw.littleEndianIntegers(UInt32.self).map { Float(bitPattern: $0) }
            case .float16: floats = raw.littleEndianIntegers(UInt16.self).map(Float.init(halfBits:))
            case .double: floats = raw.littleEndianIntegers(UInt64.self).map { Float(Double(bitPattern: $0)) }
            case .int32: ints = raw.littleEndianIntegers(UInt32.self).map { Int(Int32(bitPattern: $0)) }
            case .int64: ints = raw.littleEndianIntegers(UInt64.self).map { Int(Int64(bitPattern: $0)) }
            }
        } else {
            switch type {
            case .float: floats = proto.floatData
            case .float16: floats = proto.int32Data.map { Float(halfBits: UInt16(truncatingIfNeeded: $0)) }
            case .double: floats = proto.doubleData.map { Float($0) }
            case .int32: ints = proto.int32Data.map { Int($0) }
            case .int64: ints = proto.int64Data.map { Int($0) }
            }
            let held = isInteger ? ints.count : floats.count
            guard held == count else { throw .tensor(name: name, reason: "holds \(held) values, its shape \(dims) needs \(count)") }
        }
        if isInteger { floats = ints.map { Float($0) } }
    }

    /// The bytes an external tensor names (`location`, optional `offset` and `length`).
    private static func externalData(_ proto: Onnx_TensorProto, name: String, directory: String?) throws(ImportError) -> Data {
        var entries: [String: String] = [:]
        for entry in proto.externalData { entries[entry.key] = entry.value }
        guard let location = entries["location"], !location.isEmpty else { throw .tensor(name: name, reason: "external data without a location") }
        guard let directory else { throw .tensor(name: name, reason: "external data '\(location)' needs the model's directory") }
        let components = location.split(separator: "/")
        guard !location.hasPrefix("/"), !components.contains(".."), !location.contains("\\") else {
            throw .tensor(name: name, reason: "external data path '\(location)' leaves the model's directory")
        }
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 }
        guard offset >= 0, (length ?? 0) >= 0 else { throw .tensor(name: name, reason: "bad external data offset or length") }
        guard let handle = FileHandle(forReadingAtPath: directory + "/" + location) else {
            throw .tensor(name: name, reason: "external data file '\(location)' not found beside the model")
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try (length.map { try handle.read(upToCount: $0) } ?? handle.readToEnd()) ?? Data()
            if let length, data.count != length {
                throw ImportError.tensor(name: name, reason: "external data file '\(location)' is shorter than offset + length")
            }
            return data
        } catch let error as ImportError {
            throw error
        } catch {
            throw .tensor(name: name, reason: "external data file '\(location)': \(error)")
        }
    }
}
