import Foundation

/// JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) of the API's `Codable` types, derived
/// from their `Decodable` conformances so that the document served at `/openapi.json` and the code
/// cannot drift apart.
///
/// Derivation decodes the type once from a recording `Decoder`: every `decode(_:forKey:)` the
/// conformance performs becomes a required property, every `decodeIfPresent` an optional one, an
/// unkeyed container an array of the element decoded once. Types whose conformance reveals too
/// little (enumerations decoded from a string, dictionaries) describe themselves through
/// `SchemaDescribing`; `SchemaAnnotated` adds descriptions and bounds to properties.
public enum JSONSchema {
    /// The schema of `type`; nested API types are inlined.
    public static func of<T: Decodable>(_ type: T.Type) -> JSONValue {
        (try? derive(type).schema) ?? ["type": "object"]
    }

    static func derive<T: Decodable>(_ type: T.Type) throws -> (schema: JSONValue, value: T) {
        if let described = type as? any SchemaDescribing.Type {
            return (described.jsonSchema, described.schemaPlaceholder as! T)
        }
        let recorder = SchemaRecorder()
        let value = try T(from: recorder)
        var schema = recorder.result
        if let annotated = type as? any SchemaAnnotated.Type { schema = annotate(schema, with: annotated.schemaAnnotations) }
        return (schema, value)
    }

    /// Merges per-property keywords (description, minimum, …) into an object schema.
    static func annotate(_ schema: JSONValue, with notes: [String: JSONValue]) -> JSONValue {
        guard case .object(var fields) = schema,
            let i = fields.firstIndex(where: { $0.0 == "properties" }), case .object(var properties) = fields[i].1
        else { return schema }
        for (j, (name, property)) in properties.enumerated() {
            guard let note = notes[name], case .object(let extra) = note, case .object(let base) = property else { continue }
            properties[j] = (name, .object(base + extra))
        }
        fields[i] = ("properties", .object(properties))
        return .object(fields)
    }
}

/// A type that gives its schema directly instead of having it derived, with a value the
/// recording decoder returns in its place.
public protocol SchemaDescribing {
    static var jsonSchema: JSONValue { get }
    static var schemaPlaceholder: Self { get }
}

/// Extra JSON Schema keywords per property (by its JSON name), merged into the derived schema.
public protocol SchemaAnnotated {
    static var schemaAnnotations: [String: JSONValue] { get }
}

/// String enumerations: their raw values, in declaration order.
extension SchemaDescribing where Self: CaseIterable & RawRepresentable, RawValue == String {
    public static var jsonSchema: JSONValue { ["type": "string", "enum": .array(allCases.map { .string($0.rawValue) })] }
    public static var schemaPlaceholder: Self { allCases.first! }
}

/// String-keyed maps: an object whose every property has the value's schema.
extension Dictionary: SchemaDescribing where Key == String, Value: Decodable {
    public static var jsonSchema: JSONValue { ["type": "object", "additionalProperties": JSONSchema.of(Value.self)] }
    public static var schemaPlaceholder: Self { [:] }
}

/// An optional property encoded as JSON `null` when absent (synthesized `Encodable` would leave
/// the key out), for fields the API has always sent as `null`. Absent keys decode as `nil`.
@propertyWrapper
public struct Nullable<Value: Codable & Sendable>: Codable, Sendable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}

extension Nullable: SchemaDescribing {
    public static var jsonSchema: JSONValue {
        guard case .object(var fields) = JSONSchema.of(Value.self), let i = fields.firstIndex(where: { $0.0 == "type" }),
            case .string(let type) = fields[i].1
        else { return ["anyOf": [JSONSchema.of(Value.self), ["type": "null"]]] }
        fields[i] = ("type", [.string(type), "null"])
        return .object(fields)
    }
    public static var schemaPlaceholder: Self { Nullable(wrappedValue: nil) }
}

extension KeyedDecodingContainer {
    /// A `Nullable` property may be missing altogether.
    public func decode<T>(_ type: Nullable<T>.Type, forKey key: Key) throws -> Nullable<T> {
        try decodeIfPresent(type, forKey: key) ?? Nullable(wrappedValue: nil)
    }
}

// MARK: the recording decoder

/// Records what a `Decodable` conformance asks for. One recorder per nesting level; its `result`
/// is the schema of the value decoded from it.
final class SchemaRecorder: Decoder {
    enum Shape {
        case unknown
        case object([(name: String, schema: JSONValue, required: Bool)])
        case array(JSONValue)
        case single(JSONValue)
    }

    var shape = Shape.unknown
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var result: JSONValue {
        switch shape {
        case .unknown: return ["type": "object"]
        case .single(let s): return s
        case .array(let items): return ["type": "array", "items": items]
        case .object(let properties):
            var fields: [(String, JSONValue)] = [("type", "object")]
            let required = properties.filter(\.required).map { JSONValue.string($0.name) }
            if !required.isEmpty { fields.append(("required", .array(required))) }
            fields.append(("properties", .object(properties.map { ($0.name, $0.schema) })))
            return .object(fields)
        }
    }

    func record(_ name: String, _ schema: JSONValue, required: Bool) {
        guard case .object(var properties) = shape else {
            shape = .object([(name, schema, required)])
            return
        }
        properties.append((name, schema, required))
        shape = .object(properties)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        if case .unknown = shape { shape = .object([]) }
        return KeyedDecodingContainer(KeyedRecorder<Key>(recorder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { UnkeyedRecorder(recorder: self) }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleRecorder(recorder: self) }

    /// Placeholder values and schemas of the scalar types.
    static func scalar<T: Decodable>(_ type: T.Type) -> (JSONValue, T)? {
        switch type {
        case is Bool.Type: return (["type": "boolean"], false as! T)
        case is String.Type: return (["type": "string"], "" as! T)
        case is Double.Type: return (["type": "number"], 0.0 as! T)
        case is Float.Type: return (["type": "number"], Float(0) as! T)
        case is Int.Type: return (["type": "integer"], 0 as! T)
        case is UInt64.Type: return (["type": "integer", "minimum": 0], UInt64(0) as! T)
        case is UInt8.Type: return (["type": "integer", "minimum": 0, "maximum": 255], UInt8(0) as! T)
        default: return nil
        }
    }

    static func any<T: Decodable>(_ type: T.Type) throws -> (JSONValue, T) {
        if let s = scalar(type) { return s }
        return try JSONSchema.derive(type)
    }
}

private struct KeyedRecorder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let recorder: SchemaRecorder
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { [] }
    func contains(_ key: Key) -> Bool { true }
    func decodeNil(forKey key: Key) throws -> Bool { false }

    func property<T: Decodable>(_ type: T.Type, _ key: Key, required: Bool) throws -> T {
        let (schema, value) = try SchemaRecorder.any(type)
        recorder.record(key.stringValue, schema, required: required)
        return value
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try property(type, key, required: true) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try property(type, key, required: false) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try property(type, key, required: true) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try property(type, key, required: true) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try property(type, key, required: true) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try property(type, key, required: true) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try property(type, key, required: true) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try property(type, key, required: true) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try property(type, key, required: true) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try property(type, key, required: true) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try property(type, key, required: true) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try property(type, key, required: true) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try property(type, key, required: true) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try property(type, key, required: true) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try property(type, key, required: true) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try property(type, key, required: true) }
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try property(type, key, required: false) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try property(type, key, required: false) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: "nested containers are not described"))
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: "nested containers are not described"))
    }
    func superDecoder() throws -> any Decoder { recorder }
    func superDecoder(forKey key: Key) throws -> any Decoder { recorder }
}

private struct UnkeyedRecorder: UnkeyedDecodingContainer {
    let recorder: SchemaRecorder
    var codingPath: [any CodingKey] { [] }
    var count: Int? { 1 }
    var currentIndex = 0
    var isAtEnd: Bool { currentIndex > 0 }
    mutating func decodeNil() throws -> Bool { false }

    mutating func element<T: Decodable>(_ type: T.Type) throws -> T {
        let (schema, value) = try SchemaRecorder.any(type)
        recorder.shape = .array(schema)
        currentIndex += 1
        return value
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try element(type) }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try element(type) }
    mutating func decode(_ type: String.Type) throws -> String { try element(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try element(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try element(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try element(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try element(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try element(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try element(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try element(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try element(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try element(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try element(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try element(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try element(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "nested containers are not described"))
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "nested containers are not described"))
    }
    mutating func superDecoder() throws -> any Decoder { recorder }
}

private struct SingleRecorder: SingleValueDecodingContainer {
    let recorder: SchemaRecorder
    var codingPath: [any CodingKey] { [] }
    func decodeNil() -> Bool { false }
    func value<T: Decodable>(_ type: T.Type) throws -> T {
        let (schema, value) = try SchemaRecorder.any(type)
        recorder.shape = .single(schema)
        return value
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try value(type) }
    func decode(_ type: Bool.Type) throws -> Bool { try value(type) }
    func decode(_ type: String.Type) throws -> String { try value(type) }
    func decode(_ type: Double.Type) throws -> Double { try value(type) }
    func decode(_ type: Float.Type) throws -> Float { try value(type) }
    func decode(_ type: Int.Type) throws -> Int { try value(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try value(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try value(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try value(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try value(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try value(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try value(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try value(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try value(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try value(type) }
}
