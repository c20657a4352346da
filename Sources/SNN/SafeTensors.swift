import Foundation
import TensorKit

/// Reads and writes the safetensors format (Hugging Face), Float32 only:
/// 8 bytes little-endian header length N, N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}`,
/// then the raw little-endian data, offsets relative to the end of the header.
/// Loadable with Python's `safetensors.numpy.load_file` / `safetensors.torch.load_file`.
public enum SafeTensors {
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]]
            offset += 4 * t.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces to a multiple of 8 so the data is aligned for zero-copy readers.
        while (json.count % 8) != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for name in names {
            tensors[name]!.scalars.withUnsafeBufferPointer { buf in
                // Float32 on every platform we build for is little-endian IEEE-754 already.
                data.append(
                    UnsafeBufferPointer(
                        start: UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: UInt8.self),
                        count: buf.count * 4))
            }
        }
        return data
    }

    public static func decode(_ data: Data) throws(ModelError) -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard data.count >= 8 else { throw ModelError("weights file is shorter than its 8-byte header length") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | (UInt64($1.element) << (8 * UInt64($1.offset))) }
        guard n <= UInt64(data.count - 8), n < 100_000_000 else { throw ModelError("weights file header length \(n) exceeds the file") }
        let headerEnd = 8 + Int(n)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) as? [String: Any] else {
            throw ModelError("weights file header is not a JSON object")
        }
        let dataCount = data.count - headerEnd
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else { throw ModelError("weights entry '\(name)' is malformed") }
            // Files written elsewhere (PyTorch state dicts) may hold half, bfloat16, double or
            // integer tensors (batch norm's num_batches_tracked); all are read as Float32.
            let widths = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4]
            guard let width = widths[dtype] else {
                throw ModelError("weights entry '\(name)' has dtype \(dtype); F32, F16, BF16, F64, I64 and I32 are read")
            }
            // Checked arithmetic: the header is untrusted input (an upload).
            guard shape.allSatisfy({ $0 >= 0 && $0 < Int(Int32.max) }), offsets[0] >= 0, offsets[1] <= dataCount else {
                throw ModelError("weights entry '\(name)': offsets \(offsets) or shape \(shape) outside the file")
            }
            var count = 1
            for d in shape {
                let (c, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, c <= dataCount else { throw ModelError("weights entry '\(name)': shape \(shape) exceeds the file") }
                count = c
            }
            guard offsets[1] - offsets[0] == width * count else {
                throw ModelError("weights entry '\(name)': offsets \(offsets) do not match shape \(shape) within the file")
            }
            let bytes = data.subdata(in: (headerEnd + offsets[0])..<(headerEnd + offsets[1]))
            let scalars: [Float]
            switch dtype {
            case "F16": scalars = bytes.littleEndianIntegers(UInt16.self).map(Float.init(halfBits:))
            case "BF16": scalars = bytes.littleEndianIntegers(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
            case "F64": scalars = bytes.littleEndianIntegers(UInt64.self).map { Float(Double(bitPattern: $0)) }
            case "I64": scalars = bytes.littleEndianIntegers(UInt64.self).map { Float(Int64(bitPattern: $0)) }
            case "I32": scalars = bytes.littleEndianIntegers(UInt32.self).map { Float(Int32(bitPattern: $0)) }
            default:
                var f = [Float](repeating: 0, count: count)
                f.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
                scalars = f
            }
            tensors[name] = Tensor(shape: shape, scalars: scalars)
        }
        return (tensors, metadata)
    }
}

extension Data {
    /// The bytes read as consecutive little-endian integers of type `T`.
    public func littleEndianIntegers<T: FixedWidthInteger>(_: T.Type) -> [T] {
        let n = count / MemoryLayout<T>.size
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            withUnsafeBytes { raw in
                for i in 0..<n { buffer[i] = T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)) }
            }
            initialized = n
        }
    }
}

extension Float {
    /// IEEE 754 binary16 → binary32, exact (every half value is a float): subnormals
    /// renormalised, infinities and NaNs kept.
    public init(halfBits h: UInt16) {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else if exponent == 0 {
            // ±0 or subnormal: mantissa · 2⁻²⁴.
            let magnitude = Float(mantissa) * 0x1p-24
            self = sign == 0 ? magnitude : -magnitude
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
        }
    }
}
