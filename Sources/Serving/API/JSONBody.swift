import Foundation

/// Request bodies decoded into the endpoints' `Decodable` types. JSONDecoder keeps JSON's types
/// apart (a boolean is not a number, 1.5 is not an integer, -1 is not a seed), so a value of the
/// wrong type is refused with its path instead of being converted.
enum JSONBody {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(RequestError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw .invalidJSON("the body is not valid JSON")
        }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var out = ""
        for key in codingPath {
            if let i = key.intValue { out += "[\(i)]" } else { out += (out.isEmpty ? "" : ".") + key.stringValue }
        }
        return out
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Bool.Type: "a JSON boolean"
        case is String.Type: "a string"
        case is Int.Type, is UInt64.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }

    static func describe(_ error: DecodingError) -> RequestError {
        switch error {
        case .typeMismatch(let type, let context):
            guard !context.codingPath.isEmpty else { return .invalidJSON("the body must be a JSON object") }
            return .invalidParameter("'\(path(context.codingPath))' must be \(typeName(type))")
        case .valueNotFound(let type, let context):
            return .invalidParameter("'\(path(context.codingPath))' must be \(typeName(type)), not null")
        case .keyNotFound(let key, let context):
            return .badRequest("'\(path(context.codingPath + [key]))' is required")
        case .dataCorrupted(let context):
            guard !context.codingPath.isEmpty else { return .invalidJSON("the body is not valid JSON") }
            return .invalidParameter("'\(path(context.codingPath))' has an invalid value")
        @unknown default:
            return .invalidJSON("the body is not valid JSON")
        }
    }
}
